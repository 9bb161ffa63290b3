//! `[directory.NAME]` with `type = "oidc"` (SPEC §5). Parsed by the daemon's configuration
//! (which re-exports these types) and validated here, without the network; `check-config
//! --live` then runs discovery ([`crate::OidcDirectory::check_live`]).

use std::path::PathBuf;
use std::time::Duration;

use postern_directory::{read_secret_file, ConfigProblem};
use serde::{Deserialize, Serialize};

/// A key that takes one string or a list (`audience = "api"` or `audience = ["a", "b"]`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(untagged)]
pub enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl OneOrMany {
    pub fn as_vec(&self) -> Vec<String> {
        match self {
            OneOrMany::One(s) => vec![s.clone()],
            OneOrMany::Many(v) => v.clone(),
        }
    }
}

/// How provider access tokens presented as bearer credentials are checked.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum TokenValidation {
    /// JWT access tokens (RFC 9068) against the provider's JWKS: no request per login.
    #[default]
    Jwt,
    /// Opaque tokens through RFC 7662 introspection, with the client's credentials.
    Introspection,
    /// Opaque tokens through the userinfo endpoint (a 401 there is a rejection).
    Userinfo,
}

/// How the client authenticates at the token and introspection endpoints.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ClientAuthMethod {
    #[default]
    ClientSecretBasic,
    ClientSecretPost,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct OidcConfig {
    /// Compared byte for byte with discovery's `issuer` and every token's `iss`.
    pub issuer: String,
    pub client_id: String,
    #[serde(default)]
    pub client_secret: Option<String>,
    #[serde(default)]
    pub client_secret_file: Option<PathBuf>,
    #[serde(default = "default_scopes")]
    pub scopes: Vec<String>,
    /// Accepted `aud` values of access tokens; the client id when absent.
    #[serde(default)]
    pub audience: Option<OneOrMany>,
    #[serde(default = "default_username_claim")]
    pub username_claim: String,
    #[serde(default = "default_groups_claim")]
    pub groups_claim: String,
    /// Joined to `[server] public-url`; `/auth/oidc/{directory}/callback` when absent.
    #[serde(default)]
    pub redirect_path: Option<String>,
    /// PEM roots for the provider's TLS instead of the system's.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    #[serde(default = "default_timeout", with = "humantime_serde")]
    pub timeout: Duration,
    /// Signature algorithms accepted for ID tokens and JWT access tokens.
    #[serde(default = "default_algorithms")]
    pub id_token_algorithms: Vec<String>,
    #[serde(default)]
    pub token_validation: TokenValidation,
    #[serde(default)]
    pub token_endpoint_auth: ClientAuthMethod,
    /// Clock skew tolerated on `exp`, `nbf` and `iat`.
    #[serde(default = "default_leeway", with = "humantime_serde")]
    pub leeway: Duration,
    /// How long discovery and the JWKS are kept before they are fetched again.
    #[serde(default = "default_cache_ttl", with = "humantime_serde")]
    pub cache_ttl: Duration,
    /// The shortest time between two JWKS fetches caused by unknown key ids, so that a
    /// flood of made-up `kid`s never becomes a flood of requests to the provider.
    #[serde(default = "default_refetch", with = "humantime_serde")]
    pub jwks_refetch_interval: Duration,
}

fn default_scopes() -> Vec<String> {
    ["openid", "profile", "email"].map(String::from).to_vec()
}
fn default_username_claim() -> String {
    "preferred_username".into()
}
fn default_groups_claim() -> String {
    "groups".into()
}
fn default_timeout() -> Duration {
    Duration::from_secs(10)
}
fn default_algorithms() -> Vec<String> {
    ["RS256", "ES256", "EdDSA"].map(String::from).to_vec()
}
fn default_leeway() -> Duration {
    Duration::from_secs(60)
}
fn default_cache_ttl() -> Duration {
    Duration::from_secs(3600)
}
fn default_refetch() -> Duration {
    Duration::from_secs(30)
}

/// Asymmetric algorithms only: an HS* allow-list would let anyone holding the client secret
/// (or, with the public key bytes as HMAC key, anyone at all) sign tokens.
pub const ALGORITHMS: [&str; 9] = [
    "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "EdDSA",
];

/// The longest leeway accepted: a skew tolerance, never a way to keep expired tokens alive.
const MAX_LEEWAY: Duration = Duration::from_secs(300);

impl OidcConfig {
    /// The configuration's own problems, keys relative to the section; no network.
    pub fn problems(&self) -> Vec<ConfigProblem> {
        let mut out = Vec::new();
        match url::Url::parse(&self.issuer) {
            Ok(u) if u.scheme() == "https" || (u.scheme() == "http" && is_loopback(&u)) => {
                if u.query().is_some() || u.fragment().is_some() {
                    out.push(ConfigProblem::new(
                        "issuer",
                        "must not have a query or fragment",
                    ));
                }
            }
            Ok(_) => out.push(ConfigProblem::new(
                "issuer",
                "must be an https:// URL (http:// only on loopback, for tests)",
            )),
            Err(e) => out.push(ConfigProblem::new("issuer", format!("not a URL: {e}"))),
        }
        if self.client_id.trim().is_empty() {
            out.push(ConfigProblem::new("client-id", "must not be empty"));
        }
        match (&self.client_secret, &self.client_secret_file) {
            (Some(_), Some(_)) => out.push(ConfigProblem::new(
                "client-secret",
                "give client-secret or client-secret-file, not both",
            )),
            (None, Some(path)) => {
                if let Err(e) = read_secret_file("client-secret-file", path) {
                    out.push(e);
                }
            }
            (None, None) => out.push(ConfigProblem::new(
                "client-secret",
                "missing: a confidential client needs client-secret or client-secret-file",
            )),
            (Some(_), None) => {}
        }
        if !self.scopes.iter().any(|s| s == "openid") {
            out.push(ConfigProblem::new("scopes", "must include \"openid\""));
        }
        if self.id_token_algorithms.is_empty() {
            out.push(ConfigProblem::new(
                "id-token-algorithms",
                "must not be empty",
            ));
        }
        for alg in &self.id_token_algorithms {
            if !ALGORITHMS.contains(&alg.as_str()) {
                out.push(ConfigProblem::new(
                    "id-token-algorithms",
                    format!(
                        "{alg:?} is not accepted (one of {}; never none or HS*)",
                        ALGORITHMS.join(", ")
                    ),
                ));
            }
        }
        if let Some(path) = &self.redirect_path {
            if !path.starts_with('/') || path.starts_with("//") || path.contains(['?', '#']) {
                out.push(ConfigProblem::new(
                    "redirect-path",
                    "must be a path starting with one /, without query or fragment",
                ));
            }
        }
        if let Some(path) = &self.ca_file {
            if let Err(e) = crate::fetch::tls_config(Some(path)) {
                out.push(ConfigProblem::new("ca-file", e));
            }
        }
        if self.timeout.is_zero() || self.timeout > Duration::from_secs(120) {
            out.push(ConfigProblem::new(
                "timeout",
                "must be between 1ms and 120s",
            ));
        }
        if self.leeway > MAX_LEEWAY {
            out.push(ConfigProblem::new("leeway", "must be at most 5m"));
        }
        if self.username_claim.is_empty() {
            out.push(ConfigProblem::new("username-claim", "must not be empty"));
        }
        if self.groups_claim.is_empty() {
            out.push(ConfigProblem::new("groups-claim", "must not be empty"));
        }
        out
    }

    /// The accepted `aud` values of access tokens.
    pub fn audiences(&self) -> Vec<String> {
        self.audience
            .as_ref()
            .map_or_else(|| vec![self.client_id.clone()], OneOrMany::as_vec)
    }
}

fn is_loopback(u: &url::Url) -> bool {
    match u.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(d)) => d == "localhost",
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> OidcConfig {
        serde_json::from_value(serde_json::json!({
            "issuer": "https://id.example.org/realms/x",
            "client-id": "postern",
            "client-secret": "s3cret",
        }))
        .unwrap()
    }

    #[test]
    fn defaults_are_the_issues() {
        let c = base();
        assert!(c.problems().is_empty(), "{:?}", c.problems());
        assert_eq!(c.scopes, ["openid", "profile", "email"]);
        assert_eq!(c.audiences(), ["postern"]);
        assert_eq!(c.groups_claim, "groups");
        assert_eq!(c.id_token_algorithms, ["RS256", "ES256", "EdDSA"]);
        assert_eq!(c.token_validation, TokenValidation::Jwt);
    }

    #[test]
    fn refuses_what_would_weaken_it() {
        let mut c = base();
        c.issuer = "http://id.example.org".into();
        c.id_token_algorithms = vec!["HS256".into(), "none".into()];
        c.redirect_path = Some("//evil".into());
        c.client_secret = None;
        c.leeway = Duration::from_secs(3600);
        let keys: Vec<_> = c.problems().into_iter().map(|p| p.key).collect();
        assert_eq!(
            keys,
            [
                "issuer",
                "client-secret",
                "id-token-algorithms",
                "id-token-algorithms",
                "redirect-path",
                "leeway"
            ]
        );
        let mut c = base();
        c.issuer = "http://127.0.0.1:9/".into();
        assert!(c.problems().is_empty());
    }

    #[test]
    fn unknown_keys_are_refused() {
        let e = serde_json::from_value::<OidcConfig>(serde_json::json!({
            "issuer": "https://x", "client-id": "a", "client-secert": "b",
        }));
        assert!(e.is_err());
    }
}
