//! `GET /auth/nginx`: nginx's mail proxy `auth_http` protocol.
//!
//! nginx reads only the reply headers (1 KiB at most), so every answer is HTTP 200 with
//! `Auth-*` headers and no body. Success names the upstream of the client's protocol from
//! `[auth-http] backends`; wrong credentials answer `Invalid login or password` with
//! `Auth-Wait: 3` (so nginx lets the client retry) until the 10th attempt, after which nginx
//! closes the connection; outages, broken accounts and a missing backend are temporary failures.
//!
//! The `[auth-http]` settings are part of the router's [`super::HttpSettings`], swapped whole
//! on SIGHUP: a reload that changes them is in force on the running listeners.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};

use axum::extract::State;
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use postern_directory::{read_secret_file, Credential};
use postern_protocols::nginx::{parse_request, AuthMethod, MailProtocol, Reply};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use super::extract::Peer;
use super::forwarded::TrustedProxies;
use super::AppState;
use crate::auth::{Frontend, LoginError, Mechanism, PasswordAttempt};
use crate::authz::Service;
use crate::config::AuthHttpConfig;

/// Seconds nginx waits before letting the client retry after a failure.
pub const FAILURE_WAIT: u32 = 3;
/// From this attempt on, failures carry no `Auth-Wait` and nginx closes the connection.
pub const MAX_ATTEMPTS_WITH_WAIT: u32 = 10;

/// The `[auth-http]` settings in force.
pub struct NginxSettings {
    backends: HashMap<String, SocketAddr>,
    shared_secret: Option<Zeroizing<String>>,
    /// `require-shared-secret`: without a secret, TCP requests are refused.
    require_secret: bool,
    /// Set when the settings could not be loaded: every request is a temporary failure.
    broken: Option<String>,
}

impl NginxSettings {
    pub fn from_config(c: &AuthHttpConfig) -> NginxSettings {
        let mut broken = None;
        let mut backends = HashMap::new();
        for (protocol, addr) in &c.backends {
            match addr.parse::<SocketAddr>() {
                Ok(a) => {
                    backends.insert(protocol.to_ascii_lowercase(), a);
                }
                Err(_) => {
                    broken = Some(format!(
                        "auth-http.backends.{protocol}: {addr:?} is not IP:port"
                    ))
                }
            }
        }
        let shared_secret = match (&c.shared_secret, &c.shared_secret_file) {
            (Some(s), _) => Some(Zeroizing::new(s.clone())),
            (None, Some(path)) => match read_secret_file("shared-secret-file", path) {
                Ok(s) => Some(s),
                Err(e) => {
                    broken = Some(e.prefixed("auth-http").to_string());
                    // Fail closed: no request can match an unknown secret.
                    Some(Zeroizing::new(String::new()))
                }
            },
            (None, None) => None,
        };
        NginxSettings {
            backends,
            shared_secret,
            require_secret: c.require_shared_secret,
            broken,
        }
    }
}

pub async fn auth(State(state): State<AppState>, Peer(peer): Peer, headers: HeaderMap) -> Response {
    let settings = state.settings();
    answer(
        &state,
        &settings.nginx,
        &settings.trusted_proxies,
        peer,
        &headers,
    )
    .await
}

/// The address a login is attributed to: nginx's `Client-IP` when nginx is trusted to say it
/// (a unix socket, or a peer among `[server] trusted-proxies`), else the peer itself, so that
/// whoever else reaches the port can neither lock out an address of their choosing nor escape
/// the per-address limit by rotating the header.
fn client_ip(peer: Option<IpAddr>, proxies: &TrustedProxies, claimed: IpAddr) -> IpAddr {
    match peer {
        None => claimed,
        Some(p) if proxies.contains(p) => claimed,
        Some(p) => p.to_canonical(),
    }
}

/// Whether this auth_http request may be answered at all: usable settings, and the shared
/// secret where one is required. `Some(reply)` refuses it.
fn admit(
    state: &AppState,
    settings: &NginxSettings,
    peer: Option<IpAddr>,
    headers: &HeaderMap,
) -> Option<Reply<'static>> {
    if let Some(problem) = &settings.broken {
        tracing::error!(%problem, "auth-http settings unusable; refusing nginx logins");
        return Some(Reply::Fail {
            message: "Temporary authentication failure",
            wait: None,
            smtp_code: None,
        });
    }
    if settings.shared_secret.is_none() && settings.require_secret && peer.is_some() {
        state.engine.count_refusal("nginx", "no_shared_secret");
        tracing::error!("auth_http request on a TCP listener refused: set [auth-http] shared-secret (sent by nginx as X-Auth-Key) or require-shared-secret = false");
        return Some(Reply::Fail {
            message: "Temporary authentication failure",
            wait: None,
            smtp_code: None,
        });
    }
    if let Some(secret) = &settings.shared_secret {
        let given = headers
            .get("x-auth-key")
            .map(|v| v.as_bytes())
            .unwrap_or_default();
        let matches: bool = Sha256::digest(given)
            .ct_eq(&Sha256::digest(secret.as_bytes()))
            .into();
        if !matches || headers.get_all("x-auth-key").iter().count() != 1 {
            state.engine.count_refusal("nginx", "bad_auth_key");
            tracing::warn!(
                ?peer,
                "auth_http request without the right X-Auth-Key refused"
            );
            return Some(Reply::Fail {
                message: "Invalid request",
                wait: None,
                smtp_code: None,
            });
        }
    }
    None
}

async fn answer(
    state: &AppState,
    settings: &NginxSettings,
    proxies: &TrustedProxies,
    peer: Option<IpAddr>,
    headers: &HeaderMap,
) -> Response {
    if let Some(refusal) = admit(state, settings, peer, headers) {
        return respond(&refusal);
    }
    let pairs = headers.iter().map(|(n, v)| (n.as_str(), v.as_bytes()));
    let request = match parse_request(pairs) {
        Ok(r) => r,
        Err(e) => {
            tracing::info!(error = %e, "invalid auth_http request");
            return respond(&Reply::Fail {
                message: "Invalid request",
                wait: None,
                smtp_code: None,
            });
        }
    };
    let protocol = request.protocol;
    if request.method != AuthMethod::Plain {
        tracing::info!(method = ?request.method, "auth_http method not supported");
        return respond(&Reply::failure(
            protocol,
            "Authentication method not supported",
            None,
        ));
    }
    // nginx's protocols are all known services.
    let service = Service::resolve(protocol.as_str(), &[]).unwrap_or(Service::HTTP);
    let remote_ip = Some(client_ip(peer, proxies, request.client_ip));
    // nginx cannot pass XOAUTH2: a mail client holding one of our access tokens sends it as
    // the password, and it is checked as a bearer for that user.
    let result = if crate::oauth::jwt::looks_like_jwt(request.password.as_str()) {
        state
            .engine
            .login_bearer(crate::auth::bearer::BearerAttempt {
                frontend: Frontend::Nginx,
                mechanism: Mechanism::Plain,
                token: request.password.as_str(),
                claimed_user: Some(&request.user),
                service,
                remote_ip,
            })
            .await
    } else {
        state
            .engine
            .login(PasswordAttempt {
                frontend: Frontend::Nginx,
                mechanism: Mechanism::Plain,
                username: &request.user,
                password: Credential::password(request.password.as_str()),
                service,
                remote_ip,
            })
            .await
    };
    let temporary = |protocol: MailProtocol| Reply::Fail {
        message: "Temporary authentication failure",
        wait: Some(FAILURE_WAIT),
        smtp_code: (protocol == MailProtocol::Smtp)
            .then_some(postern_protocols::nginx::SMTP_TEMPORARY_CODE),
    };
    let reply = match result {
        Ok(_) => match settings.backends.get(protocol.as_str()) {
            Some(upstream) => Reply::ok(*upstream),
            None => {
                tracing::error!(
                    protocol = protocol.as_str(),
                    "no [auth-http] backend for this protocol"
                );
                temporary(protocol)
            }
        },
        Err(
            LoginError::InvalidCredentials
            | LoginError::InvalidRequest(_)
            | LoginError::RateLimited(_),
        ) => {
            let wait = (request.login_attempt < MAX_ATTEMPTS_WITH_WAIT).then_some(FAILURE_WAIT);
            Reply::failure(protocol, "Invalid login or password", wait)
        }
        Err(LoginError::Unavailable | LoginError::Misconfigured) => temporary(protocol),
    };
    respond(&reply)
}

fn respond(reply: &Reply<'_>) -> Response {
    let lines = reply.headers().unwrap_or_else(|e| {
        tracing::error!(error = %e, "cannot encode an auth_http reply");
        vec![("Auth-Status", "Internal server error".to_string())]
    });
    let mut headers = HeaderMap::new();
    for (name, value) in lines {
        if let Ok(value) = HeaderValue::from_str(&value) {
            headers.append(HeaderName::from_static(lower(name)), value);
        }
    }
    (StatusCode::OK, headers).into_response()
}

/// `HeaderName::from_static` wants lower case; HTTP/1 header names are case-insensitive.
fn lower(name: &'static str) -> &'static str {
    match name {
        "Auth-Status" => "auth-status",
        "Auth-Server" => "auth-server",
        "Auth-Port" => "auth-port",
        "Auth-Wait" => "auth-wait",
        "Auth-User" => "auth-user",
        "Auth-Pass" => "auth-pass",
        "Auth-Error-Code" => "auth-error-code",
        _ => "x-auth-other",
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::frontend::testkit::{self, PASSWORD};

    fn config(secret: Option<&str>) -> NginxSettings {
        let mut backends = BTreeMap::new();
        backends.insert("imap".to_string(), "127.0.0.1:1143".to_string());
        backends.insert("smtp".to_string(), "127.0.0.1:1025".to_string());
        NginxSettings::from_config(&AuthHttpConfig {
            backends,
            shared_secret: secret.map(String::from),
            shared_secret_file: None,
            require_shared_secret: true,
        })
    }

    fn request(user: &str, pass: &str, protocol: &str, attempt: u32) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (n, v) in [
            ("auth-method", "plain".to_string()),
            ("auth-user", user.to_string()),
            ("auth-pass", pass.replace(' ', "%20")),
            ("auth-protocol", protocol.to_string()),
            ("auth-login-attempt", attempt.to_string()),
            ("client-ip", "192.0.2.10".to_string()),
        ] {
            h.insert(
                HeaderName::from_static(n),
                HeaderValue::from_str(&v).unwrap(),
            );
        }
        h
    }

    fn test_state(engine: std::sync::Arc<crate::auth::Engine>) -> AppState {
        let settings = crate::http::HttpSettings::from_config(&Default::default()).unwrap();
        AppState::new(engine, settings)
    }

    fn get<'a>(r: &'a Response, name: &str) -> Option<&'a str> {
        r.headers().get(name).and_then(|v| v.to_str().ok())
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn answers_nginx() {
        let (_dir, engine) = testkit::engine().await;
        let state = test_state(engine);
        let s = config(None);
        let none = TrustedProxies::default();
        let r = answer(
            &state,
            &s,
            &none,
            None,
            &request("alice", PASSWORD, "imap", 1),
        )
        .await;
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(get(&r, "auth-status"), Some("OK"));
        assert_eq!(get(&r, "auth-server"), Some("127.0.0.1"));
        assert_eq!(get(&r, "auth-port"), Some("1143"));

        let r = answer(
            &state,
            &s,
            &none,
            None,
            &request("alice", "wrong", "imap", 1),
        )
        .await;
        assert_eq!(get(&r, "auth-status"), Some("Invalid login or password"));
        assert_eq!(get(&r, "auth-wait"), Some("3"));
        let r = answer(
            &state,
            &s,
            &none,
            None,
            &request("alice", "wrong", "imap", 10),
        )
        .await;
        assert_eq!(get(&r, "auth-status"), Some("Invalid login or password"));
        assert_eq!(get(&r, "auth-wait"), None);

        // bob has no email-send.
        let r = answer(
            &state,
            &s,
            &none,
            None,
            &request("bob", PASSWORD, "smtp", 1),
        )
        .await;
        assert_eq!(get(&r, "auth-status"), Some("Invalid login or password"));
        assert_eq!(get(&r, "auth-error-code"), Some("535 5.7.8"));
        // No pop3 backend configured: temporary.
        let r = answer(
            &state,
            &s,
            &none,
            None,
            &request("alice", PASSWORD, "pop3", 1),
        )
        .await;
        assert_eq!(
            get(&r, "auth-status"),
            Some("Temporary authentication failure")
        );
        assert_eq!(get(&r, "auth-wait"), Some("3"));

        // Missing and duplicated headers.
        let mut h = request("alice", PASSWORD, "imap", 1);
        h.remove("client-ip");
        assert_eq!(
            get(&answer(&state, &s, &none, None, &h).await, "auth-status"),
            Some("Invalid request")
        );
        let mut h = request("alice", PASSWORD, "imap", 1);
        h.append("auth-user", HeaderValue::from_static("bob"));
        assert_eq!(
            get(&answer(&state, &s, &none, None, &h).await, "auth-status"),
            Some("Invalid request")
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn shared_secret_is_required_when_configured() {
        let (_dir, engine) = testkit::engine().await;
        let state = test_state(engine);
        let s = config(Some("s3cret"));
        let none = TrustedProxies::default();
        let mut h = request("alice", PASSWORD, "imap", 1);
        assert_eq!(
            get(&answer(&state, &s, &none, None, &h).await, "auth-status"),
            Some("Invalid request")
        );
        h.insert("x-auth-key", HeaderValue::from_static("s3cre"));
        assert_eq!(
            get(&answer(&state, &s, &none, None, &h).await, "auth-status"),
            Some("Invalid request")
        );
        h.insert("x-auth-key", HeaderValue::from_static("s3cret"));
        assert_eq!(
            get(&answer(&state, &s, &none, None, &h).await, "auth-status"),
            Some("OK")
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn tcp_needs_the_shared_secret_unless_opted_out() {
        let (_dir, engine) = testkit::engine().await;
        let state = test_state(engine);
        let none = TrustedProxies::default();
        let tcp = Some(IpAddr::from([127, 0, 0, 1]));
        let h = request("alice", PASSWORD, "imap", 1);
        let r = answer(&state, &config(None), &none, tcp, &h).await;
        assert_eq!(
            get(&r, "auth-status"),
            Some("Temporary authentication failure")
        );
        assert!(state
            .engine
            .render_metrics()
            .contains("postern_refused_total{frontend=\"nginx\",reason=\"no_shared_secret\"} 1"));
        // A unix socket (no peer address) is guarded by its file mode.
        let r = answer(&state, &config(None), &none, None, &h).await;
        assert_eq!(get(&r, "auth-status"), Some("OK"));
        // The operator's explicit opt-out.
        let mut c = AuthHttpConfig::default();
        c.backends
            .insert("imap".to_string(), "127.0.0.1:1143".to_string());
        c.require_shared_secret = false;
        let r = answer(&state, &NginxSettings::from_config(&c), &none, tcp, &h).await;
        assert_eq!(get(&r, "auth-status"), Some("OK"));
        // With the secret, TCP is fine.
        let mut h = h;
        h.insert("x-auth-key", HeaderValue::from_static("s3cret"));
        let r = answer(&state, &config(Some("s3cret")), &none, tcp, &h).await;
        assert_eq!(get(&r, "auth-status"), Some("OK"));
    }

    #[test]
    fn client_ip_is_believed_from_trusted_proxies_and_unix_sockets_only() {
        let claimed = IpAddr::from([192, 0, 2, 10]);
        let peer = IpAddr::from([198, 51, 100, 7]);
        let none = TrustedProxies::default();
        let proxies = TrustedProxies::parse(&["198.51.100.0/24"]).unwrap();
        assert_eq!(client_ip(Some(peer), &none, claimed), peer);
        assert_eq!(client_ip(Some(peer), &proxies, claimed), claimed);
        assert_eq!(client_ip(None, &none, claimed), claimed);
    }
}
