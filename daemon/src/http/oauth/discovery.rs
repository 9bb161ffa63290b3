//! Discovery metadata (RFC 8414, OpenID Connect Discovery) and the JWKS. The `issuer` is the
//! one every token carries, byte for byte.

use axum::extract::State;
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::Json;

use super::{unavailable, AUTHORIZE, INTROSPECT, JWKS, REVOKE, TOKEN, USERINFO};
use crate::http::{AppState, OAuthError};
use crate::oauth::rules::SCOPES;

pub async fn metadata(State(state): State<AppState>) -> Response {
    let issuer = state.engine.oauth().issuer();
    let url = |path: &str| format!("{issuer}{path}");
    let auth_methods = ["client_secret_basic", "client_secret_post", "none"];
    let body = serde_json::json!({
        "issuer": issuer,
        "authorization_endpoint": url(AUTHORIZE),
        "token_endpoint": url(TOKEN),
        "introspection_endpoint": url(INTROSPECT),
        "revocation_endpoint": url(REVOKE),
        "userinfo_endpoint": url(USERINFO),
        "jwks_uri": url(JWKS),
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": ["authorization_code", "refresh_token", "client_credentials"],
        "code_challenge_methods_supported": ["S256"],
        "authorization_response_iss_parameter_supported": true,
        "token_endpoint_auth_methods_supported": auth_methods,
        "introspection_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
        "revocation_endpoint_auth_methods_supported": auth_methods,
        "scopes_supported": SCOPES,
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["ES256"],
        "claims_supported": ["sub", "iss", "aud", "exp", "iat", "auth_time", "nonce",
            "preferred_username", "email", "groups", "roles"],
    });
    let mut r = Json(body).into_response();
    r.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=300"),
    );
    r
}

pub async fn jwks(State(state): State<AppState>) -> Result<Response, OAuthError> {
    let now = state.engine.clock().unix();
    let keys = &state.engine.oauth().keys;
    // A fresh store has no key yet: the first one is made before it is published.
    keys.with_signing_key(now, |_| ())
        .await
        .map_err(|e| unavailable(&e))?;
    let body = keys.jwks(now).await.map_err(|e| unavailable(&e))?;
    let mut r = Json(body).into_response();
    r.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=60"),
    );
    Ok(r)
}
