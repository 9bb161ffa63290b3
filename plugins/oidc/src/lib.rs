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
