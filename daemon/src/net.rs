//! Listening sockets shared by every front-end: TCP (optionally TLS) or unix, a bound on open
//! connections, and the `postern_connections_active` gauge kept by the connection itself.
//!
//! A TLS listener accepts TCP connections on a task of its own and runs every handshake on a
//! task per connection (bounded by a timeout), so a slow or hostile client never holds up the
//! accept loop; finished TLS streams are handed to [`Listener::accept`] through a channel. A
//! connection counts against `max-connections` and the gauge from its TCP accept on.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::{Arc, Weak};
use std::task::{Context, Poll};
use std::time::Duration;

use prometheus::IntGauge;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream, UnixListener, UnixStream};
use tokio::sync::{mpsc, OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinHandle;
use tokio_rustls::server::TlsStream;

use crate::tls::Certs;

pub mod activation;
mod tls;
mod unix;
use unix::chown;

#[derive(Debug, thiserror::Error)]
pub enum BindError {
    #[error("cannot bind {bind}: {source}")]
    Io { bind: String, source: io::Error },
    #[error("{bind}: {reason}")]
    Invalid { bind: String, reason: String },
}

enum Socket {
    Tcp(TcpListener),
    /// The socket file, and its inode: the file is removed at close only if it is still ours
    /// (a listener rebound at the same path during a reload has replaced it).
    Unix(UnixListener, PathBuf, Option<u64>),
    Tls {
        local: SocketAddr,
        ready: tokio::sync::Mutex<mpsc::Receiver<(Conn, SocketAddr)>>,
        accept_task: JoinHandle<()>,
    },
}

/// `max-connections-per-address`: connections open at once from one client address. A
/// connection over the limit is closed at once (counted in `postern_refused_total`), so one
/// address cannot take every `max-connections` slot. Loopback is not exempt: a local reverse
/// proxy should be a unix socket or get a limit of its own.
pub struct PerAddress {
    limit: usize,
    open: std::sync::Mutex<std::collections::HashMap<IpAddr, usize>>,
    refused: prometheus::IntCounter,
}

impl PerAddress {
    pub fn new(limit: usize, refused: prometheus::IntCounter) -> Arc<PerAddress> {
        Arc::new(PerAddress {
            limit,
            open: Default::default(),
            refused,
        })
    }

    /// A place for one more connection from `ip`, or `None` when it has its limit.
    fn take(self: &Arc<Self>, ip: IpAddr) -> Option<AddressSlot> {
        let ip = ip.to_canonical();
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        let n = open.entry(ip).or_insert(0);
        if *n >= self.limit {
            drop(open);
            self.refused.inc();
            tracing::info!(client = %ip, limit = self.limit, "connection refused: max-connections-per-address reached");
            return None;
        }
        *n += 1;
        Some(AddressSlot(self.clone(), ip))
    }
}

/// One connection's place under its address's limit.
struct AddressSlot(Arc<PerAddress>, IpAddr);

impl Drop for AddressSlot {
    fn drop(&mut self) {
        let mut open = self.0.open.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = open.get_mut(&self.1) {
            *n -= 1;
            if *n == 0 {
                open.remove(&self.1);
            }
        }
    }
}

/// Admits a TCP connection from `addr` under `per_address` (always, without a limit).
fn admit(per_address: &Option<Arc<PerAddress>>, addr: SocketAddr) -> Option<Option<AddressSlot>> {
    match per_address {
        None => Some(None),
        Some(p) => p.take(addr.ip()).map(Some),
    }
}

pub struct Listener {
    socket: Socket,
    per_address: Option<Arc<PerAddress>>,
    permits: Arc<Semaphore>,
    gauge: IntGauge,
    /// Dropped with the listener: lets a reload wait until the socket is really closed.
    alive: Arc<()>,
    /// The socket came from systemd (socket activation) rather than our own bind.
    inherited: bool,
}

/// TLS settings of a TCP listener.
#[derive(Clone)]
pub struct TlsOptions {
    pub certs: Arc<Certs>,
    pub handshake_timeout: Duration,
}

/// Becomes "closed" when its [`Listener`] has been dropped (its socket closed).
pub struct Closed(Weak<()>);

impl Closed {
    /// Waits until the listener is gone, at most `max`; `false` if it is still open then.
    pub async fn wait(&self, max: Duration) -> bool {
        let started = tokio::time::Instant::now();
        while self.0.strong_count() > 0 {
            if started.elapsed() >= max {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        true
    }
}

/// Unix-socket options of a listener.
#[derive(Debug, Clone, Default)]
pub struct UnixOptions {
    pub mode: Option<u32>,
    pub user: Option<String>,
    pub group: Option<String>,
}

impl Listener {
    /// Binds `bind` (`IP:port` or `unix:/path`); with `tls`, a TCP listener whose
    /// [`Listener::accept`] returns connections that have completed their handshake.
    pub async fn bind(
        bind: &str,
        unix: &UnixOptions,
        tls: Option<TlsOptions>,
        max_connections: usize,
        per_address: Option<Arc<PerAddress>>,
        gauge: IntGauge,
    ) -> Result<Listener, BindError> {
        let io_err = |source| BindError::Io {
            bind: bind.to_string(),
            source,
        };
        let permits = Arc::new(Semaphore::new(max_connections.max(1)));
        if tls.is_some() && bind.starts_with("unix:") {
            return Err(BindError::Invalid {
                bind: bind.to_string(),
                reason: "TLS applies to TCP listeners only".into(),
            });
        }
        let inherited = activation::take(bind);
        let from_systemd = inherited.is_some();
        let socket = if let Some(activation::Inherited::Unix(l)) = inherited {
            // The socket unit made the file with its own SocketMode/SocketUser/SocketGroup and
            // keeps it: no inode, so closing the listener never removes it.
            l.set_nonblocking(true).map_err(io_err)?;
            let path = PathBuf::from(bind.strip_prefix("unix:").unwrap_or_default());
            Socket::Unix(UnixListener::from_std(l).map_err(io_err)?, path, None)
        } else if let Some(path) = bind.strip_prefix("unix:") {
            let path = PathBuf::from(path);
            // A socket file left by a previous run would make bind fail; anything else at that
            // path is not ours to delete.
            if let Ok(meta) = std::fs::symlink_metadata(&path) {
                use std::os::unix::fs::FileTypeExt;
                if meta.file_type().is_socket() {
                    let _ = std::fs::remove_file(&path);
                }
            }
            let l = UnixListener::bind(&path).map_err(io_err)?;
            let inode = std::fs::metadata(&path).ok().map(|m| {
                use std::os::unix::fs::MetadataExt;
                m.ino()
            });
            if let Some(mode) = unix.mode {
                std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode))
                    .map_err(io_err)?;
            }
            if unix.user.is_some() || unix.group.is_some() {
                chown(&path, unix).map_err(|reason| BindError::Invalid {
                    bind: bind.to_string(),
                    reason,
                })?;
            }
            Socket::Unix(l, path, inode)
        } else {
            let addr: SocketAddr = bind.parse().map_err(|_| BindError::Invalid {
                bind: bind.to_string(),
                reason: "expected IP:port or unix:/path".into(),
            })?;
            let tcp = match inherited {
                Some(activation::Inherited::Tcp(l)) => {
                    l.set_nonblocking(true).map_err(io_err)?;
                    TcpListener::from_std(l).map_err(io_err)?
                }
                _ => TcpListener::bind(addr).await.map_err(io_err)?,
            };
            match tls {
                None => Socket::Tcp(tcp),
                Some(tls) => {
                    let local = tcp.local_addr().map_err(io_err)?;
                    let (tx, rx) = mpsc::channel(64);
                    let accept_task = tokio::spawn(tls::accept_loop(
                        tcp,
                        permits.clone(),
                        per_address.clone(),
                        gauge.clone(),
                        tls,
                        tx,
                    ));
                    Socket::Tls {
                        local,
                        ready: tokio::sync::Mutex::new(rx),
                        accept_task,
                    }
                }
            }
        };
        Ok(Listener {
            socket,
            per_address,
            permits,
            gauge,
            alive: Arc::new(()),
            inherited: from_systemd,
        })
    }

    /// Whether the socket was passed by systemd (socket activation).
    pub fn inherited(&self) -> bool {
        self.inherited
    }

    /// Something to wait on for this listener's socket to be closed.
    pub fn closed(&self) -> Closed {
        Closed(Arc::downgrade(&self.alive))
    }

    /// The bound address as text (`127.0.0.1:41234`, `unix:/run/postern/auth`); useful after
    /// binding port 0.
    pub fn local_addr(&self) -> String {
        match &self.socket {
            Socket::Tcp(l) => l.local_addr().map(|a| a.to_string()).unwrap_or_default(),
            Socket::Unix(_, p, _) => format!("unix:{}", p.display()),
            Socket::Tls { local, .. } => local.to_string(),
        }
    }

    /// Waits for a free connection slot, then for a connection. Never fails: transient accept
    /// errors (EMFILE, ECONNABORTED) are logged and retried after a pause.
    pub async fn accept(&self) -> (Conn, Option<SocketAddr>) {
        if let Socket::Tls { ready, .. } = &self.socket {
            let mut ready = ready.lock().await;
            // The sender lives in the accept task, which only ends when this listener is
            // dropped: `None` cannot happen while we are here, but never spin on it.
            match ready.recv().await {
                Some((conn, addr)) => return (conn, Some(addr)),
                None => std::future::pending().await,
            }
        }
        loop {
            let Ok(permit) = self.permits.clone().acquire_owned().await else {
                // The semaphore is never closed; wait rather than spin if it ever were.
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            };
            let accepted = match &self.socket {
                Socket::Tcp(l) => l.accept().await.map(|(s, a)| {
                    let _ = s.set_nodelay(true);
                    (Stream::Tcp(s), Some(a))
                }),
                Socket::Unix(l, ..) => l.accept().await.map(|(s, _)| (Stream::Unix(s), None)),
                // Served above; never reached.
                Socket::Tls { .. } => std::future::pending().await,
            };
            match accepted {
                Ok((stream, addr)) => {
                    let address = match addr {
                        Some(a) => match admit(&self.per_address, a) {
                            Some(slot) => slot,
                            // Over its address's limit: closed by the drop.
                            None => continue,
                        },
                        None => None,
                    };
                    let slot = Slot::new(permit, address, &self.gauge);
                    return (
                        Conn {
                            stream,
                            _slot: slot,
                        },
                        addr,
                    );
                }
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        }
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        match &self.socket {
            Socket::Unix(_, path, inode) => {
                use std::os::unix::fs::MetadataExt;
                let ours = std::fs::metadata(path).ok().map(|m| m.ino());
                if ours.is_some() && ours == *inode {
                    let _ = std::fs::remove_file(path);
                }
            }
            // The accept task owns the TCP socket: ending it closes the port. Handshakes in
            // progress finish on their own tasks and find nobody to hand their stream to.
            Socket::Tls { accept_task, .. } => accept_task.abort(),
            Socket::Tcp(_) => {}
        }
    }
}

enum Stream {
    Tcp(TcpStream),
    Unix(UnixStream),
    Tls(Box<TlsStream<TcpStream>>),
}

/// A connection's place under `max-connections` and in the gauge, from TCP accept to close.
struct Slot {
    _permit: OwnedSemaphorePermit,
    _address: Option<AddressSlot>,
    gauge: IntGauge,
}

impl Slot {
    fn new(permit: OwnedSemaphorePermit, address: Option<AddressSlot>, gauge: &IntGauge) -> Slot {
        gauge.inc();
        Slot {
            _permit: permit,
            _address: address,
            gauge: gauge.clone(),
        }
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.gauge.dec();
    }
}

/// An accepted connection; closing it frees its slot and lowers the gauge.
pub struct Conn {
    stream: Stream,
    _slot: Slot,
}

impl Conn {
    pub fn peer_ip(&self) -> Option<IpAddr> {
        match &self.stream {
            Stream::Tcp(s) => s.peer_addr().ok().map(|a| a.ip()),
            Stream::Tls(s) => s.get_ref().0.peer_addr().ok().map(|a| a.ip()),
            Stream::Unix(_) => None,
        }
    }

    /// Whether the connection is TLS.
    pub fn is_tls(&self) -> bool {
        matches!(self.stream, Stream::Tls(_))
    }
}

impl AsyncRead for Conn {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match &mut self.get_mut().stream {
            Stream::Tcp(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Unix(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Conn {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match &mut self.get_mut().stream {
            Stream::Tcp(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Unix(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match &mut self.get_mut().stream {
            Stream::Tcp(s) => Pin::new(s).poll_flush(cx),
            Stream::Unix(s) => Pin::new(s).poll_flush(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match &mut self.get_mut().stream {
            Stream::Tcp(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Unix(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

/// axum serves any [`axum::serve::Listener`]; this one adds the bound and the gauge.
impl axum::serve::Listener for Listener {
    type Io = Conn;
    type Addr = Option<SocketAddr>;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        Listener::accept(self).await
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        match &self.socket {
            Socket::Tcp(l) => l.local_addr().map(Some),
            Socket::Tls { local, .. } => Ok(Some(*local)),
            Socket::Unix(..) => Ok(None),
        }
    }
}
