//! The tables that hold one JSON body per key (roles, tenants, OAuth clients, settings): their
//! reads, lists and versioned writes, shared so each object module only adds its checks.

use sqlx::Row;

use serde::de::DeserializeOwned;

use super::{page, parse, Change, Expect, ListQuery, Page, Store, Tx, Versioned, WriteError};
use crate::StoreError;

pub(crate) struct Table {
    pub name: &'static str,
    pub key: &'static str,
    /// How problems name an object of this table.
    pub what: &'static str,
}

pub(crate) const ROLES: Table = Table {
    name: "roles",
    key: "id",
    what: "role",
};
pub(crate) const TENANTS: Table = Table {
    name: "tenants",
    key: "id",
    what: "tenant",
};
pub(crate) const OAUTH_CLIENTS: Table = Table {
    name: "oauth_clients",
    key: "client_id",
    what: "oauth-client",
};
pub(crate) const SETTINGS: Table = Table {
    name: "settings",
    key: "key",
    what: "settings",
};

pub(crate) struct BodyRow {
    pub body: String,
    pub version: i64,
}

fn row(r: &sqlx::any::AnyRow) -> Result<BodyRow, StoreError> {
    Ok(BodyRow {
        body: r.try_get(1).map_err(StoreError::from_sqlx)?,
        version: r.try_get(2).map_err(StoreError::from_sqlx)?,
    })
}

// Table and column names below are always one of the constants above, never input.

pub(crate) async fn read(
    conn: &mut sqlx::AnyConnection,
    t: &Table,
    key: &str,
) -> Result<Option<BodyRow>, StoreError> {
    let sql = format!(
        "SELECT {k}, body, version FROM {n} WHERE {k} = $1",
        k = t.key,
        n = t.name
    );
    sqlx::query(&sql)
        .bind(key)
        .fetch_optional(conn)
        .await
        .map_err(StoreError::from_sqlx)?
        .as_ref()
        .map(row)
        .transpose()
}

/// One page of keys after `q.after`, plus one row more to tell whether another page follows.
pub(crate) async fn list(
    conn: &mut sqlx::AnyConnection,
    t: &Table,
    q: &ListQuery,
) -> Result<Vec<BodyRow>, StoreError> {
    let sql = format!(
        "SELECT {k}, body, version FROM {n} WHERE {k} > $1 AND SUBSTR({k}, 1, CAST($2 AS INTEGER)) = $3
         ORDER BY {k} LIMIT $4",
        k = t.key,
        n = t.name
    );
    let prefix = q.prefix.clone().unwrap_or_default();
    sqlx::query(&sql)
        .bind(q.after.clone().unwrap_or_default())
        .bind(prefix.chars().count() as i64)
        .bind(prefix)
        .bind(q.limit() + 1)
        .fetch_all(conn)
        .await
        .map_err(StoreError::from_sqlx)?
        .iter()
        .map(row)
        .collect()
}

/// Writes a body (and `extra` columns) when it differs from the stored one, bumping the
/// version. `extra_changed`: an extra column differs even if the body does not.
pub(crate) async fn write(
    tx: &mut Tx,
    t: &Table,
    key: &str,
    body: &str,
    extra: &[(&'static str, Option<String>)],
    extra_changed: bool,
    expect: Expect,
) -> Result<Change, WriteError> {
    let what = format!("{} {key:?}", t.what);
    let old = read(tx.conn(), t, key).await?;
    expect.check(&what, old.as_ref().map(|r| r.version))?;
    let change = match &old {
        None => Change::Created,
        Some(o) if o.body != body || extra_changed => Change::Updated,
        Some(_) => Change::Unchanged,
    };
    let sql = match change {
        Change::Unchanged => return Ok(change),
        Change::Created => {
            let mut cols = vec![t.key, "body"];
            cols.extend(extra.iter().map(|(c, _)| *c));
            let params: Vec<String> = (1..=cols.len()).map(|i| format!("${i}")).collect();
            format!(
                "INSERT INTO {} ({}) VALUES ({})",
                t.name,
                cols.join(", "),
                params.join(", ")
            )
        }
        Change::Updated => {
            let mut sets = vec!["body = $2".to_string(), "version = version + 1".into()];
            sets.extend(
                extra
                    .iter()
                    .enumerate()
                    .map(|(i, (c, _))| format!("{c} = ${}", i + 3)),
            );
            format!(
                "UPDATE {} SET {} WHERE {} = $1",
                t.name,
                sets.join(", "),
                t.key
            )
        }
    };
    let mut query = sqlx::query(&sql).bind(key).bind(body);
    for (_, value) in extra {
        query = query.bind(value.clone());
    }
    query
        .execute(tx.conn())
        .await
        .map_err(StoreError::from_sqlx)?;
    Ok(tx.note(change))
}

pub(crate) async fn delete(
    tx: &mut Tx,
    t: &Table,
    key: &str,
    version: Option<i64>,
) -> Result<(), WriteError> {
    let what = format!("{} {key:?}", t.what);
    let old = read(tx.conn(), t, key).await?;
    Expect::Existing(version).check(&what, old.as_ref().map(|r| r.version))?;
    let sql = format!("DELETE FROM {} WHERE {} = $1", t.name, t.key);
    sqlx::query(&sql)
        .bind(key)
        .execute(tx.conn())
        .await
        .map_err(StoreError::from_sqlx)?;
    tx.note(Change::Updated);
    Ok(())
}

impl Store {
    /// One object of a body table, with its version.
    pub(crate) async fn versioned<T: DeserializeOwned>(
        &self,
        t: &Table,
        key: &str,
    ) -> Result<Option<Versioned<T>>, StoreError> {
        let mut conn = self.db().acquire().await.map_err(StoreError::from_sqlx)?;
        read(&mut conn, t, key)
            .await?
            .map(|r| {
                Ok(Versioned {
                    version: r.version,
                    value: parse(&r.body, t.what)?,
                })
            })
            .transpose()
    }

    /// A page of a body table, in key order.
    pub(crate) async fn versioned_page<T: DeserializeOwned>(
        &self,
        t: &Table,
        q: &ListQuery,
        key: impl Fn(&T) -> String,
    ) -> Result<Page<Versioned<T>>, StoreError> {
        let mut conn = self.db().acquire().await.map_err(StoreError::from_sqlx)?;
        let items = list(&mut conn, t, q)
            .await?
            .iter()
            .map(|r| {
                Ok(Versioned {
                    version: r.version,
                    value: parse::<T>(&r.body, t.what)?,
                })
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        Ok(page(items, q, |v| key(&v.value)))
    }
}
