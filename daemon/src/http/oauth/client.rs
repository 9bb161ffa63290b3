//! Client authentication at the token, introspection and revocation endpoints:
//! `client_secret_basic` (RFC 6749 §2.3.1: both parts form-urlencoded inside Basic) or
//! `client_secret_post`, never both; a public client names itself with `client_id` alone.
//! Every failure is the same 401 `invalid_client`.

use axum::http::{header, HeaderMap};
use base64::Engine as _;
use postern_internal::store::StoredOAuthClient;
use zeroize::Zeroizing;

use super::params::Params;
use crate::auth::access_token::ClientAuthError;
use crate::http::{AppState, OAuthError, OAuthErrorCode};

/// Who the request says it is, before checking.
struct Claimed {
    client_id: String,
    secret: Option<Zeroizing<String>>,
}

fn claimed(headers: &HeaderMap, p: &Params) -> Result<Claimed, OAuthError> {
    let basic = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|t| t.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("basic"))
        .map(|(_, rest)| rest.trim());
    if let Some(encoded) = basic {
        if p.get("client_secret").is_some() {
            return Err(OAuthError::invalid_request(
                "more than one client authentication method",
            ));
        }
        let bad = || OAuthError::invalid_client("malformed Authorization: Basic");
        let decoded = Zeroizing::new(
            base64::engine::general_purpose::STANDARD
                .decode(encoded)
                .map_err(|_| bad())?,
        );
        let text = std::str::from_utf8(&decoded).map_err(|_| bad())?;
        let (id, secret) = text.split_once(':').ok_or_else(bad)?;
        let id = urldecode(id).ok_or_else(bad)?;
        let secret = Zeroizing::new(urldecode(secret).ok_or_else(bad)?);
        if p.get("client_id").is_some_and(|body_id| body_id != id) {
            return Err(OAuthError::invalid_client("client_id differs from Basic"));
        }
        return Ok(Claimed {
            client_id: id,
            secret: Some(secret),
        });
    }
    let Some(id) = p.get("client_id") else {
        // The stricter reading of RFC 6749 §5.2: no authentication at all is invalid_client.
        return Err(OAuthError::invalid_client("client authentication missing"));
    };
    Ok(Claimed {
        client_id: id.to_string(),
        secret: p
            .get("client_secret")
            .map(|s| Zeroizing::new(s.to_string())),
    })
}

fn urldecode(s: &str) -> Option<String> {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(&format!("v={s}")).ok()?;
    pairs.into_iter().next().map(|(_, v)| v)
}

/// The authenticated client (a public one only when `allow_public`).
pub async fn authenticate(
    state: &AppState,
    headers: &HeaderMap,
    p: &Params,
    ip: Option<std::net::IpAddr>,
    allow_public: bool,
) -> Result<StoredOAuthClient, OAuthError> {
    let c = claimed(headers, p)?;
    let client = state
        .engine
        .authenticate_client(&c.client_id, c.secret.as_deref().map(String::as_str), ip)
        .await
        .map_err(|e| match e {
            ClientAuthError::Failed => OAuthError::invalid_client("client authentication failed"),
            ClientAuthError::Unavailable => OAuthError::unavailable(),
            ClientAuthError::Throttled(wait) => OAuthError::new(
                OAuthErrorCode::TemporarilyUnavailable,
                format!(
                    "too many failed client authentications; retry in {} s",
                    wait.as_secs().max(1)
                ),
            ),
        })?;
    if client.secret.is_none() && !allow_public {
        state.engine.count_refusal("oauth", "invalid_client");
        return Err(OAuthError::invalid_client(
            "this endpoint needs a confidential client",
        ));
    }
    Ok(client)
}
