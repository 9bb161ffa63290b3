//! Reading the layers: TOML file, then `POSTERN_<SECTION>__<KEY>` environment variables; then
//! parsing ([`super::parse`]) and validating ([`super::validate`]) them, every problem named by
//! where its value came from: the file, or the environment variable that set it.

use std::path::{Path, PathBuf};

use figment::providers::{Env, Format, Toml};
use figment::value::Value;
use figment::Figment;

use super::{parse, validate, Config};

/// Where the configuration came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    File(PathBuf),
    /// No `--config` and no `./postern.toml`: the embedded default.
    Embedded,
}

impl Source {
    /// The file's name as the user gave it, as problems name it.
    pub fn name(&self) -> String {
        match self {
            Source::File(p) => p.display().to_string(),
            Source::Embedded => "<embedded default>".to_string(),
        }
    }
}

/// One problem, naming where it is. Displayed as one line: `ORIGIN: KEY: REASON`, where the
/// origin is the file, or the environment variable (`POSTERN_STORE__POOL_SIZE`) that set the
/// value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}: {key}: {reason}")]
pub struct ConfigError {
    /// The file, or the environment variable.
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

/// Parses and validates the layers: the configuration, or every problem found in them (the
/// semantic ones of every part that parsed included).
pub fn load(source: &Source) -> Result<Config, Vec<ConfigError>> {
    let file_name = source.name();
    let figment =
        layers(source).map_err(|reason| vec![ConfigError::new(&file_name, "-", reason)])?;
    let tree = figment.find_value("").map_err(|errors| {
        // The file is not TOML (figment's message says where) or a layer cannot be read at
        // all: nothing below can be checked.
        errors
            .into_iter()
            .map(|e| ConfigError::new(&file_name, "-", e.kind.to_string()))
            .collect::<Vec<_>>()
    })?;
    let mut problems = Vec::new();
    let parsed = parse::parse(&tree, &mut problems);
    problems.extend(validate::problems(&parsed));
    if problems.is_empty() {
        return Ok(parsed.config);
    }
    Err(problems
        .into_iter()
        .map(|p| {
            let origin = origin(&figment, &tree, &p.key).unwrap_or_else(|| file_name.clone());
            ConfigError::new(origin, p.key, p.reason)
        })
        .collect())
}

fn layers(source: &Source) -> Result<Figment, String> {
    let mut figment = Figment::new();
    if let Source::File(path) = source {
        std::fs::metadata(path).map_err(|e| format!("cannot read: {e}"))?;
        figment = figment.merge(Toml::file_exact(path));
    }
    // Only `POSTERN_SECTION__KEY` variables are configuration; others such as
    // POSTERN_ADMIN_PASSWORD are read elsewhere and must not count as unknown keys.
    Ok(figment.merge(Env::prefixed("POSTERN_").filter_map(|key| {
        let key = key.as_str();
        key.contains("__")
            .then(|| key.replace("__", ".").replace('_', "-").into())
    })))
}

/// The environment variable that set the value at `key` (`listener[0].bind`), when one did.
/// `None` means the file (or a default, which is reported against the file too).
fn origin(figment: &Figment, tree: &Value, key: &str) -> Option<String> {
    // The deepest value that exists on the way: a missing key is the business of the table
    // around it.
    let mut at = tree;
    let mut names = Vec::new();
    for segment in segments(key) {
        let next = match (at, &segment) {
            (Value::Dict(_, d), Segment::Key(k)) => d.get(*k),
            (Value::Array(_, a), Segment::Index(i)) => a.get(*i),
            _ => None,
        };
        let Some(next) = next else { break };
        at = next;
        // An array comes whole from one variable: its elements name no variable of their own.
        if let Segment::Key(k) = segment {
            names.push(k);
        }
    }
    let metadata = figment.get_metadata(at.tag())?;
    if !metadata.name.contains("environment") || names.is_empty() {
        return None;
    }
    let variable = names
        .iter()
        .map(|n| n.to_ascii_uppercase().replace('-', "_"))
        .collect::<Vec<_>>()
        .join("__");
    Some(format!("POSTERN_{variable}"))
}

enum Segment<'a> {
    Key(&'a str),
    Index(usize),
}

/// `listener[0].tls.cert` → `listener`, `0`, `tls`, `cert`.
fn segments(key: &str) -> Vec<Segment<'_>> {
    let mut out = Vec::new();
    for part in key.split('.') {
        let (name, mut rest) = part.split_once('[').map_or((part, ""), |(n, r)| (n, r));
        if !name.is_empty() {
            out.push(Segment::Key(name));
        }
        while let Some((index, after)) = rest.split_once(']') {
            if let Ok(i) = index.parse() {
                out.push(Segment::Index(i));
            }
            rest = after.trim_start_matches('[');
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_paths_split_as_written() {
        let names = |key| {
            segments(key)
                .into_iter()
                .map(|s| match s {
                    Segment::Key(k) => k.to_string(),
                    Segment::Index(i) => format!("#{i}"),
                })
                .collect::<Vec<_>>()
        };
        assert_eq!(
            names("listener[0].tls.cert"),
            ["listener", "#0", "tls", "cert"]
        );
        assert_eq!(
            names("authentication.directories[1]"),
            ["authentication", "directories", "#1"]
        );
        assert_eq!(names("a[1][2].b"), ["a", "#1", "#2", "b"]);
        assert_eq!(names("directory.corp"), ["directory", "corp"]);
    }

    #[test]
    fn problems_name_the_file_or_the_variable() {
        let figment = Figment::new()
            .merge(Toml::string(
                "[store]\npool-size = 0\n[[listener]]\nprotocol = \"http\"\nbind = \"x\"\n",
            ))
            .merge(figment::providers::Serialized::default(
                "server.public-url",
                "ftp://x",
            ));
        let tree = figment.find_value("").unwrap();
        assert_eq!(origin(&figment, &tree, "store.pool-size"), None);
        assert_eq!(origin(&figment, &tree, "listener[0].bind"), None);
        assert_eq!(origin(&figment, &tree, "nothing.here"), None);
        // Only the environment provider names a variable; other layers count as the file.
        assert_eq!(origin(&figment, &tree, "server.public-url"), None);
    }

    #[test]
    fn the_embedded_default_is_valid() {
        if std::env::vars().any(|(k, _)| k.starts_with("POSTERN_") && k.contains("__")) {
            return; // configuration from the environment of whoever runs the tests
        }
        assert_eq!(load(&Source::Embedded), Ok(Config::default()));
    }
}
