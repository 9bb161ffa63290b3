//! The `/auth` area: `POST /auth/login`, `GET /auth/session`, `DELETE /auth/session`, and
//! nginx's `GET /auth/nginx` (in [`super::nginx`]).

use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine as _;
use postern_directory::Credential;
use serde::Deserialize;
use zeroize::Zeroizing;

use super::extract::{
    is_json, parse_json, Authenticated, Carrier, ClientIp, Credentials, LimitedBody,
};
use super::{nginx, ApiError, AppState};
use crate::auth::bearer::BearerAttempt;
use crate::auth::{Frontend, LoginError, Mechanism, PasswordAttempt, SessionView};
use crate::authz::Service;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/auth/login", post(login))
        .route("/auth/session", get(session).delete(logout))
        .route("/auth/nginx", get(nginx::auth))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LoginBody {
    username: String,
    password: Zeroizing<String>,
}

/// A login's JSON body: `{"username", "password"}` and nothing else. Public for the fuzzer.
pub fn login_body(body: &[u8]) -> Result<(String, Zeroizing<String>), ApiError> {
    let parsed: LoginBody = parse_json(body)?;
    Ok((parsed.username, parsed.password))
}

/// `Authorization: Basic` as user and password, when the request has one. Public for the
/// fuzzer.
pub fn basic(headers: &HeaderMap) -> Option<Result<(String, Zeroizing<String>), ApiError>> {
    let value = headers.get(header::AUTHORIZATION)?;
    let text = value.to_str().ok()?;
    let (scheme, rest) = text.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = match base64::engine::general_purpose::STANDARD.decode(rest.trim()) {
        Ok(d) => Zeroizing::new(d),
        Err(_) => {
            return Some(Err(ApiError::bad_request(
                "Authorization: Basic is not valid base64",
            )))
        }
    };
    let Ok(text) = std::str::from_utf8(&decoded) else {
        return Some(Err(ApiError::bad_request(
            "Authorization: Basic is not UTF-8",
        )));
    };
    let Some((user, pass)) = text.split_once(':') else {
        return Some(Err(ApiError::bad_request(
            "Authorization: Basic lacks user:password",
        )));
    };
    Some(Ok((user.to_string(), Zeroizing::new(pass.to_string()))))
}

/// Logs in with a JSON body or `Authorization: Basic`. A body is read only as
/// `Content-Type: application/json`: a form type or none is 415, so that a cross-site HTML
/// form (which can send neither JSON's type nor an `Authorization` header) cannot log a
/// browser in or burn an account's failed-login budget.
pub async fn login(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    LimitedBody(body): LimitedBody,
) -> Result<Response, ApiError> {
    if let Some(token) = provider_bearer(&headers) {
        let principal = state
            .engine
            .login_provider_token(BearerAttempt {
                frontend: Frontend::Http,
                mechanism: Mechanism::Oidc,
                token: &token,
                claimed_user: None,
                service: Service::HTTP,
                remote_ip: ip,
            })
            .await
            .map_err(login_error)?;
        return session_response(&state, &principal).await;
    }
    let (username, password, mechanism) = match basic(&headers) {
        Some(creds) => {
            let (u, p) = creds?;
            (u, p, Mechanism::Basic)
        }
        None => {
            let ct = headers
                .get(header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default();
            if !is_json(ct) {
                state.engine.count_refusal("http", "unsupported_media_type");
                tracing::info!(content_type = ct, "login refused: not application/json");
                return Err(ApiError::unsupported_media_type(
                    "expected Content-Type: application/json (or Authorization: Basic)",
                ));
            }
            let (username, password) = login_body(&body)?;
            (username, password, Mechanism::Password)
        }
    };
    let attempt = PasswordAttempt {
        frontend: Frontend::Http,
        mechanism,
        username: &username,
        password: Credential::Password(password),
        service: Service::HTTP,
        remote_ip: ip,
    };
    match state.engine.login(attempt).await {
        Ok(principal) => session_response(&state, &principal).await,
        Err(e) => Err(login_error(e)),
    }
}

/// `Authorization: Bearer` on `POST /auth/login`: an external provider's access token to
/// exchange for a Postern session.
fn provider_bearer(headers: &HeaderMap) -> Option<Zeroizing<String>> {
    let text = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = text.split_once(' ')?;
    (scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty())
        .then(|| Zeroizing::new(token.trim().to_string()))
}

/// A new session for a principal that just logged in: the view, and the session cookie.
async fn session_response(
    state: &AppState,
    principal: &crate::auth::Principal,
) -> Result<Response, ApiError> {
    let view = state.engine.issue_session(principal).await.map_err(|e| {
        tracing::warn!(error = %e, "cannot store session");
        ApiError::unavailable()
    })?;
    let cookie = view.token.as_deref().and_then(|token| {
        let max_age = seconds_left(state, &view);
        state.settings().cookie.session(token, max_age)
    });
    let mut response = (StatusCode::OK, Json(view)).into_response();
    if let Some(cookie) = cookie {
        response.headers_mut().append(header::SET_COOKIE, cookie);
    }
    Ok(response)
}

/// The session's remaining lifetime, for the cookie's `Max-Age`.
pub(super) fn seconds_left(state: &AppState, view: &SessionView) -> Option<u64> {
    let expires = crate::auth::clock::parse_rfc3339(view.expires_at.as_deref()?).ok()?;
    u64::try_from(expires - state.engine.clock().unix()).ok()
}

fn login_error(e: LoginError) -> ApiError {
    match e {
        LoginError::InvalidRequest(m) => ApiError::bad_request(m),
        LoginError::InvalidCredentials => ApiError::new(
            StatusCode::UNAUTHORIZED,
            "invalid_credentials",
            "unknown user or wrong password",
        ),
        LoginError::RateLimited(wait) => ApiError {
            retry_after: Some(wait.as_secs().max(1)),
            ..ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "too_many_attempts",
                "too many failed attempts; wait and retry",
            )
        },
        LoginError::Unavailable => ApiError::unavailable(),
        LoginError::Misconfigured => ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "server_error",
            "the account's configuration is invalid; an administrator has been told in the log",
        ),
    }
}

/// The session (or API key) of the bearer token or session cookie.
pub async fn session(auth: Authenticated) -> Response {
    (StatusCode::OK, Json(auth.session)).into_response()
}

/// Revokes the session; a session cookie is cleared with it.
pub async fn logout(
    State(state): State<AppState>,
    credentials: Credentials,
) -> Result<Response, ApiError> {
    match state.engine.revoke(&credentials.token).await {
        Ok(true) => {
            let mut response = StatusCode::NO_CONTENT.into_response();
            if credentials.carrier == Carrier::Cookie {
                if let Some(clear) = state.settings().cookie.clear() {
                    response.headers_mut().append(header::SET_COOKIE, clear);
                }
            }
            Ok(response)
        }
        Ok(false) => Err(ApiError::unauthorized("unknown, expired or revoked token")),
        Err(e) => {
            tracing::warn!(error = %e, "session revocation failed");
            Err(ApiError::unavailable())
        }
    }
}
