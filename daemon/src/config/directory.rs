//! `[directory.NAME]` sections, chosen by `type` (SPEC §5). Every type parses and validates
//! here, whether or not this build can run it yet, so a configuration is checked in full.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum DirectoryConfig {
    Ldap(LdapConfig),
    Sql(SqlConfig),
    Oidc(OidcConfig),
}

impl DirectoryConfig {
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

fn default_scopes() -> Vec<String> {
    ["openid", "email", "profile"].map(String::from).to_vec()
}
fn default_username_claim() -> String {
    "preferred_username".into()
}
