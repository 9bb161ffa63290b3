//! The engine every front-end shares: the directory chain, the policy in memory, throttling,
//! sessions and metrics.

pub mod access_token;
pub mod app_passwords;
pub mod bearer;
mod chain;
pub mod clock;
mod login;
mod provider_token;
mod rules;
pub mod self_service;
mod session;
mod session_views;
#[cfg(test)]
mod tests;
pub mod throttle;
#[cfg(test)]
mod token_tests;
pub use postern_directory::token_cache;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use postern_directory::secret::Hasher;
use postern_internal::apply::{ApplyError, ApplyReport};
use postern_internal::input::Provision;
use postern_internal::Store;
use serde::Serialize;

use crate::authz::Policy;
use crate::metrics::Metrics;
use clock::Clock;
use throttle::Throttle;

pub use chain::{Link, Mechanism, Method};
pub use login::{parse_network, LoginError, PasswordAttempt, ProvenLogin};
pub use rules::{check_credential, store_rules};
pub use session::{PrincipalView, SessionView};

/// Which front-end a request came through (a metrics label).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Frontend {
    Http,
    DovecotAuth,
    Saslauthd,
    Nginx,
}

impl Frontend {
    pub fn as_str(self) -> &'static str {
        match self {
            Frontend::Http => "http",
            Frontend::DovecotAuth => "dovecot-auth",
            Frontend::Saslauthd => "saslauthd",
            Frontend::Nginx => "nginx",
        }
    }
}

/// An authenticated principal with its effective permissions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub id: String,
    pub name: String,
    pub kind: postern_directory::PrincipalType,
    pub tenant: Option<String>,
    pub emails: Vec<String>,
    pub roles: Vec<String>,
    pub groups: Vec<String>,
    pub permissions: crate::authz::PermSet,
    pub directory: String,
    pub method: Method,
}

pub struct EngineOptions {
    pub session_ttl: Duration,
    pub throttle: throttle::Limits,
}

/// Front-ends ask the engine; its store, metrics and hasher are its own.
pub struct Engine {
    store: Store,
    metrics: Metrics,
    hasher: Hasher,
    /// Swapped whole on SIGHUP ([`Engine::replace_directories`]); a login in progress keeps
    /// walking the chain it started with.
    directories: RwLock<Arc<Vec<Link>>>,
    policy: RwLock<Arc<Policy>>,
    throttle: Throttle,
    clock: Arc<dyn Clock>,
    session_ttl: Duration,
    /// The OAuth server's issuer and signing keys (`access_token.rs`).
    oauth: crate::oauth::Authority,
    /// `GET /auth/session` answers while nothing they depend on changed.
    views: session_views::SessionViews,
    /// Our access tokens whose signature was checked (`access_token.rs`).
    access_tokens: token_cache::TokenCache<Arc<access_token::VerifiedAccess>>,
    /// [`Store::changes`] as of the last reload of the policy.
    changes_seen: AtomicU64,
}

/// Verified access tokens kept per generation (so at most twice this many): a token is a
/// few hundred bytes of claims, and a busy server's clients hold about one each.
const ACCESS_TOKEN_CACHE: usize = 16_384;

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error(transparent)]
    Store(#[from] postern_internal::StoreError),
    #[error("the directory model in the store is invalid: {}", .0.join("; "))]
    Policy(Vec<String>),
}

#[derive(Debug, Serialize)]
pub struct Readiness {
    pub ready: bool,
    pub store: String,
    pub directories: std::collections::BTreeMap<String, String>,
}

impl Engine {
    pub async fn new(
        store: Store,
        directories: Vec<Link>,
        hasher: Hasher,
        metrics: Metrics,
        clock: Arc<dyn Clock>,
        options: EngineOptions,
    ) -> Result<Engine, EngineError> {
        let policy = Policy::compile(&store.snapshot().await?).map_err(EngineError::Policy)?;
        metrics.store_generation.set(policy.generation);
        Ok(Engine {
            throttle: Throttle::new(
                options.throttle,
                clock.clone(),
                metrics.throttle_locks.clone(),
            ),
            oauth: crate::oauth::Authority::new(store.clone()),
            store,
            metrics,
            hasher,
            directories: RwLock::new(Arc::new(directories)),
            policy: RwLock::new(Arc::new(policy)),
            clock,
            session_ttl: options.session_ttl,
            views: Default::default(),
            access_tokens: token_cache::TokenCache::new(ACCESS_TOKEN_CACHE),
            changes_seen: AtomicU64::new(0),
        })
    }

    pub fn policy(&self) -> Arc<Policy> {
        self.policy
            .read()
            .map(|p| p.clone())
            .unwrap_or_else(|poisoned| poisoned.into_inner().clone())
    }

    /// The directory chain in force.
    pub fn directories(&self) -> Arc<Vec<Link>> {
        self.directories
            .read()
            .map(|d| d.clone())
            .unwrap_or_else(|poisoned| poisoned.into_inner().clone())
    }

    /// The gauges read at scrape time (a snapshot is only worth what its age is): directory
    /// pools, the hash queue, verifications computed in batches, and the accounts and
    /// addresses locked across daemons as of the last throttle sync.
    fn refresh_gauges(&self) {
        let count = |n: usize| i64::try_from(n).unwrap_or(i64::MAX);
        let m = &self.metrics;
        // A directory removed by a reload must not keep reporting its last value.
        m.directory_pool.reset();
        for d in self.directories().iter() {
            for p in d.directory().pools() {
                m.directory_pool
                    .with_label_values(&[d.name(), p.pool, "in_use"])
                    .set(count(p.in_use));
                m.directory_pool
                    .with_label_values(&[d.name(), p.pool, "idle"])
                    .set(count(p.idle));
            }
        }
        m.hash_queue.set(count(self.hasher.queued()));
        let batched = u64::try_from(self.hasher.batched()).unwrap_or(u64::MAX);
        m.hash_batched
            .inc_by(batched.saturating_sub(m.hash_batched.get()));
        let refusals = self.hasher.refusals();
        for (reason, n) in [
            ("queue-full", refusals.queue_full),
            ("per-address", refusals.per_address),
            ("caller-gone", refusals.caller_gone),
        ] {
            let c = m.hash_rejected.with_label_values(&[reason]);
            c.inc_by(u64::try_from(n).unwrap_or(u64::MAX).saturating_sub(c.get()));
        }
        let cache = self.store.cache_stats();
        for (i, kind) in postern_internal::store::cache::Kind::ALL.iter().enumerate() {
            for (result, n) in [("hit", cache.hits[i]), ("miss", cache.misses[i])] {
                let c = m.store_cache.with_label_values(&[kind.as_str(), result]);
                c.inc_by(n.saturating_sub(c.get()));
            }
        }
        let (hits, misses) = self.views.stats();
        for (result, n) in [("hit", hits), ("miss", misses)] {
            let c = m.store_cache.with_label_values(&["session-view", result]);
            c.inc_by(n.saturating_sub(c.get()));
        }
        let mut provider = token_cache::TokenCacheStats::default();
        for d in self.directories().iter() {
            if let Some(s) = d.directory().token_cache_stats() {
                provider.hits += s.hits;
                provider.misses += s.misses;
            }
        }
        for (issuer, stats) in [
            ("postern", self.access_tokens.stats()),
            ("provider", provider),
        ] {
            for (result, n) in [("hit", stats.hits), ("miss", stats.misses)] {
                let c = m.token_cache.with_label_values(&[issuer, result]);
                c.inc_by(n.saturating_sub(c.get()));
            }
        }
        let verify = self.hasher.verify_cache_stats();
        for (result, n) in [("hit", verify.hits), ("miss", verify.misses)] {
            let c = m.verify_cache.with_label_values(&[result]);
            c.inc_by(n.saturating_sub(c.get()));
        }
        let (accounts, addresses) = self.throttle.locked();
        m.throttle_locked
            .with_label_values(&["account"])
            .set(count(accounts));
        m.throttle_locked
            .with_label_values(&["address"])
            .set(count(addresses));
    }

    /// Puts a new chain in force (configuration reload). Logins already walking the old chain
    /// finish with it; the old directories are dropped when the last of them ends.
    pub fn replace_directories(&self, chain: Vec<Link>) {
        let chain = Arc::new(chain);
        match self.directories.write() {
            Ok(mut d) => *d = chain,
            Err(poisoned) => *poisoned.into_inner() = chain,
        }
    }

    /// The store, for the management operations (`crate::admin`), which write through its
    /// `Tx` as `apply` does.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The metrics (the management API counts its requests here).
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// The password hasher (new passwords written through the management API).
    pub fn hasher(&self) -> &Hasher {
        &self.hasher
    }

    pub fn clock(&self) -> &dyn Clock {
        self.clock.as_ref()
    }

    /// The gauge of a listener's open connections, which the listener keeps current.
    pub fn connections_gauge(&self, listener: &str) -> prometheus::IntGauge {
        self.metrics
            .connections_active
            .with_label_values(&[listener])
    }

    /// Counts one refusal (`postern_refused_total`); `reason` is a fixed word, never input.
    pub fn count_refusal(&self, frontend: &str, reason: &str) {
        self.metrics
            .refused
            .with_label_values(&[frontend, reason])
            .inc();
    }

    /// Counts one `GET /auth/verify` answer; `outcome` is a fixed word.
    pub fn count_verify(&self, outcome: &str) {
        self.metrics.forward_auth(outcome);
    }

    /// The `postern_refused_total` series of one front-end and reason.
    pub fn refusal_counter(&self, frontend: &str, reason: &str) -> prometheus::IntCounter {
        self.metrics.refused.with_label_values(&[frontend, reason])
    }

    /// How long a mail front-end waits before answering a failed login (Dovecot's auth
    /// penalty): `base` for a client with no earlier failure, doubling with each failure its
    /// address block made in the window, at most 15 s. The attacker's own guesses slow down;
    /// a client that rarely fails never notices.
    pub fn failure_delay(&self, base: Duration, ip: Option<std::net::IpAddr>) -> Duration {
        const MAX: Duration = Duration::from_secs(15);
        let failures = ip.map_or(0, |ip| self.throttle.failures_from(ip));
        // The failure being answered is already counted.
        let doublings = failures.saturating_sub(1).min(8);
        base.saturating_mul(1 << doublings).min(MAX.max(base))
    }

    /// The Prometheus exposition, with the gauges read now.
    pub fn render_metrics(&self) -> String {
        self.refresh_gauges();
        self.metrics.render()
    }

    /// Provisioning through the engine's store (first start, tests): the same checks and
    /// writes as `postern apply`.
    pub async fn provision(&self, file: &Provision) -> Result<ApplyReport, ApplyError> {
        postern_internal::apply::apply(&self.store, file, &self.hasher).await
    }

    /// Accounts in the store (zero on a fresh one).
    pub async fn count_accounts(&self) -> Result<i64, postern_internal::StoreError> {
        self.store.count_accounts().await
    }

    /// Reloads the policy when the store's generation moved. `Ok(true)` when it did.
    pub async fn reload_if_changed(&self) -> Result<bool, EngineError> {
        // Read first: a change pushed while this runs is followed by another reload.
        let pushed = self.store.changes();
        let generation = self.store.generation().await?;
        if generation == self.policy().generation {
            self.changes_seen.store(pushed, Ordering::Release);
            return Ok(false);
        }
        // Written by a process that may not have told this one (the fallback of the record
        // cache's own invalidation).
        self.store.flush_cache();
        self.hasher.flush_verify_cache();
        let policy = Policy::compile(&self.store.snapshot().await?).map_err(EngineError::Policy)?;
        self.metrics.store_generation.set(policy.generation);
        tracing::info!(generation = policy.generation, "directory model reloaded");
        if let Ok(mut p) = self.policy.write() {
            *p = Arc::new(policy);
        }
        self.changes_seen.store(pushed, Ordering::Release);
        Ok(true)
    }

    /// Before a login or a session check: when another daemon's change was pushed and the
    /// policy has not been reloaded for it yet (the follower task is on it), reloads it here,
    /// so that the answer never predates a change this daemon has heard of. Two atomic loads
    /// otherwise. A failed reload keeps the current policy, as the poll does.
    pub(crate) async fn keep_current(&self) {
        if self.store.changes() == self.changes_seen.load(Ordering::Acquire) {
            return;
        }
        // Boxed: the reload's store reads would otherwise sit inline in every login's future.
        if let Err(e) = Box::pin(self.reload_if_changed()).await {
            tracing::warn!(error = %e, "directory model reload failed; keeping the current one");
        }
    }

    /// Keeps the policy current (changes by `postern apply` or another daemon are seen within
    /// `interval`), shares failed-login counts with the other daemons, refreshes the
    /// active-session gauge and purges old sessions and failures. Runs until the engine is
    /// dropped by everyone else.
    pub fn spawn_maintenance(self: &Arc<Self>, interval: Duration) {
        self.store.follow_changes();
        self.spawn_change_follower();
        let weak = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(interval);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut n: u64 = 0;
            loop {
                tick.tick().await;
                let Some(engine) = weak.upgrade() else { break };
                if let Err(e) = engine.reload_if_changed().await {
                    tracing::warn!(error = %e, "directory model reload failed; keeping the current one");
                }
                // Failed logins add up across the daemons sharing the store. An unreachable
                // store is reported by the reload above and by /readyz; the counts wait.
                if let Err(e) = engine.throttle.sync(&engine.store).await {
                    tracing::debug!(error = %e, "failed-login counts not shared this time");
                }
                // Every ~10 s: the gauge, and the purge of sessions ended a day ago.
                if n.is_multiple_of(20) {
                    let now = engine.clock.unix();
                    if let Ok(count) = engine.store.count_active_sessions(now).await {
                        engine.metrics.sessions_active.set(count);
                    }
                    if let Err(e) = engine.throttle.purge(&engine.store).await {
                        tracing::debug!(error = %e, "failed-login purge failed");
                    }
                    if let Err(e) = engine.store.purge_sessions(now, 86_400).await {
                        tracing::debug!(error = %e, "session purge failed");
                    }
                    if let Err(e) = engine.store.purge_oauth(now, 86_400).await {
                        tracing::debug!(error = %e, "OAuth purge failed");
                    }
                }
                n = n.wrapping_add(1);
            }
        });
    }

    /// Another daemon's write (a role, tenant or default changed, an account disabled)
    /// pushed through the store: the policy and the verification cache are reloaded at once,
    /// not at the next poll, so every daemon refuses what the change took away as soon as
    /// PostgreSQL delivers it. The poll stays the fallback.
    fn spawn_change_follower(self: &Arc<Self>) {
        let weak = Arc::downgrade(self);
        let store = self.store.clone();
        tokio::spawn(async move {
            loop {
                store.changed().await;
                let Some(engine) = weak.upgrade() else { break };
                if let Err(e) = engine.reload_if_changed().await {
                    tracing::warn!(error = %e, "directory model reload failed; keeping the current one");
                }
            }
        });
    }

    pub async fn readiness(&self) -> Readiness {
        let store = match self.store.ping().await {
            Ok(()) => "ok".to_string(),
            Err(e) => e.to_string(),
        };
        let mut directories = std::collections::BTreeMap::new();
        let mut ready = store == "ok";
        for d in self.directories().iter() {
            let state = match d.directory().health().await {
                Ok(()) => "ok".to_string(),
                Err(e) => {
                    ready = false;
                    e.to_string()
                }
            };
            directories.insert(d.name().to_string(), state);
        }
        Readiness {
            ready,
            store,
            directories,
        }
    }
}
