//! Building the running parts from a validated configuration: store, hasher, directories,
//! engine. Shared by `serve`, `apply` and `explain`, so they all see the store the same way.

use std::sync::Arc;
use std::time::Duration;

use postern_directory::secret::{Hasher, QueueLimits};
use postern_directory::Directory;
use postern_internal::{InternalDirectory, Store, StoreError};

use crate::auth::clock::{Clock, SystemClock};
use crate::auth::{Engine, EngineError, EngineOptions, Link};
use crate::config::{Config, DirectoryConfig};
use crate::metrics::Metrics;

#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("{0}")]
    Config(String),
    #[error("cannot open the store: {0}")]
    Store(#[from] StoreError),
    #[error(transparent)]
    Engine(#[from] EngineError),
    #[error("metrics: {0}")]
    Metrics(#[from] prometheus::Error),
}

impl BuildError {
    /// Exit code: 1 for what the user must fix, 2 for runtime failures.
    pub fn exit_code(&self) -> u8 {
        match self {
            BuildError::Config(_) => 1,
            BuildError::Store(StoreError::Config(_)) => 1,
            _ => 2,
        }
    }
}

/// The store with the engine's rules: every write checks permission names against the table
/// of `data/permissions.tsv` and credentials' dates and networks.
pub async fn open_store(config: &Config) -> Result<Store, BuildError> {
    let url = config
        .store_url()
        .map_err(|e| BuildError::Config(e.to_string()))?;
    let store = Store::open(&url, config.store.pool_size, config.store.timeout).await?;
    Ok(store
        .with_record_cache(config.store.cache_size)
        .with_rules(crate::auth::store_rules())
        .revoking_sessions_on_password_change(config.session.revoke_on_password_change))
}

pub fn hasher(config: &Config, metrics: Option<&Metrics>) -> Hasher {
    let limit = match config.server.hash_concurrency {
        // One per core: the hasher's own threads take the next job the moment one ends, so
        // no core idles between verifications, and a thread more would only compete with the
        // async workers that answer /healthz.
        0 => std::thread::available_parallelism().map_or(2, |n| n.get()),
        n => n,
    };
    let bounds = QueueLimits {
        total: match config.server.hash_queue_limit {
            0 => QueueLimits::for_threads(limit).total,
            n => n,
        },
        per_address: config.server.hash_queue_per_address,
    };
    let hasher =
        Hasher::with_limits(limit, bounds).with_verify_cache(config.authentication.verify_cache());
    match metrics {
        Some(m) => {
            let m = m.clone();
            hasher.with_observer(Arc::new(move |scheme| m.hash_verification(scheme)))
        }
        None => hasher,
    }
}

/// The chain of `[authentication] directories`, built once from config. Plugin constructors
/// do not touch the network: a backend that is down at start is a temporary failure at login
/// and readiness, and the plugin recovers by itself when it returns. Each directory gets its
/// own [`Hasher::scoped`] clone, so that its "no such user" costs what its own hashes cost.
pub fn directories(
    config: &Config,
    store: &Store,
    hasher: &Hasher,
) -> Result<Vec<Link>, BuildError> {
    let mut chain = Vec::new();
    for name in &config.authentication.directories {
        if name == INTERNAL {
            chain.push(Link::Internal(Arc::new(InternalDirectory::new(
                store.clone(),
                hasher.scoped(),
            ))));
            continue;
        }
        let directory: Arc<dyn Directory> = match config.directory.get(name) {
            // One arm per plugin crate.
            Some(DirectoryConfig::Ldap(c)) => Arc::new(
                postern_ldap::LdapDirectory::new(name, c.clone(), hasher.scoped())
                    .map_err(|e| BuildError::Config(format!("directory.{name}.{e}")))?,
            ),
            Some(DirectoryConfig::Sql(c)) => Arc::new(
                postern_sql::SqlDirectory::new(name, c.clone(), hasher.scoped())
                    .map_err(|e| BuildError::Config(format!("directory.{name}.{e}")))?,
            ),
            Some(DirectoryConfig::Oidc(c)) => Arc::new(
                postern_oidc::OidcDirectory::new(
                    name,
                    c.clone(),
                    &config.server.public_url,
                    oidc_clock(),
                )
                .map_err(|e| BuildError::Config(format!("directory.{name}.{e}")))?,
            ),
            None => {
                return Err(BuildError::Config(format!(
                    "authentication.directories: no [directory.{name}] section"
                )))
            }
        };
        chain.push(Link::External(directory));
    }
    Ok(chain)
}

/// The wall clock for OIDC directories (token expiry), read through the engine's clock type.
pub fn oidc_clock() -> postern_oidc::Now {
    Arc::new(|| SystemClock.unix())
}

/// The name `[authentication] directories` gives the internal store's directory.
pub const INTERNAL: &str = "internal";

/// What a reload needs to build a new chain: the store and hasher the engine was built with.
#[derive(Clone)]
pub struct ChainBuilder {
    store: Store,
    hasher: Hasher,
}

impl ChainBuilder {
    pub fn build(&self, config: &Config) -> Result<Vec<Link>, BuildError> {
        directories(config, &self.store, &self.hasher)
    }
}

pub async fn engine(config: &Config, clock: Arc<dyn Clock>) -> Result<Arc<Engine>, BuildError> {
    Ok(engine_and_chains(config, clock).await?.0)
}

/// The engine, and the builder a reload uses for new directory chains.
pub async fn engine_and_chains(
    config: &Config,
    clock: Arc<dyn Clock>,
) -> Result<(Arc<Engine>, ChainBuilder), BuildError> {
    engine_with_metrics(config, clock, Metrics::new()?).await
}

/// [`engine_and_chains`] counting into `metrics`, made beforehand (`serve` binds its
/// listeners, which keep their own gauges, before it opens the store).
pub async fn engine_with_metrics(
    config: &Config,
    clock: Arc<dyn Clock>,
    metrics: Metrics,
) -> Result<(Arc<Engine>, ChainBuilder), BuildError> {
    let store = open_store(config).await?;
    let hasher = hasher(config, Some(&metrics));
    let chain = directories(config, &store, &hasher)?;
    let builder = ChainBuilder {
        store: store.clone(),
        hasher: hasher.clone(),
    };
    let engine = Engine::new(
        store,
        chain,
        hasher,
        metrics,
        clock,
        EngineOptions {
            session_ttl: config.session.ttl,
            throttle: throttle_limits(&config.authentication),
        },
    )
    .await?;
    engine.oauth().set_issuer(&config.server.public_url);
    Ok((Arc::new(engine), builder))
}

/// The throttle's limits from a validated `[authentication]` (a network validation refused
/// cannot be here; one that is anyway is left out rather than trusted).
pub fn throttle_limits(a: &crate::config::AuthenticationConfig) -> crate::auth::throttle::Limits {
    crate::auth::throttle::Limits {
        per_account: a.max_failures_per_account,
        per_ip: a.max_failures_per_ip,
        per_account_total: a.account_total(),
        window: a.failure_window,
        trusted: a
            .trusted_networks
            .iter()
            .filter_map(|n| crate::auth::parse_network(n.trim()))
            .collect(),
    }
}

pub fn system_clock() -> Arc<dyn Clock> {
    Arc::new(SystemClock)
}

/// How often a daemon looks for changes in the store (SPEC: seen within 1 s).
pub const RELOAD_INTERVAL: Duration = Duration::from_millis(500);
