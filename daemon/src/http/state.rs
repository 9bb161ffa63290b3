//! The router's state: the engine, and the settings the HTTP front-end takes from the
//! configuration. Built once for all HTTP listeners; on SIGHUP the settings are swapped whole
//! (as the engine swaps its directory chain), so running listeners keep their sockets and a
//! request in progress finishes with the settings it started with.

use std::sync::{Arc, RwLock};

use super::cookie::CookieSettings;
use super::forwarded::{BadProxy, TrustedProxies};
use super::nginx::NginxSettings;
use crate::auth::Engine;
use crate::config::Config;

/// What the HTTP front-end reads from the configuration. New areas (OAuth, OIDC, the
/// management API) add their settings here as fields.
pub struct HttpSettings {
    /// `[auth-http]`, for `GET /auth/nginx`.
    pub nginx: NginxSettings,
    /// `[server] trusted-proxies`, for [`super::extract::ClientIp`].
    pub trusted_proxies: TrustedProxies,
    pub cookie: CookieSettings,
    /// The OIDC directories of the chain, by name, for their login flow (`/auth/oidc/…`).
    pub oidc: super::oidc::OidcDirectories,
}

impl HttpSettings {
    /// From a validated configuration; `trusted-proxies` was checked by validation, so an
    /// error here means the caller skipped it.
    pub fn from_config(c: &Config) -> Result<HttpSettings, BadProxy> {
        Ok(HttpSettings {
            nginx: NginxSettings::from_config(&c.auth_http),
            trusted_proxies: TrustedProxies::parse(&c.server.trusted_proxies)?,
            cookie: CookieSettings::from_public_url(&c.server.public_url),
            oidc: super::oidc::directories(c),
        })
    }
}

#[derive(Clone)]
pub struct AppState {
    pub engine: Arc<Engine>,
    settings: Arc<RwLock<Arc<HttpSettings>>>,
}

impl AppState {
    pub fn new(engine: Arc<Engine>, settings: HttpSettings) -> AppState {
        AppState {
            engine,
            settings: Arc::new(RwLock::new(Arc::new(settings))),
        }
    }

    /// The settings in force. A handler takes them once and uses that one snapshot.
    pub fn settings(&self) -> Arc<HttpSettings> {
        self.settings
            .read()
            .map(|s| s.clone())
            .unwrap_or_else(|poisoned| poisoned.into_inner().clone())
    }

    /// Puts new settings in force on every listener sharing this state (configuration reload).
    pub fn replace(&self, settings: HttpSettings) {
        let settings = Arc::new(settings);
        match self.settings.write() {
            Ok(mut s) => *s = settings,
            Err(poisoned) => *poisoned.into_inner() = settings,
        }
    }
}
