//! A real engine on a private SQLite store for the front-end tests: `alice` (role user) and
//! `bob` (role user without `email-send` and `pop3-authenticate`), both with [`PASSWORD`].

use std::sync::Arc;

use postern_internal::input::Provision;

use crate::auth::Engine;
use crate::config::{load, Config, Source};
use crate::runtime;

pub const PASSWORD: &str = "correct horse battery";

const PROVISION: &str = r#"
[[account]]
name = "alice"
password = "correct horse battery"
roles = "user"

[[account]]
name = "bob"
password = "correct horse battery"
roles = "user"
permissions = { mode = "merge", disabled = ["email-send", "pop3-authenticate"] }
"#;

pub async fn engine() -> (tempfile::TempDir, Arc<Engine>) {
    engine_with(|_| {}).await
}

/// [`engine`], with `tune` applied to the embedded configuration first.
pub async fn engine_with(tune: impl FnOnce(&mut Config)) -> (tempfile::TempDir, Arc<Engine>) {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut config = load(&Source::Embedded).expect("embedded config");
    tune(&mut config);
    config.server.state_dir = dir.path().to_path_buf();
    config.store.url = String::new();
    config.store.url_file = None;
    let engine = runtime::engine(&config, runtime::system_clock())
        .await
        .expect("engine");
    let file: Provision = toml::from_str(PROVISION).expect("provision");
    engine.provision(&file).await.expect("apply");
    engine.reload_if_changed().await.expect("reload");
    (dir, engine)
}
