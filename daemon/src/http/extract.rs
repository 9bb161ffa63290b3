//! Extractors every handler shares, so that each area (auth, OAuth, OIDC, the management API)
//! reads the client, the caller and the body the same way and fails with the same answers.
//!
//! * [`ClientIp`]: the client's address under the `trusted-proxies` rule.
//! * [`Credentials`]: the token a request carries (`Authorization: Bearer`, else the session
//!   cookie), not yet checked; [`Authenticated`]: the session or API key it names.
//! * [`LimitedBody`], [`JsonBody`]: the body within [`super::MAX_BODY`], and parsed as JSON.

use std::net::IpAddr;

use axum::body::Bytes;
use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap};
use serde::de::DeserializeOwned;

use super::cookie::{self, SESSION_COOKIE};
use super::{ApiError, AppState, ClientAddr};
use crate::auth::SessionView;

/// The client's IP: the TCP peer, or the address a trusted proxy forwarded
/// ([`super::forwarded`]). None on a unix socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientIp(pub Option<IpAddr>);

impl FromRequestParts<AppState> for ClientIp {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        // Through the extractor rather than the extensions, so that tests can mock it.
        let peer = ConnectInfo::<ClientAddr>::from_request_parts(parts, state)
            .await
            .ok()
            .and_then(|c| c.0 .0)
            .map(|a| a.ip());
        let settings = state.settings();
        Ok(ClientIp(
            settings.trusted_proxies.client(peer, &parts.headers),
        ))
    }
}

/// The TCP peer itself, whatever the headers say (none on a unix socket).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Peer(pub Option<IpAddr>);

impl<S: Send + Sync> FromRequestParts<S> for Peer {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        Ok(Peer(
            ConnectInfo::<ClientAddr>::from_request_parts(parts, state)
                .await
                .ok()
                .and_then(|c| c.0 .0)
                .map(|a| a.ip()),
        ))
    }
}

/// Where a request's token came from: a cookie is cleared when its session ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Carrier {
    Bearer,
    Cookie,
}

/// The token of a request: `Authorization: Bearer`, or the session cookie when there is no
/// `Authorization` header at all (an explicit header always wins, even a broken one).
#[derive(Debug)]
pub struct Credentials {
    pub token: String,
    pub carrier: Carrier,
}

impl Credentials {
    pub fn from_headers(headers: &HeaderMap) -> Result<Credentials, ApiError> {
        let Some(value) = headers.get(header::AUTHORIZATION) else {
            return match cookie::read(headers, SESSION_COOKIE) {
                Some(token) => Ok(Credentials {
                    token: token.to_string(),
                    carrier: Carrier::Cookie,
                }),
                None => Err(ApiError::unauthorized(
                    "missing Authorization: Bearer or session cookie",
                )),
            };
        };
        let text = value
            .to_str()
            .map_err(|_| ApiError::unauthorized("malformed Authorization header"))?;
        match text.split_once(' ') {
            Some((scheme, token))
                if scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty() =>
            {
                Ok(Credentials {
                    token: token.trim().to_string(),
                    carrier: Carrier::Bearer,
                })
            }
            _ => Err(ApiError::unauthorized(
                "expected Authorization: Bearer <token>",
            )),
        }
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Credentials {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Credentials::from_headers(&parts.headers)
    }
}

/// The caller: a live session or a valid API key (401 otherwise, 503 when the store cannot
/// be asked).
#[derive(Debug)]
pub struct Authenticated {
    pub credentials: Credentials,
    pub session: SessionView,
}

impl FromRequestParts<AppState> for Authenticated {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let credentials = Credentials::from_headers(&parts.headers)?;
        let Ok(ClientIp(ip)) = ClientIp::from_request_parts(parts, state).await;
        match state.engine.bearer(&credentials.token, ip).await {
            Ok(Some(session)) => Ok(Authenticated {
                credentials,
                session,
            }),
            Ok(None) => Err(ApiError::unauthorized("unknown, expired or revoked token")),
            Err(e) => {
                tracing::warn!(error = %e, "session lookup failed");
                Err(ApiError::unavailable())
            }
        }
    }
}

/// The request body, at most [`super::MAX_BODY`] bytes (413 `payload_too_large` beyond).
pub struct LimitedBody(pub Bytes);

impl<S: Send + Sync> FromRequest<S> for LimitedBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        Ok(LimitedBody(Bytes::from_request(req, state).await?))
    }
}

/// A JSON body: 413 over [`super::MAX_BODY`], 415 when a `Content-Type` is given and is not
/// JSON, 400 `invalid_request` with serde's reason when it does not parse. A missing
/// `Content-Type` is accepted, as scripts often leave it out.
pub struct JsonBody<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        if let Some(ct) = req.headers().get(header::CONTENT_TYPE) {
            if !is_json(ct.to_str().unwrap_or_default()) {
                return Err(ApiError::unsupported_media_type(
                    "expected Content-Type: application/json",
                ));
            }
        }
        let LimitedBody(bytes) = LimitedBody::from_request(req, state).await?;
        parse_json(&bytes).map(JsonBody)
    }
}

/// Parses a body already read (for handlers that accept JSON or something else).
pub fn parse_json<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("malformed JSON body: {e}")))
}

/// `application/json` or a `+json` type (`application/merge-patch+json`), any parameters.
pub fn is_json(content_type: &str) -> bool {
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"))
}

#[cfg(test)]
#[path = "extract_tests.rs"]
mod tests;
