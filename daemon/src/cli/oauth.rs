//! `postern keys rotate|list|remove` (the OAuth server's signing keys) and
//! `postern oauth-client add|list|remove` (day-to-day client management; provisioning files
//! remain the way to declare them in bulk). A new client secret is printed once: only its
//! hash is stored.

use std::path::PathBuf;

use clap::Subcommand;
use postern_internal::input::OAuthClientInput;
use postern_internal::model::{ClientType, CredentialType, Permissions, RoleSet};
use postern_internal::store::{Expect, ListQuery, WriteError};
use postern_internal::tokens::generate_secret;
use zeroize::Zeroizing;

use super::output::out;
use super::{load_valid, Failure};
use crate::auth::clock::{rfc3339, Clock, SystemClock};
use crate::config::find_source;
use crate::oauth::keys;
use crate::runtime;

#[derive(Debug, Subcommand)]
pub enum KeysAction {
    /// Add the next signing key: published now, signing after --activate-in; keys replaced
    /// more than --keep ago are removed (their tokens have expired).
    #[command(
        after_help = "Examples:\n  postern keys rotate\n  postern keys rotate --activate-in 30m --keep 2h"
    )]
    Rotate {
        /// The daemon's configuration, to find its store, e.g. --config
        /// /etc/postern/postern.toml (default: ./postern.toml, else the embedded defaults).
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
        /// How long the new key is only published before it signs (caches of the JWKS
        /// refresh in that time), e.g. --activate-in 30m.
        #[arg(long, default_value = "10m", value_parser = humantime::parse_duration)]
        activate_in: std::time::Duration,
        /// How long a replaced key stays published (at least the access tokens' lifetime),
        /// e.g. --keep 2h.
        #[arg(long, default_value = "1h", value_parser = humantime::parse_duration)]
        keep: std::time::Duration,
    },
    /// List the signing keys and when each signs from.
    #[command(after_help = "Examples:\n  postern keys list --config /etc/postern/postern.toml")]
    List {
        /// The daemon's configuration, to find its store, e.g. --config
        /// /etc/postern/postern.toml (default: ./postern.toml, else the embedded defaults).
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
    },
    /// Remove a key at once: tokens it signed stop verifying.
    #[command(after_help = "Examples:\n  postern keys remove 3f9a0c2e")]
    Remove {
        /// The daemon's configuration, to find its store, e.g. --config
        /// /etc/postern/postern.toml (default: ./postern.toml, else the embedded defaults).
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
        /// A key id is the key's RFC 7638 thumbprint in base64url, which starts with `-` one
        /// time in 64: taken as the id, not as an option.
        #[arg(allow_hyphen_values = true)]
        kid: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum ClientAction {
    /// Create a client; a confidential one gets a generated secret, printed once.
    #[command(
        after_help = "Examples:\n  postern oauth-client add webmail --redirect-uri https://mail.example.org/oauth/callback --first-party\n  postern oauth-client add thunderbird --public --redirect-uri http://127.0.0.1/\n  postern oauth-client add backup --grant-type client_credentials --role backup-reader"
    )]
    Add {
        /// The daemon's configuration, to find its store, e.g. --config
        /// /etc/postern/postern.toml (default: ./postern.toml, else the embedded defaults).
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
        client_id: String,
        /// Registered redirect URI (repeatable); matched exactly, e.g. --redirect-uri
        /// https://mail.example.org/oauth/callback.
        #[arg(long = "redirect-uri")]
        redirect_uris: Vec<String>,
        /// A public client (native or browser app): no secret, PKCE only, e.g. --public.
        #[arg(long)]
        public: bool,
        /// authorization_code, refresh_token, client_credentials (repeatable), e.g.
        /// --grant-type client_credentials.
        #[arg(long = "grant-type")]
        grant_types: Vec<String>,
        /// A scope it may ask for (repeatable; default: all), e.g. --scope openid.
        #[arg(long = "scope")]
        scopes: Vec<String>,
        /// Role ids of the client itself (client_credentials), e.g. --role backup-reader.
        #[arg(long = "role")]
        roles: Vec<String>,
        /// The site's own application: no consent page, e.g. --first-party.
        #[arg(long)]
        first_party: bool,
        /// Free text shown in lists, e.g. --description "Roundcube".
        #[arg(long, default_value = "")]
        description: String,
    },
    /// List the clients (never their secrets).
    #[command(after_help = "Examples:\n  postern oauth-client list")]
    List {
        /// The daemon's configuration, to find its store, e.g. --config
        /// /etc/postern/postern.toml (default: ./postern.toml, else the embedded defaults).
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
    },
    /// Remove a client: it can no longer authenticate nor obtain tokens.
    #[command(after_help = "Examples:\n  postern oauth-client remove webmail")]
    Remove {
        /// The daemon's configuration, to find its store, e.g. --config
        /// /etc/postern/postern.toml (default: ./postern.toml, else the embedded defaults).
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
        client_id: String,
    },
}

fn store_failure(e: impl std::fmt::Display) -> Failure {
    Failure::runtime(format!("store: {e}"))
}

pub async fn keys(action: KeysAction) -> Result<(), Failure> {
    let now = SystemClock.unix();
    match action {
        KeysAction::Rotate {
            config,
            activate_in,
            keep,
        } => {
            let config = load_valid(&find_source(config.as_deref()))?;
            let store = runtime::open_store(&config).await?;
            let secs = |d: std::time::Duration| i64::try_from(d.as_secs()).unwrap_or(i64::MAX);
            let (kid, removed) = keys::rotate(&store, now, secs(activate_in), secs(keep))
                .await
                .map_err(store_failure)?;
            out!(
                "added key {kid}, published now, signing from {}",
                rfc3339(now.saturating_add(secs(activate_in)))
            )?;
            for k in removed {
                out!("removed key {k}")?;
            }
            Ok(())
        }
        KeysAction::List { config } => {
            let config = load_valid(&find_source(config.as_deref()))?;
            let store = runtime::open_store(&config).await?;
            for k in store.oauth_keys().await.map_err(store_failure)? {
                out!("{} {} signs-from {}", k.kid, k.alg, rfc3339(k.signs_from))?;
            }
            Ok(())
        }
        KeysAction::Remove { config, kid } => {
            let config = load_valid(&find_source(config.as_deref()))?;
            let store = runtime::open_store(&config).await?;
            if !store.delete_oauth_key(&kid).await.map_err(store_failure)? {
                return Err(Failure::user(vec![format!("no signing key {kid:?}")]));
            }
            out!("removed key {kid}")
        }
    }
}

pub async fn clients(action: ClientAction) -> Result<(), Failure> {
    match action {
        ClientAction::Add {
            config,
            client_id,
            redirect_uris,
            public,
            grant_types,
            scopes,
            roles,
            first_party,
            description,
        } => {
            let config = load_valid(&find_source(config.as_deref()))?;
            let store = runtime::open_store(&config)
                .await?
                .with_rules(crate::auth::store_rules());
            let hasher = runtime::hasher(&config, None);
            let secret: Option<Zeroizing<String>> =
                (!public).then(|| generate_secret(CredentialType::ApiKey));
            let hash = match &secret {
                Some(s) => Some(
                    hasher
                        .hash(Zeroizing::new(s.as_bytes().to_vec()))
                        .await
                        .map_err(|e| Failure::runtime(format!("hashing failed: {e}")))?,
                ),
                None => None,
            };
            let input = OAuthClientInput {
                client_id: client_id.clone(),
                secret: hash,
                redirect_uris,
                description,
                member_tenant_id: None,
                roles: (!roles.is_empty()).then_some(RoleSet::List(roles)),
                permissions: Permissions::default(),
                client_type: Some(if public {
                    ClientType::Public
                } else {
                    ClientType::Confidential
                }),
                grant_types,
                scopes,
                first_party,
            };
            let mut tx = store.begin().await.map_err(store_failure)?;
            let written = async {
                tx.put_oauth_client(&input, Expect::New).await?;
                tx.commit().await
            }
            .await;
            match written {
                Ok(_) => {}
                Err(WriteError::Invalid(problems)) => return Err(Failure::user(problems)),
                Err(WriteError::Exists(what)) => {
                    return Err(Failure::user(vec![format!("{what} already exists")]))
                }
                Err(e) => return Err(store_failure(e)),
            }
            out!("created oauth-client {client_id}")?;
            if let Some(s) = secret {
                out!("secret of oauth-client {client_id}: {}", s.as_str())?;
            }
            Ok(())
        }
        ClientAction::List { config } => {
            let config = load_valid(&find_source(config.as_deref()))?;
            let store = runtime::open_store(&config).await?;
            let mut q = ListQuery {
                limit: 100,
                ..Default::default()
            };
            loop {
                let page = store.oauth_clients(&q).await.map_err(store_failure)?;
                for (c, _) in &page.items {
                    let kind = match c.client_type {
                        Some(ClientType::Public) => "public",
                        Some(ClientType::Confidential) => "confidential",
                        None => "-",
                    };
                    out!(
                        "{} {kind} grants=[{}] redirects=[{}]",
                        c.client_id,
                        c.grant_types.join(","),
                        c.redirect_uris.join(",")
                    )?;
                }
                match page.next {
                    Some(next) => q.after = Some(next),
                    None => return Ok(()),
                }
            }
        }
        ClientAction::Remove { config, client_id } => {
            let config = load_valid(&find_source(config.as_deref()))?;
            let store = runtime::open_store(&config)
                .await?
                .with_rules(crate::auth::store_rules());
            let mut tx = store.begin().await.map_err(store_failure)?;
            let done = async {
                tx.delete_oauth_client(&client_id, None).await?;
                tx.commit().await
            }
            .await;
            match done {
                Ok(_) => out!("removed oauth-client {client_id}"),
                Err(WriteError::NotFound(what)) => {
                    Err(Failure::user(vec![format!("{what} does not exist")]))
                }
                Err(WriteError::Invalid(p)) => Err(Failure::user(p)),
                Err(e) => Err(store_failure(e)),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    /// A generated key id may start with `-` (the e2e key-rotation test met one).
    #[test]
    fn a_key_id_starting_with_a_hyphen_is_taken_as_the_id() {
        let parsed = crate::cli::Args::try_parse_from(["postern", "keys", "remove", "-9abc"]);
        assert!(parsed.is_ok(), "{:?}", parsed.err());
        let parsed = crate::cli::Args::try_parse_from([
            "postern", "keys", "remove", "-9abc", "--config", "x.toml",
        ]);
        assert!(parsed.is_ok(), "{:?}", parsed.err());
    }
}
