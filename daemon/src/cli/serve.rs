//! `postern serve`: bind every listener, run until SIGTERM/SIGINT, drain, exit 0.

use std::path::PathBuf;
use std::sync::Arc;

use postern_internal::apply::{apply, Validator};
use postern_internal::model::{Account, Provision, RoleSet};
use tokio::sync::watch;

use super::{init_logging, load_valid, Failure};
use crate::auth::Engine;
use crate::config::{find_source, Protocol, Source};
use crate::net::{Listener, UnixOptions};
use crate::{frontend, http, runtime};

pub async fn run(config: Option<PathBuf>) -> Result<(), Failure> {
    let source = find_source(config.as_deref());
    let config = load_valid(&source)?;
    init_logging(&config.log);
    match &source {
        Source::File(p) => tracing::info!(config = %p.display(), "starting"),
        Source::Embedded => tracing::info!("starting on the embedded default configuration"),
    }
    std::fs::create_dir_all(&config.server.state_dir).map_err(|e| {
        Failure::runtime(format!(
            "server.state-dir: cannot create {}: {e}",
            config.server.state_dir.display()
        ))
    })?;
    let engine = runtime::engine(&config, runtime::system_clock()).await?;
    first_start(&engine).await?;

    let (stop_tx, stop_rx) = watch::channel(false);
    let mut tasks = Vec::new();
    for l in &config.listener {
        let unix = UnixOptions {
            mode: l
                .mode
                .as_deref()
                .and_then(|m| u32::from_str_radix(m, 8).ok()),
            user: l.user.clone(),
            group: l.group.clone(),
        };
        let label = match l.protocol {
            Protocol::Http => "http",
            Protocol::DovecotAuth => "dovecot-auth",
            Protocol::Saslauthd => "saslauthd",
        };
        let gauge = engine
            .metrics
            .connections_active
            .with_label_values(&[label]);
        let listener = Listener::bind(&l.bind, &unix, l.max_connections, gauge)
            .await
            .map_err(|e| Failure::runtime(e.to_string()))?;
        // Scripts and tests bind port 0 and read the real address from this line.
        tracing::info!(protocol = label, address = %listener.local_addr(), "listening");
        println!("listening {label} {}", listener.local_addr());
        let stop = stopped(stop_rx.clone());
        let engine = engine.clone();
        let task = match l.protocol {
            Protocol::Http => {
                let auth_http = config.auth_http.clone();
                tokio::spawn(async move {
                    if let Err(e) = http::serve(listener, engine, &auth_http, stop).await {
                        tracing::error!(error = %e, "http listener failed");
                    }
                })
            }
            _ => {
                let settings = frontend::Settings::from_config(l);
                tokio::spawn(frontend::serve(
                    l.protocol, listener, engine, settings, stop,
                ))
            }
        };
        tasks.push(task);
    }
    engine.spawn_maintenance(runtime::RELOAD_INTERVAL);
    tracing::info!("ready");
    println!("ready");
    notify_systemd();

    wait_for_signal().await;
    let _ = sd_notify::notify(false, &[sd_notify::NotifyState::Stopping]);
    tracing::info!("stopping: no new connections; letting requests in flight finish");
    let _ = stop_tx.send(true);
    let drain = futures_join(tasks);
    if tokio::time::timeout(config.server.shutdown_timeout, drain)
        .await
        .is_err()
    {
        tracing::warn!("shutdown timeout reached; closing remaining connections");
    }
    tracing::info!("stopped");
    Ok(())
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

async fn futures_join(tasks: Vec<tokio::task::JoinHandle<()>>) {
    for t in tasks {
        let _ = t.await;
    }
}

async fn stopped(mut rx: watch::Receiver<bool>) {
    while !*rx.borrow() {
        if rx.changed().await.is_err() {
            return;
        }
    }
}

async fn wait_for_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        // Without signal handlers the daemon could never stop cleanly; wait for Ctrl-C instead.
        let _ = tokio::signal::ctrl_c().await;
        return;
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
}

/// On a store with no accounts at all, creates `admin` with the built-in admin role and prints
/// its password once (generated, or `POSTERN_ADMIN_PASSWORD`).
async fn first_start(engine: &Arc<Engine>) -> Result<(), Failure> {
    let count = engine
        .store
        .count_accounts()
        .await
        .map_err(|e| Failure::runtime(format!("store: {e}")))?;
    if count > 0 {
        return Ok(());
    }
    let (password, generated) = match std::env::var("POSTERN_ADMIN_PASSWORD") {
        Ok(p) if !p.is_empty() => (zeroize::Zeroizing::new(p), false),
        _ => (
            zeroize::Zeroizing::new(
                postern_internal::sessions::generate_token()[4..28].to_string(),
            ),
            true,
        ),
    };
    let mut admin: Account = serde_json::from_value(serde_json::json!({"name": "admin"}))
        .map_err(|e| Failure::runtime(e.to_string()))?;
    admin.roles = Some(RoleSet::Admin);
    admin.description = "Administrator created at first start".into();
    admin.password = Some(password.to_string());
    let file = Provision {
        account: vec![admin],
        ..Provision::default()
    };
    let validator = Validator {
        is_permission: &crate::authz::is_permission,
        check_credential: &super::apply::check_credential,
    };
    apply(&engine.store, &file, &validator, &engine.hasher)
        .await
        .map_err(|e| Failure::runtime(format!("creating the admin account: {e}")))?;
    if generated {
        // Printed once, on stdout, never logged.
        println!(
            "created account \"admin\" with password: {}",
            password.as_str()
        );
    } else {
        println!("created account \"admin\" with the password from POSTERN_ADMIN_PASSWORD");
    }
    Ok(())
}
