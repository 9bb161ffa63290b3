//! The Authentication singleton's default role sets (`settings` key `authentication`).

use super::bodies::{self, SETTINGS};
use super::{parse, to_json, Change, Expect, Store, Tx, Versioned, WriteError};
use crate::model::AuthDefaults;
use crate::StoreError;

const KEY: &str = "authentication";

pub(super) async fn read(
    conn: &mut sqlx::AnyConnection,
) -> Result<Option<Versioned<AuthDefaults>>, StoreError> {
    bodies::read(conn, &SETTINGS, KEY)
        .await?
        .map(|r| {
            Ok(Versioned {
                version: r.version,
                value: parse(&r.body, "authentication defaults")?,
            })
        })
        .transpose()
}

impl Store {
    /// The stored defaults; `None` while the built-in ones are in force.
    pub async fn defaults(&self) -> Result<Option<Versioned<AuthDefaults>>, StoreError> {
        let mut conn = self.db().acquire().await.map_err(StoreError::from_sqlx)?;
        read(&mut conn).await
    }
}

impl Tx {
    pub async fn put_defaults(
        &mut self,
        defaults: &AuthDefaults,
        expect: Expect,
    ) -> Result<Change, WriteError> {
        let what = "authentication defaults";
        for ids in [
            &defaults.default_user_role_ids,
            &defaults.default_admin_role_ids,
            &defaults.default_tenant_role_ids,
            &defaults.default_group_role_ids,
        ] {
            self.refs.roles(what, ids);
        }
        bodies::write(
            self,
            &SETTINGS,
            KEY,
            &to_json(defaults)?,
            &[],
            false,
            expect,
        )
        .await
    }
}
