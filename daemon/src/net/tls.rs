//! The accept loop of a TLS listener: TCP accept here, each handshake on a task of its own.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use prometheus::IntGauge;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, Semaphore};

use super::{admit, Conn, PerAddress, Slot, Stream, TlsOptions};

/// Runs until aborted (the listener's drop). A connection holds its slot from TCP accept on;
/// one that fails or times out its handshake gives it back.
pub(super) async fn accept_loop(
    tcp: TcpListener,
    permits: Arc<Semaphore>,
    per_address: Option<Arc<PerAddress>>,
    gauge: IntGauge,
    tls: TlsOptions,
    ready: mpsc::Sender<(Conn, SocketAddr)>,
) {
    loop {
        let Ok(permit) = permits.clone().acquire_owned().await else {
            tokio::time::sleep(Duration::from_secs(1)).await;
            continue;
        };
        let (stream, addr) = match tcp.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        // Counted before the handshake, so handshakes left hanging count too.
        let Some(address) = admit(&per_address, addr) else {
            continue;
        };
        let _ = stream.set_nodelay(true);
        let slot = Slot::new(permit, address, &gauge);
        let certs = tls.certs.clone();
        let timeout = tls.handshake_timeout;
        let ready = ready.clone();
        tokio::spawn(async move {
            // Here rather than in the loop: a certificate reload (file reads) delays this
            // client only.
            let acceptor = certs.acceptor();
            match tokio::time::timeout(timeout, acceptor.accept(stream)).await {
                Ok(Ok(stream)) => {
                    let conn = Conn {
                        stream: Stream::Tls(Box::new(stream)),
                        _slot: slot,
                    };
                    let _ = ready.send((conn, addr)).await;
                }
                Ok(Err(e)) => tracing::debug!(error = %e, "TLS handshake failed"),
                Err(_) => tracing::debug!("TLS handshake timed out"),
            }
        });
    }
}
