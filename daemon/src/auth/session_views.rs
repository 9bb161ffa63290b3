//! The answers of `GET /auth/session` kept for the next request with the same token: a session
//! view is a function of the session record, the account and the policy, so while none of
//! them changed (the store's record cache was not flushed since, the policy is the same
//! generation) and the session has not expired, the view computed last time is the answer,
//! without parsing the stored body or evaluating permissions again.
//!
//! Keyed by the token's SHA-256 (what the store keys sessions by), never the token. Used only
//! while the store's record cache is: on PostgreSQL only while its change notifications arrive.
//! Bounded: two generations of [`CAPACITY`] views at most.

use std::sync::Arc;

use postern_directory::generations::Generations;

use super::SessionView;

const CAPACITY: usize = 8192;

#[derive(Clone)]
struct Entry {
    /// Without its token (put back per request). Shared, not cloned, per hit: a deep clone
    /// of a view (a string per permission name) was 40% of a cached request's instructions.
    view: Arc<SessionView>,
    /// The same rendered as JSON, without its token: `GET /auth/session` answers with it.
    json: Arc<str>,
    /// What the view was computed under.
    basis: Basis,
}

/// Keyed by the token's hash, served until the session expires (unix seconds) while the
/// basis is the same.
pub(super) struct SessionViews(Generations<String, Entry, i64>);

impl Default for SessionViews {
    fn default() -> Self {
        SessionViews(Generations::new(CAPACITY))
    }
}

/// What a view was computed under: the store's cache epoch and the policy's generation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Basis {
    pub epoch: u64,
    pub generation: i64,
}

impl SessionViews {
    /// The view computed for `hash` under `basis`, if the session is still live at `now`.
    pub(super) fn get(
        &self,
        hash: &str,
        basis: Basis,
        now: i64,
    ) -> Option<(Arc<SessionView>, Arc<str>)> {
        self.0
            .get_if(hash, now, |e| e.basis == basis)
            .map(|e| (e.view, e.json))
    }

    /// Hits and misses since start.
    pub(super) fn stats(&self) -> (u64, u64) {
        self.0.counts()
    }

    pub(super) fn put(&self, hash: &str, view: &SessionView, expires_at: i64, basis: Basis) {
        let view = SessionView {
            token: None,
            ..view.clone()
        };
        let Ok(json) = serde_json::to_string(&view) else {
            return;
        };
        let entry = Entry {
            view: Arc::new(view),
            json: json.into(),
            basis,
        };
        self.0.insert(hash.to_string(), entry, expires_at);
    }
}
