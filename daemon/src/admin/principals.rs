//! Principals (individuals and groups): list, read, create, merge-patch, delete, password,
//! effective permissions and their explanation.

use postern_internal::input::{AccountInput, Password};
use postern_internal::model::{Account, AccountType, RoleSet, BUILTIN_ROLES};
use postern_internal::store::{AccountFilter, Expect};
use postern_internal::view::AccountView;
use postern_internal::StoredAccount;
use serde::Serialize;

use super::guard::{confers, named, principal_permission, Op};
use super::{audit, encode_cursor, retry_busy, Actor, Admin, AdminError, Listed, Window};
use crate::authz::{Permission, Subject};

/// Which principals a list shows.
#[derive(Debug, Clone, Default)]
pub struct PrincipalQuery {
    pub kind: Option<AccountType>,
    pub tenant: Option<String>,
    /// `q`: a name prefix.
    pub window: Window,
}

/// `GET …/permissions?explain=PERM`: what `postern explain NAME PERM` prints, as JSON.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Explanation {
    pub permission: String,
    pub granted: bool,
    pub steps: Vec<String>,
}

/// A principal as a JMAP Sharing `Principal` (RFC 9670 §2).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct JmapPrincipal {
    pub id: String,
    /// `individual` or `group`; tenants and roles are `other` (SPEC §4).
    #[serde(rename = "type")]
    pub kind: String,
    pub name: String,
    pub description: Option<String>,
    pub email: Option<String>,
    pub time_zone: Option<String>,
    /// No JMAP capabilities are served here.
    #[schema(value_type = Object)]
    pub capabilities: serde_json::Map<String, serde_json::Value>,
    #[schema(value_type = Option<Object>)]
    pub accounts: Option<serde_json::Value>,
}

pub fn kind_name(kind: AccountType) -> &'static str {
    match kind {
        AccountType::Individual => "individual",
        AccountType::Group => "group",
    }
}

/// The account an input describes, as it would be stored.
fn model(input: &AccountInput, old: Option<&StoredAccount>) -> Account {
    Account {
        name: input.name.clone(),
        kind: input.kind,
        description: input.description.clone(),
        emails: input.emails.clone(),
        member_of: input.member_of.clone(),
        tenant: input.tenant.clone(),
        roles: input.roles.clone(),
        permissions: input.permissions.clone(),
        directory_groups: old
            .map(|o| o.account.directory_groups.clone())
            .unwrap_or_default(),
        subject: old.and_then(|o| o.account.subject.clone()),
    }
}

/// The input that writes an account back as it is (the base of a merge patch): the body
/// without what only Postern writes, which `AccountInput` refuses.
fn as_input_json(a: &Account) -> serde_json::Value {
    let mut v = serde_json::to_value(a).unwrap_or_default();
    if let Some(map) = v.as_object_mut() {
        for field in Account::WRITTEN_BY_POSTERN {
            map.remove(field);
        }
    }
    v
}

/// RFC 7396 JSON merge patch.
pub fn merge_patch(target: &mut serde_json::Value, patch: &serde_json::Value) {
    let Some(fields) = patch.as_object() else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = serde_json::Value::Object(serde_json::Map::new());
    }
    if let Some(map) = target.as_object_mut() {
        for (key, value) in fields {
            if value.is_null() {
                map.remove(key);
            } else {
                merge_patch(
                    map.entry(key.clone()).or_insert(serde_json::Value::Null),
                    value,
                );
            }
        }
    }
}

impl Admin {
    /// An account by exact name, when the actor may see it.
    async fn visible(&self, actor: &Actor, name: &str) -> Result<StoredAccount, AdminError> {
        let absent = || AdminError::NotFound(format!("principal {name:?}"));
        let stored = self.store.account(name).await?.ok_or_else(absent)?;
        // `account` also finds by email; the API names principals by name only.
        if stored.account.name != name || !actor.sees(stored.account.tenant.as_deref()) {
            return Err(absent());
        }
        Ok(stored)
    }

    /// Reads a principal after checking `op`'s permission for its kind.
    async fn principal_for(
        &self,
        actor: &Actor,
        name: &str,
        op: Op,
    ) -> Result<StoredAccount, AdminError> {
        let i = principal_permission(AccountType::Individual, op);
        let g = principal_permission(AccountType::Group, op);
        if !actor.holds(i) && !actor.holds(g) {
            return Err(AdminError::Forbidden(format!("missing permission {i:?}")));
        }
        let stored = self.visible(actor, name).await?;
        actor.require(principal_permission(stored.account.kind, op))?;
        Ok(stored)
    }

    pub async fn list_principals(
        &self,
        actor: &Actor,
        q: &PrincipalQuery,
    ) -> Result<Listed<AccountView>, AdminError> {
        let kind = match q.kind {
            Some(kind) => {
                actor.require(principal_permission(kind, Op::List))?;
                Some(kind)
            }
            None => match (actor.holds("individual-list"), actor.holds("group-list")) {
                (true, true) => None,
                (true, false) => Some(AccountType::Individual),
                (false, true) => Some(AccountType::Group),
                (false, false) => {
                    return Err(AdminError::Forbidden(
                        "missing permission \"individual-list\"".into(),
                    ))
                }
            },
        };
        let tenant = match (&actor.tenant, &q.tenant) {
            (Some(mine), Some(asked)) if mine != asked => {
                return Ok(Listed {
                    items: Vec::new(),
                    next: None,
                })
            }
            (Some(mine), _) => Some(mine.clone()),
            (None, asked) => asked.clone(),
        };
        let page = self
            .store
            .accounts(&AccountFilter { kind, tenant }, &q.window.query()?)
            .await?;
        Ok(Listed {
            items: page.items.iter().map(AccountView::from).collect(),
            next: page.next.as_deref().map(encode_cursor),
        })
    }

    /// The JMAP Sharing view: the same accounts, then (without a `type` filter) the tenants
    /// and roles the actor may list, as type `other`. The cursor names the phase
    /// (`a.`, `t.`, `r.`) and the inner list's cursor.
    pub async fn list_jmap(
        &self,
        actor: &Actor,
        q: &PrincipalQuery,
    ) -> Result<Listed<JmapPrincipal>, AdminError> {
        let (phase, inner) = match q.window.cursor.as_deref() {
            None => ("a", None),
            Some(c) => match c.split_once('.') {
                Some((p @ ("a" | "t" | "r"), rest)) => {
                    (p, Some(rest.to_string()).filter(|r| !r.is_empty()))
                }
                _ => {
                    return Err(AdminError::BadRequest(
                        "cursor: not a cursor this server gave".into(),
                    ))
                }
            },
        };
        let others = q.kind.is_none() && q.tenant.is_none() && q.window.prefix.is_none();
        let window = Window {
            cursor: inner,
            ..q.window.clone()
        };
        let other = |id: &str, description: &str| JmapPrincipal {
            id: id.to_string(),
            kind: "other".into(),
            name: id.to_string(),
            description: Some(description.to_string()).filter(|d| !d.is_empty()),
            email: None,
            time_zone: None,
            capabilities: serde_json::Map::new(),
            accounts: None,
        };
        let (items, next, then) = match phase {
            "a" => {
                let page = self
                    .list_principals(
                        actor,
                        &PrincipalQuery {
                            window,
                            ..q.clone()
                        },
                    )
                    .await?;
                let items = page
                    .items
                    .iter()
                    .map(|v| JmapPrincipal {
                        id: v.id.clone(),
                        kind: kind_name(v.kind).into(),
                        name: v.name.clone(),
                        description: Some(v.description.clone()).filter(|d| !d.is_empty()),
                        email: v.emails.first().cloned(),
                        time_zone: None,
                        capabilities: serde_json::Map::new(),
                        accounts: None,
                    })
                    .collect();
                (items, page.next, "t")
            }
            "t" if others && actor.holds("tenant-list") => {
                let page = self.list_tenants(actor, &window).await?;
                let items = page
                    .items
                    .iter()
                    .map(|t| other(&t.value.id, &t.value.description))
                    .collect();
                (items, page.next, "r")
            }
            "t" => (Vec::new(), None, "r"),
            _ if others && actor.holds("role-list") => {
                let page = self.list_roles(actor, &window).await?;
                let items = page
                    .items
                    .iter()
                    .map(|r| other(&r.value.id, &r.value.description))
                    .collect();
                (items, page.next, "")
            }
            _ => (Vec::new(), None, ""),
        };
        let next = match (next, then) {
            (Some(inner), _) => Some(format!("{phase}.{inner}")),
            (None, "") => None,
            (None, then) if others => Some(format!("{then}.")),
            (None, _) => None,
        };
        Ok(Listed { items, next })
    }

    pub async fn principal(&self, actor: &Actor, name: &str) -> Result<AccountView, AdminError> {
        Ok(AccountView::from(
            &self.principal_for(actor, name, Op::Get).await?,
        ))
    }

    /// A tenant administrator names only groups and roles of their tenant (the rest is absent
    /// to them, as in a read).
    async fn check_references(
        &self,
        actor: &Actor,
        input: &AccountInput,
    ) -> Result<(), AdminError> {
        let Some(mine) = &actor.tenant else {
            return Ok(());
        };
        let mut problems = Vec::new();
        for g in &input.member_of {
            let ok = matches!(self.store.account(g).await?,
                Some(s) if s.account.name == *g && s.account.tenant.as_deref() == Some(mine));
            if !ok {
                problems.push(format!("memberOf: group {g:?} does not exist"));
            }
        }
        for r in input
            .roles
            .as_ref()
            .map(RoleSet::explicit)
            .unwrap_or_default()
        {
            if BUILTIN_ROLES.contains(&r.as_str()) {
                continue;
            }
            let ok = matches!(self.store.role(r).await?,
                Some(v) if v.value.member_tenant_id.as_deref() == Some(mine));
            if !ok {
                problems.push(format!("roles: role {r:?} does not exist"));
            }
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(AdminError::Invalid(problems))
        }
    }

    pub async fn create_principal(
        &self,
        actor: &Actor,
        mut input: AccountInput,
    ) -> Result<AccountView, AdminError> {
        actor.require(principal_permission(input.kind, Op::Create))?;
        input.tenant = actor.place(input.tenant.take(), "tenant")?;
        self.check_references(actor, &input).await?;
        let policy = self.policy().await?;
        let granted =
            confers(&policy, &model(&input, None))?.union(&named(&input.permissions.enabled));
        actor.may_grant(&granted, &format!("principal {:?}", input.name))?;
        retry_busy!(self.write_account(&input, Expect::New).await)?;
        audit::log(actor, "create", "principal", &input.name);
        self.view_of(&input.name).await
    }

    async fn write_account(&self, input: &AccountInput, expect: Expect) -> Result<(), AdminError> {
        let mut tx = self.store.begin().await?;
        tx.put_account(input, &self.hasher, expect)
            .await
            .map_err(|e| AdminError::from_write(e, false))?;
        tx.commit()
            .await
            .map_err(|e| AdminError::from_write(e, false))?;
        Ok(())
    }

    async fn view_of(&self, name: &str) -> Result<AccountView, AdminError> {
        let stored = self
            .store
            .account(name)
            .await?
            .ok_or_else(|| AdminError::NotFound(format!("principal {name:?}")))?;
        Ok(AccountView::from(&stored))
    }

    /// Applies a JSON merge patch (RFC 7396) to a principal. `if_match`: the version the
    /// client read (412 when it moved on).
    pub async fn patch_principal(
        &self,
        actor: &Actor,
        name: &str,
        patch: &serde_json::Value,
        if_match: Option<i64>,
    ) -> Result<AccountView, AdminError> {
        if !patch.is_object() {
            return Err(AdminError::Invalid(vec![
                "body: a merge patch must be a JSON object".into(),
            ]));
        }
        let old = self.principal_for(actor, name, Op::Update).await?;
        check_version(&old, if_match, name)?;
        let mut doc = as_input_json(&old.account);
        merge_patch(&mut doc, patch);
        let mut input: AccountInput = serde_json::from_value(doc)
            .map_err(|e| AdminError::Invalid(vec![format!("body: {e}")]))?;
        if input.name != name {
            return Err(AdminError::Invalid(vec![
                "name: a principal cannot be renamed".into(),
            ]));
        }
        if input.tenant != old.account.tenant {
            input.tenant = actor.place(input.tenant.take(), "tenant")?;
        }
        if input.kind != old.account.kind {
            actor.require(principal_permission(input.kind, Op::Create))?;
        }
        self.check_references(actor, &input).await?;
        let policy = self.policy().await?;
        let before = confers(&policy, &old.account).unwrap_or_default();
        actor.may_manage(&before, &format!("principal {name:?}"))?;
        let after = confers(&policy, &model(&input, Some(&old)))?;
        let added = after.minus(&before).union(
            &named(&input.permissions.enabled).minus(&named(&old.account.permissions.enabled)),
        );
        actor.may_grant(&added, &format!("principal {name:?}"))?;
        retry_busy!(
            self.write_account(&input, Expect::Existing(Some(old.version)))
                .await
        )?;
        audit::log(actor, "update", "principal", name);
        self.view_of(name).await
    }

    /// Sets a principal's password (`postern passwd`, or `password` in a patch).
    pub async fn set_password(
        &self,
        actor: &Actor,
        name: &str,
        password: Password,
    ) -> Result<AccountView, AdminError> {
        let old = self.principal_for(actor, name, Op::Update).await?;
        let policy = self.policy().await?;
        actor.may_manage(
            &confers(&policy, &old.account).unwrap_or_default(),
            &format!("principal {name:?}"),
        )?;
        let doc = as_input_json(&old.account);
        let mut input: AccountInput = serde_json::from_value(doc)
            .map_err(|e| AdminError::Internal(format!("stored account: {e}")))?;
        input.password = Some(password);
        retry_busy!(
            self.write_account(&input, Expect::Existing(Some(old.version)))
                .await
        )?;
        audit::log(actor, "set-password", "principal", name);
        self.view_of(name).await
    }

    pub async fn delete_principal(
        &self,
        actor: &Actor,
        name: &str,
        if_match: Option<i64>,
    ) -> Result<(), AdminError> {
        let old = self.principal_for(actor, name, Op::Delete).await?;
        check_version(&old, if_match, name)?;
        let policy = self.policy().await?;
        actor.may_manage(
            &confers(&policy, &old.account).unwrap_or_default(),
            &format!("principal {name:?}"),
        )?;
        retry_busy!(
            async {
                let mut tx = self.store.begin().await?;
                tx.delete_account(name, Some(old.version))
                    .await
                    .map_err(|e| AdminError::from_write(e, true))?;
                tx.commit()
                    .await
                    .map_err(|e| AdminError::from_write(e, true))?;
                Ok::<(), AdminError>(())
            }
            .await
        )?;
        audit::log(actor, "delete", "principal", name);
        Ok(())
    }

    /// The principal's effective permissions, sorted.
    pub async fn permissions(&self, actor: &Actor, name: &str) -> Result<Vec<String>, AdminError> {
        let stored = self.principal_for(actor, name, Op::Get).await?;
        let policy = self.policy().await?;
        Ok(confers(&policy, &stored.account)?
            .sorted_names()
            .into_iter()
            .map(String::from)
            .collect())
    }

    /// Why one permission is granted or denied (the steps `postern explain` prints).
    pub async fn explain(
        &self,
        actor: &Actor,
        name: &str,
        permission: &str,
    ) -> Result<Explanation, AdminError> {
        let p = Permission::from_name(permission).ok_or_else(|| {
            AdminError::Invalid(vec![format!(
                "explain: unknown permission {permission:?}{}",
                crate::authz::permission_hint(permission)
            )])
        })?;
        let stored = self.principal_for(actor, name, Op::Get).await?;
        let policy = self.policy().await?;
        let subject = Subject::from_account(&stored.account, &[])
            .map_err(|e| AdminError::Invalid(vec![e.to_string()]))?;
        let granted = policy
            .evaluate(&subject)
            .map_err(|e| AdminError::Invalid(vec![e.to_string()]))?
            .effective
            .contains(p);
        let steps = policy
            .explain(&subject, p)
            .map_err(|e| AdminError::Invalid(vec![e.to_string()]))?;
        Ok(Explanation {
            permission: permission.to_string(),
            granted,
            steps,
        })
    }
}

fn check_version(old: &StoredAccount, if_match: Option<i64>, name: &str) -> Result<(), AdminError> {
    match if_match {
        Some(v) if v != old.version => Err(AdminError::Stale(format!(
            "principal {name:?} is at version {}, not {v}: read it again",
            old.version
        ))),
        _ => Ok(()),
    }
}
