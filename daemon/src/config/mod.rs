//! `postern.toml`: typed, with every key known (`deny_unknown_fields`), layered by figment as
//! built-in defaults → TOML file → `POSTERN_<SECTION>__<KEY>` environment.
//!
//! [`load`] parses each table on its own ([`parse`]) and then checks everything that can be
//! checked without touching the network ([`validate`]), so `check-config` reports every problem
//! of a file at once, each with its key path written as the user wrote it (`listener[0].bind`,
//! `directory.corp.url`) and the file or environment variable it came from.

mod directory;
mod load;
mod parse;
mod validate;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use postern_directory::{read_secret_file, ConfigProblem};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

pub use directory::{DirectoryConfig, LdapConfig, OidcConfig, SqlConfig};
pub use load::{load, parse_text, source as find_source, ConfigError, Source};
pub use validate::validate;

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub server: ServerConfig,
    #[serde(default)]
    pub store: StoreConfig,
    #[serde(default = "default_listeners")]
    pub listener: Vec<ListenerConfig>,
    #[serde(default)]
    pub authentication: AuthenticationConfig,
    #[serde(default)]
    pub session: SessionConfig,
    #[serde(default)]
    pub auth_http: AuthHttpConfig,
    #[serde(default)]
    pub log: LogConfig,
    #[serde(default)]
    pub directory: BTreeMap<String, DirectoryConfig>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            server: ServerConfig::default(),
            store: StoreConfig::default(),
            listener: default_listeners(),
            authentication: AuthenticationConfig::default(),
            session: SessionConfig::default(),
            auth_http: AuthHttpConfig::default(),
            log: LogConfig::default(),
            directory: BTreeMap::new(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct ServerConfig {
    /// Embedded store, signing keys. Relative paths are relative to the working directory.
    #[serde(default = "default_state_dir")]
    pub state_dir: PathBuf,
    /// OAuth/OIDC issuer and redirect base.
    #[serde(default = "default_public_url")]
    pub public_url: String,
    /// Password verifications running at once (0: one per CPU core).
    #[serde(default)]
    pub hash_concurrency: usize,
    /// Password verifications waiting or running at once, in total (0: 256 per hashing
    /// thread); a login beyond it is a temporary failure at once.
    #[serde(default)]
    pub hash_queue_limit: usize,
    /// The same, for one client address (an IPv6 /64).
    #[serde(default = "default_hash_per_address")]
    pub hash_queue_per_address: usize,
    /// How long SIGTERM waits for requests in flight.
    #[serde(default = "default_drain", with = "humantime_serde")]
    pub shutdown_timeout: Duration,
    /// Reverse proxies (addresses or CIDR networks) whose `Forwarded` / `X-Forwarded-For`
    /// (and nginx's auth_http `Client-IP`) name the client; from anyone else those headers are
    /// ignored.
    #[serde(default)]
    pub trusted_proxies: Vec<String>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            state_dir: default_state_dir(),
            public_url: default_public_url(),
            hash_concurrency: 0,
            hash_queue_limit: 0,
            hash_queue_per_address: default_hash_per_address(),
            shutdown_timeout: default_drain(),
            trusted_proxies: Vec::new(),
        }
    }
}

fn default_state_dir() -> PathBuf {
    PathBuf::from("data")
}
fn default_public_url() -> String {
    "http://127.0.0.1:8480".into()
}
fn default_hash_per_address() -> usize {
    postern_directory::secret::QueueLimits::PER_ADDRESS
}
fn default_drain() -> Duration {
    Duration::from_secs(10)
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct StoreConfig {
    /// `sqlite://PATH` or `postgres://…`. Empty: `sqlite://<state-dir>/postern.db`.
    #[serde(default)]
    pub url: String,
    /// Alternative to putting a PostgreSQL password in `url`: a file holding the whole URL.
    #[serde(default)]
    pub url_file: Option<PathBuf>,
    #[serde(default = "default_pool")]
    pub pool_size: u32,
    #[serde(default = "default_timeout", with = "humantime_serde")]
    pub timeout: Duration,
    /// Accounts, sessions and API keys kept in memory, per kind (at most twice this many of
    /// each); 0 reads the store on every request.
    #[serde(default = "default_record_cache")]
    pub cache_size: usize,
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            url: String::new(),
            url_file: None,
            pool_size: default_pool(),
            timeout: default_timeout(),
            cache_size: default_record_cache(),
        }
    }
}

fn default_record_cache() -> usize {
    postern_internal::store::cache::DEFAULT_CAPACITY
}

fn default_pool() -> u32 {
    8
}
fn default_timeout() -> Duration {
    Duration::from_secs(5)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Protocol {
    Http,
    DovecotAuth,
    Saslauthd,
}

/// `tls = { cert = "…", key = "…" }` on a TCP listener: PEM files, re-read on SIGHUP and when
/// their modification time changes.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct TlsConfig {
    /// The certificate chain, leaf first.
    pub cert: PathBuf,
    /// The private key (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct ListenerConfig {
    pub protocol: Protocol,
    /// `host:port` or `unix:/path`.
    pub bind: String,
    #[serde(default)]
    pub tls: Option<TlsConfig>,
    /// Unix sockets: octal mode of the socket file, e.g. "0660".
    #[serde(default)]
    pub mode: Option<String>,
    #[serde(default)]
    pub user: Option<String>,
    #[serde(default)]
    pub group: Option<String>,
    /// SASL mechanisms offered (dovecot-auth).
    #[serde(default = "default_mechanisms")]
    pub mechanisms: Vec<String>,
    /// Offer PLAIN/LOGIN on connections the client did not mark `secured`.
    #[serde(default)]
    pub allow_plaintext: bool,
    /// Service names (dovecot-auth `service=`, saslauthd's service) allowed beside the known
    /// ones (imap, pop3, smtp, submission, sieve and their variants); they require
    /// `authenticate` only. Any other name is refused.
    #[serde(default)]
    pub services: Vec<String>,
    /// Connections open at once on this listener.
    #[serde(default = "default_max_connections")]
    pub max_connections: usize,
    /// A connection with nothing to do for this long is closed.
    #[serde(default = "default_idle", with = "humantime_serde")]
    pub idle_timeout: Duration,
    /// TLS listeners: a client that has not finished its handshake by then is dropped.
    #[serde(default, with = "humantime_serde")]
    pub tls_handshake_timeout: Option<Duration>,
    /// http: a request's head must arrive whole within this (default 10s).
    #[serde(default, with = "humantime_serde")]
    pub header_timeout: Option<Duration>,
    /// http: a request's body must arrive whole within this from the request's start
    /// (default 30s).
    #[serde(default, with = "humantime_serde")]
    pub body_timeout: Option<Duration>,
    /// TCP listeners: connections open at once from one client address (0: no limit).
    /// Default 20 on http listeners, no limit on the others (a mail server legitimately holds
    /// one dovecot-auth connection per smtpd process, all from one address).
    #[serde(default)]
    pub max_connections_per_address: Option<usize>,
    /// dovecot-auth: requests open at once on one connection.
    #[serde(default)]
    pub max_requests_in_flight: Option<usize>,
    /// dovecot-auth: a request waiting for the client's `CONT` this long is forgotten.
    #[serde(default, with = "humantime_serde")]
    pub request_timeout: Option<Duration>,
    /// dovecot-auth: wrong credentials are answered after this delay.
    #[serde(default, with = "humantime_serde")]
    pub failure_delay: Option<Duration>,
}

fn default_mechanisms() -> Vec<String> {
    ["plain", "login", "xoauth2", "oauthbearer"]
        .map(String::from)
        .to_vec()
}
fn default_max_connections() -> usize {
    1024
}
fn default_idle() -> Duration {
    Duration::from_secs(300)
}

impl ListenerConfig {
    pub fn new(protocol: Protocol, bind: &str) -> Self {
        ListenerConfig {
            protocol,
            bind: bind.into(),
            tls: None,
            mode: None,
            user: None,
            group: None,
            mechanisms: default_mechanisms(),
            allow_plaintext: false,
            services: Vec::new(),
            max_connections: default_max_connections(),
            idle_timeout: default_idle(),
            tls_handshake_timeout: None,
            header_timeout: None,
            body_timeout: None,
            max_connections_per_address: None,
            max_requests_in_flight: None,
            request_timeout: None,
            failure_delay: None,
        }
    }
}

impl ListenerConfig {
    /// `max-connections-per-address` in force (0: none).
    pub fn per_address_limit(&self) -> usize {
        match (self.max_connections_per_address, self.protocol) {
            (Some(n), _) => n,
            (None, Protocol::Http) => DEFAULT_PER_ADDRESS_HTTP,
            (None, _) => 0,
        }
    }
}

/// Default `max-connections-per-address` of http listeners.
pub const DEFAULT_PER_ADDRESS_HTTP: usize = 20;
/// Default `header-timeout` of http listeners.
pub const DEFAULT_HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// Default `body-timeout` of http listeners.
pub const DEFAULT_BODY_TIMEOUT: Duration = Duration::from_secs(30);

/// The embedded default (SPEC §3): HTTP on 8480, dovecot-auth on 8481, both on loopback.
fn default_listeners() -> Vec<ListenerConfig> {
    vec![
        ListenerConfig::new(Protocol::Http, "127.0.0.1:8480"),
        ListenerConfig::new(Protocol::DovecotAuth, "127.0.0.1:8481"),
    ]
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct AuthenticationConfig {
    /// Tried in order; "internal" always exists.
    #[serde(default = "default_directories")]
    pub directories: Vec<String>,
    /// Failed logins on one account from one client address (IPv6 /64) within
    /// `failure-window` before that address may not try that account any more.
    #[serde(default = "default_account_failures")]
    pub max_failures_per_account: u32,
    /// Failed logins per client address (IPv6 /64) on any account within `failure-window`.
    #[serde(default = "default_ip_failures")]
    pub max_failures_per_ip: u32,
    /// Failed logins on one account from all addresses together before only the addresses it
    /// recently logged in from may try it (default: twice `max-failures-per-account`, so that
    /// one attacking address alone never gets there).
    #[serde(default)]
    pub max_failures_per_account_total: Option<u32>,
    #[serde(default = "default_window", with = "humantime_serde")]
    pub failure_window: Duration,
    /// Client networks (CIDR or addresses) never counted nor refused by the throttle: the
    /// operator's own webmail or proxies that log in for many users.
    #[serde(default)]
    pub trusted_networks: Vec<String>,
    /// Verification cache (Dovecot's `auth_cache_size`): entries kept; 0 (the default) is off.
    #[serde(default)]
    pub cache_size: usize,
    /// How long a verified password is believed (`auth_cache_ttl`).
    #[serde(default = "default_cache_ttl", with = "humantime_serde")]
    pub cache_ttl: Duration,
    /// How long a wrong password is remembered as wrong (`auth_cache_negative_ttl`); short.
    #[serde(default = "default_cache_negative_ttl", with = "humantime_serde")]
    pub cache_negative_ttl: Duration,
}

impl AuthenticationConfig {
    /// The hasher's verification cache settings.
    pub fn verify_cache(&self) -> postern_directory::secret::VerifyCacheSettings {
        postern_directory::secret::VerifyCacheSettings {
            size: self.cache_size,
            ttl: self.cache_ttl,
            negative_ttl: self.cache_negative_ttl,
        }
    }

    /// `max-failures-per-account-total`, or its default.
    pub fn account_total(&self) -> u32 {
        self.max_failures_per_account_total
            .unwrap_or(self.max_failures_per_account.saturating_mul(2))
    }
}

impl Default for AuthenticationConfig {
    fn default() -> Self {
        AuthenticationConfig {
            directories: default_directories(),
            max_failures_per_account: default_account_failures(),
            max_failures_per_ip: default_ip_failures(),
            max_failures_per_account_total: None,
            failure_window: default_window(),
            trusted_networks: Vec::new(),
            cache_size: 0,
            cache_ttl: default_cache_ttl(),
            cache_negative_ttl: default_cache_negative_ttl(),
        }
    }
}

fn default_directories() -> Vec<String> {
    vec!["internal".into()]
}
fn default_account_failures() -> u32 {
    10
}
fn default_ip_failures() -> u32 {
    50
}
fn default_window() -> Duration {
    Duration::from_secs(300)
}
fn default_cache_ttl() -> Duration {
    Duration::from_secs(3600)
}
fn default_cache_negative_ttl() -> Duration {
    Duration::from_secs(60)
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct SessionConfig {
    /// Lifetime of a session issued by a login.
    #[serde(default = "default_ttl", with = "humantime_serde")]
    pub ttl: Duration,
    /// A password changed through the store (`apply`, the management API) ends the account's
    /// sessions: whoever knew the old password loses what it opened.
    #[serde(default = "default_true")]
    pub revoke_on_password_change: bool,
}

impl Default for SessionConfig {
    fn default() -> Self {
        SessionConfig {
            ttl: default_ttl(),
            revoke_on_password_change: true,
        }
    }
}

fn default_true() -> bool {
    true
}

fn default_ttl() -> Duration {
    Duration::from_secs(12 * 3600)
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct AuthHttpConfig {
    /// Upstream `ip:port` per protocol (imap, pop3, smtp) handed to nginx.
    #[serde(default)]
    pub backends: BTreeMap<String, String>,
    /// nginx must send this value in the `X-Auth-Key` header (`auth_http_header`).
    #[serde(default)]
    pub shared_secret: Option<String>,
    #[serde(default)]
    pub shared_secret_file: Option<PathBuf>,
    /// Without a shared secret, `GET /auth/nginx` is refused on TCP listeners (anyone who can
    /// reach the port could test passwords there with a `Client-IP` of their choosing);
    /// `false` opts out. Unix sockets are guarded by their file mode and never need it.
    #[serde(default = "yes")]
    pub require_shared_secret: bool,
}

impl Default for AuthHttpConfig {
    fn default() -> Self {
        AuthHttpConfig {
            backends: BTreeMap::new(),
            shared_secret: None,
            shared_secret_file: None,
            require_shared_secret: true,
        }
    }
}

fn yes() -> bool {
    true
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct LogConfig {
    #[serde(default)]
    pub format: LogFormat,
    /// A tracing filter: `info`, `postern=debug`, …
    #[serde(default = "default_level")]
    pub level: String,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            format: LogFormat::Text,
            level: default_level(),
        }
    }
}

fn default_level() -> String {
    "info".into()
}

impl Config {
    /// The store URL in force: `url`, the content of `url-file`, or the embedded SQLite file.
    /// Zeroized on drop, since it may carry the database password.
    pub fn store_url(&self) -> Result<Zeroizing<String>, ConfigProblem> {
        if let Some(path) = &self.store.url_file {
            return read_secret_file("url-file", path).map_err(|e| e.prefixed("store"));
        }
        if self.store.url.is_empty() {
            Ok(Zeroizing::new(format!(
                "sqlite://{}",
                self.server.state_dir.join("postern.db").display()
            )))
        } else {
            Ok(Zeroizing::new(self.store.url.clone()))
        }
    }
}
