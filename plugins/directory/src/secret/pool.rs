//! [`Hasher`]: password work off the async runtime, with a bound on how much runs at once.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use tokio::sync::Semaphore;
use zeroize::Zeroizing;

use super::{hash_password, identify, verify, SecretError};

/// Called with the scheme label after each verification (metrics).
pub type Observer = Arc<dyn Fn(&'static str) + Send + Sync>;

/// Runs verifications and new hashes on the blocking pool, at most `limit` at a time: argon2
/// costs memory as well as CPU, and a burst of logins must queue rather than exhaust either.
#[derive(Clone)]
pub struct Hasher {
    permits: Arc<Semaphore>,
    observer: Option<Observer>,
    pending: Arc<AtomicUsize>,
}

/// Counts one job in [`Hasher::queued`] for as long as it lives. It travels into the blocking
/// closure, so a job whose caller went away is still counted until the work really ends.
struct Pending(Arc<AtomicUsize>);

impl Pending {
    fn new(counter: &Arc<AtomicUsize>) -> Self {
        counter.fetch_add(1, Ordering::Relaxed);
        Pending(Arc::clone(counter))
    }
}

impl Drop for Pending {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Hasher {
    pub fn new(limit: usize) -> Self {
        Hasher {
            permits: Arc::new(Semaphore::new(limit.max(1))),
            observer: None,
            pending: Arc::new(AtomicUsize::new(0)),
        }
    }

    /// Called with the scheme label after each verification (metrics).
    pub fn with_observer(mut self, observer: Observer) -> Self {
        self.observer = Some(observer);
        self
    }

    /// Verifications and hashes waiting for a slot or running now (a gauge for metrics).
    pub fn queued(&self) -> usize {
        self.pending.load(Ordering::Relaxed)
    }

    /// [`verify`] on the blocking pool. A stored value with no known scheme fails at once,
    /// without taking a slot.
    pub async fn verify(
        &self,
        stored: String,
        password: Zeroizing<Vec<u8>>,
    ) -> Result<bool, SecretError> {
        let scheme = identify(&stored)?;
        let result = self.run(move || verify(&stored, &password)).await;
        if let Some(observer) = &self.observer {
            observer(scheme.label());
        }
        result
    }

    /// [`hash_password`] on the blocking pool.
    pub async fn hash(&self, password: Zeroizing<Vec<u8>>) -> Result<String, SecretError> {
        self.run(move || hash_password(&password)).await
    }

    pub(super) async fn run<T, F>(&self, work: F) -> Result<T, SecretError>
    where
        T: Send + 'static,
        F: FnOnce() -> Result<T, SecretError> + Send + 'static,
    {
        let pending = Pending::new(&self.pending);
        let permit = Arc::clone(&self.permits)
            .acquire_owned()
            .await
            .map_err(|_| SecretError::TaskFailed)?;
        // The permit moves into the blocking task: if the caller is dropped mid-hash (client
        // gone, timeout) the slot stays taken until the computation really finishes, so the
        // bound holds for CPU and memory, not just for waiting futures.
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            let _pending = pending;
            work()
        })
        .await
        .map_err(|_| SecretError::TaskFailed)?
    }
}
