//! SHA-512-crypt (`$6$`), the hash most mail databases hold, computed the way password
//! crackers do it rather than through the generic `Digest` API.
//!
//! Each of the 5000 rounds hashes one of only eight message layouts (key or last digest
//! first, salt or not, key or not, digest or key last) whose every byte but the previous digest
//! is fixed for a given password and salt. So the eight messages are laid out once, padded
//! as SHA-512 pads them, and each round copies the 64-byte digest in and runs the compression
//! function directly: no hasher state to set up, no buffering, no padding per round. That is
//! about a fifth less work per verification than the `sha-crypt` crate, and the crate remains
//! the reference this module is tested against (`tests` below, plus the real-tool vectors).
//!
//! Verifications waiting together go through their rounds five at a time ([`verify_many`],
//! [`multibuffer`]), which costs about a fifth less CPU each where the CPU has AVX2.

use sha2::digest::generic_array::GenericArray;
use sha2::{Digest, Sha512};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use super::multibuffer::{self, LANES};

/// glibc's bounds: fewer rounds are raised to the minimum, more are lowered to the maximum.
const ROUNDS_MIN: u32 = 1000;
const ROUNDS_MAX: u32 = 999_999_999;
const ROUNDS_DEFAULT: u32 = 5000;
const SALT_MAX: usize = 16;

const IV: [u64; 8] = [
    0x6a09_e667_f3bc_c908,
    0xbb67_ae85_84ca_a73b,
    0x3c6e_f372_fe94_f82b,
    0xa54f_f53a_5f1d_36f1,
    0x510e_527f_ade6_82d1,
    0x9b05_688c_2b3e_6c1f,
    0x1f83_d9ab_fb41_bd6b,
    0x5be0_cd19_137e_2179,
];

/// The order in which the digest's bytes are encoded, three at a time (crypt(3)'s table).
const TRANSPOSITION: [usize; 64] = [
    42, 21, 0, 1, 43, 22, 23, 2, 44, 45, 24, 3, 4, 46, 25, 26, 5, 47, 48, 27, 6, 7, 49, 28, 29, 8,
    50, 51, 30, 9, 10, 52, 31, 32, 11, 53, 54, 33, 12, 13, 55, 34, 35, 14, 56, 57, 36, 15, 16, 58,
    37, 38, 17, 59, 60, 39, 18, 19, 61, 40, 41, 20, 62, 63,
];

const ALPHABET: &[u8; 64] = b"./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// The parts of `$6$[rounds=N$]salt$digest`, or `None` if it is not that shape.
pub(super) struct Parsed<'a> {
    pub rounds: u32,
    pub salt: &'a [u8],
    pub digest: &'a [u8],
}

pub(super) fn parse(s: &str) -> Option<Parsed<'_>> {
    let rest = s.strip_prefix("$6$")?;
    let (rounds, rest) = match rest.strip_prefix("rounds=") {
        Some(r) => {
            let (n, rest) = r.split_once('$')?;
            if n.is_empty() || !n.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            let n: u64 = n.parse().ok()?;
            (
                n.clamp(u64::from(ROUNDS_MIN), u64::from(ROUNDS_MAX)) as u32,
                rest,
            )
        }
        None => (ROUNDS_DEFAULT, rest),
    };
    let (salt, digest) = rest.rsplit_once('$')?;
    if salt.contains('$') || digest.len() != 86 || !digest.bytes().all(|b| ALPHABET.contains(&b)) {
        return None;
    }
    let salt = salt.as_bytes();
    Some(Parsed {
        rounds,
        salt: &salt[..salt.len().min(SALT_MAX)],
        digest: digest.as_bytes(),
    })
}

/// Whether `password` matches the parsed hash; the comparison is constant-time.
pub(super) fn verify(p: &Parsed<'_>, password: &[u8]) -> bool {
    let encoded = encode(&digest(password, p.salt, p.rounds));
    encoded.as_slice().ct_eq(p.digest).into()
}

/// Whether each password matches its parsed hash, in order; the comparisons are constant-time.
///
/// Verifications of the same cost (rounds, message length) go through the rounds [`LANES`] at a
/// time when the CPU can ([`multibuffer`]); the rest, and every one without it, one by one.
pub(super) fn verify_many(items: &[(Parsed<'_>, &[u8])]) -> Vec<bool> {
    let mut digests: Vec<Option<[u8; 64]>> = vec![None; items.len()];
    if multibuffer::available() {
        for batch in batches(items) {
            let mut lanes: [Lane; LANES] =
                std::array::from_fn(|l| Lane::new(items[batch[l]].1, items[batch[l]].0.salt));
            rounds_together(&mut lanes, items[batch[0]].0.rounds);
            for (i, lane) in batch.into_iter().zip(&lanes) {
                digests[i] = Some(lane.c);
            }
        }
    }
    items
        .iter()
        .zip(digests)
        .map(|((p, password), d)| {
            let d = d.unwrap_or_else(|| digest(password, p.salt, p.rounds));
            encode(&d).as_slice().ct_eq(p.digest).into()
        })
        .collect()
}

/// Which items go through their rounds together, [`LANES`] at a time. Lanes go in step, so
/// only verifications of the same cost go together: the same rounds, and their longest
/// message the same number of blocks. A very long password then slows only other very long
/// ones, never four ordinary logins.
fn batches(items: &[(Parsed<'_>, &[u8])]) -> Vec<[usize; LANES]> {
    let cost = |i: usize| {
        let (p, password) = &items[i];
        let longest = 64 + 2 * password.len() + p.salt.len() + 17;
        (p.rounds, longest.div_ceil(128))
    };
    let mut order: Vec<usize> = (0..items.len()).collect();
    order.sort_by_key(|&i| cost(i));
    order
        .chunk_by(|&x, &y| cost(x) == cost(y))
        .flat_map(|group| group.chunks_exact(LANES))
        .filter_map(|batch| <[usize; LANES]>::try_from(batch).ok())
        .collect()
}

/// The raw SHA-512-crypt digest (Drepper's specification, steps 1–21).
pub(super) fn digest(password: &[u8], salt: &[u8], rounds: u32) -> [u8; 64] {
    let mut lane = Lane::new(password, salt);
    for i in 0..rounds {
        let k = layout_index(i);
        if let Some(layout) = lane.layouts.get_mut(k) {
            lane.c = layout.round(&lane.c);
        }
    }
    lane.c
}

/// Which of the eight messages round `i` hashes.
fn layout_index(i: u32) -> usize {
    (i & 1) as usize
        | usize::from(!i.is_multiple_of(3)) << 1
        | usize::from(!i.is_multiple_of(7)) << 2
}

/// One verification up to its rounds: the eight round messages and the digest so far.
struct Lane {
    layouts: Vec<Layout>,
    c: [u8; 64],
}

impl Lane {
    /// Steps 1–20: everything before the rounds.
    fn new(password: &[u8], salt: &[u8]) -> Lane {
        let pl = password.len();
        // Steps 4–8: B = H(P S P).
        let b = Sha512::new()
            .chain_update(password)
            .chain_update(salt)
            .chain_update(password)
            .finalize();
        // Steps 1–3, 9–12: A.
        let mut a = Sha512::new().chain_update(password).chain_update(salt);
        for _ in 0..pl / 64 {
            a.update(b);
        }
        a.update(&b[..pl % 64]);
        let mut n = pl;
        while n > 0 {
            if n & 1 != 0 {
                a.update(b);
            } else {
                a.update(password);
            }
            n >>= 1;
        }
        let a = a.finalize();
        // Steps 13–16: the key sequence, the key's own digest repeated to its length.
        let mut dp = Sha512::new();
        for _ in 0..pl {
            dp.update(password);
        }
        let mut dp_bytes = Zeroizing::new([0u8; 64]);
        dp_bytes.copy_from_slice(&dp.finalize());
        let dp = dp_bytes;
        let pseq: Zeroizing<Vec<u8>> = Zeroizing::new((0..pl).map(|i| dp[i % 64]).collect());
        // Steps 17–20: the salt sequence.
        let mut ds = Sha512::new();
        for _ in 0..16 + usize::from(a[0]) {
            ds.update(salt);
        }
        let ds = ds.finalize();
        let sseq: Vec<u8> = (0..salt.len()).map(|i| ds[i % 64]).collect();

        let layouts = (0..8)
            .map(|k| Layout::new(k & 1 != 0, k & 2 != 0, k & 4 != 0, &pseq, &sseq))
            .collect();
        let mut c = [0u8; 64];
        c.copy_from_slice(&a);
        Lane { layouts, c }
    }
}

/// Step 21 for [`LANES`] verifications with the same number of rounds, one compression call
/// for all of them per block. Their messages can differ in length (the password's): a lane
/// whose message has fewer blocks keeps its state from its own last block and is carried
/// along, computing nothing useful, for the others' extra blocks.
fn rounds_together(lanes: &mut [Lane; LANES], rounds: u32) {
    let mut finished = [IV; LANES];
    for i in 0..rounds {
        let k = layout_index(i);
        let mut messages: [&[[u8; 128]]; LANES] = [&[]; LANES];
        for (message, lane) in messages.iter_mut().zip(lanes.iter_mut()) {
            if let Some(layout) = lane.layouts.get_mut(k) {
                layout.fill(&lane.c);
                *message = &layout.blocks;
            }
        }
        let most = messages.iter().map(|m| m.len()).max().unwrap_or(0);
        let mut states = [IV; LANES];
        for b in 0..most {
            let mut blocks: [&[u8; 128]; LANES] = [&PAD_BLOCK; LANES];
            for (block, message) in blocks.iter_mut().zip(&messages) {
                if let Some(own) = message.get(b).or(message.last()) {
                    *block = own;
                }
            }
            multibuffer::compress(&mut states, blocks);
            for ((done, state), message) in finished.iter_mut().zip(&states).zip(&messages) {
                if b + 1 == message.len() {
                    *done = *state;
                }
            }
        }
        for (lane, state) in lanes.iter_mut().zip(&finished) {
            lane.c = to_bytes(state);
        }
    }
}

/// A block for a lane with no message (cannot happen: every layout has at least one block).
const PAD_BLOCK: [u8; 128] = [0; 128];

fn to_bytes(state: &[u64; 8]) -> [u8; 64] {
    let mut out = [0u8; 64];
    for (chunk, word) in out.chunks_exact_mut(8).zip(state) {
        chunk.copy_from_slice(&word.to_be_bytes());
    }
    out
}

/// One of the eight messages of a round, padded, with a hole for the previous digest.
struct Layout {
    blocks: Zeroizing<Vec<[u8; 128]>>,
    hole: usize,
}

impl Layout {
    fn new(odd: bool, salt: bool, key: bool, pseq: &[u8], sseq: &[u8]) -> Layout {
        let mut m = Zeroizing::new(Vec::with_capacity(64 + 2 * pseq.len() + sseq.len() + 145));
        let digest_first = !odd;
        if digest_first {
            m.extend_from_slice(&[0; 64]);
        } else {
            m.extend_from_slice(pseq);
        }
        if salt {
            m.extend_from_slice(sseq);
        }
        if key {
            m.extend_from_slice(pseq);
        }
        let hole = if digest_first { 0 } else { m.len() };
        if digest_first {
            m.extend_from_slice(pseq);
        } else {
            m.extend_from_slice(&[0; 64]);
        }
        let bits = (m.len() as u128) * 8;
        m.push(0x80);
        while m.len() % 128 != 112 {
            m.push(0);
        }
        m.extend_from_slice(&bits.to_be_bytes());
        let mut blocks = Zeroizing::new(vec![[0u8; 128]; m.len() / 128]);
        blocks.as_flattened_mut().copy_from_slice(&m);
        Layout { blocks, hole }
    }

    /// Puts the previous digest in its place in the message.
    fn fill(&mut self, previous: &[u8; 64]) {
        if let Some(hole) = self
            .blocks
            .as_flattened_mut()
            .get_mut(self.hole..self.hole + 64)
        {
            hole.copy_from_slice(previous);
        }
    }

    fn round(&mut self, previous: &[u8; 64]) -> [u8; 64] {
        self.fill(previous);
        let mut state = IV;
        for block in self.blocks.iter() {
            sha2::compress512(&mut state, &[*GenericArray::from_slice(block)]);
        }
        to_bytes(&state)
    }
}

/// crypt(3)'s base64 of the digest: 86 characters.
pub(super) fn encode(digest: &[u8; 64]) -> Vec<u8> {
    let t: Vec<u8> = TRANSPOSITION.iter().map(|&i| digest[i]).collect();
    let mut out = Vec::with_capacity(86);
    for group in t.chunks(3) {
        let w = group
            .iter()
            .enumerate()
            .fold(0u32, |w, (i, &b)| w | u32::from(b) << (8 * i));
        let chars = group.len() + 1;
        for j in 0..chars {
            out.push(ALPHABET[((w >> (6 * j)) & 63) as usize]);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use sha_crypt::PasswordVerifier as _;

    fn reference_accepts(hash: &str, password: &[u8]) -> bool {
        let parsed = sha_crypt::PasswordHashRef::new(hash).unwrap();
        sha_crypt::ShaCrypt::default()
            .verify_password(password, parsed)
            .is_ok()
    }

    #[test]
    fn one_round_is_plain_sha512() {
        let mut l = Layout::new(false, true, true, b"key", b"salt");
        let prev = [7u8; 64];
        let mut msg = prev.to_vec();
        msg.extend_from_slice(b"saltkeykey");
        assert_eq!(l.round(&prev)[..], Sha512::digest(&msg)[..]);
    }

    #[test]
    fn glibc_hashes_verify() {
        // From Python's crypt (glibc) and mkpasswd; the module's vectors have more.
        let h = "$6$abcdefghijklmnop$MzqfUVmnI/aH2bzY2kExPLSUK6lg/PfNYsJlup8tVdH6cUHedv1EZW0WmU3h7DkZj1bt8UE/fyEGCtKf/n.Ol1";
        let p = parse(h).unwrap();
        assert!(verify(&p, b"secret-password"));
        assert!(!verify(&p, b"secret-passwore"));
        assert!(reference_accepts(h, b"secret-password"));
    }

    #[test]
    fn malformed_strings_are_refused() {
        for s in [
            "$6$",
            "$6$salt",
            "$6$salt$short",
            "$6$rounds=$salt$x",
            "$6$rounds=-5$salt$x",
            "$5$salt$x",
        ] {
            assert!(parse(s).is_none(), "{s}");
        }
    }

    #[test]
    fn lanes_of_one_cost_whose_messages_differ_in_blocks_go_together() {
        // Same rounds and longest message (2 blocks), but "P S C" is one block for the shorter
        // passwords and two for the longer: lanes finish a round after different blocks.
        let salt = "0123456789abcdef";
        let passwords: Vec<Vec<u8>> = [16usize, 25, 31, 32, 40, 47]
            .iter()
            .map(|&n| (0..n).map(|i| b'a' + (i % 26) as u8).collect())
            .collect();
        let hashes: Vec<String> = passwords
            .iter()
            .map(|p| {
                let d = String::from_utf8(encode(&digest(p, salt.as_bytes(), 1000))).unwrap();
                format!("$6$rounds=1000${salt}${d}")
            })
            .collect();
        let mut items: Vec<(Parsed<'_>, &[u8])> = hashes
            .iter()
            .zip(&passwords)
            .map(|(h, p)| (parse(h).unwrap(), p.as_slice()))
            .collect();
        assert_eq!(batches(&items).len(), 1);
        assert_eq!(verify_many(&items), vec![true; 6]);
        // A wrong password in the batch fails alone.
        items[2].1 = b"wrong";
        items[3].1 = b"0123456789012345678901234567890X";
        assert_eq!(
            verify_many(&items),
            vec![true, true, false, false, true, true]
        );
        // A very long password never shares a batch with ordinary ones.
        let long = vec![b'x'; 4000];
        items[0].1 = &long;
        assert!(batches(&items).iter().all(|b| !b.contains(&0)));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(6))]
        /// Verifications computed together get the answer each gets alone, whatever the mix of
        /// password lengths (one block per round or several), salts, rounds, right or wrong.
        #[test]
        fn together_agrees_with_alone(
            cases in proptest::collection::vec(
                (
                    proptest::collection::vec(any::<u8>(), 0..150),
                    "[./0-9A-Za-z]{1,16}",
                    prop_oneof![Just(1000u32), Just(1001)],
                    any::<bool>(),
                ),
                1..13,
            ),
        ) {
            let hashes: Vec<String> = cases
                .iter()
                .map(|(password, salt, rounds, _)| {
                    let d = digest(password, salt.as_bytes(), *rounds);
                    let d = String::from_utf8(encode(&d)).unwrap();
                    format!("$6$rounds={rounds}${salt}${d}")
                })
                .collect();
            let tries: Vec<Vec<u8>> = cases
                .iter()
                .map(|(password, _, _, right)| {
                    let mut p = password.clone();
                    if !right {
                        p.push(b'!');
                    }
                    p
                })
                .collect();
            let items: Vec<(Parsed<'_>, &[u8])> = hashes
                .iter()
                .zip(&tries)
                .map(|(h, p)| (parse(h).unwrap(), p.as_slice()))
                .collect();
            let together = verify_many(&items);
            for (((p, password), got), case) in items.iter().zip(&together).zip(&cases) {
                prop_assert_eq!(*got, case.3);
                prop_assert_eq!(*got, verify(p, password));
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(24))]
        /// Whatever the password, salt and rounds, this module and the crate agree.
        #[test]
        fn agrees_with_the_sha_crypt_crate(
            password in proptest::collection::vec(any::<u8>(), 0..200),
            // At least one character: the crate, being MCF, refuses an empty field.
            salt in "[./0-9A-Za-z]{1,20}",
            rounds in prop_oneof![Just(None), (1000u32..1300).prop_map(Some)],
        ) {
            let salt_used = &salt[..salt.len().min(SALT_MAX)];
            let r = rounds.unwrap_or(ROUNDS_DEFAULT);
            let encoded = String::from_utf8(encode(&digest(&password, salt_used.as_bytes(), r))).unwrap();
            let hash = match rounds {
                Some(r) => format!("$6$rounds={r}${salt_used}${encoded}"),
                None => format!("$6${salt_used}${encoded}"),
            };
            prop_assert!(reference_accepts(&hash, &password), "{}", hash);
            let p = parse(&hash).unwrap();
            prop_assert!(verify(&p, &password));
        }
    }
}
