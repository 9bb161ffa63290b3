//! The answers of `GET /auth/session` kept for the next request with the same token: a session
//! view is a function of the session record, the account and the policy, so while none of
//! them changed (the store's record cache was not flushed since, the policy is the same
//! generation) and the session has not expired, the view computed last time is the answer,
//! without parsing the stored body or evaluating permissions again.
//!
//! Keyed by the token's SHA-256 (what the store keys sessions by), never the token. Used only
//! while the store's record cache is: on PostgreSQL only while its change notifications arrive.
//! Bounded: two generations of [`CAPACITY`] views at most.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use super::SessionView;

const CAPACITY: usize = 8192;

struct Entry {
    /// Without its token (put back per request). Shared, not cloned, per hit: a deep clone
    /// of a view (a string per permission name) was 40% of a cached request's instructions.
    view: Arc<SessionView>,
    /// The same rendered as JSON, without its token: `GET /auth/session` answers with it.
    json: Arc<str>,
    /// Unix seconds.
    expires_at: i64,
    /// The store's cache epoch and the policy's generation the view was computed under.
    epoch: u64,
    generation: i64,
}

#[derive(Default)]
pub(super) struct SessionViews {
    maps: Mutex<(HashMap<String, Entry>, HashMap<String, Entry>)>,
    hits: AtomicU64,
    misses: AtomicU64,
}

/// What a view was computed under.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Basis {
    pub epoch: u64,
    pub generation: i64,
}

impl SessionViews {
    fn lock(&self) -> std::sync::MutexGuard<'_, (HashMap<String, Entry>, HashMap<String, Entry>)> {
        self.maps
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The view computed for `hash` under `basis`, if the session is still live at `now`.
    pub(super) fn get(
        &self,
        hash: &str,
        basis: Basis,
        now: i64,
    ) -> Option<(Arc<SessionView>, Arc<str>)> {
        let found = self.find(hash, basis, now);
        let counter = if found.is_some() {
            &self.hits
        } else {
            &self.misses
        };
        counter.fetch_add(1, Ordering::Relaxed);
        found
    }

    /// Hits and misses since start.
    pub(super) fn stats(&self) -> (u64, u64) {
        (
            self.hits.load(Ordering::Relaxed),
            self.misses.load(Ordering::Relaxed),
        )
    }

    fn find(&self, hash: &str, basis: Basis, now: i64) -> Option<(Arc<SessionView>, Arc<str>)> {
        let mut maps = self.lock();
        let fresh = |e: &Entry| {
            e.epoch == basis.epoch && e.generation == basis.generation && e.expires_at > now
        };
        if let Some(e) = maps.0.get(hash) {
            return fresh(e).then(|| (e.view.clone(), e.json.clone()));
        }
        let e = maps.1.remove(hash)?;
        if !fresh(&e) {
            return None;
        }
        let found = (e.view.clone(), e.json.clone());
        Self::insert(&mut maps, hash.to_string(), e);
        Some(found)
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
            expires_at,
            epoch: basis.epoch,
            generation: basis.generation,
        };
        Self::insert(&mut self.lock(), hash.to_string(), entry);
    }

    fn insert(maps: &mut (HashMap<String, Entry>, HashMap<String, Entry>), key: String, e: Entry) {
        if maps.0.len() >= CAPACITY && !maps.0.contains_key(&key) {
            maps.1 = std::mem::take(&mut maps.0);
        }
        maps.0.insert(key, e);
    }
}
