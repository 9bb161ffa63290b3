//! [`Hasher`]: password work off the async runtime, with a bound on how much runs at once.

use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::oneshot;
use zeroize::Zeroizing;

use crate::DirectoryError;

use super::admission::{Admission, Bound, QueueLimits, Refusals};
use super::decoy::Decoy;
use super::multibuffer;
use super::queue::{work_loop, Closer, CryptJob, Job, Queue, Task};
use super::verify_cache::{VerifyCache, VerifyCacheSettings, VerifyCacheStats};
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
/// remembers the most expensive stored hash it verified recently as the decoy for
/// [`Hasher::burn`].
///
/// The queue is bounded ([`QueueLimits`]: in total and per client address): a login's work
/// beyond either bound is refused at once, a temporary failure. A job whose caller has gone
/// (client disconnected, request cancelled) before a thread takes it is dropped unrun.
#[derive(Clone)]
pub struct Hasher {
    queue: Arc<Queue>,
    /// Closes the queue, so the threads end, when the last clone goes.
    _closer: Arc<Closer>,
    workers: usize,
    observer: Option<Observer>,
    admission: Arc<Admission>,
    batched: Arc<AtomicUsize>,
    /// What [`Hasher::burn`] verifies against: the most expensive stored hash this directory
    /// checked recently, so that "no such user" costs what its dearest real hashes cost.
    pub(super) decoy: Arc<Mutex<Option<Decoy>>>,
    /// Logins' verifications recently computed (`verify_cache.rs`); shared by every clone.
    verify_cache: Option<Arc<VerifyCache>>,
}

impl Hasher {
    /// `limit` threads, and the default [`QueueLimits`] for them.
    pub fn new(limit: usize) -> Self {
        Self::with_limits(limit, QueueLimits::for_threads(limit))
    }

    /// `limit` threads, and at most `bounds` work waiting or running.
    pub fn with_limits(limit: usize, bounds: QueueLimits) -> Self {
        Self::build(limit, bounds, Queue::default())
    }

    /// `limit` threads that give their argon2 memory back after `keep_for` without work.
    #[cfg(test)]
    pub(super) fn keeping_memory_for(limit: usize, keep_for: std::time::Duration) -> Self {
        Self::build(
            limit,
            QueueLimits::for_threads(limit),
            Queue::keeping_for(keep_for),
        )
    }

    fn build(limit: usize, bounds: QueueLimits, queue: Queue) -> Self {
        let queue = Arc::new(queue);
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
            admission: Arc::new(Admission::new(bounds)),
            batched,
            decoy: Arc::default(),
            verify_cache: None,
        }
    }

    /// The same threads with a verification cache (none when `settings.size` is 0). Set
    /// before [`Hasher::scoped`] clones are made, so that every directory shares it.
    pub fn with_verify_cache(mut self, settings: VerifyCacheSettings) -> Self {
        self.verify_cache = VerifyCache::new(settings).map(Arc::new);
        self
    }

    /// Hits and misses of the verification cache (zero when it is off).
    pub fn verify_cache_stats(&self) -> VerifyCacheStats {
        self.verify_cache
            .as_ref()
            .map(|c| c.stats())
            .unwrap_or_default()
    }

    /// Forgets every cached verification (the store changed: see `verify_cache.rs`).
    pub fn flush_verify_cache(&self) {
        if let Some(c) = &self.verify_cache {
            c.flush();
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
        self.admission.total()
    }

    /// Work refused by the bounds, and dropped because its caller had gone, so far.
    pub fn refusals(&self) -> Refusals {
        self.admission.refusals()
    }

    /// Verifications computed together with others so far (see [`Hasher`]).
    pub fn batched(&self) -> usize {
        self.batched.load(Ordering::Relaxed)
    }

    /// [`verify`] on the hashing threads, for an operator's work (provisioning): counted in
    /// the queue, never refused by its bounds. A stored value with no known scheme fails at
    /// once, without taking a slot.
    pub async fn verify(&self, stored: &str, password: &[u8]) -> Result<bool, SecretError> {
        self.verify_scheme(Bound::Exempt, stored, password)
            .await
            .map(|(ok, _)| ok)
    }

    /// [`Hasher::verify`] under `bound`, with the scheme of the stored value.
    ///
    /// Borrowed: only the work sent to a hashing thread copies the two (a cleartext or
    /// one-digest check, most logins of some installations, copies nothing).
    async fn verify_scheme(
        &self,
        bound: Bound,
        stored: &str,
        password: &[u8],
    ) -> Result<(bool, Scheme), SecretError> {
        let scheme = identify(stored)?;
        // Only a login's verification is cached (an operator's is rare and must be real).
        let cache = match (&bound, &self.verify_cache) {
            (Bound::Client(_), Some(c)) => Some((c, c.key(stored, password))),
            _ => None,
        };
        if let Some((c, key)) = &cache {
            if let Some(matched) = c.get(key) {
                return Ok((matched, scheme));
            }
        }
        let batched = scheme == Scheme::Sha512Crypt && multibuffer::available();
        let inline = matches!(bound, Bound::Client(_)) && one_digest(scheme);
        let result = if inline {
            // A cleartext comparison or one digest: a microsecond or less, far cheaper than
            // handing it to a hashing thread and waking this task again when it is done (the
            // two wake-ups cost more CPU than the work). Nothing to queue, so nothing to bound.
            verify(stored, password)
        } else {
            let (stored, password) = (stored.to_owned(), Zeroizing::new(password.to_vec()));
            // Boxed: a thread's round trip is microseconds to milliseconds, while its future
            // inline would make every login's future too big for the allocator's per-thread
            // cache (README, "Benchmarks of this work").
            if self.workers > 0 && batched {
                Box::pin(self.run_crypt(bound, stored, password)).await
            } else {
                Box::pin(self.run_as(bound, move || verify(&stored, &password))).await
            }
        };
        // A refused verification was never computed: not counted as one.
        if let (Some(observer), false) = (
            &self.observer,
            matches!(result, Err(SecretError::Refused(_))),
        ) {
            observer(scheme.label());
        }
        if let (Some((c, key)), Ok(matched)) = (cache, &result) {
            c.put(key, *matched);
        }
        result.map(|ok| (ok, scheme))
    }

    /// [`Hasher::verify`] as a directory needs it, for a login from `client` (the bounds of
    /// [`QueueLimits`] apply): a verification that could not run, or that the bounds refused,
    /// is an outage (`DirectoryError::Unavailable`), never a wrong password; a stored value
    /// that cannot be verified comes back for the directory to log with its own context. A
    /// value that could be verified becomes this directory's decoy for [`Hasher::burn`]: the
    /// value itself (a hash, which the directory returned anyway), except a cleartext `{PLAIN}`
    /// password, which is not kept beyond its login (a fixed cleartext value costs the same).
    pub async fn check(
        &self,
        client: Option<IpAddr>,
        stored: &str,
        password: &str,
    ) -> Result<Verdict, DirectoryError> {
        let (matched, scheme) = match self
            .verify_scheme(Bound::Client(client), stored, password.as_bytes())
            .await
        {
            Ok(answer) => answer,
            Err(e @ (SecretError::TaskFailed | SecretError::Refused(_))) => {
                return Err(unavailable(&e))
            }
            Err(e) => return Ok(Verdict::Unverifiable(e)),
        };
        let decoy = match scheme {
            Scheme::Plain => "{PLAIN}postern-decoy",
            _ => stored,
        };
        // In a directory of mixed schemes, a cheap hash must not make unknown users cheap
        // while dearer accounts exist: the dearest seen within `decoy::KEEP` stays.
        Decoy::offer(
            &mut self.decoy.lock().unwrap_or_else(PoisonError::into_inner),
            decoy,
            scheme,
        );
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
    /// It verifies against the directory's decoy: the most expensive stored hash it checked
    /// within the last hour (by scheme and parameters), so that the cost matches the directory's
    /// dearest real hashes (SHA-512-crypt with its rounds, bcrypt with its cost, …). Before the first real check, and for a directory that never verifies hashes
    /// itself, it is [`dummy_hash`], an argon2id of the parameters new hashes get.
    ///
    /// Refused by the bounds, it is the same temporary failure as a refused [`Hasher::check`]
    /// (and as immediate), so a full queue tells nothing about which users exist.
    pub async fn burn(&self, client: Option<IpAddr>, password: &str) -> Result<(), DirectoryError> {
        let decoy = self
            .decoy
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .as_ref()
            .map(|d| d.stored.to_string());
        match self
            .verify_scheme(
                Bound::Client(client),
                decoy.as_deref().unwrap_or_else(|| dummy_hash()),
                password.as_bytes(),
            )
            .await
        {
            Err(e @ (SecretError::TaskFailed | SecretError::Refused(_))) => Err(unavailable(&e)),
            _ => Ok(()),
        }
    }

    /// [`hash_password`] on the blocking pool.
    pub async fn hash(&self, password: Zeroizing<Vec<u8>>) -> Result<String, SecretError> {
        self.run(move || hash_password(&password)).await
    }

    /// Operator work on the threads: counted, never refused ([`Bound::Exempt`]).
    pub(super) async fn run<T, F>(&self, work: F) -> Result<T, SecretError>
    where
        T: Send + 'static,
        F: FnOnce() -> Result<T, SecretError> + Send + 'static,
    {
        self.run_as(Bound::Exempt, work).await
    }

    /// `work` on the threads if `bound` admits it; refused at once otherwise.
    pub(super) async fn run_as<T, F>(&self, bound: Bound, work: F) -> Result<T, SecretError>
    where
        T: Send + 'static,
        F: FnOnce() -> Result<T, SecretError> + Send + 'static,
    {
        let pending = self.admission.admit(bound)?;
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
            // The caller gave up while the job waited: nobody wants the answer, so the work
            // (the point of a flood of abandoned requests) is not done.
            if reply.is_closed() {
                pending.abandoned();
                return;
            }
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
        bound: Bound,
        stored: String,
        password: Zeroizing<Vec<u8>>,
    ) -> Result<bool, SecretError> {
        let pending = self.admission.admit(bound)?;
        let (reply, answer) = oneshot::channel();
        let job = CryptJob {
            stored,
            password,
            reply,
            pending,
        };
        if !self.queue.push(Job::Crypt(job)) {
            return Err(SecretError::TaskFailed);
        }
        answer.await.map_err(|_| SecretError::TaskFailed)?
    }
}

/// Schemes whose verification is one digest or a comparison (`{PLAIN}`, `{SSHA}`, …): a
/// login verifies them on its own task.
fn one_digest(scheme: Scheme) -> bool {
    matches!(
        scheme,
        Scheme::Plain
            | Scheme::Sha
            | Scheme::Ssha
            | Scheme::Sha256
            | Scheme::Ssha256
            | Scheme::Sha384
            | Scheme::Ssha384
            | Scheme::Sha512
            | Scheme::Ssha512
            | Scheme::Md5
            | Scheme::Smd5
    )
}

/// A verification that did not run, with the reason: refused by the bounds, the daemon is
/// overloaded (the chain stops there); the task failed, an outage.
fn unavailable(e: &SecretError) -> DirectoryError {
    match e {
        SecretError::Refused(_) => {
            DirectoryError::Overloaded(format!("password verification: {e}"))
        }
        _ => DirectoryError::Unavailable(format!("password verification: {e}")),
    }
}
