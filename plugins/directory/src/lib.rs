//! The contract between Postern's engine and its directories.
//!
//! A directory answers one question — "is this secret right for this user, and who are they?" —
//! with one of three answers that the chain in `[authentication] directories` treats differently:
//!
//! * [`Outcome::UnknownUser`]: not mine; the next directory may try.
//! * [`Outcome::Rejected`]: mine, and the answer is no (wrong password, disabled account). The chain
//!   stops here: a later directory must not be able to accept a user an earlier one refused.
//! * `Err(DirectoryError)`: the directory could not answer (backend down, timeout). This is a
//!   temporary failure, never a wrong password.
//!
//! Roles, tenants and permissions are not a directory's business: directories supply identity,
//! secret checks and group names; the engine assigns the rest from the internal store.

use std::net::IpAddr;

use async_trait::async_trait;
use zeroize::Zeroizing;

pub mod config;
pub mod generations;
pub mod secret;
pub mod token_cache;

pub use config::{read_secret_file, ConfigProblem};

/// Longest user name any front-end passes to a directory. Longer names are refused before any
/// lookup: no real account needs more, and it bounds the work an attacker can cause.
pub const MAX_USERNAME_LEN: usize = 256;
/// Longest password (or token) accepted. Argon2 and friends hash any length, but a megabyte
/// password is only ever an attack on CPU time.
pub const MAX_SECRET_LEN: usize = 4096;

/// What a client presented. A directory says which kinds it can check
/// ([`Directory::accepts`]); the chain passes each attempt only to those.
pub enum Credential {
    /// A password (or app password) to verify.
    Password(Zeroizing<String>),
    /// A bearer token (XOAUTH2, OAUTHBEARER, `Authorization: Bearer`) to validate.
    Bearer(Zeroizing<String>),
}

/// The kinds of [`Credential`]. An identity already proven elsewhere (an OIDC callback)
/// reaches the engine without a directory check, so it is not one of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CredentialKind {
    Password,
    Bearer,
}

impl Credential {
    pub fn password(text: impl Into<String>) -> Self {
        Credential::Password(Zeroizing::new(text.into()))
    }

    pub fn bearer(token: impl Into<String>) -> Self {
        Credential::Bearer(Zeroizing::new(token.into()))
    }

    pub fn kind(&self) -> CredentialKind {
        match self {
            Credential::Password(_) => CredentialKind::Password,
            Credential::Bearer(_) => CredentialKind::Bearer,
        }
    }

    /// The text presented, whatever its kind.
    pub fn expose(&self) -> &str {
        match self {
            Credential::Password(p) | Credential::Bearer(p) => p.as_str(),
        }
    }

    /// The password, when this is one.
    pub fn as_password(&self) -> Option<&str> {
        match self {
            Credential::Password(p) => Some(p.as_str()),
            Credential::Bearer(_) => None,
        }
    }
}

impl std::fmt::Debug for Credential {
    // Secrets never reach a log line, even through `{:?}`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Credential::{:?}(<redacted>)", self.kind())
    }
}

/// One login attempt, as the chain hands it to each directory in turn.
#[derive(Debug)]
pub struct LoginRequest<'a> {
    /// Already checked against [`validate_username`].
    pub username: &'a str,
    pub credential: &'a Credential,
    pub remote_ip: Option<IpAddr>,
    /// The service the client named (`smtp`, `imap`, `http`, …).
    pub service: &'a str,
}

/// Principal types of the directory model (SPEC §4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PrincipalType {
    Individual,
    Group,
    Tenant,
    Role,
    Resource,
    Location,
    Other,
}

impl PrincipalType {
    pub fn as_str(self) -> &'static str {
        match self {
            PrincipalType::Individual => "individual",
            PrincipalType::Group => "group",
            PrincipalType::Tenant => "tenant",
            PrincipalType::Role => "role",
            PrincipalType::Resource => "resource",
            PrincipalType::Location => "location",
            PrincipalType::Other => "other",
        }
    }
}

/// What the presented credential matched; a credential with its own scope narrows the
/// account's permissions (SPEC §4 rule 6).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Matched {
    /// The account's own password.
    Password,
    /// An app password of the account, by id.
    AppPassword(String),
    /// A bearer token the directory validated.
    Token,
}

/// Who a directory says the user is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// Canonical name; what `OK user=` and the session carry.
    pub name: String,
    pub kind: PrincipalType,
    pub description: Option<String>,
    pub emails: Vec<String>,
    /// Group names as the directory reports them (matched to internal groups by name).
    pub groups: Vec<String>,
    pub matched: Matched,
    /// The principal's stable id at a directory whose names can be reused (OIDC: the `sub`
    /// of the directory's one issuer). The record made at the first login is bound to it, so
    /// a later person given the same name is not that principal.
    pub subject: Option<String>,
}

/// Why a directory that knows the user said no. Never shown to the client: every rejection
/// looks the same from outside, so that nothing can be learnt about accounts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RejectReason {
    WrongSecret,
    Disabled,
    /// The stored hash is in a scheme we cannot verify; logged as a data error.
    UnverifiableSecret,
    /// A group, or another principal that may not log in.
    NotLoginable,
}

#[derive(Debug)]
pub enum Outcome {
    Authenticated(Identity),
    UnknownUser,
    Rejected(RejectReason),
}

/// A directory that could not answer. Every variant is a temporary failure for the client.
#[derive(Debug, thiserror::Error)]
pub enum DirectoryError {
    /// Backend unreachable, timed out or refusing: retry later.
    #[error("directory unavailable: {0}")]
    Unavailable(String),
    /// The directory answered with something this plugin cannot use (bad column type, an entry
    /// without the name attribute). Needs an operator, so it is logged as an error.
    #[error("invalid data from directory: {0}")]
    InvalidData(String),
    /// The daemon refused the work to stay responsive (the hash queue is full, in total or for
    /// this client's address). Unlike an outage it ends the chain: otherwise flooding one
    /// directory would hand a user's login to the next one, which may hold another account of
    /// the same name.
    #[error("overloaded: {0}")]
    Overloaded(String),
}

#[async_trait]
pub trait Directory: Send + Sync {
    /// The name it has in `[authentication] directories`.
    fn name(&self) -> &str;

    /// Whether this directory can check a credential of this kind; the chain skips it for
    /// the others. Most directories check passwords only.
    fn accepts(&self, kind: CredentialKind) -> bool {
        kind == CredentialKind::Password
    }

    /// Checks a credential of a kind it [accepts](Directory::accepts). See the crate docs for
    /// what each answer means to the chain.
    async fn authenticate(&self, request: &LoginRequest<'_>) -> Result<Outcome, DirectoryError>;

    /// Finds a principal without a secret (bearer tokens, refreshes, `explain`).
    async fn lookup(&self, name: &str) -> Result<Option<Identity>, DirectoryError>;

    /// Readiness: `Ok` when the backend can be reached now.
    async fn health(&self) -> Result<(), DirectoryError>;

    /// Use of the directory's connection pools, exported as
    /// `postern_directory_pool_connections`; empty for a directory without one.
    fn pools(&self) -> Vec<PoolStats> {
        Vec::new()
    }

    /// Hits and misses of the directory's cache of verified bearer tokens, exported as
    /// `postern_token_cache_requests_total`; `None` for a directory without one.
    fn token_cache_stats(&self) -> Option<token_cache::TokenCacheStats> {
        None
    }
}

/// A snapshot of one connection pool: a pool always busy is a directory too slow or too small.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolStats {
    /// Which of the directory's pools (`store`, `service`, `auth`, …).
    pub pool: &'static str,
    pub in_use: usize,
    pub idle: usize,
}

/// Why a user name was refused before any directory saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum UsernameError {
    #[error("user name is empty")]
    Empty,
    #[error("user name is longer than {MAX_USERNAME_LEN} bytes")]
    TooLong,
    #[error("user name contains a control character")]
    ControlCharacter,
}

/// Syntactic check every front-end applies before the chain: no directory ever sees an empty,
/// overlong or control-character name (NUL in particular truncates strings in C backends).
pub fn validate_username(name: &str) -> Result<(), UsernameError> {
    if name.is_empty() {
        return Err(UsernameError::Empty);
    }
    if name.len() > MAX_USERNAME_LEN {
        return Err(UsernameError::TooLong);
    }
    if name.chars().any(char::is_control) {
        return Err(UsernameError::ControlCharacter);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames() {
        assert_eq!(validate_username(""), Err(UsernameError::Empty));
        assert_eq!(
            validate_username("a\0b"),
            Err(UsernameError::ControlCharacter)
        );
        assert_eq!(
            validate_username("a\tb"),
            Err(UsernameError::ControlCharacter)
        );
        assert_eq!(
            validate_username(&"x".repeat(10_000)),
            Err(UsernameError::TooLong)
        );
        assert!(validate_username("alice@example.org").is_ok());
        assert!(validate_username("jürgen").is_ok());
    }

    #[test]
    fn credential_debug_is_redacted() {
        let s = Credential::password("hunter2");
        assert!(!format!("{s:?}").contains("hunter2"));
        assert!(!format!("{:?}", Credential::bearer("tok")).contains("tok"));
    }
}
