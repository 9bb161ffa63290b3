//! A private OpenID provider (npm `oidc-provider`, pinned in
//! `tests/fixtures/oidc-provider/package.json`) on a free loopback port, and a browser with a
//! cookie jar that drives its login form. `npm ci` runs once when `node_modules` is missing.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{mpsc, Mutex};
use std::time::Duration;

use crate::{root, run, Reply};

/// The `postern` client's secret: `:`, `%` and `+` must survive client_secret_basic's
/// form-encoding (RFC 6749 §2.3.1).
pub const CLIENT_SECRET: &str = "postern-test-secret:%+x";
/// The resource whose access tokens are JWTs (RFC 9068).
pub const RESOURCE: &str = "urn:postern:mail";
/// Where tokens the test itself asks for are sent (never followed).
pub const TEST_REDIRECT: &str = "http://127.0.0.1/test-callback";

static INSTALL: Mutex<()> = Mutex::new(());

fn fixture() -> PathBuf {
    root().join("tests/fixtures/oidc-provider")
}

/// `npm ci` in the fixture when its `node_modules` is missing (once per test binary).
fn ensure_installed() {
    let _guard = INSTALL.lock().unwrap_or_else(|p| p.into_inner());
    if fixture()
        .join("node_modules/oidc-provider/package.json")
        .exists()
    {
        return;
    }
    run(Command::new("npm")
        .args(["ci", "--no-audit", "--no-fund"])
        .current_dir(fixture()));
}

pub struct OidcProvider {
    child: Option<Child>,
    dir: tempfile::TempDir,
    pub port: u16,
    redirect_uris: String,
}

impl OidcProvider {
    /// Starts the provider; `redirect_uris` are registered for the `postern` client.
    pub fn start(redirect_uris: &[&str]) -> OidcProvider {
        ensure_installed();
        let mut p = OidcProvider {
            child: None,
            dir: tempfile::tempdir().expect("tempdir"),
            port: crate::free_port(),
            redirect_uris: redirect_uris.join(" "),
        };
        p.spawn(&[]);
        p
    }

    fn spawn(&mut self, env: &[(&str, &str)]) {
        let log = self.dir.path().join("provider.log");
        let mut cmd = Command::new("node");
        cmd.arg(fixture().join("provider.mjs"))
            .current_dir(fixture())
            .env("PORT", self.port.to_string())
            .env("KEYS", self.dir.path().join("keys.json"))
            .env("REDIRECT_URIS", &self.redirect_uris)
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).expect("log"));
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("spawn node (is Node.js installed?)");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let _ = tx.send(line);
            }
        });
        match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(line) if line.starts_with("listening ") => {}
            other => {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "oidc-provider did not start ({other:?}):\n{}",
                    std::fs::read_to_string(&log).unwrap_or_default()
                );
            }
        }
        self.child = Some(child);
    }

    pub fn issuer(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Stops the provider (its in-memory tokens and sessions are gone with it).
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts it again on the same port with the same keys, and `env` (`ROTATE=1`: a new
    /// signing key first, the old one still published; `DROP_OLD=1`: only the newest).
    pub fn restart(&mut self, env: &[(&str, &str)]) {
        self.stop();
        self.spawn(env);
    }

    /// A token no honest provider signs: `expired`, `foreign` (another key, a real kid),
    /// `none`, `hs256` (with the client secret), `wrong-aud`, or `valid`.
    pub fn forge(&self, kind: &str, aud: Option<&str>) -> String {
        let mut url = format!("{}/test/forge?kind={kind}", self.issuer());
        if let Some(a) = aud {
            url.push_str(&format!("&aud={a}"));
        }
        let r = crate::get(&url, None);
        assert_eq!(r.status, 200, "forge {kind}: {}", r.body);
        r.body
    }

    /// Tokens for `user` through the real authorization code flow with PKCE, as client
    /// `client_id` (redirected to [`TEST_REDIRECT`]), for `resource` when given (a JWT
    /// access token then).
    pub fn tokens(
        &self,
        client_id: &str,
        secret: &str,
        user: &str,
        resource: Option<&str>,
    ) -> serde_json::Value {
        let verifier = "test-verifier-0123456789-abcdefghijklmnopqrstuvwxyz";
        let challenge = {
            use base64::Engine as _;
            use sha2::Digest;
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .encode(sha2::Sha256::digest(verifier.as_bytes()))
        };
        let scope = if resource.is_some() {
            "openid profile email groups mail"
        } else {
            "openid profile email groups"
        };
        let mut params = vec![
            ("response_type", "code"),
            ("client_id", client_id),
            ("redirect_uri", TEST_REDIRECT),
            ("scope", scope),
            ("state", "test-state"),
            ("nonce", "test-nonce"),
            ("code_challenge", &challenge),
            ("code_challenge_method", "S256"),
        ];
        if let Some(r) = resource {
            params.push(("resource", r));
        }
        let url = format!("{}/auth?{}", self.issuer(), form(&params));
        let mut b = Browser::default();
        let back = b.provider_login(&url, &self.issuer(), user);
        let code = query_param(&back, "code").unwrap_or_else(|| panic!("no code in {back}"));
        let mut form_params = vec![
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", TEST_REDIRECT),
            ("code_verifier", verifier),
        ];
        if let Some(r) = resource {
            form_params.push(("resource", r));
        }
        let basic = {
            use base64::Engine as _;
            let enc = |s: &str| form(&[("", s)])[1..].to_string();
            base64::engine::general_purpose::STANDARD.encode(format!(
                "{}:{}",
                enc(client_id),
                enc(secret)
            ))
        };
        let r = ureq::post(&format!("{}/token", self.issuer()))
            .set("Authorization", &format!("Basic {basic}"))
            .send_form(&form_params);
        let r = match r {
            Ok(r) => r,
            Err(ureq::Error::Status(_, r)) => r,
            Err(e) => panic!("token request: {e}"),
        };
        let status = r.status();
        let v: serde_json::Value = r.into_json().expect("token JSON");
        assert_eq!(status, 200, "token endpoint: {v}");
        v
    }
}

impl Drop for OidcProvider {
    fn drop(&mut self) {
        self.stop();
    }
}

/// `a=b&c=d`, form-urlencoded.
pub fn form(pairs: &[(&str, &str)]) -> String {
    let enc = |s: &str| {
        s.bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'*' => {
                    char::from(b).to_string()
                }
                b' ' => "+".to_string(),
                _ => format!("%{b:02X}"),
            })
            .collect::<String>()
    };
    pairs
        .iter()
        .map(|(k, v)| format!("{}={}", enc(k), enc(v)))
        .collect::<Vec<_>>()
        .join("&")
}

/// One query parameter of a URL, percent-decoded.
pub fn query_param(url: &str, name: &str) -> Option<String> {
    let query = url.split_once('?')?.1;
    query.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=')?;
        (k == name).then(|| decode(v))
    })
}

fn decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("");
                out.push(u8::from_str_radix(hex, 16).unwrap_or(b'?'));
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A browser: one cookie jar for every host (cookies are not port-scoped, so the provider's
/// and Postern's share it, as in a real browser), redirects reported, not followed.
#[derive(Default)]
pub struct Browser {
    pub cookies: BTreeMap<String, String>,
}

impl Browser {
    fn agent() -> ureq::Agent {
        ureq::AgentBuilder::new()
            .redirects(0)
            .timeout(Duration::from_secs(30))
            .build()
    }

    fn cookie_header(&self) -> String {
        self.cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    fn absorb(&mut self, r: Result<ureq::Response, ureq::Error>) -> Reply {
        let resp = match r {
            Ok(r) => r,
            Err(ureq::Error::Status(_, r)) => r,
            Err(e) => panic!("HTTP request failed: {e}"),
        };
        for set in resp.all("set-cookie") {
            let first = set.split(';').next().unwrap_or_default();
            if let Some((name, value)) = first.split_once('=') {
                let gone = value.is_empty() || set.to_ascii_lowercase().contains("max-age=0");
                if gone {
                    self.cookies.remove(name.trim());
                } else {
                    self.cookies
                        .insert(name.trim().to_string(), value.trim().to_string());
                }
            }
        }
        let status = resp.status();
        let mut headers = Vec::new();
        for n in resp.headers_names() {
            for v in resp.all(&n) {
                headers.push((n.clone(), v.to_string()));
            }
        }
        let body = resp.into_string().unwrap_or_default();
        Reply {
            status,
            headers,
            body,
        }
    }

    pub fn get(&mut self, url: &str) -> Reply {
        let req = Self::agent().get(url).set("Cookie", &self.cookie_header());
        self.absorb(req.call())
    }

    pub fn get_with(&mut self, url: &str, headers: &[(&str, &str)]) -> Reply {
        let mut req = Self::agent().get(url).set("Cookie", &self.cookie_header());
        for (k, v) in headers {
            req = req.set(k, v);
        }
        self.absorb(req.call())
    }

    pub fn post_form(&mut self, url: &str, pairs: &[(&str, &str)]) -> Reply {
        let req = Self::agent().post(url).set("Cookie", &self.cookie_header());
        self.absorb(req.send_form(pairs))
    }

    /// Follows `url` through the provider's login and consent forms as `user`; returns the
    /// first redirect that leaves the provider (the client's redirect URI with code, state
    /// and iss).
    pub fn provider_login(&mut self, url: &str, issuer: &str, user: &str) -> String {
        let mut url = url.to_string();
        for _ in 0..20 {
            let r = self.get(&url);
            let next = if (300..400).contains(&r.status) {
                absolute(issuer, r.header("location").expect("Location"))
            } else if r.status == 200 {
                let action = between(&r.body, "action=\"", "\"").expect("a form");
                let prompt = between(&r.body, "name=\"prompt\" value=\"", "\"").expect("prompt");
                let posted = self.post_form(
                    &absolute(issuer, &action),
                    &[("prompt", &prompt), ("login", user), ("password", "any")],
                );
                assert!(
                    (300..400).contains(&posted.status),
                    "form answered {}: {}",
                    posted.status,
                    posted.body
                );
                absolute(issuer, posted.header("location").expect("Location"))
            } else {
                panic!("provider answered {}: {}", r.status, r.body);
            };
            if !next.starts_with(issuer) {
                return next;
            }
            url = next;
        }
        panic!("no way out of the provider's login");
    }
}

fn absolute(issuer: &str, location: &str) -> String {
    if location.starts_with('/') {
        format!("{issuer}{location}")
    } else {
        location.to_string()
    }
}

fn between(text: &str, start: &str, end: &str) -> Option<String> {
    let from = text.find(start)? + start.len();
    let len = text[from..].find(end)?;
    Some(text[from..from + len].replace("&amp;", "&"))
}
