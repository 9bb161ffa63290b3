//! The [`super::Hasher`]'s job queue and its threads' loop: tasks in arrival order, and
//! SHA-512-crypt verifications in a queue of their own so that a thread can take several.
//! What may enter the queue at all is [`super::admission`]'s business.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio::sync::oneshot;
use zeroize::Zeroizing;

use super::admission::Pending;
use super::multibuffer::LANES;
use super::{verify_batch, SecretError};

pub(super) type Task = Box<dyn FnOnce() + Send>;

/// A SHA-512-crypt verification waiting to be batched.
pub(super) struct CryptJob {
    pub stored: String,
    pub password: Zeroizing<Vec<u8>>,
    pub reply: oneshot::Sender<Result<bool, SecretError>>,
    pub pending: Pending,
}

/// One job going into the queue.
pub(super) enum Job {
    Task(Task),
    Crypt(CryptJob),
}

/// What a thread takes from the queue.
pub(super) enum Work {
    Task(Task),
    Crypt(Vec<CryptJob>),
    /// Nothing came for the queue's `keep_for`: time to give back the memory kept for the
    /// next hash.
    Idle,
}

/// How long a hashing thread keeps its argon2 memory (up to 64 MiB) after its last job: a
/// busy daemon reuses it for every login, an idle one gives it back rather than hold
/// `hash-concurrency` × 64 MiB for good.
pub(super) const KEEP_FOR: Duration = Duration::from_secs(10);

#[derive(Default)]
struct Jobs {
    /// Each job with its arrival number, so the two queues are served in arrival order.
    tasks: VecDeque<(u64, Task)>,
    crypt: VecDeque<(u64, CryptJob)>,
    arrivals: u64,
    closed: bool,
}

pub(super) struct Queue {
    jobs: Mutex<Jobs>,
    ready: Condvar,
    keep_for: Duration,
}

impl Default for Queue {
    fn default() -> Self {
        Queue::keeping_for(KEEP_FOR)
    }
}

impl Queue {
    /// A queue whose threads are told [`Work::Idle`] after `keep_for` without work.
    pub fn keeping_for(keep_for: Duration) -> Self {
        Queue {
            jobs: Mutex::default(),
            ready: Condvar::new(),
            keep_for,
        }
    }

    /// The jobs, even if a thread panicked while holding the lock: nothing runs under it but
    /// queue operations, which leave the queues consistent.
    fn lock(&self) -> MutexGuard<'_, Jobs> {
        self.jobs.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Queues a job; `false` once the queue is closed.
    pub fn push(&self, job: Job) -> bool {
        let mut jobs = self.lock();
        if jobs.closed {
            return false;
        }
        let n = jobs.arrivals;
        jobs.arrivals += 1;
        match job {
            Job::Task(task) => jobs.tasks.push_back((n, task)),
            Job::Crypt(crypt) => jobs.crypt.push_back((n, crypt)),
        }
        drop(jobs);
        self.ready.notify_one();
        true
    }

    /// The oldest job, or [`LANES`] SHA-512-crypt verifications when that many wait; `None`
    /// once the queue is closed and empty. SHA-512-crypt jobs whose caller has gone are dropped
    /// here unrun (tasks check for themselves as they start: see `Hasher::run_as`), so that a
    /// batch is made of live jobs only. A thread `holding` memory from its last job gets
    /// [`Work::Idle`] when nothing comes for `keep_for`; one that holds none waits without a
    /// timeout (an idle daemon's hashing threads are never woken).
    pub(super) fn take(&self, holding: bool) -> Option<Work> {
        let mut jobs = self.lock();
        loop {
            jobs.crypt.retain(|(_, job)| {
                let gone = job.reply.is_closed();
                if gone {
                    job.pending.abandoned();
                }
                !gone
            });
            let task_first = match (jobs.tasks.front(), jobs.crypt.front()) {
                (Some((t, _)), Some((c, _))) => t < c,
                (Some(_), None) => true,
                (None, Some(_)) => false,
                (None, None) => {
                    if jobs.closed {
                        return None;
                    }
                    if !holding {
                        jobs = self
                            .ready
                            .wait(jobs)
                            .unwrap_or_else(PoisonError::into_inner);
                        continue;
                    }
                    let (guard, waited) = self
                        .ready
                        .wait_timeout(jobs, self.keep_for)
                        .unwrap_or_else(PoisonError::into_inner);
                    jobs = guard;
                    if waited.timed_out() && jobs.tasks.is_empty() && jobs.crypt.is_empty() {
                        return Some(Work::Idle);
                    }
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

pub(super) struct Closer(pub Arc<Queue>);

impl Drop for Closer {
    fn drop(&mut self) {
        self.0.lock().closed = true;
        self.0.ready.notify_all();
    }
}

/// One worker: runs jobs until every [`super::Hasher`] clone is gone and the queue is empty.
pub(super) fn work_loop(queue: Arc<Queue>, batched: Arc<AtomicUsize>) {
    lower_priority();
    let mut holding = false;
    while let Some(work) = queue.take(holding) {
        holding = !matches!(work, Work::Idle);
        // A panicking scheme must not take the thread with it: the jobs' reply channels are
        // dropped, so their callers see `TaskFailed`, and the thread takes the next job.
        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| match work {
            Work::Idle => postern_argon2::release(),
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

/// How much lower than the daemon's other threads a hashing thread is scheduled (nice).
pub(super) const NICE: i32 = 10;

/// Lowers the calling thread's scheduling priority by [`NICE`]. Slow hashes (argon2id at
/// 64 MiB: 0.1–0.2 s each) otherwise share the cores evenly with the async runtime's workers,
/// and a health check or a `{PLAIN}` login arriving while every core hashes waits for the
/// scheduler's next turn (over 10 ms at the /healthz p99 measured). Nice only matters under
/// contention: with nothing else to run, the hashing threads still use every core.
fn lower_priority() {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: getpriority/setpriority read and set a scheduling attribute and touch no
        // memory of ours. On Linux the nice value is per thread, and `who = 0` with
        // PRIO_PROCESS names the calling thread. Failure (a sandbox refusing it) only leaves
        // the priority as it was.
        unsafe {
            let current = libc::getpriority(libc::PRIO_PROCESS, 0);
            let _ = libc::setpriority(libc::PRIO_PROCESS, 0, (current + NICE).min(19));
        }
    }
}
