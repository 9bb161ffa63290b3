//! JWTs this server signs: RFC 9068 access tokens (`typ: at+jwt`) and OpenID Connect ID
//! tokens, ES256 only. Verification accepts exactly what we sign: ES256 with a published
//! `kid`, our issuer and audience, `typ: at+jwt`; `alg: none`, HS256 and anything else fail.

use jsonwebtoken::{Algorithm, Header, Validation};
use serde::{Deserialize, Serialize};

use super::keys::KeyError;
use super::Authority;

/// RFC 9068 §2.2, plus `grant` (Postern's own: the grant a person's token came from, so that
/// revoking the grant ends the token; absent for `client_credentials`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessClaims {
    pub iss: String,
    pub sub: String,
    pub aud: String,
    pub client_id: String,
    pub scope: String,
    pub exp: i64,
    pub iat: i64,
    pub jti: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grant: Option<String>,
}

/// An OpenID Connect ID token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdClaims {
    pub iss: String,
    pub sub: String,
    pub aud: String,
    pub azp: String,
    pub exp: i64,
    pub iat: i64,
    pub auth_time: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nonce: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preferred_username: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
}

pub const ACCESS_TYP: &str = "at+jwt";

/// Longest token looked at: anything longer is not ours.
const MAX_TOKEN: usize = 4096;

/// Whether a bearer string has the shape of a JWT (three base64url parts): only those are
/// verified as access tokens; anything else goes to the session and API-key lookup.
pub fn looks_like_jwt(token: &str) -> bool {
    token.len() <= MAX_TOKEN
        && token.split('.').count() == 3
        && token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
}

impl Authority {
    /// Signs `claims` with the key in force at `now`.
    pub async fn sign<T: Serialize>(
        &self,
        typ: &str,
        claims: &T,
        now: i64,
    ) -> Result<String, KeyError> {
        self.keys
            .with_signing_key(now, |k| {
                let mut header = Header::new(Algorithm::ES256);
                header.typ = Some(typ.to_string());
                header.kid = Some(k.kid.clone());
                jsonwebtoken::encode(&header, claims, &k.encoding)
            })
            .await?
            .map_err(|_| KeyError::Generate)
    }

    /// The claims of one of our access tokens, valid at `now` (signature, issuer, audience,
    /// type, expiry); `Ok(None)` for anything else. Revocation is the caller's to check.
    pub async fn verify_access(
        &self,
        token: &str,
        now: i64,
    ) -> Result<Option<AccessClaims>, KeyError> {
        Ok(self.verify_access_signed(token, now).await?.map(|(_, c)| c))
    }

    /// [`Authority::verify_access`], with the `kid` of the key that signed the token (a cached
    /// verification is good only while that key is published).
    pub async fn verify_access_signed(
        &self,
        token: &str,
        now: i64,
    ) -> Result<Option<(String, AccessClaims)>, KeyError> {
        if !looks_like_jwt(token) {
            return Ok(None);
        }
        let Ok(header) = jsonwebtoken::decode_header(token) else {
            return Ok(None);
        };
        let typ_ok = header.typ.as_deref().is_some_and(|t| {
            t.eq_ignore_ascii_case(ACCESS_TYP) || t.eq_ignore_ascii_case("application/at+jwt")
        });
        if header.alg != Algorithm::ES256 || !typ_ok {
            return Ok(None);
        }
        let Some(kid) = header.kid else {
            return Ok(None);
        };
        let Some(key) = self.keys.decoding_key(&kid, now).await? else {
            return Ok(None);
        };
        self.signature_checks
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let issuer = self.issuer();
        let mut v = Validation::new(Algorithm::ES256);
        v.set_issuer(&[&issuer]);
        v.set_audience(&[&issuer]);
        v.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        // Time is the engine's clock, checked below, not the library's.
        v.validate_exp = false;
        let Ok(data) = jsonwebtoken::decode::<AccessClaims>(token, &key, &v) else {
            return Ok(None);
        };
        let c = data.claims;
        const LEEWAY: i64 = 5;
        if c.exp <= now || c.iat > now + LEEWAY {
            return Ok(None);
        }
        Ok(Some((kid, c)))
    }
}
