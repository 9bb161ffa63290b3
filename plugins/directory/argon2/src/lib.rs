//! The raw argon2 computation (RFC 9106), for verifying stored hashes and making new ones.
//!
//! Parsing, encoding and parameter validation stay with the `argon2` crate (RustCrypto); this
//! module only fills the memory and derives the tag, with an AVX2 compression function where
//! the CPU has it ([`compress`]). That is about a third faster per verification than the
//! crate's (see README, "Performance"), and verification is what a login costs.
//!
//! The memory of one computation is kept by the thread for its next one (hashing runs on a
//! few dedicated threads, postern-directory's `secret/pool.rs`, so at most `hash-concurrency` × [`KEEP_BYTES`] stays
//! allocated): faulting in 64 MiB of fresh pages for every login cost about a quarter of the
//! computation here. It is wiped after every use.

mod compress;
#[cfg(test)]
mod tests;

use blake2::digest::{Update, VariableOutput};
use blake2::{Blake2b512, Blake2bVar, Digest};
use compress::{fill, Block, Engine};
use zeroize::Zeroize;

/// Largest memory a hashing thread keeps between computations (`m=65536`, a common
/// production setting); larger ones allocate afresh and free it after.
const KEEP_BYTES: usize = 64 << 20;

const BLOCK_BYTES: usize = 1024;
const SYNC_POINTS: u32 = 4;

/// Argon2's three variants, numbered as RFC 9106 numbers them (`y`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Variant {
    D = 0,
    I = 1,
    Id = 2,
}

/// Everything one computation needs, checked by the caller against the `Limits` (and by
/// [`hash`] against the RFC's own bounds).
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

/// Computes the tag into `out` (4 bytes or more).
pub fn hash(inputs: &Inputs<'_>, out: &mut [u8]) -> Result<(), Argon2Error> {
    hash_with(Engine::detect(), inputs, out)
}

fn hash_with(engine: Engine, inputs: &Inputs<'_>, out: &mut [u8]) -> Result<(), Argon2Error> {
    let shape = Shape::new(inputs, out.len())?;
    let h0 = initial_hash(inputs, out.len());
    with_memory(shape.blocks(), |memory| {
        for lane in 0..shape.lanes {
            for column in [0u32, 1] {
                let mut bytes = [0u8; BLOCK_BYTES];
                let mut seed = [0u8; 72];
                seed[..64].copy_from_slice(&h0);
                seed[64..68].copy_from_slice(&column.to_le_bytes());
                seed[68..].copy_from_slice(&lane.to_le_bytes());
                long_hash(&[&seed], &mut bytes)?;
                let block = &mut memory[shape.index(lane, column)];
                for (word, chunk) in block.0.iter_mut().zip(bytes.chunks_exact(8)) {
                    *word = u64::from_le_bytes(chunk.try_into().unwrap_or_default());
                }
                bytes.zeroize();
                seed.zeroize();
            }
        }
        for pass in 0..shape.passes {
            for slice in 0..SYNC_POINTS {
                for lane in 0..shape.lanes {
                    shape.fill_segment(engine, memory, pass, slice, lane);
                }
            }
        }
        let mut last = memory[shape.index(0, shape.lane_length - 1)];
        for lane in 1..shape.lanes {
            let other = &memory[shape.index(lane, shape.lane_length - 1)];
            for (word, x) in last.0.iter_mut().zip(other.0.iter()) {
                *word ^= x;
            }
        }
        let mut bytes = [0u8; BLOCK_BYTES];
        for (chunk, word) in bytes.chunks_exact_mut(8).zip(last.0.iter()) {
            chunk.copy_from_slice(&word.to_le_bytes());
        }
        let tag = long_hash(&[&bytes], out);
        bytes.zeroize();
        last.0.zeroize();
        tag
    })?
}

/// The memory's geometry and the parameters the filling needs.
struct Shape {
    variant: Variant,
    version: u32,
    passes: u32,
    lanes: u32,
    /// Blocks in all (`m'`), per lane (`q`) and per segment.
    memory_blocks: u32,
    lane_length: u32,
    segment_length: u32,
}

impl Shape {
    fn new(inputs: &Inputs<'_>, out_len: usize) -> Result<Shape, Argon2Error> {
        let lanes = inputs.lanes;
        let fits = |n: usize| u32::try_from(n).is_ok();
        if !(1..=0xff_ffff).contains(&lanes)
            || inputs.t_cost == 0
            || !matches!(inputs.version, 0x10 | 0x13)
            || u64::from(inputs.m_cost) < 8 * u64::from(lanes)
            || out_len < 4
            || !fits(out_len)
            || inputs.salt.len() < 8
            || ![
                inputs.password,
                inputs.salt,
                inputs.secret,
                inputs.associated,
            ]
            .iter()
            .all(|x| fits(x.len()))
        {
            return Err(Argon2Error::Params);
        }
        let segment_length = inputs.m_cost / (lanes * SYNC_POINTS);
        Ok(Shape {
            variant: inputs.variant,
            version: inputs.version,
            passes: inputs.t_cost,
            lanes,
            memory_blocks: segment_length * lanes * SYNC_POINTS,
            lane_length: segment_length * SYNC_POINTS,
            segment_length,
        })
    }

    fn blocks(&self) -> usize {
        self.memory_blocks as usize
    }

    fn index(&self, lane: u32, column: u32) -> usize {
        lane as usize * self.lane_length as usize + column as usize
    }

    /// RFC 9106 §3.4.1: where the reference block of block `index` of a segment lies.
    fn reference_column(&self, pass: u32, slice: u32, index: u32, j1: u64, same_lane: bool) -> u32 {
        let (s, q) = (u64::from(self.segment_length), u64::from(self.lane_length));
        let (slice64, index64) = (u64::from(slice), u64::from(index));
        // Blocks finished so far that may be referenced: not the previous one, and in other
        // lanes nothing of the current segment.
        let area = match (pass, same_lane) {
            (0, true) => slice64 * s + index64 - 1,
            (0, false) => slice64 * s - u64::from(index == 0),
            (_, true) => q - s + index64 - 1,
            (_, false) => q - s - u64::from(index == 0),
        };
        let x = (j1 * j1) >> 32;
        let relative = area - 1 - ((area * x) >> 32);
        let start = if pass == 0 || slice == SYNC_POINTS - 1 {
            0
        } else {
            (slice64 + 1) * s
        };
        ((start + relative) % q) as u32
    }

    fn fill_segment(&self, engine: Engine, memory: &mut [Block], pass: u32, slice: u32, lane: u32) {
        let independent = self.variant == Variant::I
            || (self.variant == Variant::Id && pass == 0 && slice < SYNC_POINTS / 2);
        let mut input = Block::ZERO;
        let mut addresses = Block::ZERO;
        if independent {
            let words = [
                pass,
                lane,
                slice,
                self.memory_blocks,
                self.passes,
                self.variant as u32,
            ];
            for (word, value) in input.0.iter_mut().zip(words) {
                *word = u64::from(value);
            }
        }
        let first = if pass == 0 && slice == 0 { 2 } else { 0 };
        if independent && first == 2 {
            next_addresses(engine, &mut input, &mut addresses);
        }
        let xor = pass > 0 && self.version == 0x13;
        for index in first..self.segment_length {
            let column = slice * self.segment_length + index;
            let prev_column = if column == 0 {
                self.lane_length - 1
            } else {
                column - 1
            };
            let prev = self.index(lane, prev_column);
            let pseudo_random = if independent {
                if index % 128 == 0 {
                    next_addresses(engine, &mut input, &mut addresses);
                }
                addresses.0[(index % 128) as usize]
            } else {
                memory[prev].0[0]
            };
            let ref_lane = if pass == 0 && slice == 0 {
                lane
            } else {
                ((pseudo_random >> 32) % u64::from(self.lanes)) as u32
            };
            let ref_column = self.reference_column(
                pass,
                slice,
                index,
                pseudo_random & 0xffff_ffff,
                ref_lane == lane,
            );
            let current = self.index(lane, column);
            let reference = self.index(ref_lane, ref_column);
            // The reference area never holds the current block, and the previous block is
            // not the current one: borrowed apart without copying.
            let (before, from) = memory.split_at_mut(current);
            if let Some((block, after)) = from.split_first_mut() {
                let other = |i: usize| match i.checked_sub(current + 1) {
                    Some(j) => after.get(j),
                    None => before.get(i),
                };
                if let (Some(p), Some(r)) = (other(prev), other(reference)) {
                    fill(engine, p, r, block, xor);
                }
            }
        }
        input.0.zeroize();
        addresses.0.zeroize();
    }
}

/// The next 128 pseudo-random words of data-independent addressing: `G(0, G(0, input))` with
/// the input's counter advanced.
fn next_addresses(engine: Engine, input: &mut Block, addresses: &mut Block) {
    input.0[6] += 1;
    fill(engine, &Block::ZERO, input, addresses, false);
    let once = *addresses;
    fill(engine, &Block::ZERO, &once, addresses, false);
}

/// `H0`: BLAKE2b-512 of the parameters and inputs (RFC 9106 §3.2).
fn initial_hash(inputs: &Inputs<'_>, tag_length: usize) -> [u8; 64] {
    let le = |n: usize| (n as u32).to_le_bytes();
    let mut h = Blake2b512::new();
    for value in [
        inputs.lanes,
        tag_length as u32,
        inputs.m_cost,
        inputs.t_cost,
        inputs.version,
        inputs.variant as u32,
    ] {
        Digest::update(&mut h, value.to_le_bytes());
    }
    for field in [
        inputs.password,
        inputs.salt,
        inputs.secret,
        inputs.associated,
    ] {
        Digest::update(&mut h, le(field.len()));
        Digest::update(&mut h, field);
    }
    h.finalize().into()
}

/// `H'`, the variable-length hash (RFC 9106 §3.3), of the concatenation of `parts`.
fn long_hash(parts: &[&[u8]], out: &mut [u8]) -> Result<(), Argon2Error> {
    let var = |n: usize| Blake2bVar::new(n).map_err(|_| Argon2Error::Params);
    let length = (out.len() as u32).to_le_bytes();
    if out.len() <= 64 {
        let mut h = var(out.len())?;
        h.update(&length);
        for part in parts {
            h.update(part);
        }
        return h.finalize_variable(out).map_err(|_| Argon2Error::Params);
    }
    let mut v = [0u8; 64];
    let mut h = Blake2b512::new();
    Digest::update(&mut h, length);
    for part in parts {
        Digest::update(&mut h, part);
    }
    v.copy_from_slice(&h.finalize());
    let mut written = 0;
    while out.len() - written > 64 {
        out[written..written + 32].copy_from_slice(&v[..32]);
        written += 32;
        if out.len() - written > 64 {
            let next = Blake2b512::digest(v);
            v.copy_from_slice(&next);
        }
    }
    let rest = out.len() - written;
    let mut h = var(rest)?;
    h.update(&v);
    v.zeroize();
    h.finalize_variable(&mut out[written..])
        .map_err(|_| Argon2Error::Params)
}

thread_local! {
    /// The memory this thread's last computation used, wiped, for its next one.
    static KEPT: std::cell::RefCell<Vec<Block>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Runs `work` on `blocks` blocks of memory, this thread's kept memory when it is large
/// enough, and wipes them afterwards. Every block is written before it is read, so kept
/// memory needs no clearing before use.
fn with_memory<T>(blocks: usize, work: impl FnOnce(&mut [Block]) -> T) -> Result<T, Argon2Error> {
    let mut memory = KEPT.with(|kept| kept.take());
    if memory.len() < blocks {
        memory = Vec::new();
        memory
            .try_reserve_exact(blocks)
            .map_err(|_| Argon2Error::Memory)?;
        memory.resize(blocks, Block::ZERO);
    }
    let result = work(&mut memory[..blocks]);
    wipe(&mut memory[..blocks]);
    if memory.len() * BLOCK_BYTES <= KEEP_BYTES {
        KEPT.with(|kept| kept.replace(memory));
    }
    Ok(result)
}

/// Zeroes the memory: a plain fill (a `memset`, many times faster than `zeroize`'s word by
/// word volatile writes over 64 MiB), kept from being optimised away by `black_box`.
fn wipe(memory: &mut [Block]) {
    memory.fill(Block::ZERO);
    std::hint::black_box(memory);
}
