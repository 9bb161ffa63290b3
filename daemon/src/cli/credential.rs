//! `postern api-key …` and `postern app-password …`: mint (the secret printed once), list,
//! revoke a principal's credentials, through [`crate::admin`].

use std::path::PathBuf;

use clap::Subcommand;
use postern_internal::model::{CredentialScope, CredentialType, ScopeMode};

use super::output::out;
use super::principal::{admin, failed, print_json};
use super::Failure;
use crate::admin::{Actor, CredentialRequest, Window};

#[derive(Debug, Subcommand)]
pub enum CredentialAction {
    /// Mint one for ACCOUNT; its secret is printed this once.
    Add {
        account: String,
        #[arg(long)]
        description: Option<String>,
        /// RFC 3339.
        #[arg(long)]
        expires_at: Option<String>,
        /// An address or CIDR network it may be used from (repeatable).
        #[arg(long = "allowed-ip")]
        allowed_ips: Vec<String>,
        /// `disable` (the account's permissions less these) or `replace` (only these).
        #[arg(long)]
        scope: Option<String>,
        /// A permission of the scope (repeatable).
        #[arg(long = "permission")]
        permissions: Vec<String>,
        #[arg(long)]
        json: bool,
    },
    /// List ACCOUNT's (never their secrets).
    List {
        account: String,
        #[arg(long)]
        json: bool,
    },
    /// Revoke one.
    Revoke { account: String, id: String },
}

pub async fn run(
    config: Option<PathBuf>,
    kind: CredentialType,
    action: CredentialAction,
) -> Result<(), Failure> {
    let admin = admin(config).await?;
    let me = Actor::local();
    match action {
        CredentialAction::Add {
            account,
            description,
            expires_at,
            allowed_ips,
            scope,
            permissions,
            json,
        } => {
            let mode = match scope.as_deref() {
                None | Some("inherit") => ScopeMode::Inherit,
                Some("disable") => ScopeMode::Disable,
                Some("replace") => ScopeMode::Replace,
                Some(other) => {
                    return Err(Failure::user(vec![format!(
                        "--scope: {other:?} is not inherit, disable or replace"
                    )]))
                }
            };
            let request = CredentialRequest {
                description: description.unwrap_or_default(),
                expires_at,
                allowed_ips,
                permissions: CredentialScope { mode, permissions },
            };
            let made = admin
                .create_credential(&me, kind, &account, request)
                .await
                .map_err(failed)?;
            if json {
                return print_json(&made);
            }
            out!("{} {} for {account}", kind.as_str(), made.credential.id)?;
            // Shown once: only its hash is stored.
            out!("secret: {}", made.secret)
        }
        CredentialAction::List { account, json } => {
            let mut w = Window {
                limit: Some(postern_internal::store::MAX_PAGE),
                ..Window::default()
            };
            let mut all = Vec::new();
            loop {
                let page = admin
                    .list_credentials(&me, kind, &account, &w)
                    .await
                    .map_err(failed)?;
                all.extend(page.items);
                match page.next {
                    Some(next) => w.cursor = Some(next),
                    None => break,
                }
            }
            if json {
                return print_json(&all);
            }
            for c in &all {
                out!(
                    "{} expires={} description={:?}",
                    c.id,
                    c.expires_at.as_deref().unwrap_or("never"),
                    c.description
                )?;
            }
            Ok(())
        }
        CredentialAction::Revoke { account, id } => {
            admin
                .delete_credential(&me, kind, &account, &id, None)
                .await
                .map_err(failed)?;
            out!("revoked {} {id}", kind.as_str())
        }
    }
}
