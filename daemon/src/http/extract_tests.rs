//! The shared extractors, each behind a one-route router as a handler would use it.

use std::net::SocketAddr;

use axum::body::Body;
use axum::extract::connect_info::MockConnectInfo;
use axum::http::{HeaderValue, Request, StatusCode};
use axum::routing::{get, post};
use axum::Router;
use http_body_util::BodyExt;
use serde::Deserialize;
use tower::ServiceExt;

use super::*;
use crate::config::Config;
use crate::frontend::testkit;
use crate::http::{HttpSettings, MAX_BODY};

async fn send(app: &Router, req: Request<Body>) -> (StatusCode, String) {
    let r = app.clone().oneshot(req).await.unwrap();
    let status = r.status();
    let body = r.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8_lossy(&body).into_owned())
}

fn error_code(body: &str) -> String {
    let v: serde_json::Value = serde_json::from_str(body).unwrap();
    assert!(v["message"].is_string(), "{body}");
    v["error"].as_str().unwrap().to_string()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Thing {
    name: String,
}

fn json_app() -> Router {
    Router::new()
        .route(
            "/",
            post(|JsonBody(t): JsonBody<Thing>| async move { t.name }),
        )
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY))
}

fn post_json(content_type: Option<&str>, body: impl Into<Body>) -> Request<Body> {
    let mut b = Request::post("/");
    if let Some(ct) = content_type {
        b = b.header(header::CONTENT_TYPE, ct);
    }
    b.body(body.into()).unwrap()
}

#[tokio::test]
async fn json_body_accepts_json_and_a_missing_content_type() {
    let app = json_app();
    for ct in [
        None,
        Some("application/json"),
        Some("Application/JSON; charset=utf-8"),
        Some("application/merge-patch+json"),
    ] {
        let (status, body) = send(&app, post_json(ct, r#"{"name":"x"}"#)).await;
        assert_eq!((status, body.as_str()), (StatusCode::OK, "x"), "{ct:?}");
    }
}

#[tokio::test]
async fn json_body_errors_have_one_shape() {
    let app = json_app();
    let (status, body) = send(&app, post_json(Some("text/plain"), r#"{"name":"x"}"#)).await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_eq!(error_code(&body), "unsupported_media_type");

    let (status, body) = send(&app, post_json(None, r#"{"name":"x","admin":true}"#)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(error_code(&body), "invalid_request");
    // serde's reason is passed on.
    assert!(body.contains("unknown field"), "{body}");

    let (status, body) = send(&app, post_json(None, "{\"name\": ")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(error_code(&body), "invalid_request");

    let big = format!("{{\"name\":\"{}\"}}", "a".repeat(MAX_BODY));
    let (status, body) = send(&app, post_json(Some("application/json"), big)).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(error_code(&body), "payload_too_large");
}

#[test]
fn json_content_types() {
    assert!(is_json("application/json"));
    assert!(is_json(" application/json ;charset=UTF-8"));
    assert!(is_json("application/problem+json"));
    assert!(!is_json("application/x-www-form-urlencoded"));
    assert!(!is_json("text/json+plain"));
    assert!(!is_json(""));
}

fn headers(pairs: &[(header::HeaderName, &'static str)]) -> HeaderMap {
    let mut h = HeaderMap::new();
    for (n, v) in pairs {
        h.append(n.clone(), HeaderValue::from_static(v));
    }
    h
}

#[test]
fn credentials_come_from_bearer_then_cookie() {
    let c =
        Credentials::from_headers(&headers(&[(header::AUTHORIZATION, "Bearer  pst_a ")])).unwrap();
    assert_eq!((c.token.as_str(), c.carrier), ("pst_a", Carrier::Bearer));
    let c =
        Credentials::from_headers(&headers(&[(header::AUTHORIZATION, "bearer pst_a")])).unwrap();
    assert_eq!(c.carrier, Carrier::Bearer);

    let c = Credentials::from_headers(&headers(&[(header::COOKIE, "x=1; postern_session=pst_c")]))
        .unwrap();
    assert_eq!((c.token.as_str(), c.carrier), ("pst_c", Carrier::Cookie));

    // Both: the header wins.
    let both = headers(&[
        (header::AUTHORIZATION, "Bearer pst_a"),
        (header::COOKIE, "postern_session=pst_c"),
    ]);
    assert_eq!(Credentials::from_headers(&both).unwrap().token, "pst_a");
    // A broken header is not rescued by a cookie.
    for auth in ["Basic YTpi", "Bearer ", "Bearer"] {
        let h = headers(&[
            (header::AUTHORIZATION, auth),
            (header::COOKIE, "postern_session=pst_c"),
        ]);
        let e = Credentials::from_headers(&h).unwrap_err();
        assert_eq!(e.status, StatusCode::UNAUTHORIZED, "{auth}");
    }
    let e = Credentials::from_headers(&HeaderMap::new()).unwrap_err();
    assert_eq!(
        (e.status, e.code),
        (StatusCode::UNAUTHORIZED, "invalid_token")
    );
}

fn settings(trusted: &[&str]) -> HttpSettings {
    let mut c = Config::default();
    c.server.trusted_proxies = trusted.iter().map(|s| s.to_string()).collect();
    HttpSettings::from_config(&c).unwrap()
}

fn ip_app(state: AppState, peer: Option<SocketAddr>) -> Router {
    Router::new()
        .route(
            "/",
            get(|ClientIp(ip): ClientIp| async move { format!("{ip:?}") }),
        )
        .with_state(state)
        .layer(MockConnectInfo(ClientAddr(peer)))
}

fn forwarded_get(xff: &str) -> Request<Body> {
    Request::get("/")
        .header("x-forwarded-for", xff)
        .body(Body::empty())
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_ip_follows_the_trusted_proxies_in_force() {
    let (_dir, engine) = testkit::engine().await;
    let state = AppState::new(engine, settings(&[]));
    let peer: SocketAddr = "127.0.0.1:40000".parse().unwrap();
    let app = ip_app(state.clone(), Some(peer));

    let (_, body) = send(&app, forwarded_get("203.0.113.9")).await;
    assert_eq!(body, "Some(127.0.0.1)");
    // The same router, after a reload that trusts the peer.
    state.replace(settings(&["127.0.0.0/8"]));
    let (_, body) = send(&app, forwarded_get("198.51.100.1, 203.0.113.9")).await;
    assert_eq!(body, "Some(203.0.113.9)");
    let (_, body) = send(&app, forwarded_get("bogus")).await;
    assert_eq!(body, "Some(127.0.0.1)");

    let unix = ip_app(state, None);
    let (_, body) = send(&unix, forwarded_get("203.0.113.9")).await;
    assert_eq!(body, "None");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn authenticated_is_401_without_a_live_token() {
    let (_dir, engine) = testkit::engine().await;
    let app = Router::new()
        .route(
            "/",
            get(|a: Authenticated| async move { a.session.principal.name }),
        )
        .with_state(AppState::new(engine, settings(&[])));
    for req in [
        Request::get("/").body(Body::empty()).unwrap(),
        Request::get("/")
            .header(header::AUTHORIZATION, "Bearer pst_forged")
            .body(Body::empty())
            .unwrap(),
        Request::get("/")
            .header(header::COOKIE, "postern_session=pst_forged")
            .body(Body::empty())
            .unwrap(),
    ] {
        let (status, body) = send(&app, req).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert_eq!(error_code(&body), "invalid_token");
    }
}
