//! [`Hasher`]: password work off the async runtime, with a bound on how much runs at once.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};

use tokio::sync::oneshot;
use zeroize::Zeroizing;

use crate::DirectoryError;

use super::multibuffer::LANES;
use super::{batches, dummy_hash, hash_password, identify, verify, verify_batch, SecretError};

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
/// SHA-512-crypt verifications wait in a queue of their own: when [`LANES`] or more are
/// waiting, a thread takes that many and computes them together (`verify_batch`), which costs
/// less CPU each. With fewer waiting it takes one, so a lone login never waits for company.
#[derive(Clone)]
pub struct Hasher {
    queue: Arc<Queue>,
    /// Closes the queue, so the threads end, when the last clone goes.
    _closer: Arc<Closer>,
    workers: usize,
    observer: Option<Observer>,
    pending: Arc<AtomicUsize>,
    batched: Arc<AtomicUsize>,
}

type Task = Box<dyn FnOnce() + Send>;

/// A SHA-512-crypt verification waiting to be batched.
struct CryptJob {
    stored: String,
    password: Zeroizing<Vec<u8>>,
    reply: oneshot::Sender<Result<bool, SecretError>>,
    pending: Pending,
}

/// What goes into the queue, and what a thread takes from it.
enum Work {
    Task(Task),
    Crypt(Vec<CryptJob>),
}

#[derive(Default)]
struct Jobs {
    /// Each job with its arrival number, so the two queues are served in arrival order.
    tasks: VecDeque<(u64, Task)>,
    crypt: VecDeque<(u64, CryptJob)>,
    arrivals: u64,
    closed: bool,
}

#[derive(Default)]
struct Queue {
    jobs: Mutex<Jobs>,
    ready: Condvar,
}

impl Queue {
    /// The jobs, even if a thread panicked while holding the lock: nothing runs under it but
    /// queue operations, which leave the queues consistent.
    fn lock(&self) -> MutexGuard<'_, Jobs> {
        self.jobs.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Queues a job; `false` once the queue is closed.
    fn push(&self, job: Work) -> bool {
        let mut jobs = self.lock();
        if jobs.closed {
            return false;
        }
        let n = jobs.arrivals;
        jobs.arrivals += 1;
        match job {
            Work::Task(task) => jobs.tasks.push_back((n, task)),
            Work::Crypt(crypt) => jobs.crypt.extend(crypt.into_iter().map(|c| (n, c))),
        }
        drop(jobs);
        self.ready.notify_one();
        true
    }

    /// The oldest job, or [`LANES`] SHA-512-crypt verifications when that many wait; `None`
    /// once the queue is closed and empty.
    fn take(&self) -> Option<Work> {
        let mut jobs = self.lock();
        loop {
            let task_first = match (jobs.tasks.front(), jobs.crypt.front()) {
                (Some((t, _)), Some((c, _))) => t < c,
                (Some(_), None) => true,
                (None, Some(_)) => false,
                (None, None) => {
                    if jobs.closed {
                        return None;
                    }
                    jobs = self
                        .ready
                        .wait(jobs)
                        .unwrap_or_else(PoisonError::into_inner);
                    continue;
                }
            };
            if task_first {
                return jobs.tasks.pop_front().map(|(_, task)| Work::Task(task));
            }
            let n = if jobs.crypt.len() >= LANES { LANES } else { 1 };
            return Some(Work::Crypt(
                jobs.crypt.drain(..n).map(|(_, job)| job).collect(),
            ));
        }
    }
}

struct Closer(Arc<Queue>);

impl Drop for Closer {
    fn drop(&mut self) {
        self.0.lock().closed = true;
        self.0.ready.notify_all();
    }
}

/// One worker: runs jobs until every [`Hasher`] clone is gone and the queue is empty.
fn work_loop(queue: Arc<Queue>, batched: Arc<AtomicUsize>) {
    while let Some(work) = queue.take() {
        // A panicking scheme must not take the thread with it: the jobs' reply channels are
        // dropped, so their callers see `TaskFailed`, and the thread takes the next job.
        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| match work {
            Work::Task(task) => task(),
            Work::Crypt(jobs) => {
                if jobs.len() > 1 {
                    batched.fetch_add(jobs.len(), Ordering::Relaxed);
                }
                let items: Vec<(&str, &[u8])> = jobs
                    .iter()
                    .map(|j| (j.stored.as_str(), j.password.as_slice()))
                    .collect();
                let results = verify_batch(&items);
                drop(items);
                for (job, result) in jobs.into_iter().zip(results) {
                    // Uncounted before the caller can see the answer and read the gauge.
                    drop(job.pending);
                    let _ = job.reply.send(result);
                }
            }
        }));
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
        let scheme = identify(&stored)?;
        let result = if self.workers > 0 && batches(&stored) {
            self.run_crypt(stored, password).await
        } else {
            self.run(move || verify(&stored, &password)).await
        };
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
        let job: Task = Box::new(move || {
            let result = work();
            // Uncounted before the caller can see the answer and read the gauge.
            drop(pending);
            let _ = reply.send(result);
        });
        if !self.queue.push(Work::Task(job)) {
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
        if !self.queue.push(Work::Crypt(vec![job])) {
            return Err(SecretError::TaskFailed);
        }
        answer.await.map_err(|_| SecretError::TaskFailed)?
    }
}
