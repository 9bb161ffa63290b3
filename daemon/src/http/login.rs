//! `POST /auth/login`, `GET /auth/session`, `DELETE /auth/session`.

use std::net::IpAddr;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{ConnectInfo, FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use base64::Engine as _;
use postern_directory::Credential;
use serde::Deserialize;
use zeroize::Zeroizing;

use super::{ApiError, AppState, ClientAddr};
use crate::auth::{Frontend, LoginError, Mechanism, PasswordAttempt};

/// The client's IP, when the connection has one (TCP).
pub struct ClientIp(pub Option<IpAddr>);

impl<S: Send + Sync> FromRequestParts<S> for ClientIp {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(ClientIp(
            parts
                .extensions
                .get::<ConnectInfo<ClientAddr>>()
                .and_then(|c| c.0 .0)
                .map(|a| a.ip()),
        ))
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LoginBody {
    username: String,
    password: Zeroizing<String>,
}

fn basic(headers: &HeaderMap) -> Option<Result<(String, Zeroizing<String>), ApiError>> {
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

pub async fn login(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let body = body.map_err(|e| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                format!("request body over {} bytes", super::MAX_BODY),
            )
        } else {
            ApiError::bad_request(format!("cannot read body: {e}"))
        }
    })?;
    let (username, password, mechanism) = match basic(&headers) {
        Some(creds) => {
            let (u, p) = creds?;
            (u, p, Mechanism::Basic)
        }
        None => {
            let parsed: LoginBody = serde_json::from_slice(&body)
                .map_err(|e| ApiError::bad_request(format!("malformed JSON body: {e}")))?;
            (parsed.username, parsed.password, Mechanism::Password)
        }
    };
    let attempt = PasswordAttempt {
        frontend: Frontend::Http,
        mechanism,
        username: &username,
        password: Credential::Password(password),
        service: "http",
        remote_ip: ip,
    };
    match state.engine.login(attempt).await {
        Ok(principal) => {
            let view = state.engine.issue_session(&principal).await.map_err(|e| {
                tracing::warn!(error = %e, "cannot store session");
                ApiError::unavailable()
            })?;
            Ok((StatusCode::OK, Json(view)).into_response())
        }
        Err(e) => Err(login_error(e)),
    }
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

fn bearer(headers: &HeaderMap) -> Result<&str, ApiError> {
    let value = headers
        .get(header::AUTHORIZATION)
        .ok_or_else(|| ApiError::unauthorized("missing Authorization: Bearer"))?;
    let text = value
        .to_str()
        .map_err(|_| ApiError::unauthorized("malformed Authorization header"))?;
    match text.split_once(' ') {
        Some((scheme, token))
            if scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty() =>
        {
            Ok(token.trim())
        }
        _ => Err(ApiError::unauthorized(
            "expected Authorization: Bearer <token>",
        )),
    }
}

pub async fn session(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let token = bearer(&headers)?;
    match state.engine.bearer(token, ip).await {
        Ok(Some(view)) => Ok((StatusCode::OK, Json(view)).into_response()),
        Ok(None) => Err(ApiError::unauthorized("unknown, expired or revoked token")),
        Err(e) => {
            tracing::warn!(error = %e, "session lookup failed");
            Err(ApiError::unavailable())
        }
    }
}

pub async fn logout(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let token = bearer(&headers)?;
    match state.engine.revoke(token).await {
        Ok(true) => Ok(StatusCode::NO_CONTENT.into_response()),
        Ok(false) => Err(ApiError::unauthorized("unknown, expired or revoked token")),
        Err(e) => {
            tracing::warn!(error = %e, "session revocation failed");
            Err(ApiError::unavailable())
        }
    }
}
