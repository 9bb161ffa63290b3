//! An arbitrary stored value (as a hostile or broken directory entry could hold) and password:
//! verification never panics, is deterministic, and a SHA-512-crypt value computed in a batch
//! of five gets the answer it gets alone.
#![no_main]

use libfuzzer_sys::fuzz_target;
use postern_directory::secret::{identify, verify_batch, verify_with_limits, Limits, Scheme};

/// Small enough that every input runs in milliseconds (a cost above is refused unverified).
const SMALL: Limits = Limits {
    max_memory_bytes: 1 << 20,
    max_iterations: 2000,
    max_bcrypt_cost: 5,
    max_passes: 2,
};

fuzz_target!(|data: &[u8]| {
    // The first byte says where the stored value ends and the password begins.
    let Some((&split, rest)) = data.split_first() else { return };
    let at = usize::from(split).min(rest.len());
    let (stored, password) = rest.split_at(at);
    let stored = String::from_utf8_lossy(stored);
    let alone = verify_with_limits(&stored, password, &SMALL);
    assert_eq!(alone, verify_with_limits(&stored, password, &SMALL));
    if matches!(identify(&stored), Ok(Scheme::Sha512Crypt)) && alone.is_ok() {
        let batch = verify_batch(&vec![(stored.as_ref(), password); 5]);
        assert!(batch.iter().all(|r| *r == alone), "{batch:?} vs {alone:?}");
    }
});
