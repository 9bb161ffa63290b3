//! The management API for a tenant administrator (issue 14): only their tenant's objects, no
//! grant beyond what they hold, no tenants nor authentication defaults.

use serde_json::json;

use super::api::{call, jmap, start, token, TADMIN_PW};

#[test]
fn a_tenant_administrator_stays_inside_their_tenant() {
    let d = start();
    let ta = token(&d, "tadmin", TADMIN_PW);
    let t = Some(ta.as_str());

    let r = call(&d, "GET", "/api/v1/principals", t, None, &[]);
    assert_eq!(r.status, 200, "{}", r.body);
    let names: Vec<_> = r.json()["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(names, ["acme-staff", "tadmin"]);
    let r = call(&d, "GET", "/api/v1/principals?tenant=other", t, None, &[]);
    assert_eq!(r.json()["items"], json!([]));
    // Other tenants' objects are absent to them.
    assert_eq!(
        call(&d, "GET", "/api/v1/principals/dave", t, None, &[]).status,
        404
    );
    assert_eq!(
        call(&d, "GET", "/api/v1/principals/root", t, None, &[]).status,
        404
    );
    assert_eq!(
        call(
            &d,
            "PATCH",
            "/api/v1/principals/dave",
            t,
            Some(&json!({"description": "x"})),
            &[]
        )
        .status,
        404
    );
    assert_eq!(
        call(&d, "DELETE", "/api/v1/principals/dave", t, None, &[]).status,
        404
    );

    // What they create is in their tenant.
    let r = call(
        &d,
        "POST",
        "/api/v1/principals",
        t,
        Some(&json!({"name": "erin", "password": "Erin-pw-0001", "memberOf": ["acme-staff"]})),
        &[],
    );
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(r.json()["tenant"], "acme");
    let r = call(
        &d,
        "POST",
        "/api/v1/principals",
        t,
        Some(&json!({"name": "fred", "tenant": "other"})),
        &[],
    );
    assert_eq!(r.status, 403, "{}", r.body);
    let r = call(
        &d,
        "POST",
        "/api/v1/principals",
        t,
        Some(&json!({"name": "gus", "memberOf": ["other-staff"]})),
        &[],
    );
    assert_eq!(r.status, 422, "{}", r.body);
    assert!(r.body.contains("memberOf"), "{}", r.body);
    // No more than they hold.
    let r = call(
        &d,
        "POST",
        "/api/v1/principals",
        t,
        Some(&json!({"name": "hal", "permissions": {"mode": "merge", "enabled": ["impersonate"]}})),
        &[],
    );
    assert_eq!(r.status, 403, "{}", r.body);
    assert!(r.body.contains("impersonate"), "{}", r.body);
    let r = call(
        &d,
        "POST",
        "/api/v1/roles",
        t,
        Some(&json!({"id": "mega", "roleIds": ["admin"]})),
        &[],
    );
    assert_eq!(r.status, 403, "{}", r.body);
    let r = call(
        &d,
        "POST",
        "/api/v1/roles",
        t,
        Some(&json!({"id": "acme-help", "enabledPermissions": ["individual-get"]})),
        &[],
    );
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(r.json()["memberTenantId"], "acme");
    for path in [
        "/api/v1/principals/erin",
        "/api/v1/principals/hal",
        "/api/v1/principals/gus",
        "/api/v1/principals/fred",
    ] {
        let expected = if path.ends_with("erin") { 200 } else { 404 };
        assert_eq!(
            call(&d, "GET", path, t, None, &[]).status,
            expected,
            "{path}"
        );
    }
    // Tenants and the defaults are not theirs to touch.
    assert_eq!(
        call(
            &d,
            "POST",
            "/api/v1/tenants",
            t,
            Some(&json!({"id": "mine"})),
            &[]
        )
        .status,
        403
    );
    assert_eq!(
        call(&d, "GET", "/api/v1/settings/authentication", t, None, &[]).status,
        403
    );
    // Their own keys are minted within their reach; another tenant's principal is absent.
    assert_eq!(
        call(
            &d,
            "POST",
            "/api/v1/principals/erin/api-keys",
            t,
            Some(&json!({})),
            &[]
        )
        .status,
        201
    );
    assert_eq!(
        call(
            &d,
            "POST",
            "/api/v1/principals/dave/api-keys",
            t,
            Some(&json!({})),
            &[]
        )
        .status,
        404
    );
    let r = call(
        &d,
        "PATCH",
        "/api/v1/principals/erin",
        t,
        Some(&json!({"tenant": "other"})),
        &[],
    );
    assert_eq!(r.status, 403, "{}", r.body);
    let all = jmap(&d, &ta);
    assert!(
        all.iter()
            .any(|(kind, name)| kind == "individual" && name == "erin"),
        "{all:?}"
    );
    // Their tenant's role is an `other` principal; nothing of another tenant shows.
    assert!(
        all.iter()
            .any(|(kind, name)| kind == "other" && name == "acme-help"),
        "{all:?}"
    );
    assert!(
        !all.iter()
            .any(|(_, name)| name == "dave" || name == "other"),
        "{all:?}"
    );
}
