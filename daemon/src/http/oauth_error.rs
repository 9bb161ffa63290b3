//! OAuth 2.0 error answers (RFC 6749 §5.2 and §4.1.2.1, RFC 7009 §2.2.1):
//! `{"error": CODE, "error_description": TEXT}`, never cached. The token, introspection and
//! revocation endpoints answer with these instead of [`super::ApiError`] (SPEC §6).

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;

/// The error codes of the OAuth registry that this server answers with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OAuthErrorCode {
    InvalidRequest,
    InvalidClient,
    InvalidGrant,
    UnauthorizedClient,
    UnsupportedGrantType,
    InvalidScope,
    AccessDenied,
    UnsupportedResponseType,
    /// RFC 7009: revocation of a token type the server does not revoke.
    UnsupportedTokenType,
    ServerError,
    TemporarilyUnavailable,
}

impl OAuthErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            OAuthErrorCode::InvalidRequest => "invalid_request",
            OAuthErrorCode::InvalidClient => "invalid_client",
            OAuthErrorCode::InvalidGrant => "invalid_grant",
            OAuthErrorCode::UnauthorizedClient => "unauthorized_client",
            OAuthErrorCode::UnsupportedGrantType => "unsupported_grant_type",
            OAuthErrorCode::InvalidScope => "invalid_scope",
            OAuthErrorCode::AccessDenied => "access_denied",
            OAuthErrorCode::UnsupportedResponseType => "unsupported_response_type",
            OAuthErrorCode::UnsupportedTokenType => "unsupported_token_type",
            OAuthErrorCode::ServerError => "server_error",
            OAuthErrorCode::TemporarilyUnavailable => "temporarily_unavailable",
        }
    }

    /// RFC 6749 §5.2: 400, except a failed client authentication (401). The last two are
    /// what their names say, so that clients and monitoring can tell an outage apart.
    pub fn status(self) -> StatusCode {
        match self {
            OAuthErrorCode::InvalidClient => StatusCode::UNAUTHORIZED,
            OAuthErrorCode::ServerError => StatusCode::INTERNAL_SERVER_ERROR,
            OAuthErrorCode::TemporarilyUnavailable => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::BAD_REQUEST,
        }
    }
}

#[derive(Debug, thiserror::Error)]
#[error("{}: {}", code.as_str(), description.as_deref().unwrap_or(""))]
pub struct OAuthError {
    pub code: OAuthErrorCode,
    /// Human-readable, for the client's developer; never a secret.
    pub description: Option<String>,
}

impl OAuthError {
    pub fn new(code: OAuthErrorCode, description: impl Into<String>) -> OAuthError {
        OAuthError {
            code,
            description: Some(description.into()),
        }
    }

    pub fn invalid_request(description: impl Into<String>) -> OAuthError {
        OAuthError::new(OAuthErrorCode::InvalidRequest, description)
    }

    pub fn invalid_client(description: impl Into<String>) -> OAuthError {
        OAuthError::new(OAuthErrorCode::InvalidClient, description)
    }

    pub fn invalid_grant(description: impl Into<String>) -> OAuthError {
        OAuthError::new(OAuthErrorCode::InvalidGrant, description)
    }

    pub fn unavailable() -> OAuthError {
        OAuthError::new(
            OAuthErrorCode::TemporarilyUnavailable,
            "a directory or the store cannot be reached; try again later",
        )
    }
}

impl IntoResponse for OAuthError {
    fn into_response(self) -> Response {
        let mut body = serde_json::json!({"error": self.code.as_str()});
        if let Some(d) = self.description {
            body["error_description"] = serde_json::Value::String(d);
        }
        let mut response = (self.code.status(), Json(body)).into_response();
        let h = response.headers_mut();
        // §5.1/§5.2: token answers must not be cached by the client or anything between.
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        h.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
        if self.code == OAuthErrorCode::InvalidClient {
            // §5.2: a 401 names the scheme the client may authenticate with.
            h.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"postern\""),
            );
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use http_body_util::BodyExt;

    use super::*;

    async fn parts(e: OAuthError) -> (StatusCode, axum::http::HeaderMap, serde_json::Value) {
        let r = e.into_response();
        let status = r.status();
        let headers = r.headers().clone();
        let body = r.into_body().collect().await.unwrap().to_bytes();
        (status, headers, serde_json::from_slice(&body).unwrap())
    }

    #[tokio::test]
    async fn invalid_client_is_401_with_a_basic_challenge() {
        let (status, h, body) = parts(OAuthError::invalid_client("unknown client")).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert_eq!(
            body,
            serde_json::json!({"error": "invalid_client", "error_description": "unknown client"})
        );
        assert!(h[header::WWW_AUTHENTICATE]
            .to_str()
            .unwrap()
            .starts_with("Basic"));
        assert_eq!(h[header::CACHE_CONTROL], "no-store");
        assert_eq!(h[header::PRAGMA], "no-cache");
        assert_eq!(h[header::CONTENT_TYPE], "application/json");
    }

    #[tokio::test]
    async fn other_errors_are_400_without_a_challenge() {
        for code in [
            OAuthErrorCode::InvalidRequest,
            OAuthErrorCode::InvalidGrant,
            OAuthErrorCode::UnauthorizedClient,
            OAuthErrorCode::UnsupportedGrantType,
            OAuthErrorCode::InvalidScope,
            OAuthErrorCode::AccessDenied,
            OAuthErrorCode::UnsupportedResponseType,
            OAuthErrorCode::UnsupportedTokenType,
        ] {
            let (status, h, body) = parts(OAuthError::new(code, "why")).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{code:?}");
            assert_eq!(body["error"], code.as_str());
            assert_eq!(body["error_description"], "why");
            assert!(h.get(header::WWW_AUTHENTICATE).is_none(), "{code:?}");
            assert_eq!(h[header::CACHE_CONTROL], "no-store");
        }
    }

    #[tokio::test]
    async fn outages_and_bugs_are_not_client_errors() {
        let (status, h, body) = parts(OAuthError::unavailable()).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(body["error"], "temporarily_unavailable");
        assert_eq!(h[header::CACHE_CONTROL], "no-store");
        let e = OAuthError {
            code: OAuthErrorCode::ServerError,
            description: None,
        };
        assert_eq!(e.to_string(), "server_error: ");
        let (status, _, body) = parts(e).await;
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
        // No description: the member is absent, not null.
        assert_eq!(body, serde_json::json!({"error": "server_error"}));
    }

    #[test]
    fn codes_are_the_registry_names() {
        assert_eq!(OAuthErrorCode::InvalidGrant.as_str(), "invalid_grant");
        assert_eq!(
            OAuthError::invalid_grant("expired code").to_string(),
            "invalid_grant: expired code"
        );
        assert_eq!(
            OAuthError::invalid_request("x").code,
            OAuthErrorCode::InvalidRequest
        );
    }
}
