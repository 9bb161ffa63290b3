use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use postern_internal::Store;
use prometheus::IntCounterVec;

use super::super::clock::ManualClock;
use super::*;

fn counter() -> IntCounterVec {
    IntCounterVec::new(prometheus::Opts::new("locks", "test"), &["kind"]).unwrap()
}

fn throttle(per_account: u32, per_ip: u32, window: u64, clock: Arc<ManualClock>) -> Throttle {
    Throttle::new(
        Limits {
            per_account,
            per_ip,
            per_account_total: per_account * 2,
            window: Duration::from_secs(window),
            trusted: Vec::new(),
        },
        clock,
        counter(),
    )
}

fn clock() -> Arc<ManualClock> {
    Arc::new(ManualClock::new(
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000),
    ))
}

fn ip(s: &str) -> Option<IpAddr> {
    Some(s.parse().unwrap())
}

#[test]
fn locks_after_limit_and_unlocks_after_window() {
    let clock = Arc::new(ManualClock::new(
        SystemTime::UNIX_EPOCH + Duration::from_secs(1000),
    ));
    let t = throttle(3, 5, 60, clock.clone());
    let ip: IpAddr = "192.0.2.1".parse().unwrap();
    for _ in 0..3 {
        assert!(t.check("Alice", Some(ip)).is_ok());
        t.failed("Alice", Some(ip));
    }
    assert_eq!(t.check("alice", None), Err(Duration::from_secs(60)));
    // Another account from the same address still has attempts left…
    assert!(t.check("bob", Some(ip)).is_ok());
    t.failed("bob", Some(ip));
    t.failed("carol", Some(ip));
    // …until the address itself is over its limit.
    assert!(t.check("dave", Some(ip)).is_err());
    clock.advance(Duration::from_secs(61));
    assert!(t.check("alice", Some(ip)).is_ok());
}

#[test]
fn success_clears_the_account() {
    let clock = Arc::new(ManualClock::new(SystemTime::UNIX_EPOCH));
    let t = throttle(2, 100, 60, clock);
    t.failed("alice", None);
    t.succeeded("alice", None);
    t.failed("alice", None);
    assert!(t.check("alice", None).is_ok());
}

async fn store() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/store.db", dir.path().display());
    let store = Store::open(&url, 2, Duration::from_secs(5)).await.unwrap();
    (dir, store)
}

#[tokio::test]
async fn failures_add_up_across_daemons_sharing_a_store() {
    let (_dir, store) = store().await;
    let clock = clock();
    let a = throttle(3, 100, 60, clock.clone());
    let b = throttle(3, 100, 60, clock.clone());
    let ip: IpAddr = "192.0.2.7".parse().unwrap();
    // Two failures on each daemon: neither is over 3 on its own.
    for t in [&a, &b] {
        t.failed("alice", Some(ip));
        t.failed("Alice", Some(ip));
    }
    assert!(a.check("alice", None).is_ok() && b.check("alice", None).is_ok());
    for t in [&a, &b, &a] {
        t.sync(&store).await.unwrap();
    }
    // Four in total: locked on both, until the window that began with the first ends.
    assert_eq!(a.check("alice", None), Err(Duration::from_secs(60)));
    assert_eq!(b.check("ALICE", None), Err(Duration::from_secs(60)));
    // The address that failed is locked for alice on both daemons too.
    assert!(b.check("alice", Some(ip)).is_err());
    // alice is locked; the address (4 failures of 100) is not.
    assert_eq!(a.locked(), (1, 0));
    assert!(a.check("bob", Some(ip)).is_ok());
    // A success on one daemon clears the account everywhere, after the next syncs.
    a.succeeded("alice", Some(ip));
    assert!(a.check("alice", None).is_ok());
    a.sync(&store).await.unwrap();
    b.sync(&store).await.unwrap();
    assert!(b.check("alice", None).is_ok());
    // Windows end in the store as they do in memory.
    b.failed("carol", None);
    b.failed("carol", None);
    a.failed("carol", None);
    a.sync(&store).await.unwrap();
    b.sync(&store).await.unwrap();
    assert!(b.check("carol", None).is_err());
    clock.advance(Duration::from_secs(61));
    b.sync(&store).await.unwrap();
    assert!(b.check("carol", None).is_ok());
    assert_eq!(b.purge(&store).await.unwrap(), 2, "carol and the address");
}

/// Finding 2: the check and the count were separate, so concurrent guesses all passed the
/// check before the first of them failed. Reservations are taken in the check.
#[test]
fn reservations_are_counted_before_the_answer() {
    let t = throttle(10, 1000, 60, clock());
    // 100 attempts in flight at once from one address: 10 admitted.
    let held: Vec<_> = (0..100)
        .filter_map(|_| t.try_reserve("alice", ip("192.0.2.1")).ok())
        .collect();
    assert_eq!(held.len(), 10);
    for r in held {
        r.failed();
    }
    // From 100 addresses: each has its own budget, but the account's total (20) is reached
    // and the rest are refused.
    let held: Vec<_> = (0..100)
        .filter_map(|i| t.try_reserve("bob", ip(&format!("198.51.100.{i}"))).ok())
        .collect();
    assert_eq!(held.len(), 20);
    // Released reservations (an outage) give their place back.
    for r in held {
        r.release();
    }
    assert!(t.try_reserve("bob", ip("198.51.100.1")).is_ok());
}

/// Finding 1: a client that sends a password and hangs up before the answer used to cost
/// nothing. A reservation dropped undecided stays a failure.
#[test]
fn an_attempt_abandoned_by_its_caller_counts_as_a_failure() {
    let t = throttle(3, 1000, 60, clock());
    for _ in 0..3 {
        drop(t.try_reserve("carol", ip("192.0.2.9")).unwrap());
    }
    assert!(t.try_reserve("carol", ip("192.0.2.9")).is_err());
}

/// Finding 3: ten wrong passwords from one address locked the owner out everywhere.
#[test]
fn a_third_party_locks_its_own_address_not_the_owner() {
    let t = throttle(10, 1000, 300, clock());
    let home = ip("2001:db8:1:1::5");
    t.succeeded("alice", home);
    for _ in 0..10 {
        t.failed("alice", ip("203.0.113.9"));
    }
    // The attacker's address is locked for alice, in any case of the name…
    assert!(t.check("alice", ip("203.0.113.9")).is_err());
    assert!(t.check("ALICE", ip("203.0.113.9")).is_err());
    // …but not the owner's known-good address (another address of its /64 even), nor an
    // address that never failed.
    assert!(t.check("Alice", ip("2001:db8:1:1::77")).is_ok());
    assert!(t.check("alice", ip("192.0.2.50")).is_ok());
    // Many attacking addresses put the account under attack: only known-good ones may try.
    for i in 0..10 {
        t.failed("alice", ip(&format!("198.51.100.{i}")));
    }
    assert!(t.check("alice", ip("192.0.2.50")).is_err());
    assert!(t.check("alice", home).is_ok());
    // The known-good address still has only its own budget.
    for _ in 0..10 {
        t.failed("alice", home);
    }
    assert!(t.check("alice", home).is_err());
}

#[test]
fn success_under_the_canonical_name_makes_the_address_known_good_for_it() {
    let t = throttle(2, 1000, 300, clock());
    let r = t.try_reserve("ALICE@example.org", ip("192.0.2.1")).unwrap();
    r.succeeded("Alice");
    for i in 0..4 {
        t.failed("alice", ip(&format!("198.51.100.{i}")));
    }
    assert!(t.check("alice", ip("192.0.2.2")).is_err(), "under attack");
    assert!(
        t.check("aLiCe", ip("192.0.2.1")).is_ok(),
        "known-good for the canonical name"
    );
    assert!(
        t.check("alice@EXAMPLE.org", ip("192.0.2.1")).is_ok(),
        "and the typed one"
    );
}

#[test]
fn trusted_networks_are_neither_counted_nor_refused() {
    let mut limits = Limits {
        per_account: 2,
        per_ip: 2,
        per_account_total: 2,
        window: Duration::from_secs(60),
        trusted: vec!["10.0.0.0/8".parse().unwrap()],
    };
    let t = Throttle::new(limits.clone(), clock(), counter());
    for _ in 0..10 {
        t.failed("alice", ip("10.1.2.3"));
    }
    assert!(t.check("alice", ip("10.1.2.3")).is_ok());
    assert!(t.check("alice", None).is_ok(), "nothing counted");
    limits.trusted.clear();
    let t = Throttle::new(limits, clock(), counter());
    t.failed("alice", ip("10.1.2.3"));
    t.failed("alice", ip("10.1.2.3"));
    assert!(t.check("alice", ip("10.1.2.3")).is_err());
}

#[test]
fn ipv6_addresses_count_per_64() {
    let t = throttle(1000, 5, 60, clock());
    for i in 0..5 {
        t.failed(&format!("user{i}"), ip(&format!("2001:db8:0:7::{i:x}")));
    }
    assert!(t.check("someone", ip("2001:db8:0:7:ffff::1")).is_err());
    assert!(t.check("someone", ip("2001:db8:0:8::1")).is_ok());
}

/// Finding 9: a spray of distinct names and addresses grew memory without bound.
#[test]
fn tracked_keys_are_capped_under_a_spray() {
    let clock = clock();
    let t = throttle(10, 50, 300, clock.clone());
    // A locked address keeps its count while the spray goes on (it failed recently).
    for i in 0..100_000u32 {
        clock.advance(Duration::from_millis(1));
        let [a, b, c, d] = (0x0a00_0000 + i).to_be_bytes();
        t.failed(&format!("user{i}"), ip(&format!("{a}.{b}.{c}.{d}")));
        if i % 500 == 0 {
            t.failed("victim", ip("192.0.2.200"));
        }
        assert!(t.tracked() <= MAX_KEYS);
    }
    assert!(t.tracked() > MAX_KEYS / 2);
    assert!(t.check("victim", ip("192.0.2.200")).is_err());
}

#[tokio::test]
async fn locks_are_counted_and_few_rows_are_written_under_a_spray() {
    let (_dir, store) = store().await;
    let clock = clock();
    let locks = counter();
    let t = Throttle::new(
        Limits {
            per_account: 3,
            per_ip: 50,
            per_account_total: 6,
            window: Duration::from_secs(300),
            trusted: Vec::new(),
        },
        clock,
        locks.clone(),
    );
    for i in 0..1000 {
        t.failed(&format!("user{i}"), ip(&format!("2001:db8:{i:x}::1")));
    }
    for _ in 0..3 {
        t.failed("alice", ip("192.0.2.1"));
    }
    assert_eq!(locks.with_label_values(&["account-address"]).get(), 1);
    assert_eq!(locks.with_label_values(&["account"]).get(), 0);
    t.sync(&store).await.unwrap();
    // One failure per name and address is not written, nor the address's 3 of 50; alice's
    // are.
    let keys = store.login_failure_keys().await.unwrap();
    assert_eq!(keys, vec!["account:alice", "pair:192.0.2.1|alice"]);
}

#[tokio::test]
async fn a_lock_deleted_from_the_store_is_lifted_at_the_next_sync() {
    let (_dir, store) = store().await;
    let t = throttle(3, 100, 300, clock());
    for _ in 0..3 {
        t.failed("alice", ip("192.0.2.1"));
    }
    t.sync(&store).await.unwrap();
    assert!(t.check("alice", ip("192.0.2.1")).is_err());
    let keys = store.login_failure_keys().await.unwrap();
    store.delete_login_failures(&keys).await.unwrap();
    t.sync(&store).await.unwrap();
    assert!(t.check("alice", ip("192.0.2.1")).is_ok());
    assert!(t.check("alice", None).is_ok());
}

#[test]
fn the_new_keys_are_validated() {
    let mut c = crate::config::Config::default();
    c.authentication.trusted_networks = vec!["10.0.0.0/8".into(), "webmail.local".into()];
    c.authentication.max_failures_per_account_total = Some(0);
    let errors: Vec<String> = crate::config::validate(&c, "postern.toml")
        .iter()
        .map(|e| e.to_string())
        .collect();
    assert!(
        errors
            .iter()
            .any(|e| e.contains("authentication.trusted-networks[1]")),
        "{errors:?}"
    );
    assert!(
        errors
            .iter()
            .any(|e| e.contains("authentication.max-failures-per-account-total")),
        "{errors:?}"
    );
    c.authentication.max_failures_per_account_total = None;
    assert_eq!(
        c.authentication.account_total(),
        20,
        "twice the per-account default"
    );
    let limits = crate::runtime::throttle_limits(&c.authentication);
    assert_eq!(limits.trusted, vec!["10.0.0.0/8".parse::<IpNet>().unwrap()]);
}

/// Finding 3: account keys are the canonical principal. Once a directory answered for
/// `alice@example.org` with `alice`, guesses under either name share alice's budget.
#[test]
fn guesses_under_an_alias_count_against_the_canonical_name() {
    let t = throttle(3, 1000, 60, clock());
    let attacker = ip("192.0.2.66");
    // Learnt from a directory's answer (a rejection naming the account).
    t.try_reserve("Alice@Example.org", attacker)
        .unwrap()
        .failed_as("alice");
    for _ in 0..2 {
        t.try_reserve("alice@example.org", attacker)
            .unwrap()
            .failed();
    }
    assert!(
        t.try_reserve("alice", attacker).is_err(),
        "one budget for both names"
    );
    assert!(t.try_reserve("ALICE@example.org", attacker).is_err());
    // Another account is untouched.
    assert!(t.try_reserve("bob", attacker).is_ok());
}

/// Successful logins of many accounts leave nothing to track: the table holds failures and
/// attempts in flight, so a large user base never fills it (filling it cost eviction passes
/// under the lock on every few thousand logins).
#[test]
fn successes_leave_nothing_tracked() {
    let t = throttle(10, 50, 300, clock());
    for i in 0..1_000u32 {
        let r = t
            .try_reserve(&format!("user{i}"), ip("192.0.2.7"))
            .expect("not locked");
        r.succeeded(&format!("user{i}"));
    }
    // The address block's own entry may stay (a success does not clear a block's count),
    // but no account's.
    assert!(t.tracked() <= 1, "{} entries tracked", t.tracked());
    // A failure is still counted and kept.
    t.try_reserve("user1", ip("192.0.2.7"))
        .expect("not locked")
        .failed();
    assert!(t.tracked() >= 1);
}

/// Attempts in flight on an account fill its budget only until they end: an attempt beyond it
/// waits for one of them instead of being refused (forty SMTP workers of one application,
/// one account), and is refused only if they failed.
#[tokio::test(start_paused = true)]
async fn attempts_beyond_those_in_flight_wait_for_them() {
    let t = throttle(2, 1000, 60, clock());
    let first = t.try_reserve("app", None).unwrap();
    let second = t.try_reserve("app", None).unwrap();
    assert_eq!(t.try_reserve("app", None).err(), Some(Refusal::Busy));
    let third = t.reserve("app", None);
    tokio::pin!(third);
    // Still waiting while both are in flight…
    assert!(tokio::time::timeout(Duration::from_secs(1), &mut third)
        .await
        .is_err());
    // …admitted as soon as one succeeds.
    first.succeeded("app");
    let third = third.await.unwrap();
    // Two failures lock the account: one waiting is refused as locked, not busy.
    let fourth = t.reserve("app", None);
    tokio::pin!(fourth);
    assert!(tokio::time::timeout(Duration::from_secs(1), &mut fourth)
        .await
        .is_err());
    second.failed();
    third.failed();
    assert!(matches!(fourth.await, Err(Refusal::Locked(_))));
    assert_eq!(t.waiting.load(std::sync::atomic::Ordering::Relaxed), 0);
}

/// The wait is bounded: attempts in flight that never end refuse the others after
/// `BUSY_WAIT`, as a temporary refusal, and nothing is left counted as waiting.
#[tokio::test(start_paused = true)]
async fn waiting_for_attempts_in_flight_is_bounded() {
    let t = throttle(1, 1000, 60, clock());
    let held = t.try_reserve("app", ip("192.0.2.1")).unwrap();
    let started = tokio::time::Instant::now();
    assert_eq!(
        t.reserve("app", ip("192.0.2.1")).await.err(),
        Some(Refusal::Busy)
    );
    assert_eq!(started.elapsed(), BUSY_WAIT);
    assert_eq!(t.waiting.load(std::sync::atomic::Ordering::Relaxed), 0);
    held.release();
    assert!(t.reserve("app", ip("192.0.2.1")).await.is_ok());
}
