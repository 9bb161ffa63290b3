//! Bearer tokens that are not this daemon's own (sessions, API keys): an external provider's
//! access tokens, checked by the chain's directories that accept bearer credentials (the
//! `oidc` directories). The first that knows the token answers; `Rejected` ends the walk; a
//! directory that cannot answer makes the result a temporary failure when no later one
//! knows the token, exactly as for passwords.

use std::net::IpAddr;
use std::time::Instant;

use postern_directory::{Credential, CredentialKind, DirectoryError, LoginRequest, Outcome};

use super::{Engine, Link, LoginError, Method, Principal};
use crate::authz::Service;

impl Engine {
    /// The principal of a provider token, with the name of the directory that answered
    /// (`"none"` when none did). `claimed` is the user the client named, when it did.
    pub(super) async fn provider_token(
        &self,
        token: &str,
        claimed: Option<&str>,
        service: Service<'_>,
        ip: Option<IpAddr>,
    ) -> (Result<Principal, LoginError>, String) {
        let credential = Credential::bearer(token);
        let request = LoginRequest {
            username: claimed.unwrap_or(""),
            credential: &credential,
            remote_ip: ip,
            service: service.name(),
        };
        let mut outage = false;
        for link in self.directories().iter() {
            let Link::External(d) = link else { continue };
            if !d.accepts(CredentialKind::Bearer) {
                continue;
            }
            let started = Instant::now();
            let answer = d.authenticate(&request).await;
            let label = match &answer {
                Ok(Outcome::Authenticated(_)) => "found",
                Ok(Outcome::UnknownUser) => "unknown",
                Ok(Outcome::Rejected(_)) => "rejected",
                Err(_) => "error",
            };
            self.metrics
                .directory_answer(d.name(), label, started.elapsed().as_secs_f64());
            let name = d.name().to_string();
            match answer {
                Ok(Outcome::Authenticated(identity)) => {
                    let result = self
                        .admit_external(&name, &identity, Method::Oidc, service)
                        .await;
                    return (result, name);
                }
                Ok(Outcome::UnknownUser) => continue,
                Ok(Outcome::Rejected(_)) => return (Err(LoginError::InvalidCredentials), name),
                Err(e) => {
                    match &e {
                        DirectoryError::InvalidData(_) => {
                            tracing::error!(directory = %name, error = %e, "provider token with unusable claims")
                        }
                        _ => tracing::warn!(directory = %name, error = %e, "directory unavailable"),
                    }
                    outage = true;
                }
            }
        }
        let result = if outage {
            Err(LoginError::Unavailable)
        } else {
            Err(LoginError::InvalidCredentials)
        };
        (result, "none".into())
    }

    /// Whether any directory of the chain takes bearer tokens (otherwise nothing to ask).
    pub(super) fn has_bearer_directories(&self) -> bool {
        self.directories().iter().any(|l| match l {
            Link::External(d) => d.accepts(CredentialKind::Bearer),
            Link::Internal(_) => false,
        })
    }
}

impl Engine {
    /// `POST /auth/login` with a provider's token: counted and logged like every login. Only
    /// provider tokens: a Postern session cannot renew itself this way.
    pub async fn login_provider_token(
        &self,
        a: super::bearer::BearerAttempt<'_>,
    ) -> Result<Principal, LoginError> {
        let started = Instant::now();
        let (result, directory) = self
            .provider_token(a.token, a.claimed_user, a.service, a.remote_ip)
            .await;
        self.record(
            &super::login::AuthEvent {
                frontend: a.frontend,
                mechanism: a.mechanism,
                directory: &directory,
                user: result.as_ref().map_or("-", |p| p.name.as_str()),
                service: a.service.name(),
                remote_ip: a.remote_ip,
                started,
            },
            &result,
        );
        result
    }

    /// `GET /auth/session` with a provider's token: its principal as a session view without
    /// expiry or token (the provider's token is never echoed). An unreachable provider is a
    /// temporary failure, like an unreachable store.
    pub(super) async fn provider_token_view(
        &self,
        token: &str,
        ip: Option<IpAddr>,
    ) -> Result<Option<super::SessionView>, postern_internal::StoreError> {
        if !self.has_bearer_directories() {
            return Ok(None);
        }
        match self.provider_token(token, None, Service::HTTP, ip).await.0 {
            Ok(p) => Ok(Some(super::SessionView::of(&p, None))),
            Err(LoginError::Unavailable) => Err(postern_internal::StoreError::Unavailable(
                "the identity provider cannot be reached".into(),
            )),
            Err(_) => Ok(None),
        }
    }
}
