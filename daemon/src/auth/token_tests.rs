//! The cache of verified access tokens: a second use skips the signature check, and an
//! expired, revoked or orphaned (signing key removed) token is refused at once, cached or not.

use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use postern_internal::input::Provision;

use super::clock::ManualClock;
use super::Engine;
use crate::config::{load, Source};
use crate::oauth::jwt::ACCESS_TYP;
use crate::oauth::AccessClaims;
use crate::runtime;

const CLIENT: &str = r#"
[[oauth-client]]
clientId = "svc"
secret = "{PLAIN}svc-secret"
grantTypes = ["client_credentials"]
roles = ["user"]
"#;

async fn engine(clock: Arc<ManualClock>) -> (tempfile::TempDir, Arc<Engine>) {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut config = load(&Source::Embedded).expect("embedded config");
    config.server.state_dir = dir.path().to_path_buf();
    config.store.url = String::new();
    config.store.url_file = None;
    let engine = runtime::engine(&config, clock).await.expect("engine");
    let file: Provision = toml::from_str(CLIENT).expect("provision");
    engine.provision(&file).await.expect("apply");
    engine.reload_if_changed().await.expect("reload");
    (dir, engine)
}

async fn token(engine: &Engine, jti: &str, ttl: i64) -> String {
    let now = engine.clock.unix();
    let issuer = engine.oauth.issuer();
    let claims = AccessClaims {
        iss: issuer.clone(),
        sub: "client:svc".into(),
        aud: issuer,
        client_id: "svc".into(),
        scope: String::new(),
        exp: now + ttl,
        iat: now,
        jti: jti.into(),
        grant: None,
    };
    engine
        .oauth
        .sign(ACCESS_TYP, &claims, now)
        .await
        .expect("sign")
}

async fn valid(engine: &Engine, token: &str) -> bool {
    engine.access_token(token).await.expect("store").is_some()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_access_token_is_verified_once_until_it_expires_or_is_revoked() {
    // A fixed start: only the engine's clock matters to the tokens.
    let clock = Arc::new(ManualClock::new(
        UNIX_EPOCH + Duration::from_secs(1_800_000_000),
    ));
    let (_dir, engine) = engine(clock.clone()).await;

    let t = token(&engine, "j1", 600).await;
    let checks = engine.oauth.signature_checks();
    for _ in 0..3 {
        assert!(valid(&engine, &t).await);
    }
    assert_eq!(
        engine.oauth.signature_checks() - checks,
        1,
        "one signature check for three uses"
    );
    let metrics = engine.render_metrics();
    assert!(
        metrics.contains(r#"postern_token_cache_requests_total{issuer="postern",result="hit"} 2"#),
        "{metrics}"
    );
    // A tampered copy is not the cached token: verified, and refused.
    let mut forged = t.clone();
    forged.pop();
    forged.push(if t.ends_with('A') { 'B' } else { 'A' });
    assert!(!valid(&engine, &forged).await);

    // Revoked: refused on the very next use although its verification is cached.
    let now = engine.clock.unix();
    engine.store.revoke_jti("j1", now + 600).await.unwrap();
    assert!(!valid(&engine, &t).await);

    // Expired by the engine's clock: a cached token is not used past its exp.
    let short = token(&engine, "j2", 60).await;
    assert!(valid(&engine, &short).await);
    assert!(valid(&engine, &short).await);
    clock.advance(Duration::from_secs(59));
    assert!(
        valid(&engine, &short).await,
        "still good a second before exp"
    );
    clock.advance(Duration::from_secs(1));
    assert!(!valid(&engine, &short).await, "refused at exp");

    // The signing key removed (a rotation's end): its cached tokens end with it.
    let t3 = token(&engine, "j3", 600).await;
    assert!(valid(&engine, &t3).await);
    let checks = engine.oauth.signature_checks();
    assert!(valid(&engine, &t3).await);
    assert_eq!(
        engine.oauth.signature_checks(),
        checks,
        "answered from memory"
    );
    for k in engine.store.oauth_keys().await.unwrap() {
        engine.store.delete_oauth_key(&k.kid).await.unwrap();
    }
    // The key ring is reread after a few seconds (as it was before this cache).
    clock.advance(Duration::from_secs(6));
    assert!(!valid(&engine, &t3).await);
}
