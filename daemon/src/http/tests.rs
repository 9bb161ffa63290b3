//! The composed router: the session cookie through login, session and logout, and settings
//! swapped under a running router.

use axum::body::Body;
use axum::http::{header, HeaderMap, Request, StatusCode};
use axum::Router;
use http_body_util::BodyExt;
use tower::ServiceExt;

use super::*;
use crate::config::Config;
use crate::frontend::testkit::{self, PASSWORD};

struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    body: String,
}

impl Answer {
    fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("{e}: {}", self.body))
    }

    fn set_cookie(&self) -> Option<&str> {
        self.headers
            .get(header::SET_COOKIE)
            .map(|v| v.to_str().unwrap())
    }
}

async fn send(app: &Router, req: Request<Body>) -> Answer {
    let r = app.clone().oneshot(req).await.unwrap();
    let status = r.status();
    let headers = r.headers().clone();
    let body = r.into_body().collect().await.unwrap().to_bytes();
    Answer {
        status,
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    }
}

fn settings(public_url: &str) -> HttpSettings {
    let mut c = Config::default();
    c.server.public_url = public_url.into();
    c.auth_http
        .backends
        .insert("imap".into(), "127.0.0.1:1143".into());
    HttpSettings::from_config(&c).unwrap()
}

async fn app(public_url: &str) -> (tempfile::TempDir, AppState, Router) {
    let (dir, engine) = testkit::engine().await;
    let state = AppState::new(engine, settings(public_url));
    (dir, state.clone(), router(state))
}

fn login_request(content_type: Option<&str>) -> Request<Body> {
    let body = serde_json::json!({"username": "alice", "password": PASSWORD}).to_string();
    let mut b = Request::post("/auth/login");
    if let Some(ct) = content_type {
        b = b.header(header::CONTENT_TYPE, ct);
    }
    b.body(Body::from(body)).unwrap()
}

fn with_cookie(method: &str, token: &str) -> Request<Body> {
    Request::builder()
        .method(method)
        .uri("/auth/session")
        .header(
            header::COOKIE,
            format!("theme=dark; postern_session={token}"),
        )
        .body(Body::empty())
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_sets_the_session_cookie_which_session_and_logout_accept() {
    let (_dir, _state, app) = app("http://127.0.0.1:8480").await;
    let r = send(&app, login_request(Some("application/json"))).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let view = r.json();
    let token = view["token"].as_str().unwrap().to_string();
    assert_eq!(view["tokenType"], "Bearer");
    assert_eq!(view["principal"]["name"], "alice");
    let cookie = r.set_cookie().unwrap();
    assert!(
        cookie.starts_with(&format!("postern_session={token}; Max-Age=")),
        "{cookie}"
    );
    assert!(
        cookie.ends_with("; Path=/; HttpOnly; SameSite=Lax"),
        "{cookie}"
    );
    // Max-Age is the session's lifetime (12 h by default), give or take the test's duration.
    let age: u64 = cookie
        .split("Max-Age=")
        .nth(1)
        .and_then(|s| s.split(';').next())
        .unwrap()
        .parse()
        .unwrap();
    assert!((12 * 3600 - 60..=12 * 3600).contains(&age), "{age}");

    let s = send(&app, with_cookie("GET", &token)).await;
    assert_eq!(s.status, StatusCode::OK, "{}", s.body);
    assert_eq!(s.json()["principal"], view["principal"]);
    assert_eq!(s.json()["token"], token.as_str());

    let out = send(&app, with_cookie("DELETE", &token)).await;
    assert_eq!(out.status, StatusCode::NO_CONTENT);
    let cleared = out.set_cookie().unwrap();
    assert!(
        cleared.starts_with("postern_session=; Max-Age=0;"),
        "{cleared}"
    );
    assert_eq!(
        send(&app, with_cookie("GET", &token)).await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        send(&app, with_cookie("DELETE", &token)).await.status,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logout_by_bearer_does_not_touch_cookies() {
    let (_dir, _state, app) = app("http://127.0.0.1:8480").await;
    let token = send(&app, login_request(Some("application/json")))
        .await
        .json()["token"]
        .as_str()
        .unwrap()
        .to_string();
    let req = Request::delete("/auth/session")
        .header(header::AUTHORIZATION, format!("Bearer {token}"))
        .body(Body::empty())
        .unwrap();
    let out = send(&app, req).await;
    assert_eq!(out.status, StatusCode::NO_CONTENT);
    assert_eq!(out.set_cookie(), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cookie_is_secure_behind_an_https_public_url() {
    let (_dir, _state, app) = app("https://auth.example.org").await;
    let r = send(&app, login_request(Some("application/json"))).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert!(r.set_cookie().unwrap().ends_with("; Secure"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_reads_json_only_as_application_json() {
    // A cross-site HTML form can post `application/x-www-form-urlencoded`, `multipart/form-data`
    // or `text/plain`, never JSON's type: only that is read, so a form cannot log in.
    let (_dir, _state, app) = app("http://127.0.0.1:8480").await;
    for ct in ["application/json", "application/json; charset=utf-8"] {
        let r = send(&app, login_request(Some(ct))).await;
        assert_eq!(r.status, StatusCode::OK, "{ct:?}: {}", r.body);
    }
    for ct in [
        None,
        Some("application/x-www-form-urlencoded"),
        Some("text/plain"),
        Some("multipart/form-data; boundary=x"),
    ] {
        let r = send(&app, login_request(ct)).await;
        assert_eq!(r.status, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{ct:?}");
        assert_eq!(r.json()["error"], "unsupported_media_type", "{ct:?}");
        assert!(r.json()["message"].is_string());
        assert_eq!(r.set_cookie(), None);
    }
    // Basic needs no body, so no type.
    let basic = base64::Engine::encode(
        &base64::engine::general_purpose::STANDARD,
        format!("alice:{PASSWORD}"),
    );
    let r = send(
        &app,
        Request::post("/auth/login")
            .header(header::AUTHORIZATION, format!("Basic {basic}"))
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let r = send(
        &app,
        Request::post("/auth/login")
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from("{\"username\":"))
            .unwrap(),
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.json()["error"], "invalid_request");
    // A failed login sets no cookie.
    let bad = serde_json::json!({"username": "alice", "password": "wrong"}).to_string();
    let r = send(
        &app,
        Request::post("/auth/login")
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(bad))
            .unwrap(),
    )
    .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(r.set_cookie(), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn areas_are_composed_with_one_fallback() {
    let (_dir, _state, app) = app("http://127.0.0.1:8480").await;
    let get = |p: &str| Request::get(p).body(Body::empty()).unwrap();
    assert_eq!(send(&app, get("/healthz")).await.status, StatusCode::OK);
    assert_eq!(send(&app, get("/metrics")).await.status, StatusCode::OK);
    let r = send(&app, get("/no/such/thing")).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(r.json()["error"], "not_found");
    let r = send(&app, get("/auth/nowhere")).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
}

fn nginx_request() -> Request<Body> {
    Request::get("/auth/nginx")
        .header("auth-method", "plain")
        .header("auth-user", "alice")
        .header("auth-pass", PASSWORD.replace(' ', "%20"))
        .header("auth-protocol", "imap")
        .header("auth-login-attempt", "1")
        .header("client-ip", "192.0.2.10")
        .body(Body::empty())
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replaced_settings_are_in_force_on_the_same_router() {
    let (_dir, state, app) = app("http://127.0.0.1:8480").await;
    let r = send(&app, nginx_request()).await;
    assert_eq!(r.headers["auth-status"], "OK");
    assert_eq!(r.headers["auth-port"], "1143");

    let mut c = Config::default();
    c.auth_http
        .backends
        .insert("imap".into(), "127.0.0.1:2143".into());
    state.replace(HttpSettings::from_config(&c).unwrap());
    let r = send(&app, nginx_request()).await;
    assert_eq!(r.headers["auth-status"], "OK");
    assert_eq!(r.headers["auth-port"], "2143");
}

#[test]
fn trusted_proxies_are_validated_and_parsed() {
    let mut c = Config::default();
    c.server.trusted_proxies = vec!["127.0.0.1/32".into(), "proxy.local".into(), "::1".into()];
    let errors: Vec<String> = crate::config::validate(&c, "postern.toml")
        .iter()
        .map(|e| e.to_string())
        .collect();
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(
        errors[0].contains("server.trusted-proxies[1]"),
        "{errors:?}"
    );
    assert!(errors[0].contains("proxy.local"), "{errors:?}");
    assert!(HttpSettings::from_config(&c).is_err());

    // The key as written in a file.
    let c: Config = toml::from_str("[server]\ntrusted-proxies = [\"10.0.0.0/8\"]\n").unwrap();
    assert_eq!(c.server.trusted_proxies, vec!["10.0.0.0/8".to_string()]);
    assert!(crate::config::validate(&c, "postern.toml").is_empty());
}

/// The router is not built until something asks for it (the first HTTP connection), then
/// built once and shared by every clone.
#[tokio::test]
async fn the_lazy_router_is_built_once_on_first_use() {
    let (_dir, engine) = testkit::engine().await;
    let lazy = LazyRouter::new(AppState::new(engine, settings("http://localhost")));
    let clone = lazy.clone();
    assert!(!lazy.is_built(), "built before any connection");
    let first: *const Router = clone.get();
    assert!(lazy.is_built());
    assert!(std::ptr::eq(first, lazy.get()), "built twice");
    let healthz = Request::get("/healthz").body(Body::empty()).unwrap();
    assert_eq!(send(lazy.get(), healthz).await.status, StatusCode::OK);
}
