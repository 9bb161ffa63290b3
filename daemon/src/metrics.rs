//! Prometheus metrics (SPEC §7). Names live here and nowhere else; labels never carry user names
//! or addresses, so their cardinality is bounded by configuration.

mod handles;

use std::sync::Arc;

use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts,
    Registry, TextEncoder,
};

#[derive(Clone)]
pub struct Metrics {
    registry: Registry,
    pub auth_requests: IntCounterVec,
    pub auth_duration: HistogramVec,
    pub directory_requests: IntCounterVec,
    pub directory_duration: HistogramVec,
    pub sessions_issued: IntCounterVec,
    pub sessions_active: IntGauge,
    /// Tokens the OAuth server issued, by grant type (`postern_oauth_tokens_issued_total`).
    pub oauth_tokens: IntCounterVec,
    pub hash_verifications: IntCounterVec,
    pub connections_active: IntGaugeVec,
    pub hash_queue: IntGauge,
    pub hash_batched: IntCounter,
    pub hash_rejected: IntCounterVec,
    pub throttle_locked: IntGaugeVec,
    pub throttle_locks: IntCounterVec,
    pub store_generation: IntGauge,
    pub directory_pool: IntGaugeVec,
    /// Connections and requests refused or cut off to bound the work a client can cause.
    pub refused: IntCounterVec,
    /// `GET /auth/verify` answers by outcome.
    pub forward_auth: IntCounterVec,
    /// Reads of the store served from memory (hit) or not (miss), by record.
    pub store_cache: IntCounterVec,
    /// Logins' password verifications answered by the verification cache (hit) or computed.
    pub verify_cache: IntCounterVec,
    /// Bearer JWTs (ours, a provider's) answered by the cache of verified tokens (hit) or
    /// verified (miss).
    pub token_cache: IntCounterVec,
    /// `/api/v1` requests by resource, method and status, and their durations.
    pub api_requests: IntCounterVec,
    pub api_duration: HistogramVec,
    /// The per-login series, resolved once (`metrics/handles.rs`).
    handles: Arc<handles::Handles>,
    /// `forward_auth`'s series, which exist from the start, by outcome.
    forward_auth_outcomes: Arc<[(&'static str, IntCounter)]>,
}

/// Outcome labels of `postern_auth_requests_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Success,
    Failure,
    TempFailure,
    RateLimited,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Success => "success",
            Outcome::Failure => "failure",
            Outcome::TempFailure => "temp_failure",
            Outcome::RateLimited => "rate_limited",
        }
    }
}

type R<T> = Result<T, prometheus::Error>;

fn reg<C: prometheus::core::Collector + Clone + 'static>(r: &Registry, c: C) -> R<C> {
    r.register(Box::new(c.clone()))?;
    Ok(c)
}

fn counter(r: &Registry, name: &str, help: &str, labels: &[&str]) -> R<IntCounterVec> {
    reg(r, IntCounterVec::new(Opts::new(name, help), labels)?)
}

fn histogram(r: &Registry, name: &str, help: &str, labels: &[&str]) -> R<HistogramVec> {
    let opts = HistogramOpts::new(name, help).buckets(LATENCY.to_vec());
    reg(r, HistogramVec::new(opts, labels)?)
}

fn gauge(r: &Registry, name: &str, help: &str) -> R<IntGauge> {
    reg(r, IntGauge::new(name, help)?)
}

fn gauge_vec(r: &Registry, name: &str, help: &str, labels: &[&str]) -> R<IntGaugeVec> {
    reg(r, IntGaugeVec::new(Opts::new(name, help), labels)?)
}

const LATENCY: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// `postern_build_info{version} 1`: lets a dashboard tell the daemons of a fleet apart.
fn build_info(r: &Registry) -> R<()> {
    gauge_vec(
        r,
        "postern_build_info",
        "Build information; always 1.",
        &["version"],
    )?
    .with_label_values(&[env!("CARGO_PKG_VERSION")])
    .set(1);
    Ok(())
}

/// The locked series exist from the start, so that dashboards show 0 rather than nothing.
fn throttle_locked(r: &Registry) -> R<IntGaugeVec> {
    let g = gauge_vec(
        r,
        "postern_throttle_locked",
        "Accounts and client addresses over their failed-login limit across the daemons sharing the store, at the last sync.",
        &["kind"],
    )?;
    for kind in ["account", "address"] {
        g.with_label_values(&[kind]).set(0);
    }
    Ok(g)
}

fn throttle_locks(r: &Registry) -> R<IntCounterVec> {
    let c = counter(
        r,
        "postern_throttle_locks_total",
        "Failed-login locks that began, by kind (address: a client address block for every account; account-address: a block for one account; account: an account under attack from many addresses, open to its known-good addresses only).",
        &["kind"],
    )?;
    // Every series exists from the start, so that dashboards show 0 rather than nothing.
    for kind in ["address", "account-address", "account"] {
        c.with_label_values(&[kind]).inc_by(0);
    }
    Ok(c)
}

/// Every outcome exists from the start, so that an alert on denials has a series to rate;
/// its handles are kept, so that counting one is not a label lookup.
type ForwardAuth = (IntCounterVec, Arc<[(&'static str, IntCounter)]>);
fn forward_auth(r: &Registry) -> R<ForwardAuth> {
    let c = counter(
        r,
        "postern_forward_auth_requests_total",
        "GET /auth/verify answers by outcome (allowed, unauthenticated, forbidden, bad_request, unavailable).",
        &["outcome"],
    )?;
    let outcomes = FORWARD_AUTH_OUTCOMES
        .iter()
        .map(|o| (*o, c.with_label_values(&[o])))
        .collect();
    Ok((c, outcomes))
}

const FORWARD_AUTH_OUTCOMES: [&str; 5] = [
    "allowed",
    "unauthenticated",
    "forbidden",
    "bad_request",
    "unavailable",
];

impl Metrics {
    /// Fails only if a name above were malformed or registered twice (a test proves neither).
    pub fn new() -> R<Metrics> {
        let r = Registry::new();
        build_info(&r)?;
        let (forward_auth, forward_auth_outcomes) = forward_auth(&r)?;
        Ok(Metrics {
            auth_requests: counter(
                &r,
                "postern_auth_requests_total",
                "Authentication attempts by front-end, mechanism, directory and outcome.",
                &["frontend", "mechanism", "directory", "outcome"],
            )?,
            auth_duration: histogram(
                &r,
                "postern_auth_duration_seconds",
                "Time to answer an authentication attempt.",
                &["frontend", "outcome"],
            )?,
            directory_requests: counter(
                &r,
                "postern_directory_requests_total",
                "Requests to each directory by outcome (found, unknown, rejected, error).",
                &["directory", "outcome"],
            )?,
            directory_duration: histogram(
                &r,
                "postern_directory_duration_seconds",
                "Time a directory took to answer.",
                &["directory"],
            )?,
            sessions_issued: counter(
                &r,
                "postern_sessions_issued_total",
                "Sessions issued, by kind.",
                &["kind"],
            )?,
            sessions_active: gauge(
                &r,
                "postern_sessions_active",
                "Sessions neither expired nor revoked in the store.",
            )?,
            oauth_tokens: counter(
                &r,
                "postern_oauth_tokens_issued_total",
                "Access tokens the OAuth server issued, by grant type.",
                &["grant_type"],
            )?,
            hash_verifications: counter(
                &r,
                "postern_password_hash_verifications_total",
                "Password hash verifications by scheme.",
                &["scheme"],
            )?,
            connections_active: gauge_vec(
                &r,
                "postern_connections_active",
                "Open client connections per listener.",
                &["listener"],
            )?,
            hash_queue: gauge(
                &r,
                "postern_hash_queue_depth",
                "Password verifications waiting or running.",
            )?,
            hash_batched: reg(
                &r,
                IntCounter::new(
                    "postern_password_hash_batched_total",
                    "Password verifications computed together with others (SHA-512-crypt).",
                )?,
            )?,
            hash_rejected: counter(
                &r,
                "postern_password_hash_rejected_total",
                "Password verifications not run: refused by a bound of the hash queue \
                 (queue-full, per-address) or dropped unrun as their caller had gone \
                 (caller-gone).",
                &["reason"],
            )?,
            throttle_locked: throttle_locked(&r)?,
            throttle_locks: throttle_locks(&r)?,
            store_generation: gauge(
                &r,
                "postern_store_generation",
                "Generation of the directory model in memory.",
            )?,
            directory_pool: gauge_vec(
                &r,
                "postern_directory_pool_connections",
                "Connections of each directory's pools, by pool and state (in_use, idle).",
                &["directory", "pool", "state"],
            )?,
            refused: counter(
                &r,
                "postern_refused_total",
                "Connections and requests refused or closed to bound a client's hold on the daemon, by front-end and reason.",
                &["frontend", "reason"],
            )?,
            forward_auth,
            store_cache: counter(
                &r,
                "postern_store_cache_requests_total",
                "Reads of accounts, sessions and API keys answered from the daemon's memory (hit) or the store (miss); session-view: GET /auth/session answered with the view computed for the same token before.",
                &["record", "result"],
            )?,
            verify_cache: counter(
                &r,
                "postern_verification_cache_requests_total",
                "Password verifications of logins answered by the verification cache ([authentication] cache-size) without hashing (hit), or computed (miss).",
                &["result"],
            )?,
            token_cache: counter(
                &r,
                "postern_token_cache_requests_total",
                "Uses of signed bearer tokens (issuer postern: this server's access tokens; provider: OIDC directories' JWTs) answered by the cache of verified tokens without a signature check (hit), or verified (miss).",
                &["issuer", "result"],
            )?,
            api_requests: counter(
                &r,
                "postern_api_requests_total",
                "Management API requests by resource, method and status.",
                &["resource", "method", "status"],
            )?,
            api_duration: histogram(
                &r,
                "postern_api_request_duration_seconds",
                "Time to answer a management API request, by resource and method.",
                &["resource", "method"],
            )?,
            handles: Arc::new(handles::Handles::new()),
            forward_auth_outcomes,
            registry: r,
        })
    }

    /// The text exposition format.
    pub fn render(&self) -> String {
        let mut buf = Vec::new();
        if let Err(e) = TextEncoder::new().encode(&self.registry.gather(), &mut buf) {
            tracing::error!(error = %e, "metrics encoding failed");
        }
        String::from_utf8(buf).unwrap_or_default()
    }

    pub fn auth(
        &self,
        frontend: &str,
        mechanism: &str,
        directory: &str,
        outcome: Outcome,
        seconds: f64,
    ) {
        self.handles.auth(
            (&self.auth_requests, &self.auth_duration),
            [frontend, mechanism, directory],
            (outcome as usize, outcome.as_str()),
            seconds,
        );
    }

    /// One `GET /auth/verify` answer; `outcome` is one of five fixed words.
    pub fn forward_auth(&self, outcome: &str) {
        match self
            .forward_auth_outcomes
            .iter()
            .find(|(o, _)| *o == outcome)
        {
            Some((_, c)) => c.inc(),
            None => self.forward_auth.with_label_values(&[outcome]).inc(),
        }
    }

    /// One password verification of `scheme` (a hash computed, not a cache hit).
    pub fn hash_verification(&self, scheme: &'static str) {
        self.handles
            .hash_verification(&self.hash_verifications, scheme);
    }

    /// One directory's answer (`found`, `unknown`, `rejected`, `error`) and how long it took.
    pub fn directory_answer(&self, directory: &str, answer: &str, seconds: f64) {
        self.handles.directory_answer(
            (&self.directory_requests, &self.directory_duration),
            directory,
            answer,
            seconds,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_metrics_register() {
        let m = Metrics::new().unwrap();
        m.auth("http", "password", "internal", Outcome::Success, 0.01);
        m.sessions_issued.with_label_values(&["password"]).inc();
        m.hash_verifications.with_label_values(&["argon2"]).inc();
        m.hash_rejected.with_label_values(&["queue-full"]).inc();
        m.connections_active.with_label_values(&["http"]).inc();
        m.directory_requests
            .with_label_values(&["internal", "found"])
            .inc();
        m.directory_duration
            .with_label_values(&["internal"])
            .observe(0.1);
        let text = m.render();
        for name in [
            "postern_auth_requests_total",
            "postern_auth_duration_seconds_bucket",
            "postern_directory_requests_total",
            "postern_directory_duration_seconds",
            "postern_sessions_issued_total",
            "postern_sessions_active",
            "postern_password_hash_verifications_total",
            "postern_connections_active",
            "postern_build_info",
            "postern_password_hash_batched_total",
            "postern_password_hash_rejected_total",
            "postern_throttle_locked",
        ] {
            assert!(text.contains(name), "{name} missing");
        }
    }

    /// The handles resolved once count into the very series the label lookup gives, a clone
    /// of the metrics shares them, and unknown labels still count (by lookup).
    #[test]
    fn resolved_handles_are_the_labelled_series() {
        let m = Metrics::new().unwrap();
        let c = m.clone();
        for metrics in [&m, &c, &m] {
            metrics.auth("dovecot-auth", "plain", "internal", Outcome::Success, 0.001);
            metrics.directory_answer("internal", "found", 0.001);
            metrics.hash_verification("plain");
            metrics.forward_auth("allowed");
        }
        m.auth("dovecot-auth", "plain", "internal", Outcome::Failure, 0.5);
        m.auth("other-frontend", "plain", "ldap", Outcome::Success, 0.1);
        m.directory_answer("ldap", "odd-answer", 0.1);
        let series = |labels: &[&str]| {
            m.auth_requests
                .with_label_values(&[labels[0], labels[1], labels[2], labels[3]])
                .get()
        };
        assert_eq!(series(&["dovecot-auth", "plain", "internal", "success"]), 3);
        assert_eq!(series(&["dovecot-auth", "plain", "internal", "failure"]), 1);
        assert_eq!(series(&["other-frontend", "plain", "ldap", "success"]), 1);
        let seconds = |outcome: &str| {
            m.auth_duration
                .with_label_values(&["dovecot-auth", outcome])
                .get_sample_count()
        };
        assert_eq!((seconds("success"), seconds("failure")), (3, 1));
        let answers = |d: &str, a: &str| m.directory_requests.with_label_values(&[d, a]).get();
        assert_eq!(answers("internal", "found"), 3);
        assert_eq!(answers("ldap", "odd-answer"), 1);
        assert_eq!(
            m.directory_duration
                .with_label_values(&["internal"])
                .get_sample_count(),
            3
        );
        assert_eq!(m.hash_verifications.with_label_values(&["plain"]).get(), 3);
        assert_eq!(m.forward_auth.with_label_values(&["allowed"]).get(), 3);
        assert!(m.render().contains(
            r#"postern_auth_requests_total{directory="internal",frontend="dovecot-auth",mechanism="plain",outcome="success"} 3"#
        ));
    }
}
