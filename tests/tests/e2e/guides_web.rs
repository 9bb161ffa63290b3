//! The reverse-proxy guide (`docs/web-proxies.md`): its nginx `auth_request` snippet, read from
//! the guide, run by Debian's nginx in front of a test application, driven with curl.

use postern_e2e::docs::adapted;
use postern_e2e::webproxy::{curl, NginxHttp};
use postern_e2e::*;

const PROVISION: &str = r#"
[[account]]
name = "staff"
type = "group"

[[account]]
name = "alice"
password = "alice-web-pw"
emails = ["alice@example.org"]
roles = "user"
memberOf = ["staff"]

[[account]]
name = "carol"
password = "carol-web-pw"
roles = "admin"
"#;

fn token(d: &Daemon, user: &str, password: &str) -> String {
    let r = d.login_until(std::time::Duration::from_secs(10), user, password, |r| {
        r.status == 200
    });
    assert_eq!(r.status, 200, "{user} cannot log in: {}", r.body);
    r.json()["token"].as_str().expect("token").to_string()
}

#[test]
fn nginx_auth_request_guide() {
    let d = Daemon::start(
        "[server]\nstate-dir = \"state\"\ntrusted-proxies = [\"127.0.0.1/32\"]\n\n\
         [[listener]]\nprotocol = \"http\"\nbind = \"127.0.0.1:0\"\n",
        &[],
    );
    d.apply(PROVISION);
    let alice = token(&d, "alice", "alice-web-pw");
    let carol = token(&d, "carol", "carol-web-pw");

    let (proxy, app) = (free_port(), free_port());
    let snippet = adapted(
        "web-proxies.md",
        "nginx-auth-request",
        &[
            ("127.0.0.1:8480", &d.addr("http")),
            ("127.0.0.1:8080", &format!("127.0.0.1:{app}")),
        ],
    );
    let nginx = NginxHttp::start(
        &format!(
            "server {{ listen 127.0.0.1:{proxy};\n{snippet}\n}}\n\
             server {{ listen 127.0.0.1:{app};\n\
               location / {{ return 200 \"app user=$http_remote_user email=$http_remote_email groups=$http_remote_groups roles=$http_remote_roles\\n\"; }}\n\
             }}\n"
        ),
        &[proxy, app],
    );
    let base = format!("http://127.0.0.1:{proxy}");
    let ctx = || format!("{}\n{}", nginx.error_log(), d.logs());

    // No session: a redirect to the login page, carrying where the browser was going.
    let r = curl(&[], &format!("{base}/hello?x=1"));
    assert_eq!(r.status, 302, "{r:?}\n{}", ctx());
    assert_eq!(
        r.header("location"),
        Some(
            format!(
                "https://app.example.org/login?rd=http%3A%2F%2F127.0.0.1%3A{proxy}%2Fhello%3Fx%3D1"
            )
            .as_str()
        ),
        "{r:?}"
    );
    // A forged Remote-User is no session.
    let r = curl(&["-H", "Remote-User: carol"], &format!("{base}/"));
    assert_eq!(r.status, 302, "{r:?}");

    // A login through the proxy sets the cookie the browser then sends to the application.
    let jar = d.dir.path().join("cookies.txt");
    let jar = jar.to_str().expect("utf-8");
    let r = curl(
        &[
            "-c",
            jar,
            "-H",
            "Content-Type: application/json",
            "--data",
            r#"{"username":"alice","password":"alice-web-pw"}"#,
        ],
        &format!("{base}/auth/login"),
    );
    assert_eq!(r.status, 200, "{r:?}\n{}", ctx());
    let r = curl(&["-b", jar], &format!("{base}/hello"));
    assert_eq!(r.status, 200, "{r:?}\n{}", ctx());
    assert_eq!(
        r.body.trim(),
        "app user=alice email=alice@example.org groups=staff roles=user",
        "{r:?}"
    );

    // A bearer works too, and the client's own Remote-* headers are replaced.
    let r = curl(
        &[
            "-H",
            &format!("Authorization: Bearer {alice}"),
            "-H",
            "Remote-User: carol",
            "-H",
            "Remote-Roles: admin",
        ],
        &format!("{base}/"),
    );
    assert_eq!(r.status, 200, "{r:?}");
    assert!(
        r.body.contains("user=alice ") && r.body.contains("roles=user"),
        "{r:?}"
    );

    // A POST to the application is guarded as well.
    let r = curl(
        &[
            "-X",
            "POST",
            "--data",
            "x=1",
            "-H",
            &format!("Authorization: Bearer {alice}"),
        ],
        &format!("{base}/form"),
    );
    assert_eq!(r.status, 200, "{r:?}\n{}", ctx());
    let r = curl(&["-X", "POST", "--data", "x=1"], &format!("{base}/form"));
    assert_eq!(r.status, 302, "{r:?}");

    // /admin/ requires settings-update: alice lacks it (403), carol (admin) has it.
    let bearer = |t: &str| format!("Authorization: Bearer {t}");
    let r = curl(&["-H", &bearer(&alice)], &format!("{base}/admin/"));
    assert_eq!(r.status, 403, "{r:?}\n{}", ctx());
    let r = curl(&["-H", &bearer(&carol)], &format!("{base}/admin/"));
    assert_eq!(r.status, 200, "{r:?}\n{}", ctx());
    assert!(r.body.starts_with("app user=carol "), "{r:?}");

    // A logout through the proxy ends the cookie's session there too.
    let r = curl(
        &["-b", jar, "-X", "DELETE"],
        &format!("{base}/auth/session"),
    );
    assert_eq!(r.status, 204, "{r:?}");
    let r = curl(&["-b", jar], &format!("{base}/hello"));
    assert_eq!(r.status, 302, "{r:?}");

    // Straight to the daemon: a typo in a permission is the proxy's configuration error.
    let r = curl(&[], &d.url("/auth/verify?permission=setings-update"));
    assert_eq!(r.status, 400, "{r:?}");
    assert!(r.body.contains("settings-update"), "the hint: {r:?}");
    let r = curl(&[], &d.url("/auth/verify"));
    assert_eq!((r.status, r.header("location")), (401, None), "{r:?}");

    let metrics = get(&d.url("/metrics"), None).body;
    for outcome in ["allowed", "unauthenticated", "forbidden", "bad_request"] {
        let counted = metrics.lines().any(|l| {
            l.starts_with(&format!(
                "postern_forward_auth_requests_total{{outcome=\"{outcome}\"}}"
            )) && !l.ends_with(" 0")
        });
        assert!(counted, "{outcome} not counted:\n{metrics}");
    }
}
