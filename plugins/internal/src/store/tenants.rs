//! Tenants: get, list, write, delete.

use super::bodies::{self, TENANTS};
use super::references::Deleted;
use super::{check_id, to_json, Change, Expect, ListQuery, Page, Store, Tx};
use super::{Versioned, WriteError};
use crate::model::Tenant;
use crate::StoreError;

impl Store {
    pub async fn tenant(&self, id: &str) -> Result<Option<Versioned<Tenant>>, StoreError> {
        self.versioned(&TENANTS, id).await
    }

    pub async fn tenants(&self, q: &ListQuery) -> Result<Page<Versioned<Tenant>>, StoreError> {
        self.versioned_page(&TENANTS, q, |t: &Tenant| t.id.clone())
            .await
    }
}

impl Tx {
    pub async fn put_tenant(
        &mut self,
        tenant: &Tenant,
        expect: Expect,
    ) -> Result<Change, WriteError> {
        let what = format!("tenant {:?}", tenant.id);
        let mut problems = Vec::new();
        check_id(&what, &tenant.id, &mut problems);
        self.unknown_permissions(&what, &tenant.permissions.enabled, &mut problems);
        self.unknown_permissions(&what, &tenant.permissions.disabled, &mut problems);
        self.invalid(problems)?;
        self.refs.roles(&what, tenant.roles.explicit());
        bodies::write(
            self,
            &TENANTS,
            &tenant.id,
            &to_json(tenant)?,
            &[],
            false,
            expect,
        )
        .await
    }

    /// Refused at commit while an account, role or OAuth client belongs to the tenant.
    pub async fn delete_tenant(
        &mut self,
        id: &str,
        version: Option<i64>,
    ) -> Result<(), WriteError> {
        bodies::delete(self, &TENANTS, id, version).await?;
        self.refs.deleted(Deleted::Tenant(id.to_string()));
        Ok(())
    }
}
