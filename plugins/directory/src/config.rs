//! What every plugin's configuration shares with the daemon's: one shape for a problem, one way
//! to read a secret file, and the "did you mean" hint for a misspelt name.
//!
//! A plugin names keys relative to its own table (`url`, `attributes.name`); the daemon, which
//! knows the table, prefixes `directory.NAME.`. So `check-config` prints every problem of every
//! plugin the same way, and a plugin never needs to know where it was configured.

use std::path::Path;

use zeroize::Zeroizing;

/// One configuration problem: the key path (relative to the table that was checked) and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{key}: {reason}")]
pub struct ConfigProblem {
    pub key: String,
    pub reason: String,
}

impl ConfigProblem {
    pub fn new(key: impl Into<String>, reason: impl Into<String>) -> Self {
        ConfigProblem {
            key: key.into(),
            reason: reason.into(),
        }
    }

    /// The same problem seen from an enclosing table: `prefixed("directory.corp")` turns
    /// `url` into `directory.corp.url`.
    pub fn prefixed(mut self, table: &str) -> Self {
        self.key = if self.key.is_empty() {
            table.to_string()
        } else {
            format!("{table}.{}", self.key)
        };
        self
    }
}

/// Reads the secret a `*-file` key names (`bind-password-file`, `url-file`, a systemd
/// credential under `/run/credentials/…`).
///
/// Trailing line ends are dropped: editors and `echo` add one that is never part of the secret,
/// whereas other whitespace might be. The error names the key and the path but, whatever the
/// I/O error says, never the content.
pub fn read_secret_file(key: &str, path: &Path) -> Result<Zeroizing<String>, ConfigProblem> {
    let bytes =
        Zeroizing::new(std::fs::read(path).map_err(|e| {
            ConfigProblem::new(key, format!("cannot read {}: {e}", path.display()))
        })?);
    let text = std::str::from_utf8(&bytes)
        .map_err(|_| ConfigProblem::new(key, format!("{} is not UTF-8 text", path.display())))?;
    Ok(Zeroizing::new(
        text.trim_end_matches(['\n', '\r']).to_string(),
    ))
}

/// The candidate closest to `word`, when it is close enough to be a likely typo: at most a
/// third of the word's letters wrong (and at least one allowed), so `bnd` suggests `bind` but
/// `xyz` suggests nothing.
pub fn closest<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let limit = (word.chars().count() / 3).max(1);
    candidates
        .into_iter()
        .map(|c| (edit_distance(word, c), c))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

/// `, did you mean `X`?` for [`closest`], or nothing: appended to "unknown …" messages.
pub fn did_you_mean<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> String {
    closest(word, candidates)
        .map(|c| format!(", did you mean `{c}`?"))
        .unwrap_or_default()
}

/// Edit distance between two strings, by characters: insertions, deletions, substitutions and
/// swaps of two neighbours (optimal string alignment), each costing 1. Swaps count once
/// because `nmae` for `name` is the commonest typo there is.
pub fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    // Three rows of the classic table: d[i][j] = distance(a[..i], b[..j]).
    let mut before: Vec<usize> = vec![0; b.len() + 1];
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    let mut current: Vec<usize> = vec![0; b.len() + 1];
    for i in 1..=a.len() {
        current[0] = i;
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut d = (previous[j] + 1)
                .min(current[j - 1] + 1)
                .min(previous[j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                d = d.min(before[j - 2] + 1);
            }
            current[j] = d;
        }
        std::mem::swap(&mut before, &mut previous);
        std::mem::swap(&mut previous, &mut current);
    }
    previous[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distances() {
        assert_eq!(edit_distance("", ""), 0);
        assert_eq!(edit_distance("bind", "bind"), 0);
        assert_eq!(edit_distance("bnd", "bind"), 1);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance("abc", ""), 3);
        assert_eq!(edit_distance("jürgen", "jurgen"), 1);
        assert_eq!(edit_distance("nmae", "name"), 1, "a swap costs one");
        assert_eq!(edit_distance("ldpa", "ldap"), 1);
        assert_eq!(edit_distance("ca", "abc"), 3, "optimal string alignment");
    }

    #[test]
    fn suggestions() {
        let keys = ["protocol", "bind", "tls", "mode", "max-connections"];
        assert_eq!(closest("bnd", keys), Some("bind"));
        assert_eq!(closest("protcol", keys), Some("protocol"));
        assert_eq!(closest("max-conections", keys), Some("max-connections"));
        assert_eq!(closest("xyz", keys), None);
        assert_eq!(closest("anything", []), None);
        assert_eq!(did_you_mean("bnd", keys), ", did you mean `bind`?");
        assert_eq!(did_you_mean("completely-else", keys), "");
        assert_eq!(
            closest("principal-craete", ["principal-create", "principal-delete"]),
            Some("principal-create")
        );
        // Ties go to the first candidate, so the hint is stable.
        assert_eq!(closest("mod", ["mode", "mod2"]), Some("mode"));
    }

    #[test]
    fn secret_files() {
        let dir = std::env::temp_dir().join(format!("postern-secret-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("secret");
        std::fs::write(&file, "s3cret \n\r\n").unwrap();
        let s = read_secret_file("bind-password-file", &file).unwrap();
        assert_eq!(s.as_str(), "s3cret ", "only line ends are trimmed");
        std::fs::write(&file, "no-newline").unwrap();
        assert_eq!(read_secret_file("k", &file).unwrap().as_str(), "no-newline");
        std::fs::write(&file, [0xff, 0xfe]).unwrap();
        let e = read_secret_file("k", &file).unwrap_err();
        assert_eq!(e.key, "k");
        assert!(e.reason.contains("not UTF-8"), "{e}");
        let missing = dir.join("missing");
        let e = read_secret_file("shared-secret-file", &missing).unwrap_err();
        assert_eq!(e.key, "shared-secret-file");
        assert!(e.reason.starts_with("cannot read "), "{e}");
        assert!(e.reason.contains(&missing.display().to_string()), "{e}");
        let e = e.prefixed("auth-http");
        assert_eq!(e.key, "auth-http.shared-secret-file");
        assert!(
            e.to_string()
                .starts_with("auth-http.shared-secret-file: cannot read "),
            "{e}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
