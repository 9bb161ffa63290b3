//! Argon2's compression function G (RFC 9106 §3.5): the BLAKE2b round with the BlaMka
//! multiplication, applied to the rows then the columns of a 1 KiB block. This is where all
//! but a sliver of an argon2 computation goes; the AVX2 form works on four 64-bit words at
//! once, the portable one is the RFC's text.

/// One argon2 memory block: 128 little-endian 64-bit words (the words are native-endian in
/// memory; only the first and last blocks are converted to and from bytes).
#[derive(Clone, Copy)]
#[repr(C, align(64))]
pub(crate) struct Block(pub(crate) [u64; 128]);

impl Block {
    pub(crate) const ZERO: Block = Block([0; 128]);
}

/// How [`fill`] is computed on this CPU; found once per computation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Engine {
    Portable,
    #[cfg(target_arch = "x86_64")]
    Avx2,
}

impl Engine {
    pub(crate) fn detect() -> Engine {
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx2") {
            return Engine::Avx2;
        }
        Engine::Portable
    }
}

/// `next = G(prev, reference)`, or `next ^= G(prev, reference)` with `xor` (passes after the
/// first, version 0x13).
pub(crate) fn fill(engine: Engine, prev: &Block, reference: &Block, next: &mut Block, xor: bool) {
    match engine {
        Engine::Portable => portable::fill(prev, reference, next, xor),
        // SAFETY: `Engine::Avx2` is only made by `detect` after the CPU reported AVX2.
        #[cfg(target_arch = "x86_64")]
        Engine::Avx2 => unsafe { avx2::fill(prev, reference, next, xor) },
    }
}

mod portable {
    use super::Block;

    #[inline(always)]
    fn blamka(x: u64, y: u64) -> u64 {
        let product = (x & 0xffff_ffff).wrapping_mul(y & 0xffff_ffff);
        x.wrapping_add(y).wrapping_add(product.wrapping_mul(2))
    }

    #[inline(always)]
    fn g(v: &mut [u64; 16], a: usize, b: usize, c: usize, d: usize) {
        v[a] = blamka(v[a], v[b]);
        v[d] = (v[d] ^ v[a]).rotate_right(32);
        v[c] = blamka(v[c], v[d]);
        v[b] = (v[b] ^ v[c]).rotate_right(24);
        v[a] = blamka(v[a], v[b]);
        v[d] = (v[d] ^ v[a]).rotate_right(16);
        v[c] = blamka(v[c], v[d]);
        v[b] = (v[b] ^ v[c]).rotate_right(63);
    }

    /// The permutation P on sixteen words.
    fn permute(v: &mut [u64; 16]) {
        g(v, 0, 4, 8, 12);
        g(v, 1, 5, 9, 13);
        g(v, 2, 6, 10, 14);
        g(v, 3, 7, 11, 15);
        g(v, 0, 5, 10, 15);
        g(v, 1, 6, 11, 12);
        g(v, 2, 7, 8, 13);
        g(v, 3, 4, 9, 14);
    }

    pub(super) fn fill(prev: &Block, reference: &Block, next: &mut Block, xor: bool) {
        let mut r = [0u64; 128];
        for (i, word) in r.iter_mut().enumerate() {
            *word = prev.0[i] ^ reference.0[i];
        }
        let mut z = r;
        // Rows: sixteen consecutive words each.
        for row in 0..8 {
            let mut v = [0u64; 16];
            v.copy_from_slice(&z[16 * row..16 * row + 16]);
            permute(&mut v);
            z[16 * row..16 * row + 16].copy_from_slice(&v);
        }
        // Columns: word pairs 2c, 2c+1 of every row.
        for column in 0..8 {
            let mut v = [0u64; 16];
            for row in 0..8 {
                v[2 * row] = z[16 * row + 2 * column];
                v[2 * row + 1] = z[16 * row + 2 * column + 1];
            }
            permute(&mut v);
            for row in 0..8 {
                z[16 * row + 2 * column] = v[2 * row];
                z[16 * row + 2 * column + 1] = v[2 * row + 1];
            }
        }
        for (i, word) in next.0.iter_mut().enumerate() {
            let value = z[i] ^ r[i];
            *word = if xor { *word ^ value } else { value };
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use std::arch::x86_64::*;

    use super::Block;

    /// `x + y + 2·lo32(x)·lo32(y)` on each of the four words.
    #[inline(always)]
    unsafe fn blamka(x: __m256i, y: __m256i) -> __m256i {
        let product = _mm256_mul_epu32(x, y);
        _mm256_add_epi64(_mm256_add_epi64(x, y), _mm256_add_epi64(product, product))
    }

    #[inline(always)]
    unsafe fn rotr32(x: __m256i) -> __m256i {
        _mm256_shuffle_epi32(x, 0b10_11_00_01)
    }

    #[inline(always)]
    unsafe fn rotr24(x: __m256i) -> __m256i {
        let mask = _mm256_setr_epi8(
            3, 4, 5, 6, 7, 0, 1, 2, 11, 12, 13, 14, 15, 8, 9, 10, 3, 4, 5, 6, 7, 0, 1, 2, 11, 12,
            13, 14, 15, 8, 9, 10,
        );
        _mm256_shuffle_epi8(x, mask)
    }

    #[inline(always)]
    unsafe fn rotr16(x: __m256i) -> __m256i {
        let mask = _mm256_setr_epi8(
            2, 3, 4, 5, 6, 7, 0, 1, 10, 11, 12, 13, 14, 15, 8, 9, 2, 3, 4, 5, 6, 7, 0, 1, 10, 11,
            12, 13, 14, 15, 8, 9,
        );
        _mm256_shuffle_epi8(x, mask)
    }

    #[inline(always)]
    unsafe fn rotr63(x: __m256i) -> __m256i {
        _mm256_or_si256(_mm256_srli_epi64(x, 63), _mm256_add_epi64(x, x))
    }

    /// G on four columns at once: `a`, `b`, `c`, `d` hold words 0–3, 4–7, 8–11, 12–15.
    #[inline(always)]
    unsafe fn g(a: &mut __m256i, b: &mut __m256i, c: &mut __m256i, d: &mut __m256i) {
        *a = blamka(*a, *b);
        *d = rotr32(_mm256_xor_si256(*d, *a));
        *c = blamka(*c, *d);
        *b = rotr24(_mm256_xor_si256(*b, *c));
        *a = blamka(*a, *b);
        *d = rotr16(_mm256_xor_si256(*d, *a));
        *c = blamka(*c, *d);
        *b = rotr63(_mm256_xor_si256(*b, *c));
    }

    /// The permutation P: G on the columns, then (after rotating rows b, c, d by one, two and
    /// three words so the diagonals line up) on the diagonals.
    #[inline(always)]
    unsafe fn permute(a: &mut __m256i, b: &mut __m256i, c: &mut __m256i, d: &mut __m256i) {
        g(a, b, c, d);
        *b = _mm256_permute4x64_epi64(*b, 0b00_11_10_01);
        *c = _mm256_permute4x64_epi64(*c, 0b01_00_11_10);
        *d = _mm256_permute4x64_epi64(*d, 0b10_01_00_11);
        g(a, b, c, d);
        *b = _mm256_permute4x64_epi64(*b, 0b10_01_00_11);
        *c = _mm256_permute4x64_epi64(*c, 0b01_00_11_10);
        *d = _mm256_permute4x64_epi64(*d, 0b00_11_10_01);
    }

    #[target_feature(enable = "avx2")]
    pub(super) unsafe fn fill(prev: &Block, reference: &Block, next: &mut Block, xor: bool) {
        // SAFETY (whole function): every pointer below is into one of the three 1 KiB blocks
        // or `z`, at a word offset at most 124 (four words read or written), or a 16-byte
        // half at an offset at most 126; unaligned loads and stores are used throughout.
        let p = prev.0.as_ptr() as *const __m256i;
        let q = reference.0.as_ptr() as *const __m256i;
        let mut r = [_mm256_setzero_si256(); 32];
        for (i, x) in r.iter_mut().enumerate() {
            *x = _mm256_xor_si256(_mm256_loadu_si256(p.add(i)), _mm256_loadu_si256(q.add(i)));
        }
        // Z, the permuted block: every word is written by the row pass before anything
        // reads it, so it needs no clearing.
        let mut z = std::mem::MaybeUninit::<Block>::uninit();
        let w = z.as_mut_ptr() as *mut u64;
        // Rows: registers 4i .. 4i+3 are row i's sixteen words. Written out eight times over
        // (as the columns below): LLVM leaves these loops rolled, at a cost of a few percent.
        let row = |i: usize| {
            let (mut a, mut b, mut c, mut d) = (r[4 * i], r[4 * i + 1], r[4 * i + 2], r[4 * i + 3]);
            permute(&mut a, &mut b, &mut c, &mut d);
            let out = w.add(16 * i) as *mut __m256i;
            _mm256_storeu_si256(out, a);
            _mm256_storeu_si256(out.add(1), b);
            _mm256_storeu_si256(out.add(2), c);
            _mm256_storeu_si256(out.add(3), d);
        };
        row(0);
        row(1);
        row(2);
        row(3);
        row(4);
        row(5);
        row(6);
        row(7);
        // Columns: words 2c, 2c+1 of rows 0..8, two rows to a register.
        let column = |base: usize| {
            let load = |row: usize| {
                _mm256_loadu2_m128i(
                    w.add(base + 16 * (row + 1)) as *const __m128i,
                    w.add(base + 16 * row) as *const __m128i,
                )
            };
            let (mut a, mut b, mut c, mut d) = (load(0), load(2), load(4), load(6));
            permute(&mut a, &mut b, &mut c, &mut d);
            for (row, x) in [(0, a), (2, b), (4, c), (6, d)] {
                _mm256_storeu2_m128i(
                    w.add(base + 16 * (row + 1)) as *mut __m128i,
                    w.add(base + 16 * row) as *mut __m128i,
                    x,
                );
            }
        };
        column(0);
        column(2);
        column(4);
        column(6);
        column(8);
        column(10);
        column(12);
        column(14);
        let zp = w as *const __m256i;
        let out = next.0.as_mut_ptr() as *mut __m256i;
        for (i, x) in r.iter().enumerate() {
            let mut value = _mm256_xor_si256(_mm256_loadu_si256(zp.add(i)), *x);
            if xor {
                value = _mm256_xor_si256(value, _mm256_loadu_si256(out.add(i)));
            }
            _mm256_storeu_si256(out.add(i), value);
        }
    }
}
