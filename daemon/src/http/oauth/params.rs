//! `application/x-www-form-urlencoded` parameters of the token, introspection, revocation
//! and authorization requests: each at most once (RFC 6749 §3.1, §3.2), each bounded.

use std::collections::HashMap;

use crate::http::OAuthError;

/// Longest value accepted for one parameter.
pub const MAX_VALUE: usize = 2048;
const MAX_PARAMS: usize = 32;

pub struct Params(HashMap<String, String>);

impl Params {
    pub fn parse(body: &[u8]) -> Result<Params, OAuthError> {
        let pairs: Vec<(String, String)> = serde_urlencoded::from_bytes(body)
            .map_err(|_| OAuthError::invalid_request("malformed form body"))?;
        Params::from_pairs(pairs)
    }

    pub fn from_query(query: Option<&str>) -> Result<Params, OAuthError> {
        Params::parse(query.unwrap_or_default().as_bytes())
    }

    fn from_pairs(pairs: Vec<(String, String)>) -> Result<Params, OAuthError> {
        if pairs.len() > MAX_PARAMS {
            return Err(OAuthError::invalid_request("too many parameters"));
        }
        let mut map = HashMap::new();
        for (k, v) in pairs {
            if v.len() > MAX_VALUE || k.len() > 64 {
                return Err(OAuthError::invalid_request(format!(
                    "parameter {:?} is too long",
                    k.chars().take(64).collect::<String>()
                )));
            }
            // RFC 6749 §3.1: parameters sent without a value are as if omitted.
            if v.is_empty() {
                continue;
            }
            if map.insert(k.clone(), v).is_some() {
                return Err(OAuthError::invalid_request(format!(
                    "parameter {k:?} given more than once"
                )));
            }
        }
        Ok(Params(map))
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
    }

    pub fn require(&self, name: &str) -> Result<&str, OAuthError> {
        self.get(name)
            .ok_or_else(|| OAuthError::invalid_request(format!("missing parameter {name}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_and_oversized_parameters_are_refused() {
        assert!(Params::parse(b"a=1&a=2").is_err());
        let long = format!("a={}", "x".repeat(MAX_VALUE + 1));
        assert!(Params::parse(long.as_bytes()).is_err());
        let p = Params::parse(b"grant_type=client_credentials&scope=").unwrap();
        assert_eq!(p.get("grant_type"), Some("client_credentials"));
        assert_eq!(p.get("scope"), None);
        assert!(p.require("code").is_err());
    }
}
