//! The Debian package: `scripts/build-deb.sh` builds it (from the debug binary the tests
//! have), `lintian` reports no error, and it installs into a fresh Debian 12 root made with
//! `debootstrap` from Debian's own packages (cached under `target/debootstrap/`): the
//! installed `postern --version`, `check-config` on the installed configuration and
//! `systemd-analyze verify` on the installed units all pass; an edited configuration survives
//! a reinstall; remove and purge leave nothing behind but what policy keeps.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use postern_e2e::*;

const SUITE: &str = "bookworm";
/// Debian's own packages beside minbase: systemd (for the units), adduser and procps (the
/// package's dependencies that minbase lacks). The cache's name says what it holds.
const INCLUDE: &str = "--include=systemd,adduser,procps";
const CACHE: &str = "bookworm-procps";
const MIRROR: &str = "http://deb.debian.org/debian";

/// The cached Debian root, made once per checkout (a few minutes; needs the mirror).
fn debian_root() -> PathBuf {
    let dir = root().join("target/debootstrap");
    let done = dir.join(CACHE);
    if done.join("usr/bin/dpkg").exists() {
        return done;
    }
    std::fs::create_dir_all(&dir).expect("mkdir target/debootstrap");
    let partial = dir.join(format!("{CACHE}.partial"));
    let _ = std::fs::remove_dir_all(&partial);
    let out = Command::new("debootstrap")
        .args(["--variant=minbase", INCLUDE, SUITE])
        .arg(&partial)
        .arg(MIRROR)
        .output()
        .unwrap_or_else(|e| panic!("cannot run debootstrap (package debootstrap): {e}"));
    assert!(
        out.status.success(),
        "debootstrap {SUITE} from {MIRROR} failed (the package test needs the Debian mirror):\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::rename(&partial, &done).expect("rename the Debian root");
    done
}

/// A fresh copy of the cached root, with /proc mounted (systemd-analyze reads it); unmounted
/// and deleted on drop.
struct Chroot {
    dir: tempfile::TempDir,
}

impl Chroot {
    fn fresh() -> Chroot {
        let cache = debian_root();
        let dir = tempfile::Builder::new()
            .prefix("root-")
            .tempdir_in(root().join("target/debootstrap"))
            .expect("tempdir");
        run(Command::new("cp")
            .arg("-a")
            .arg(format!("{}/.", cache.display()))
            .arg(dir.path()));
        run(Command::new("mount")
            .args(["-t", "proc", "proc"])
            .arg(dir.path().join("proc")));
        Chroot { dir }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn run(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        let mut cmd = Command::new("chroot");
        cmd.arg(self.path()).args(args).env_clear();
        cmd.env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin");
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd.output()
            .unwrap_or_else(|e| panic!("cannot chroot to run {args:?}: {e}"))
    }

    /// Runs `args` in the root; the test fails with its output unless it succeeds.
    fn ok(&self, args: &[&str]) -> String {
        self.ok_env(args, &[])
    }

    fn ok_env(&self, args: &[&str], env: &[(&str, &str)]) -> String {
        let out = self.run(args, env);
        let (o, e) = text(&out);
        assert!(
            out.status.success(),
            "{args:?} in the Debian root failed:\n{o}{e}"
        );
        format!("{o}{e}")
    }

    fn files(&self) -> BTreeSet<String> {
        let out = run(Command::new("find")
            .arg(".")
            .args(["-xdev", "-path", "./proc", "-prune", "-o", "-print"])
            .current_dir(self.path()));
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|l| l.trim_start_matches('.').to_string())
            .collect()
    }

    fn exists(&self, path: &str) -> bool {
        self.path()
            .join(path.trim_start_matches('/'))
            .symlink_metadata()
            .is_ok()
    }
}

impl Drop for Chroot {
    fn drop(&mut self) {
        let _ = Command::new("umount")
            .arg("-l")
            .arg(self.dir.path().join("proc"))
            .status();
    }
}

#[test]
fn deb_builds_passes_lintian_installs_verifies_and_purges_in_a_fresh_debian_root() {
    let out_dir = root().join("target/deb-test");
    let built = run(Command::new(root().join("scripts/build-deb.sh"))
        .arg("--binary")
        .arg(postern_bin())
        .arg("--out")
        .arg(&out_dir));
    let deb = PathBuf::from(String::from_utf8_lossy(&built.stdout).trim());
    assert!(deb.exists(), "no .deb at {}", deb.display());

    // Package contents.
    let listing = run(Command::new("dpkg-deb").arg("-c").arg(&deb));
    let listing = String::from_utf8_lossy(&listing.stdout);
    for path in [
        "./usr/sbin/postern",
        "./lib/systemd/system/postern.service",
        "./lib/systemd/system/postern.socket",
        "./usr/lib/sysusers.d/postern.conf",
        "./usr/lib/tmpfiles.d/postern.conf",
        "./etc/postern/postern.toml",
        "./usr/share/man/man8/postern.8.gz",
        "./usr/share/man/man8/postern-auth-test.8.gz",
        "./usr/share/man/man8/postern-serve.8.gz",
        "./usr/share/man/man5/postern.toml.5.gz",
        "./usr/share/bash-completion/completions/postern",
        "./usr/share/zsh/vendor-completions/_postern",
        "./usr/share/fish/vendor_completions.d/postern.fish",
        "./usr/share/doc/postern/copyright",
        "./usr/share/doc/postern/changelog.Debian.gz",
        "./usr/share/doc/postern/README.md",
        "./usr/share/doc/postern/docs/postfix.md",
    ] {
        assert!(
            listing.lines().any(|l| l.ends_with(&format!(" {path}"))),
            "{path} missing from the package:\n{listing}"
        );
    }

    let lint = Command::new("lintian")
        .args(["--fail-on", "error"])
        .arg(&deb)
        .output()
        .unwrap_or_else(|e| panic!("cannot run lintian (package lintian): {e}"));
    let (lo, le) = text(&lint);
    assert!(
        lint.status.success() && !lo.lines().any(|l| l.starts_with("E: ")),
        "lintian:\n{lo}{le}"
    );

    let c = Chroot::fresh();
    let before = c.files();
    std::fs::copy(&deb, c.path().join("tmp/postern.deb")).expect("copy the .deb");
    c.ok(&["dpkg", "-i", "/tmp/postern.deb"]);

    let version = c.ok(&["postern", "--version"]);
    assert_eq!(
        version.trim(),
        format!("postern {}", env!("CARGO_PKG_VERSION"))
    );
    let checked = c.ok(&[
        "postern",
        "check-config",
        "--config",
        "/etc/postern/postern.toml",
    ]);
    assert!(checked.contains("configuration is valid"), "{checked}");
    c.ok(&[
        "systemd-analyze",
        "verify",
        "/lib/systemd/system/postern.service",
        "/lib/systemd/system/postern.socket",
    ]);
    // No daemon runs in the root: auth test finds the installed configuration's socket by
    // itself and says, in one line, that nothing answers there (exit 2).
    let down = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "echo pw | chroot {} /usr/sbin/postern auth test alice",
            c.path().display()
        ))
        .output()
        .expect("chroot");
    let (o, e) = text(&down);
    assert_eq!(down.status.code(), Some(2), "{o}{e}");
    assert_eq!(e.lines().count(), 1, "{e}");
    assert!(
        e.contains("unix:/run/postern/auth") && e.contains("is postern running?"),
        "{e}"
    );
    // The service user, member of postfix; its state directory; the configuration's owner.
    let groups = c.ok(&["id", "-nG", "postern"]);
    assert!(
        groups.split_whitespace().any(|g| g == "postfix"),
        "{groups}"
    );
    let stat = c.ok(&[
        "stat",
        "-c",
        "%U:%G %a",
        "/var/lib/postern",
        "/etc/postern/postern.toml",
    ]);
    assert_eq!(
        stat.lines().collect::<Vec<_>>(),
        ["postern:postern 700", "root:postern 640"],
        "{stat}"
    );
    assert!(c.exists("/etc/systemd/system/multi-user.target.wants/postern.service"));
    // The man page's header names the program.
    let man = c.ok(&[
        "sh",
        "-c",
        "zcat /usr/share/man/man5/postern.toml.5.gz | head -n 1",
    ]);
    assert!(man.starts_with(".TH POSTERN.TOML 5"), "{man}");

    // An edited configuration survives reinstalling the package.
    let conf = c.path().join("etc/postern/postern.toml");
    let edited = format!(
        "{}\n# edited by the administrator\n",
        std::fs::read_to_string(&conf).expect("read conf")
    );
    std::fs::write(&conf, &edited).expect("edit conf");
    c.ok_env(
        &["dpkg", "-i", "/tmp/postern.deb"],
        &[("DEBIAN_FRONTEND", "noninteractive")],
    );
    assert_eq!(std::fs::read_to_string(&conf).expect("read conf"), edited);

    // Remove keeps configuration and state; purge removes the configuration, and the state
    // only when asked.
    c.ok(&["dpkg", "--remove", "postern"]);
    assert!(!c.exists("/usr/sbin/postern"));
    assert!(c.exists("/etc/postern/postern.toml") && c.exists("/var/lib/postern"));
    let purged = c.ok(&["dpkg", "--purge", "postern"]);
    assert!(!c.exists("/etc/postern"));
    assert!(c.exists("/var/lib/postern"), "state removed unasked");
    assert!(purged.contains("POSTERN_PURGE_STATE=yes"), "{purged}");
    c.ok(&["dpkg", "-i", "/tmp/postern.deb"]);
    c.ok_env(
        &["dpkg", "--purge", "postern"],
        &[("POSTERN_PURGE_STATE", "yes")],
    );
    assert!(!c.exists("/var/lib/postern") && !c.exists("/etc/postern"));

    // Left behind: dpkg's and the logs' records, the user and group (policy keeps them) and
    // their backup files, and what the test's own systemd-analyze wrote under /run/systemd.
    let kept = [
        "/var/lib/dpkg/",
        "/var/log/",
        "/etc/passwd-",
        "/etc/group-",
        "/etc/shadow-",
        "/etc/gshadow-",
        "/tmp/postern.deb",
        "/var/lib/systemd/deb-systemd-helper-",
        "/run/systemd/",
    ];
    let after = c.files();
    let left: Vec<&String> = after
        .difference(&before)
        .filter(|p| !kept.iter().any(|k| p.starts_with(k)))
        .collect();
    assert!(left.is_empty(), "left behind after purge: {left:?}");
}
