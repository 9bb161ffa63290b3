//! The management API, `/api/v1`, as curl would use it: an administrator manages every object
//! kind (the tenant administrator's view is in `api_tenant.rs`).

use std::time::Duration;

use postern_e2e::*;
use serde_json::json;

pub const ROOT_PW: &str = "Api-root-pw-5d21";
pub const TADMIN_PW: &str = "Api-tadmin-pw-8e02";
pub const USER_PW: &str = "Api-user-pw-1a9f";

fn config() -> String {
    r#"
[server]
state-dir = "state"

[store]
url = "sqlite://state/postern.db"

[[listener]]
protocol = "http"
bind = "127.0.0.1:0"
"#
    .to_string()
}

fn provisioning() -> String {
    format!(
        r#"
[[tenant]]
id = "acme"

[[tenant]]
id = "other"

[[account]]
name = "root"
password = "{ROOT_PW}"
roles = "admin"

[[account]]
name = "tadmin"
password = "{TADMIN_PW}"
tenant = "acme"
roles = "admin"

[[account]]
name = "plain"
password = "{USER_PW}"

[[account]]
name = "acme-staff"
type = "group"
tenant = "acme"

[[account]]
name = "other-staff"
type = "group"
tenant = "other"

[[account]]
name = "dave"
tenant = "other"
"#
    )
}

/// One request: method, path, bearer token, JSON body, extra headers.
pub fn call(
    d: &Daemon,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<&serde_json::Value>,
    headers: &[(&str, &str)],
) -> Reply {
    let mut req = ureq::request(method, &d.url(path)).timeout(Duration::from_secs(30));
    if let Some(t) = token {
        req = req.set("Authorization", &format!("Bearer {t}"));
    }
    for (k, v) in headers {
        req = req.set(k, v);
    }
    let r = match body {
        Some(b) => req
            .set("Content-Type", "application/json")
            .send_string(&b.to_string()),
        None => req.call(),
    };
    let resp = match r {
        Ok(r) => r,
        Err(ureq::Error::Status(_, r)) => r,
        Err(e) => panic!("{method} {path}: {e}"),
    };
    let status = resp.status();
    let headers = resp
        .headers_names()
        .into_iter()
        .filter_map(|n| resp.header(&n).map(|v| (n.clone(), v.to_string())))
        .collect();
    Reply {
        status,
        headers,
        body: resp.into_string().unwrap_or_default(),
    }
}

/// Every principal of the JMAP view, page by page, as (type, name).
pub fn jmap(d: &Daemon, token: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut path = "/api/v1/principals?view=jmap&limit=3".to_string();
    loop {
        let r = call(d, "GET", &path, Some(token), None, &[]);
        assert_eq!(r.status, 200, "{}", r.body);
        let page = r.json();
        for p in page["items"].as_array().unwrap() {
            out.push((
                p["type"].as_str().unwrap().to_string(),
                p["name"].as_str().unwrap().to_string(),
            ));
        }
        match page["next"].as_str() {
            Some(c) => path = format!("/api/v1/principals?view=jmap&limit=3&cursor={c}"),
            None => return out,
        }
    }
}

pub fn token(d: &Daemon, user: &str, password: &str) -> String {
    // The daemon sees `apply` within a second.
    let r = d.login_until(Duration::from_secs(5), user, password, |r| r.status == 200);
    assert_eq!(r.status, 200, "{}\n{}", r.body, d.logs());
    r.json()["token"].as_str().unwrap().to_string()
}

pub fn start() -> Daemon {
    let d = Daemon::start(&config(), &[]);
    d.apply(&provisioning());
    d
}

#[test]
fn an_administrator_manages_every_object_kind() {
    let d = start();
    let root = token(&d, "root", ROOT_PW);
    let t = Some(root.as_str());

    // Principals: create, read with its ETag, patch, list in pages.
    let r = call(
        &d,
        "POST",
        "/api/v1/principals",
        t,
        Some(
            &json!({"name": "alice", "password": "Alice-pw-0001", "emails": ["alice@example.org"]}),
        ),
        &[],
    );
    assert_eq!(r.status, 201, "{}", r.body);
    let etag = r.header("etag").unwrap().to_string();
    let r = call(&d, "GET", "/api/v1/principals/alice", t, None, &[]);
    assert_eq!(r.status, 200);
    assert_eq!(r.header("etag"), Some(etag.as_str()));
    assert_eq!(r.json()["emails"], json!(["alice@example.org"]));
    assert!(!r.body.contains("Alice-pw-0001") && !r.body.contains("argon2"));
    // The new password logs in.
    assert_eq!(
        login(&d.url("/auth/login"), "alice@example.org", "Alice-pw-0001").status,
        200
    );

    let patch = json!({"description": "Alice", "memberOf": ["acme-staff"]});
    let r = call(
        &d,
        "PATCH",
        "/api/v1/principals/alice",
        t,
        Some(&patch),
        &[("If-Match", "\"v999\"")],
    );
    assert_eq!(r.status, 412, "{}", r.body);
    let r = call(
        &d,
        "PATCH",
        "/api/v1/principals/alice",
        t,
        Some(&patch),
        &[("If-Match", &etag)],
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["description"], "Alice");
    assert_ne!(r.header("etag"), Some(etag.as_str()));
    // The same stale tag again: refused, nothing written.
    let r = call(
        &d,
        "PATCH",
        "/api/v1/principals/alice",
        t,
        Some(&json!({"description": "X"})),
        &[("If-Match", &etag)],
    );
    assert_eq!(r.status, 412);
    // `null` removes a field (merge patch).
    let r = call(
        &d,
        "PATCH",
        "/api/v1/principals/alice",
        t,
        Some(&json!({"memberOf": null})),
        &[],
    );
    assert_eq!(r.json()["memberOf"], json!([]), "{}", r.body);
    assert_eq!(r.json()["description"], "Alice");

    let mut names = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/api/v1/principals?type=individual&limit=2&cursor={c}"),
            None => "/api/v1/principals?type=individual&limit=2".into(),
        };
        let r = call(&d, "GET", &path, t, None, &[]);
        assert_eq!(r.status, 200, "{}", r.body);
        let page = r.json();
        names.extend(
            page["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v["name"].as_str().unwrap().to_string()),
        );
        match page["next"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => break,
        }
    }
    assert_eq!(names, ["admin", "alice", "dave", "plain", "root", "tadmin"]);

    // Bad input: the right status, a body naming the field, nothing written.
    let r = call(
        &d,
        "POST",
        "/api/v1/principals",
        t,
        Some(&json!({"name": "x1", "colour": "red"})),
        &[],
    );
    assert_eq!(r.status, 400);
    assert!(r.body.contains("colour"), "{}", r.body);
    let r = call(
        &d,
        "POST",
        "/api/v1/principals",
        t,
        Some(&json!({"name": "x2", "permissions": {"mode": "merge", "enabled": ["fly"]}})),
        &[],
    );
    assert_eq!(r.status, 422);
    assert!(
        r.body.contains("unknown permission \\\"fly\\\""),
        "{}",
        r.body
    );
    let r = call(
        &d,
        "POST",
        "/api/v1/principals",
        t,
        Some(&json!({"name": "x3", "roles": ["nope"]})),
        &[],
    );
    assert_eq!(r.status, 422);
    assert!(
        r.body.contains("role \\\"nope\\\" does not exist"),
        "{}",
        r.body
    );
    let r = call(
        &d,
        "POST",
        "/api/v1/principals",
        t,
        Some(&json!({"name": "alice@example.org"})),
        &[],
    );
    assert_eq!(r.status, 422, "{}", r.body);
    let r = call(
        &d,
        "POST",
        "/api/v1/principals",
        t,
        Some(&json!({"name": "x".repeat(10_000)})),
        &[],
    );
    assert_eq!(r.status, 422, "{}", r.body);
    let r = call(
        &d,
        "POST",
        "/api/v1/principals",
        t,
        Some(&json!({"name": "nul\u{0}"})),
        &[],
    );
    assert_eq!(r.status, 422, "{}", r.body);
    let big = json!({"name": "big", "description": "y".repeat(70_000)});
    assert_eq!(
        call(&d, "POST", "/api/v1/principals", t, Some(&big), &[]).status,
        413
    );
    let r = call(
        &d,
        "GET",
        "/api/v1/principals?type=individual&q=x",
        t,
        None,
        &[],
    );
    assert_eq!(r.json()["items"], json!([]), "nothing half-written");

    // Roles.
    let r = call(
        &d,
        "POST",
        "/api/v1/roles",
        t,
        Some(
            &json!({"id": "helpdesk", "roleIds": ["user"], "enabledPermissions": ["individual-get"]}),
        ),
        &[],
    );
    assert_eq!(r.status, 201, "{}", r.body);
    let r = call(
        &d,
        "PATCH",
        "/api/v1/roles/helpdesk",
        t,
        Some(&json!({"description": "Help"})),
        &[],
    );
    assert_eq!(r.json()["description"], "Help");
    assert_eq!(
        call(&d, "GET", "/api/v1/roles", t, None, &[]).json()["items"][0]["id"],
        "helpdesk"
    );
    let r = call(
        &d,
        "PATCH",
        "/api/v1/principals/alice",
        t,
        Some(&json!({"roles": ["helpdesk"]})),
        &[],
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let r = call(&d, "DELETE", "/api/v1/roles/helpdesk", t, None, &[]);
    assert_eq!(r.status, 409);
    assert!(r.body.contains("alice"), "{}", r.body);

    // Effective permissions and their explanation.
    let r = call(
        &d,
        "GET",
        "/api/v1/principals/alice/permissions",
        t,
        None,
        &[],
    );
    let perms = strings(&r.json()["permissions"]);
    assert!(perms.contains(&"individual-get".to_string()) && perms.windows(2).all(|w| w[0] < w[1]));
    let r = call(
        &d,
        "GET",
        "/api/v1/principals/alice/permissions?explain=individual-get",
        t,
        None,
        &[],
    );
    assert_eq!(r.json()["granted"], true, "{}", r.body);
    assert!(r.json()["steps"]
        .as_array()
        .unwrap()
        .iter()
        .any(|s| s.as_str().unwrap().contains("helpdesk")));

    // Tenants.
    assert_eq!(
        call(
            &d,
            "POST",
            "/api/v1/tenants",
            t,
            Some(&json!({"id": "globex"})),
            &[]
        )
        .status,
        201
    );
    let r = call(
        &d,
        "PATCH",
        "/api/v1/tenants/globex",
        t,
        Some(&json!({"description": "Globex"})),
        &[],
    );
    assert_eq!(r.json()["description"], "Globex");
    let r = call(&d, "DELETE", "/api/v1/tenants/acme", t, None, &[]);
    assert_eq!(r.status, 409, "{}", r.body);
    assert_eq!(
        call(&d, "DELETE", "/api/v1/tenants/globex", t, None, &[]).status,
        204
    );
    assert_eq!(
        call(&d, "GET", "/api/v1/tenants/globex", t, None, &[]).status,
        404
    );

    // OAuth clients.
    let r = call(
        &d,
        "POST",
        "/api/v1/oauth-clients",
        t,
        Some(
            &json!({"clientId": "webmail", "redirectUris": ["https://mail.example.org/cb"], "secret": "{PLAIN}s3cret"}),
        ),
        &[],
    );
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(r.json()["confidential"], true);
    assert!(!r.body.contains("s3cret"));
    let r = call(
        &d,
        "PATCH",
        "/api/v1/oauth-clients/webmail",
        t,
        Some(&json!({"description": "Webmail"})),
        &[],
    );
    assert_eq!(
        r.json()["confidential"],
        true,
        "a patch keeps the secret: {}",
        r.body
    );
    assert_eq!(
        call(&d, "DELETE", "/api/v1/oauth-clients/webmail", t, None, &[]).status,
        204
    );

    // The authentication defaults.
    let r = call(&d, "GET", "/api/v1/settings/authentication", t, None, &[]);
    assert_eq!(r.json()["defaultUserRoleIds"], json!(["user"]));
    let mut defaults = r.json();
    defaults.as_object_mut().unwrap().remove("version");
    defaults["defaultGroupRoleIds"] = json!(["user"]);
    let tag = r.header("etag").unwrap().to_string();
    let r = call(
        &d,
        "PUT",
        "/api/v1/settings/authentication",
        t,
        Some(&defaults),
        &[("If-Match", &tag)],
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["defaultGroupRoleIds"], json!(["user"]));

    // API keys and app passwords: the secret once, then never.
    let r = call(
        &d,
        "POST",
        "/api/v1/principals/alice/api-keys",
        t,
        Some(&json!({"description": "ci"})),
        &[],
    );
    assert_eq!(r.status, 201, "{}", r.body);
    let key = r.json()["secret"].as_str().unwrap().to_string();
    let id = r.json()["id"].as_str().unwrap().to_string();
    // Every daemon sees the role written above within a second.
    within(Duration::from_secs(3), "the key to work", || {
        get(&d.url("/auth/session"), Some(&key)).status == 200
    });
    let r = get(&d.url("/auth/session"), Some(&key));
    assert_eq!(r.json()["principal"]["name"], "alice", "{}", r.body);
    let r = call(&d, "GET", "/api/v1/principals/alice/api-keys", t, None, &[]);
    assert_eq!(r.json()["items"][0]["id"], id.as_str());
    assert!(!r.body.contains(&key));
    assert_eq!(
        call(
            &d,
            "DELETE",
            &format!("/api/v1/principals/alice/api-keys/{id}"),
            t,
            None,
            &[]
        )
        .status,
        204
    );
    assert_eq!(get(&d.url("/auth/session"), Some(&key)).status, 401);
    let r = call(
        &d,
        "POST",
        "/api/v1/principals/alice/app-passwords",
        t,
        Some(&json!({})),
        &[],
    );
    assert_eq!(r.status, 201, "{}", r.body);
    let app = r.json()["secret"].as_str().unwrap().to_string();
    assert_eq!(login(&d.url("/auth/login"), "alice", &app).status, 200);
    let id = r.json()["id"].as_str().unwrap().to_string();
    assert_eq!(
        call(
            &d,
            "DELETE",
            &format!("/api/v1/principals/alice/app-passwords/{id}"),
            t,
            None,
            &[]
        )
        .status,
        204
    );

    // An API key authenticates to the API as its owner.
    let r = call(
        &d,
        "POST",
        "/api/v1/principals/root/api-keys",
        t,
        Some(&json!({})),
        &[],
    );
    let root_key = r.json()["secret"].as_str().unwrap().to_string();
    assert_eq!(
        call(
            &d,
            "GET",
            "/api/v1/principals/alice",
            Some(&root_key),
            None,
            &[]
        )
        .status,
        200
    );

    // Finally delete, with the current ETag.
    let tag = call(&d, "GET", "/api/v1/principals/alice", t, None, &[])
        .header("etag")
        .unwrap()
        .to_string();
    assert_eq!(
        call(
            &d,
            "DELETE",
            "/api/v1/principals/alice",
            t,
            None,
            &[("If-Match", &tag)]
        )
        .status,
        204
    );
    assert_eq!(
        call(&d, "GET", "/api/v1/principals/alice", t, None, &[]).status,
        404
    );

    // No token, a bad one, a cookie without the CSRF header, a user without permissions.
    assert_eq!(
        call(&d, "GET", "/api/v1/principals", None, None, &[]).status,
        401
    );
    assert_eq!(
        call(&d, "GET", "/api/v1/principals", Some("pst_nope"), None, &[]).status,
        401
    );
    let cookie = format!("postern_session={root}");
    let r = call(
        &d,
        "DELETE",
        "/api/v1/principals/plain",
        None,
        None,
        &[("Cookie", &cookie)],
    );
    assert_eq!(r.status, 403, "{}", r.body);
    assert_eq!(
        call(
            &d,
            "GET",
            "/api/v1/principals/plain",
            None,
            None,
            &[("Cookie", &cookie)]
        )
        .status,
        200
    );
    let user = token(&d, "plain", USER_PW);
    let r = call(&d, "GET", "/api/v1/principals", Some(&user), None, &[]);
    assert_eq!(r.status, 403);
    assert_eq!(r.json()["error"], "forbidden");
    assert!(r.body.contains("individual-list"), "{}", r.body);

    // The audit log names who did what to which object, never a secret.
    let logs = d.logs();
    assert!(logs.contains("management change"), "{logs}");
    assert!(!logs.contains("Alice-pw-0001") && !logs.contains(&key));

    // The JMAP Sharing view: accounts, then tenants and roles as `other`.
    let all = jmap(&d, &root);
    assert!(
        all.contains(&("individual".into(), "plain".into())),
        "{all:?}"
    );
    assert!(
        all.contains(&("group".into(), "acme-staff".into())),
        "{all:?}"
    );
    assert!(all.contains(&("other".into(), "acme".into())), "{all:?}");
    assert!(
        all.contains(&("other".into(), "helpdesk".into())),
        "{all:?}"
    );

    // Counted by resource, method and status, with durations.
    let metrics = get(&d.url("/metrics"), None).body;
    let counted = |resource: &str, method: &str, status: &str| {
        metrics.lines().any(|l| {
            l.starts_with("postern_api_requests_total{")
                && l.contains(&format!("resource=\"{resource}\""))
                && l.contains(&format!("method=\"{method}\""))
                && l.contains(&format!("status=\"{status}\""))
        })
    };
    assert!(counted("principals", "POST", "201"), "{metrics}");
    assert!(counted("principals", "PATCH", "412"), "{metrics}");
    assert!(counted("api-keys", "DELETE", "204"), "{metrics}");
    assert!(metrics.contains("postern_api_request_duration_seconds_bucket{"));

    // The document is served.
    let doc = call(&d, "GET", "/api/v1/openapi.json", None, None, &[]).json();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"));
    assert!(doc["paths"]["/api/v1/principals/{name}/api-keys/{id}"]["delete"].is_object());
    assert!(doc["components"]["securitySchemes"]["bearer"].is_object());
}

#[test]
fn concurrent_patches_of_one_object_let_one_win() {
    let d = start();
    let root = token(&d, "root", ROOT_PW);
    let r = call(&d, "GET", "/api/v1/principals/dave", Some(&root), None, &[]);
    let tag = r.header("etag").unwrap().to_string();
    let statuses: Vec<u16> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..6)
            .map(|i| {
                let (d, root, tag) = (&d, &root, &tag);
                s.spawn(move || {
                    let body = json!({ "description": format!("writer {i}") });
                    call(
                        d,
                        "PATCH",
                        "/api/v1/principals/dave",
                        Some(root),
                        Some(&body),
                        &[("If-Match", tag)],
                    )
                    .status
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(
        statuses.iter().filter(|s| **s == 200).count(),
        1,
        "{statuses:?}"
    );
    assert!(
        statuses.iter().all(|s| *s == 200 || *s == 412),
        "{statuses:?}"
    );
    // Malformed JSON and a wrong type: 400, and the daemon answers on.
    let r = reply_of(
        ureq::post(&d.url("/api/v1/roles"))
            .set("Authorization", &format!("Bearer {root}"))
            .set("Content-Type", "application/json")
            .send_string("{\"id\": "),
    );
    assert_eq!(r, 400);
    let r = call(
        &d,
        "POST",
        "/api/v1/roles",
        Some(&root),
        Some(&json!({"id": 7})),
        &[],
    );
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(
        r.json()["message"].as_str().unwrap().starts_with("id: "),
        "{}",
        r.body
    );
    let bad = json!({"name": "x", "permissions": {"mode": "sideways"}});
    let r = call(
        &d,
        "POST",
        "/api/v1/principals",
        Some(&root),
        Some(&bad),
        &[],
    );
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(r.body.contains("permissions.mode: "), "{}", r.body);
    assert_eq!(get(&d.url("/healthz"), None).status, 200);
}

fn reply_of(r: Result<ureq::Response, ureq::Error>) -> u16 {
    match r {
        Ok(r) => r.status(),
        Err(ureq::Error::Status(s, _)) => s,
        Err(e) => panic!("{e}"),
    }
}
