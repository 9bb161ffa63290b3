//! The `/auth/oidc` area: the login flow of each `oidc` directory of the chain.
//!
//! * `GET /auth/oidc/{directory}/login?return=/path`: 302 to the provider, the transaction in
//!   a signed, HttpOnly, SameSite=Lax cookie scoped to the directory's paths.
//! * `GET /auth/oidc/{directory}/callback`: the provider's answer, checked by the plugin; the
//!   identity is recorded through `Engine::login_proven`, a session issued with Postern's
//!   session cookie, and a 303 to the `return` path (or the session view as JSON without one).
//!   Every failure is a short HTML page with the right status, never a 500.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use postern_oidc::{CallbackError, CallbackParams, OidcDirectory};
use serde::Deserialize;

use super::extract::ClientIp;
use super::{ApiError, AppState};
use crate::auth::{Frontend, LoginError, Mechanism, ProvenLogin};
use crate::authz::Service;
use crate::config::{Config, DirectoryConfig};

/// The transaction cookie: a name of its own, never the provider's (`_session`, …), whose
/// cookies share this host's namespace on any port.
pub const TRANSACTION_COOKIE: &str = "postern_oidc_tx";

pub type OidcDirectories = BTreeMap<String, Arc<OidcDirectory>>;

/// The `oidc` directories named in `[authentication] directories`. Built without the
/// network; one the validation let through but that cannot be built is left out (and logged).
pub fn directories(c: &Config) -> OidcDirectories {
    let mut out = BTreeMap::new();
    for name in &c.authentication.directories {
        let Some(DirectoryConfig::Oidc(o)) = c.directory.get(name) else {
            continue;
        };
        match OidcDirectory::new(
            name,
            o.clone(),
            &c.server.public_url,
            crate::runtime::oidc_clock(),
        ) {
            Ok(d) => {
                out.insert(name.clone(), Arc::new(d));
            }
            Err(e) => tracing::error!(directory = %name, error = %e, "OIDC login disabled"),
        }
    }
    out
}

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/auth/oidc/{directory}/login", get(login))
        .route("/auth/oidc/{directory}/callback", get(callback))
}

#[derive(Deserialize)]
struct LoginQuery {
    #[serde(rename = "return")]
    ret: Option<String>,
}

fn directory(state: &AppState, name: &str) -> Result<Arc<OidcDirectory>, ApiError> {
    state
        .settings()
        .oidc
        .get(name)
        .cloned()
        .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such OIDC directory"))
}

fn tx_cookie(state: &AppState, name: &str, value: &str, max_age: i64) -> Option<HeaderValue> {
    let secure = if state.settings().cookie.secure {
        "; Secure"
    } else {
        ""
    };
    HeaderValue::from_str(&format!(
        "{TRANSACTION_COOKIE}={value}; Max-Age={max_age}; Path=/auth/oidc/{name}/; HttpOnly; SameSite=Lax{secure}"
    ))
    .ok()
}

async fn login(
    State(state): State<AppState>,
    Path(name): Path<String>,
    query: Result<Query<LoginQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let d = directory(&state, &name)?;
    let Query(query) = query.map_err(|_| ApiError::bad_request("malformed query"))?;
    if let Some(ret) = &query.ret {
        if !postern_oidc::flow::local_path(ret) {
            state.engine.count_refusal("http", "oidc_return_not_local");
            return Err(ApiError::bad_request(
                "return must be a local path (/…), not another site",
            ));
        }
    }
    let begin = d.begin(query.ret).await.map_err(|e| {
        tracing::warn!(directory = %name, error = %e, "OIDC login cannot start");
        ApiError::unavailable()
    })?;
    let mut response = StatusCode::FOUND.into_response();
    let h = response.headers_mut();
    if let Ok(location) = HeaderValue::from_str(&begin.authorize_url) {
        h.insert(header::LOCATION, location);
    }
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if let Some(c) = tx_cookie(
        &state,
        &name,
        &begin.cookie,
        postern_oidc::flow::TRANSACTION_TTL,
    ) {
        h.append(header::SET_COOKIE, c);
    }
    Ok(response)
}

async fn callback(
    State(state): State<AppState>,
    Path(name): Path<String>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    query: Result<Query<CallbackParams>, QueryRejection>,
) -> Response {
    let Ok(d) = directory(&state, &name) else {
        return page(StatusCode::NOT_FOUND, "No such login.");
    };
    // The transaction ends here whatever the outcome.
    let clear = tx_cookie(&state, &name, "", 0);
    let mut response = finish(&state, &d, &name, ip, &headers, query).await;
    if let Some(c) = clear {
        response.headers_mut().append(header::SET_COOKIE, c);
    }
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

async fn finish(
    state: &AppState,
    d: &OidcDirectory,
    name: &str,
    ip: Option<std::net::IpAddr>,
    headers: &HeaderMap,
    query: Result<Query<CallbackParams>, QueryRejection>,
) -> Response {
    let Ok(Query(params)) = query else {
        return refused(state, StatusCode::BAD_REQUEST, "malformed callback");
    };
    let cookie = super::cookie::read(headers, TRANSACTION_COOKIE);
    let (identity, ret) = match d.callback(&params, cookie).await {
        Ok(found) => found,
        Err(e) => {
            tracing::info!(directory = %name, error = %e, "OIDC callback refused");
            let (status, text) = match &e {
                CallbackError::BadRequest(m) => (StatusCode::BAD_REQUEST, m.clone()),
                CallbackError::Denied(code) => (
                    StatusCode::FORBIDDEN,
                    format!("The provider did not log you in ({code})."),
                ),
                CallbackError::Rejected(_) => (
                    StatusCode::UNAUTHORIZED,
                    "The provider's answer could not be verified.".into(),
                ),
                CallbackError::Unavailable(_) => (
                    StatusCode::SERVICE_UNAVAILABLE,
                    "The identity provider cannot be reached; try again later.".into(),
                ),
            };
            return refused(state, status, &text);
        }
    };
    let principal = match state
        .engine
        .login_proven(ProvenLogin {
            frontend: Frontend::Http,
            mechanism: Mechanism::Oidc,
            directory: name,
            identity: &identity,
            service: Service::HTTP,
            remote_ip: ip,
        })
        .await
    {
        Ok(p) => p,
        Err(e) => {
            let status = match e {
                LoginError::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
                LoginError::Misconfigured => StatusCode::INTERNAL_SERVER_ERROR,
                _ => StatusCode::FORBIDDEN,
            };
            return page(status, "You may not log in here.");
        }
    };
    let view = match state.engine.issue_session(&principal).await {
        Ok(v) => v,
        Err(e) => {
            tracing::warn!(error = %e, "cannot store session");
            return page(
                StatusCode::SERVICE_UNAVAILABLE,
                "Sessions cannot be stored right now; try again later.",
            );
        }
    };
    let cookie = view.token.as_deref().and_then(|token| {
        let max_age = super::auth::seconds_left(state, &view);
        state.settings().cookie.session(token, max_age)
    });
    let mut response = match ret.as_deref().map(|r| HeaderValue::from_str(&location(r))) {
        Some(Ok(location)) => {
            let mut r = StatusCode::SEE_OTHER.into_response();
            r.headers_mut().insert(header::LOCATION, location);
            r
        }
        _ => (StatusCode::OK, Json(view)).into_response(),
    };
    if let Some(c) = cookie {
        response.headers_mut().append(header::SET_COOKIE, c);
    }
    response
}

/// A local path as a `Location` value: non-ASCII characters percent-encoded (UTF-8), the
/// rest as given (it was checked to be a local path without control characters).
fn location(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    for c in path.chars() {
        if c.is_ascii() {
            out.push(c);
        } else {
            let mut buf = [0u8; 4];
            for b in c.encode_utf8(&mut buf).bytes() {
                out.push_str(&format!("%{b:02X}"));
            }
        }
    }
    out
}

/// A refused callback: counted (`postern_refused_total{frontend="http"}`) and answered.
fn refused(state: &AppState, status: StatusCode, text: &str) -> Response {
    state.engine.count_refusal("http", "oidc_callback");
    page(status, text)
}

/// A minimal page; `text` is escaped (a provider's words never become markup).
fn page(status: StatusCode, text: &str) -> Response {
    let escaped: String = text
        .chars()
        .map(|c| match c {
            '<' => "&lt;".to_string(),
            '>' => "&gt;".to_string(),
            '&' => "&amp;".to_string(),
            '"' => "&quot;".to_string(),
            '\'' => "&#39;".to_string(),
            c => c.to_string(),
        })
        .collect();
    let body = format!(
        "<!doctype html><meta charset=utf-8><title>Login</title><h1>Login failed</h1><p>{escaped}</p>\n"
    );
    let mut r = (status, body).into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    r
}

#[cfg(test)]
mod tests {
    #[test]
    fn return_paths_become_ascii_locations() {
        assert_eq!(super::location("/app?x=1"), "/app?x=1");
        assert_eq!(super::location("/über"), "/%C3%BCber");
    }
}
