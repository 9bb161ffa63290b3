//! The raw argon2 computation (RFC 9106) Postern verifies stored hashes and makes new ones
//! with: the `argon2-rust` crate behind a small API of our own.
//!
//! Parsing, encoding and parameter limits stay with postern-directory (RustCrypto's `argon2`
//! parses the PHC strings); this crate only computes the tag. `argon2-rust` was the fastest
//! implementation measured here (README, "Performance"): a compression function for the
//! CPU's widest vectors, picked at run time, and memory mapped with transparent huge pages
//! (fewer TLB misses on the random reads that make argon2 memory-hard).
//!
//! Each thread keeps its memory between computations (hashing runs on a few dedicated
//! threads, postern-directory's `secret/pool.rs`, so at most `hash-concurrency` ×
//! [`KEEP_BYTES`] stays mapped): faulting in 64 MiB afresh for every login cost about a
//! quarter of the computation. The memory is wiped after every use, and given back by
//! [`release`] when the thread has been idle a while.

#[cfg(test)]
mod tests;

use std::cell::RefCell;

use argon2_rust::params::{Memory, ParamsBuilder, TagLen};
use argon2_rust::{Algorithm, Argon2, Hasher, Version};

/// Largest memory a thread keeps between computations (`m=65536`, a common production
/// setting); after a larger one the memory is released.
pub const KEEP_BYTES: usize = 64 << 20;

/// Argon2's three variants.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Variant {
    D,
    I,
    Id,
}

/// Everything one computation needs. The caller checks the costs against its limits first;
/// [`hash`] refuses what RFC 9106 does not allow.
pub struct Inputs<'a> {
    pub variant: Variant,
    /// 0x10 or 0x13.
    pub version: u32,
    /// Memory in KiB (`m`).
    pub m_cost: u32,
    pub t_cost: u32,
    pub lanes: u32,
    pub password: &'a [u8],
    pub salt: &'a [u8],
    /// The optional secret key `K` and associated data `X`.
    pub secret: &'a [u8],
    pub associated: &'a [u8],
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Argon2Error {
    #[error("argon2 parameters out of range")]
    Params,
    #[error("argon2 memory could not be allocated")]
    Memory,
}

thread_local! {
    /// This thread's hasher, which owns the memory kept between computations.
    static KEPT: RefCell<Option<Hasher>> = const { RefCell::new(None) };
}

/// Computes the tag into `out` (4 bytes or more).
pub fn hash(inputs: &Inputs<'_>, out: &mut [u8]) -> Result<(), Argon2Error> {
    let argon2 = configure(inputs, out.len())?;
    KEPT.with(|kept| {
        // Never re-entered on one thread; a hasher of its own if it somehow were.
        let Ok(mut kept) = kept.try_borrow_mut() else {
            return compute(&mut argon2.hasher(), inputs, out);
        };
        let hasher = match kept.as_mut() {
            Some(hasher) => {
                hasher.set_argon2(argon2);
                hasher
            }
            None => kept.insert(argon2.hasher()),
        };
        let result = compute(hasher, inputs, out);
        if hasher.reserved_blocks().saturating_mul(1024) > KEEP_BYTES {
            hasher.clear();
        }
        result
    })
}

/// Gives back the memory this thread keeps (its hashing thread has been idle a while).
pub fn release() {
    KEPT.with(|kept| {
        if let Ok(mut kept) = kept.try_borrow_mut() {
            *kept = None;
        }
    });
}

/// Blocks (KiB) of memory this thread keeps.
pub fn kept_blocks() -> usize {
    KEPT.with(|kept| kept.borrow().as_ref().map_or(0, Hasher::reserved_blocks))
}

fn compute(hasher: &mut Hasher, inputs: &Inputs<'_>, out: &mut [u8]) -> Result<(), Argon2Error> {
    hasher
        .hash_into_with_ad(
            inputs.password,
            inputs.salt,
            inputs.secret,
            inputs.associated,
            out,
        )
        .map_err(|e| match e {
            argon2_rust::Error::MemoryAllocationError => Argon2Error::Memory,
            _ => Argon2Error::Params,
        })
}

fn configure(inputs: &Inputs<'_>, out_len: usize) -> Result<Argon2, Argon2Error> {
    let algorithm = match inputs.variant {
        Variant::D => Algorithm::Argon2d,
        Variant::I => Algorithm::Argon2i,
        Variant::Id => Algorithm::Argon2id,
    };
    let version = match inputs.version {
        0x10 => Version::V0x10,
        0x13 => Version::V0x13,
        _ => return Err(Argon2Error::Params),
    };
    let params = ParamsBuilder::DEFAULT
        .memory(Memory::kib(u64::from(inputs.m_cost)))
        .passes(inputs.t_cost)
        .lanes(inputs.lanes)
        .tag_len(TagLen::bytes(out_len as u64))
        .build()
        .map_err(|_| Argon2Error::Params)?;
    Ok(Argon2::new(algorithm, version, params))
}
