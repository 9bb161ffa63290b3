//! The HTTP front-end (axum).
//!
//! One router per area, each in its own module with its paths written in full (as SPEC §6
//! lists them), merged by [`router`]. The toolkit every area shares: [`AppState`] (engine and
//! reloadable settings), the extractors of [`extract`], and two error families, [`ApiError`]
//! (SPEC §6 JSON) and [`OAuthError`] (RFC 6749).

mod auth;
pub mod cookie;
mod error;
pub mod extract;
pub mod forwarded;
pub mod nginx;
mod oauth_error;
mod ops;
mod state;

use std::net::SocketAddr;

use axum::extract::connect_info::Connected;
use axum::extract::DefaultBodyLimit;
use axum::Router;

use crate::net::Listener;

pub use error::ApiError;
pub use oauth_error::{OAuthError, OAuthErrorCode};
pub use state::{AppState, HttpSettings};

/// Bodies larger than this are refused with 413 before they are read in full.
pub const MAX_BODY: usize = 64 * 1024;

/// The client's address as the connection shows it (none for unix sockets).
#[derive(Debug, Clone, Copy)]
pub struct ClientAddr(pub Option<SocketAddr>);

impl Connected<axum::serve::IncomingStream<'_, Listener>> for ClientAddr {
    fn connect_info(stream: axum::serve::IncomingStream<'_, Listener>) -> Self {
        ClientAddr(*stream.remote_addr())
    }
}

/// Every HTTP endpoint. A new area is a module with `pub fn routes() -> Router<AppState>` and
/// one `.merge(…)` line here.
pub fn router(state: AppState) -> Router {
    Router::new()
        .merge(auth::routes())
        .merge(ops::routes())
        .fallback(ops::not_found)
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .with_state(state)
}

/// Serves `app` (from [`router`], shared by every HTTP listener) until `shutdown` completes,
/// then lets requests in flight finish.
pub async fn serve(
    listener: Listener,
    app: Router,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = app.into_make_service_with_connect_info::<ClientAddr>();
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
}

#[cfg(test)]
mod tests;
