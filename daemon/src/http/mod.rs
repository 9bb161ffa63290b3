//! The HTTP front-end (axum).
//!
//! One router per area, each in its own module with its paths written in full (as SPEC §6
//! lists them), merged by [`router`]. The toolkit every area shares: [`AppState`] (engine and
//! reloadable settings), the extractors of [`extract`], and two error families, [`ApiError`]
//! (SPEC §6 JSON) and [`OAuthError`] (RFC 6749).

pub mod api;
mod app_passwords;
pub mod auth;
pub mod cookie;
mod error;
pub mod extract;
pub mod forwarded;
pub mod nginx;
pub mod oauth;
mod oauth_error;
pub mod oidc;
mod ops;
mod serve;
mod state;
pub mod verify;

use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};

use axum::extract::DefaultBodyLimit;
use axum::Router;

pub use error::ApiError;
pub use oauth_error::{OAuthError, OAuthErrorCode};
pub use serve::{serve, Timeouts};
pub use state::{AppState, HttpSettings};

/// Bodies larger than this are refused with 413 before they are read in full.
pub const MAX_BODY: usize = 64 * 1024;

/// The client's address as the connection shows it (none for unix sockets), put in each
/// request's extensions as axum's `ConnectInfo` by [`serve`].
#[derive(Debug, Clone, Copy)]
pub struct ClientAddr(pub Option<SocketAddr>);

/// Every HTTP endpoint. A new area is a module with `pub fn routes() -> Router<AppState>` and
/// one `.merge(…)` line here.
pub fn router(state: AppState) -> Router {
    Router::new()
        .merge(auth::routes())
        .merge(api::routes(&state))
        .merge(oauth::routes())
        .merge(ops::routes())
        .merge(verify::routes())
        .merge(oidc::routes())
        .merge(app_passwords::routes())
        .fallback(ops::not_found)
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .with_state(state)
}

/// Every HTTP endpoint, built when the first HTTP connection arrives rather than at start: the
/// routes' construction runs code of every handler, spread over the binary, which a daemon
/// that has not answered a web request yet (or only answers mail servers) need not map.
/// Clones share the one router.
#[derive(Clone)]
pub struct LazyRouter {
    state: AppState,
    router: Arc<OnceLock<Router>>,
}

impl LazyRouter {
    pub fn new(state: AppState) -> LazyRouter {
        LazyRouter {
            state,
            router: Arc::new(OnceLock::new()),
        }
    }

    /// The router, built by the first caller.
    pub fn get(&self) -> &Router {
        self.router.get_or_init(|| router(self.state.clone()))
    }

    /// Whether it has been built (for the test that it is not at start).
    #[cfg(test)]
    pub fn is_built(&self) -> bool {
        self.router.get().is_some()
    }
}

#[cfg(test)]
mod tests;
