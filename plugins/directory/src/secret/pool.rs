//! [`Hasher`]: password work off the async runtime, with a bound on how much runs at once.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::oneshot;
use zeroize::Zeroizing;

use crate::DirectoryError;

use super::multibuffer;
use super::queue::{work_loop, Closer, CryptJob, Job, Pending, Queue, Task};
use super::{dummy_hash, hash_password, identify, verify, Scheme, SecretError};

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
///
/// SHA-512-crypt verifications wait in a queue of their own: when five or more are waiting, a
/// thread takes five and computes them together (`verify_batch`), which costs less CPU each.
/// With fewer waiting it takes one, so a lone login never waits for company.
///
/// Each directory holds its own [`Hasher::scoped`] clone (same threads and queue), which
/// remembers the last stored hash it verified as the decoy for [`Hasher::burn`].
#[derive(Clone)]
pub struct Hasher {
    queue: Arc<Queue>,
    /// Closes the queue, so the threads end, when the last clone goes.
    _closer: Arc<Closer>,
    workers: usize,
    observer: Option<Observer>,
    pending: Arc<AtomicUsize>,
    batched: Arc<AtomicUsize>,
    /// What [`Hasher::burn`] verifies against: the last stored hash this directory checked,
    /// so that "no such user" costs what its real hashes cost.
    pub(super) decoy: Arc<Mutex<Option<Zeroizing<String>>>>,
}

impl Hasher {
    pub fn new(limit: usize) -> Self {
        let queue = Arc::new(Queue::default());
        let batched = Arc::new(AtomicUsize::new(0));
        let workers = (0..limit.max(1))
            .filter(|i| {
                let (queue, batched) = (Arc::clone(&queue), Arc::clone(&batched));
                std::thread::Builder::new()
                    .name(format!("postern-hash-{i}"))
                    .spawn(move || work_loop(queue, batched))
                    .is_ok()
            })
            .count();
        Hasher {
            _closer: Arc::new(Closer(Arc::clone(&queue))),
            queue,
            workers,
            observer: None,
            pending: Arc::new(AtomicUsize::new(0)),
            batched,
            decoy: Arc::default(),
        }
    }

    /// A clone for one directory: the same threads, queue and observer, and a decoy of its
    /// own ([`Hasher::burn`]), as directories hold different kinds of hashes.
    pub fn scoped(&self) -> Hasher {
        Hasher {
            decoy: Arc::default(),
            ..self.clone()
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

    /// Verifications computed together with others so far (see [`Hasher`]).
    pub fn batched(&self) -> usize {
        self.batched.load(Ordering::Relaxed)
    }

    /// [`verify`] on the blocking pool. A stored value with no known scheme fails at once,
    /// without taking a slot.
    pub async fn verify(
        &self,
        stored: String,
        password: Zeroizing<Vec<u8>>,
    ) -> Result<bool, SecretError> {
        self.verify_scheme(stored, password).await.map(|(ok, _)| ok)
    }

    /// [`Hasher::verify`], with the scheme of the stored value.
    async fn verify_scheme(
        &self,
        stored: String,
        password: Zeroizing<Vec<u8>>,
    ) -> Result<(bool, Scheme), SecretError> {
        let scheme = identify(&stored)?;
        let batched = scheme == Scheme::Sha512Crypt && multibuffer::available();
        let result = if self.workers > 0 && batched {
            self.run_crypt(stored, password).await
        } else {
            self.run(move || verify(&stored, &password)).await
        };
        if let Some(observer) = &self.observer {
            observer(scheme.label());
        }
        result.map(|ok| (ok, scheme))
    }

    /// [`Hasher::verify`] as a directory needs it: a verification that could not run is an
    /// outage (`DirectoryError::Unavailable`), never a wrong password; a stored value that
    /// cannot be verified comes back for the directory to log with its own context. A value
    /// that could be verified becomes this directory's decoy for [`Hasher::burn`]: the value
    /// itself (a hash, which the directory returned anyway), except a cleartext `{PLAIN}`
    /// password, which is not kept beyond its login (a fixed cleartext value costs the same).
    pub async fn check(&self, stored: String, password: &str) -> Result<Verdict, DirectoryError> {
        let decoy = Zeroizing::new(stored.clone());
        let (matched, scheme) = match self
            .verify_scheme(stored, Zeroizing::new(password.as_bytes().to_vec()))
            .await
        {
            Ok(answer) => answer,
            Err(SecretError::TaskFailed) => {
                return Err(DirectoryError::Unavailable(
                    "password verification failed".into(),
                ))
            }
            Err(e) => return Ok(Verdict::Unverifiable(e)),
        };
        let decoy = match scheme {
            Scheme::Plain => Zeroizing::new("{PLAIN}postern-decoy".to_string()),
            _ => decoy,
        };
        *self.decoy.lock().unwrap_or_else(PoisonError::into_inner) = Some(decoy);
        Ok(if matched {
            Verdict::Match
        } else {
            Verdict::Mismatch
        })
    }

    /// The work of one real verification, spent on `password` and thrown away, so that an
    /// unknown user (or a group, or a broken entry) cannot be told from a wrong password by
    /// timing. Every directory answers its "no such user" through this.
    ///
    /// It verifies against the directory's decoy: the last stored hash it checked, so that the
    /// cost matches the directory's real hashes (SHA-512-crypt with its rounds, bcrypt with its
    /// cost, …). Before the first real check, and for a directory that never verifies hashes
    /// itself, it is [`dummy_hash`], an argon2id of the parameters new hashes get.
    pub async fn burn(&self, password: &str) {
        let decoy = self
            .decoy
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .as_ref()
            .map(|d| d.to_string());
        let _ = self
            .verify(
                decoy.unwrap_or_else(|| dummy_hash().to_string()),
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
        let job: Task = Box::new(move || {
            let result = work();
            // Uncounted before the caller can see the answer and read the gauge.
            drop(pending);
            let _ = reply.send(result);
        });
        if !self.queue.push(Job::Task(job)) {
            return Err(SecretError::TaskFailed);
        }
        answer.await.map_err(|_| SecretError::TaskFailed)?
    }

    /// A SHA-512-crypt verification through the batching queue.
    async fn run_crypt(
        &self,
        stored: String,
        password: Zeroizing<Vec<u8>>,
    ) -> Result<bool, SecretError> {
        let (reply, answer) = oneshot::channel();
        let job = CryptJob {
            stored,
            password,
            reply,
            pending: Pending::new(&self.pending),
        };
        if !self.queue.push(Job::Crypt(job)) {
            return Err(SecretError::TaskFailed);
        }
        answer.await.map_err(|_| SecretError::TaskFailed)?
    }
}
