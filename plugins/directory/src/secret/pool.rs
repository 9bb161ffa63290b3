//! [`Hasher`]: password work off the async runtime, with a bound on how much runs at once.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};

use tokio::sync::oneshot;
use zeroize::Zeroizing;

use crate::DirectoryError;

use super::{dummy_hash, hash_password, identify, verify, SecretError};

/// What [`Hasher::check`] found.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    Match,
    Mismatch,
    /// Malformed, unknown scheme, cost beyond the limits: a data problem for an operator.
    Unverifiable(SecretError),
}

/// Called with the scheme label after each verification (metrics).
pub type Observer = Arc<dyn Fn(&'static str) + Send + Sync>;

/// Runs verifications and new hashes on `limit` threads of its own: argon2 costs memory as
/// well as CPU, and a burst of logins must queue rather than exhaust either.
///
/// The threads take the next job from the queue themselves the moment one ends. Handing each
/// job to tokio's blocking pool behind a semaphore instead left a core idle between
/// verifications until an async worker got round to passing the slot on — about a tenth of
/// the CPU on a loaded 2-core machine.
#[derive(Clone)]
pub struct Hasher {
    jobs: mpsc::Sender<Job>,
    workers: usize,
    observer: Option<Observer>,
    pending: Arc<AtomicUsize>,
}

type Job = Box<dyn FnOnce() + Send>;

/// One worker: runs jobs until every [`Hasher`] clone (and so the sender) is gone.
fn work_loop(queue: Arc<Mutex<mpsc::Receiver<Job>>>) {
    loop {
        let job = match queue.lock() {
            Ok(rx) => rx.recv(),
            Err(_) => return,
        };
        match job {
            // A panicking scheme must not take the thread with it: the job's reply channel is
            // dropped, so its caller sees `TaskFailed`, and the thread takes the next job.
            Ok(job) => {
                let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(job));
            }
            Err(_) => return,
        }
    }
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
        let (tx, rx) = mpsc::channel::<Job>();
        let rx = Arc::new(Mutex::new(rx));
        let workers = (0..limit.max(1))
            .filter(|i| {
                let rx = Arc::clone(&rx);
                std::thread::Builder::new()
                    .name(format!("postern-hash-{i}"))
                    .spawn(move || work_loop(rx))
                    .is_ok()
            })
            .count();
        Hasher {
            jobs: tx,
            workers,
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

    /// [`Hasher::verify`] as a directory needs it: a verification that could not run is an
    /// outage (`DirectoryError::Unavailable`), never a wrong password; a stored value that
    /// cannot be verified comes back for the directory to log with its own context.
    pub async fn check(&self, stored: String, password: &str) -> Result<Verdict, DirectoryError> {
        match self
            .verify(stored, Zeroizing::new(password.as_bytes().to_vec()))
            .await
        {
            Ok(true) => Ok(Verdict::Match),
            Ok(false) => Ok(Verdict::Mismatch),
            Err(SecretError::TaskFailed) => Err(DirectoryError::Unavailable(
                "password verification failed".into(),
            )),
            Err(e) => Ok(Verdict::Unverifiable(e)),
        }
    }

    /// The work of one real verification, spent on `password` against [`dummy_hash`], so
    /// that an unknown user (or a group, or a broken entry) cannot be told from a wrong
    /// password by timing. Every directory answers its "no such user" through this.
    pub async fn burn(&self, password: &str) {
        let _ = self
            .verify(
                dummy_hash().to_string(),
                Zeroizing::new(password.as_bytes().to_vec()),
            )
            .await;
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
        if self.workers == 0 {
            // No thread could be started (resource limits): tokio's blocking pool still runs
            // the work rather than leave logins waiting forever.
            return tokio::task::spawn_blocking(move || {
                let _pending = pending;
                work()
            })
            .await
            .map_err(|_| SecretError::TaskFailed)?;
        }
        let (reply, answer) = oneshot::channel();
        // `pending` travels with the job: a caller that gives up (client gone, timeout) leaves
        // the job counted until the computation really ends, as it leaves the thread busy.
        let job: Job = Box::new(move || {
            let result = work();
            // Uncounted before the caller can see the answer and read the gauge.
            drop(pending);
            let _ = reply.send(result);
        });
        self.jobs.send(job).map_err(|_| SecretError::TaskFailed)?;
        answer.await.map_err(|_| SecretError::TaskFailed)?
    }
}
