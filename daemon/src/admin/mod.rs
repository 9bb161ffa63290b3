//! The management operations: what `/api/v1` and the CLI (`postern principal`, `role`,
//! `api-key`, …) both call, so the two check and write the same way.
//!
//! Each operation takes the [`Actor`] asking, checks the permission the table requires
//! (`individual-create`, `role-update`, …), hides objects outside a tenant administrator's
//! tenant (absent to them: [`AdminError::NotFound`]), refuses to grant more than the actor holds
//! ([`guard`]), then writes through the store's `Tx`, the path `apply` takes, in one
//! transaction, and logs one audit line (who, what, which object; never a secret).

mod audit;
mod credentials;
pub mod guard;
mod objects;
mod principals;
#[cfg(test)]
mod tests;

use postern_directory::secret::Hasher;
use postern_internal::store::{WriteError, MAX_PAGE};
use postern_internal::{Store, StoreError};

use crate::authz::Policy;

pub use credentials::{CredentialCreated, CredentialRequest, CredentialView};
pub use guard::Actor;
pub use objects::WithVersion;
pub use principals::{Explanation, JmapPrincipal, PrincipalQuery};

/// The management operations over one store.
#[derive(Clone)]
pub struct Admin {
    store: Store,
    hasher: Hasher,
}

/// Why an operation was refused. Every refusal wrote nothing.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    /// A permission the actor lacks (named), or a grant beyond what they hold.
    #[error("{0}")]
    Forbidden(String),
    /// Absent, or outside the actor's tenant (which must not tell the two apart).
    #[error("{0} does not exist")]
    NotFound(String),
    /// `If-Match` named a version that is no longer current.
    #[error("{0}")]
    Stale(String),
    #[error("{0} already exists")]
    Exists(String),
    /// A deletion refused while other objects still name the object.
    #[error("{}", .0.join("; "))]
    Referenced(Vec<String>),
    /// The object's own problems or dangling references, each naming its field.
    #[error("{}", .0.join("; "))]
    Invalid(Vec<String>),
    #[error("{0}")]
    BadRequest(String),
    /// The store cannot be reached or is busy; worth retrying.
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// The store holds something this build cannot read.
    #[error("store: {0}")]
    Internal(String),
}

impl From<StoreError> for AdminError {
    fn from(e: StoreError) -> Self {
        if e.is_transient() {
            AdminError::Unavailable(e.to_string())
        } else {
            AdminError::Internal(e.to_string())
        }
    }
}

impl AdminError {
    /// A write's refusal; `deleting`: problems then are objects still naming the deleted one.
    fn from_write(e: WriteError, deleting: bool) -> Self {
        match e {
            WriteError::Invalid(p)
                if deleting && p.iter().all(|x| x.contains("still named by")) =>
            {
                AdminError::Referenced(p)
            }
            WriteError::Invalid(p) => AdminError::Invalid(p),
            WriteError::NotFound(what) => AdminError::NotFound(what),
            WriteError::Exists(what) => AdminError::Exists(what),
            WriteError::Conflict { .. } => AdminError::Stale(e.to_string()),
            WriteError::Store(e) => e.into(),
        }
    }
}

/// A page of a list: `next` is the cursor of the page after it (opaque to clients).
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct Listed<T> {
    pub items: Vec<T>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next: Option<String>,
}

/// A list's window as a client asks for it.
#[derive(Debug, Clone, Default)]
pub struct Window {
    pub limit: Option<u32>,
    pub cursor: Option<String>,
    pub prefix: Option<String>,
}

impl Window {
    fn query(&self) -> Result<postern_internal::store::ListQuery, AdminError> {
        let after = self.cursor.as_deref().map(decode_cursor).transpose()?;
        Ok(postern_internal::store::ListQuery {
            after,
            limit: self.limit.unwrap_or(100).clamp(1, MAX_PAGE),
            prefix: self.prefix.clone().filter(|p| !p.is_empty()),
        })
    }
}

/// Cursors are the last key of a page, base64url, so that a client treats them as opaque.
fn encode_cursor(key: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(key)
}

fn decode_cursor(cursor: &str) -> Result<String, AdminError> {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(cursor)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .ok_or_else(|| AdminError::BadRequest("cursor: not a cursor this server gave".into()))
}

impl Admin {
    pub fn new(store: Store, hasher: Hasher) -> Admin {
        Admin { store, hasher }
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The policy as the store holds it now (not the engine's copy, up to a poll behind):
    /// what a grant is checked against.
    async fn policy(&self) -> Result<Policy, AdminError> {
        let snapshot = self.store.snapshot().await?;
        Policy::compile(&snapshot).map_err(AdminError::Invalid)
    }
}

/// Runs a write up to three times while the store reports it busy (two writers of one row):
/// a retry reads again, so a stale `If-Match` then fails as it should.
macro_rules! retry_busy {
    ($body:expr) => {{
        let mut attempt = 0u32;
        loop {
            match $body {
                Err(AdminError::Unavailable(_)) if attempt < 3 => {
                    attempt += 1;
                    tokio::time::sleep(std::time::Duration::from_millis(10 * u64::from(attempt)))
                        .await;
                }
                other => break other,
            }
        }
    }};
}
pub(crate) use retry_busy;
