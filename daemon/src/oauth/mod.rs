//! The OAuth 2.0 / OpenID Connect authorization server's core (SPEC §6, RFC 9700): signing
//! keys shared through the store (`keys`), JWTs (`jwt`: RFC 9068 access tokens, ID tokens),
//! and PKCE and redirect-URI rules (`rules`). No engine here: time comes in as a parameter,
//! and `auth` (token principals, client authentication) and `http::oauth` (the endpoints) build
//! on it.

pub mod jwt;
pub mod keys;
pub mod rules;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::RwLock;

use postern_internal::Store;

pub use jwt::{AccessClaims, IdClaims};
pub use keys::{KeyError, KeyRing};

/// Access tokens live this long (seconds): short, since a JWT is checked without a round trip
/// except for the revocation list.
pub const ACCESS_TOKEN_TTL: i64 = 600;
pub const ID_TOKEN_TTL: i64 = 600;
/// Authorization codes: single use, at most 60 s (RFC 9700 §4.5, observed at oidc-provider).
pub const CODE_TTL: i64 = 60;
/// Refresh tokens and the grant they belong to.
pub const REFRESH_TTL: i64 = 30 * 86_400;

/// The issuer and its keys.
pub struct Authority {
    issuer: RwLock<String>,
    pub keys: KeyRing,
    /// Access-token signatures checked since start: what the engine's cache of verified
    /// tokens saves is visible in tests.
    signature_checks: AtomicU64,
}

impl Authority {
    pub fn new(store: Store) -> Authority {
        Authority {
            issuer: RwLock::new(issuer_of("http://127.0.0.1:8480")),
            keys: KeyRing::new(store),
            signature_checks: AtomicU64::new(0),
        }
    }

    /// Access-token signatures checked since start.
    pub fn signature_checks(&self) -> u64 {
        self.signature_checks.load(Ordering::Relaxed)
    }

    /// The issuer: `[server] public-url` without a trailing slash, byte-identical in discovery
    /// and in every token.
    pub fn issuer(&self) -> String {
        self.issuer
            .read()
            .map(|i| i.clone())
            .unwrap_or_else(|p| p.into_inner().clone())
    }

    pub fn set_issuer(&self, public_url: &str) {
        let issuer = issuer_of(public_url);
        match self.issuer.write() {
            Ok(mut i) => *i = issuer,
            Err(p) => *p.into_inner() = issuer,
        }
    }
}

fn issuer_of(public_url: &str) -> String {
    public_url.trim_end_matches('/').to_string()
}

/// What a grant remembers (the store's `oauth_grants.body`): enough to evaluate the person
/// as they are now whenever a token of the grant is used.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GrantBody {
    /// The account's stable id (the tokens' `sub`): a new account of the same name is not
    /// the person who consented.
    pub sub: String,
    pub scope: String,
    /// The directory the person logged in through, and its groups for an external one.
    pub directory: String,
    #[serde(default)]
    pub groups: Vec<String>,
    pub auth_time: i64,
    /// The app password or API key the login used, whose scope the tokens keep.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credential: Option<String>,
}
