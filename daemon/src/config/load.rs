//! Reading the layers: TOML file, then `POSTERN_<SECTION>__<KEY>` environment variables.

use std::path::{Path, PathBuf};

use figment::providers::{Env, Format, Toml};
use figment::Figment;

use super::Config;

/// Where the configuration came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    File(PathBuf),
    /// No `--config` and no `./postern.toml`: the embedded default.
    Embedded,
}

/// One problem, naming where it is. Displayed as one line: `FILE: KEY: REASON`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}: {key}: {reason}")]
pub struct ConfigError {
    pub file: String,
    pub key: String,
    pub reason: String,
}

impl ConfigError {
    pub fn new(file: impl Into<String>, key: impl Into<String>, reason: impl Into<String>) -> Self {
        ConfigError {
            file: file.into(),
            key: key.into(),
            reason: reason.into(),
        }
    }
}

/// Which file to read: `--config`, else `./postern.toml` when present, else none.
pub fn source(explicit: Option<&Path>) -> Source {
    match explicit {
        Some(p) => Source::File(p.to_path_buf()),
        None if Path::new("postern.toml").exists() => Source::File(PathBuf::from("postern.toml")),
        None => Source::Embedded,
    }
}

/// Parses the layers. Semantic checks are [`super::validate`]'s.
pub fn load(source: &Source) -> Result<Config, Vec<ConfigError>> {
    let file_name = match source {
        Source::File(p) => p.display().to_string(),
        Source::Embedded => "<embedded default>".to_string(),
    };
    let mut figment = Figment::new();
    if let Source::File(path) = source {
        if let Err(e) = std::fs::metadata(path) {
            return Err(vec![ConfigError::new(
                file_name,
                "-",
                format!("cannot read: {e}"),
            )]);
        }
        figment = figment.merge(Toml::file_exact(path));
    }
    // Only `POSTERN_SECTION__KEY` variables are configuration; others such as
    // POSTERN_ADMIN_PASSWORD are read elsewhere and must not count as unknown keys.
    figment = figment.merge(Env::prefixed("POSTERN_").filter_map(|key| {
        let key = key.as_str();
        key.contains("__")
            .then(|| key.replace("__", ".").replace('_', "-").into())
    }));
    figment.extract::<Config>().map_err(|errors| {
        errors
            .into_iter()
            .map(|e| {
                let origin = match e.metadata.as_ref() {
                    Some(m) if m.name.contains("environment") => "environment".to_string(),
                    Some(m) => m
                        .source
                        .as_ref()
                        .map(|s| s.to_string())
                        .unwrap_or_else(|| file_name.clone()),
                    None => file_name.clone(),
                };
                let key = if e.path.is_empty() {
                    "-".to_string()
                } else {
                    e.path.join(".")
                };
                ConfigError::new(origin, key, e.kind.to_string())
            })
            .collect()
    })
}
