//! Escaping of user input into LDAP filters (RFC 4515) and reading the first RDN of a DN
//! (RFC 4514), which is where most directories keep a group's name.

/// Escapes `value` for use as an assertion value inside a filter. Besides the five characters
/// RFC 4515 requires (`*`, `(`, `)`, `\`, NUL), every byte outside printable ASCII is written
/// as `\XX`: always valid, and it keeps control bytes and odd encodings out of the filter text
/// whatever the server's parser makes of raw UTF-8.
pub fn filter_value(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        match b {
            b'*' | b'(' | b')' | b'\\' => push_hex(&mut out, b),
            0x21..=0x7e => out.push(char::from(b)),
            // Space is legal, but escaping it costs nothing and keeps leading/trailing spaces
            // visible in logs of the filter.
            _ => push_hex(&mut out, b),
        }
    }
    out
}

fn push_hex(out: &mut String, b: u8) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.push('\\');
    out.push(char::from(HEX[usize::from(b >> 4)]));
    out.push(char::from(HEX[usize::from(b & 0xf)]));
}

/// Puts `value`, escaped, wherever `placeholder` appears in `template`. One pass: text of the
/// value is never searched for placeholders again.
pub fn fill(template: &str, placeholder: &str, value: &str) -> String {
    template.replace(placeholder, &filter_value(value))
}

/// The attribute-value pairs of the first RDN of `dn` (`cn=admins,ou=groups,…` →
/// `[("cn", "admins")]`), with RFC 4514 escapes decoded. `None` when the DN is malformed or a
/// value is in the `#hex` BER form, which names nothing readable.
pub fn first_rdn(dn: &str) -> Option<Vec<(String, String)>> {
    let mut avas = Vec::new();
    let mut chars = dn.trim_start().char_indices().peekable();
    loop {
        // Attribute type, up to '='.
        let mut kind = String::new();
        for (_, c) in chars.by_ref() {
            if c == '=' {
                break;
            }
            kind.push(c);
        }
        let kind = kind.trim().to_string();
        if kind.is_empty() {
            return None;
        }
        if chars.peek().map(|(_, c)| *c) == Some('#') {
            return None;
        }
        let mut value: Vec<u8> = Vec::new();
        let mut end_of_rdn = true;
        while let Some((_, c)) = chars.next() {
            match c {
                '\\' => {
                    let (_, first) = chars.next()?;
                    if first.is_ascii_hexdigit() {
                        let (_, second) = chars.next()?;
                        let pair: String = [first, second].iter().collect();
                        value.push(u8::from_str_radix(&pair, 16).ok()?);
                    } else {
                        let mut buf = [0u8; 4];
                        value.extend_from_slice(first.encode_utf8(&mut buf).as_bytes());
                    }
                }
                ',' | ';' => break,
                '+' => {
                    end_of_rdn = false;
                    break;
                }
                _ => {
                    let mut buf = [0u8; 4];
                    value.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
                }
            }
        }
        let value = String::from_utf8(value).ok()?;
        avas.push((kind, value.trim().to_string()));
        if end_of_rdn {
            return Some(avas);
        }
    }
}

/// The value of `attribute` in the first RDN of `dn`, if the RDN is of that type.
pub fn rdn_value(dn: &str, attribute: &str) -> Option<String> {
    first_rdn(dn)?
        .into_iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(attribute))
        .map(|(_, v)| v)
        .filter(|v| !v.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filter_specials_are_escaped() {
        assert_eq!(filter_value("*)(uid=*"), r"\2a\29\28uid=\2a");
        assert_eq!(filter_value(r"a\b"), r"a\5cb");
        assert_eq!(filter_value("a\0b"), r"a\00b");
        assert_eq!(filter_value("alice@example.org"), "alice@example.org");
        assert_eq!(filter_value("jürgen"), r"j\c3\bcrgen");
        assert_eq!(filter_value(" x "), r"\20x\20");
        assert_eq!(filter_value(""), "");
    }

    #[test]
    fn escaped_values_contain_no_filter_syntax() {
        let nasty = "*()\\\0\u{1}\u{7f}é{user}{dn}=";
        let escaped = filter_value(nasty);
        assert!(!escaped.contains(['*', '(', ')', '\0', '\u{1}', '\u{7f}', ' ']));
        assert!(escaped.is_ascii());
        // Every backslash starts a two-digit hex escape.
        let bytes = escaped.as_bytes();
        for (i, b) in bytes.iter().enumerate() {
            if *b == b'\\' {
                assert!(bytes.get(i + 1).is_some_and(u8::is_ascii_hexdigit));
                assert!(bytes.get(i + 2).is_some_and(u8::is_ascii_hexdigit));
            }
        }
        // And it is a filter value ldap3 parses back to the original bytes.
        let filter = format!("(uid={escaped})");
        assert!(ldap3::parse_filter(&filter).is_ok(), "{filter}");
    }

    #[test]
    fn fill_is_single_pass() {
        assert_eq!(
            fill("(&(uid={user})(mail={user}))", "{user}", "{user}*"),
            r"(&(uid={user}\2a)(mail={user}\2a))"
        );
        assert_eq!(
            fill("(member={dn})", "{dn}", "cn=a\\,b,dc=x"),
            r"(member=cn=a\5c,b,dc=x)"
        );
    }

    #[test]
    fn rdn_values() {
        assert_eq!(
            rdn_value("cn=admins,ou=groups,dc=example,dc=org", "cn").as_deref(),
            Some("admins")
        );
        assert_eq!(rdn_value("CN=Admins,DC=x", "cn").as_deref(), Some("Admins"));
        assert_eq!(rdn_value("ou=admins,dc=x", "cn"), None);
        assert_eq!(
            rdn_value(r"cn=Smith\, John,dc=x", "cn").as_deref(),
            Some("Smith, John")
        );
        assert_eq!(
            rdn_value(r"cn=J\C3\BCrgen\2b,dc=x", "cn").as_deref(),
            Some("Jürgen+")
        );
        assert_eq!(
            rdn_value("uid=x+cn=Both,dc=x", "cn").as_deref(),
            Some("Both")
        );
        assert_eq!(rdn_value("cn=#04024869,dc=x", "cn"), None);
        assert_eq!(rdn_value("", "cn"), None);
        assert_eq!(rdn_value("cn=", "cn"), None);
        assert_eq!(rdn_value(r"cn=bad\", "cn"), None);
        assert_eq!(rdn_value(r"cn=bad\ff,dc=x", "cn"), None);
    }
}
