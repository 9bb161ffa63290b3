//! Roles, tenants, OAuth clients and the authentication defaults.

use postern_internal::input::OAuthClientInput;
use postern_internal::model::{AuthDefaults, Role, Tenant, BUILTIN_ROLES};
use postern_internal::store::{Expect, Tx, Versioned, WriteError};
use postern_internal::view::OAuthClientView;
use serde::Serialize;

use super::guard::named;
use super::{audit, encode_cursor, retry_busy, Actor, Admin, AdminError, Listed, Window};
use crate::authz::{PermSet, Policy};

/// A role or tenant with the version an update names.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct WithVersion<T> {
    #[serde(flatten)]
    pub value: T,
    pub version: i64,
}

impl<T: Clone> From<&Versioned<T>> for WithVersion<T> {
    fn from(v: &Versioned<T>) -> Self {
        WithVersion {
            value: v.value.clone(),
            version: v.version,
        }
    }
}

/// The authentication defaults and their version (0 while the built-in ones are in force).
pub type DefaultsView = WithVersion<AuthDefaults>;

/// What a set of role ids grants (their closure); a missing role is named in the field.
fn closure(policy: &Policy, ids: &[String], field: &str) -> Result<PermSet, AdminError> {
    let (pair, _) = policy
        .role_closure(ids)
        .map_err(|e| AdminError::Invalid(vec![format!("{field}: {e}")]))?;
    Ok(pair.enabled.minus(&pair.disabled))
}

fn stale(what: &str, current: i64, asked: Option<i64>) -> Result<(), AdminError> {
    match asked {
        Some(v) if v != current => Err(AdminError::Stale(format!(
            "{what} is at version {current}, not {v}: read it again"
        ))),
        _ => Ok(()),
    }
}

/// Merge-patches `old` (as JSON) into a new value of the same type, which keeps its key.
fn patched<T: Serialize + serde::de::DeserializeOwned>(
    old: &T,
    patch: &serde_json::Value,
    key_field: &str,
    key: &str,
) -> Result<T, AdminError> {
    if !patch.is_object() {
        return Err(AdminError::Invalid(vec![
            "body: a merge patch must be a JSON object".into(),
        ]));
    }
    let mut doc = serde_json::to_value(old).map_err(|e| AdminError::Internal(e.to_string()))?;
    super::principals::merge_patch(&mut doc, patch);
    if doc.get(key_field).and_then(|v| v.as_str()) != Some(key) {
        return Err(AdminError::Invalid(vec![format!(
            "{key_field}: cannot be changed"
        )]));
    }
    serde_json::from_value(doc).map_err(|e| AdminError::Invalid(vec![format!("body: {e}")]))
}

impl Admin {
    /// One write transaction, retried while the store is busy.
    async fn write<F>(&self, deleting: bool, f: F) -> Result<(), AdminError>
    where
        F: for<'a> Fn(
            &'a mut Tx,
        ) -> std::pin::Pin<
            Box<dyn std::future::Future<Output = Result<(), WriteError>> + Send + 'a>,
        >,
    {
        retry_busy!(
            async {
                let mut tx = self.store.begin().await?;
                f(&mut tx)
                    .await
                    .map_err(|e| AdminError::from_write(e, deleting))?;
                tx.commit()
                    .await
                    .map_err(|e| AdminError::from_write(e, deleting))?;
                Ok::<(), AdminError>(())
            }
            .await
        )
    }

    // Roles.

    pub async fn list_roles(
        &self,
        actor: &Actor,
        window: &Window,
    ) -> Result<Listed<WithVersion<Role>>, AdminError> {
        actor.require("role-list")?;
        let page = self.store.roles(&window.query()?).await?;
        Ok(Listed {
            items: page
                .items
                .iter()
                .filter(|r| actor.sees(r.value.member_tenant_id.as_deref()))
                .map(WithVersion::from)
                .collect(),
            next: page.next.as_deref().map(encode_cursor),
        })
    }

    async fn visible_role(&self, actor: &Actor, id: &str) -> Result<Versioned<Role>, AdminError> {
        match self.store.role(id).await? {
            Some(r) if actor.sees(r.value.member_tenant_id.as_deref()) => Ok(r),
            _ => Err(AdminError::NotFound(format!("role {id:?}"))),
        }
    }

    pub async fn role(&self, actor: &Actor, id: &str) -> Result<WithVersion<Role>, AdminError> {
        actor.require("role-get")?;
        Ok(WithVersion::from(&self.visible_role(actor, id).await?))
    }

    /// A tenant administrator's role includes only built-in roles and their tenant's.
    async fn check_role(
        &self,
        actor: &Actor,
        role: &Role,
        before: PermSet,
    ) -> Result<(), AdminError> {
        if actor.tenant.is_some() {
            for r in &role.role_ids {
                if !BUILTIN_ROLES.contains(&r.as_str())
                    && self.visible_role(actor, r).await.is_err()
                {
                    return Err(AdminError::Invalid(vec![format!(
                        "roleIds: role {r:?} does not exist"
                    )]));
                }
            }
        }
        let policy = self.policy().await?;
        let granted =
            closure(&policy, &role.role_ids, "roleIds")?.union(&named(&role.enabled_permissions));
        actor.may_grant(&granted.minus(&before), &format!("role {:?}", role.id))
    }

    pub async fn create_role(
        &self,
        actor: &Actor,
        mut role: Role,
    ) -> Result<WithVersion<Role>, AdminError> {
        actor.require("role-create")?;
        role.member_tenant_id = actor.place(role.member_tenant_id.take(), "memberTenantId")?;
        self.check_role(actor, &role, PermSet::EMPTY).await?;
        self.write(false, |tx| {
            let role = role.clone();
            Box::pin(async move { tx.put_role(&role, Expect::New).await.map(|_| ()) })
        })
        .await?;
        audit::log(actor, "create", "role", &role.id);
        self.role(actor, &role.id).await
    }

    pub async fn patch_role(
        &self,
        actor: &Actor,
        id: &str,
        patch: &serde_json::Value,
        if_match: Option<i64>,
    ) -> Result<WithVersion<Role>, AdminError> {
        actor.require("role-update")?;
        let old = self.visible_role(actor, id).await?;
        stale(&format!("role {id:?}"), old.version, if_match)?;
        let mut role: Role = patched(&old.value, patch, "id", id)?;
        if role.member_tenant_id != old.value.member_tenant_id {
            role.member_tenant_id = actor.place(role.member_tenant_id.take(), "memberTenantId")?;
        }
        let policy = self.policy().await?;
        let before = closure(&policy, &old.value.role_ids, "roleIds")
            .unwrap_or_default()
            .union(&named(&old.value.enabled_permissions));
        self.check_role(actor, &role, before).await?;
        let version = old.version;
        self.write(false, |tx| {
            let role = role.clone();
            Box::pin(async move {
                tx.put_role(&role, Expect::Existing(Some(version)))
                    .await
                    .map(|_| ())
            })
        })
        .await?;
        audit::log(actor, "update", "role", id);
        self.role(actor, id).await
    }

    pub async fn delete_role(
        &self,
        actor: &Actor,
        id: &str,
        if_match: Option<i64>,
    ) -> Result<(), AdminError> {
        actor.require("role-delete")?;
        let old = self.visible_role(actor, id).await?;
        stale(&format!("role {id:?}"), old.version, if_match)?;
        let id2 = id.to_string();
        self.write(true, |tx| {
            let id = id2.clone();
            Box::pin(async move { tx.delete_role(&id, Some(old.version)).await })
        })
        .await?;
        audit::log(actor, "delete", "role", id);
        Ok(())
    }

    // Tenants.

    pub async fn list_tenants(
        &self,
        actor: &Actor,
        window: &Window,
    ) -> Result<Listed<WithVersion<Tenant>>, AdminError> {
        actor.require("tenant-list")?;
        let page = self.store.tenants(&window.query()?).await?;
        Ok(Listed {
            items: page
                .items
                .iter()
                .filter(|t| actor.sees(Some(&t.value.id)))
                .map(WithVersion::from)
                .collect(),
            next: page.next.as_deref().map(encode_cursor),
        })
    }

    pub async fn tenant(&self, actor: &Actor, id: &str) -> Result<WithVersion<Tenant>, AdminError> {
        actor.require("tenant-get")?;
        match self.store.tenant(id).await? {
            Some(t) if actor.sees(Some(id)) => Ok(WithVersion::from(&t)),
            _ => Err(AdminError::NotFound(format!("tenant {id:?}"))),
        }
    }

    async fn check_tenant(&self, actor: &Actor, t: &Tenant) -> Result<(), AdminError> {
        let policy = self.policy().await?;
        let granted =
            closure(&policy, t.roles.explicit(), "roles")?.union(&named(&t.permissions.enabled));
        actor.may_grant(&granted, &format!("tenant {:?}", t.id))
    }

    pub async fn create_tenant(
        &self,
        actor: &Actor,
        tenant: Tenant,
    ) -> Result<WithVersion<Tenant>, AdminError> {
        actor.require("tenant-create")?;
        actor.require_global("create tenants")?;
        self.check_tenant(actor, &tenant).await?;
        self.write(false, |tx| {
            let t = tenant.clone();
            Box::pin(async move { tx.put_tenant(&t, Expect::New).await.map(|_| ()) })
        })
        .await?;
        audit::log(actor, "create", "tenant", &tenant.id);
        self.tenant(actor, &tenant.id).await
    }

    pub async fn patch_tenant(
        &self,
        actor: &Actor,
        id: &str,
        patch: &serde_json::Value,
        if_match: Option<i64>,
    ) -> Result<WithVersion<Tenant>, AdminError> {
        actor.require("tenant-update")?;
        let old = self.tenant(actor, id).await?;
        actor.require_global("change tenants")?;
        stale(&format!("tenant {id:?}"), old.version, if_match)?;
        let tenant: Tenant = patched(&old.value, patch, "id", id)?;
        self.check_tenant(actor, &tenant).await?;
        let version = old.version;
        self.write(false, |tx| {
            let t = tenant.clone();
            Box::pin(async move {
                tx.put_tenant(&t, Expect::Existing(Some(version)))
                    .await
                    .map(|_| ())
            })
        })
        .await?;
        audit::log(actor, "update", "tenant", id);
        self.tenant(actor, id).await
    }

    pub async fn delete_tenant(
        &self,
        actor: &Actor,
        id: &str,
        if_match: Option<i64>,
    ) -> Result<(), AdminError> {
        actor.require("tenant-delete")?;
        let old = self.tenant(actor, id).await?;
        actor.require_global("delete tenants")?;
        stale(&format!("tenant {id:?}"), old.version, if_match)?;
        let id2 = id.to_string();
        self.write(true, |tx| {
            let id = id2.clone();
            Box::pin(async move { tx.delete_tenant(&id, Some(old.version)).await })
        })
        .await?;
        audit::log(actor, "delete", "tenant", id);
        Ok(())
    }

    // OAuth clients.

    pub async fn list_oauth_clients(
        &self,
        actor: &Actor,
        window: &Window,
    ) -> Result<Listed<OAuthClientView>, AdminError> {
        actor.require("oauth-client-list")?;
        let page = self.store.oauth_clients(&window.query()?).await?;
        let mut items = Vec::new();
        for (c, _) in &page.items {
            if !actor.sees(c.member_tenant_id.as_deref()) {
                continue;
            }
            if let Some(stored) = self.store.oauth_client(&c.client_id).await? {
                items.push(OAuthClientView::from(&stored));
            }
        }
        Ok(Listed {
            items,
            next: page.next.as_deref().map(encode_cursor),
        })
    }

    async fn visible_client(
        &self,
        actor: &Actor,
        id: &str,
    ) -> Result<postern_internal::store::StoredOAuthClient, AdminError> {
        match self.store.oauth_client(id).await? {
            Some(c) if actor.sees(c.client.member_tenant_id.as_deref()) => Ok(c),
            _ => Err(AdminError::NotFound(format!("oauth-client {id:?}"))),
        }
    }

    pub async fn oauth_client(
        &self,
        actor: &Actor,
        id: &str,
    ) -> Result<OAuthClientView, AdminError> {
        actor.require("oauth-client-get")?;
        Ok(OAuthClientView::from(
            &self.visible_client(actor, id).await?,
        ))
    }

    async fn check_client(
        &self,
        actor: &Actor,
        c: &OAuthClientInput,
        before: PermSet,
    ) -> Result<(), AdminError> {
        let policy = self.policy().await?;
        let ids = c.roles.as_ref().map(|r| r.explicit()).unwrap_or_default();
        let granted = closure(&policy, ids, "roles")?.union(&named(&c.permissions.enabled));
        actor.may_grant(
            &granted.minus(&before),
            &format!("oauth-client {:?}", c.client_id),
        )
    }

    pub async fn create_oauth_client(
        &self,
        actor: &Actor,
        mut input: OAuthClientInput,
    ) -> Result<OAuthClientView, AdminError> {
        actor.require("oauth-client-create")?;
        input.member_tenant_id = actor.place(input.member_tenant_id.take(), "memberTenantId")?;
        self.check_client(actor, &input, PermSet::EMPTY).await?;
        self.write(false, |tx| {
            let c = input.clone();
            Box::pin(async move { tx.put_oauth_client(&c, Expect::New).await.map(|_| ()) })
        })
        .await?;
        audit::log(actor, "create", "oauth-client", &input.client_id);
        self.oauth_client(actor, &input.client_id).await
    }

    /// `secret` absent from the patch keeps the stored hash; `null` makes the client public.
    pub async fn patch_oauth_client(
        &self,
        actor: &Actor,
        id: &str,
        patch: &serde_json::Value,
        if_match: Option<i64>,
    ) -> Result<OAuthClientView, AdminError> {
        actor.require("oauth-client-update")?;
        let old = self.visible_client(actor, id).await?;
        stale(&format!("oauth-client {id:?}"), old.version, if_match)?;
        let body =
            serde_json::to_value(&old.client).map_err(|e| AdminError::Internal(e.to_string()))?;
        let mut doc = body.clone();
        if let Some(s) = &old.secret {
            if let Some(map) = doc.as_object_mut() {
                map.insert("secret".into(), s.expose().into());
            }
        }
        let mut input: OAuthClientInput =
            patched(&doc, patch, "clientId", id).and_then(|v: serde_json::Value| {
                serde_json::from_value(v)
                    .map_err(|e| AdminError::Invalid(vec![format!("body: {e}")]))
            })?;
        if input.member_tenant_id != old.client.member_tenant_id {
            input.member_tenant_id =
                actor.place(input.member_tenant_id.take(), "memberTenantId")?;
        }
        let policy = self.policy().await?;
        let ids = old
            .client
            .roles
            .as_ref()
            .map(|r| r.explicit())
            .unwrap_or_default();
        let before = closure(&policy, ids, "roles")
            .unwrap_or_default()
            .union(&named(&old.client.permissions.enabled));
        self.check_client(actor, &input, before).await?;
        let version = old.version;
        self.write(false, |tx| {
            let c = input.clone();
            Box::pin(async move {
                tx.put_oauth_client(&c, Expect::Existing(Some(version)))
                    .await
                    .map(|_| ())
            })
        })
        .await?;
        audit::log(actor, "update", "oauth-client", id);
        self.oauth_client(actor, id).await
    }

    pub async fn delete_oauth_client(
        &self,
        actor: &Actor,
        id: &str,
        if_match: Option<i64>,
    ) -> Result<(), AdminError> {
        actor.require("oauth-client-delete")?;
        let old = self.visible_client(actor, id).await?;
        stale(&format!("oauth-client {id:?}"), old.version, if_match)?;
        let id2 = id.to_string();
        self.write(true, |tx| {
            let id = id2.clone();
            Box::pin(async move { tx.delete_oauth_client(&id, Some(old.version)).await })
        })
        .await?;
        audit::log(actor, "delete", "oauth-client", id);
        Ok(())
    }

    // The authentication defaults.

    pub async fn defaults(&self, actor: &Actor) -> Result<DefaultsView, AdminError> {
        actor.require("settings-list")?;
        actor.require_global("read the authentication defaults")?;
        Ok(match self.store.defaults().await? {
            Some(v) => WithVersion::from(&v),
            None => WithVersion {
                value: AuthDefaults::default(),
                version: 0,
            },
        })
    }

    /// Replaces the defaults. `if_match` 0: only while the built-in ones are in force.
    pub async fn put_defaults(
        &self,
        actor: &Actor,
        defaults: AuthDefaults,
        if_match: Option<i64>,
    ) -> Result<DefaultsView, AdminError> {
        actor.require("settings-update")?;
        let old = self.defaults(actor).await?;
        stale("authentication defaults", old.version, if_match)?;
        let policy = self.policy().await?;
        let all = |d: &AuthDefaults| {
            let mut ids = d.default_user_role_ids.clone();
            ids.extend(d.default_admin_role_ids.iter().cloned());
            ids.extend(d.default_tenant_role_ids.iter().cloned());
            ids.extend(d.default_group_role_ids.iter().cloned());
            ids
        };
        let before = closure(&policy, &all(&old.value), "defaults").unwrap_or_default();
        let after = closure(&policy, &all(&defaults), "defaultRoleIds")?;
        actor.may_grant(&after.minus(&before), "authentication defaults")?;
        let expect = match old.version {
            0 => Expect::Either,
            v => Expect::Existing(Some(v)),
        };
        self.write(false, |tx| {
            let d = defaults.clone();
            Box::pin(async move { tx.put_defaults(&d, expect).await.map(|_| ()) })
        })
        .await?;
        audit::log(actor, "update", "settings", "authentication");
        self.defaults(actor).await
    }
}
