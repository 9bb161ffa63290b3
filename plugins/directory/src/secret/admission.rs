//! What may enter the [`super::Hasher`]'s queue: a bound on the work waiting or running, in
//! total and per client address, so that a flood of logins (or of dovecot-auth `AUTH`s that
//! are cancelled at once) is refused at the door instead of delaying every real login behind
//! it. A refusal is immediate and a temporary failure, never "wrong password".

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

/// How much hash work may wait or run at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueLimits {
    /// In total, whoever asked.
    pub total: usize,
    /// For one client address (an IPv6 address counts as its /64, which one client usually
    /// holds whole). Work without an address (a unix-socket client, provisioning) has only the
    /// total bound.
    pub per_address: usize,
}

impl QueueLimits {
    /// Default per-address bound: a few logins of one client in flight at once.
    pub const PER_ADDRESS: usize = 8;
    /// Default total per hashing thread: a few seconds of argon2id work at most.
    pub const PER_THREAD: usize = 256;

    /// The defaults for `threads` hashing threads.
    pub fn for_threads(threads: usize) -> QueueLimits {
        QueueLimits {
            total: Self::PER_THREAD.saturating_mul(threads.max(1)),
            per_address: Self::PER_ADDRESS,
        }
    }
}

/// Why hash work was not queued (or not run).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// `QueueLimits::total` jobs were already waiting or running.
    #[error("password verification queue full")]
    QueueFull,
    /// `QueueLimits::per_address` jobs of this client address were already waiting or running.
    #[error("too many password verifications in progress for this client address")]
    PerAddress,
}

impl Refusal {
    /// The `reason` label of `postern_password_hash_rejected_total`.
    pub fn label(self) -> &'static str {
        match self {
            Refusal::QueueFull => "queue-full",
            Refusal::PerAddress => "per-address",
        }
    }
}

/// Which bounds a piece of work is subject to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Bound {
    /// A login's work: refused when the total or its address's share is used up.
    Client(Option<IpAddr>),
    /// Work an operator asked for (provisioning hashes new passwords): counted, never refused.
    Exempt,
}

/// Refusals and jobs dropped unrun so far (counters for metrics).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Refusals {
    pub queue_full: usize,
    pub per_address: usize,
    /// Jobs whose caller had gone (client disconnected, request cancelled) before a thread
    /// took them: dropped without computing.
    pub caller_gone: usize,
}

#[derive(Default)]
struct Counts {
    total: usize,
    per_address: HashMap<IpAddr, usize>,
}

pub(super) struct Admission {
    limits: QueueLimits,
    counts: Mutex<Counts>,
    queue_full: AtomicUsize,
    per_address: AtomicUsize,
    caller_gone: AtomicUsize,
}

/// The key an address is bounded under: IPv6 by its /64 (a client gets a whole /64 and picks
/// addresses in it freely), IPv4 (and IPv4-mapped IPv6) by itself.
fn address_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6((u128::from(v6) & !((1u128 << 64) - 1)).into()),
        },
    }
}

impl Admission {
    pub fn new(limits: QueueLimits) -> Admission {
        Admission {
            limits: QueueLimits {
                total: limits.total.max(1),
                per_address: limits.per_address.max(1),
            },
            counts: Mutex::default(),
            queue_full: AtomicUsize::new(0),
            per_address: AtomicUsize::new(0),
            caller_gone: AtomicUsize::new(0),
        }
    }

    /// The counts, even if a thread panicked holding the lock: every update is one step.
    fn counts(&self) -> MutexGuard<'_, Counts> {
        self.counts.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Admits one job under `bound`, or refuses it at once (and counts the refusal).
    pub fn admit(self: &Arc<Self>, bound: Bound) -> Result<Pending, Refusal> {
        let mut counts = self.counts();
        let address = match bound {
            Bound::Exempt => None,
            Bound::Client(address) => {
                if counts.total >= self.limits.total {
                    drop(counts);
                    self.queue_full.fetch_add(1, Ordering::Relaxed);
                    return Err(Refusal::QueueFull);
                }
                let key = address.map(address_key);
                if let Some(key) = key {
                    let n = counts.per_address.get(&key).copied().unwrap_or(0);
                    if n >= self.limits.per_address {
                        drop(counts);
                        self.per_address.fetch_add(1, Ordering::Relaxed);
                        return Err(Refusal::PerAddress);
                    }
                    counts.per_address.insert(key, n + 1);
                }
                key
            }
        };
        counts.total += 1;
        Ok(Pending {
            admission: Arc::clone(self),
            address,
        })
    }

    /// Jobs admitted and not yet ended (waiting or running).
    pub fn total(&self) -> usize {
        self.counts().total
    }

    pub fn refusals(&self) -> Refusals {
        Refusals {
            queue_full: self.queue_full.load(Ordering::Relaxed),
            per_address: self.per_address.load(Ordering::Relaxed),
            caller_gone: self.caller_gone.load(Ordering::Relaxed),
        }
    }
}

/// One admitted job, counted in the bounds (and in [`super::Hasher::queued`]) for as long as it
/// lives. It travels with the job onto its thread, so a job whose caller went away while it
/// ran is still counted until the work really ends.
pub(super) struct Pending {
    admission: Arc<Admission>,
    address: Option<IpAddr>,
}

impl Pending {
    /// The job is dropped unrun: its caller is gone.
    pub fn abandoned(&self) {
        self.admission.caller_gone.fetch_add(1, Ordering::Relaxed);
    }
}

impl Drop for Pending {
    fn drop(&mut self) {
        let mut counts = self.admission.counts();
        counts.total = counts.total.saturating_sub(1);
        if let Some(key) = self.address {
            // Entries at zero go, so the map holds only addresses with work in progress.
            if let Some(n) = counts.per_address.get_mut(&key) {
                *n = n.saturating_sub(1);
                if *n == 0 {
                    counts.per_address.remove(&key);
                }
            }
        }
    }
}
