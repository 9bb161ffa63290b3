//! `GET /auth/verify`: forward authentication for reverse proxies (nginx `auth_request`,
//! Traefik `forwardAuth`, Caddy `forward_auth`).
//!
//! The proxy passes the browser's request headers (its cookie or `Authorization`); Postern
//! answers 200 with who the caller is in `Remote-*` headers, which the proxy copies to the
//! application; 403 when a `?permission=NAME` the proxy requires is missing; 401 otherwise.
//! When the proxy names the login page with `?rd=URL`, the 401 carries a `Location` to it with
//! the original URL as the page's own `rd` parameter, for the proxy to turn into a redirect.
//! The 401 itself is never a redirect: nginx's `auth_request` accepts only 2xx, 401 and 403,
//! and a browser reaching this endpoint directly follows nothing (no open redirect).

use axum::extract::FromRequestParts;
use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use axum::Router;

use super::extract::Authenticated;
use super::{ApiError, AppState};
use crate::authz::{is_permission, permission_hint};

/// Any method: a proxy may pass on the method of the request it guards (nginx's subrequest
/// is a GET, other proxies' configurations vary); nothing here changes state.
pub fn routes() -> Router<AppState> {
    Router::new().route("/auth/verify", any(verify))
}

/// What the proxy asks: permissions required (repeatable) and the login page (`rd`).
#[derive(Debug, Default, PartialEq, Eq)]
pub struct VerifyQuery {
    pub permissions: Vec<String>,
    pub login_page: Option<String>,
}

impl VerifyQuery {
    /// From the query's pairs; an unknown permission or a login page that is not an absolute
    /// http(s) URL is the proxy configuration's mistake (400), not the user's.
    pub fn from_pairs(pairs: Vec<(String, String)>) -> Result<VerifyQuery, ApiError> {
        let mut q = VerifyQuery::default();
        for (key, value) in pairs {
            match key.as_str() {
                "permission" => {
                    if !is_permission(&value) {
                        return Err(ApiError::bad_request(format!(
                            "permission: unknown permission {value:?}{}",
                            permission_hint(&value)
                        )));
                    }
                    q.permissions.push(value);
                }
                "rd" => {
                    let lower = value.to_ascii_lowercase();
                    if !(lower.starts_with("https://") || lower.starts_with("http://"))
                        || value.chars().any(|c| c.is_control() || c == ' ')
                    {
                        return Err(ApiError::bad_request(
                            "rd: the login page must be an absolute http(s) URL",
                        ));
                    }
                    q.login_page = Some(value);
                }
                other => {
                    return Err(ApiError::bad_request(format!(
                        "unknown query parameter {other:?} (permission, rd)"
                    )))
                }
            }
        }
        Ok(q)
    }
}

async fn verify(
    State(state): State<AppState>,
    Query(pairs): Query<Vec<(String, String)>>,
    request: axum::extract::Request,
) -> Response {
    let (mut parts, _) = request.into_parts();
    let query = match VerifyQuery::from_pairs(pairs) {
        Ok(q) => q,
        Err(e) => {
            state.engine.count_verify("bad_request");
            return e.into_response();
        }
    };
    let auth = match Authenticated::from_request_parts(&mut parts, &state).await {
        Ok(a) => a,
        Err(e) if e.status == StatusCode::UNAUTHORIZED => {
            state.engine.count_verify("unauthenticated");
            return unauthenticated(e, &query, &parts.headers);
        }
        Err(e) => {
            state.engine.count_verify("unavailable");
            return e.into_response();
        }
    };
    let view = &auth.session;
    if let Some(missing) = query
        .permissions
        .iter()
        .find(|p| !view.permissions.iter().any(|have| have == *p))
    {
        state.engine.count_verify("forbidden");
        tracing::info!(user = %view.principal.name, permission = %missing, "forward-auth: permission missing");
        return ApiError::new(
            StatusCode::FORBIDDEN,
            "insufficient_permission",
            format!("the account lacks permission {missing:?}"),
        )
        .into_response();
    }
    state.engine.count_verify("allowed");
    let mut response = StatusCode::OK.into_response();
    let h = response.headers_mut();
    let email = view.principal.emails.first().map(String::as_str);
    put(h, "remote-user", &view.principal.name);
    put(h, "remote-email", email.unwrap_or_default());
    put(h, "remote-groups", &view.groups.join(","));
    put(h, "remote-roles", &view.roles.join(","));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// A `Remote-*` header. Names and groups come from the store or a directory, so a value that
/// cannot be a header (a control character) is left out rather than failing the request.
fn put(h: &mut HeaderMap, name: &'static str, value: &str) {
    if let Ok(v) = HeaderValue::from_bytes(value.as_bytes()) {
        h.insert(HeaderName::from_static(name), v);
    }
}

fn unauthenticated(e: ApiError, query: &VerifyQuery, headers: &HeaderMap) -> Response {
    let mut response = e.into_response();
    if let Some(page) = &query.login_page {
        if let Ok(v) =
            HeaderValue::from_str(&login_location(page, original_url(headers).as_deref()))
        {
            response.headers_mut().insert(header::LOCATION, v);
        }
    }
    response
}

/// The login page, with the URL the browser asked for as its `rd` parameter (when known).
pub fn login_location(page: &str, original: Option<&str>) -> String {
    match original {
        Some(url) => {
            let sep = if page.contains('?') { '&' } else { '?' };
            format!("{page}{sep}rd={}", percent_encode(url))
        }
        None => page.to_string(),
    }
}

/// The URL the browser asked the proxy for: `X-Original-URL` (nginx, as the guide sets it),
/// else `X-Forwarded-Proto` + `X-Forwarded-Host` + `X-Forwarded-Uri` (Traefik, Caddy).
pub fn original_url(headers: &HeaderMap) -> Option<String> {
    let get = |n: &str| headers.get(n).and_then(|v| v.to_str().ok());
    if let Some(url) = get("x-original-url") {
        return Some(url.to_string());
    }
    let proto = get("x-forwarded-proto").unwrap_or("https");
    let host = get("x-forwarded-host")?;
    let uri = get("x-forwarded-uri").unwrap_or("/");
    Some(format!("{proto}://{host}{uri}"))
}

/// RFC 3986 percent-encoding of everything but the unreserved characters.
fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(p: &[(&str, &str)]) -> Vec<(String, String)> {
        p.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn query_takes_repeated_permissions_and_refuses_unknown_ones() {
        let q = VerifyQuery::from_pairs(pairs(&[
            ("permission", "email-send"),
            ("permission", "imap-authenticate"),
        ]))
        .unwrap();
        assert_eq!(q.permissions, ["email-send", "imap-authenticate"]);
        let e = VerifyQuery::from_pairs(pairs(&[("permission", "email-sned")])).unwrap_err();
        assert_eq!(e.status, StatusCode::BAD_REQUEST);
        assert!(e.message.contains("email-sned"), "{}", e.message);
        assert!(VerifyQuery::from_pairs(pairs(&[("other", "x")])).is_err());
    }

    #[test]
    fn login_page_must_be_an_absolute_http_url() {
        for bad in [
            "/login",
            "javascript:alert(1)",
            "https://a b",
            "https://a\r\nX: y",
        ] {
            assert!(
                VerifyQuery::from_pairs(pairs(&[("rd", bad)])).is_err(),
                "{bad:?} accepted"
            );
        }
        let q = VerifyQuery::from_pairs(pairs(&[("rd", "https://auth.example.org/login")]));
        assert_eq!(
            q.unwrap().login_page.as_deref(),
            Some("https://auth.example.org/login")
        );
    }

    #[test]
    fn location_carries_the_original_url_encoded() {
        let mut h = HeaderMap::new();
        assert_eq!(original_url(&h), None);
        h.insert(
            "x-forwarded-host",
            HeaderValue::from_static("app.example.org"),
        );
        h.insert("x-forwarded-uri", HeaderValue::from_static("/a?b=c&d"));
        let url = original_url(&h).unwrap();
        assert_eq!(url, "https://app.example.org/a?b=c&d");
        assert_eq!(
            login_location("https://auth.example.org/login", Some(&url)),
            "https://auth.example.org/login?rd=https%3A%2F%2Fapp.example.org%2Fa%3Fb%3Dc%26d"
        );
        assert_eq!(
            login_location("https://auth.example.org/login?x=1", Some("http://a/")),
            "https://auth.example.org/login?x=1&rd=http%3A%2F%2Fa%2F"
        );
        h.insert(
            "x-original-url",
            HeaderValue::from_static("http://n.example/p"),
        );
        assert_eq!(original_url(&h).as_deref(), Some("http://n.example/p"));
    }
}
