//! Logins: a password through the directory chain, or an identity another party already proved
//! (an OIDC callback, a validated token). Both end in the same place: the principal recorded,
//! its permissions computed, the attempt counted and logged once.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use postern_directory::{
    validate_username, Credential, DirectoryError, Identity, LoginRequest, Matched, Outcome,
    RejectReason,
};
use postern_internal::model::{Credential as StoredCredential, Origin};
use postern_internal::{Checked, InternalMatch, StoredAccount};

use super::throttle::Refusal;
use super::{Engine, Frontend, Link, Mechanism, Method, Principal};
use crate::authz::{AuthzError, Permission, Scope, Service, Subject};
use crate::metrics::Outcome as MOutcome;

/// What [`Engine::record`] counts and logs about one authentication.
pub(super) struct AuthEvent<'a> {
    pub frontend: Frontend,
    pub mechanism: Mechanism,
    pub directory: &'a str,
    pub user: &'a str,
    pub service: &'a str,
    pub remote_ip: Option<IpAddr>,
    pub started: Instant,
}

pub struct PasswordAttempt<'a> {
    pub frontend: Frontend,
    pub mechanism: Mechanism,
    pub username: &'a str,
    pub password: Credential,
    /// The service the client named, resolved by the front-end.
    pub service: Service<'a>,
    pub remote_ip: Option<IpAddr>,
}

/// A login whose identity was proven outside the chain: the OIDC callback of a directory, or a
/// token its provider signed. The principal is recorded and given its session exactly as a
/// password login's.
pub struct ProvenLogin<'a> {
    pub frontend: Frontend,
    pub mechanism: Mechanism,
    /// The directory that vouches for the identity (its name in the configuration).
    pub directory: &'a str,
    pub identity: &'a Identity,
    pub service: Service<'a>,
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

/// A directory's answer, with the internal directory's records kept.
enum Found {
    Internal(InternalMatch),
    External(Identity),
    Unknown,
    /// With the canonical name when the directory told it.
    Rejected(RejectReason, Option<String>),
}

impl Engine {
    pub async fn login(&self, a: PasswordAttempt<'_>) -> Result<Principal, LoginError> {
        let started = Instant::now();
        self.keep_current().await;
        // Boxed: inline, its state (824 bytes in a release build) made a dovecot-auth
        // verification's future 1,432 bytes, past what glibc serves from its per-thread cache
        // (1,032), and a malloc that large merges the arena's fast bins first, which every
        // small allocation after it pays for. Two allocations of the cache's sizes cost less.
        // (README, "Benchmarks of this work"; sizes by `-Zprint-type-sizes`.)
        let (result, directory) = Box::pin(self.login_inner(&a)).await;
        self.record(
            &AuthEvent {
                frontend: a.frontend,
                mechanism: a.mechanism,
                directory: directory.as_ref().map_or("none", Link::name),
                user: a.username,
                service: a.service.name(),
                remote_ip: a.remote_ip,
                started,
            },
            &result,
        );
        result
    }

    pub async fn login_proven(&self, p: ProvenLogin<'_>) -> Result<Principal, LoginError> {
        let started = Instant::now();
        self.keep_current().await;
        let result = self
            .admit_external(p.directory, p.identity, Method::Oidc, p.service)
            .await;
        self.record(
            &AuthEvent {
                frontend: p.frontend,
                mechanism: p.mechanism,
                directory: p.directory,
                user: &p.identity.name,
                service: p.service.name(),
                remote_ip: p.remote_ip,
                started,
            },
            &result,
        );
        result
    }

    /// An attempt a front-end refused before the engine saw a credential (a malformed SASL
    /// exchange): counted and logged like every other.
    pub fn refused(
        &self,
        frontend: Frontend,
        mechanism: Mechanism,
        user: Option<&str>,
        reason: &str,
    ) {
        self.record(
            &AuthEvent {
                frontend,
                mechanism,
                directory: "none",
                user: user.unwrap_or("-"),
                service: "-",
                remote_ip: None,
                started: Instant::now(),
            },
            &Err(LoginError::InvalidRequest(reason.to_string())),
        );
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
            e.mechanism.as_str(),
            e.directory,
            outcome,
            elapsed.as_secs_f64(),
        );
        tracing::info!(
            target: "postern::auth",
            frontend = e.frontend.as_str(),
            mechanism = e.mechanism.as_str(),
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

    /// Syntax first: no directory sees an empty, overlong or NUL-bearing name or password.
    fn check_syntax(a: &PasswordAttempt<'_>) -> Result<(), LoginError> {
        validate_username(a.username).map_err(|e| LoginError::InvalidRequest(e.to_string()))?;
        let password = a.password.expose();
        if password.is_empty() {
            return Err(LoginError::InvalidRequest("empty password".into()));
        }
        if password.len() > postern_directory::MAX_SECRET_LEN || password.contains('\0') {
            return Err(LoginError::InvalidRequest("invalid password".into()));
        }
        Ok(())
    }

    async fn login_inner(
        &self,
        a: &PasswordAttempt<'_>,
    ) -> (Result<Principal, LoginError>, Option<Link>) {
        // The directory that answered, for the log line: a reference count, not a copy of its
        // name per attempt.
        let none = || None;
        if let Err(e) = Self::check_syntax(a) {
            return (Err(e), none());
        }
        // Reserved before any hashing, counted as a failure until known otherwise: concurrent
        // guesses cannot all pass a check made before the first of them failed.
        let reservation = match self.throttle.reserve(a.username, a.remote_ip).await {
            Ok(r) => r,
            Err(Refusal::Locked(wait)) => return (Err(LoginError::RateLimited(wait)), none()),
            // Attempts in flight on this account held it for the whole wait: not failures,
            // so not "too many failed attempts".
            Err(Refusal::Busy) => return (Err(LoginError::Unavailable), none()),
        };
        let request = LoginRequest {
            username: a.username,
            credential: &a.password,
            remote_ip: a.remote_ip,
            service: a.service.name(),
        };
        let mut outage = false;
        for link in self.directories().iter() {
            if let Link::External(d) = link {
                if !d.accepts(a.password.kind()) {
                    continue;
                }
            }
            let answer = self.ask(link, &request).await;
            let name = link.name();
            let result = match answer {
                Ok(Found::Internal(m)) => self.admit_internal(m, a.remote_ip, a.service),
                // Boxed: recording the principal is a store transaction, whose future
                // would otherwise make every login's future several KiB, too big for the
                // allocator's per-thread cache (README, "Benchmarks of this work").
                Ok(Found::External(identity)) => {
                    Box::pin(self.admit_external(name, &identity, Method::Password, a.service))
                        .await
                }
                Ok(Found::Unknown) => continue,
                Ok(Found::Rejected(reason, canonical)) => {
                    tracing::debug!(directory = name, ?reason, "rejected");
                    match canonical {
                        Some(c) => reservation.failed_as(&c),
                        None => reservation.failed(),
                    }
                    return (Err(LoginError::InvalidCredentials), Some(link.clone()));
                }
                Err(DirectoryError::Overloaded(e)) => {
                    // Refused to stay responsive: a temporary failure here, never a reason to
                    // let the next directory decide. Counted in
                    // postern_password_hash_rejected_total; logged at debug, as a flood would
                    // otherwise write a line per attempt.
                    tracing::debug!(directory = name, error = %e, "login refused: overloaded");
                    reservation.release();
                    return (Err(LoginError::Unavailable), Some(link.clone()));
                }
                Err(e) => {
                    // Not a "no": a later directory may still know the user, but if none does
                    // the answer is a temporary failure, never "wrong password".
                    match &e {
                        DirectoryError::InvalidData(_) => {
                            tracing::error!(directory = name, error = %e, "directory returned invalid data")
                        }
                        _ => tracing::warn!(directory = name, error = %e, "directory unavailable"),
                    }
                    outage = true;
                    continue;
                }
            };
            match &result {
                Ok(p) => reservation.succeeded(&p.name),
                Err(LoginError::InvalidCredentials) => reservation.failed(),
                // Not the client's doing (an outage, a broken account): released.
                Err(_) => reservation.release(),
            }
            return (result, Some(link.clone()));
        }
        if outage {
            reservation.release();
            return (Err(LoginError::Unavailable), none());
        }
        reservation.failed();
        (Err(LoginError::InvalidCredentials), none())
    }

    /// One directory's answer, counted and timed under its name.
    async fn ask(&self, link: &Link, request: &LoginRequest<'_>) -> Result<Found, DirectoryError> {
        let started = Instant::now();
        let answer = match link {
            Link::Internal(d) => d.check(request).await.map(|c| match c {
                Checked::Matched(m) => Found::Internal(m),
                Checked::UnknownUser => Found::Unknown,
                Checked::Rejected(r, canonical) => Found::Rejected(r, Some(canonical)),
            }),
            Link::External(d) => d.authenticate(request).await.map(|o| match o {
                Outcome::Authenticated(i) => Found::External(i),
                Outcome::UnknownUser => Found::Unknown,
                Outcome::Rejected(r) => Found::Rejected(r, None),
            }),
        };
        let label = match &answer {
            Ok(Found::Internal(_) | Found::External(_)) => "found",
            Ok(Found::Unknown) => "unknown",
            Ok(Found::Rejected(..)) => "rejected",
            Err(_) => "error",
        };
        self.metrics
            .directory_answer(link.name(), label, started.elapsed().as_secs_f64());
        answer
    }

    /// An internal account the directory matched: its record is the one it read.
    fn admit_internal(
        &self,
        m: InternalMatch,
        ip: Option<IpAddr>,
        service: Service<'_>,
    ) -> Result<Principal, LoginError> {
        let (stored, method, scope) = match m {
            InternalMatch::Password(a) => (a, Method::Password, None),
            InternalMatch::AppPassword(a, cred) => {
                self.check_credential(&cred, ip)?;
                (a, Method::AppPassword, Some(cred))
            }
        };
        let principal = self.evaluate(
            &stored,
            &[],
            Origin::Internal.as_str(),
            method,
            scope.as_deref(),
        )?;
        require_login_permissions(&principal, service)?;
        Ok(principal)
    }

    /// A principal an external directory or provider vouches for: recorded in the store (its
    /// stable id, its directory groups), then evaluated like any other.
    pub(super) async fn admit_external(
        &self,
        directory: &str,
        identity: &Identity,
        method: Method,
        service: Service<'_>,
    ) -> Result<Principal, LoginError> {
        if let Matched::AppPassword(_) = identity.matched {
            // App passwords are the internal store's; an external directory cannot vouch
            // for one.
            tracing::error!(
                directory,
                "an external directory answered with an app password"
            );
            return Err(LoginError::Misconfigured);
        }
        let stored = self
            .store
            .record_external(
                directory,
                &identity.name,
                identity.description.as_deref(),
                &identity.emails,
                &identity.groups,
                identity.subject.as_deref(),
            )
            .await
            .map_err(|e| {
                tracing::warn!(error = %e, "store unavailable while recording a principal");
                LoginError::Unavailable
            })?;
        // A provider vouches for its own people only: a name it gives that belongs to an
        // internal account or another directory's principal is not that principal.
        if method == Method::Oidc && stored.origin.as_str() != directory {
            tracing::warn!(directory, user = %identity.name.escape_debug(), owner = %stored.origin, "login refused: the name belongs to another directory's principal");
            return Err(LoginError::InvalidCredentials);
        }
        // A name the provider gave to someone else before: the record is the first one's.
        if identity.subject.is_some() && stored.account.subject != identity.subject {
            tracing::warn!(directory, user = %identity.name.escape_debug(), "login refused: the name was recorded for another subject of this directory");
            return Err(LoginError::InvalidCredentials);
        }
        // Its groups were just stored with its record (`directoryGroups`).
        let mut principal = self.evaluate(&stored, &[], directory, method, None)?;
        principal.emails = identity.emails.clone();
        require_login_permissions(&principal, service)?;
        Ok(principal)
    }

    /// Expiry and source address of an app password or API key.
    pub(super) fn check_credential(
        &self,
        cred: &StoredCredential,
        ip: Option<IpAddr>,
    ) -> Result<(), LoginError> {
        if let Some(expires) = &cred.expires_at {
            match super::clock::parse_rfc3339(expires) {
                Ok(t) if t > self.clock.unix() => {}
                _ => {
                    tracing::info!(credential = %cred.id, account = %cred.account, "credential refused: expired");
                    return Err(LoginError::InvalidCredentials);
                }
            }
        }
        if !cred.allowed_ips.is_empty() {
            let allowed = ip.is_some_and(|ip| {
                cred.allowed_ips
                    .iter()
                    .any(|net| parse_network(net).is_some_and(|n| n.contains(&ip)))
            });
            if !allowed {
                // The address is the client's own: said in the log, never in a metric label.
                tracing::info!(credential = %cred.id, account = %cred.account, client = ?ip, "credential refused: used from outside its allowedIps");
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
        method: Method,
        credential: Option<&StoredCredential>,
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
            method,
        })
    }
}

/// Whether an account is the store's own or an external directory's, from a session's
/// recorded `directory`.
pub(super) fn is_internal(directory: &str) -> bool {
    Origin::from_column(directory.to_string()) == Origin::Internal
}

/// Every front-end requires `authenticate`, plus the permission of the service the client
/// named (`email-send` for SMTP, …). A refusal looks like a wrong password from outside.
pub(super) fn require_login_permissions(
    p: &Principal,
    service: Service<'_>,
) -> Result<(), LoginError> {
    let required = [Some(Permission::known("authenticate")), service.requires()];
    if let Some(missing) = required
        .iter()
        .flatten()
        .find(|r| !p.permissions.contains(**r))
    {
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
