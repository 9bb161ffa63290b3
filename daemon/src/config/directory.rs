//! `[directory.NAME]` sections, chosen by `type` (SPEC §5). Every type parses and validates
//! here, whether or not this build can run it yet, so a configuration is checked in full.

use postern_directory::ConfigProblem;
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

// The OIDC types live with their plugin, which validates them too.
pub use postern_oidc::OidcConfig;
