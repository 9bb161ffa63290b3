//! Finds the bind placeholders of an operator's query, outside string literals, quoted
//! identifiers and comments, so that `check-config` can tell a `$1` from a `?` statically and
//! MySQL queries can be bound once per `?`.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Placeholder {
    /// `$N` (PostgreSQL, SQLite).
    Numbered(u32),
    /// `?` (MySQL; SQLite also knows it).
    Positional,
}

/// `backslash_escapes`: MySQL's strings take `\'` as an escaped quote; standard SQL's do not.
pub(crate) fn scan(sql: &str, backslash_escapes: bool) -> Vec<Placeholder> {
    let b = sql.as_bytes();
    let mut found = Vec::new();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            quote @ (b'\'' | b'"' | b'`') => {
                // A doubled quote inside is an escaped quote.
                i += 1;
                while i < b.len() {
                    if backslash_escapes && b[i] == b'\\' && quote == b'\'' {
                        i += 2;
                        continue;
                    }
                    if b[i] == quote {
                        if b.get(i + 1) == Some(&quote) {
                            i += 2;
                            continue;
                        }
                        break;
                    }
                    i += 1;
                }
                i += 1;
            }
            b'-' if b.get(i + 1) == Some(&b'-') => {
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
            }
            b'#' if backslash_escapes => {
                // MySQL line comment (PostgreSQL's `#` is an operator).
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
            }
            b'/' if b.get(i + 1) == Some(&b'*') => {
                i += 2;
                while i + 1 < b.len() && !(b[i] == b'*' && b[i + 1] == b'/') {
                    i += 1;
                }
                i += 2;
            }
            b'$' => {
                let start = i + 1;
                let mut end = start;
                while end < b.len() && b[end].is_ascii_digit() {
                    end += 1;
                }
                if end > start {
                    let n = sql[start..end].parse().unwrap_or(u32::MAX);
                    found.push(Placeholder::Numbered(n));
                }
                i = end.max(i + 1);
            }
            b'?' => {
                found.push(Placeholder::Positional);
                i += 1;
            }
            _ => i += 1,
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;
    use Placeholder::*;

    #[test]
    fn skips_literals_and_comments() {
        assert_eq!(scan("SELECT a FROM t WHERE u = $1", false), [Numbered(1)]);
        assert_eq!(
            scan("SELECT '$1', \"?\", `?` -- ?\n, ? /* $2 */", true),
            [Positional]
        );
        assert_eq!(
            scan("SELECT 'it''s ?', $1, $1", false),
            [Numbered(1), Numbered(1)]
        );
        assert_eq!(scan("SELECT 'a\\'?', ?", true), [Positional]);
        // Standard strings: the backslash is an ordinary character.
        assert_eq!(scan("SELECT 'a\\', $1", false), [Numbered(1)]);
        assert_eq!(scan("SELECT $12, $$", false), [Numbered(12)]);
        assert_eq!(scan("SELECT 1 # ?\n", true), []);
        assert_eq!(scan("'unterminated ?", true), []);
    }
}
