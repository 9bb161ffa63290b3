//! The provider's documents as they come over the wire, from a tiny local HTTP server: huge,
//! malformed, slow, redirected, of another issuer; and a flood of unknown key ids.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use crate::fetch::{FetchError, Fetcher};
use crate::provider::{KeyError, Provider};

/// What the server answers for one path: status, body, delay.
type Route = (&'static str, u16, String, Duration);

async fn serve(routes: Vec<Route>, jwks_hits: Arc<AtomicUsize>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let routes = Arc::new(routes);
    tokio::spawn(async move {
        loop {
            let Ok((mut sock, _)) = listener.accept().await else {
                break;
            };
            let routes = routes.clone();
            let hits = jwks_hits.clone();
            tokio::spawn(async move {
                let mut buf = vec![0u8; 8192];
                let mut got = 0;
                while !buf[..got].windows(4).any(|w| w == b"\r\n\r\n") {
                    match sock.read(&mut buf[got..]).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => got += n,
                    }
                }
                let head = String::from_utf8_lossy(&buf[..got]).to_string();
                let path = head.split(' ').nth(1).unwrap_or("/").to_string();
                if path == "/jwks" {
                    hits.fetch_add(1, Ordering::SeqCst);
                }
                let (status, body, delay) = routes
                    .iter()
                    .find(|r| r.0 == path)
                    .map(|r| (r.1, r.2.clone(), r.3))
                    .unwrap_or((404, "{}".into(), Duration::ZERO));
                tokio::time::sleep(delay).await;
                let extra = if status == 302 {
                    "Location: /jwks\r\n"
                } else {
                    ""
                };
                let response = format!(
                    "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\n{extra}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = sock.write_all(response.as_bytes()).await;
            });
        }
    });
    format!("http://{addr}")
}

fn discovery(issuer: &str) -> String {
    serde_json::json!({
        "issuer": issuer,
        "authorization_endpoint": format!("{issuer}/auth"),
        "token_endpoint": format!("{issuer}/token"),
        "jwks_uri": format!("{issuer}/jwks"),
    })
    .to_string()
}

fn provider(issuer: &str) -> Provider {
    let fetcher = Fetcher::new(None, Duration::from_millis(500)).unwrap();
    Provider::new(
        issuer.to_string(),
        fetcher,
        Duration::from_secs(3600),
        Duration::from_secs(3600),
    )
}

const WELL_KNOWN: &str = "/.well-known/openid-configuration";

#[tokio::test]
async fn huge_malformed_slow_redirected_and_foreign_documents_are_clear_errors() {
    let hits = Arc::new(AtomicUsize::new(0));
    let huge = format!("{{\"x\": \"{}\"}}", "a".repeat(300 * 1024));
    for (body, status, delay, want) in [
        (huge, 200, Duration::ZERO, "larger"),
        ("{not json".to_string(), 200, Duration::ZERO, "not JSON"),
        ("{}".to_string(), 200, Duration::from_secs(2), "timed out"),
        ("{}".to_string(), 302, Duration::ZERO, "HTTP 302"),
        (
            "[1, 2]".to_string(),
            200,
            Duration::ZERO,
            "discovery document",
        ),
    ] {
        let base = serve(vec![(WELL_KNOWN, status, body, delay)], hits.clone()).await;
        let e = provider(&base).discover().await.unwrap_err();
        assert!(
            e.to_string().contains(want) || format!("{e:?}").contains(want),
            "{want}: {e}"
        );
    }
    // A document naming another issuer.
    let base = serve(
        vec![(
            WELL_KNOWN,
            200,
            discovery("https://other.example"),
            Duration::ZERO,
        )],
        hits.clone(),
    )
    .await;
    let e = provider(&base).discover().await.unwrap_err();
    assert!(matches!(e, FetchError::Invalid(_)), "{e}");
    assert!(e.to_string().contains("not the configured"), "{e}");
}

#[tokio::test]
async fn a_flood_of_unknown_kids_costs_one_refetch() {
    let hits = Arc::new(AtomicUsize::new(0));
    let base = serve_self(hits.clone()).await;
    let p = provider(&base);
    for i in 0..50 {
        let e = p
            .key(
                Some(&format!("made-up-{i}")),
                jsonwebtoken::Algorithm::RS256,
            )
            .await
            .unwrap_err();
        assert!(matches!(e, KeyError::Unknown(_)), "{e}");
    }
    // The first lookup fetched the set; one unknown kid refetched it; the other 49 waited.
    assert_eq!(hits.load(Ordering::SeqCst), 2);
}

/// A server whose discovery document names its own address.
async fn serve_self(hits: Arc<AtomicUsize>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let doc = discovery(&base);
    let jwks = r#"{"keys": []}"#.to_string();
    tokio::spawn(async move {
        loop {
            let Ok((mut sock, _)) = listener.accept().await else {
                break;
            };
            let (doc, jwks, hits) = (doc.clone(), jwks.clone(), hits.clone());
            tokio::spawn(async move {
                let mut buf = vec![0u8; 8192];
                let mut got = 0;
                while !buf[..got].windows(4).any(|w| w == b"\r\n\r\n") {
                    match sock.read(&mut buf[got..]).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => got += n,
                    }
                }
                let head = String::from_utf8_lossy(&buf[..got]).to_string();
                let body = if head.starts_with("GET /jwks ") {
                    hits.fetch_add(1, Ordering::SeqCst);
                    jwks
                } else {
                    doc
                };
                let response = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = sock.write_all(response.as_bytes()).await;
            });
        }
    });
    base
}
