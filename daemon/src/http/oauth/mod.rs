//! The OAuth 2.0 / OpenID Connect authorization server's endpoints (SPEC §6, RFC 9700):
//! discovery (RFC 8414 and OIDC), JWKS, token, introspection (RFC 7662), revocation
//! (RFC 7009), userinfo, the authorization endpoint with its login page, and the `/account`
//! self-service page. Errors are
//! RFC 6749 bodies ([`OAuthError`]), never cached.

mod account;
mod authorize;
mod client;
mod discovery;
mod introspect;
mod page;
mod params;
mod token;
mod userinfo;

use axum::routing::{get, post};
use axum::Router;

use super::{AppState, OAuthError};

pub const AUTHORIZE: &str = "/oauth/authorize";
pub const TOKEN: &str = "/oauth/token";
pub const INTROSPECT: &str = "/oauth/introspect";
pub const REVOKE: &str = "/oauth/revoke";
pub const USERINFO: &str = "/oauth/userinfo";
pub const JWKS: &str = "/oauth/jwks";

pub fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/.well-known/openid-configuration",
            get(discovery::metadata),
        )
        .route(
            "/.well-known/oauth-authorization-server",
            get(discovery::metadata),
        )
        .route(JWKS, get(discovery::jwks))
        .route(TOKEN, post(token::token))
        .route(INTROSPECT, post(introspect::introspect))
        .route(REVOKE, post(introspect::revoke))
        .route(USERINFO, get(userinfo::userinfo).post(userinfo::userinfo))
        .route(AUTHORIZE, get(authorize::authorize).post(authorize::submit))
        .route("/account", get(account::show).post(account::submit))
}

/// A store or key failure: the client may retry.
fn unavailable(e: &dyn std::fmt::Display) -> OAuthError {
    tracing::warn!(error = %e, "OAuth request could not be served");
    OAuthError::unavailable()
}
