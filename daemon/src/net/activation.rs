//! Sockets passed by systemd at socket activation (`postern.socket`, `sd_listen_fds(3)`).
//!
//! A passed socket is matched to a listener by address, not by name: `ListenStream=` in the
//! socket unit and `bind` in postern.toml name the same `IP:port` or path, so the operator
//! writes each address twice and nothing else (Dovecot matches the same way). A listener with
//! no matching socket binds its own; a passed socket no listener wants is logged and closed.
//!
//! A listener gets a duplicate of its passed socket and the original stays here, so that a
//! listener a reload rebuilds (new TLS settings, removed and added back) gets the same socket
//! again: binding the address itself would fail, as systemd keeps its own copy open.

use std::net::SocketAddr;
use std::os::fd::{FromRawFd, OwnedFd};
use std::path::PathBuf;
use std::sync::{Mutex, PoisonError};

use socket2::{Socket, Type};

/// A listening socket systemd passed us.
pub enum Inherited {
    Tcp(std::net::TcpListener),
    Unix(std::os::unix::net::UnixListener),
}

struct Passed {
    address: Address,
    socket: Inherited,
    /// A listener has used it (kept at the first `release_unused`).
    taken: bool,
}

impl Inherited {
    fn duplicate(&self) -> std::io::Result<Inherited> {
        Ok(match self {
            Inherited::Tcp(l) => Inherited::Tcp(l.try_clone()?),
            Inherited::Unix(l) => Inherited::Unix(l.try_clone()?),
        })
    }
}

#[derive(Debug, PartialEq, Eq)]
enum Address {
    Tcp(SocketAddr),
    Unix(PathBuf),
}

impl std::fmt::Display for Address {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Address::Tcp(a) => write!(f, "{a}"),
            Address::Unix(p) => write!(f, "unix:{}", p.display()),
        }
    }
}

/// What `adopt` found and no listener has taken yet. Process-wide by nature: the sockets are
/// file descriptors 3… of this process, announced by its environment.
static PASSED: Mutex<Vec<Passed>> = Mutex::new(Vec::new());

/// Takes the sockets systemd passed (if `LISTEN_PID` is this process), and clears the
/// variables so that nothing we start inherits them. Returns how many were usable; the
/// others (datagram sockets, unknown families) are logged and closed.
pub fn adopt() -> usize {
    let fds = match sd_notify::listen_fds() {
        Ok(fds) => fds,
        Err(e) => {
            tracing::warn!(error = %e, "ignoring socket activation: invalid LISTEN_FDS");
            return 0;
        }
    };
    let mut passed = PASSED.lock().unwrap_or_else(PoisonError::into_inner);
    for fd in fds {
        // SAFETY: systemd passed `fd` for this process (LISTEN_PID matched), nothing else in
        // the process knows it, and `listen_fds` unset the variables, so it is owned once.
        let socket = Socket::from(unsafe { OwnedFd::from_raw_fd(fd) });
        match classify(socket) {
            Ok(p) => passed.push(p),
            Err(reason) => tracing::warn!(fd, reason, "closing a socket passed by systemd"),
        }
    }
    passed.len()
}

fn classify(socket: Socket) -> Result<Passed, &'static str> {
    if socket.r#type().map_err(|_| "not a socket")? != Type::STREAM {
        return Err("not a stream socket (ListenStream= is needed)");
    }
    let local = socket.local_addr().map_err(|_| "no local address")?;
    if let Some(addr) = local.as_socket() {
        return Ok(Passed {
            address: Address::Tcp(addr),
            socket: Inherited::Tcp(socket.into()),
            taken: false,
        });
    }
    if let Some(path) = local.as_pathname() {
        return Ok(Passed {
            address: Address::Unix(path.to_path_buf()),
            socket: Inherited::Unix(socket.into()),
            taken: false,
        });
    }
    Err("neither TCP nor a unix socket with a path")
}

/// A duplicate of the passed socket for `bind` (`IP:port` or `unix:/path`), if systemd passed
/// one and it can be duplicated (if not, the listener binds its own and says why it failed).
pub fn take(bind: &str) -> Option<Inherited> {
    let wanted = match bind.strip_prefix("unix:") {
        Some(path) => Address::Unix(PathBuf::from(path)),
        None => Address::Tcp(bind.parse().ok()?),
    };
    let mut passed = PASSED.lock().unwrap_or_else(PoisonError::into_inner);
    let p = passed.iter_mut().find(|p| p.address == wanted)?;
    match p.socket.duplicate() {
        Ok(socket) => {
            p.taken = true;
            Some(socket)
        }
        Err(e) => {
            tracing::error!(address = %p.address, error = %e, "cannot use the socket passed by systemd");
            None
        }
    }
}

/// Closes the passed sockets no listener took, saying which: a socket unit and a
/// configuration that disagree leave clients connecting to an address nobody answers.
pub fn release_unused() {
    let mut passed = PASSED.lock().unwrap_or_else(PoisonError::into_inner);
    passed.retain(|p| {
        if !p.taken {
            tracing::warn!(address = %p.address, "systemd passed a socket that no listener binds; closing it");
        }
        p.taken
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listening_sockets_are_classified_by_address() {
        let tcp = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = tcp.local_addr().unwrap();
        let p = classify(Socket::from(tcp)).unwrap();
        assert_eq!(p.address, Address::Tcp(addr));

        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("auth");
        let unix = std::os::unix::net::UnixListener::bind(&path).unwrap();
        let p = classify(Socket::from(unix)).unwrap();
        assert_eq!(p.address, Address::Unix(path));

        let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        assert!(classify(Socket::from(udp)).is_err());
    }
}
