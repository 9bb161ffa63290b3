//! The HTTP front-end (axum): logins, sessions, health, metrics.

pub mod cookie;
mod error;
pub mod forwarded;
mod health;
mod login;
pub mod nginx;
mod oauth_error;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::connect_info::Connected;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use axum::Router;

use crate::auth::Engine;
use crate::config::AuthHttpConfig;
use crate::net::Listener;

pub use error::ApiError;
pub use oauth_error::{OAuthError, OAuthErrorCode};

/// Bodies larger than this are refused with 413 before they are read in full.
pub const MAX_BODY: usize = 64 * 1024;

#[derive(Clone)]
pub struct AppState {
    pub engine: Arc<Engine>,
    /// `[auth-http]`, for `GET /auth/nginx`.
    pub nginx: Arc<nginx::NginxSettings>,
}

/// The client's address as the connection shows it (none for unix sockets).
#[derive(Debug, Clone, Copy)]
pub struct ClientAddr(pub Option<SocketAddr>);

impl Connected<axum::serve::IncomingStream<'_, Listener>> for ClientAddr {
    fn connect_info(stream: axum::serve::IncomingStream<'_, Listener>) -> Self {
        ClientAddr(*stream.remote_addr())
    }
}

pub fn router(engine: Arc<Engine>, auth_http: &AuthHttpConfig) -> Router {
    let nginx = Arc::new(nginx::NginxSettings::from_config(auth_http));
    Router::new()
        .route("/auth/login", post(login::login))
        .route("/auth/session", get(login::session).delete(login::logout))
        .route("/auth/nginx", get(nginx::auth))
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/metrics", get(health::metrics))
        .fallback(health::not_found)
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .with_state(AppState { engine, nginx })
}

/// Serves until `shutdown` completes, then lets requests in flight finish.
pub async fn serve(
    listener: Listener,
    engine: Arc<Engine>,
    auth_http: &AuthHttpConfig,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = router(engine, auth_http).into_make_service_with_connect_info::<ClientAddr>();
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
}
