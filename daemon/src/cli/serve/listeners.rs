//! The listeners of a running daemon: started at boot, reconciled with a new configuration on
//! SIGHUP, stopped on SIGTERM.
//!
//! A listener whose `[[listener]]` table is unchanged keeps its socket and its connections (its
//! TLS certificate is re-read). A listener that disappeared, or whose table changed, stops
//! accepting and finishes its connections as on SIGTERM, on its own, while the daemon goes on;
//! a changed one is then bound again with its new settings.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::auth::Engine;
use crate::config::{
    Config, ListenerConfig, Protocol, DEFAULT_BODY_TIMEOUT, DEFAULT_HEADER_TIMEOUT,
};
use crate::metrics::Metrics;
use crate::net::{Closed, Listener, PerAddress, TlsOptions, UnixOptions};
use crate::tls::{Certs, TlsError, DEFAULT_HANDSHAKE_TIMEOUT};
use crate::{frontend, http};

/// How long a reload waits for a stopped listener to close its socket before binding the
/// same address again.
const CLOSE_WAIT: Duration = Duration::from_secs(5);

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The certificate or key cannot be used: the operator must fix the files.
    #[error("listener {bind}: tls: {source}")]
    Tls { bind: String, source: TlsError },
    #[error(transparent)]
    Bind(#[from] crate::net::BindError),
}

struct Running {
    config: ListenerConfig,
    address: String,
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
    closed: Closed,
    certs: Option<Arc<Certs>>,
}

pub struct Listeners {
    engine: Arc<Engine>,
    /// For the listeners a reload binds (their connection gauge and refusal counter).
    metrics: Metrics,
    /// One router for every HTTP listener; its settings are swapped on reload
    /// ([`http::AppState::replace`]), so an HTTP listener is bound again only when its own
    /// `[[listener]]` table changes.
    http: http::LazyRouter,
    running: Vec<Running>,
    /// Listeners removed by a reload, still finishing their connections.
    retired: Vec<JoinHandle<()>>,
}

fn label(p: Protocol) -> &'static str {
    match p {
        Protocol::Http => "http",
        Protocol::DovecotAuth => "dovecot-auth",
        Protocol::Saslauthd => "saslauthd",
    }
}

/// A listener bound and not yet served: `serve` binds every listener before it creates
/// anything on disk, so a start that fails leaves nothing behind.
pub struct Bound {
    config: ListenerConfig,
    listener: Listener,
    address: String,
    certs: Option<Arc<Certs>>,
}

impl Listeners {
    pub fn new(engine: Arc<Engine>, http: http::AppState, metrics: Metrics) -> Listeners {
        Listeners {
            engine,
            metrics,
            http: http::LazyRouter::new(http),
            running: Vec::new(),
            retired: Vec::new(),
        }
    }

    /// Binds `l` and starts serving it.
    pub async fn start(&mut self, l: &ListenerConfig) -> Result<(), StartError> {
        let bound = bind(l, &self.metrics).await?;
        self.serve(bound);
        Ok(())
    }

    /// Starts serving a listener bound by [`bind`].
    pub fn serve(&mut self, bound: Bound) {
        let Bound {
            config: l,
            listener,
            address,
            certs,
        } = bound;
        let closed = listener.closed();
        let (stop, stop_rx) = watch::channel(false);
        let stopped = stopped(stop_rx);
        let engine = self.engine.clone();
        let task = match l.protocol {
            Protocol::Http => {
                let app = self.http.clone();
                let timeouts = http::Timeouts {
                    header: l.header_timeout.unwrap_or(DEFAULT_HEADER_TIMEOUT),
                    body: l.body_timeout.unwrap_or(DEFAULT_BODY_TIMEOUT),
                    idle: l.idle_timeout,
                };
                tokio::spawn(async move {
                    if let Err(e) = http::serve(listener, app, timeouts, engine, stopped).await {
                        tracing::error!(error = %e, "http listener failed");
                    }
                })
            }
            protocol => {
                let settings = frontend::Settings::from_config(&l);
                let limits = frontend::dovecot::Limits::from_config(&l);
                tokio::spawn(frontend::serve(
                    protocol, listener, engine, settings, limits, stopped,
                ))
            }
        };
        self.running.push(Running {
            config: l,
            address,
            stop,
            task,
            closed,
            certs,
        });
    }

    /// Brings the listeners in line with `new` (already validated). Problems with one listener
    /// are logged and do not stop the others.
    pub async fn reconcile(&mut self, new: &Config) {
        let mut kept = Vec::new();
        let mut wanted: Vec<&ListenerConfig> = Vec::new();
        let mut old = std::mem::take(&mut self.running);
        for l in &new.listener {
            match old.iter().position(|r| r.config == *l) {
                Some(i) => kept.push(old.swap_remove(i)),
                None => wanted.push(l),
            }
        }
        // What is left of `old` goes: stop accepting first, so an address that is bound
        // again below is free.
        for r in &old {
            tracing::info!(address = %r.address, "listener removed or changed: no new connections; finishing the open ones");
            let _ = r.stop.send(true);
        }
        for r in old {
            if !r.closed.wait(CLOSE_WAIT).await {
                tracing::warn!(address = %r.address, "listener still open after {CLOSE_WAIT:?}");
            }
            self.retired.push(r.task);
        }
        self.retired.retain(|t| !t.is_finished());
        for r in &kept {
            if let Some(certs) = &r.certs {
                match certs.reload() {
                    Ok(()) => {
                        tracing::info!(address = %r.address, cert = %certs.files().cert.display(), "TLS certificate reloaded")
                    }
                    Err(e) => {
                        tracing::error!(address = %r.address, error = %e, "TLS certificate cannot be reloaded; keeping the one in force")
                    }
                }
            }
        }
        self.running = kept;
        for l in wanted {
            if let Err(e) = self.start(l).await {
                tracing::error!(error = %e, "listener not started");
            }
        }
    }

    /// SIGTERM: every listener stops accepting; waits up to `timeout` for the connections.
    pub async fn shutdown(self, timeout: Duration) {
        for r in &self.running {
            let _ = r.stop.send(true);
        }
        let tasks = self.running.into_iter().map(|r| r.task).chain(self.retired);
        let drain = async {
            for t in tasks {
                let _ = t.await;
            }
        };
        if tokio::time::timeout(timeout, drain).await.is_err() {
            tracing::warn!("shutdown timeout reached; closing remaining connections");
        }
    }
}

/// Binds `l` (its certificate loaded, its socket open) without serving it yet.
pub async fn bind(l: &ListenerConfig, metrics: &Metrics) -> Result<Bound, StartError> {
    let tls = match &l.tls {
        None => None,
        Some(files) => {
            // HTTP/1.1 only: the HTTP front-end does not speak h2.
            let alpn: &[&[u8]] = match l.protocol {
                Protocol::Http => &[b"http/1.1"],
                _ => &[],
            };
            let certs = Certs::new(files, alpn).map_err(|source| StartError::Tls {
                bind: l.bind.clone(),
                source,
            })?;
            Some(TlsOptions {
                certs,
                handshake_timeout: l.tls_handshake_timeout.unwrap_or(DEFAULT_HANDSHAKE_TIMEOUT),
            })
        }
    };
    let certs = tls.as_ref().map(|t| t.certs.clone());
    let unix = UnixOptions {
        mode: l
            .mode
            .as_deref()
            .and_then(|m| u32::from_str_radix(m, 8).ok()),
        user: l.user.clone(),
        group: l.group.clone(),
    };
    let label = label(l.protocol);
    let gauge = metrics.connections_active.with_label_values(&[label]);
    let per_address = match l.per_address_limit() {
        0 => None,
        n => Some(PerAddress::new(
            n,
            metrics
                .refused
                .with_label_values(&[label, "per_address_limit"]),
        )),
    };
    let listener =
        Listener::bind(&l.bind, &unix, tls, l.max_connections, per_address, gauge).await?;
    let address = listener.local_addr();
    let scheme = if certs.is_some() { " (TLS)" } else { "" };
    let origin = if listener.inherited() {
        " on a socket passed by systemd"
    } else {
        ""
    };
    tracing::info!(protocol = label, address = %address, "listening{scheme}{origin}");
    // Scripts and tests bind port 0 and read the real address from this line.
    crate::cli::output::say(format_args!("listening {label} {address}"));
    Ok(Bound {
        config: l.clone(),
        listener,
        address,
        certs,
    })
}

async fn stopped(mut rx: watch::Receiver<bool>) {
    while !*rx.borrow() {
        if rx.changed().await.is_err() {
            return;
        }
    }
}
