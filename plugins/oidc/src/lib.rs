//! The `oidc` directory (SPEC §5): people log in at an external OpenID provider (the
//! authorization code flow with PKCE, [`OidcDirectory::begin`] and
//! [`OidcDirectory::callback`]), and the provider's access tokens are bearer credentials on
//! every front-end ([`postern_directory::Directory`]: JWT against the JWKS, RFC 7662
//! introspection, or userinfo).
//!
//! Construction never touches the network: discovery and keys are fetched on first use and
//! cached, so a provider that is down at start is a temporary failure at login, and the
//! directory recovers by itself when it returns.

mod claims;
mod config;
mod directory;
mod fetch;
pub mod flow;
mod jwt;
mod provider;

pub use config::{ClientAuthMethod, OidcConfig, OneOrMany, TokenValidation};
pub use directory::{Begin, CallbackError, Now, OidcDirectory};
pub use flow::CallbackParams;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod unverified_tests;

/// Every check a token's bytes meet before any key is fetched or signature checked, for the
/// fuzz target `jwt` (`fuzz/`): the unverified payload, each claim rule of an ID token and of
/// an access token, the identity drawn from the claims, and userinfo merged into them. Never
/// panics; the answer says whether the claims would pass.
#[doc(hidden)]
pub fn check_unverified(token: &str, now: i64) -> Result<(), String> {
    let mut claims = jwt::peek_payload(token).map_err(|e| e.to_string())?;
    let audiences = ["postern".to_string()];
    let algorithms = jwt::algorithms(&["RS256".into(), "ES256".into(), "EdDSA".into()]);
    let rules = jwt::Rules {
        issuer: "https://id.example.org",
        client_id: "postern",
        audiences: &audiences,
        algorithms: &algorithms,
        leeway: 60,
        now,
    };
    let id = jwt::check_claims(&claims, &jwt::Expect::IdToken { nonce: "n" }, &rules);
    let access = jwt::check_claims(&claims, &jwt::Expect::AccessToken, &rules);
    let info = serde_json::Value::Object(claims.clone());
    claims::merge_userinfo(&mut claims, info)?;
    claims::identity(&claims, "preferred_username", "groups")?;
    id.and(access).map_err(|e| e.to_string())
}
