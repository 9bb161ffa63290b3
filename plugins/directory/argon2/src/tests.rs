//! The argon2 computation against RFC 9106's test vectors and against RustCrypto's `argon2`.

use argon2::{Algorithm, Argon2, Params, Version};
use proptest::prelude::*;

use super::{hash, kept_blocks, Argon2Error, Inputs, Variant, KEEP_BYTES};

/// RFC 9106 §5: 32 bytes of 0x01 as password, 16 of 0x02 as salt, 8 of 0x03 as secret, 12
/// of 0x04 as associated data, m=32, t=3, p=4, a 32-byte tag.
fn rfc_inputs(variant: Variant) -> Inputs<'static> {
    Inputs {
        variant,
        version: 0x13,
        m_cost: 32,
        t_cost: 3,
        lanes: 4,
        password: &[1; 32],
        salt: &[2; 16],
        secret: &[3; 8],
        associated: &[4; 12],
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn rfc_9106_vectors() {
    let vectors = [
        (
            Variant::D,
            "512b391b6f1162975371d30919734294f868e3be3984f3c1a13a4db9fabe4acb",
        ),
        (
            Variant::I,
            "c814d9d1dc7f37aa13f0d77f2494bda1c8de6b016dd388d29952a4c4672b6ce8",
        ),
        (
            Variant::Id,
            "0d640df58d78766c08c037a34a8b53c9d01ef0452d75b65eb52520e96b01e659",
        ),
    ];
    for (variant, expected) in vectors {
        let mut tag = [0u8; 32];
        hash(&rfc_inputs(variant), &mut tag).unwrap();
        assert_eq!(hex(&tag), expected, "{variant:?}");
    }
}

/// Where the CPU has AVX2, the vector code is what runs (not the portable fallback).
#[test]
fn the_compression_uses_the_cpus_vectors() {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        use argon2_rust::Backend;
        let backend = argon2_rust::detected_backend();
        assert!(
            matches!(backend, Backend::Avx2 | Backend::Avx512),
            "{backend:?}"
        );
    }
}

#[test]
fn parameters_outside_the_rfc_are_refused_before_any_work() {
    let base = rfc_inputs(Variant::Id);
    let mut tag = [0u8; 32];
    for bad in [
        Inputs {
            lanes: 0,
            ..rfc_inputs(Variant::Id)
        },
        Inputs {
            t_cost: 0,
            ..rfc_inputs(Variant::Id)
        },
        Inputs {
            m_cost: 31,
            ..rfc_inputs(Variant::Id)
        },
        Inputs {
            version: 0x12,
            ..rfc_inputs(Variant::Id)
        },
        Inputs {
            salt: &[2; 7],
            ..rfc_inputs(Variant::Id)
        },
    ] {
        assert_eq!(hash(&bad, &mut tag), Err(Argon2Error::Params));
    }
    assert_eq!(hash(&base, &mut [0u8; 3]), Err(Argon2Error::Params));
    assert!(hash(&base, &mut tag).is_ok());
}

/// The same memory is kept and reused: a second computation on this thread, and one with
/// less memory after one with more, give the same tags as fresh ones.
#[test]
fn kept_memory_gives_the_same_tags() {
    let small = Inputs {
        m_cost: 64,
        lanes: 1,
        ..rfc_inputs(Variant::Id)
    };
    let large = Inputs {
        m_cost: 512,
        lanes: 2,
        ..rfc_inputs(Variant::Id)
    };
    let (mut a, mut b, mut c) = ([0u8; 32], [0u8; 32], [0u8; 32]);
    hash(&small, &mut a).unwrap();
    hash(&large, &mut b).unwrap();
    hash(&small, &mut c).unwrap();
    assert_eq!(a, c);
    assert_ne!(a, b);
}

/// Up to [`KEEP_BYTES`] stays with the thread; more is released after the computation.
#[test]
fn kept_memory_is_bounded() {
    let kept = Inputs {
        m_cost: 65536,
        t_cost: 1,
        lanes: 1,
        ..rfc_inputs(Variant::Id)
    };
    let too_much = Inputs {
        m_cost: 65536 + 64,
        ..kept
    };
    let mut tag = [0u8; 32];
    hash(&kept, &mut tag).unwrap();
    assert_eq!(kept_blocks() * 1024, KEEP_BYTES);
    hash(&too_much, &mut tag).unwrap();
    assert_eq!(kept_blocks(), 0);
}

fn reference(inputs: &Inputs<'_>, len: usize) -> Vec<u8> {
    let algorithm = match inputs.variant {
        Variant::D => Algorithm::Argon2d,
        Variant::I => Algorithm::Argon2i,
        Variant::Id => Algorithm::Argon2id,
    };
    let version = if inputs.version == 0x10 {
        Version::V0x10
    } else {
        Version::V0x13
    };
    let params = Params::new(inputs.m_cost, inputs.t_cost, inputs.lanes, Some(len)).unwrap();
    let mut out = vec![0u8; len];
    Argon2::new_with_secret(inputs.secret, algorithm, version, params)
        .unwrap()
        .hash_password_into(inputs.password, inputs.salt, &mut out)
        .unwrap();
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// Agrees with RustCrypto's `argon2` on random inputs.
    #[test]
    fn agrees_with_the_argon2_crate(
        password in proptest::collection::vec(any::<u8>(), 0..80),
        salt in proptest::collection::vec(any::<u8>(), 8..40),
        secret in proptest::collection::vec(any::<u8>(), 0..16),
        variant in prop_oneof![Just(Variant::D), Just(Variant::I), Just(Variant::Id)],
        version in prop_oneof![Just(0x10u32), Just(0x13u32)],
        lanes in 1u32..4,
        extra in 0u32..200,
        t_cost in 1u32..4,
        len in prop_oneof![4usize..80, Just(32usize)],
    ) {
        let inputs = Inputs {
            variant,
            version,
            m_cost: 8 * lanes + extra,
            t_cost,
            lanes,
            password: &password,
            salt: &salt,
            secret: &secret,
            associated: &[],
        };
        let expected = reference(&inputs, len);
        let mut tag = vec![0u8; len];
        hash(&inputs, &mut tag).unwrap();
        prop_assert_eq!(&tag, &expected);
    }
}
