//! The directory model of SPEC §4, with the seeds' camelCase field names, as the store's JSON
//! bodies hold it. Permission names are kept as text here and compiled to bitsets by the engine.
//!
//! Three shapes of an object are three types: what is written ([`crate::input`], with a
//! `password`), what is stored (here and [`crate::store`]'s records, with a hash kept apart as a
//! [`StoredSecret`]) and what is shown ([`crate::view`], never a secret).

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use utoipa::ToSchema;

/// `roles` of an account, group or tenant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RoleSet {
    /// `"user"` → defaultUserRoleIds.
    User,
    /// `"admin"` → defaultAdminRoleIds (defaultTenantRoleIds for an account with a tenant).
    Admin,
    /// `"default"` → defaultGroupRoleIds for groups, defaultTenantRoleIds for tenants.
    Default,
    /// Explicit role ids.
    List(Vec<String>),
}

impl RoleSet {
    /// Role ids named explicitly (for reference checks); the keywords name none.
    pub fn explicit(&self) -> &[String] {
        match self {
            RoleSet::List(ids) => ids,
            _ => &[],
        }
    }
}

/// The schema of [`RoleSet`] (its serde form is hand-written): a keyword or a list of ids.
#[derive(Serialize, ToSchema)]
#[allow(dead_code)] // only its schema is used
#[serde(untagged)]
enum RoleSetSchema {
    Keyword(#[schema(inline)] RoleKeyword),
    /// Role ids.
    List(Vec<String>),
}

/// `user`, `admin`, or `default` (groups and tenants).
#[derive(Serialize, ToSchema)]
#[allow(dead_code)]
#[serde(rename_all = "lowercase")]
enum RoleKeyword {
    User,
    Admin,
    Default,
}

impl utoipa::PartialSchema for RoleSet {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        <RoleSetSchema as utoipa::PartialSchema>::schema()
    }
}

impl ToSchema for RoleSet {}

impl Serialize for RoleSet {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            RoleSet::User => s.serialize_str("user"),
            RoleSet::Admin => s.serialize_str("admin"),
            RoleSet::Default => s.serialize_str("default"),
            RoleSet::List(ids) => ids.serialize(s),
        }
    }
}

impl<'de> Deserialize<'de> for RoleSet {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Word(String),
            List(Vec<String>),
        }
        match Raw::deserialize(d).map_err(|_| {
            serde::de::Error::custom(
                "roles must be \"user\", \"admin\", \"default\" or a list of role ids",
            )
        })? {
            Raw::Word(w) => match w.as_str() {
                "user" => Ok(RoleSet::User),
                "admin" => Ok(RoleSet::Admin),
                "default" => Ok(RoleSet::Default),
                other => Err(serde::de::Error::custom(format!(
                    "roles must be \"user\", \"admin\", \"default\" or a list of role ids, not {other:?}"
                ))),
            },
            Raw::List(ids) => Ok(RoleSet::List(ids)),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    #[default]
    Inherit,
    Merge,
    Replace,
}

/// `permissions` of an account, group or tenant.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Permissions {
    #[serde(default)]
    pub mode: Mode,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub enabled: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub disabled: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Role {
    pub id: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub role_ids: Vec<String>,
    #[serde(default)]
    pub enabled_permissions: Vec<String>,
    #[serde(default)]
    pub disabled_permissions: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub member_tenant_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Tenant {
    pub id: String,
    #[serde(default)]
    pub description: String,
    #[serde(default = "default_roles")]
    pub roles: RoleSet,
    #[serde(default)]
    pub permissions: Permissions,
}

fn default_roles() -> RoleSet {
    RoleSet::Default
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum AccountType {
    #[default]
    Individual,
    Group,
}

/// An individual or a group, as its stored body holds it. The password hash is kept apart from
/// the body ([`crate::StoredAccount::secret`]); the password itself only ever appears in
/// [`crate::input::AccountInput`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Account {
    pub name: String,
    #[serde(rename = "type", default)]
    pub kind: AccountType,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub emails: Vec<String>,
    #[serde(default)]
    pub member_of: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
    /// Absent: `"user"` for individuals, `"default"` for groups.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub roles: Option<RoleSet>,
    #[serde(default)]
    pub permissions: Permissions,
    /// Groups an external directory (LDAP, SQL) reported at this principal's last login,
    /// refreshed at each one, so sessions and API keys made later see the same groups.
    /// Written by Postern only: provisioning refuses it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub directory_groups: Vec<String>,
    /// The stable id the recording directory gave this principal (OIDC `sub`), bound at its
    /// first login. Written by Postern only: provisioning refuses it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
}

impl Account {
    /// Body fields only Postern writes (at directory logins): never part of an input.
    pub const WRITTEN_BY_POSTERN: [&'static str; 2] = ["directoryGroups", "subject"];

    pub fn effective_roles(&self) -> RoleSet {
        match (&self.roles, self.kind) {
            (Some(r), _) => r.clone(),
            (None, AccountType::Individual) => RoleSet::User,
            (None, AccountType::Group) => RoleSet::Default,
        }
    }
}

/// The Authentication singleton's default role sets.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AuthDefaults {
    #[serde(default = "default_user")]
    pub default_user_role_ids: Vec<String>,
    #[serde(default = "default_admin")]
    pub default_admin_role_ids: Vec<String>,
    #[serde(default = "default_tenant")]
    pub default_tenant_role_ids: Vec<String>,
    #[serde(default)]
    pub default_group_role_ids: Vec<String>,
}

fn default_user() -> Vec<String> {
    vec!["user".into()]
}
fn default_admin() -> Vec<String> {
    vec!["admin".into()]
}
fn default_tenant() -> Vec<String> {
    vec!["tenant-admin".into()]
}

impl Default for AuthDefaults {
    fn default() -> Self {
        AuthDefaults {
            default_user_role_ids: default_user(),
            default_admin_role_ids: default_admin(),
            default_tenant_role_ids: default_tenant(),
            default_group_role_ids: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ScopeMode {
    #[default]
    Inherit,
    Disable,
    Replace,
}

/// Scope of an API key or app password (SPEC §4 rule 6).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CredentialScope {
    #[serde(default)]
    pub mode: ScopeMode,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub permissions: Vec<String>,
}

/// An API key or an app password: same shape, different use.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Credential {
    pub id: String,
    pub account: String,
    #[serde(default)]
    pub description: String,
    /// RFC 3339.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<String>,
    /// IP addresses or CIDR networks; empty means anywhere.
    #[serde(default)]
    pub allowed_ips: Vec<String>,
    #[serde(default)]
    pub permissions: CredentialScope,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CredentialType {
    ApiKey,
    AppPassword,
}

impl CredentialType {
    pub fn as_str(self) -> &'static str {
        match self {
            CredentialType::ApiKey => "api-key",
            CredentialType::AppPassword => "app-password",
        }
    }
}

/// An OAuth client as stored. Its secret hash is a column of its own
/// ([`crate::store::StoredOAuthClient::secret`]), so serializing a client cannot leak it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct OAuthClient {
    pub client_id: String,
    #[serde(default)]
    pub redirect_uris: Vec<String>,
    #[serde(default)]
    pub description: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub member_tenant_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub roles: Option<RoleSet>,
    #[serde(default)]
    pub permissions: Permissions,
    /// `confidential` (has a secret) or `public`; absent: as the secret says.
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub client_type: Option<ClientType>,
    /// Grant types allowed; empty: `authorization_code` and `refresh_token`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub grant_types: Vec<String>,
    /// Scopes it may ask for; empty: every scope the server knows.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub scopes: Vec<String>,
    /// The site's own application: consent is implicit.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub first_party: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum ClientType {
    Confidential,
    Public,
}

/// The scopes the OAuth server knows (`openid` asks for an ID token).
pub const OAUTH_SCOPES: [&str; 5] = ["openid", "profile", "email", "groups", "offline_access"];

/// The grant types an OAuth client may be given.
pub const GRANT_TYPES: [&str; 3] = ["authorization_code", "refresh_token", "client_credentials"];

impl OAuthClient {
    /// The grant types in force for this client.
    pub fn allows_grant(&self, grant_type: &str) -> bool {
        if self.grant_types.is_empty() {
            matches!(grant_type, "authorization_code" | "refresh_token")
        } else {
            self.grant_types.iter().any(|g| g == grant_type)
        }
    }
}

/// Ids of the built-in roles; they always exist and cannot be provisioned.
pub const BUILTIN_ROLES: [&str; 3] = ["user", "admin", "tenant-admin"];

/// Where an account comes from: provisioned here, or recorded at its first login through an
/// external directory (named as in `[authentication] directories`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Origin {
    Internal,
    Directory(String),
}

impl Origin {
    /// The store's `origin` column.
    pub fn from_column(text: String) -> Origin {
        if text == "internal" {
            Origin::Internal
        } else {
            Origin::Directory(text)
        }
    }

    pub fn as_str(&self) -> &str {
        match self {
            Origin::Internal => "internal",
            Origin::Directory(name) => name,
        }
    }
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A stored password or client-secret hash. Neither `Serialize` nor a revealing `Debug`: a
/// record that holds one cannot end up in a JSON answer or a log line by accident.
#[derive(Clone, PartialEq, Eq)]
pub struct StoredSecret(String);

impl StoredSecret {
    pub fn new(hash: impl Into<String>) -> Self {
        StoredSecret(hash.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for StoredSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StoredSecret(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roleset_forms() {
        #[derive(Deserialize)]
        struct W {
            roles: RoleSet,
        }
        let w: W = serde_json::from_str(r#"{"roles":"admin"}"#).unwrap();
        assert_eq!(w.roles, RoleSet::Admin);
        let w: W = serde_json::from_str(r#"{"roles":["a","b"]}"#).unwrap();
        assert_eq!(w.roles, RoleSet::List(vec!["a".into(), "b".into()]));
        assert!(serde_json::from_str::<W>(r#"{"roles":"root"}"#).is_err());
        assert_eq!(
            serde_json::to_string(&RoleSet::Default).unwrap(),
            r#""default""#
        );
    }

    #[test]
    fn account_defaults() {
        let a: Account = serde_json::from_str(r#"{"name":"g","type":"group"}"#).unwrap();
        assert_eq!(a.effective_roles(), RoleSet::Default);
        assert!(serde_json::from_str::<Account>(r#"{"name":"a","rolez":"user"}"#).is_err());
    }
}
