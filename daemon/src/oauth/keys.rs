//! ES256 signing keys. Generated with ring, kept in the store (PKCS#8, base64) so that every
//! daemon sharing it signs and verifies alike, cached here for a few seconds. A key is
//! published from its creation and signs from its `signs_from`: `postern keys rotate` adds the
//! next key ahead of time, so clients that cache the JWKS know it before they meet a token it
//! signed; the old key stays published until removed, after its tokens have expired.

use std::sync::{Arc, RwLock};

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use jsonwebtoken::{DecodingKey, EncodingKey};
use postern_internal::store::oauth_keys::OAuthKeyRecord;
use postern_internal::{Store, StoreError};
use ring::rand::SystemRandom;
use ring::signature::{EcdsaKeyPair, KeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

pub const ALG: &str = "ES256";

/// How long a daemon trusts its copy of the keys: a key added or removed through another
/// daemon or the CLI is seen within this many seconds.
const CACHE_SECONDS: i64 = 5;

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cannot generate a signing key")]
    Generate,
    #[error("stored signing key {0:?} is unusable")]
    Corrupt(String),
}

/// One key, ready to use.
pub struct Key {
    pub kid: String,
    pub signs_from: i64,
    pub created_at: i64,
    pub encoding: EncodingKey,
    pub decoding: DecodingKey,
    /// The public JWK as published.
    pub jwk: serde_json::Value,
}

struct Cached {
    keys: Vec<Key>,
    loaded_at: i64,
}

pub struct KeyRing {
    store: Store,
    cached: RwLock<Option<Arc<Cached>>>,
}

/// A new P-256 key, published at once and signing from `signs_from`.
pub fn generate(now: i64, signs_from: i64) -> Result<OAuthKeyRecord, KeyError> {
    let rng = SystemRandom::new();
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
        .map_err(|_| KeyError::Generate)?;
    let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng)
        .map_err(|_| KeyError::Generate)?;
    let (x, y) = coordinates(pair.public_key().as_ref()).ok_or(KeyError::Generate)?;
    // RFC 7638 thumbprint: unique per key, and the same on every daemon.
    let thumbprint = format!(r#"{{"crv":"P-256","kty":"EC","x":"{x}","y":"{y}"}}"#);
    let kid = URL_SAFE_NO_PAD.encode(Sha256::digest(thumbprint.as_bytes()));
    let jwk = serde_json::json!({
        "kty": "EC", "crv": "P-256", "x": x, "y": y,
        "kid": kid, "use": "sig", "alg": ALG,
    });
    Ok(OAuthKeyRecord {
        kid,
        alg: ALG.into(),
        private_key: Zeroizing::new(STANDARD.encode(pkcs8.as_ref())),
        public_jwk: jwk.to_string(),
        created_at: now,
        signs_from,
    })
}

/// x and y of an uncompressed P-256 point, base64url.
fn coordinates(point: &[u8]) -> Option<(String, String)> {
    if point.len() != 65 || point[0] != 4 {
        return None;
    }
    Some((
        URL_SAFE_NO_PAD.encode(&point[1..33]),
        URL_SAFE_NO_PAD.encode(&point[33..]),
    ))
}

fn load(r: &OAuthKeyRecord) -> Result<Key, KeyError> {
    let corrupt = || KeyError::Corrupt(r.kid.clone());
    if r.alg != ALG {
        return Err(corrupt());
    }
    let der = Zeroizing::new(
        STANDARD
            .decode(r.private_key.as_bytes())
            .map_err(|_| corrupt())?,
    );
    // Checked here, so that signing never meets a bad key.
    EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &der, &SystemRandom::new())
        .map_err(|_| corrupt())?;
    let jwk: serde_json::Value = serde_json::from_str(&r.public_jwk).map_err(|_| corrupt())?;
    let (Some(x), Some(y)) = (jwk["x"].as_str(), jwk["y"].as_str()) else {
        return Err(corrupt());
    };
    Ok(Key {
        kid: r.kid.clone(),
        signs_from: r.signs_from,
        created_at: r.created_at,
        encoding: EncodingKey::from_ec_der(&der),
        decoding: DecodingKey::from_ec_components(x, y).map_err(|_| corrupt())?,
        jwk,
    })
}

impl KeyRing {
    pub fn new(store: Store) -> KeyRing {
        KeyRing {
            store,
            cached: RwLock::new(None),
        }
    }

    fn cached(&self) -> Option<Arc<Cached>> {
        self.cached
            .read()
            .map(|c| c.clone())
            .unwrap_or_else(|p| p.into_inner().clone())
    }

    async fn keys(&self, now: i64) -> Result<Arc<Cached>, KeyError> {
        if let Some(c) = self.cached() {
            if now - c.loaded_at < CACHE_SECONDS && now >= c.loaded_at {
                return Ok(c);
            }
        }
        self.reload(now).await
    }

    async fn reload(&self, now: i64) -> Result<Arc<Cached>, KeyError> {
        let mut keys = Vec::new();
        for r in self.store.oauth_keys().await? {
            match load(&r) {
                Ok(k) => keys.push(k),
                // One bad row must not stop the others from verifying.
                Err(e) => tracing::error!(error = %e, "signing key skipped"),
            }
        }
        let cached = Arc::new(Cached {
            keys,
            loaded_at: now,
        });
        match self.cached.write() {
            Ok(mut c) => *c = Some(cached.clone()),
            Err(p) => *p.into_inner() = Some(cached.clone()),
        }
        Ok(cached)
    }

    /// Makes sure a key signs now: on a fresh store, the first one is created here.
    pub async fn ensure(&self, now: i64) -> Result<(), KeyError> {
        let keys = self.reload(now).await?;
        if keys.keys.iter().any(|k| k.signs_from <= now) {
            return Ok(());
        }
        self.store.insert_oauth_key(&generate(now, now)?).await?;
        self.reload(now).await.map(|_| ())
    }

    /// The key that signs at `now`: the newest whose time has come. Calls `f` with it.
    pub async fn with_signing_key<T>(
        &self,
        now: i64,
        f: impl FnOnce(&Key) -> T,
    ) -> Result<T, KeyError> {
        let mut keys = self.keys(now).await?;
        if !keys.keys.iter().any(|k| k.signs_from <= now) {
            self.ensure(now).await?;
            keys = self.keys(now).await?;
        }
        let key = keys
            .keys
            .iter()
            .filter(|k| k.signs_from <= now)
            .max_by_key(|k| (k.signs_from, k.created_at))
            .ok_or(KeyError::Generate)?;
        Ok(f(key))
    }

    /// The verifying key named `kid`, if it is still published.
    pub async fn decoding_key(&self, kid: &str, now: i64) -> Result<Option<DecodingKey>, KeyError> {
        let find = |c: &Cached| {
            c.keys
                .iter()
                .find(|k| k.kid == kid)
                .map(|k| k.decoding.clone())
        };
        let keys = self.keys(now).await?;
        if let Some(k) = find(&keys) {
            return Ok(Some(k));
        }
        // A key another daemon just made: looked for again, at most once a second, so that
        // tokens with made-up kids cannot make every request read the store.
        if keys.loaded_at < now {
            return Ok(find(&*self.reload(now).await?));
        }
        Ok(None)
    }

    /// Whether the key named `kid` is still published (as of this daemon's copy of the keys,
    /// at most [`CACHE_SECONDS`] old): a token verified earlier is good only while it is.
    pub async fn publishes(&self, kid: &str, now: i64) -> Result<bool, KeyError> {
        Ok(self.keys(now).await?.keys.iter().any(|k| k.kid == kid))
    }

    /// The JWKS document: public parts only.
    pub async fn jwks(&self, now: i64) -> Result<serde_json::Value, KeyError> {
        let keys = self.keys(now).await?;
        let list: Vec<_> = keys.keys.iter().map(|k| k.jwk.clone()).collect();
        Ok(serde_json::json!({ "keys": list }))
    }
}

/// `postern keys rotate`: adds the next key, signing from `now + activate_in`, and removes
/// keys that a newer one replaced more than `keep` seconds ago (their tokens have expired).
/// Returns the new key's id and the ids removed.
pub async fn rotate(
    store: &Store,
    now: i64,
    activate_in: i64,
    keep: i64,
) -> Result<(String, Vec<String>), KeyError> {
    let record = generate(now, now + activate_in.max(0))?;
    store.insert_oauth_key(&record).await?;
    let keys = store.oauth_keys().await?;
    let mut removed = Vec::new();
    for k in &keys {
        let replaced_since = keys
            .iter()
            .filter(|n| n.signs_from > k.signs_from && n.signs_from <= now)
            .map(|n| n.signs_from)
            .min();
        if replaced_since.is_some_and(|t| t <= now - keep) && store.delete_oauth_key(&k.kid).await?
        {
            removed.push(k.kid.clone());
        }
    }
    Ok((record.kid, removed))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_load_and_publish_no_private_part() {
        let r = generate(100, 100).unwrap();
        let k = load(&r).unwrap();
        assert_eq!(k.kid, r.kid);
        let jwk = &k.jwk;
        assert_eq!(jwk["kty"], "EC");
        assert_eq!(jwk["use"], "sig");
        assert_eq!(jwk["alg"], "ES256");
        assert!(jwk.get("d").is_none());
        assert_ne!(generate(100, 100).unwrap().kid, r.kid, "kids are unique");
        assert!(!format!("{r:?}").contains(r.private_key.as_str()));
    }
}
