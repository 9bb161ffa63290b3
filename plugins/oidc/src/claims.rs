//! From a provider's claims to the identity Postern records (SPEC §4): the name from
//! `username-claim`, the address only when the provider says it is verified, and the groups
//! from `groups-claim`, which must be a list of strings.

use postern_directory::{validate_username, Identity, Matched, PrincipalType};
use serde_json::{Map, Value};

/// The most groups taken from one token; more is a broken or hostile provider.
const MAX_GROUPS: usize = 256;
const MAX_GROUP_LEN: usize = 256;

pub fn identity(
    claims: &Map<String, Value>,
    username_claim: &str,
    groups_claim: &str,
) -> Result<Identity, String> {
    let name = match claims.get(username_claim) {
        Some(Value::String(s)) => s.clone(),
        Some(_) => return Err(format!("claim {username_claim:?} is not a string")),
        None => return Err(format!("claim {username_claim:?} missing")),
    };
    validate_username(&name).map_err(|e| format!("claim {username_claim:?}: {e}"))?;
    let groups = match claims.get(groups_claim) {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(items)) => {
            if items.len() > MAX_GROUPS {
                return Err(format!(
                    "claim {groups_claim:?} lists over {MAX_GROUPS} groups"
                ));
            }
            items
                .iter()
                .map(|g| match g {
                    Value::String(s) if !s.is_empty() && s.len() <= MAX_GROUP_LEN => Ok(s.clone()),
                    _ => Err(format!("claim {groups_claim:?} holds a non-name")),
                })
                .collect::<Result<_, _>>()?
        }
        Some(_) => return Err(format!("claim {groups_claim:?} is not a list")),
    };
    // An unverified address is the user's say-so: never taken as theirs.
    let emails = match (claims.get("email"), claims.get("email_verified")) {
        (Some(Value::String(e)), Some(Value::Bool(true))) if e.len() <= 320 => vec![e.clone()],
        _ => Vec::new(),
    };
    let description = claims
        .get("name")
        .and_then(Value::as_str)
        .filter(|n| n.len() <= 1024)
        .map(String::from);
    Ok(Identity {
        name,
        kind: PrincipalType::Individual,
        description,
        emails,
        groups,
        matched: Matched::Token,
        subject: claims.get("sub").and_then(Value::as_str).map(String::from),
    })
}

/// Claims the ID token lacks, taken from userinfo, whose `sub` must be the ID token's
/// (OIDC Core §5.3.2); otherwise the response is not about this user.
pub fn merge_userinfo(claims: &mut Map<String, Value>, userinfo: Value) -> Result<(), String> {
    let Value::Object(info) = userinfo else {
        return Err("userinfo is not a JSON object".into());
    };
    if info.get("sub") != claims.get("sub") || !info.get("sub").is_some_and(Value::is_string) {
        return Err("userinfo sub differs from the token's".into());
    }
    for (k, v) in info {
        claims.entry(k).or_insert(v);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn map(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => unreachable!(),
        }
    }

    #[test]
    fn names_groups_and_verified_addresses() {
        let c = map(
            json!({"sub": "1", "preferred_username": "jürgen", "groups": ["ünits", "admins"],
            "email": "j@x.org", "email_verified": true, "name": "Jürgen"}),
        );
        let i = identity(&c, "preferred_username", "groups").unwrap();
        assert_eq!(i.name, "jürgen");
        assert_eq!(i.groups, ["ünits", "admins"]);
        assert_eq!(i.emails, ["j@x.org"]);
        let unverified = map(json!({"preferred_username": "a", "email": "a@x.org"}));
        assert!(identity(&unverified, "preferred_username", "groups")
            .unwrap()
            .emails
            .is_empty());
    }

    #[test]
    fn wrong_types_are_errors() {
        for bad in [
            json!({"preferred_username": "a", "groups": "admins"}),
            json!({"preferred_username": "a", "groups": [1]}),
            json!({"preferred_username": 7}),
            json!({"preferred_username": "a\u{0}b"}),
            json!({}),
        ] {
            assert!(
                identity(&map(bad.clone()), "preferred_username", "groups").is_err(),
                "{bad}"
            );
        }
    }

    #[test]
    fn userinfo_of_another_subject_is_refused() {
        let mut c = map(json!({"sub": "1"}));
        assert!(merge_userinfo(&mut c, json!({"sub": "2", "groups": ["x"]})).is_err());
        assert!(merge_userinfo(&mut c, json!({"sub": 1})).is_err());
        merge_userinfo(&mut c, json!({"sub": "1", "groups": ["x"]})).unwrap();
        assert_eq!(c["groups"], json!(["x"]));
    }
}
