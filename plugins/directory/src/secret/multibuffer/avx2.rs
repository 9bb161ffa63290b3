//! The AVX2 + BMI2 kernel behind [`super::compress`]: lanes 0–3 in the four 64-bit slots of
//! 256-bit vectors, lane 4 in general-purpose registers, round by round in one instruction
//! stream so that the core runs both at once.

use std::arch::x86_64::{
    __m256i, _mm256_add_epi64, _mm256_and_si256, _mm256_andnot_si256, _mm256_extract_epi64,
    _mm256_or_si256, _mm256_set1_epi64x, _mm256_set_epi64x, _mm256_setr_epi8, _mm256_shuffle_epi8,
    _mm256_slli_epi64, _mm256_srli_epi64, _mm256_xor_si256,
};

use super::{State, LANES};

/// SHA-512's round constants (FIPS 180-4, 4.2.3).
#[rustfmt::skip]
const K: [u64; 80] = [
    0x428a_2f98_d728_ae22, 0x7137_4491_23ef_65cd, 0xb5c0_fbcf_ec4d_3b2f, 0xe9b5_dba5_8189_dbbc,
    0x3956_c25b_f348_b538, 0x59f1_11f1_b605_d019, 0x923f_82a4_af19_4f9b, 0xab1c_5ed5_da6d_8118,
    0xd807_aa98_a303_0242, 0x1283_5b01_4570_6fbe, 0x2431_85be_4ee4_b28c, 0x550c_7dc3_d5ff_b4e2,
    0x72be_5d74_f27b_896f, 0x80de_b1fe_3b16_96b1, 0x9bdc_06a7_25c7_1235, 0xc19b_f174_cf69_2694,
    0xe49b_69c1_9ef1_4ad2, 0xefbe_4786_384f_25e3, 0x0fc1_9dc6_8b8c_d5b5, 0x240c_a1cc_77ac_9c65,
    0x2de9_2c6f_592b_0275, 0x4a74_84aa_6ea6_e483, 0x5cb0_a9dc_bd41_fbd4, 0x76f9_88da_8311_53b5,
    0x983e_5152_ee66_dfab, 0xa831_c66d_2db4_3210, 0xb003_27c8_98fb_213f, 0xbf59_7fc7_beef_0ee4,
    0xc6e0_0bf3_3da8_8fc2, 0xd5a7_9147_930a_a725, 0x06ca_6351_e003_826f, 0x1429_2967_0a0e_6e70,
    0x27b7_0a85_46d2_2ffc, 0x2e1b_2138_5c26_c926, 0x4d2c_6dfc_5ac4_2aed, 0x5338_0d13_9d95_b3df,
    0x650a_7354_8baf_63de, 0x766a_0abb_3c77_b2a8, 0x81c2_c92e_47ed_aee6, 0x9272_2c85_1482_353b,
    0xa2bf_e8a1_4cf1_0364, 0xa81a_664b_bc42_3001, 0xc24b_8b70_d0f8_9791, 0xc76c_51a3_0654_be30,
    0xd192_e819_d6ef_5218, 0xd699_0624_5565_a910, 0xf40e_3585_5771_202a, 0x106a_a070_32bb_d1b8,
    0x19a4_c116_b8d2_d0c8, 0x1e37_6c08_5141_ab53, 0x2748_774c_df8e_eb99, 0x34b0_bcb5_e19b_48a8,
    0x391c_0cb3_c5c9_5a63, 0x4ed8_aa4a_e341_8acb, 0x5b9c_ca4f_7763_e373, 0x682e_6ff3_d6b2_b8a3,
    0x748f_82ee_5def_b2fc, 0x78a5_636f_4317_2f60, 0x84c8_7814_a1f0_ab72, 0x8cc7_0208_1a64_39ec,
    0x90be_fffa_2363_1e28, 0xa450_6ceb_de82_bde9, 0xbef9_a3f7_b2c6_7915, 0xc671_78f2_e372_532b,
    0xca27_3ece_ea26_619c, 0xd186_b8c7_21c0_c207, 0xeada_7dd6_cde0_eb1e, 0xf57d_4f7f_ee6e_d178,
    0x06f0_67aa_7217_6fba, 0x0a63_7dc5_a2c8_98a6, 0x113f_9804_bef9_0dae, 0x1b71_0b35_131c_471b,
    0x28db_77f5_2304_7d84, 0x32ca_ab7b_40c7_2493, 0x3c9e_be0a_15c9_bebc, 0x431d_67c4_9c10_0d4c,
    0x4cc5_d4be_cb3e_42b6, 0x597f_299c_fc65_7e2a, 0x5fcb_6fab_3ad6_faec, 0x6c44_198c_4a47_5817,
];

/// Rotates every 64-bit slot right by a constant (AVX2 has no 64-bit rotation).
macro_rules! rotr {
    ($x:expr, $n:literal) => {{
        let x = $x;
        _mm256_or_si256(
            _mm256_srli_epi64::<$n>(x),
            _mm256_slli_epi64::<{ 64 - $n }>(x),
        )
    }};
}

/// Word `t` of a block, as SHA-512 reads it (big-endian).
#[inline(always)]
fn word(block: &[u8; 128], t: usize) -> u64 {
    let mut w = [0u8; 8];
    w.copy_from_slice(&block[t * 8..t * 8 + 8]);
    u64::from_be_bytes(w)
}

/// Slots 0..4 of a vector from four lanes' values (`_mm256_set_epi64x` takes them high first).
#[inline]
#[target_feature(enable = "avx2")]
fn gather(v: [u64; 4]) -> __m256i {
    _mm256_set_epi64x(v[3] as i64, v[2] as i64, v[1] as i64, v[0] as i64)
}

/// # Safety
/// The CPU must support AVX2 and BMI2.
#[target_feature(enable = "avx2,bmi2")]
pub(super) unsafe fn compress(states: &mut [State; LANES], blocks: [&[u8; 128]; LANES]) {
    let [b0, b1, b2, b3, b4] = blocks;
    // Message schedules: vectors for lanes 0–3, plain words for lane 4.
    let mut w = [_mm256_set1_epi64x(0); 80];
    let mut sw = [0u64; 80];
    for t in 0..16 {
        w[t] = gather([word(b0, t), word(b1, t), word(b2, t), word(b3, t)]);
        sw[t] = word(b4, t);
    }
    // σ0's rotation by 8 is a byte shuffle, which runs on another port than the shifts.
    let rot8 = _mm256_setr_epi8(
        1, 2, 3, 4, 5, 6, 7, 0, 9, 10, 11, 12, 13, 14, 15, 8, 1, 2, 3, 4, 5, 6, 7, 0, 9, 10, 11,
        12, 13, 14, 15, 8,
    );
    let v: [__m256i; 8] =
        std::array::from_fn(|i| gather([states[0][i], states[1][i], states[2][i], states[3][i]]));
    let [mut a, mut b, mut c, mut d, mut e, mut f, mut g, mut h] = v;
    let [mut sa, mut sb, mut sc, mut sd, mut se, mut sf, mut sg, mut sh] = states[4];

    // One round of both, with the eight working variables named in rotated order instead of
    // moved (the classic unrolling by eight).
    macro_rules! round {
        ($t:expr, $a:ident, $b:ident, $c:ident, $d:ident, $e:ident, $f:ident, $g:ident, $h:ident,
         $sa:ident, $sb:ident, $sc:ident, $sd:ident, $se:ident, $sf:ident, $sg:ident, $sh:ident) => {{
            let t: usize = $t;
            if t >= 16 {
                let x = w[t - 15];
                let s0 = _mm256_xor_si256(
                    _mm256_xor_si256(rotr!(x, 1), _mm256_shuffle_epi8(x, rot8)),
                    _mm256_srli_epi64::<7>(x),
                );
                let y = w[t - 2];
                let s1 = _mm256_xor_si256(
                    _mm256_xor_si256(rotr!(y, 19), rotr!(y, 61)),
                    _mm256_srli_epi64::<6>(y),
                );
                w[t] = _mm256_add_epi64(
                    _mm256_add_epi64(w[t - 16], s0),
                    _mm256_add_epi64(w[t - 7], s1),
                );
                let x = sw[t - 15];
                let y = sw[t - 2];
                let s0 = x.rotate_right(1) ^ x.rotate_right(8) ^ (x >> 7);
                let s1 = y.rotate_right(19) ^ y.rotate_right(61) ^ (y >> 6);
                sw[t] = sw[t - 16]
                    .wrapping_add(s0)
                    .wrapping_add(sw[t - 7])
                    .wrapping_add(s1);
            }
            let kw = _mm256_add_epi64(w[t], _mm256_set1_epi64x(K[t] as i64));
            let s1 = _mm256_xor_si256(
                _mm256_xor_si256(rotr!($e, 14), rotr!($e, 18)),
                rotr!($e, 41),
            );
            let ch = _mm256_xor_si256(_mm256_and_si256($e, $f), _mm256_andnot_si256($e, $g));
            let t1 = _mm256_add_epi64(_mm256_add_epi64($h, s1), _mm256_add_epi64(ch, kw));
            let s0 = _mm256_xor_si256(
                _mm256_xor_si256(rotr!($a, 28), rotr!($a, 34)),
                rotr!($a, 39),
            );
            let maj = _mm256_or_si256(
                _mm256_and_si256(_mm256_or_si256($a, $b), $c),
                _mm256_and_si256($a, $b),
            );
            $d = _mm256_add_epi64($d, t1);
            $h = _mm256_add_epi64(t1, _mm256_add_epi64(s0, maj));

            let s1 = $se.rotate_right(14) ^ $se.rotate_right(18) ^ $se.rotate_right(41);
            let ch = ($se & $sf) ^ (!$se & $sg);
            let t1 = $sh
                .wrapping_add(s1)
                .wrapping_add(ch)
                .wrapping_add(K[t])
                .wrapping_add(sw[t]);
            let s0 = $sa.rotate_right(28) ^ $sa.rotate_right(34) ^ $sa.rotate_right(39);
            let maj = ($sa & $sb) ^ ($sa & $sc) ^ ($sb & $sc);
            $sd = $sd.wrapping_add(t1);
            $sh = t1.wrapping_add(s0.wrapping_add(maj));
        }};
    }
    for i in 0..10 {
        let t = i * 8;
        round!(t, a, b, c, d, e, f, g, h, sa, sb, sc, sd, se, sf, sg, sh);
        round!(
            t + 1,
            h,
            a,
            b,
            c,
            d,
            e,
            f,
            g,
            sh,
            sa,
            sb,
            sc,
            sd,
            se,
            sf,
            sg
        );
        round!(
            t + 2,
            g,
            h,
            a,
            b,
            c,
            d,
            e,
            f,
            sg,
            sh,
            sa,
            sb,
            sc,
            sd,
            se,
            sf
        );
        round!(
            t + 3,
            f,
            g,
            h,
            a,
            b,
            c,
            d,
            e,
            sf,
            sg,
            sh,
            sa,
            sb,
            sc,
            sd,
            se
        );
        round!(
            t + 4,
            e,
            f,
            g,
            h,
            a,
            b,
            c,
            d,
            se,
            sf,
            sg,
            sh,
            sa,
            sb,
            sc,
            sd
        );
        round!(
            t + 5,
            d,
            e,
            f,
            g,
            h,
            a,
            b,
            c,
            sd,
            se,
            sf,
            sg,
            sh,
            sa,
            sb,
            sc
        );
        round!(
            t + 6,
            c,
            d,
            e,
            f,
            g,
            h,
            a,
            b,
            sc,
            sd,
            se,
            sf,
            sg,
            sh,
            sa,
            sb
        );
        round!(
            t + 7,
            b,
            c,
            d,
            e,
            f,
            g,
            h,
            a,
            sb,
            sc,
            sd,
            se,
            sf,
            sg,
            sh,
            sa
        );
    }

    for (i, x) in [a, b, c, d, e, f, g, h].into_iter().enumerate() {
        let lanes = [
            _mm256_extract_epi64::<0>(x),
            _mm256_extract_epi64::<1>(x),
            _mm256_extract_epi64::<2>(x),
            _mm256_extract_epi64::<3>(x),
        ];
        for (state, add) in states.iter_mut().zip(lanes) {
            state[i] = state[i].wrapping_add(add as u64);
        }
    }
    for (s, add) in states[4].iter_mut().zip([sa, sb, sc, sd, se, sf, sg, sh]) {
        *s = s.wrapping_add(add);
    }
}
