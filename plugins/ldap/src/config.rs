//! `[directory.NAME]` with `type = "ldap"` (SPEC §5). Parsed by the daemon's configuration
//! (which re-exports these types) and validated there and in [`crate::LdapDirectory::new`].

use std::path::PathBuf;
use std::time::Duration;

use postern_directory::ConfigProblem;
use serde::{Deserialize, Serialize};

/// A key that takes one string or a list (`url = "ldap://a"` or `url = ["ldap://a", …]`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(untagged)]
pub enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl OneOrMany {
    pub fn as_vec(&self) -> Vec<String> {
        match self {
            OneOrMany::One(s) => vec![s.clone()],
            OneOrMany::Many(v) => v.clone(),
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum LdapAuthMethod {
    /// Find the user's DN with the service account, then bind as that DN on a connection of
    /// its own: the server checks the password (and its own lockout policy).
    #[default]
    Bind,
    /// Read the stored `userPassword` with the service account and verify it here.
    Lookup,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct LdapAttributes {
    #[serde(default = "uid")]
    pub name: String,
    #[serde(default = "mail")]
    pub email: String,
    #[serde(default = "user_password")]
    pub secret: String,
    #[serde(default = "description")]
    pub description: String,
    #[serde(default = "member_of")]
    pub groups: String,
}

fn uid() -> String {
    "uid".into()
}
fn mail() -> String {
    "mail".into()
}
fn user_password() -> String {
    "userPassword".into()
}
fn description() -> String {
    "description".into()
}
fn member_of() -> String {
    "memberOf".into()
}

impl Default for LdapAttributes {
    fn default() -> Self {
        LdapAttributes {
            name: uid(),
            email: mail(),
            secret: user_password(),
            description: description(),
            groups: member_of(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct LdapConfig {
    pub url: OneOrMany,
    #[serde(default)]
    pub starttls: bool,
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    pub base_dn: String,
    #[serde(default)]
    pub bind_dn: Option<String>,
    #[serde(default)]
    pub bind_password: Option<String>,
    #[serde(default)]
    pub bind_password_file: Option<PathBuf>,
    #[serde(default)]
    pub auth_method: LdapAuthMethod,
    #[serde(default = "default_user_filter")]
    pub user_filter: String,
    #[serde(default)]
    pub attributes: LdapAttributes,
    #[serde(default)]
    pub group_filter: Option<String>,
    #[serde(default = "cn")]
    pub group_name_attribute: String,
    /// How many levels of groups-in-groups are followed (0: direct groups only). Bounds the
    /// searches one login can cause; loops are cut whatever the depth.
    #[serde(default = "default_group_depth")]
    pub group_depth: u32,
    #[serde(default = "default_pool")]
    pub pool_size: u32,
    /// Bounds each connect (TCP, TLS, StartTLS, service bind) and each operation.
    #[serde(default = "default_timeout", with = "humantime_serde")]
    pub timeout: Duration,
    /// The scheme of a stored secret that names none (`PLAIN` for slapd's cleartext
    /// `userPassword`, `CRYPT`, …), as Dovecot's `default_pass_scheme`. Unset: such values
    /// are refused as unverifiable.
    #[serde(default)]
    pub default_scheme: Option<String>,
}

fn default_user_filter() -> String {
    "(&(objectClass=inetOrgPerson)(uid={user}))".into()
}
fn cn() -> String {
    "cn".into()
}
fn default_group_depth() -> u32 {
    8
}
fn default_pool() -> u32 {
    8
}
fn default_timeout() -> Duration {
    Duration::from_secs(5)
}

impl LdapConfig {
    /// The configuration's own errors, keys relative to the section (the daemon prefixes
    /// `directory.NAME.`). Files (`ca-file`, `bind-password-file`) are [`Self::file_problems`].
    pub fn problems(&self) -> Vec<ConfigProblem> {
        let mut out = Vec::new();
        let mut problem = |key: &str, reason: &str| out.push(ConfigProblem::new(key, reason));
        let urls = self.url.as_vec();
        if urls.is_empty() {
            problem("url", "must name at least one server");
        }
        if let Some(tag) = &self.default_scheme {
            if !postern_directory::secret::is_known_tag(tag) {
                problem(
                    "default-scheme",
                    &format!("{tag:?} is not a known password scheme"),
                );
            }
        }
        for u in urls {
            if let Err(e) = crate::conn::check_url(&u) {
                problem("url", &e);
            }
        }
        if !self.user_filter.contains("{user}") {
            problem("user-filter", "must contain the {user} placeholder");
        } else if !parses(&self.user_filter, "{user}") {
            problem("user-filter", "is not a valid LDAP filter");
        }
        if let Some(f) = &self.group_filter {
            if !f.contains("{dn}") {
                problem("group-filter", "must contain the {dn} placeholder");
            } else if !parses(f, "{dn}") {
                problem("group-filter", "is not a valid LDAP filter");
            }
        }
        if self.bind_dn.is_some()
            && self.bind_password.is_none()
            && self.bind_password_file.is_none()
        {
            problem(
                "bind-password",
                "bind-dn is set but neither bind-password nor bind-password-file is",
            );
        }
        if self.bind_password.is_some() && self.bind_password_file.is_some() {
            problem(
                "bind-password-file",
                "give bind-password or bind-password-file, not both",
            );
        }
        if self.pool_size == 0 {
            problem("pool-size", "must be at least 1");
        }
        if self.timeout.is_zero() {
            problem("timeout", "must be longer than 0s");
        }
        if self.group_depth > 64 {
            problem("group-depth", "must be at most 64");
        }
        out
    }
}

impl LdapConfig {
    /// Problems with the files it names: `ca-file` must hold PEM certificates and
    /// `bind-password-file` must be readable.
    pub fn file_problems(&self) -> Vec<ConfigProblem> {
        let mut out = Vec::new();
        if let Some(path) = &self.ca_file {
            if let Err(e) = crate::conn::tls_config(Some(path)) {
                out.push(ConfigProblem::new("ca-file", e));
            }
        }
        if let Some(path) = &self.bind_password_file {
            if let Err(e) = postern_directory::read_secret_file("bind-password-file", path) {
                out.push(e);
            }
        }
        out
    }
}

/// Whether `template` is a filter ldap3 accepts once its placeholder is filled: a bad filter
/// is a configuration error, found at start rather than as an outage at every login.
fn parses(template: &str, placeholder: &str) -> bool {
    ldap3::parse_filter(crate::escape::fill(template, placeholder, "x")).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(toml_text: &str) -> Result<LdapConfig, String> {
        // The daemon parses through figment; plain serde over a TOML-shaped JSON value is
        // enough to check the keys and defaults here.
        serde_json::from_str(toml_text).map_err(|e| e.to_string())
    }

    #[test]
    fn defaults_and_unknown_keys() {
        let c = parse(r#"{"url": "ldap://127.0.0.1", "base-dn": "dc=x"}"#).unwrap();
        assert_eq!(c.auth_method, LdapAuthMethod::Bind);
        assert_eq!(c.attributes.name, "uid");
        assert_eq!(c.group_name_attribute, "cn");
        assert_eq!(c.group_depth, 8);
        assert_eq!(c.pool_size, 8);
        assert_eq!(c.timeout, Duration::from_secs(5));
        assert!(c.problems().is_empty(), "{:?}", c.problems());
        let e =
            parse(r#"{"url": "ldap://x", "base-dn": "dc=x", "bind-pasword": "typo"}"#).unwrap_err();
        assert!(e.contains("unknown field"), "{e}");
        let e = parse(r#"{"url": "ldap://x", "base-dn": "dc=x", "attributes": {"nmae": "cn"}}"#)
            .unwrap_err();
        assert!(e.contains("unknown field"), "{e}");
    }

    #[test]
    fn problems_name_their_key() {
        let c = parse(
            r#"{"url": ["ldap://a", "http://b"], "base-dn": "dc=x", "user-filter": "(uid={user}",
                "group-filter": "(member=x)", "bind-dn": "cn=s", "pool-size": 0,
                "timeout": "0s", "group-depth": 100}"#,
        )
        .unwrap();
        let problems = c.problems();
        let keys: Vec<&str> = problems.iter().map(|p| p.key.as_str()).collect();
        assert_eq!(
            keys,
            [
                "url",
                "user-filter",
                "group-filter",
                "bind-password",
                "pool-size",
                "timeout",
                "group-depth"
            ]
        );
    }
}
