//! Sharing the counts with the other daemons through the store's `login_failures`.
//!
//! What is written is bounded: a quiet daemon reports every key it counted (so two daemons
//! add up exactly), but when more than [`SMALL_REPORT`] keys failed since the last sync (a
//! spray), only keys with two failures or more, and at a fifth of their threshold or more, are written, at most
//! [`MAX_REPORT`] per sync, the nearest to their limit first. The others wait in memory (bounded
//! by [`super::MAX_KEYS`]) until they matter: one failure per name from a botnet writes nothing.

use postern_internal::{Store, StoreError};

use super::key::Key;
use super::{shared_from, Throttle};

/// Keys reported in full below this many per sync.
const SMALL_REPORT: usize = 64;
/// Rows written per sync at most (two syncs a second).
const MAX_REPORT: usize = 512;

impl Throttle {
    /// Reports the failures counted since the last call to the store and reads back the keys
    /// over a threshold across every daemon. Called every half second by the engine.
    pub async fn sync(&self, store: &Store) -> Result<(), StoreError> {
        let (report, cleared) = self.take_report();
        let now = self.clock.unix();
        let window = self.window_secs();
        if !report.is_empty() {
            let counts: Vec<(String, i64)> = report
                .iter()
                .map(|(k, n)| (k.stored(), i64::from(*n)))
                .collect();
            if let Err(e) = store.add_login_failures(&counts, now, window).await {
                // Counted again at the next sync: the store may be back by then.
                let mut s = self.state();
                for (k, n) in report {
                    if let Some(e) = s.entries.get_mut(&k) {
                        e.unreported = e.unreported.saturating_add(n);
                    }
                }
                return Err(e);
            }
        }
        for (i, key) in cleared.iter().enumerate() {
            if let Err(e) = store.clear_login_failures(&key.stored()).await {
                self.state().cleared.extend(cleared.into_iter().skip(i));
                return Err(e);
            }
        }
        let l = &self.limits;
        let rows = store
            .failure_rows(
                now,
                window,
                i64::from(l.per_account),
                i64::from(l.per_ip),
                i64::from(l.per_account),
            )
            .await?;
        let shared = shared_from(rows);
        let now = self.clock.now();
        let mut s = self.state();
        for (k, (n, _)) in &shared {
            let here = s.entries.get(k).map_or(0, |e| e.failures);
            let limit = match k {
                Key::Account(_) => l.per_account_total,
                _ => l.threshold(k),
            };
            let before = s.shared.get(k).map_or(0, |(n, _)| *n);
            if *n >= limit && before < limit && here < limit {
                self.lock_event(k, *n, "limit reached across the daemons sharing the store");
            }
        }
        // A key over its threshold here, all of it reported, that the store no longer holds
        // was cleared elsewhere (a success on another daemon, `postern unlock`): the store's
        // count is never below what this daemon reported in the same window otherwise.
        let lifted: Vec<Key> = s
            .entries
            .iter()
            .filter(|(k, e)| {
                e.unreported == 0
                    && e.pending == 0
                    && e.failures >= l.threshold(k)
                    && now.duration_since(e.start).unwrap_or_default() < l.window
                    && !shared.contains_key(*k)
            })
            .map(|(k, _)| k.clone())
            .collect();
        for k in lifted {
            tracing::info!(target: "postern::throttle", kind = k.kind().as_str(), "lock lifted in the store");
            s.entries.remove(&k);
        }
        s.shared = shared;
        Ok(())
    }

    /// What to write this sync (see the module's comment), and the keys to clear.
    fn take_report(&self) -> (Vec<(Key, u32)>, Vec<Key>) {
        let mut s = self.state();
        let cleared = std::mem::take(&mut s.cleared);
        let window = self.limits.window;
        let now = self.clock.now();
        // (key, failures to report, share of its threshold reached in this window: 0 below
        // two failures, which one spray of one guess per name and address never reaches)
        let mut pending: Vec<(Key, u32, f64)> = s
            .entries
            .iter()
            .filter(|(_, e)| e.unreported > 0)
            .filter(|(_, e)| now.duration_since(e.start).unwrap_or_default() < window)
            .map(|(k, e)| {
                let share = match e.failures {
                    0 | 1 => 0.0,
                    n => f64::from(n) / f64::from(self.limits.threshold(k).max(1)),
                };
                (k.clone(), e.unreported, share)
            })
            .collect();
        if pending.len() > SMALL_REPORT {
            pending.retain(|(_, _, share)| *share >= 0.2);
            pending.sort_by(|a, b| b.2.total_cmp(&a.2));
            pending.truncate(MAX_REPORT);
        }
        for (k, _, _) in &pending {
            if let Some(e) = s.entries.get_mut(k) {
                e.unreported = 0;
            }
        }
        (
            pending.into_iter().map(|(k, n, _)| (k, n)).collect(),
            cleared,
        )
    }
}
