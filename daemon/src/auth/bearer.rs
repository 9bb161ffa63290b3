//! SASL bearer logins (XOAUTH2, OAUTHBEARER) with this daemon's own session tokens and API keys.
//!
//! The token is resolved to its principal as the account is *now*, by the same code as
//! `GET /auth/session` (a permission removed after the session was issued takes effect at
//! once; an API key keeps its scope). The same permissions as a password login are required (`authenticate` plus the service's own), and
//! the attempt is counted and logged like [`Engine::login`].

use std::net::IpAddr;
use std::time::Instant;

use super::{Engine, Frontend, Mechanism, Principal};
use crate::auth::LoginError;
use crate::authz::Service;

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
        self.keep_current().await;
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
        let principal = match self.bearer_principal(a.token, a.remote_ip).await {
            Ok(Some(b)) => b.principal,
            // Not one of ours: an external provider's token, if a directory takes those.
            Ok(None) if self.has_bearer_directories() => {
                match self
                    .provider_token(a.token, a.claimed_user, a.service, a.remote_ip)
                    .await
                {
                    (Ok(p), _) => p,
                    (Err(e), directory) => return (Err(e), directory),
                }
            }
            Ok(None) => return (Err(LoginError::InvalidCredentials), none()),
            Err(e) => {
                tracing::warn!(error = %e, "store unavailable while checking a bearer token");
                return (Err(LoginError::Unavailable), none());
            }
        };
        let directory = principal.directory.clone();
        if let Some(claimed) = a.claimed_user {
            let matches = claimed == principal.name
                || principal
                    .emails
                    .iter()
                    .any(|e| e.eq_ignore_ascii_case(claimed));
            if !matches {
                tracing::info!(user = %principal.name, claimed = %claimed.escape_debug(), "bearer login refused: token belongs to another user");
                return (Err(LoginError::InvalidCredentials), directory);
            }
        }
        let result =
            super::login::require_login_permissions(&principal, a.service).map(|()| principal);
        (result, directory)
    }
}
