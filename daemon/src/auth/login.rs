//! A password login through the directory chain, and turning an identity into a principal.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use postern_directory::{
    validate_username, CredentialKind, DirectoryError, Identity, LoginRequest, Outcome, Secret,
};
use postern_internal::model::{Credential, CredentialType};
use postern_internal::StoredAccount;

use super::{Engine, Frontend, Principal};
use crate::authz::{service_permission, AuthzError, Permission, Scope, Subject};
use crate::metrics::Outcome as MOutcome;

/// What [`Engine::record`] counts and logs about one authentication.
pub(super) struct AuthEvent<'a> {
    pub frontend: Frontend,
    pub mechanism: &'static str,
    pub directory: &'a str,
    pub user: &'a str,
    pub service: &'a str,
    pub remote_ip: Option<IpAddr>,
    pub started: Instant,
}

pub struct PasswordAttempt<'a> {
    pub frontend: Frontend,
    /// SASL mechanism or `password` (metrics label).
    pub mechanism: &'a str,
    pub username: &'a str,
    pub password: Secret,
    /// The service the client named (`smtp`, `imap`, …); `http` for web logins.
    pub service: &'a str,
    pub remote_ip: Option<IpAddr>,
}

/// What a front-end tells its client. Deliberately coarse: every refusal of a guessable cause
/// (unknown user, wrong password, disabled, no permission) is the same `InvalidCredentials`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LoginError {
    #[error("invalid request: {0}")]
    InvalidRequest(String),
    #[error("invalid credentials")]
    InvalidCredentials,
    #[error("too many failed attempts")]
    RateLimited(Duration),
    /// A directory or the store could not answer: retry later.
    #[error("temporarily unavailable")]
    Unavailable,
    /// The account's configuration is broken (a dangling reference); logged with the details.
    #[error("account configuration error")]
    Misconfigured,
}

impl Engine {
    pub async fn login(&self, a: PasswordAttempt<'_>) -> Result<Principal, LoginError> {
        let started = Instant::now();
        let (result, directory) = self.login_inner(&a).await;
        self.record(
            &AuthEvent {
                frontend: a.frontend,
                mechanism: metric_mechanism(a.mechanism),
                directory: &directory,
                user: a.username,
                service: a.service,
                remote_ip: a.remote_ip,
                started,
            },
            &result,
        );
        result
    }

    /// The one place an authentication is counted, timed and logged (one line, no secret).
    pub(super) fn record(&self, e: &AuthEvent<'_>, result: &Result<Principal, LoginError>) {
        let outcome = match result {
            Ok(_) => MOutcome::Success,
            Err(LoginError::RateLimited(_)) => MOutcome::RateLimited,
            Err(LoginError::Unavailable | LoginError::Misconfigured) => MOutcome::TempFailure,
            Err(_) => MOutcome::Failure,
        };
        let elapsed = e.started.elapsed();
        self.metrics.auth(
            e.frontend.as_str(),
            e.mechanism,
            e.directory,
            outcome,
            elapsed.as_secs_f64(),
        );
        tracing::info!(
            target: "postern::auth",
            frontend = e.frontend.as_str(),
            mechanism = e.mechanism,
            directory = %e.directory,
            outcome = outcome.as_str(),
            user = %e.user.escape_debug(),
            // The bare address, or no field at all when the front-end has none (unix sockets).
            client = e.remote_ip.map(tracing::field::display),
            service = %e.service.escape_debug(),
            ms = elapsed.as_millis() as u64,
            "authentication"
        );
    }

    async fn login_inner(
        &self,
        a: &PasswordAttempt<'_>,
    ) -> (Result<Principal, LoginError>, String) {
        let none = || "none".to_string();
        if let Err(e) = validate_username(a.username) {
            return (Err(LoginError::InvalidRequest(e.to_string())), none());
        }
        let password = a.password.expose();
        if password.is_empty() {
            return (
                Err(LoginError::InvalidRequest("empty password".into())),
                none(),
            );
        }
        if password.len() > postern_directory::MAX_SECRET_LEN || password.contains('\0') {
            return (
                Err(LoginError::InvalidRequest("invalid password".into())),
                none(),
            );
        }
        if let Err(wait) = self.throttle.check(a.username, a.remote_ip) {
            return (Err(LoginError::RateLimited(wait)), none());
        }
        let request = LoginRequest {
            username: a.username,
            secret: &a.password,
            remote_ip: a.remote_ip,
            service: a.service,
        };
        let mut outage = false;
        for d in self.directories().iter() {
            let started = Instant::now();
            let answer = d.authenticate(&request).await;
            let label = match &answer {
                Ok(Outcome::Authenticated(_)) => "found",
                Ok(Outcome::UnknownUser) => "unknown",
                Ok(Outcome::Rejected(_)) => "rejected",
                Err(_) => "error",
            };
            self.metrics
                .directory_requests
                .with_label_values(&[d.name(), label])
                .inc();
            self.metrics
                .directory_duration
                .with_label_values(&[d.name()])
                .observe(started.elapsed().as_secs_f64());
            match answer {
                Ok(Outcome::Authenticated(identity)) => {
                    let result = self.principal_for(&identity, d.name(), a).await;
                    match &result {
                        Ok(_) => self.throttle.succeeded(a.username),
                        Err(LoginError::InvalidCredentials) => {
                            self.throttle.failed(a.username, a.remote_ip)
                        }
                        Err(_) => {}
                    }
                    return (result, d.name().to_string());
                }
                Ok(Outcome::UnknownUser) => continue,
                Ok(Outcome::Rejected(reason)) => {
                    tracing::debug!(directory = d.name(), ?reason, "rejected");
                    self.throttle.failed(a.username, a.remote_ip);
                    return (Err(LoginError::InvalidCredentials), d.name().to_string());
                }
                Err(e) => {
                    // Not a "no": a later directory may still know the user, but if none does
                    // the answer is a temporary failure, never "wrong password".
                    match &e {
                        DirectoryError::Unavailable(_) => {
                            tracing::warn!(directory = d.name(), error = %e, "directory unavailable")
                        }
                        DirectoryError::InvalidData(_) => {
                            tracing::error!(directory = d.name(), error = %e, "directory returned invalid data")
                        }
                    }
                    outage = true;
                }
            }
        }
        if outage {
            return (Err(LoginError::Unavailable), none());
        }
        self.throttle.failed(a.username, a.remote_ip);
        (Err(LoginError::InvalidCredentials), none())
    }

    /// Resolves an authenticated identity into a principal: its record in the store, its
    /// effective permissions, the credential's scope, and the front-end's required permissions.
    async fn principal_for(
        &self,
        identity: &Identity,
        directory: &str,
        a: &PasswordAttempt<'_>,
    ) -> Result<Principal, LoginError> {
        let stored = self.account_record(identity, directory).await?;
        let (mechanism, scope) = match &identity.credential {
            CredentialKind::Password => ("password".to_string(), None),
            CredentialKind::AppPassword(id) => {
                let cred = self
                    .store
                    .credential(CredentialType::AppPassword, id)
                    .await
                    .map_err(|_| LoginError::Unavailable)?
                    .ok_or(LoginError::InvalidCredentials)?;
                self.check_credential(&cred, a.remote_ip)?;
                ("app-password".to_string(), Some(cred))
            }
        };
        // An external principal's groups were just stored with its record (`directoryGroups`).
        let mut principal = self.evaluate(&stored, &[], directory, &mechanism, scope.as_ref())?;
        principal.emails = identity.emails.clone();
        require_login_permissions(&principal, a.service)?;
        Ok(principal)
    }

    async fn account_record(
        &self,
        identity: &Identity,
        directory: &str,
    ) -> Result<StoredAccount, LoginError> {
        let result = if directory == "internal" {
            self.store
                .account(&identity.name)
                .await
                .map(|a| a.ok_or(LoginError::InvalidCredentials))
        } else {
            self.store
                .record_external(
                    directory,
                    &identity.name,
                    identity.description.as_deref(),
                    &identity.emails,
                    &identity.groups,
                )
                .await
                .map(Ok)
        };
        result.map_err(|e| {
            tracing::warn!(error = %e, "store unavailable while resolving a principal");
            LoginError::Unavailable
        })?
    }

    /// Expiry and source address of an app password or API key.
    pub(super) fn check_credential(
        &self,
        cred: &Credential,
        ip: Option<IpAddr>,
    ) -> Result<(), LoginError> {
        if let Some(expires) = &cred.expires_at {
            match super::clock::parse_rfc3339(expires) {
                Ok(t) if t > self.clock.unix() => {}
                _ => return Err(LoginError::InvalidCredentials),
            }
        }
        if !cred.allowed_ips.is_empty() {
            let allowed = ip.is_some_and(|ip| {
                cred.allowed_ips
                    .iter()
                    .any(|net| parse_network(net).is_some_and(|n| n.contains(&ip)))
            });
            if !allowed {
                return Err(LoginError::InvalidCredentials);
            }
        }
        Ok(())
    }

    /// Effective permissions of a stored account (rules 1–6).
    pub fn evaluate(
        &self,
        stored: &StoredAccount,
        extra_groups: &[String],
        directory: &str,
        mechanism: &str,
        credential: Option<&Credential>,
    ) -> Result<Principal, LoginError> {
        let misconfigured = |e: AuthzError| {
            tracing::error!(account = %stored.account.name, error = %e, "login failed closed: dangling reference");
            LoginError::Misconfigured
        };
        let subject =
            Subject::from_account(&stored.account, extra_groups).map_err(misconfigured)?;
        let grant = self.policy().evaluate(&subject).map_err(misconfigured)?;
        let mut permissions = grant.effective;
        if let Some(cred) = credential {
            let scope = Scope::compile(&cred.permissions).map_err(|names| {
                misconfigured(AuthzError::UnknownPermission {
                    object: format!("credential {:?}", cred.id),
                    names,
                })
            })?;
            permissions = scope.apply(&permissions);
        }
        Ok(Principal {
            id: stored.id.clone(),
            name: stored.account.name.clone(),
            kind: postern_directory::PrincipalType::Individual,
            tenant: stored.account.tenant.clone(),
            emails: stored.account.emails.clone(),
            roles: grant.roles.into_iter().collect(),
            groups: grant.groups.into_iter().collect(),
            permissions,
            directory: directory.to_string(),
            mechanism: mechanism.to_string(),
        })
    }
}

/// Every front-end requires `authenticate`, plus the permission of the service the client
/// named (`email-send` for SMTP, …). A refusal looks like a wrong password from outside.
pub(super) fn require_login_permissions(p: &Principal, service: &str) -> Result<(), LoginError> {
    let mut required = vec![Permission::known("authenticate")];
    required.extend(service_permission(service));
    if let Some(missing) = required.iter().find(|r| !p.permissions.contains(**r)) {
        tracing::info!(user = %p.name, permission = missing.name(), "login refused: permission not granted");
        return Err(LoginError::InvalidCredentials);
    }
    Ok(())
}

/// An `allowedIps` entry: a network (`192.0.2.0/24`) or a single address.
pub fn parse_network(text: &str) -> Option<ipnet::IpNet> {
    text.parse::<ipnet::IpNet>()
        .ok()
        .or_else(|| text.parse::<IpAddr>().ok().map(ipnet::IpNet::from))
}

/// Metrics labels come from a closed set, whatever a client sends.
pub(super) fn metric_mechanism(m: &str) -> &'static str {
    match m.to_ascii_lowercase().as_str() {
        "plain" => "plain",
        "login" => "login",
        "xoauth2" => "xoauth2",
        "oauthbearer" => "oauthbearer",
        "password" => "password",
        "basic" => "basic",
        _ => "other",
    }
}
