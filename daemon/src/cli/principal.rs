//! `postern principal …`, `postern passwd`, `postern role …`: the management operations of
//! [`crate::admin`] (the same checks and writes as `/api/v1`) for the administrator at the
//! daemon's machine, who holds every permission.

use std::io::{BufRead, IsTerminal};
use std::path::PathBuf;

use clap::Subcommand;
use postern_internal::input::{AccountInput, Password};
use postern_internal::model::{AccountType, Permissions, Role, RoleSet};
use serde::Serialize;

use super::output::out;
use super::{load_valid, Failure};
use crate::admin::{Actor, Admin, AdminError, PrincipalQuery, Window};
use crate::config::find_source;
use crate::runtime;

#[derive(Debug, Subcommand)]
pub enum PrincipalAction {
    /// List principals in name order.
    #[command(
        after_help = "Examples:\n  postern principal list\n  postern principal list --type group --tenant acme --json"
    )]
    List {
        /// `individual` or `group`, e.g. --type group.
        #[arg(long = "type")]
        kind: Option<String>,
        /// Only this tenant's, e.g. --tenant acme.
        #[arg(long)]
        tenant: Option<String>,
        /// Print the API's JSON object instead of a table, e.g. --json.
        #[arg(long)]
        json: bool,
    },
    /// Show one principal.
    #[command(after_help = "Examples:\n  postern principal show alice --json")]
    Show {
        name: String,
        /// Print the API's JSON object instead of a table, e.g. --json.
        #[arg(long)]
        json: bool,
    },
    /// Create a principal (no password: set one with `postern passwd`).
    #[command(
        after_help = "Examples:\n  postern principal add alice --email alice@example.org --role user\n  postern principal add staff --type group"
    )]
    Add {
        name: String,
        /// `individual` or `group`, e.g. --type group.
        #[arg(long = "type", default_value = "individual")]
        kind: String,
        /// The tenant it belongs to, e.g. --tenant acme.
        #[arg(long)]
        tenant: Option<String>,
        /// Free text, e.g. --description "Alice Liddell".
        #[arg(long)]
        description: Option<String>,
        /// An email address (repeatable), e.g. --email alice@example.org.
        #[arg(long = "email")]
        emails: Vec<String>,
        /// A role id (repeatable; `user` when none is given), e.g. --role admin.
        #[arg(long = "role")]
        roles: Vec<String>,
        /// A group (repeatable), e.g. --member-of staff.
        #[arg(long = "member-of")]
        member_of: Vec<String>,
        /// Print the API's JSON object instead of a table, e.g. --json.
        #[arg(long)]
        json: bool,
    },
    /// Change a principal with a JSON merge patch, as `PATCH /api/v1/principals/NAME`.
    #[command(
        after_help = "Examples:\n  postern principal set alice '{\"description\": \"Alice\", \"memberOf\": [\"staff\"]}'"
    )]
    Set {
        name: String,
        /// e.g. '{"description": "Alice", "memberOf": ["staff"]}'
        patch: String,
        /// Print the API's JSON object instead of a table, e.g. --json.
        #[arg(long)]
        json: bool,
    },
    /// Delete a principal with its credentials and sessions.
    #[command(after_help = "Examples:\n  postern principal remove alice")]
    Remove { name: String },
}

#[derive(Debug, Subcommand)]
pub enum RoleAction {
    /// List roles in id order.
    #[command(after_help = "Examples:\n  postern role list --json")]
    List {
        /// Print the API's JSON object instead of a table, e.g. --json.
        #[arg(long)]
        json: bool,
    },
    /// Show one role.
    #[command(after_help = "Examples:\n  postern role show helpdesk")]
    Show {
        id: String,
        /// Print the API's JSON object instead of a table, e.g. --json.
        #[arg(long)]
        json: bool,
    },
    /// Create a role.
    #[command(
        after_help = "Examples:\n  postern role add helpdesk --include user --enable individual-list --enable individual-get"
    )]
    Add {
        id: String,
        /// Free text, e.g. --description "Help desk".
        #[arg(long)]
        description: Option<String>,
        /// A role it includes (repeatable), e.g. --include user.
        #[arg(long = "include")]
        role_ids: Vec<String>,
        /// A permission it enables (repeatable), e.g. --enable individual-list.
        #[arg(long = "enable")]
        enabled: Vec<String>,
        /// A permission it disables (repeatable), e.g. --disable email-send.
        #[arg(long = "disable")]
        disabled: Vec<String>,
        /// The tenant it belongs to, e.g. --tenant acme.
        #[arg(long)]
        tenant: Option<String>,
        /// Print the API's JSON object instead of a table, e.g. --json.
        #[arg(long)]
        json: bool,
    },
    /// Change a role with a JSON merge patch.
    #[command(
        after_help = "Examples:\n  postern role set helpdesk '{\"description\": \"Help desk\"}'"
    )]
    Set {
        id: String,
        patch: String,
        /// Print the API's JSON object instead of a table, e.g. --json.
        #[arg(long)]
        json: bool,
    },
    /// Delete a role no one holds any more.
    #[command(after_help = "Examples:\n  postern role remove helpdesk")]
    Remove { id: String },
}

/// The operations over the configured store, for the local administrator.
pub async fn admin(config: Option<PathBuf>) -> Result<Admin, Failure> {
    let config = load_valid(&find_source(config.as_deref()))?;
    let store = runtime::open_store(&config).await?;
    Ok(Admin::new(store, runtime::hasher(&config, None)))
}

/// An operation's refusal: a user error (exit 1), or the store's (exit 2).
pub fn failed(e: AdminError) -> Failure {
    match e {
        AdminError::Unavailable(_) | AdminError::Internal(_) => Failure::runtime(e.to_string()),
        AdminError::Invalid(problems) | AdminError::Referenced(problems) => Failure::user(problems),
        e => Failure::user(vec![e.to_string()]),
    }
}

pub fn print_json<T: Serialize>(value: &T) -> Result<(), Failure> {
    let text = serde_json::to_string_pretty(value)
        .map_err(|e| Failure::runtime(format!("cannot print: {e}")))?;
    out!("{text}")
}

fn kind(text: &str) -> Result<AccountType, Failure> {
    match text {
        "individual" => Ok(AccountType::Individual),
        "group" => Ok(AccountType::Group),
        other => Err(Failure::user(vec![format!(
            "--type: {other:?} is neither individual nor group"
        )])),
    }
}

fn patch(text: &str) -> Result<serde_json::Value, Failure> {
    serde_json::from_str(text).map_err(|e| Failure::user(vec![format!("PATCH: not JSON: {e}")]))
}

fn show(v: &postern_internal::view::AccountView, json: bool) -> Result<(), Failure> {
    if json {
        return print_json(v);
    }
    let kind = match v.kind {
        AccountType::Individual => "individual",
        AccountType::Group => "group",
    };
    out!(
        "{} ({kind}, id {}, version {}) tenant={} emails={} memberOf={} roles={}",
        v.name,
        v.id,
        v.version,
        v.tenant.as_deref().unwrap_or("-"),
        v.emails.join(","),
        v.member_of.join(","),
        serde_json::to_string(&v.roles).unwrap_or_default()
    )
}

pub async fn principal(config: Option<PathBuf>, action: PrincipalAction) -> Result<(), Failure> {
    let admin = admin(config).await?;
    let me = Actor::local();
    match action {
        PrincipalAction::List {
            kind: k,
            tenant,
            json,
        } => {
            let mut q = PrincipalQuery {
                kind: k.as_deref().map(kind).transpose()?,
                tenant,
                window: Window {
                    limit: Some(postern_internal::store::MAX_PAGE),
                    ..Window::default()
                },
            };
            let mut all = Vec::new();
            loop {
                let page = admin.list_principals(&me, &q).await.map_err(failed)?;
                all.extend(page.items);
                match page.next {
                    Some(next) => q.window.cursor = Some(next),
                    None => break,
                }
            }
            if json {
                return print_json(&all);
            }
            for v in &all {
                show(v, false)?;
            }
            Ok(())
        }
        PrincipalAction::Show { name, json } => {
            show(&admin.principal(&me, &name).await.map_err(failed)?, json)
        }
        PrincipalAction::Add {
            name,
            kind: k,
            tenant,
            description,
            emails,
            roles,
            member_of,
            json,
        } => {
            let input = AccountInput {
                name,
                kind: kind(&k)?,
                description: description.unwrap_or_default(),
                emails,
                member_of,
                tenant,
                roles: (!roles.is_empty()).then_some(RoleSet::List(roles)),
                permissions: Permissions::default(),
                ..AccountInput::default()
            };
            let v = admin.create_principal(&me, input).await.map_err(failed)?;
            show(&v, json)
        }
        PrincipalAction::Set {
            name,
            patch: p,
            json,
        } => {
            let v = admin
                .patch_principal(&me, &name, &patch(&p)?, None)
                .await
                .map_err(failed)?;
            show(&v, json)
        }
        PrincipalAction::Remove { name } => {
            admin
                .delete_principal(&me, &name, None)
                .await
                .map_err(failed)?;
            out!("removed {name}")
        }
    }
}

/// `postern passwd NAME`: asks twice on a terminal (without echo), reads one line otherwise.
pub async fn passwd(config: Option<PathBuf>, name: String) -> Result<(), Failure> {
    let password = read_password()?;
    let admin = admin(config).await?;
    admin
        .set_password(&Actor::local(), &name, password)
        .await
        .map_err(failed)?;
    out!("password of {name} changed; its sessions ended")
}

fn read_password() -> Result<Password, Failure> {
    let stdin = std::io::stdin();
    let line = |prompt: &str| -> Result<zeroize::Zeroizing<String>, Failure> {
        if !prompt.is_empty() {
            eprint_prompt(prompt);
        }
        let mut text = zeroize::Zeroizing::new(String::new());
        stdin
            .lock()
            .read_line(&mut text)
            .map_err(|e| Failure::user(vec![format!("stdin: {e}")]))?;
        let trimmed = text.trim_end_matches(['\n', '\r']).to_string();
        Ok(zeroize::Zeroizing::new(trimmed))
    };
    let first = if stdin.is_terminal() {
        let _echo = NoEcho::new();
        let a = line("New password: ")?;
        let b = line("\nAgain: ")?;
        eprint_prompt("\n");
        if a != b {
            return Err(Failure::user(vec![
                "the passwords differ; nothing changed".into()
            ]));
        }
        a
    } else {
        line("")?
    };
    if first.is_empty() {
        return Err(Failure::user(
            vec!["empty password; nothing changed".into()],
        ));
    }
    Ok(Password::new(first.as_str()))
}

fn eprint_prompt(text: &str) {
    use std::io::Write;
    let mut err = std::io::stderr().lock();
    let _ = err.write_all(text.as_bytes());
    let _ = err.flush();
}

/// Turns the terminal's echo off while a password is typed (`stty`), back on when dropped.
struct NoEcho;

impl NoEcho {
    fn new() -> NoEcho {
        let _ = std::process::Command::new("stty").arg("-echo").status();
        NoEcho
    }
}

impl Drop for NoEcho {
    fn drop(&mut self) {
        let _ = std::process::Command::new("stty").arg("echo").status();
    }
}

pub async fn role(config: Option<PathBuf>, action: RoleAction) -> Result<(), Failure> {
    let admin = admin(config).await?;
    let me = Actor::local();
    let print = |v: &crate::admin::WithVersion<Role>, json: bool| {
        if json {
            return print_json(v);
        }
        out!(
            "{} (version {}) roleIds={} enabled={} disabled={} tenant={}",
            v.value.id,
            v.version,
            v.value.role_ids.join(","),
            v.value.enabled_permissions.join(","),
            v.value.disabled_permissions.join(","),
            v.value.member_tenant_id.as_deref().unwrap_or("-")
        )
    };
    match action {
        RoleAction::List { json } => {
            let mut w = Window {
                limit: Some(postern_internal::store::MAX_PAGE),
                ..Window::default()
            };
            let mut all = Vec::new();
            loop {
                let page = admin.list_roles(&me, &w).await.map_err(failed)?;
                all.extend(page.items);
                match page.next {
                    Some(next) => w.cursor = Some(next),
                    None => break,
                }
            }
            if json {
                return print_json(&all);
            }
            for r in &all {
                print(r, false)?;
            }
            Ok(())
        }
        RoleAction::Show { id, json } => print(&admin.role(&me, &id).await.map_err(failed)?, json),
        RoleAction::Add {
            id,
            description,
            role_ids,
            enabled,
            disabled,
            tenant,
            json,
        } => {
            let role = Role {
                id,
                description: description.unwrap_or_default(),
                role_ids,
                enabled_permissions: enabled,
                disabled_permissions: disabled,
                member_tenant_id: tenant,
            };
            print(&admin.create_role(&me, role).await.map_err(failed)?, json)
        }
        RoleAction::Set { id, patch: p, json } => print(
            &admin
                .patch_role(&me, &id, &patch(&p)?, None)
                .await
                .map_err(failed)?,
            json,
        ),
        RoleAction::Remove { id } => {
            admin.delete_role(&me, &id, None).await.map_err(failed)?;
            out!("removed role {id}")
        }
    }
}
