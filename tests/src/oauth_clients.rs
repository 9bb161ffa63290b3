//! Postern as an OAuth server under test: a daemon whose `public-url` is its real address
//! (the issuer clients check), form posts with client authentication, a browserless code
//! flow, and the certified client libraries the tests drive it with: `openid-client` and
//! `playwright-core` (npm) and Authlib (PyPI), installed at pinned versions under `target/`
//! by the first test that needs them.

use std::path::PathBuf;
use std::process::{Command, Output};
use std::time::Duration;

use crate::{base64, free_port, root, Daemon, Reply};

/// Pinned client libraries.
pub const OPENID_CLIENT: &str = "6.8.1";
pub const PLAYWRIGHT_CORE: &str = "1.49.1";
pub const AUTHLIB: &str = "1.6.5";
pub const REQUESTS: &str = "2.32.3";

/// `alice` (user role, one email), `bob`, and the clients every OAuth test uses.
pub const PROVISION: &str = r#"
[[role]]
id = "svc"
enabledPermissions = ["authenticate", "email-send"]

[[role]]
id = "helpdesk"
roleIds = ["user"]
enabledPermissions = ["principal-list"]

[[account]]
name = "alice"
password = "alice-pw-1"
emails = ["alice@example.org"]

[[account]]
name = "bob"
password = "bob-pw-1"

[[oauth-client]]
clientId = "svc"
secret = "{PLAIN}svc-secret"
grantTypes = ["client_credentials"]
roles = ["svc"]

[[oauth-client]]
clientId = "web"
secret = "{PLAIN}web-secret"
redirectUris = ["http://127.0.0.1:9/cb", "http://127.0.0.1/native"]
firstParty = true

[[oauth-client]]
clientId = "thirdparty"
secret = "{PLAIN}tp-secret"
redirectUris = ["http://127.0.0.1:9/tp"]

[[oauth-client]]
clientId = "native"
type = "public"
redirectUris = ["http://127.0.0.1/native"]
firstParty = true
"#;

pub struct OAuthDaemon {
    pub daemon: Daemon,
    pub issuer: String,
}

/// The configuration of a daemon at `port` on the store `store_url` (none: its own SQLite).
pub fn config(port: u16, store_url: Option<&str>, extra: &str) -> String {
    let store = store_url
        .map(|u| format!("[store]\nurl = \"{u}\"\n"))
        .unwrap_or_default();
    format!(
        r#"
[server]
state-dir = "state"
public-url = "http://127.0.0.1:{port}"
trusted-proxies = ["127.0.0.1/32"]
{store}
[[listener]]
protocol = "http"
bind = "127.0.0.1:{port}"
{extra}
"#
    )
}

impl OAuthDaemon {
    /// A daemon with [`PROVISION`] applied; `extra` adds listeners or sections.
    pub fn start(store_url: Option<&str>, extra: &str) -> OAuthDaemon {
        let port = free_port();
        let daemon = Daemon::start(&config(port, store_url, extra), &[]);
        daemon.apply(PROVISION);
        let d = OAuthDaemon {
            daemon,
            issuer: format!("http://127.0.0.1:{port}"),
        };
        // Provisioning reaches the running daemon within a second.
        crate::within(Duration::from_secs(10), "provisioned clients", || {
            d.client_credentials("svc", "svc-secret", "").status == 200
        });
        d
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.issuer)
    }

    /// `POST` a form to `path`, with `client_secret_basic` when `basic` is given.
    pub fn form(&self, path: &str, basic: Option<(&str, &str)>, fields: &[(&str, &str)]) -> Reply {
        form(&self.url(path), basic, fields, None)
    }

    pub fn client_credentials(&self, id: &str, secret: &str, scope: &str) -> Reply {
        self.form(
            "/oauth/token",
            Some((id, secret)),
            &[("grant_type", "client_credentials"), ("scope", scope)],
        )
    }

    pub fn introspect(&self, token: &str) -> serde_json::Value {
        let r = self.form(
            "/oauth/introspect",
            Some(("svc", "svc-secret")),
            &[("token", token)],
        );
        assert_eq!(r.status, 200, "{}", r.body);
        r.json()
    }
}

fn urlencode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

pub fn encode_form(fields: &[(&str, &str)]) -> String {
    fields
        .iter()
        .map(|(k, v)| format!("{}={}", urlencode(k), urlencode(v)))
        .collect::<Vec<_>>()
        .join("&")
}

fn agent() -> ureq::Agent {
    ureq::AgentBuilder::new()
        .redirects(0)
        .timeout(Duration::from_secs(30))
        .build()
}

/// A form post that does not follow redirects; `cookie` is sent as `Cookie`.
pub fn form(
    url: &str,
    basic: Option<(&str, &str)>,
    fields: &[(&str, &str)],
    cookie: Option<&str>,
) -> Reply {
    let mut req = agent()
        .post(url)
        .set("Content-Type", "application/x-www-form-urlencoded");
    if let Some((id, secret)) = basic {
        let pair = format!("{}:{}", urlencode(id), urlencode(secret));
        req = req.set(
            "Authorization",
            &format!("Basic {}", base64(pair.as_bytes())),
        );
    }
    if let Some(c) = cookie {
        req = req.set("Cookie", c);
    }
    crate::reply_of(req.send_string(&encode_form(fields)))
}

/// A GET that does not follow redirects.
pub fn get_raw(url: &str, cookie: Option<&str>) -> Reply {
    let mut req = agent().get(url);
    if let Some(c) = cookie {
        req = req.set("Cookie", c);
    }
    crate::reply_of(req.call())
}

/// RFC 7636 appendix B: a verifier and its S256 challenge.
pub const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
pub const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

/// The value of `name` in a URL's query (undecoded, enough for our own tokens).
pub fn query_param(url: &str, name: &str) -> Option<String> {
    let query = url.split_once('?')?.1;
    query
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_string())
}

/// The value of a hidden input in a page.
pub fn hidden_value(page: &str, name: &str) -> Option<String> {
    let marker = format!("name=\"{name}\" value=\"");
    let start = page.find(&marker)? + marker.len();
    let end = page[start..].find('"')? + start;
    Some(page[start..end].to_string())
}

/// The `name=value` of each `Set-Cookie` of a reply.
pub fn cookies(r: &Reply) -> Vec<String> {
    r.headers
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case("set-cookie"))
        .filter_map(|(_, v)| v.split(';').next().map(str::to_string))
        .collect()
}

impl OAuthDaemon {
    /// The authorization request's query for `client` at `redirect`.
    pub fn authorize_query(
        client: &str,
        redirect: &str,
        scope: &str,
        state: &str,
    ) -> Vec<(String, String)> {
        [
            ("client_id", client),
            ("redirect_uri", redirect),
            ("response_type", "code"),
            ("scope", scope),
            ("state", state),
            ("code_challenge", CHALLENGE),
            ("code_challenge_method", "S256"),
            ("nonce", "n-0S6_WzA2Mj"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
    }

    /// Logs `user` in on the login page for `client` and returns the code of the redirect.
    pub fn code_for(
        &self,
        client: &str,
        redirect: &str,
        scope: &str,
        user: &str,
        pw: &str,
    ) -> String {
        let q = Self::authorize_query(client, redirect, scope, "st-1");
        let pairs: Vec<(&str, &str)> = q.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let page = get_raw(
            &format!("{}?{}", self.url("/oauth/authorize"), encode_form(&pairs)),
            None,
        );
        assert_eq!(page.status, 200, "{}", page.body);
        let csrf = hidden_value(&page.body, "csrf").expect("csrf field");
        let jar = cookies(&page).join("; ");
        let mut fields = pairs.clone();
        fields.extend([
            ("csrf", csrf.as_str()),
            ("username", user),
            ("password", pw),
        ]);
        let r = form(&self.url("/oauth/authorize"), None, &fields, Some(&jar));
        assert_eq!(r.status, 303, "{}", r.body);
        let location = r.header("location").expect("Location").to_string();
        assert!(location.starts_with(redirect), "{location}");
        query_param(&location, "code").expect("code")
    }

    pub fn exchange(
        &self,
        client: (&str, &str),
        code: &str,
        redirect: &str,
        verifier: &str,
    ) -> Reply {
        self.form(
            "/oauth/token",
            Some(client),
            &[
                ("grant_type", "authorization_code"),
                ("code", code),
                ("redirect_uri", redirect),
                ("code_verifier", verifier),
            ],
        )
    }
}

/// `target/oauth-clients`: node_modules with the pinned npm packages and a venv with Authlib,
/// installed when missing (npm and PyPI through their ordinary clients).
pub fn clients_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("target"));
    target.join("oauth-clients")
}

fn run_ok(cmd: &mut Command) -> Output {
    crate::run(cmd)
}

/// The directory holding `node_modules` with openid-client and playwright-core.
pub fn node_env() -> PathBuf {
    let dir = clients_dir().join("node");
    let stamp = dir.join(format!("installed-{OPENID_CLIENT}-{PLAYWRIGHT_CORE}"));
    if !stamp.exists() {
        std::fs::create_dir_all(&dir).expect("mkdir node env");
        std::fs::write(
            dir.join("package.json"),
            format!(
                r#"{{"name":"postern-oauth-tests","private":true,"type":"module","dependencies":{{"openid-client":"{OPENID_CLIENT}","playwright-core":"{PLAYWRIGHT_CORE}"}}}}"#
            ),
        )
        .expect("write package.json");
        run_ok(
            Command::new("npm")
                .args(["install", "--no-audit", "--no-fund", "--ignore-scripts"])
                .current_dir(&dir),
        );
        std::fs::write(&stamp, "").expect("stamp");
    }
    dir
}

/// The venv's python with Authlib and requests.
pub fn python_env() -> PathBuf {
    let dir = clients_dir().join("venv");
    let python = dir.join("bin/python");
    let stamp = dir.join(format!("installed-{AUTHLIB}-{REQUESTS}"));
    if !stamp.exists() {
        run_ok(Command::new("python3").args(["-m", "venv"]).arg(&dir));
        run_ok(Command::new(&python).args([
            "-m",
            "pip",
            "install",
            "--quiet",
            &format!("Authlib=={AUTHLIB}"),
            &format!("requests=={REQUESTS}"),
        ]));
        std::fs::write(&stamp, "").expect("stamp");
    }
    python
}

/// A fixture script of `tests/fixtures/oauth/`.
pub fn fixture(name: &str) -> PathBuf {
    root().join("tests/fixtures/oauth").join(name)
}

/// Runs `node SCRIPT` with the test's environment; its last stdout line is JSON.
pub fn node(script: &str, env: &[(&str, &str)]) -> serde_json::Value {
    let dir = node_env();
    // ESM resolves bare imports from the script's own directory: the script runs from a copy
    // beside node_modules.
    let copy = dir.join(script);
    std::fs::copy(fixture(script), &copy).expect("copy the fixture script");
    let mut cmd = Command::new("node");
    cmd.arg(&copy);
    for (k, v) in env {
        cmd.env(k, v);
    }
    last_json(&run_ok(&mut cmd))
}

pub fn python(script: &str, env: &[(&str, &str)]) -> serde_json::Value {
    let mut cmd = Command::new(python_env());
    cmd.arg(fixture(script));
    for (k, v) in env {
        cmd.env(k, v);
    }
    last_json(&run_ok(&mut cmd))
}

fn last_json(out: &Output) -> serde_json::Value {
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text.lines().last().unwrap_or_default();
    serde_json::from_str(line).unwrap_or_else(|e| {
        panic!(
            "script output is not JSON ({e}): {text}\n{}",
            String::from_utf8_lossy(&out.stderr)
        )
    })
}
