//! Generates the permission table from `data/permissions.tsv` (a copy of the product contract's
//! table), so the list of names and the built-in roles cannot drift from it.

use std::fmt::Write as _;
use std::{env, fs, path::Path};

fn main() {
    // Relative relocations packed (DT_RELR; glibc 2.36, Debian 12, and later): the loader reads
    // about 10 KiB of relocation table at start instead of about 750 KiB, which stayed resident
    // for the daemon's whole life. Only the binaries: tests and benches link as before. An
    // older glibc would not apply them (the package depends on libc6 >= 2.36).
    if env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("linux")
        && env::var("CARGO_CFG_TARGET_ENV").as_deref() == Ok("gnu")
    {
        println!("cargo:rustc-link-arg-bins=-Wl,-z,pack-relative-relocs");
    }
    let src = Path::new("data/permissions.tsv");
    println!("cargo:rerun-if-changed={}", src.display());
    let text = match fs::read_to_string(src) {
        Ok(t) => t,
        Err(e) => {
            println!("cargo:warning=cannot read {}: {e}", src.display());
            std::process::exit(1);
        }
    };
    let mut out = String::from("pub const PERMISSIONS: &[PermissionDef] = &[\n");
    let mut count = 0;
    for (n, line) in text.lines().enumerate().skip(1) {
        if line.trim().is_empty() {
            continue;
        }
        let cols: Vec<&str> = line.split('\t').collect();
        if cols.len() != 5 {
            println!(
                "cargo:warning=permissions.tsv line {}: expected 5 columns",
                n + 1
            );
            std::process::exit(1);
        }
        let yes = |s: &str| s.trim() == "yes";
        let _ = writeln!(
            out,
            "    PermissionDef {{ name: {:?}, description: {:?}, admin: {}, tenant_admin: {}, user: {} }},",
            cols[0].trim(),
            cols[1].trim(),
            yes(cols[2]),
            yes(cols[3]),
            yes(cols[4])
        );
        count += 1;
    }
    out.push_str("];\n");
    let _ = writeln!(out, "pub const COUNT: usize = {count};");
    let dest =
        Path::new(&env::var("OUT_DIR").unwrap_or_else(|_| ".".into())).join("permissions.rs");
    if let Err(e) = fs::write(&dest, out) {
        println!("cargo:warning=cannot write {}: {e}", dest.display());
        std::process::exit(1);
    }
}
