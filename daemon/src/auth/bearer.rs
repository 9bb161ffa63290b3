//! SASL bearer logins (XOAUTH2, OAUTHBEARER) with this daemon's own session tokens and API keys.
//!
//! The token is resolved with [`Engine::bearer`]; the principal's permissions are then taken
//! as they are *now* (a permission removed after the session was issued takes effect at once):
//! the intersection of what the session recorded and what the account currently has. The same
//! permissions as a password login are required (`authenticate` plus the service's own), and
//! the attempt is counted and logged like [`Engine::login`].

use std::net::IpAddr;
use std::time::Instant;

use super::{Engine, Frontend, Mechanism, Method, Principal, SessionView};
use crate::auth::LoginError;
use crate::authz::{PermSet, Service};

pub struct BearerAttempt<'a> {
    pub frontend: Frontend,
    /// XOAUTH2 or OAUTHBEARER.
    pub mechanism: Mechanism,
    pub token: &'a str,
    /// The user the client claimed (XOAUTH2 `user=`, OAUTHBEARER authzid); must be the token's
    /// owner when given.
    pub claimed_user: Option<&'a str>,
    pub service: Service<'a>,
    pub remote_ip: Option<IpAddr>,
}

impl Engine {
    pub async fn login_bearer(&self, a: BearerAttempt<'_>) -> Result<Principal, LoginError> {
        let started = Instant::now();
        let (result, directory) = self.login_bearer_inner(&a).await;
        let user = match &result {
            Ok(p) => p.name.as_str(),
            Err(_) => a.claimed_user.unwrap_or("-"),
        };
        self.record(
            &super::login::AuthEvent {
                frontend: a.frontend,
                mechanism: a.mechanism,
                directory: &directory,
                user,
                service: a.service.name(),
                remote_ip: a.remote_ip,
                started,
            },
            &result,
        );
        result
    }

    async fn login_bearer_inner(
        &self,
        a: &BearerAttempt<'_>,
    ) -> (Result<Principal, LoginError>, String) {
        let none = || "none".to_string();
        let view = match self.bearer(a.token, a.remote_ip).await {
            Ok(Some(view)) => view,
            Ok(None) => return (Err(LoginError::InvalidCredentials), none()),
            Err(e) => {
                tracing::warn!(error = %e, "store unavailable while checking a bearer token");
                return (Err(LoginError::Unavailable), none());
            }
        };
        let directory = view.directory.clone();
        if let Some(claimed) = a.claimed_user {
            let owner = &view.principal;
            let matches = claimed == owner.name
                || owner.emails.iter().any(|e| e.eq_ignore_ascii_case(claimed));
            if !matches {
                tracing::info!(user = %owner.name, claimed = %claimed.escape_debug(), "bearer login refused: token belongs to another user");
                return (Err(LoginError::InvalidCredentials), directory);
            }
        }
        (self.current_principal(&view, a.service).await, directory)
    }

    /// The token's principal with the permissions it has now, or why it may not log in.
    async fn current_principal(
        &self,
        view: &SessionView,
        service: Service<'_>,
    ) -> Result<Principal, LoginError> {
        let stored = match self.store.account(&view.principal.name).await {
            Ok(Some(stored)) => stored,
            Ok(None) => return Err(LoginError::InvalidCredentials),
            Err(e) => {
                tracing::warn!(error = %e, "store unavailable while resolving a bearer principal");
                return Err(LoginError::Unavailable);
            }
        };
        let extra = if super::login::is_internal(&view.directory) {
            &[][..]
        } else {
            &view.groups[..]
        };
        // A view this build did not write is refused rather than guessed at.
        let method = Method::parse(&view.mechanism).ok_or(LoginError::InvalidCredentials)?;
        let mut principal = self.evaluate(&stored, extra, &view.directory, method, None)?;
        let recorded = PermSet::from_names(&view.permissions).unwrap_or_default();
        principal.permissions = principal.permissions.intersect(&recorded);
        super::login::require_login_permissions(&principal, service)?;
        principal.emails = view.principal.emails.clone();
        Ok(principal)
    }
}
