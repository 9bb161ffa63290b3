//! Postern's internal directory and store.
//!
//! * [`model`], [`input`], [`view`]: the directory model as stored, as written, as shown.
//! * [`store`]: the SQL store (SQLite or PostgreSQL), its schema, and the per-object API
//!   (get, list, versioned create/update, delete) that every write goes through.
//! * [`apply`]: idempotent, transactional provisioning, a client of the store's API.
//! * [`directory`]: the `internal` directory that checks passwords against the store.

pub mod apply;
pub mod directory;
pub mod input;
pub mod model;
pub mod store;
pub mod tokens;
pub mod view;

pub use apply::{ApplyError, ApplyReport};
pub use directory::{Checked, InternalDirectory, InternalMatch};
pub use store::{Backend, FailureRow, Snapshot, Store, StoredAccount};
pub use tokens::{new_id, token_hash};

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
