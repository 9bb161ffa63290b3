//! Which stored hash a directory's "no such user" costs: the most expensive one it verified
//! recently, so that a directory of mixed schemes (during a migration from `{SSHA}` to
//! argon2id) does not answer unknown users at the cheap scheme's speed.

use std::time::{Duration, Instant};

use zeroize::Zeroizing;

use super::Scheme;

/// How long the most expensive hash seen stays the decoy without being seen again. Long,
/// because accounts of the expensive scheme may log in rarely; a cheaper hash only takes over
/// once none of that cost has been verified for this long.
pub(super) const KEEP: Duration = Duration::from_secs(3600);

pub(super) struct Decoy {
    pub stored: Zeroizing<String>,
    cost: u64,
    seen: Instant,
}

impl Decoy {
    /// `stored` (of `scheme`) was verified now: it becomes the decoy of `kept` if it is as
    /// costly as the kept one or more, or the kept one has not been seen for [`KEEP`]. The
    /// same value seen again is only marked seen: no copy of it per login.
    pub fn offer(kept: &mut Option<Decoy>, stored: &str, scheme: Scheme) {
        let now = Instant::now();
        if let Some(d) = kept.as_mut().filter(|d| d.stored.as_str() == stored) {
            d.seen = now;
            return;
        }
        let cost = cost(stored, scheme);
        let takes_over = kept
            .as_ref()
            .is_none_or(|d| cost >= d.cost || now.duration_since(d.seen) > KEEP);
        if takes_over {
            *kept = Some(Decoy {
                stored: Zeroizing::new(stored.to_owned()),
                cost,
                seen: now,
            });
        }
    }
}

/// A rough cost of verifying `stored`, in microseconds on a current core: only the order
/// matters, between the schemes and parameters one directory holds.
pub(super) fn cost(stored: &str, scheme: Scheme) -> u64 {
    // The `$…` form inside a `{TAG}` wrapper.
    let body = match stored.strip_prefix('{').and_then(|r| r.split_once('}')) {
        Some((_, body)) => body,
        None => stored,
    };
    let param = |name: &str| -> Option<u64> {
        body.split(['$', ','])
            .find_map(|p| p.strip_prefix(name)?.parse().ok())
    };
    match scheme {
        // Memory (KiB) times passes: ~1.2 µs per KiB and pass.
        Scheme::Argon2 => {
            let m = param("m=").unwrap_or(19_456);
            let t = param("t=").unwrap_or(2);
            m.saturating_mul(t).saturating_mul(6) / 5
        }
        // 2^cost rounds of the key schedule: ~58 µs per unit of 2^0 at cost 10 → 60 ms.
        Scheme::Bcrypt => {
            let c = body
                .split('$')
                .nth(2)
                .and_then(|c| c.parse::<u32>().ok())
                .unwrap_or(10)
                .min(31);
            (1u64 << c).saturating_mul(58)
        }
        // ~0.4 µs per round (SHA-512 and SHA-256 alike, near enough).
        Scheme::Sha512Crypt | Scheme::Sha256Crypt => {
            param("rounds=").unwrap_or(5_000).saturating_mul(2) / 5
        }
        Scheme::Pbkdf2 => body
            .split(['$', ','])
            .filter_map(|p| p.strip_prefix("i=").unwrap_or(p).parse::<u64>().ok())
            .next()
            .unwrap_or(10_000),
        Scheme::Scrypt | Scheme::Yescrypt => 50_000,
        Scheme::Md5Crypt => 200,
        _ => 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn costs_order_schemes_and_parameters() {
        let argon = "$argon2id$v=19$m=65536,t=3,p=4$c2FsdHNhbHQ$aGFzaA";
        let argon_small = "{ARGON2ID}$argon2id$v=19$m=4096,t=3,p=1$c2FsdHNhbHQ$aGFzaA";
        let sha = "$6$rounds=5000$salt$hash";
        let sha_more = "{SHA512-CRYPT}$6$rounds=50000$salt$hash";
        let bcrypt = "$2b$12$abcdefghijklmnopqrstuv";
        let ssha = "{SSHA}abcdef";
        assert!(cost(argon, Scheme::Argon2) > cost(argon_small, Scheme::Argon2));
        assert!(cost(argon_small, Scheme::Argon2) > cost(sha, Scheme::Sha512Crypt));
        assert!(cost(sha_more, Scheme::Sha512Crypt) > cost(sha, Scheme::Sha512Crypt));
        assert!(cost(bcrypt, Scheme::Bcrypt) > cost(sha_more, Scheme::Sha512Crypt));
        assert!(cost(sha, Scheme::Sha512Crypt) > cost(ssha, Scheme::Ssha));
    }

    #[test]
    fn the_dearest_hash_seen_is_kept() {
        let sha = "$6$rounds=5000$salt$hash";
        let argon = "$argon2id$v=19$m=65536,t=3,p=4$c2FsdHNhbHQ$aGFzaA";
        let mut kept = None;
        Decoy::offer(&mut kept, sha, Scheme::Sha512Crypt);
        assert_eq!(kept.as_ref().map(|d| d.stored.as_str()), Some(sha));
        Decoy::offer(&mut kept, argon, Scheme::Argon2);
        assert_eq!(kept.as_ref().map(|d| d.stored.as_str()), Some(argon));
        // A cheaper one seen since does not take its place; the same one seen again keeps it.
        Decoy::offer(&mut kept, sha, Scheme::Sha512Crypt);
        Decoy::offer(&mut kept, argon, Scheme::Argon2);
        assert_eq!(kept.as_ref().map(|d| d.stored.as_str()), Some(argon));
        // Unseen for longer than KEEP, it gives way to what is seen now.
        if let Some(d) = kept.as_mut() {
            d.seen -= KEEP + Duration::from_secs(1);
        }
        Decoy::offer(&mut kept, sha, Scheme::Sha512Crypt);
        assert_eq!(kept.as_ref().map(|d| d.stored.as_str()), Some(sha));
    }
}
