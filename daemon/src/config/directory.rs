//! `[directory.NAME]` sections, chosen by `type` (SPEC §5). Every type parses and validates
//! here, whether or not this build can run it yet, so a configuration is checked in full.

use std::path::PathBuf;
use std::time::Duration;

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
    #[default]
    Bind,
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
    #[serde(default = "default_pool")]
    pub pool_size: u32,
    #[serde(default = "default_timeout", with = "humantime_serde")]
    pub timeout: Duration,
}

fn default_user_filter() -> String {
    "(&(objectClass=inetOrgPerson)(uid={user}))".into()
}
fn cn() -> String {
    "cn".into()
}
fn default_pool() -> u32 {
    8
}
fn default_timeout() -> Duration {
    Duration::from_secs(5)
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct SqlConfig {
    pub url: String,
    #[serde(default)]
    pub url_file: Option<PathBuf>,
    pub query_login: String,
    #[serde(default)]
    pub query_member_of: Option<String>,
    #[serde(default)]
    pub query_emails: Option<String>,
    #[serde(default = "default_pool")]
    pub pool_size: u32,
    #[serde(default = "default_timeout", with = "humantime_serde")]
    pub timeout: Duration,
}

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
