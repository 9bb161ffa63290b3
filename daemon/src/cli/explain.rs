//! `postern explain NAME [PERMISSION]`.

use std::path::PathBuf;

use postern_internal::model::AccountType;

use super::output::out;
use super::{load_valid, Failure};
use crate::authz::{Permission, Policy, Subject};
use crate::config::find_source;
use crate::runtime;

pub async fn run(
    config: Option<PathBuf>,
    name: String,
    permission: Option<String>,
) -> Result<(), Failure> {
    let config = load_valid(&find_source(config.as_deref()))?;
    let permission = match &permission {
        Some(p) => Some(Permission::from_name(p).ok_or_else(|| {
            Failure::user(vec![format!(
                "{p:?} is not a permission (see data/permissions.tsv)"
            )])
        })?),
        None => None,
    };
    let store = runtime::open_store(&config).await?;
    let snapshot = store
        .snapshot()
        .await
        .map_err(|e| Failure::runtime(format!("store: {e}")))?;
    let policy = Policy::compile(&snapshot).map_err(Failure::user)?;
    let stored = store
        .account(&name)
        .await
        .map_err(|e| Failure::runtime(format!("store: {e}")))?
        .ok_or_else(|| {
            Failure::user(vec![format!(
                "{name:?}: no such account in the internal store"
            )])
        })?;
    let subject = Subject::from_account(&stored.account, &[])
        .map_err(|e| Failure::user(vec![e.to_string()]))?;
    let grant = policy
        .evaluate(&subject)
        .map_err(|e| Failure::user(vec![format!("{name}: {e}")]))?;
    let kind = match stored.account.kind {
        AccountType::Individual => "individual",
        AccountType::Group => "group",
    };
    out!(
        "{} ({kind}, id {}, from {})",
        stored.account.name,
        stored.id,
        stored.origin
    )?;
    if let Some(t) = &stored.account.tenant {
        out!("tenant: {t}")?;
    }
    out!(
        "roles: {}",
        grant.roles.iter().cloned().collect::<Vec<_>>().join(", ")
    )?;
    out!(
        "groups: {}",
        grant.groups.iter().cloned().collect::<Vec<_>>().join(", ")
    )?;
    match permission {
        None => {
            out!("permissions ({}):", grant.effective.len())?;
            for p in grant.effective.sorted_names() {
                out!("  {p}")?;
            }
        }
        Some(p) => {
            for line in policy
                .explain(&subject, p)
                .map_err(|e| Failure::user(vec![e.to_string()]))?
            {
                out!("{line}")?;
            }
        }
    }
    Ok(())
}
