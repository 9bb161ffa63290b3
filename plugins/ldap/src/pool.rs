//! A small connection pool. Connections are opened lazily (the constructor never touches the
//! network), checked on the way out (a connection whose server went away is dropped, not
//! handed out) and returned on success only: after any transport error the connection is
//! discarded, so a restarted server is picked up again by the next checkout.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ldap3::Ldap;
use postern_directory::DirectoryError;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::conn::{Connector, Credentials};

/// Connections in use and idle, for a gauge.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PoolStats {
    pub in_use: usize,
    pub idle: usize,
}

pub struct Pool {
    connector: Arc<Connector>,
    /// Bound on every new connection (the service account), or none (user binds).
    bind: Option<Credentials>,
    idle: Mutex<Vec<Ldap>>,
    permits: Arc<Semaphore>,
    in_use: Arc<AtomicUsize>,
    wait: Duration,
}

/// A connection out of the pool. Dropped without [`Conn::release`], it is closed: only a
/// connection known to be in a clean state goes back.
pub struct Conn<'a> {
    pub ldap: Ldap,
    /// Taken from the idle list (may have gone stale since), rather than opened just now.
    pub reused: bool,
    pool: &'a Pool,
    _permit: OwnedSemaphorePermit,
    _count: InUse,
}

struct InUse(Arc<AtomicUsize>);

impl Drop for InUse {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Pool {
    pub fn new(connector: Arc<Connector>, bind: Option<Credentials>, size: u32) -> Pool {
        let size = usize::try_from(size.max(1)).unwrap_or(1);
        Pool {
            wait: connector.timeout,
            connector,
            bind,
            idle: Mutex::new(Vec::with_capacity(size)),
            permits: Arc::new(Semaphore::new(size)),
            in_use: Arc::new(AtomicUsize::new(0)),
        }
    }

    pub fn stats(&self) -> PoolStats {
        PoolStats {
            in_use: self.in_use.load(Ordering::Relaxed),
            idle: self.idle.lock().map(|v| v.len()).unwrap_or(0),
        }
    }

    /// A live connection: an idle one whose I/O task still runs, or a new one. Waiting for a
    /// free slot counts against the timeout too: a pool exhausted for that long is an outage.
    pub async fn get(&self) -> Result<Conn<'_>, DirectoryError> {
        let permit = tokio::time::timeout(self.wait, Arc::clone(&self.permits).acquire_owned())
            .await
            .map_err(|_| DirectoryError::Unavailable("LDAP connection pool exhausted".into()))?
            .map_err(|_| DirectoryError::Unavailable("LDAP connection pool closed".into()))?;
        self.in_use.fetch_add(1, Ordering::Relaxed);
        let count = InUse(Arc::clone(&self.in_use));
        while let Some(mut ldap) = self.pop() {
            // The health check: the connection's task ends as soon as the server closes the
            // socket, so a connection to a restarted server is never handed out.
            if !ldap.is_closed() {
                return Ok(Conn {
                    ldap,
                    reused: true,
                    pool: self,
                    _permit: permit,
                    _count: count,
                });
            }
        }
        let ldap = self.connector.open(self.bind.as_ref()).await?;
        Ok(Conn {
            ldap,
            reused: false,
            pool: self,
            _permit: permit,
            _count: count,
        })
    }

    fn pop(&self) -> Option<Ldap> {
        self.idle.lock().ok().and_then(|mut v| v.pop())
    }
}

impl Conn<'_> {
    /// Puts the connection back for the next caller.
    pub fn release(mut self) {
        if self.ldap.is_closed() {
            return;
        }
        if let Ok(mut idle) = self.pool.idle.lock() {
            idle.push(self.ldap.clone());
        }
    }
}
