//! From the merged layers (a figment [`Value`] tree) to a [`Config`], collecting every problem.
//!
//! serde stops at the first error of whatever it deserializes, so one `Config` deserialization
//! would let an unknown variant in one listener hide a misspelt key in another and every
//! semantic error of the file. Instead each section, each `[[listener]]` entry and each
//! `[directory.NAME]` table is deserialized on its own, and within a table a bad key is reported,
//! taken out and the table tried again, until it parses or cannot be repaired. An entry that
//! cannot be repaired is left out (and its semantic checks with it); the rest is validated.

use std::collections::{BTreeMap, BTreeSet};

use figment::error::{Error, Kind};
use figment::value::{Dict, Value};
use postern_directory::config::did_you_mean;
use postern_directory::ConfigProblem;
use serde::de::DeserializeOwned;

use super::{default_listeners, Config, DirectoryConfig, ListenerConfig};

/// Top-level keys of `postern.toml`, for "did you mean".
const SECTIONS: [&str; 8] = [
    "server",
    "store",
    "listener",
    "authentication",
    "session",
    "auth-http",
    "log",
    "directory",
];

/// A table has far fewer bad keys than this; the bound only guarantees the repair loop ends.
const MAX_REPAIRS: usize = 256;

/// What parsed, and what validation must know about what did not.
pub(super) struct Parsed {
    pub config: Config,
    /// For each entry of `config.listener`, its index in the file: entries that did not
    /// parse are left out, and problems must still name `listener[i]` as the user counts.
    pub listener_index: Vec<usize>,
    /// `[directory.NAME]` tables that exist but did not parse: not "missing" for
    /// `authentication.directories`, and not checked further.
    pub unparsed_directories: BTreeSet<String>,
}

/// Parses `tree` (the merged layers), pushing every problem to `problems`.
pub(super) fn parse(tree: &Value, problems: &mut Vec<ConfigProblem>) -> Parsed {
    let empty = Dict::new();
    let root = match tree {
        Value::Dict(_, d) => d,
        other => {
            problems.push(ConfigProblem::new(
                "-",
                format!(
                    "invalid type: found {}, expected a table",
                    other.to_actual()
                ),
            ));
            &empty
        }
    };
    for key in root.keys() {
        if !SECTIONS.contains(&key.as_str()) {
            problems.push(ConfigProblem::new(key, unknown("field", key, &SECTIONS)));
        }
    }
    let (listener, listener_index) = listeners(root.get("listener"), problems);
    let (directory, unparsed_directories) = directories(root.get("directory"), problems);
    let config = Config {
        server: section(root, "server", problems),
        store: section(root, "store", problems),
        listener,
        authentication: section(root, "authentication", problems),
        session: section(root, "session", problems),
        auth_http: section(root, "auth-http", problems),
        log: section(root, "log", problems),
        directory,
    };
    Parsed {
        config,
        listener_index,
        unparsed_directories,
    }
}

/// A section that is absent, or that cannot be read at all, keeps its defaults.
fn section<T: DeserializeOwned + Default>(
    root: &Dict,
    name: &str,
    problems: &mut Vec<ConfigProblem>,
) -> T {
    root.get(name)
        .and_then(|v| table(v, name, problems))
        .unwrap_or_default()
}

fn listeners(
    value: Option<&Value>,
    problems: &mut Vec<ConfigProblem>,
) -> (Vec<ListenerConfig>, Vec<usize>) {
    let items = match value {
        None => {
            let defaults = default_listeners();
            let index = (0..defaults.len()).collect();
            return (defaults, index);
        }
        Some(Value::Array(_, items)) => items,
        Some(other) => {
            problems.push(ConfigProblem::new(
                "listener",
                format!(
                    "invalid type: found {}, expected an array of tables ([[listener]])",
                    other.to_actual()
                ),
            ));
            return (Vec::new(), Vec::new());
        }
    };
    let mut listeners = Vec::new();
    let mut index = Vec::new();
    for (i, item) in items.iter().enumerate() {
        if let Some(l) = table(item, &format!("listener[{i}]"), problems) {
            listeners.push(l);
            index.push(i);
        }
    }
    (listeners, index)
}

fn directories(
    value: Option<&Value>,
    problems: &mut Vec<ConfigProblem>,
) -> (BTreeMap<String, DirectoryConfig>, BTreeSet<String>) {
    let mut parsed = BTreeMap::new();
    let mut unparsed = BTreeSet::new();
    let tables = match value {
        None => return (parsed, unparsed),
        Some(Value::Dict(_, d)) => d,
        Some(other) => {
            problems.push(ConfigProblem::new(
                "directory",
                format!(
                    "invalid type: found {}, expected a table of [directory.NAME] tables",
                    other.to_actual()
                ),
            ));
            return (parsed, unparsed);
        }
    };
    for (name, value) in tables {
        match directory(name, value, problems) {
            Some(d) => {
                parsed.insert(name.clone(), d);
            }
            None => {
                unparsed.insert(name.clone());
            }
        }
    }
    (parsed, unparsed)
}

/// One `[directory.NAME]`, by its `type`. Done here rather than by serde's internally tagged
/// enum, which buffers the table and so loses the key path of every error inside it.
fn directory(
    name: &str,
    value: &Value,
    problems: &mut Vec<ConfigProblem>,
) -> Option<DirectoryConfig> {
    let key = format!("directory.{name}");
    let Value::Dict(tag, dict) = value else {
        problems.push(ConfigProblem::new(
            &key,
            format!(
                "invalid type: found {}, expected a table",
                value.to_actual()
            ),
        ));
        return None;
    };
    let kind = match dict.get("type") {
        Some(Value::String(_, s)) => s.as_str(),
        Some(other) => {
            problems.push(ConfigProblem::new(
                format!("{key}.type"),
                format!(
                    "invalid type: found {}, expected a string",
                    other.to_actual()
                ),
            ));
            return None;
        }
        None => {
            problems.push(ConfigProblem::new(
                &key,
                format!(
                    "missing field `type` (one of {})",
                    quoted(&DirectoryConfig::KINDS)
                ),
            ));
            return None;
        }
    };
    let mut rest = dict.clone();
    rest.remove("type");
    let rest = Value::Dict(*tag, rest);
    match kind {
        "ldap" => table(&rest, &key, problems).map(DirectoryConfig::Ldap),
        "sql" => table(&rest, &key, problems).map(DirectoryConfig::Sql),
        "oidc" => table(&rest, &key, problems).map(DirectoryConfig::Oidc),
        other => {
            problems.push(ConfigProblem::new(
                format!("{key}.type"),
                unknown("variant", other, &DirectoryConfig::KINDS),
            ));
            None
        }
    }
}

/// Deserializes one table, reporting each problem under `key` + its path inside the table.
///
/// After each problem the offending key is taken out and the table tried again, so that one
/// bad key does not hide the next. A key taken out falls back to its default; when it has
/// none, the table cannot be built and is left out (without a second "missing field" for
/// the key already reported).
fn table<T: DeserializeOwned>(
    value: &Value,
    key: &str,
    problems: &mut Vec<ConfigProblem>,
) -> Option<T> {
    let mut value = value.clone();
    let mut removed: Vec<Vec<String>> = Vec::new();
    for _ in 0..MAX_REPAIRS {
        let error: Error = match value.deserialize::<T>() {
            Ok(t) => return Some(t),
            Err(e) => e,
        };
        let path = error.path;
        if let Kind::MissingField(field) = &error.kind {
            let mut full = path.clone();
            full.push(field.to_string());
            if !removed.contains(&full) {
                problems.push(ConfigProblem::new(
                    key_path(&value, key, &path),
                    format!("missing field `{field}`"),
                ));
            }
            return None;
        }
        problems.push(ConfigProblem::new(
            key_path(&value, key, &path),
            reason(&error.kind),
        ));
        match remove(&mut value, &path) {
            Some(cut) => removed.push(cut),
            None => return None,
        }
    }
    None
}

/// The text of a deserialization problem, with a hint for a misspelt key or value.
fn reason(kind: &Kind) -> String {
    match kind {
        Kind::UnknownField(found, expected) => unknown("field", found, expected),
        Kind::UnknownVariant(found, expected) => unknown("variant", found, expected),
        other => other.to_string(),
    }
}

/// "unknown field `bnd`, did you mean `bind`?", or the whole list when nothing is close.
fn unknown(what: &str, found: &str, expected: &[&str]) -> String {
    let hint = did_you_mean(found, expected.iter().copied());
    if !hint.is_empty() {
        format!("unknown {what} `{found}`{hint}")
    } else if expected.is_empty() {
        format!("unknown {what} `{found}`, there are none here")
    } else {
        format!(
            "unknown {what} `{found}`, expected one of {}",
            quoted(expected)
        )
    }
}

fn quoted(names: &[&str]) -> String {
    names
        .iter()
        .map(|n| format!("`{n}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn child<'v>(value: &'v Value, segment: &str) -> Option<&'v Value> {
    match value {
        Value::Dict(_, d) => d.get(segment),
        Value::Array(_, a) => a.get(segment.parse::<usize>().ok()?),
        _ => None,
    }
}

fn child_mut<'v>(value: &'v mut Value, segment: &str) -> Option<&'v mut Value> {
    match value {
        Value::Dict(_, d) => d.get_mut(segment),
        Value::Array(_, a) => a.get_mut(segment.parse::<usize>().ok()?),
        _ => None,
    }
}

/// `key` followed by `path` as the user writes it: `.name` for a table's key, `[i]` for an
/// array's element (figment gives both as strings).
pub(super) fn key_path(value: &Value, key: &str, path: &[String]) -> String {
    let mut out = key.to_string();
    let mut at = Some(value);
    for segment in path {
        match at {
            Some(Value::Array(..)) => out.push_str(&format!("[{segment}]")),
            _ if out.is_empty() => out.push_str(segment),
            _ => {
                out.push('.');
                out.push_str(segment);
            }
        }
        at = at.and_then(|v| child(v, segment));
    }
    out
}

/// Takes the key at `path` out of its table and returns the path that was cut. A bad array
/// element takes its whole array with it: removing the element alone would shift the indexes
/// of the problems found next.
fn remove(value: &mut Value, path: &[String]) -> Option<Vec<String>> {
    let mut cut = None;
    let mut at = &*value;
    for (i, segment) in path.iter().enumerate() {
        if matches!(at, Value::Dict(..)) {
            cut = Some(i);
        }
        match child(at, segment) {
            Some(next) => at = next,
            None => break,
        }
    }
    let cut = cut?;
    let mut parent = value;
    for segment in &path[..cut] {
        parent = child_mut(parent, segment)?;
    }
    match parent {
        Value::Dict(_, d) => d.remove(&path[cut]).map(|_| path[..=cut].to_vec()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree(toml_text: &str) -> Value {
        use figment::providers::{Format, Toml};
        figment::Figment::from(Toml::string(toml_text))
            .find_value("")
            .unwrap()
    }

    fn problems(toml_text: &str) -> Vec<String> {
        let mut out = Vec::new();
        parse(&tree(toml_text), &mut out);
        out.iter().map(|p| p.to_string()).collect()
    }

    #[test]
    fn one_bad_entry_hides_nothing() {
        let p = problems(
            r#"
            [sever]
            [[listener]]
            protocol = "htpp"
            bind = "127.0.0.1:1"
            [[listener]]
            protocol = "http"
            bnd = "127.0.0.1:2"
            bind = "127.0.0.1:2"
            tsl = 1
            [store]
            pool-size = "many"
            [directory.a]
            type = "ldpa"
            [directory.b]
            type = "ldap"
            url = "ldap://x"
            base-dn = "dc=x"
            bind-pasword = "x"
            attributes = { nmae = "cn" }
            [directory.c]
            url = "x"
            "#,
        );
        let expected = [
            "sever: unknown field `sever`, did you mean `server`?",
            "listener[0].protocol: unknown variant `htpp`, did you mean `http`?",
            "listener[1].bnd: unknown field `bnd`, did you mean `bind`?",
            "listener[1].tsl: unknown field `tsl`, did you mean `tls`?",
            "directory.a.type: unknown variant `ldpa`, did you mean `ldap`?",
            "directory.b.attributes.nmae: unknown field `nmae`, did you mean `name`?",
            "directory.b.bind-pasword: unknown field `bind-pasword`, did you mean `bind-password`?",
            "directory.c: missing field `type` (one of `ldap`, `sql`, `oidc`)",
        ];
        for e in expected {
            assert!(p.iter().any(|l| l == e), "{e:?} missing from {p:#?}");
        }
        assert!(
            p.iter()
                .any(|l| l.starts_with("store.pool-size: invalid type")),
            "{p:#?}"
        );
        // The listener that could not be built is not also "missing" a protocol.
        assert_eq!(p.len(), expected.len() + 1, "{p:#?}");
    }

    #[test]
    fn repaired_tables_keep_what_parsed() {
        let mut out = Vec::new();
        let parsed = parse(
            &tree(
                r#"
                [[listener]]
                protocol = "http"
                bind = 8
                [[listener]]
                protocol = "saslauthd"
                bind = "unix:/run/s"
                mechanisms = ["plain", 3]
                max-connections = 7
                [store]
                pool-size = "x"
                timeout = "2s"
                "#,
            ),
            &mut out,
        );
        assert_eq!(parsed.listener_index, [1]);
        assert_eq!(parsed.config.listener[0].max_connections, 7);
        assert_eq!(
            parsed.config.store.timeout,
            std::time::Duration::from_secs(2)
        );
        let keys: Vec<&str> = out.iter().map(|p| p.key.as_str()).collect();
        assert_eq!(
            keys,
            [
                "listener[0].bind",
                "listener[1].mechanisms[1]",
                "store.pool-size"
            ]
        );
    }

    #[test]
    fn a_good_file_parses_as_serde_would() {
        let text = r#"
            [server]
            public-url = "https://auth.example.org"
            [[listener]]
            protocol = "dovecot-auth"
            bind = "unix:/run/postern/auth"
            mode = "0660"
            [directory.corp]
            type = "sql"
            url = "sqlite:///x.db"
            query-login = "SELECT name, secret FROM u WHERE name = $1"
        "#;
        let mut out = Vec::new();
        let parsed = parse(&tree(text), &mut out);
        assert!(out.is_empty(), "{out:?}");
        let whole: Config = toml::from_str(text).unwrap();
        assert_eq!(parsed.config, whole);
        let mut out = Vec::new();
        assert_eq!(parse(&tree(""), &mut out).config, Config::default());
        assert!(out.is_empty());
    }
}
