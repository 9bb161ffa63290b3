//! `postern serve`: bind every listener, reload on SIGHUP, run until SIGTERM/SIGINT, drain,
//! exit 0.

mod listeners;

use std::path::PathBuf;
use std::sync::Arc;

use super::{init_logging, load_valid, Failure};
use crate::auth::Engine;
use crate::config::{find_source, Config, Source};
use crate::{http, runtime};
use listeners::{Listeners, StartError};
use postern_internal::input::{AccountInput, Password, Provision};
use postern_internal::model::RoleSet;

pub async fn run(config: Option<PathBuf>) -> Result<(), Failure> {
    let source = find_source(config.as_deref());
    let config = load_valid(&source)?;
    init_logging(&config.log);
    let mut signals = Signals::install();
    let passed = crate::net::activation::adopt();
    if passed > 0 {
        tracing::info!(
            sockets = passed,
            "socket activation: systemd passed listening sockets"
        );
    }
    match &source {
        Source::File(p) => tracing::info!(config = %p.display(), "starting"),
        Source::Embedded => tracing::info!("starting on the embedded default configuration"),
    }
    // Every listener first: a socket that cannot be bound (a missing directory, a port in
    // use, a bad certificate) ends the start before anything is created on disk.
    let metrics =
        crate::metrics::Metrics::new().map_err(|e| Failure::runtime(format!("metrics: {e}")))?;
    let mut bound = Vec::new();
    for l in &config.listener {
        bound.push(listeners::bind(l, &metrics).await.map_err(|e| match e {
            StartError::Tls { .. } => Failure::user(vec![e.to_string()]),
            StartError::Bind(_) => Failure::runtime(e.to_string()),
        })?);
    }
    std::fs::create_dir_all(&config.server.state_dir).map_err(|e| {
        Failure::runtime(format!(
            "server.state-dir: cannot create {}: {e}",
            config.server.state_dir.display()
        ))
    })?;
    let (engine, chains) =
        runtime::engine_with_metrics(&config, runtime::system_clock(), metrics.clone()).await?;
    first_start(&engine).await?;

    let http_settings =
        http::HttpSettings::from_config(&config).map_err(|e| Failure::user(vec![e.to_string()]))?;
    let http = http::AppState::new(engine.clone(), http_settings);
    let mut listeners = Listeners::new(engine.clone(), http.clone(), metrics);
    for b in bound {
        listeners.serve(b);
    }
    crate::net::activation::release_unused();
    engine.spawn_maintenance(runtime::RELOAD_INTERVAL);
    tracing::info!("ready");
    super::output::say(format_args!("ready"));
    notify_systemd();

    let mut config = config;
    while let Signal::Reload = signals.next().await {
        reload(
            &source,
            &mut config,
            &engine,
            &chains,
            &http,
            &mut listeners,
        )
        .await;
    }
    let _ = sd_notify::notify(false, &[sd_notify::NotifyState::Stopping]);
    tracing::info!("stopping: no new connections; letting requests in flight finish");
    listeners.shutdown(config.server.shutdown_timeout).await;
    tracing::info!("stopped");
    Ok(())
}

/// SIGHUP: re-read and validate the file. Invalid: every error logged, nothing changes.
/// Valid: directories and HTTP settings (`[auth-http]`, `trusted-proxies`) replaced in place,
/// listeners reconciled, certificates re-read; settings that the
/// engine or store were built with are named as needing a restart. Readiness is untouched.
async fn reload(
    source: &Source,
    config: &mut Config,
    engine: &Arc<Engine>,
    chains: &runtime::ChainBuilder,
    http: &http::AppState,
    listeners: &mut Listeners,
) {
    let mut reloading = vec![sd_notify::NotifyState::Reloading];
    reloading.extend(sd_notify::NotifyState::monotonic_usec_now().ok());
    let _ = sd_notify::notify(false, &reloading);
    tracing::info!("SIGHUP: reloading the configuration");
    match load_valid(source) {
        Err(failure) => {
            for line in &failure.lines {
                tracing::error!(error = %line, "configuration reload refused");
            }
            tracing::error!(
                "configuration reload refused; the running configuration stays in force"
            );
        }
        Ok(new) => match rebuild(&new, chains) {
            Err(e) => {
                tracing::error!(error = %e, "configuration reload refused; the running configuration stays in force")
            }
            Ok((chain, http_settings)) => {
                for key in restart_only(config, &new) {
                    tracing::warn!(key, "changed setting takes effect only after a restart");
                }
                // First, so that an HTTP listener the reconciliation binds starts with them.
                http.replace(http_settings);
                listeners.reconcile(&new).await;
                engine.replace_directories(chain);
                *config = new;
                tracing::info!("configuration reloaded");
            }
        },
    }
    let _ = sd_notify::notify(false, &[sd_notify::NotifyState::Ready]);
}

/// What a reload puts in force: the directory chain and the HTTP settings, both built before
/// either is swapped so that a reload applies whole or not at all.
fn rebuild(
    new: &Config,
    chains: &runtime::ChainBuilder,
) -> Result<(Vec<crate::auth::Link>, http::HttpSettings), String> {
    let chain = chains.build(new).map_err(|e| e.to_string())?;
    let settings = http::HttpSettings::from_config(new).map_err(|e| e.to_string())?;
    Ok((chain, settings))
}

/// The keys whose change a reload cannot apply: the store, hasher and engine were built with
/// them at start.
fn restart_only(old: &Config, new: &Config) -> Vec<&'static str> {
    let (o, n) = (&old.authentication, &new.authentication);
    [
        (
            "server.state-dir",
            old.server.state_dir != new.server.state_dir,
        ),
        (
            "server.public-url",
            old.server.public_url != new.server.public_url,
        ),
        (
            "server.hash-concurrency",
            old.server.hash_concurrency != new.server.hash_concurrency,
        ),
        (
            "server.hash-queue-limit",
            old.server.hash_queue_limit != new.server.hash_queue_limit,
        ),
        (
            "server.hash-queue-per-address",
            old.server.hash_queue_per_address != new.server.hash_queue_per_address,
        ),
        ("store", old.store != new.store),
        ("session", old.session != new.session),
        ("log", old.log != new.log),
        (
            "authentication.max-failures-per-account",
            o.max_failures_per_account != n.max_failures_per_account,
        ),
        (
            "authentication.max-failures-per-ip",
            o.max_failures_per_ip != n.max_failures_per_ip,
        ),
        (
            "authentication.max-failures-per-account-total",
            o.max_failures_per_account_total != n.max_failures_per_account_total,
        ),
        (
            "authentication.failure-window",
            o.failure_window != n.failure_window,
        ),
        (
            "authentication.trusted-networks",
            o.trusted_networks != n.trusted_networks,
        ),
    ]
    .into_iter()
    .filter_map(|(k, changed)| changed.then_some(k))
    .collect()
}

/// READY=1 once every listener is bound (Type=notify), and watchdog pings when the unit sets
/// WatchdogSec. Outside systemd (no NOTIFY_SOCKET) these are no-ops.
fn notify_systemd() {
    if let Err(e) = sd_notify::notify(false, &[sd_notify::NotifyState::Ready]) {
        tracing::warn!(error = %e, "cannot notify systemd");
    }
    let mut usec = 0u64;
    if sd_notify::watchdog_enabled(false, &mut usec) && usec > 0 {
        let every = std::time::Duration::from_micros(usec / 2);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            loop {
                tick.tick().await;
                let _ = sd_notify::notify(false, &[sd_notify::NotifyState::Watchdog]);
            }
        });
    }
}

enum Signal {
    Reload,
    Stop,
}

/// SIGHUP, SIGTERM and SIGINT, installed before any listener is bound: without a handler,
/// SIGHUP would end the process.
struct Signals {
    hup: Option<tokio::signal::unix::Signal>,
    term: Option<tokio::signal::unix::Signal>,
    int: Option<tokio::signal::unix::Signal>,
}

impl Signals {
    fn install() -> Signals {
        use tokio::signal::unix::{signal, SignalKind};
        let get = |kind, name: &str| match signal(kind) {
            Ok(s) => Some(s),
            Err(e) => {
                tracing::warn!(error = %e, signal = name, "cannot install a signal handler");
                None
            }
        };
        Signals {
            hup: get(SignalKind::hangup(), "SIGHUP"),
            term: get(SignalKind::terminate(), "SIGTERM"),
            int: get(SignalKind::interrupt(), "SIGINT"),
        }
    }

    async fn next(&mut self) -> Signal {
        async fn recv(s: &mut Option<tokio::signal::unix::Signal>) {
            match s {
                Some(s) => {
                    if s.recv().await.is_none() {
                        std::future::pending::<()>().await;
                    }
                }
                None => std::future::pending().await,
            }
        }
        if self.term.is_none() && self.int.is_none() {
            // Without handlers the daemon could never stop cleanly; Ctrl-C still works.
            tokio::select! {
                _ = tokio::signal::ctrl_c() => return Signal::Stop,
                _ = recv(&mut self.hup) => return Signal::Reload,
            }
        }
        tokio::select! {
            _ = recv(&mut self.hup) => Signal::Reload,
            _ = recv(&mut self.term) => Signal::Stop,
            _ = recv(&mut self.int) => Signal::Stop,
        }
    }
}

/// On a store with no accounts at all, creates `admin` with the built-in admin role and prints
/// its password once (generated, or `POSTERN_ADMIN_PASSWORD`).
async fn first_start(engine: &Arc<Engine>) -> Result<(), Failure> {
    let count = engine
        .count_accounts()
        .await
        .map_err(|e| Failure::runtime(format!("store: {e}")))?;
    if count > 0 {
        // Said, not silently ignored: an operator who set it expects it to mean something.
        if std::env::var_os("POSTERN_ADMIN_PASSWORD").is_some_and(|v| !v.is_empty()) {
            tracing::warn!(
                accounts = count,
                "POSTERN_ADMIN_PASSWORD ignored: the store already has accounts (it only sets \
                 the password of the admin account created on a store with none; change a \
                 password with `postern apply`)"
            );
        }
        return Ok(());
    }
    let (password, generated) = match std::env::var("POSTERN_ADMIN_PASSWORD") {
        Ok(p) if !p.is_empty() => (zeroize::Zeroizing::new(p), false),
        _ => (
            zeroize::Zeroizing::new(postern_internal::tokens::generate_token()[4..28].to_string()),
            true,
        ),
    };
    let admin = AccountInput {
        name: "admin".into(),
        description: "Administrator created at first start".into(),
        password: Some(Password::new(password.as_str())),
        roles: Some(RoleSet::Admin),
        ..AccountInput::default()
    };
    let file = Provision {
        account: vec![admin],
        ..Provision::default()
    };
    engine
        .provision(&file)
        .await
        .map_err(|e| Failure::runtime(format!("creating the admin account: {e}")))?;
    if generated {
        // Printed once, on stdout, never logged.
        super::output::say(format_args!(
            "created account \"admin\" with password: {}",
            password.as_str()
        ));
    } else {
        super::output::say(format_args!(
            "created account \"admin\" with the password from POSTERN_ADMIN_PASSWORD"
        ));
    }
    Ok(())
}
