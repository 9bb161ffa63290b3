//! Objects as they are shown (management API, `explain`): never a secret, always the stable id
//! and the version an update must name.

use serde::Serialize;

use crate::model::{AccountType, Permissions, RoleSet};
use crate::store::{StoredAccount, StoredOAuthClient};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AccountView {
    pub id: String,
    pub name: String,
    #[serde(rename = "type")]
    pub kind: AccountType,
    pub description: String,
    pub emails: Vec<String>,
    pub member_of: Vec<String>,
    pub tenant: Option<String>,
    pub roles: RoleSet,
    pub permissions: Permissions,
    pub directory_groups: Vec<String>,
    /// `internal`, or the directory that recorded it.
    pub origin: String,
    pub has_password: bool,
    pub version: i64,
}

impl From<&StoredAccount> for AccountView {
    fn from(s: &StoredAccount) -> Self {
        let a = &s.account;
        AccountView {
            id: s.id.clone(),
            name: a.name.clone(),
            kind: a.kind,
            description: a.description.clone(),
            emails: a.emails.clone(),
            member_of: a.member_of.clone(),
            tenant: a.tenant.clone(),
            roles: a.effective_roles(),
            permissions: a.permissions.clone(),
            directory_groups: a.directory_groups.clone(),
            origin: s.origin.to_string(),
            has_password: s.secret.is_some(),
            version: s.version,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct OAuthClientView {
    pub client_id: String,
    pub redirect_uris: Vec<String>,
    pub description: String,
    pub member_tenant_id: Option<String>,
    pub roles: Option<RoleSet>,
    pub permissions: Permissions,
    /// Confidential (has a secret) or public.
    pub confidential: bool,
    pub grant_types: Vec<String>,
    pub scopes: Vec<String>,
    pub first_party: bool,
    pub version: i64,
}

impl From<&StoredOAuthClient> for OAuthClientView {
    fn from(s: &StoredOAuthClient) -> Self {
        let c = &s.client;
        OAuthClientView {
            client_id: c.client_id.clone(),
            redirect_uris: c.redirect_uris.clone(),
            description: c.description.clone(),
            member_tenant_id: c.member_tenant_id.clone(),
            roles: c.roles.clone(),
            permissions: c.permissions.clone(),
            confidential: s.secret.is_some(),
            grant_types: c.grant_types.clone(),
            scopes: c.scopes.clone(),
            first_party: c.first_party,
            version: s.version,
        }
    }
}
