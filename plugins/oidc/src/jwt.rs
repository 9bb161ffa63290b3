//! JWT checks for ID tokens (OIDC Core §3.1.3.7) and access tokens (RFC 9068), in that
//! order: the algorithm from the configured allow-list (never `none`, never HS*), the key by
//! `kid` from the provider's cached set (never `jku`/`x5u`/`jwk` from the header), the
//! signature, then every claim against the engine's clock. jsonwebtoken checks the signature
//! only; the claims are checked here so that time comes from one clock and every rule is in
//! one place.

use base64::Engine as _;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::{Map, Value};

use crate::provider::{KeyError, Provider};

/// The largest token looked at. Real ones are a few kilobytes.
pub const MAX_TOKEN: usize = 16 * 1024;

/// What a token is expected to be.
pub enum Expect<'a> {
    /// From the token endpoint, for this transaction's nonce.
    IdToken { nonce: &'a str },
    /// Presented by a client as a bearer credential.
    AccessToken,
}

#[derive(Debug, thiserror::Error)]
pub enum JwtError {
    /// Not ours to judge: not a JWT, or another issuer's (the next directory may know it).
    #[error("not this provider's token: {0}")]
    NotOurs(&'static str),
    #[error("invalid token: {0}")]
    Invalid(String),
    #[error("the provider cannot be reached: {0}")]
    Unavailable(String),
}

pub struct Rules<'a> {
    pub issuer: &'a str,
    pub client_id: &'a str,
    /// Accepted `aud` values of access tokens.
    pub audiences: &'a [String],
    pub algorithms: &'a [Algorithm],
    pub leeway: i64,
    pub now: i64,
}

fn invalid(reason: impl Into<String>) -> JwtError {
    JwtError::Invalid(reason.into())
}

/// The payload, unverified: only to see whose token it is before any key is fetched.
pub(crate) fn peek_payload(token: &str) -> Result<Map<String, Value>, JwtError> {
    let mut parts = token.split('.');
    let (Some(_), Some(payload), Some(_), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(JwtError::NotOurs("not a JWT"));
    };
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .map_err(|_| JwtError::NotOurs("not a JWT"))?;
    match serde_json::from_slice::<Value>(&bytes) {
        Ok(Value::Object(map)) => Ok(map),
        _ => Err(JwtError::NotOurs("not a JWT")),
    }
}

pub async fn verify(
    token: &str,
    expect: Expect<'_>,
    rules: &Rules<'_>,
    provider: &Provider,
) -> Result<Map<String, Value>, JwtError> {
    if token.len() > MAX_TOKEN {
        return Err(invalid("token too large"));
    }
    let unverified = peek_payload(token)?;
    if unverified.get("iss").and_then(Value::as_str) != Some(rules.issuer) {
        return match expect {
            Expect::AccessToken => Err(JwtError::NotOurs("another issuer")),
            Expect::IdToken { .. } => Err(invalid("iss is not the provider's issuer")),
        };
    }
    // `alg: none` and unknown names do not parse as an `Algorithm` at all.
    let header = jsonwebtoken::decode_header(token).map_err(|e| invalid(format!("header: {e}")))?;
    if !rules.algorithms.contains(&header.alg) {
        return Err(invalid(format!("algorithm {:?} not allowed", header.alg)));
    }
    if let Expect::AccessToken = expect {
        // RFC 9068 names access tokens `at+jwt`; providers that predate it (Keycloak) say
        // `JWT`. An ID token must never pass as an access token: those carry a nonce, or
        // Keycloak's `typ: ID`.
        let typ = header.typ.as_deref().unwrap_or("JWT").to_ascii_lowercase();
        if !matches!(typ.as_str(), "at+jwt" | "application/at+jwt" | "jwt") {
            return Err(invalid(format!(
                "token type {typ:?} is not an access token"
            )));
        }
        if typ == "jwt"
            && (unverified.contains_key("nonce")
                || unverified.get("typ").and_then(Value::as_str) == Some("ID"))
        {
            return Err(invalid("an ID token is not an access token"));
        }
    }
    let jwk = provider
        .key(header.kid.as_deref(), header.alg)
        .await
        .map_err(|e| match e {
            KeyError::Unavailable(m) => JwtError::Unavailable(m),
            KeyError::Unknown(_) => invalid(e.to_string()),
        })?;
    let key = DecodingKey::from_jwk(&jwk).map_err(|e| invalid(format!("key: {e}")))?;
    let mut validation = Validation::new(header.alg);
    validation.validate_exp = false;
    validation.validate_nbf = false;
    validation.validate_aud = false;
    validation.required_spec_claims.clear();
    let data = jsonwebtoken::decode::<Map<String, Value>>(token, &key, &validation)
        .map_err(|e| invalid(format!("signature: {e}")))?;
    check_claims(&data.claims, &expect, rules)?;
    Ok(data.claims)
}

fn number(claims: &Map<String, Value>, name: &str) -> Result<Option<i64>, JwtError> {
    match claims.get(name) {
        None => Ok(None),
        Some(v) => v
            .as_i64()
            .or_else(|| v.as_f64().map(|f| f as i64))
            .map(Some)
            .ok_or_else(|| invalid(format!("{name} is not a number"))),
    }
}

fn audiences(claims: &Map<String, Value>) -> Result<Vec<&str>, JwtError> {
    match claims.get("aud") {
        Some(Value::String(s)) => Ok(vec![s.as_str()]),
        Some(Value::Array(a)) => a
            .iter()
            .map(|v| v.as_str().ok_or_else(|| invalid("aud holds a non-string")))
            .collect(),
        Some(_) => Err(invalid("aud is not a string or list")),
        None => Err(invalid("aud missing")),
    }
}

/// Every claim rule, with the signature already checked.
pub fn check_claims(
    claims: &Map<String, Value>,
    expect: &Expect<'_>,
    rules: &Rules<'_>,
) -> Result<(), JwtError> {
    if claims.get("iss").and_then(Value::as_str) != Some(rules.issuer) {
        return Err(invalid("iss is not the provider's issuer"));
    }
    match claims.get("sub") {
        Some(Value::String(s)) if !s.is_empty() && s.len() <= 255 => {}
        _ => return Err(invalid("sub missing or not a string")),
    }
    let exp = number(claims, "exp")?.ok_or_else(|| invalid("exp missing"))?;
    if exp.saturating_add(rules.leeway) <= rules.now {
        return Err(invalid("expired"));
    }
    if let Some(nbf) = number(claims, "nbf")? {
        if nbf.saturating_sub(rules.leeway) > rules.now {
            return Err(invalid("not yet valid (nbf)"));
        }
    }
    let iat = number(claims, "iat")?;
    if iat.is_some_and(|iat| iat.saturating_sub(rules.leeway) > rules.now) {
        return Err(invalid("issued in the future (iat)"));
    }
    let aud = audiences(claims)?;
    match expect {
        Expect::IdToken { nonce } => {
            if iat.is_none() {
                return Err(invalid("iat missing"));
            }
            // Our client id, and nobody we do not trust; with several, `azp` names us.
            if !aud.contains(&rules.client_id) {
                return Err(invalid("aud does not name this client"));
            }
            if aud
                .iter()
                .any(|a| *a != rules.client_id && !rules.audiences.iter().any(|t| t == a))
            {
                return Err(invalid("aud names an untrusted audience"));
            }
            if aud.len() > 1 && claims.get("azp").and_then(Value::as_str) != Some(rules.client_id) {
                return Err(invalid("azp does not name this client"));
            }
            let got = claims.get("nonce").and_then(Value::as_str).unwrap_or("");
            if !crate::flow::same(got, nonce) {
                return Err(invalid("nonce does not match the transaction"));
            }
        }
        Expect::AccessToken => {
            if !aud.iter().any(|a| rules.audiences.iter().any(|t| t == a)) {
                return Err(invalid("aud is not an accepted audience"));
            }
        }
    }
    Ok(())
}

/// The configured algorithm names as jsonwebtoken's (validated by the configuration).
pub fn algorithms(names: &[String]) -> Vec<Algorithm> {
    names
        .iter()
        .filter(|n| crate::config::ALGORITHMS.contains(&n.as_str()))
        .filter_map(|n| n.parse().ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rules(now: i64) -> Rules<'static> {
        Rules {
            issuer: "https://id.example",
            client_id: "postern",
            audiences: &[],
            algorithms: &[Algorithm::RS256],
            leeway: 30,
            now,
        }
    }

    fn claims(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => unreachable!(),
        }
    }

    #[test]
    fn id_token_claims() {
        let good = json!({"iss": "https://id.example", "sub": "u1", "aud": "postern",
            "exp": 1000, "iat": 900, "nonce": "n1"});
        let id = Expect::IdToken { nonce: "n1" };
        assert!(check_claims(&claims(good.clone()), &id, &rules(950)).is_ok());
        // Leeway both ways, bounded.
        assert!(check_claims(&claims(good.clone()), &id, &rules(1029)).is_ok());
        assert!(check_claims(&claims(good.clone()), &id, &rules(1030)).is_err());
        assert!(check_claims(&claims(good.clone()), &id, &rules(869)).is_err());
        let wrong = |patch: Value| {
            let mut c = claims(good.clone());
            for (k, v) in claims(patch) {
                if v.is_null() {
                    c.remove(&k);
                } else {
                    c.insert(k, v);
                }
            }
            check_claims(&c, &Expect::IdToken { nonce: "n1" }, &rules(950)).unwrap_err()
        };
        wrong(json!({"iss": "https://id.example/"}));
        wrong(json!({"sub": 42}));
        wrong(json!({"aud": "other"}));
        wrong(json!({"aud": ["postern", "other"], "azp": "postern"}));
        wrong(json!({"nonce": "n2"}));
        wrong(json!({"nonce": null}));
        wrong(json!({"exp": "1000"}));
        wrong(json!({"iat": null}));
    }

    #[test]
    fn access_token_audience() {
        let audiences = ["urn:mail".to_string()];
        let r = Rules {
            audiences: &audiences,
            ..rules(950)
        };
        let ok = json!({"iss": "https://id.example", "sub": "u1", "aud": ["x", "urn:mail"], "exp": 1000});
        assert!(check_claims(&claims(ok), &Expect::AccessToken, &r).is_ok());
        let no = json!({"iss": "https://id.example", "sub": "u1", "aud": "postern", "exp": 1000});
        assert!(check_claims(&claims(no), &Expect::AccessToken, &r).is_err());
    }

    #[test]
    fn only_asymmetric_algorithms_are_ever_allowed() {
        let names = ["RS256", "HS256", "none", "EdDSA"].map(String::from);
        assert_eq!(algorithms(&names), [Algorithm::RS256, Algorithm::EdDSA]);
    }
}
