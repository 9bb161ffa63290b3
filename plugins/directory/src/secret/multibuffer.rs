//! SHA-512 compression of [`LANES`] independent blocks at once, for SHA-512-crypt verifications
//! that wait in the [`super::Hasher`] queue together.
//!
//! SHA-512 is a chain of 64-bit additions, rotations and logic with no instruction of its own
//! on these CPUs, so one verification keeps the integer units busy and leaves the vector units
//! idle. The AVX2 kernel ([`avx2`]) runs four blocks side by side in the vector units and, in
//! the same instruction stream, a fifth one on the integer units, which the out-of-order core
//! overlaps. On the 2-core AMD EPYC (Zen 1) this project is measured on, five blocks take about
//! as long as four one after the other: a verification costs about a fifth less CPU. A wider
//! vector (two AVX2 groups, or more scalar lanes) ran out of registers and was slower.
//!
//! Without AVX2 and BMI2 (another architecture, an old CPU, a restrictive hypervisor),
//! [`compress`] runs the blocks one after the other with `sha2`, and [`available`] tells callers
//! not to bother batching.

use sha2::digest::generic_array::GenericArray;

#[cfg(target_arch = "x86_64")]
mod avx2;

/// Blocks per call: four vector lanes and one integer lane.
pub(super) const LANES: usize = 5;

/// A SHA-512 chaining value.
pub(super) type State = [u64; 8];

/// Whether [`compress`] really runs the lanes together on this CPU. Cached by the standard
/// library after the first call.
pub(super) fn available() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("bmi2")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// Compresses `blocks[i]` into `states[i]` for every lane, as `sha2::compress512` would.
pub(super) fn compress(states: &mut [State; LANES], blocks: [&[u8; 128]; LANES]) {
    #[cfg(target_arch = "x86_64")]
    if available() {
        // SAFETY: `avx2::compress` only needs the AVX2 and BMI2 instructions, and the CPU has
        // both: `available` just checked.
        unsafe { avx2::compress(states, blocks) };
        return;
    }
    compress_one_by_one(states, blocks);
}

/// The reference, and the fallback: each lane through `sha2`.
fn compress_one_by_one(states: &mut [State; LANES], blocks: [&[u8; 128]; LANES]) {
    for (state, block) in states.iter_mut().zip(blocks) {
        sha2::compress512(state, &[*GenericArray::from_slice(block)]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        /// Every lane of the batched kernel equals `sha2`'s compression of that lane alone,
        /// whatever the states and blocks (on a CPU without AVX2 this checks the fallback).
        #[test]
        fn lanes_match_sha2(
            seed_states in proptest::array::uniform5(proptest::array::uniform8(any::<u64>())),
            seed_blocks in proptest::collection::vec(any::<u8>(), 128 * LANES),
        ) {
            let blocks: Vec<[u8; 128]> = seed_blocks
                .chunks_exact(128)
                .map(|c| <[u8; 128]>::try_from(c).unwrap())
                .collect();
            let refs: [&[u8; 128]; LANES] = std::array::from_fn(|i| &blocks[i]);
            let mut together = seed_states;
            compress(&mut together, refs);
            let mut alone = seed_states;
            compress_one_by_one(&mut alone, refs);
            prop_assert_eq!(together, alone);
        }
    }
}
