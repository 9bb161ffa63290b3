//! Roles: get, list, write, delete. Built-in roles always exist and are never stored.

use super::bodies::{self, ROLES};
use super::references::Deleted;
use super::{check_id, to_json, Change, Expect, ListQuery, Page, Store, Tx};
use super::{Versioned, WriteError};
use crate::model::{Role, BUILTIN_ROLES};
use crate::StoreError;

impl Store {
    pub async fn role(&self, id: &str) -> Result<Option<Versioned<Role>>, StoreError> {
        self.versioned(&ROLES, id).await
    }

    pub async fn roles(&self, q: &ListQuery) -> Result<Page<Versioned<Role>>, StoreError> {
        self.versioned_page(&ROLES, q, |r: &Role| r.id.clone())
            .await
    }
}

impl Tx {
    pub async fn put_role(&mut self, role: &Role, expect: Expect) -> Result<Change, WriteError> {
        let what = format!("role {:?}", role.id);
        let mut problems = Vec::new();
        check_id(&what, &role.id, &mut problems);
        if BUILTIN_ROLES.contains(&role.id.as_str()) {
            problems.push(format!("{what}: built-in roles cannot be edited"));
        }
        self.unknown_permissions(&what, &role.enabled_permissions, &mut problems);
        self.unknown_permissions(&what, &role.disabled_permissions, &mut problems);
        self.invalid(problems)?;
        self.refs.roles(&what, &role.role_ids);
        if let Some(t) = &role.member_tenant_id {
            self.refs.tenant(&what, t);
        }
        bodies::write(self, &ROLES, &role.id, &to_json(role)?, &[], false, expect).await
    }

    /// Refused at commit while anything still names the role.
    pub async fn delete_role(&mut self, id: &str, version: Option<i64>) -> Result<(), WriteError> {
        if BUILTIN_ROLES.contains(&id) {
            self.invalid(vec![format!(
                "role {id:?}: built-in roles cannot be deleted"
            )])?;
        }
        bodies::delete(self, &ROLES, id, version).await?;
        self.refs.deleted(Deleted::Role(id.to_string()));
        Ok(())
    }
}
