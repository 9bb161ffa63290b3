//! The provider as this daemon knows it: its discovery document and its signing keys, both
//! cached. Discovery is kept for `cache-ttl` and, when a refresh fails, the last good one is
//! kept (endpoints rarely move; the request that follows shows the outage). Keys are kept for
//! `cache-ttl` too, then fetched again, and a token whose `kid` the set lacks causes one
//! refetch, at most one per `jwks-refetch-interval`: a key rotation is picked up at once, a
//! flood of made-up key ids costs the provider nothing.

use std::sync::Arc;
use std::time::{Duration, Instant};

use jsonwebtoken::jwk::{Jwk, JwkSet, PublicKeyUse};
use serde::Deserialize;
use tokio::sync::Mutex;

use crate::fetch::{FetchError, Fetcher};

/// The parts of the discovery document (OpenID Connect Discovery 1.0) this client uses.
#[derive(Debug, Clone, Deserialize)]
pub struct Metadata {
    pub issuer: String,
    pub authorization_endpoint: String,
    pub token_endpoint: String,
    #[serde(default)]
    pub userinfo_endpoint: Option<String>,
    pub jwks_uri: String,
    #[serde(default)]
    pub introspection_endpoint: Option<String>,
    #[serde(default)]
    pub code_challenge_methods_supported: Vec<String>,
    /// RFC 9207: the provider puts `iss` on every authorization response.
    #[serde(default)]
    pub authorization_response_iss_parameter_supported: bool,
}

struct Cached<T> {
    value: Arc<T>,
    fetched: Instant,
}

#[derive(Default)]
struct Keys {
    set: Option<Cached<JwkSet>>,
    /// The last fetch caused by an unknown `kid`.
    last_refetch: Option<Instant>,
}

pub struct Provider {
    issuer: String,
    fetcher: Fetcher,
    ttl: Duration,
    refetch_interval: Duration,
    // Async mutexes held across the fetch: concurrent logins wait for one request instead of
    // each sending their own.
    metadata: Mutex<Option<Cached<Metadata>>>,
    keys: Mutex<Keys>,
}

/// Why no key was found for a token.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("the provider cannot be reached: {0}")]
    Unavailable(String),
    #[error("no signing key with kid {0:?}")]
    Unknown(String),
}

impl Provider {
    pub fn new(
        issuer: String,
        fetcher: Fetcher,
        ttl: Duration,
        refetch_interval: Duration,
    ) -> Provider {
        Provider {
            issuer,
            fetcher,
            ttl,
            refetch_interval,
            metadata: Mutex::new(None),
            keys: Mutex::new(Keys::default()),
        }
    }

    pub fn fetcher(&self) -> &Fetcher {
        &self.fetcher
    }

    /// The discovery document's URL (OIDC appends the well-known segment to the issuer).
    pub fn discovery_url(&self) -> String {
        format!(
            "{}/.well-known/openid-configuration",
            self.issuer.trim_end_matches('/')
        )
    }

    /// Discovery, from the cache or fetched now.
    pub async fn metadata(&self) -> Result<Arc<Metadata>, FetchError> {
        let mut cached = self.metadata.lock().await;
        if let Some(c) = cached.as_ref() {
            if c.fetched.elapsed() < self.ttl {
                return Ok(c.value.clone());
            }
        }
        match self.discover().await {
            Ok(m) => {
                let m = Arc::new(m);
                *cached = Some(Cached {
                    value: m.clone(),
                    fetched: Instant::now(),
                });
                Ok(m)
            }
            Err(e) => match cached.as_ref() {
                Some(c) => {
                    tracing::warn!(issuer = %self.issuer, error = %e, "OIDC discovery refresh failed; keeping the last document");
                    Ok(c.value.clone())
                }
                None => Err(e),
            },
        }
    }

    /// Fetches and checks the discovery document (no cache): what `check-config --live` runs.
    pub async fn discover(&self) -> Result<Metadata, FetchError> {
        let value = self.fetcher.get_json(&self.discovery_url(), None).await?;
        let m: Metadata = serde_json::from_value(value)
            .map_err(|e| FetchError::Invalid(format!("discovery document: {e}")))?;
        // Exact comparison: a provider that names another issuer is either misconfigured or
        // an attempt to mix two providers up.
        if m.issuer != self.issuer {
            return Err(FetchError::Invalid(format!(
                "discovery names issuer {:?}, not the configured {:?}",
                m.issuer, self.issuer
            )));
        }
        Ok(m)
    }

    /// The signing key for a token's `kid` (or, without one, the only signing key of the
    /// algorithm's type).
    pub async fn key(
        &self,
        kid: Option<&str>,
        alg: jsonwebtoken::Algorithm,
    ) -> Result<Jwk, KeyError> {
        let mut keys = self.keys.lock().await;
        let stale = keys
            .set
            .as_ref()
            .is_none_or(|c| c.fetched.elapsed() >= self.ttl);
        if stale {
            let set = self.fetch_keys().await?;
            keys.set = Some(Cached {
                value: Arc::new(set),
                fetched: Instant::now(),
            });
        }
        if let Some(k) = keys.set.as_ref().and_then(|c| find(&c.value, kid, alg)) {
            return Ok(k);
        }
        let may_refetch = keys
            .last_refetch
            .is_none_or(|t| t.elapsed() >= self.refetch_interval);
        if stale || !may_refetch {
            return Err(KeyError::Unknown(kid.unwrap_or_default().to_string()));
        }
        keys.last_refetch = Some(Instant::now());
        let set = self.fetch_keys().await?;
        let found = find(&set, kid, alg);
        keys.set = Some(Cached {
            value: Arc::new(set),
            fetched: Instant::now(),
        });
        found.ok_or_else(|| KeyError::Unknown(kid.unwrap_or_default().to_string()))
    }

    async fn fetch_keys(&self) -> Result<JwkSet, KeyError> {
        let m = self
            .metadata()
            .await
            .map_err(|e| KeyError::Unavailable(e.to_string()))?;
        let value = self
            .fetcher
            .get_json(&m.jwks_uri, None)
            .await
            .map_err(|e| KeyError::Unavailable(format!("JWKS: {e}")))?;
        let keys = value
            .get("keys")
            .and_then(|k| k.as_array())
            .ok_or_else(|| KeyError::Unavailable("JWKS: no \"keys\" list".into()))?;
        // Keys of kinds this client cannot use (encryption keys, unknown curves) are skipped
        // one by one rather than making the whole set unusable.
        let keys = keys
            .iter()
            .filter_map(|k| serde_json::from_value::<Jwk>(k.clone()).ok())
            .collect();
        Ok(JwkSet { keys })
    }
}

/// A signing key of the token's algorithm family, by `kid`.
fn find(set: &JwkSet, kid: Option<&str>, alg: jsonwebtoken::Algorithm) -> Option<Jwk> {
    use jsonwebtoken::jwk::AlgorithmParameters as P;
    use jsonwebtoken::Algorithm as A;
    let fits = |k: &&Jwk| {
        let signing = !matches!(k.common.public_key_use, Some(PublicKeyUse::Encryption));
        let family = matches!(
            (&k.algorithm, alg),
            (
                P::RSA(_),
                A::RS256 | A::RS384 | A::RS512 | A::PS256 | A::PS384 | A::PS512
            ) | (P::EllipticCurve(_), A::ES256 | A::ES384)
                | (P::OctetKeyPair(_), A::EdDSA)
        );
        // A key that names its algorithm is used for that one only.
        let same_alg = k
            .common
            .key_algorithm
            .is_none_or(|ka| format!("{ka:?}") == format!("{alg:?}"));
        signing && family && same_alg
    };
    match kid {
        Some(kid) => set
            .keys
            .iter()
            .filter(fits)
            .find(|k| k.common.key_id.as_deref() == Some(kid))
            .cloned(),
        None => {
            let mut candidates = set.keys.iter().filter(fits);
            match (candidates.next(), candidates.next()) {
                (Some(only), None) => Some(only.clone()),
                _ => None,
            }
        }
    }
}
