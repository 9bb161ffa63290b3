//! The mail front-ends: dovecot-auth and saslauthd servers over the shared engine.
//!
//! [`serve`] accepts connections until its `stop` future completes, then stops accepting (the
//! listener is dropped, which also removes a unix socket file) and waits for the connections:
//! dovecot-auth connections stop reading new requests and close once the requests they are
//! verifying have been answered; saslauthd connections carry one request each.

pub mod dovecot;
pub mod saslauthd;

#[cfg(test)]
pub(crate) mod testkit;

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::auth::Engine;
use crate::config::{ListenerConfig, Protocol};
use crate::net::Listener;

/// Per-listener settings of a mail front-end.
#[derive(Debug, Clone)]
pub struct Settings {
    pub mechanisms: Vec<String>,
    pub allow_plaintext: bool,
    pub idle_timeout: Duration,
    /// Service names beside the known ones that may log in with `authenticate` alone.
    pub services: Vec<String>,
}

impl Settings {
    pub fn from_config(l: &ListenerConfig) -> Self {
        Settings {
            mechanisms: l
                .mechanisms
                .iter()
                .map(|m| m.to_ascii_uppercase())
                .collect(),
            allow_plaintext: l.allow_plaintext,
            idle_timeout: l.idle_timeout,
            services: l.services.clone(),
        }
    }
}

/// Serves `listener` until `stop`. A TLS connection to a dovecot-auth listener is not taken
/// as `secured`: that flag (and `rip`/`lip`) describe the mail client's connection to Postfix
/// or Exim, which TLS between Postfix and Postern says nothing about — a password typed over
/// plain SMTP stays exposed however the auth server is reached.
pub async fn serve(
    protocol: Protocol,
    listener: Listener,
    engine: Arc<Engine>,
    settings: Settings,
    limits: dovecot::Limits,
    stop: impl std::future::Future<Output = ()> + Send + 'static,
) {
    let (stopping_tx, stopping) = watch::channel(false);
    let dovecot = Arc::new(dovecot::Server::new(
        engine.clone(),
        settings.clone(),
        limits,
    ));
    let services: Arc<[String]> = Arc::from(settings.services.clone());
    let mut connections = JoinSet::new();
    tokio::pin!(stop);
    loop {
        tokio::select! {
            _ = &mut stop => break,
            (conn, _) = listener.accept() => {
                match protocol {
                    Protocol::DovecotAuth => {
                        let peer = conn.peer_ip();
                        connections.spawn(dovecot.clone().handle(conn, peer, stopping.clone()));
                    }
                    Protocol::Saslauthd => {
                        connections.spawn(saslauthd::handle(conn, engine.clone(), settings.idle_timeout, services.clone()));
                    }
                    Protocol::Http => {
                        tracing::error!(address = %listener.local_addr(), "an http listener was handed to the mail front-ends; closed");
                        return;
                    }
                }
            }
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
    tracing::debug!(address = %listener.local_addr(), "no longer accepting; draining connections");
    drop(listener);
    let _ = stopping_tx.send(true);
    while connections.join_next().await.is_some() {}
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
    use tokio::net::UnixStream;

    use super::*;
    use crate::net::UnixOptions;

    async fn read_until_done(
        lines: &mut tokio::io::Lines<BufReader<tokio::net::unix::OwnedReadHalf>>,
    ) -> Vec<String> {
        let mut seen = Vec::new();
        while let Ok(Ok(Some(line))) =
            tokio::time::timeout(Duration::from_secs(10), lines.next_line()).await
        {
            let done = line == "DONE";
            seen.push(line);
            if done {
                break;
            }
        }
        seen
    }

    /// Listener keys left out take Dovecot's values; those given replace them.
    #[test]
    fn limits_from_the_listener_keys() {
        let mut l = ListenerConfig::new(Protocol::DovecotAuth, "127.0.0.1:0");
        let d = dovecot::Limits::from_config(&l);
        assert_eq!(d.max_in_flight, 32);
        assert_eq!(d.request_timeout, Duration::from_secs(150));
        assert_eq!(d.failure_delay, Duration::from_secs(2));
        l.max_requests_in_flight = Some(4);
        l.request_timeout = Some(Duration::from_secs(9));
        l.failure_delay = Some(Duration::ZERO);
        let set = dovecot::Limits::from_config(&l);
        assert_eq!(set.max_in_flight, 4);
        assert_eq!(set.request_timeout, Duration::from_secs(9));
        assert_eq!(set.failure_delay, Duration::ZERO);
    }

    /// The accept loop on a real unix socket: the connection bound, requests answered, then stop:
    /// the socket file disappears, the open connection is closed and `serve` returns.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn serves_a_unix_socket_until_stopped() {
        let (dir, engine) = testkit::engine().await;
        let path = dir.path().join("auth.sock");
        let gauge = engine.connections_gauge("dovecot-auth");
        let listener = Listener::bind(
            &format!("unix:{}", path.display()),
            &UnixOptions::default(),
            None,
            1,
            None,
            gauge.clone(),
        )
        .await
        .unwrap();
        let settings = Settings {
            mechanisms: vec!["PLAIN".into()],
            allow_plaintext: true,
            services: Vec::new(),
            idle_timeout: Duration::from_secs(30),
        };
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(serve(
            Protocol::DovecotAuth,
            listener,
            engine.clone(),
            settings,
            dovecot::Limits::default(),
            async move {
                let _ = stop_rx.await;
            },
        ));
        let (rd, mut wr) = UnixStream::connect(&path).await.unwrap().into_split();
        let mut lines = BufReader::new(rd).lines();
        let handshake = read_until_done(&mut lines).await;
        assert_eq!(
            handshake.get(1).map(String::as_str),
            Some("MECH\tPLAIN\tplaintext"),
            "{handshake:?}"
        );
        let resp = base64::Engine::encode(
            &base64::engine::general_purpose::STANDARD,
            format!("\0alice\0{}", testkit::PASSWORD),
        );
        wr.write_all(
            format!("VERSION\t1\t2\nCPID\t9\nAUTH\t1\tPLAIN\tservice=imap\tresp={resp}\n")
                .as_bytes(),
        )
        .await
        .unwrap();
        let answer = tokio::time::timeout(Duration::from_secs(10), lines.next_line())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(answer.as_deref(), Some("OK\t1\tuser=alice"));
        assert_eq!(gauge.get(), 1);
        // max-connections = 1: a second client waits in the backlog, unanswered.
        let second = UnixStream::connect(&path).await.unwrap();
        let mut second = BufReader::new(second);
        let mut buf = String::new();
        let waited =
            tokio::time::timeout(Duration::from_millis(300), second.read_line(&mut buf)).await;
        assert!(
            waited.is_err(),
            "second connection served beyond the limit: {buf:?}"
        );

        stop_tx.send(()).unwrap();
        let closed = tokio::time::timeout(Duration::from_secs(10), lines.next_line())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(closed, None);
        tokio::time::timeout(Duration::from_secs(10), server)
            .await
            .unwrap()
            .unwrap();
        assert!(!path.exists(), "socket file left behind");
        assert_eq!(gauge.get(), 0);
    }
}
