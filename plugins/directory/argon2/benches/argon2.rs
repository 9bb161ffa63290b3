//! One argon2id computation on one core, per implementation, the best of several runs (to see
//! through a busy machine):
//!
//!     cargo bench -p postern-argon2 --bench argon2 [-- M T RUNS]
//!
//! Without arguments: m=65536 KiB, t=3 (a common production setting), then Postern's own
//! default (m=19456, t=2), five runs each.

use std::time::Instant;

use argon2::{Algorithm, Argon2, Block, Params, Version};
use postern_argon2::{hash, Inputs, Variant};

const PASSWORD: &[u8] = b"correct horse battery staple";
const SALT: &[u8] = b"sixteen byte slt";

fn best_ms(runs: usize, mut run: impl FnMut()) -> f64 {
    (0..runs)
        .map(|_| {
            let t = Instant::now();
            run();
            t.elapsed().as_secs_f64() * 1000.0
        })
        .fold(f64::MAX, f64::min)
}

fn measure(m: u32, t: u32, runs: usize) {
    let Ok(params) = Params::new(m, t, 1, Some(32)) else {
        eprintln!("m={m}, t={t}: out of range");
        return;
    };
    let rust_crypto = Argon2::new(Algorithm::Argon2id, Version::V0x13, params);
    let mut expected = [0u8; 32];
    let crate_fresh = best_ms(runs, || {
        let _ = rust_crypto.hash_password_into(PASSWORD, SALT, &mut expected);
    });
    let mut blocks = vec![Block::default(); m as usize];
    let crate_kept = best_ms(runs, || {
        let _ =
            rust_crypto.hash_password_into_with_memory(PASSWORD, SALT, &mut expected, &mut blocks);
    });
    let inputs = Inputs {
        variant: Variant::Id,
        version: 0x13,
        m_cost: m,
        t_cost: t,
        lanes: 1,
        password: PASSWORD,
        salt: SALT,
        secret: &[],
        associated: &[],
    };
    let mut tag = [0u8; 32];
    let ours = best_ms(runs, || {
        let _ = hash(&inputs, &mut tag);
    });
    assert_eq!(
        tag, expected,
        "postern-argon2 disagrees with the argon2 crate"
    );
    println!("argon2id m={m} t={t} p=1, one core, best of {runs}:");
    println!("  argon2 crate 0.5, fresh memory (as Postern used it): {crate_fresh:8.2} ms");
    println!("  argon2 crate 0.5, memory reused:                     {crate_kept:8.2} ms");
    println!(
        "  postern-argon2 (argon2-rust, memory kept):           {ours:8.2} ms ({:.2}x)",
        crate_fresh / ours
    );
}

fn main() {
    let args: Vec<u32> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    match args.as_slice() {
        [m, t, runs] => measure(*m, *t, *runs as usize),
        [m, t] => measure(*m, *t, 5),
        _ => {
            measure(65536, 3, 5);
            measure(19456, 2, 5);
        }
    }
}
