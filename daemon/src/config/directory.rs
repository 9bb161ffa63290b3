//! `[directory.NAME]` sections, chosen by `type` (SPEC §5). Every type parses and validates
//! here, whether or not this build can run it yet, so a configuration is checked in full.

use std::path::PathBuf;

use postern_directory::{read_secret_file, ConfigProblem};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum DirectoryConfig {
    Ldap(LdapConfig),
    Sql(SqlConfig),
    Oidc(OidcConfig),
}

impl DirectoryConfig {
    /// The values of `type`.
    pub const KINDS: [&'static str; 3] = ["ldap", "sql", "oidc"];

    /// Every problem of the table that needs no network, keys relative to the table (the
    /// caller prefixes `directory.NAME.`).
    pub fn problems(&self) -> Vec<ConfigProblem> {
        match self {
            DirectoryConfig::Ldap(l) => {
                let mut out = l.problems();
                out.extend(l.file_problems());
                out
            }
            // URL (or url-file), pool and timeout, and each query's placeholders for the URL's
            // dialect; `check-config --live` asks the database itself.
            DirectoryConfig::Sql(s) => s.check_static(),
            DirectoryConfig::Oidc(o) => o.problems(),
        }
    }

    pub fn kind(&self) -> &'static str {
        match self {
            DirectoryConfig::Ldap(_) => "ldap",
            DirectoryConfig::Sql(_) => "sql",
            DirectoryConfig::Oidc(_) => "oidc",
        }
    }
}

// The LDAP types live with their plugin, which validates them too.
pub use postern_ldap::LdapConfig;

// The SQL types live with their plugin, which validates them too.
pub use postern_sql::SqlConfig;

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct OidcConfig {
    pub issuer: String,
    pub client_id: String,
    #[serde(default)]
    pub client_secret: Option<String>,
    #[serde(default)]
    pub client_secret_file: Option<PathBuf>,
    #[serde(default = "default_scopes")]
    pub scopes: Vec<String>,
    #[serde(default)]
    pub audience: Option<String>,
    #[serde(default = "default_username_claim")]
    pub username_claim: String,
    #[serde(default)]
    pub groups_claim: Option<String>,
    #[serde(default)]
    pub redirect_path: Option<String>,
}

impl OidcConfig {
    /// The configuration's own problems, keys relative to the section.
    pub fn problems(&self) -> Vec<ConfigProblem> {
        let mut out = Vec::new();
        if !(self.issuer.starts_with("https://") || self.issuer.starts_with("http://")) {
            out.push(ConfigProblem::new("issuer", "must be an https:// URL"));
        }
        if let Some(path) = &self.client_secret_file {
            if let Err(e) = read_secret_file("client-secret-file", path) {
                out.push(e);
            }
        }
        out
    }
}

fn default_scopes() -> Vec<String> {
    ["openid", "email", "profile"].map(String::from).to_vec()
}
fn default_username_claim() -> String {
    "preferred_username".into()
}
