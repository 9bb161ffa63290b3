//! `postern apply`: provisioning from a TOML file into the store.

use std::path::PathBuf;

use postern_internal::apply::{apply, ApplyError};
use postern_internal::input::Provision;

use super::output::out;
use super::{load_valid, Failure};
use crate::config::find_source;
use crate::runtime;

/// Parses a provisioning file (`-`: stdin); errors name the file, the key path and the
/// reason.
pub fn parse_provision(path: &std::path::Path) -> Result<Provision, Failure> {
    let name = path.display().to_string();
    let text = if name == "-" {
        let mut text = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut text)
            .map_err(|e| Failure::user(vec![format!("stdin: -: cannot read: {e}")]))?;
        text
    } else {
        std::fs::read_to_string(path)
            .map_err(|e| Failure::user(vec![format!("{name}: -: cannot read: {e}")]))?
    };
    toml::from_str(&text).map_err(|e| {
        let at = e
            .span()
            .map(|s| {
                let line = text[..s.start.min(text.len())].matches('\n').count() + 1;
                format!("line {line}")
            })
            .unwrap_or_else(|| "-".into());
        Failure::user(vec![format!("{name}: {at}: {}", e.message())])
    })
}

pub async fn run(
    config: Option<PathBuf>,
    provision: PathBuf,
    prune: bool,
    yes: bool,
) -> Result<(), Failure> {
    let config = load_valid(&find_source(config.as_deref()))?;
    let file = parse_provision(&provision)?;
    let store = runtime::open_store(&config).await?;
    let hasher = runtime::hasher(&config, None);
    let name = provision.display().to_string();
    let stale = if prune {
        let stale = super::prune::stale(&store, &file)
            .await
            .map_err(|e| Failure::runtime(format!("{name}: store: {e}")))?;
        super::prune::confirm(&stale, yes, name == "-")?;
        stale
    } else {
        Vec::new()
    };
    let report = apply(&store, &file, &hasher).await.map_err(|e| match e {
        ApplyError::Invalid(problems) => Failure::user(
            problems
                .into_iter()
                .map(|p| format!("{name}: {p}"))
                .collect(),
        ),
        ApplyError::Store(e) => Failure::runtime(format!("{name}: store: {e}")),
    })?;
    for c in &report.created {
        out!("created {c}")?;
    }
    for u in &report.updated {
        out!("updated {u}")?;
    }
    out!(
        "{} created, {} updated, {} unchanged",
        report.created.len(),
        report.updated.len(),
        report.unchanged
    )?;
    for (what, secret) in &report.new_secrets {
        // Shown once: only its hash is stored.
        out!("secret of {what}: {}", secret.as_str())?;
    }
    if !stale.is_empty() {
        super::prune::delete(&store, &stale)
            .await
            .map_err(|problems| {
                Failure::user(
                    problems
                        .into_iter()
                        .map(|p| format!("{name}: prune: {p}"))
                        .collect(),
                )
            })?;
        for s in &stale {
            out!("deleted {s}")?;
        }
    }
    Ok(())
}
