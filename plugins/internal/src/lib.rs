//! Postern's internal directory and store.
//!
//! * [`store`]: the SQL store (SQLite or PostgreSQL) and its schema.
//! * [`apply`]: idempotent, transactional provisioning.
//! * [`sessions`]: sessions and credentials (API keys, app passwords).
//! * [`directory`]: the `internal` directory that checks passwords against the store.

pub mod apply;
pub mod directory;
pub mod failures;
pub mod model;
pub mod sessions;
pub mod store;

pub use apply::{ApplyError, ApplyReport};
pub use directory::InternalDirectory;
pub use store::{Backend, Snapshot, Store, StoredAccount};

use sha2::{Digest, Sha256};

/// Errors of the store. Every variant but `Config` and `Corrupt` is transient.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database cannot be reached or timed out: a temporary failure for clients.
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// Another writer got there first (SQLite locked, a unique key taken, a serialization
    /// failure): the same statement is likely to succeed if tried again.
    #[error("store busy: {0}")]
    Busy(String),
    /// The store URL or options are wrong; fix the configuration.
    #[error("store configuration: {0}")]
    Config(String),
    /// A stored body does not parse: written by a newer version, or edited by hand.
    #[error("store data corrupt: {0}")]
    Corrupt(String),
    /// A statement failed for a reason other than connectivity (constraint, syntax).
    #[error("store query failed: {0}")]
    Query(String),
}

impl StoreError {
    pub(crate) fn from_sqlx(e: sqlx::Error) -> Self {
        match e {
            sqlx::Error::Io(_)
            | sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::Tls(_)
            | sqlx::Error::WorkerCrashed => StoreError::Unavailable(e.to_string()),
            sqlx::Error::Configuration(_) => StoreError::Config(e.to_string()),
            sqlx::Error::Database(ref db) => {
                // SQLite "database is locked" and PostgreSQL shutdown/connection classes are
                // transient; everything else is a real query error.
                let code = db.code().map(|c| c.to_string()).unwrap_or_default();
                // SQLite BUSY/LOCKED (and their extended codes), PostgreSQL serialization
                // failure and deadlock, any unique violation.
                let busy = ["5", "6", "517", "262", "40001", "40P01"].contains(&code.as_str())
                    || db.kind() == sqlx::error::ErrorKind::UniqueViolation;
                if busy {
                    StoreError::Busy(e.to_string())
                } else if code.starts_with("57") || code.starts_with("08") {
                    StoreError::Unavailable(e.to_string())
                } else {
                    StoreError::Query(e.to_string())
                }
            }
            other => StoreError::Query(other.to_string()),
        }
    }

    pub fn is_transient(&self) -> bool {
        matches!(self, StoreError::Unavailable(_) | StoreError::Busy(_))
    }
}

/// A new random stable id (128 bits, hex).
pub fn new_id() -> String {
    hex::encode(rand::random::<[u8; 16]>())
}

/// How tokens and generated credentials are stored: SHA-256, hex. They carry 128+ bits of
/// randomness, so a fast hash is enough and lets the store look them up by hash.
pub fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}
