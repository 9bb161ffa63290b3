//! SHA-512-crypt verification alone and in batches, per verification, on one core:
//!
//!     cargo bench -p postern-directory --bench sha512crypt
//!
//! The batch figure is what a loaded [`Hasher`](postern_directory::secret::Hasher) pays
//! per login when five or more SHA-512-crypt verifications wait (the best of five runs of
//! each, to see through a noisy machine).

use std::time::Instant;

use postern_directory::secret::{verify, verify_batch};

/// `doveadm pw -s SHA512-CRYPT -p secret` (5000 rounds, the default).
const STORED: &str = "{SHA512-CRYPT}$6$Gvdhm3.yB5B.XPjt$8hADQ2aqJ46k7/AoTqpN4L6V9qITCGhaGHa1y6u/4ZnPslTc3YcLpTTAcCs.GY4p1JfbFQEqGeIijefG0iXLO1";

fn best_ms_per_verification(n: usize, mut run: impl FnMut()) -> f64 {
    (0..5)
        .map(|_| {
            let t = Instant::now();
            run();
            t.elapsed().as_secs_f64() * 1000.0 / n as f64
        })
        .fold(f64::MAX, f64::min)
}

fn main() {
    let n = 200;
    let alone = best_ms_per_verification(n, || {
        for _ in 0..n {
            assert_eq!(verify(STORED, b"secret"), Ok(true));
        }
    });
    let batch: Vec<(&str, &[u8])> = vec![(STORED, b"secret".as_slice()); 5];
    let together = best_ms_per_verification(n, || {
        for _ in 0..n / 5 {
            assert!(verify_batch(&batch).iter().all(|r| *r == Ok(true)));
        }
    });
    println!("sha512-crypt, 5000 rounds, one core:");
    println!("  alone:        {alone:.3} ms per verification");
    println!(
        "  five at once: {together:.3} ms per verification ({:.2}x)",
        alone / together
    );
}
