use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use argon2::password_hash::PasswordHash;
use proptest::prelude::*;
use zeroize::Zeroizing;

use super::admission::Bound;
use super::*;

/// Limits small enough that fuzzed inputs which happen to parse finish at once.
const TINY: Limits = Limits {
    max_memory_bytes: 1 << 20,
    max_iterations: 2_000,
    max_bcrypt_cost: 5,
    max_passes: 2,
};

fn label_of(stored: &str) -> &'static str {
    identify(stored).map(Scheme::label).unwrap_or("error")
}

#[test]
fn every_vector_verifies_right_and_rejects_wrong() {
    let vectors = vectors::all();
    assert!(vectors.len() > 70);
    for v in &vectors {
        assert!(!v.command.is_empty(), "{} has no command", v.hash);
        assert_eq!(
            label_of(v.hash),
            v.label,
            "identify {} ({})",
            v.hash,
            v.command
        );
        assert_eq!(
            verify(v.hash, v.password.as_bytes()),
            Ok(true),
            "right password for {} ({})",
            v.hash,
            v.command
        );
        let wrong = format!("{}!", v.password);
        assert_eq!(
            verify(v.hash, wrong.as_bytes()),
            Ok(false),
            "wrong password for {} ({})",
            v.hash,
            v.command
        );
    }
}

/// Flips one alphanumeric character near the end (inside the digest for every format here).
fn garble(hash: &str) -> String {
    let mut chars: Vec<char> = hash.chars().collect();
    if let Some(c) = chars
        .iter_mut()
        .rev()
        .skip(4)
        .find(|c| c.is_ascii_alphanumeric())
    {
        *c = if *c == 'a' { 'b' } else { 'a' };
    }
    chars.into_iter().collect()
}

#[test]
fn truncated_or_garbled_vectors_never_verify() {
    for v in vectors::all() {
        // Dropping only Base64 padding leaves the same digest, so cut a real character.
        let unpadded = v.hash.trim_end_matches('=');
        let boundaries: Vec<usize> = unpadded.char_indices().map(|(i, _)| i).collect();
        let half = boundaries[boundaries.len() / 2];
        let last = boundaries[boundaries.len() - 1];
        let garbled = garble(v.hash);
        for broken in [&unpadded[..half], &unpadded[..last], garbled.as_str()] {
            let result = verify(broken, v.password.as_bytes());
            assert_ne!(result, Ok(true), "{broken} from {}", v.command);
        }
    }
}

#[test]
fn values_without_a_known_scheme_are_never_cleartext() {
    for stored in [
        "secret",
        "",
        "{secret",
        "$9$secret",
        "73a8uhI5VPaSs",
        "_secret",
    ] {
        let err = verify(stored, stored.as_bytes()).unwrap_err();
        assert!(
            matches!(err, SecretError::UnknownScheme(_)),
            "{stored}: {err}"
        );
        if !stored.is_empty() {
            assert!(!err.to_string().contains(stored), "{err} echoes the value");
        }
    }
    assert_eq!(
        verify("{FOO}secret", b"secret"),
        Err(SecretError::UnknownScheme("{FOO}".into()))
    );
    assert_eq!(
        identify("{SHA256.ZIP}abc"),
        Err(SecretError::UnknownScheme("{SHA256.ZIP}".into()))
    );
}

#[test]
fn recognised_but_unsupported_schemes_say_so() {
    // mkpasswd -m descrypt secret / doveadm pw -s DES-CRYPT -p secret
    for (stored, scheme) in [
        ("{CRYPT}73a8uhI5VPaSs", "des-crypt"),
        ("{des-crypt}5kQWHu2bE.tKw", "des-crypt"),
        (
            "{CRAM-MD5}e02d374fde0dc75a17a557039a3a5338c7743304777dccd376f332bee68d2cf6",
            "cram-md5",
        ),
        (
            "$2x$05$9HqvJJff88EJ2C4N4YrhRurtIKoVf0G/lAEN7y18zYBQvNOewjmUi",
            "bcrypt-2x",
        ),
        ("{CRYPT}_J9..CCCCXBrJUJV154M", "bsdi-crypt"),
    ] {
        assert_eq!(
            verify(stored, b"secret"),
            Err(SecretError::Unsupported { scheme })
        );
    }
}

#[test]
fn tags_are_case_insensitive() {
    // doveadm pw -s SSHA -p secret; doveadm pw -s SHA256.HEX -p secret
    for stored in [
        "{ssha}vMyOBC7cExeKX6Z2PLcT4iHrk8NMYQCP",
        "{Plain}secret",
        "{clear.b64}c2VjcmV0",
        "{sha256.hex}2bb80d537b1da3e38bd30361aa855686bde0eacd7162fef6a25fe97bf527a25b",
        "{crypt}$1$CoVFHdVp$9nBZ1wi6szmHqH9jzTXao1",
    ] {
        assert_eq!(verify(stored, b"secret"), Ok(true), "{stored}");
    }
}

#[test]
fn one_tag_two_formats() {
    // Dovecot's {MD5} is MD5-crypt; LDAP's is a Base64 digest (doveadm pw -s MD5 / slappasswd -h {MD5}).
    assert_eq!(
        identify("{MD5}$1$NIFh.02g$MCc16lOvSXfDVg7mPUgBw."),
        Ok(Scheme::Md5Crypt)
    );
    assert_eq!(identify("{MD5}Xr4ilOzQ4PCOq3aQ0qbuaQ=="), Ok(Scheme::Md5));
    // Hex and Base64 MD5 both verify under either tag.
    assert_eq!(
        verify("{LDAP-MD5}5ebe2294ecd0e0f08eab7690d2a6ee69", b"secret"),
        Ok(true)
    );
    assert_eq!(
        verify("{PLAIN-MD5}Xr4ilOzQ4PCOq3aQ0qbuaQ", b"secret"),
        Ok(true)
    );
}

#[test]
fn costs_beyond_the_limits_are_refused_before_any_work() {
    let too_costly = [
        ("$argon2id$v=19$m=4194304,t=1,p=1$c2FsdHNhbHQ$qepNvjnd87jUmDo1KWSnSNx4iF2FZaVdFXhO9jdW5ak", "argon2"),
        ("$2b$31$9HqvJJff88EJ2C4N4YrhRurtIKoVf0G/lAEN7y18zYBQvNOewjmUi", "bcrypt"),
        ("$6$rounds=999999999$saltsaltsaltsalt$ph0yGsyjzqdeFaon7.gJZo8eAG5/rj9/JdzOu1Rl7dKzBYg3xgvl7T2VQ2Rt81bc5AXkdA54r0p8QvC1omD6R1", "sha512-crypt"),
        ("$scrypt$ln=40,r=8,p=1$+Z9T6n2P8d6b0xrDmPO+9w$IeFJyt0Jb07BtegRPUMoqzUcxCJAykAqPpIdlaoelcI", "scrypt"),
        ("$7$zU..../....Nw9dbXuYpSKdj2RqUoc3d1$Gn4bVU7YMCcPoGnvjwwjLOmouJqibOrQXt0LVN9ueE4", "scrypt"),
        ("$y$jJT$VWNrZCqVwfCqzK.npRfGD/$lYsBnrZovCHA53HfaukQ1LxG1zrq3mMt33LkoMQj3W7", "yescrypt"),
        ("$pbkdf2-sha256$4000000000$EeJ8711rTSklBCCEkNL6nw$KkEBT6woGXu8aBtl6RJcnbxyRg.Yze/l1MWz5gTZfoA", "pbkdf2"),
        ("{SCRAM-SHA-1}4000000000,R14sqLR88ZSTQaTYe8T1uw==,qLFs/hOcG++HFfDk66foadz5NQs=,ljCC0zhJFa5cQKL7s4k9ECTGT1g=", "scram-sha-1"),
    ];
    for (stored, scheme) in too_costly {
        assert_eq!(
            verify(stored, b"secret"),
            Err(SecretError::CostTooHigh { scheme }),
            "{stored}"
        );
    }
    // The real vectors all exceed the tiny limits used for fuzzing, except the cheap digests.
    assert_eq!(
        verify_with_limits(dummy_hash(), b"x", &TINY),
        Err(SecretError::CostTooHigh { scheme: "argon2" })
    );
}

#[test]
fn dummy_hash_is_real_and_matches_new_hashes() {
    assert_eq!(verify(dummy_hash(), b"x"), Ok(false));
    assert_eq!(verify(dummy_hash(), b""), Ok(false));
    let fresh = hash_password(b"correct horse").unwrap();
    assert_eq!(verify(&fresh, b"correct horse"), Ok(true));
    assert_eq!(verify(&fresh, b"correct horsf"), Ok(false));
    let dummy = PasswordHash::new(dummy_hash()).unwrap();
    let fresh = PasswordHash::new(&fresh).unwrap();
    assert_eq!(dummy.algorithm, fresh.algorithm);
    assert_eq!(dummy.version, fresh.version);
    assert_eq!(dummy.params, fresh.params);
    assert_eq!(dummy.salt.map(|s| s.len()), fresh.salt.map(|s| s.len()));
    assert_eq!(dummy.hash.map(|h| h.len()), fresh.hash.map(|h| h.len()));
}

#[test]
fn labels_are_short_lowercase_metric_values() {
    for v in vectors::all() {
        let label = label_of(v.hash);
        assert!(label.len() <= 16, "{label}");
        assert!(label
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-'));
    }
}

proptest! {
    #[test]
    fn arbitrary_strings_never_panic(stored in any::<String>(), password in any::<Vec<u8>>()) {
        let _ = identify(&stored);
        prop_assert_ne!(verify_with_limits(&stored, &password, &TINY), Ok(true));
    }

    #[test]
    fn arbitrary_bodies_behind_known_prefixes_never_panic(
        prefix in prop::sample::select(vec![
            "$argon2id$", "$argon2i$v=19$m=8,t=1,p=1$", "$2b$", "$2y$04$", "$6$", "$5$rounds=",
            "$1$", "$apr1$", "$y$", "$y$j9T$", "$7$", "$7$0", "$scrypt$ln=1,r=1,p=1$",
            "$pbkdf2-sha256$", "$pbkdf2-sha256$i=1$", "$pbkdf2$1$", "pbkdf2_sha256$1$",
            "{CRYPT}", "{SSHA}", "{SHA.HEX}", "{PLAIN.B64}", "{PBKDF2}$1$", "{PBKDF2-SHA512}1$",
            "{SCRAM-SHA-256}1,", "{ARGON2}$argon2i$", "{MD5}", "{ssha512}", "{",
        ]),
        body in "[ -~äé€日]{0,90}",
        password in any::<Vec<u8>>(),
    ) {
        let stored = format!("{prefix}{body}");
        let _ = identify(&stored);
        let _ = verify_with_limits(&stored, &password, &TINY);
    }
}

/// Cheap but real parameters, so that well-shaped random hashes reach the KDFs themselves.
const SMALL: Limits = Limits {
    max_memory_bytes: 2 << 20,
    max_iterations: 2_000,
    max_bcrypt_cost: 4,
    max_passes: 2,
};

#[test]
fn well_shaped_hashes_with_a_foreign_digest_are_wrong_passwords() {
    // Cheap parameters and a digest that is not the one for "secret" (mkpasswd -m yescrypt -R 1
    // secret gave `$y$j75$7J9etK6PVOWBnWVGy/ayX/$2hy8z7BlqAwRa0ChfAYs8DbN4tjiVu6VeSREAS3twp9`).
    let abc =
        "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789abcdefghijklmnopqrstuvwx";
    for (prefix, len, last) in [
        ("$y$j75$7J9etK6PVOWBnWVGy/ayX/$", 42, "."),
        ("$7$4/..../....saltsalt$", 42, "."),
        ("$6$saltsalt$", 85, "."),
        ("$5$rounds=1000$saltsalt$", 42, "."),
        ("$1$saltsalt$", 21, "."),
        ("$2b$04$abcdefghijklmnopqrstuu", 30, "."),
        ("$argon2id$v=19$m=64,t=1,p=1$c2FsdHNhbHQ$", 42, "A"),
        ("$scrypt$ln=4,r=1,p=1$c2FsdHNhbHQ$", 42, "A"),
        ("$pbkdf2-sha256$1000$c2FsdHNhbHQ$", 42, "A"),
    ] {
        let stored = format!("{prefix}{}{last}", &abc[..len]);
        assert_eq!(
            verify_with_limits(&stored, b"secret", &SMALL),
            Ok(false),
            "{stored}"
        );
    }
    let yescrypt = "$y$j75$7J9etK6PVOWBnWVGy/ayX/$2hy8z7BlqAwRa0ChfAYs8DbN4tjiVu6VeSREAS3twp9";
    assert_eq!(verify_with_limits(yescrypt, b"secret", &SMALL), Ok(true));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    #[test]
    fn well_shaped_random_hashes_never_panic_or_verify(
        prefix in prop::sample::select(vec![
            "$y$j75$", "$7$4/..../....", "$6$", "$5$rounds=1000$", "$1$", "$apr1$",
            "$scrypt$ln=4,r=1,p=1$", "$argon2id$v=19$m=64,t=1,p=1$", "$pbkdf2-sha256$1000$",
            "$pbkdf2-sha512$i=1000$", "pbkdf2_sha256$1000$", "{PBKDF2-SHA256}1000$",
            "{PBKDF2}$1$", "{CRYPT}$6$", "{ARGON2}$argon2i$v=19$m=64,t=1,p=1$",
        ]),
        salt in "[./0-9A-Za-z]{0,24}",
        digest_len in prop::sample::select(vec![0usize, 1, 22, 27, 31, 43, 53, 86, 88]),
        digest_chars in "[./0-9A-Za-z+]{88}",
        password in any::<Vec<u8>>(),
    ) {
        let digest: String = digest_chars.chars().take(digest_len).collect();
        let stored = format!("{prefix}{salt}${digest}");
        let _ = identify(&stored);
        prop_assert_ne!(verify_with_limits(&stored, &password, &SMALL), Ok(true), "{}", stored);
        let bcrypt = format!("$2b$04${salt}{digest}");
        prop_assert_ne!(verify_with_limits(&bcrypt, &password, &SMALL), Ok(true), "{}", bcrypt);
    }
}

#[tokio::test]
async fn hasher_reports_the_scheme_and_drains() {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let record = Arc::clone(&seen);
    let hasher = Hasher::new(2).with_observer(Arc::new(move |label| {
        record.lock().unwrap().push(label);
    }));
    let hash = hasher.hash(Zeroizing::new(b"pw".to_vec())).await.unwrap();
    let ok = hasher.verify(&hash, b"pw").await;
    assert_eq!(ok, Ok(true));
    let plain = hasher.verify("{PLAIN}pw", b"px").await;
    assert_eq!(plain, Ok(false));
    let unknown = hasher.verify("pw", b"pw").await;
    assert!(matches!(unknown, Err(SecretError::UnknownScheme(_))));
    assert_eq!(*seen.lock().unwrap(), vec!["argon2", "plain"]);
    assert_eq!(hasher.queued(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hasher_bounds_work_and_counts_abandoned_jobs() {
    let running = Arc::new(AtomicUsize::new(0));
    let peak = Arc::new(AtomicUsize::new(0));
    let hasher = Hasher::new(1);
    let mut jobs = Vec::new();
    for _ in 0..3 {
        let (hasher, running, peak) = (hasher.clone(), Arc::clone(&running), Arc::clone(&peak));
        jobs.push(tokio::spawn(async move {
            hasher
                .run(move || {
                    let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                    peak.fetch_max(now, Ordering::SeqCst);
                    std::thread::sleep(Duration::from_millis(30));
                    running.fetch_sub(1, Ordering::SeqCst);
                    Ok(())
                })
                .await
        }));
    }
    for job in jobs {
        job.await.unwrap().unwrap();
    }
    assert_eq!(peak.load(Ordering::SeqCst), 1);

    // A caller that gives up does not free the slot or the gauge before the work ends.
    let abandoned =
        tokio::time::timeout(Duration::from_millis(1), hasher.verify(dummy_hash(), b"x")).await;
    assert!(abandoned.is_err(), "argon2 finished within 1 ms");
    assert_eq!(hasher.queued(), 1);
    for _ in 0..500 {
        if hasher.queued() == 0 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("abandoned verification never finished");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hasher_verifies_waiting_sha512_crypt_together() {
    let body = "$6$Gvdhm3.yB5B.XPjt$8hADQ2aqJ46k7/AoTqpN4L6V9qITCGhaGHa1y6u/4ZnPslTc3YcLpTTAcCs.GY4p1JfbFQEqGeIijefG0iXLO1";
    let hasher = Hasher::new(1);
    // Keep the only thread busy so that everything below waits in the queue together.
    let gate = {
        let hasher = hasher.clone();
        tokio::spawn(async move {
            hasher
                .run(|| {
                    std::thread::sleep(Duration::from_millis(300));
                    Ok(())
                })
                .await
        })
    };
    tokio::time::sleep(Duration::from_millis(50)).await;
    let mut jobs = Vec::new();
    for i in 0..12 {
        let stored = match i % 3 {
            0 => format!("{{SHA512-CRYPT}}{body}"),
            1 => format!("{{CRYPT}}{body}"),
            _ => body.to_string(),
        };
        let (password, expected) = if i % 4 == 3 {
            ("Secret", false)
        } else {
            ("secret", true)
        };
        let h = hasher.clone();
        jobs.push(tokio::spawn(async move {
            let got = h.verify(&stored, password.as_bytes()).await;
            (got, expected)
        }));
        if i == 6 {
            // A job of another scheme among them keeps its place and its answer.
            let h = hasher.clone();
            jobs.push(tokio::spawn(async move {
                let got = h.verify("{PLAIN}secret", b"secret").await;
                (got, true)
            }));
        }
    }
    gate.await.unwrap().unwrap();
    for job in jobs {
        let (got, expected) = job.await.unwrap();
        assert_eq!(got, Ok(expected));
    }
    if super::multibuffer::available() {
        // Twelve waited: two batches of five, then two alone.
        assert_eq!(hasher.batched(), 10);
    } else {
        assert_eq!(hasher.batched(), 0);
    }
    assert_eq!(hasher.queued(), 0);
}

#[tokio::test]
async fn burn_costs_what_the_directorys_own_hashes_cost() {
    let body = "$6$Gvdhm3.yB5B.XPjt$8hADQ2aqJ46k7/AoTqpN4L6V9qITCGhaGHa1y6u/4ZnPslTc3YcLpTTAcCs.GY4p1JfbFQEqGeIijefG0iXLO1";
    let seen = Arc::new(Mutex::new(Vec::new()));
    let record = Arc::clone(&seen);
    let shared = Hasher::new(1).with_observer(Arc::new(move |label| {
        record.lock().unwrap().push(label);
    }));
    let (sql, ldap) = (shared.scoped(), shared.scoped());
    let last = || seen.lock().unwrap().pop();

    // Nothing verified yet: the argon2id dummy.
    sql.burn(None, "guess").await.unwrap();
    assert_eq!(last(), Some("argon2"));
    // After a real SHA-512-crypt check (right or wrong), "no such user" costs the same.
    let v = sql
        .check(None, &format!("{{SHA512-CRYPT}}{body}"), "wrong")
        .await;
    assert_eq!(v.unwrap(), Verdict::Mismatch);
    assert_eq!(last(), Some("sha512-crypt"));
    sql.burn(None, "guess").await.unwrap();
    assert_eq!(last(), Some("sha512-crypt"));
    // Another directory keeps its own decoy.
    ldap.burn(None, "guess").await.unwrap();
    assert_eq!(last(), Some("argon2"));
    // A value that cannot be verified is no decoy; the previous one stays.
    let v = sql.check(None, "{NOSUCH}x", "guess").await.unwrap();
    assert!(matches!(v, Verdict::Unverifiable(_)));
    sql.burn(None, "guess").await.unwrap();
    assert_eq!(last(), Some("sha512-crypt"));
    // A cleartext password is not kept: a fixed cleartext value stands in for it.
    let v = ldap
        .check(None, "{PLAIN}real-password", "real-password")
        .await;
    assert_eq!(v.unwrap(), Verdict::Match);
    ldap.burn(None, "real-password").await.unwrap();
    assert_eq!(last(), Some("plain"));
    let kept = ldap
        .decoy
        .lock()
        .unwrap()
        .as_ref()
        .map(|d| d.stored.to_string());
    assert_eq!(kept.as_deref(), Some("{PLAIN}postern-decoy"));
}

/// Hardening finding 8: after a login to an `{SSHA}` account an unknown user cost 0.49 ms,
/// an argon2 account 63 ms. The decoy is now the dearest hash seen, not the last.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_a_directory_of_mixed_hashes_the_decoy_is_the_dearest() {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let record = Arc::clone(&seen);
    let d = Hasher::new(1)
        .with_observer(Arc::new(move |label| {
            record.lock().unwrap().push(label);
        }))
        .scoped();
    let last = || seen.lock().unwrap().pop();
    d.check(None, dummy_hash(), "wrong").await.unwrap();
    d.check(None, "{SSHA}0LWnq5OC1wi7ig3PNCTzvMaDpSDL5Saa", "wrong")
        .await
        .unwrap();
    assert_eq!(last(), Some("ssha"));
    d.burn(None, "guess").await.unwrap();
    assert_eq!(
        last(),
        Some("argon2"),
        "the argon2 account's cost, not the last login's"
    );
}

#[test]
fn a_default_scheme_reads_only_untagged_values() {
    use std::borrow::Cow;
    assert_eq!(
        with_default_scheme("secret", Some("PLAIN")),
        Cow::<str>::Owned("{PLAIN}secret".into())
    );
    assert!(verify(&with_default_scheme("secret", Some("PLAIN")), b"secret").unwrap());
    // Self-describing and tagged values are left alone; an unknown tag stays unknown.
    let sha = "$6$Gvdhm3.yB5B.XPjt$8hADQ2aqJ46k7/AoTqpN4L6V9qITCGhaGHa1y6u/4ZnPslTc3YcLpTTAcCs.GY4p1JfbFQEqGeIijefG0iXLO1";
    assert_eq!(with_default_scheme(sha, Some("PLAIN")), Cow::Borrowed(sha));
    assert_eq!(
        with_default_scheme("{FOO}x", Some("PLAIN")),
        Cow::Borrowed("{FOO}x")
    );
    assert_eq!(with_default_scheme("secret", None), Cow::Borrowed("secret"));
    assert!(is_known_tag("PLAIN") && is_known_tag("CRYPT") && is_known_tag("SSHA"));
    assert!(!is_known_tag("FOO") && !is_known_tag("") && !is_known_tag("PL}AIN"));
}

/// Occupies the hasher's only thread until the returned sender is dropped or sent to.
async fn block(hasher: &Hasher) -> (std::sync::mpsc::Sender<()>, tokio::task::JoinHandle<()>) {
    let (release, wait) = std::sync::mpsc::channel::<()>();
    let (started, running) = tokio::sync::oneshot::channel();
    let h = hasher.clone();
    let task = tokio::spawn(async move {
        h.run_as(Bound::Client(None), move || {
            let _ = started.send(());
            let _ = wait.recv();
            Ok(())
        })
        .await
        .unwrap();
    });
    running.await.unwrap();
    (release, task)
}

async fn until_queued(hasher: &Hasher, n: usize) {
    for _ in 0..1000 {
        if hasher.queued() == n {
            return;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    panic!("queue never reached {n} (at {})", hasher.queued());
}

/// MD5-crypt of "pw": a login's verification that takes the queue (one-digest schemes such as
/// `{PLAIN}` are verified on the caller's task).
const QUEUED: &str = "$1$abcdefgh$IQtUouv7y7Q9dRWkQEPCc.";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_queue_refuses_at_once_in_total_and_per_address() {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let record = Arc::clone(&seen);
    let hasher = Hasher::with_limits(
        1,
        QueueLimits {
            total: 4,
            per_address: 2,
        },
    )
    .with_observer(Arc::new(move |label| {
        record.lock().unwrap().push(label);
    }));
    let (release, blocker) = block(&hasher).await;
    let ip = |s: &str| Some(s.parse::<std::net::IpAddr>().unwrap());
    let queue = |client| {
        let h = hasher.clone();
        tokio::spawn(async move { h.check(client, QUEUED, "pw").await })
    };
    // 192.0.2.1 fills its share: two waiting.
    let waiting = vec![queue(ip("192.0.2.1")), queue(ip("192.0.2.1"))];
    until_queued(&hasher, 3).await;
    // A third from it is refused at once, a temporary failure, never "wrong password"; so is
    // its "no such user" work (burn).
    let refused = tokio::time::timeout(
        Duration::from_secs(5),
        hasher.check(ip("192.0.2.1"), QUEUED, "pw"),
    )
    .await
    .expect("refused without waiting");
    assert!(
        matches!(refused, Err(crate::DirectoryError::Overloaded(_))),
        "{refused:?}"
    );
    let burned = hasher.burn(ip("192.0.2.1"), "pw").await;
    assert!(matches!(burned, Err(crate::DirectoryError::Overloaded(_))));
    let v6 = vec![queue(ip("2001:db8::1"))];
    until_queued(&hasher, 4).await;
    // The total (4) is reached: any address, or none, is refused.
    for client in [ip("192.0.2.2"), None] {
        let r = hasher.check(client, QUEUED, "pw").await;
        assert!(
            matches!(r, Err(crate::DirectoryError::Overloaded(_))),
            "{r:?}"
        );
    }
    let r = hasher
        .run_as(Bound::Client(ip("192.0.2.3")), || Ok(()))
        .await;
    assert_eq!(r, Err(SecretError::Refused(Refusal::QueueFull)));
    // Operator work is never refused (it waits its turn).
    let exempt = {
        let h = hasher.clone();
        tokio::spawn(async move { h.run(|| Ok(())).await })
    };
    until_queued(&hasher, 5).await;
    assert_eq!(
        hasher.refusals(),
        Refusals {
            queue_full: 3,
            per_address: 2,
            caller_gone: 0
        }
    );
    // Refused work was never verified: the observer (the verifications metric) saw none.
    assert!(seen.lock().unwrap().is_empty());
    drop(release);
    blocker.await.unwrap();
    for job in waiting.into_iter().chain(v6) {
        assert_eq!(job.await.unwrap().unwrap(), Verdict::Match);
    }
    exempt.await.unwrap().unwrap();
    assert_eq!(hasher.queued(), 0);
    // Room again, for everyone.
    let r = hasher.check(ip("192.0.2.1"), QUEUED, "pw").await;
    assert_eq!(r.unwrap(), Verdict::Match);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ipv6_client_is_bounded_by_its_64() {
    let hasher = Hasher::with_limits(
        1,
        QueueLimits {
            total: 100,
            per_address: 1,
        },
    );
    let (release, blocker) = block(&hasher).await;
    let h = hasher.clone();
    let first = tokio::spawn(async move {
        h.check(Some("2001:db8:1:2::1".parse().unwrap()), QUEUED, "pw")
            .await
    });
    until_queued(&hasher, 2).await;
    let same64 = hasher
        .check(Some("2001:db8:1:2:ffff::9".parse().unwrap()), QUEUED, "pw")
        .await;
    assert!(matches!(same64, Err(crate::DirectoryError::Overloaded(_))));
    assert_eq!(hasher.refusals().per_address, 1);
    drop(release);
    blocker.await.unwrap();
    assert_eq!(first.await.unwrap().unwrap(), Verdict::Match);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_whose_caller_is_gone_is_never_run() {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let record = Arc::clone(&seen);
    let hasher = Hasher::new(1).with_observer(Arc::new(move |label| {
        record.lock().unwrap().push(label);
    }));
    let (release, blocker) = block(&hasher).await;
    let ran = Arc::new(AtomicUsize::new(0));
    let task = {
        let (h, ran) = (hasher.clone(), Arc::clone(&ran));
        tokio::spawn(async move {
            h.run_as(Bound::Client(None), move || {
                ran.fetch_add(1, Ordering::SeqCst);
                Ok(())
            })
            .await
        })
    };
    // SHA-512-crypt jobs take the batching queue: dropped there too.
    let body = "$6$Gvdhm3.yB5B.XPjt$8hADQ2aqJ46k7/AoTqpN4L6V9qITCGhaGHa1y6u/4ZnPslTc3YcLpTTAcCs.GY4p1JfbFQEqGeIijefG0iXLO1";
    let crypt = {
        let h = hasher.clone();
        tokio::spawn(async move { h.check(None, body, "secret").await })
    };
    let argon = {
        let h = hasher.clone();
        tokio::spawn(async move { h.burn(None, "guess").await })
    };
    until_queued(&hasher, 4).await;
    // The callers go (a client disconnected, a request cancelled) while the jobs wait.
    task.abort();
    crypt.abort();
    argon.abort();
    assert!(task.await.unwrap_err().is_cancelled());
    assert!(crypt.await.unwrap_err().is_cancelled());
    assert!(argon.await.unwrap_err().is_cancelled());
    drop(release);
    blocker.await.unwrap();
    until_queued(&hasher, 0).await;
    assert_eq!(ran.load(Ordering::SeqCst), 0, "an abandoned job ran");
    assert_eq!(hasher.refusals().caller_gone, 3);
    // Nothing was verified: the observer saw no scheme.
    assert!(seen.lock().unwrap().is_empty());
    // The thread is free for the next live job.
    let r = hasher.check(None, "{PLAIN}pw", "pw").await;
    assert_eq!(r.unwrap(), Verdict::Match);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    /// PHC strings the `argon2` crate writes (any variant, both versions, associated data)
    /// verify through `postern_argon2` as the crate verifies them.
    #[test]
    fn argon2_strings_of_the_argon2_crate_verify(
        password in proptest::collection::vec(any::<u8>(), 0..40),
        algorithm in prop::sample::select(vec![
            argon2::Algorithm::Argon2id, argon2::Algorithm::Argon2i, argon2::Algorithm::Argon2d,
        ]),
        version in prop::sample::select(vec![argon2::Version::V0x13, argon2::Version::V0x10]),
        lanes in 1u32..3,
        extra in 0u32..100,
        t_cost in 1u32..3,
        data in proptest::option::of(proptest::collection::vec(any::<u8>(), 1..16)),
    ) {
        use argon2::password_hash::{PasswordHasher as _, SaltString};
        let mut params = argon2::ParamsBuilder::new();
        params.m_cost(8 * lanes + extra).t_cost(t_cost).p_cost(lanes);
        if let Some(data) = &data {
            params.data(argon2::AssociatedData::new(data).unwrap());
        }
        let hasher = argon2::Argon2::new(algorithm, version, params.build().unwrap());
        let salt = SaltString::generate(&mut rand::rngs::OsRng);
        let stored = hasher.hash_password(&password, &salt).unwrap().to_string();
        prop_assert_eq!(verify(&stored, &password), Ok(true), "{}", stored);
        let mut wrong = password.clone();
        wrong.push(b'!');
        prop_assert_eq!(verify(&stored, &wrong), Ok(false), "{}", stored);
    }
}

/// The hashing threads yield to the runtime's under contention (`queue::NICE`).
#[cfg(target_os = "linux")]
#[tokio::test]
async fn hashing_threads_run_at_a_lower_priority() {
    // SAFETY: getpriority reads the calling thread's nice value; no memory is touched.
    let nice = || unsafe { libc::getpriority(libc::PRIO_PROCESS, 0) };
    let ours = nice();
    let hasher = Hasher::new(1);
    let theirs = hasher.run(move || Ok(nice())).await.unwrap();
    assert_eq!(theirs, (ours + super::queue::NICE).min(19));
    assert!(theirs > ours || ours == 19);
}

/// A hashing thread keeps its argon2 memory while logins keep coming and gives it back once
/// idle for the queue's `keep_for` (10 s in the daemon), so an idle daemon does not hold
/// `hash-concurrency` × 64 MiB after a burst of logins.
#[tokio::test]
async fn an_idle_hashing_thread_gives_its_argon2_memory_back() {
    let hasher = Hasher::keeping_memory_for(1, Duration::from_secs(2));
    let kept = || Ok(postern_argon2::kept_blocks());
    let after_hash = hasher
        .run(|| {
            hash_password(b"some password")?;
            Ok(postern_argon2::kept_blocks())
        })
        .await
        .unwrap();
    assert!(after_hash >= 19 * 1024, "{after_hash} KiB kept");
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(
        hasher.run(kept).await.unwrap(),
        after_hash,
        "given back too soon"
    );
    // The job above restarted the wait; nothing comes now.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(hasher.run(kept).await.unwrap(), 0, "still kept while idle");
}
