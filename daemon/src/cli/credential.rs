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
    #[command(
        after_help = "Examples:\n  postern api-key add backup-bot --description nightly --allowed-ip 192.0.2.0/24\n  postern app-password add alice --description Thunderbird --scope replace --permission imap-authenticate --permission email-send"
    )]
    Add {
        account: String,
        /// Free text shown in lists, e.g. --description Thunderbird.
        #[arg(long)]
        description: Option<String>,
        /// When it stops working (RFC 3339), e.g. --expires-at 2027-06-30T00:00:00Z.
        #[arg(long)]
        expires_at: Option<String>,
        /// An address or CIDR network it may be used from (repeatable), e.g. --allowed-ip
        /// 192.0.2.0/24.
        #[arg(long = "allowed-ip")]
        allowed_ips: Vec<String>,
        /// `disable` (the account's permissions less these) or `replace` (only these), e.g.
        /// --scope replace.
        #[arg(long)]
        scope: Option<String>,
        /// A permission of the scope (repeatable), e.g. --permission imap-authenticate.
        #[arg(long = "permission")]
        permissions: Vec<String>,
        /// Print the API's JSON object instead of a table, e.g. --json.
        #[arg(long)]
        json: bool,
    },
    /// List ACCOUNT's (never their secrets).
    #[command(after_help = "Examples:\n  postern api-key list backup-bot --json")]
    List {
        account: String,
        /// Print the API's JSON object instead of a table, e.g. --json.
        #[arg(long)]
        json: bool,
    },
    /// Revoke one.
    #[command(after_help = "Examples:\n  postern app-password revoke alice 7d1e4b0a")]
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
