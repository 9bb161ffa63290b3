//! Objects as they are written: by a provisioning file, and later by the management API.
//! Only these types carry a cleartext `password`; the store turns it into a hash.

use serde::Deserialize;
use zeroize::Zeroizing;

use crate::model::{
    AccountType, AuthDefaults, ClientType, Credential, OAuthClient, Permissions, Role, RoleSet,
    Tenant,
};

/// A cleartext password on its way to being hashed: zeroized when dropped, never printed.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Password(Zeroizing<String>);

impl Password {
    pub fn new(text: impl Into<String>) -> Self {
        Password(Zeroizing::new(text.into()))
    }

    pub fn expose(&self) -> &str {
        self.0.as_str()
    }
}

impl std::fmt::Debug for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Password(<redacted>)")
    }
}

/// An individual or a group as written. `secret` is a hash in any scheme Postern verifies;
/// `password` is hashed on the way in (argon2id). `directoryGroups` is not here: only Postern
/// writes it, at each directory login.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AccountInput {
    pub name: String,
    #[serde(rename = "type", default)]
    pub kind: AccountType,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub emails: Vec<String>,
    #[serde(default)]
    pub secret: Option<String>,
    #[serde(default)]
    #[schema(value_type = Option<String>, write_only)]
    pub password: Option<Password>,
    #[serde(default)]
    pub member_of: Vec<String>,
    #[serde(default)]
    pub tenant: Option<String>,
    /// Absent: `"user"` for individuals, `"default"` for groups.
    #[serde(default)]
    pub roles: Option<RoleSet>,
    #[serde(default)]
    pub permissions: Permissions,
}

/// An OAuth client as written; `secret` is a hash (or `{PLAIN}` for tests), stored apart from
/// the client's body.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct OAuthClientInput {
    pub client_id: String,
    #[serde(default)]
    pub secret: Option<String>,
    #[serde(default)]
    pub redirect_uris: Vec<String>,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub member_tenant_id: Option<String>,
    #[serde(default)]
    pub roles: Option<RoleSet>,
    #[serde(default)]
    pub permissions: Permissions,
    #[serde(default, rename = "type")]
    pub client_type: Option<ClientType>,
    #[serde(default)]
    pub grant_types: Vec<String>,
    #[serde(default)]
    pub scopes: Vec<String>,
    #[serde(default)]
    pub first_party: bool,
}

impl OAuthClientInput {
    /// The body the store keeps (everything but the secret).
    pub fn body(&self) -> OAuthClient {
        OAuthClient {
            client_id: self.client_id.clone(),
            redirect_uris: self.redirect_uris.clone(),
            description: self.description.clone(),
            member_tenant_id: self.member_tenant_id.clone(),
            roles: self.roles.clone(),
            permissions: self.permissions.clone(),
            client_type: self.client_type,
            grant_types: self.grant_types.clone(),
            scopes: self.scopes.clone(),
            first_party: self.first_party,
        }
    }
}

/// Everything a provisioning file may hold. Table names are kebab-case like the config; object
/// fields are the seeds' camelCase names.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct Provision {
    #[serde(default)]
    pub authentication: Option<AuthDefaults>,
    #[serde(default)]
    pub tenant: Vec<Tenant>,
    #[serde(default)]
    pub role: Vec<Role>,
    #[serde(default)]
    pub account: Vec<AccountInput>,
    #[serde(default)]
    pub api_key: Vec<Credential>,
    #[serde(default)]
    pub app_password: Vec<Credential>,
    #[serde(default)]
    pub oauth_client: Vec<OAuthClientInput>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn password_is_never_printed() {
        let a: AccountInput = serde_json::from_str(r#"{"name":"a","password":"hunter2"}"#).unwrap();
        assert!(!format!("{a:?}").contains("hunter2"));
        assert_eq!(a.password.unwrap().expose(), "hunter2");
    }

    #[test]
    fn directory_groups_cannot_be_written() {
        let err = serde_json::from_str::<AccountInput>(r#"{"name":"a","directoryGroups":["x"]}"#)
            .unwrap_err();
        assert!(err.to_string().contains("directoryGroups"), "{err}");
    }
}
