//! `postern generate-docs DIR` (hidden): man pages and shell completions generated from the
//! clap definitions, so every subcommand any part of the program adds is documented without a
//! list kept by hand; and `postern.toml(5)`, the annotated reference `etc/postern.toml`,
//! which a test holds against the typed configuration. The package build runs it.

use std::path::Path;

use clap::CommandFactory;
use clap_complete::Shell;

use super::{Args, Failure};

/// The annotated reference configuration, every key with its default and meaning.
pub const REFERENCE: &str = include_str!("../../../etc/postern.toml");

pub fn run(dir: &Path) -> Result<(), Failure> {
    let fail =
        |what: &Path, e: std::io::Error| Failure::runtime(format!("{}: {e}", what.display()));
    let man8 = dir.join("man8");
    let man5 = dir.join("man5");
    let completions = dir.join("completions");
    for d in [&man8, &man5, &completions] {
        std::fs::create_dir_all(d).map_err(|e| fail(d, e))?;
    }
    let mut cmd = Args::command();
    cmd.build();
    pages(&cmd, "postern", &man8)?;
    let toml = man5.join("postern.toml.5");
    std::fs::write(&toml, config_page()).map_err(|e| fail(&toml, e))?;
    for (shell, name) in [
        (Shell::Bash, "postern"),
        (Shell::Zsh, "_postern"),
        (Shell::Fish, "postern.fish"),
    ] {
        let path = completions.join(name);
        let mut file = std::fs::File::create(&path).map_err(|e| fail(&path, e))?;
        clap_complete::generate(shell, &mut cmd, "postern", &mut file);
    }
    Ok(())
}

/// `NAME.8` for `cmd`, and `NAME-SUB.8` for each visible subcommand, recursively.
fn pages(cmd: &clap::Command, name: &str, dir: &Path) -> Result<(), Failure> {
    let page = cmd
        .clone()
        .name(name.to_string())
        .bin_name(name.replace('-', " "));
    let mut buf = Vec::new();
    clap_mangen::Man::new(page)
        .section("8")
        .manual("Postern")
        .source(format!("postern {}", env!("CARGO_PKG_VERSION")))
        .render(&mut buf)
        .map_err(|e| Failure::runtime(format!("man page of {name}: {e}")))?;
    if name == "postern" {
        buf.extend_from_slice(SEE_ALSO.as_bytes());
    }
    let path = dir.join(format!("{name}.8"));
    std::fs::write(&path, buf).map_err(|e| Failure::runtime(format!("{}: {e}", path.display())))?;
    for sub in cmd.get_subcommands() {
        if sub.is_hide_set() || sub.get_name() == "help" {
            continue;
        }
        pages(sub, &format!("{name}-{}", sub.get_name()), dir)?;
    }
    Ok(())
}

const SEE_ALSO: &str = ".SH FILES\n\
/etc/postern/postern.toml \\- the configuration, see \\fBpostern.toml\\fR(5)\n\
.br\n\
/var/lib/postern \\- the state directory (SQLite store)\n\
.br\n\
/run/postern \\- the unix sockets\n\
.br\n\
/usr/share/doc/postern \\- integration guides for Postfix, Exim, nginx, Cyrus, Dovecot and reverse proxies\n\
.SH SEE ALSO\n\
\\fBpostern.toml\\fR(5), \\fBsystemctl\\fR(1), \\fBdoveadm\\-auth\\fR(1)\n";

/// `postern.toml(5)`: a short description, then the annotated reference verbatim.
pub fn config_page() -> String {
    let mut page = format!(
        ".TH POSTERN.TOML 5 \"\" \"postern {}\" \"Postern\"\n\
         .SH NAME\npostern.toml \\- configuration of the Postern authentication daemon\n\
         .SH SYNOPSIS\n/etc/postern/postern.toml\n\
         .SH DESCRIPTION\n\
         TOML, keys in kebab\\-case. Layers: built\\-in defaults, then the file, then environment \
         variables POSTERN_<SECTION>__<KEY> (double underscore between levels). Unknown keys are \
         errors: \\fBpostern check\\-config \\-\\-config FILE\\fR lists every problem with its key. \
         Every key is shown below with its default and meaning, as in the reference file the \
         package installs as /usr/share/doc/postern/examples/postern.toml.\n\
         .SH KEYS\n.nf\n",
        env!("CARGO_PKG_VERSION")
    );
    for line in REFERENCE.lines() {
        // roff: a leading dot or quote starts a request; a backslash escapes.
        let line = line.replace('\\', "\\e");
        if line.starts_with('.') || line.starts_with('\'') {
            page.push_str("\\&");
        }
        page.push_str(&line);
        page.push('\n');
    }
    page.push_str(".fi\n.SH SEE ALSO\n\\fBpostern\\fR(8)\n");
    page
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    /// Every key the typed configuration has (as its defaults serialize: keys whose default
    /// is "unset" do not appear there) is in the reference the man page shows, so the page
    /// cannot fall behind the code. That the reference itself parses is checked by the e2e
    /// configuration tests.
    #[test]
    fn the_reference_names_every_key_of_the_typed_configuration() {
        let config: Config = crate::config::parse_text("").unwrap_or_else(|e| {
            panic!("{e:?}");
        });
        let value = toml::Value::try_from(&config).unwrap();
        let mut missing = Vec::new();
        walk(&value, "", &mut missing);
        assert!(missing.is_empty(), "etc/postern.toml lacks: {missing:?}");
    }

    fn walk(v: &toml::Value, path: &str, missing: &mut Vec<String>) {
        match v {
            toml::Value::Table(t) => {
                for (k, v) in t {
                    let here = format!("{path}.{k}");
                    let named = REFERENCE.contains(&format!("{k} ="))
                        || REFERENCE.contains(&format!("[{k}]"))
                        || REFERENCE.contains(&format!("[[{k}]]"))
                        || REFERENCE.contains(&format!("[{k}."));
                    if !named {
                        missing.push(here.clone());
                    }
                    walk(v, &here, missing);
                }
            }
            toml::Value::Array(a) => {
                for v in a {
                    walk(v, path, missing);
                }
            }
            _ => {}
        }
    }

    #[test]
    fn config_page_escapes_roff() {
        let page = config_page();
        assert!(page.starts_with(".TH POSTERN.TOML 5"));
        assert!(page.contains("[server]"));
        assert!(!page.lines().any(|l| l.starts_with(".") && l.contains('=')));
    }
}
