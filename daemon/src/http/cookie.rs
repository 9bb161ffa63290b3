//! Postern's session cookie (SPEC §6): `postern_session`, HttpOnly, SameSite=Lax, `Secure`
//! when `server.public-url` is https. It carries the same token as `Authorization: Bearer`.

use axum::http::{header, HeaderMap, HeaderValue};

pub const SESSION_COOKIE: &str = "postern_session";

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CookieSettings {
    /// Browsers send a `Secure` cookie over https only; set when the daemon is reached by https.
    pub secure: bool,
}

impl CookieSettings {
    pub fn from_public_url(public_url: &str) -> CookieSettings {
        CookieSettings {
            secure: public_url
                .get(..8)
                .is_some_and(|s| s.eq_ignore_ascii_case("https://")),
        }
    }

    /// `Set-Cookie` for a new session; `max_age` in seconds (none: until the browser closes).
    pub fn session(&self, token: &str, max_age: Option<u64>) -> Option<HeaderValue> {
        let age = max_age
            .map(|s| format!("; Max-Age={s}"))
            .unwrap_or_default();
        HeaderValue::from_str(&format!(
            "{SESSION_COOKIE}={token}{age}{}",
            self.attributes()
        ))
        .ok()
    }

    /// `Set-Cookie` that makes the browser forget the session.
    pub fn clear(&self) -> Option<HeaderValue> {
        HeaderValue::from_str(&format!(
            "{SESSION_COOKIE}=; Max-Age=0{}",
            self.attributes()
        ))
        .ok()
    }

    fn attributes(&self) -> &'static str {
        // Path=/: the session serves /auth, /account and /api alike.
        if self.secure {
            "; Path=/; HttpOnly; SameSite=Lax; Secure"
        } else {
            "; Path=/; HttpOnly; SameSite=Lax"
        }
    }
}

/// The value of cookie `name` in the request's `Cookie` headers (the first one, as browsers
/// send the most specific path first). Empty values count as absent.
pub fn read<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(n, _)| *n == name)
        .map(|(_, v)| v.trim().trim_matches('"'))
        .filter(|v| !v.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secure_follows_the_public_url() {
        assert!(CookieSettings::from_public_url("https://auth.example.org").secure);
        assert!(CookieSettings::from_public_url("HTTPS://auth.example.org").secure);
        assert!(!CookieSettings::from_public_url("http://127.0.0.1:8480").secure);
        assert!(!CookieSettings::from_public_url("").secure);
    }

    #[test]
    fn set_cookie_values() {
        let plain = CookieSettings { secure: false };
        assert_eq!(
            plain.session("pst_abc", Some(3600)).unwrap(),
            "postern_session=pst_abc; Max-Age=3600; Path=/; HttpOnly; SameSite=Lax"
        );
        let secure = CookieSettings { secure: true };
        assert_eq!(
            secure.session("pst_abc", None).unwrap(),
            "postern_session=pst_abc; Path=/; HttpOnly; SameSite=Lax; Secure"
        );
        assert_eq!(
            secure.clear().unwrap(),
            "postern_session=; Max-Age=0; Path=/; HttpOnly; SameSite=Lax; Secure"
        );
        // A token that cannot be a header value is refused, not sent mangled.
        assert!(plain.session("bad\ntoken", None).is_none());
    }

    #[test]
    fn reads_the_named_cookie() {
        let mut h = HeaderMap::new();
        assert_eq!(read(&h, SESSION_COOKIE), None);
        h.append(
            header::COOKIE,
            HeaderValue::from_static("theme=dark; postern_session_x=no"),
        );
        assert_eq!(read(&h, SESSION_COOKIE), None);
        h.append(
            header::COOKIE,
            HeaderValue::from_static("a=b;postern_session=pst_1; postern_session=pst_2"),
        );
        assert_eq!(read(&h, SESSION_COOKIE), Some("pst_1"));
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            HeaderValue::from_static("postern_session=\"pst_q\""),
        );
        assert_eq!(read(&h, SESSION_COOKIE), Some("pst_q"));
        h.insert(header::COOKIE, HeaderValue::from_static("postern_session="));
        assert_eq!(read(&h, SESSION_COOKIE), None);
    }
}
