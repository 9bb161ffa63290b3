//! Listening sockets shared by every front-end: TCP or unix, a bound on open connections, and
//! the `postern_connections_active` gauge kept by the connection itself.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use prometheus::IntGauge;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream, UnixListener, UnixStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

#[derive(Debug, thiserror::Error)]
pub enum BindError {
    #[error("cannot bind {bind}: {source}")]
    Io { bind: String, source: io::Error },
    #[error("{bind}: {reason}")]
    Invalid { bind: String, reason: String },
}

enum Socket {
    Tcp(TcpListener),
    Unix(UnixListener, PathBuf),
}

pub struct Listener {
    socket: Socket,
    permits: Arc<Semaphore>,
    gauge: IntGauge,
}

/// Unix-socket options of a listener.
#[derive(Debug, Clone, Default)]
pub struct UnixOptions {
    pub mode: Option<u32>,
    pub user: Option<String>,
    pub group: Option<String>,
}

impl Listener {
    pub async fn bind(
        bind: &str,
        unix: &UnixOptions,
        max_connections: usize,
        gauge: IntGauge,
    ) -> Result<Listener, BindError> {
        let io_err = |source| BindError::Io {
            bind: bind.to_string(),
            source,
        };
        let socket = if let Some(path) = bind.strip_prefix("unix:") {
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
            Socket::Unix(l, path)
        } else {
            let addr: SocketAddr = bind.parse().map_err(|_| BindError::Invalid {
                bind: bind.to_string(),
                reason: "expected IP:port or unix:/path".into(),
            })?;
            Socket::Tcp(TcpListener::bind(addr).await.map_err(io_err)?)
        };
        Ok(Listener {
            socket,
            permits: Arc::new(Semaphore::new(max_connections.max(1))),
            gauge,
        })
    }

    /// The bound address as text (`127.0.0.1:41234`, `unix:/run/postern/auth`); useful after
    /// binding port 0.
    pub fn local_addr(&self) -> String {
        match &self.socket {
            Socket::Tcp(l) => l.local_addr().map(|a| a.to_string()).unwrap_or_default(),
            Socket::Unix(_, p) => format!("unix:{}", p.display()),
        }
    }

    /// Waits for a free connection slot, then for a connection. Never fails: transient accept
    /// errors (EMFILE, ECONNABORTED) are logged and retried after a pause.
    pub async fn accept(&self) -> (Conn, Option<SocketAddr>) {
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
                Socket::Unix(l, _) => l.accept().await.map(|(s, _)| (Stream::Unix(s), None)),
            };
            match accepted {
                Ok((stream, addr)) => {
                    self.gauge.inc();
                    return (
                        Conn {
                            stream,
                            _permit: permit,
                            gauge: self.gauge.clone(),
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
        if let Socket::Unix(_, path) = &self.socket {
            let _ = std::fs::remove_file(path);
        }
    }
}

fn chown(path: &std::path::Path, o: &UnixOptions) -> Result<(), String> {
    let uid = match &o.user {
        Some(u) => Some(lookup_id("/etc/passwd", u)?),
        None => None,
    };
    let gid = match &o.group {
        Some(g) => Some(lookup_id("/etc/group", g)?),
        None => None,
    };
    std::os::unix::fs::chown(path, uid, gid).map_err(|e| format!("chown: {e}"))
}

/// Resolves a user or group name (or number) from the local files; systemd deployments give
/// the socket's group through these files, and NSS modules are out of reach without libc calls.
fn lookup_id(file: &str, name: &str) -> Result<u32, String> {
    if let Ok(n) = name.parse() {
        return Ok(n);
    }
    let text = std::fs::read_to_string(file).map_err(|e| format!("{file}: {e}"))?;
    text.lines()
        .map(|l| l.split(':').collect::<Vec<_>>())
        .find(|f| f.first() == Some(&name))
        .and_then(|f| f.get(2).and_then(|id| id.parse().ok()))
        .ok_or_else(|| format!("{name:?} not found in {file}"))
}

enum Stream {
    Tcp(TcpStream),
    Unix(UnixStream),
}

/// An accepted connection; closing it frees its slot and lowers the gauge.
pub struct Conn {
    stream: Stream,
    _permit: OwnedSemaphorePermit,
    gauge: IntGauge,
}

impl Conn {
    pub fn peer_ip(&self) -> Option<IpAddr> {
        match &self.stream {
            Stream::Tcp(s) => s.peer_addr().ok().map(|a| a.ip()),
            Stream::Unix(_) => None,
        }
    }
}

impl Drop for Conn {
    fn drop(&mut self) {
        self.gauge.dec();
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
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match &mut self.get_mut().stream {
            Stream::Tcp(s) => Pin::new(s).poll_flush(cx),
            Stream::Unix(s) => Pin::new(s).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match &mut self.get_mut().stream {
            Stream::Tcp(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Unix(s) => Pin::new(s).poll_shutdown(cx),
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
            Socket::Unix(..) => Ok(None),
        }
    }
}
