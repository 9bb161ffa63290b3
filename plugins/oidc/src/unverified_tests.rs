//! What the `jwt` fuzz target checks, run as property tests: no token's bytes make the
//! unverified checks panic, and claims of the wrong type are refused, never accepted.

use base64::Engine as _;
use proptest::prelude::*;
use serde_json::{json, Value};

use super::check_unverified;

const NOW: i64 = 1_790_000_000;

fn token(payload: &Value) -> String {
    let b64 = |v: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v);
    format!(
        "{}.{}.{}",
        b64(br#"{"alg":"RS256","kid":"k"}"#),
        b64(payload.to_string().as_bytes()),
        b64(b"sig")
    )
}

fn good() -> Value {
    json!({"iss": "https://id.example.org", "sub": "248289761001", "aud": "postern",
           "exp": NOW + 300, "iat": NOW - 10, "nonce": "n", "preferred_username": "jörg",
           "groups": ["admins", "staff"]})
}

/// Any JSON value: nested, with strings, numbers, booleans and nulls.
fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<f64>().prop_map(|f| json!(f)),
        ".{0,40}".prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 32, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(".{0,12}", inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

#[test]
fn a_well_formed_token_passes_and_wrong_types_are_refused() {
    assert_eq!(check_unverified(&token(&good()), NOW), Ok(()));
    for (claim, bad) in [
        ("groups", json!("admins")),
        ("sub", json!(248289761001_i64)),
        ("exp", json!("tomorrow")),
        ("aud", json!({"x": 1})),
        ("preferred_username", json!(["a"])),
        ("iss", json!(null)),
    ] {
        let mut v = good();
        v[claim] = bad;
        assert!(
            check_unverified(&token(&v), NOW).is_err(),
            "{claim} accepted"
        );
    }
}

proptest! {
    #[test]
    fn arbitrary_strings_never_panic(s in ".{0,300}") {
        let _ = check_unverified(&s, NOW);
    }

    #[test]
    fn arbitrary_claims_never_panic(
        payload in any_json(),
        claim in prop::sample::select(vec!["iss", "sub", "aud", "exp", "iat", "nbf", "azp",
                                            "nonce", "groups", "preferred_username", "email"]),
        value in any_json(),
    ) {
        let _ = check_unverified(&token(&payload), NOW);
        let mut v = good();
        v[claim] = value;
        let _ = check_unverified(&token(&v), NOW);
    }
}
