//! Schema migrations, applied in order, each once, in one transaction.

use sqlx::{AnyPool, Row};

use crate::StoreError;

/// Written in the SQL both engines share.
const MIGRATIONS: &[&str] = &[
    "CREATE TABLE IF NOT EXISTS roles (id TEXT PRIMARY KEY, body TEXT NOT NULL);
     CREATE TABLE IF NOT EXISTS tenants (id TEXT PRIMARY KEY, body TEXT NOT NULL);
     CREATE TABLE IF NOT EXISTS accounts (
        name TEXT PRIMARY KEY, id TEXT NOT NULL UNIQUE, kind TEXT NOT NULL,
        origin TEXT NOT NULL, secret TEXT, body TEXT NOT NULL);
     CREATE TABLE IF NOT EXISTS account_emails (email TEXT PRIMARY KEY, account TEXT NOT NULL);
     CREATE TABLE IF NOT EXISTS settings (key TEXT PRIMARY KEY, body TEXT NOT NULL);
     CREATE TABLE IF NOT EXISTS credentials (
        id TEXT NOT NULL, kind TEXT NOT NULL, account TEXT NOT NULL,
        secret_hash TEXT NOT NULL UNIQUE, body TEXT NOT NULL, PRIMARY KEY (kind, id));
     CREATE INDEX IF NOT EXISTS credentials_account ON credentials (account);
     CREATE TABLE IF NOT EXISTS oauth_clients (client_id TEXT PRIMARY KEY, body TEXT NOT NULL);
     CREATE TABLE IF NOT EXISTS sessions (
        token_hash TEXT PRIMARY KEY, account TEXT NOT NULL, created_at BIGINT NOT NULL,
        expires_at BIGINT NOT NULL, revoked_at BIGINT, body TEXT NOT NULL);
     CREATE INDEX IF NOT EXISTS sessions_expires ON sessions (expires_at)",
    // Failed logins reported by every daemon sharing the store (`failures.rs`).
    "CREATE TABLE IF NOT EXISTS login_failures (
        key TEXT PRIMARY KEY, window_start BIGINT NOT NULL, failures BIGINT NOT NULL)",
    // Per-object API: versions for optimistic concurrency, the tenant column for
    // tenant-scoped lists, OAuth client secrets out of the body (see `fixup_3`).
    "ALTER TABLE roles ADD COLUMN version BIGINT NOT NULL DEFAULT 1;
     ALTER TABLE tenants ADD COLUMN version BIGINT NOT NULL DEFAULT 1;
     ALTER TABLE accounts ADD COLUMN version BIGINT NOT NULL DEFAULT 1;
     ALTER TABLE accounts ADD COLUMN tenant TEXT;
     ALTER TABLE credentials ADD COLUMN version BIGINT NOT NULL DEFAULT 1;
     ALTER TABLE oauth_clients ADD COLUMN version BIGINT NOT NULL DEFAULT 1;
     ALTER TABLE oauth_clients ADD COLUMN secret TEXT;
     ALTER TABLE settings ADD COLUMN version BIGINT NOT NULL DEFAULT 1;
     CREATE INDEX IF NOT EXISTS accounts_tenant ON accounts (tenant, name);
     CREATE INDEX IF NOT EXISTS accounts_kind ON accounts (kind, name);
     CREATE INDEX IF NOT EXISTS sessions_account ON sessions (account)",
    // The OAuth authorization server (`oauth_keys.rs`, `oauth_grants.rs`): signing keys shared
    // by every daemon, grants with their refresh tokens and codes (hashes only), access tokens
    // revoked before their expiry (by `jti`), and remembered consents.
    "CREATE TABLE IF NOT EXISTS oauth_keys (
        kid TEXT PRIMARY KEY, alg TEXT NOT NULL, private_key TEXT NOT NULL,
        public_jwk TEXT NOT NULL, created_at BIGINT NOT NULL, signs_from BIGINT NOT NULL);
     CREATE TABLE IF NOT EXISTS oauth_grants (
        id TEXT PRIMARY KEY, client_id TEXT NOT NULL, account TEXT NOT NULL,
        created_at BIGINT NOT NULL, expires_at BIGINT NOT NULL, revoked_at BIGINT,
        body TEXT NOT NULL);
     CREATE INDEX IF NOT EXISTS oauth_grants_expires ON oauth_grants (expires_at);
     CREATE TABLE IF NOT EXISTS oauth_refresh_tokens (
        token_hash TEXT PRIMARY KEY, grant_id TEXT NOT NULL, expires_at BIGINT NOT NULL,
        used_at BIGINT);
     CREATE INDEX IF NOT EXISTS oauth_refresh_grant ON oauth_refresh_tokens (grant_id);
     CREATE TABLE IF NOT EXISTS oauth_codes (
        code_hash TEXT PRIMARY KEY, expires_at BIGINT NOT NULL, used_at BIGINT,
        grant_id TEXT, body TEXT NOT NULL);
     CREATE TABLE IF NOT EXISTS oauth_revoked (jti TEXT PRIMARY KEY, expires_at BIGINT NOT NULL);
     CREATE TABLE IF NOT EXISTS oauth_consents (
        account TEXT NOT NULL, client_id TEXT NOT NULL, scope TEXT NOT NULL,
        PRIMARY KEY (account, client_id))",
    // Without these an `apply` of accounts with an address each was quadratic (10,000: 20 s;
    // 100,000: not done in 3 minutes): every email written is checked against the other
    // accounts' names in lower case (`references.rs`, `identity_clashes`), and every account
    // written replaces its addresses (`DELETE … WHERE account =`); each read the whole table.
    "CREATE INDEX IF NOT EXISTS accounts_lower_name ON accounts (LOWER(name));
     CREATE INDEX IF NOT EXISTS account_emails_account ON account_emails (account)",
];

pub(super) async fn migrate(pool: &AnyPool) -> Result<(), StoreError> {
    sqlx::query(
        "CREATE TABLE IF NOT EXISTS postern_meta (key TEXT PRIMARY KEY, value BIGINT NOT NULL)",
    )
    .execute(pool)
    .await
    .map_err(StoreError::from_sqlx)?;
    let mut tx = pool.begin().await.map_err(StoreError::from_sqlx)?;
    // A write first: SQLite then takes the write lock at once, waiting `busy_timeout` for it. A
    // read first would make the later write an upgrade, which fails at once ("database is
    // locked") if a running daemon wrote meanwhile (its failed-login counts, every 500 ms).
    sqlx::query(
        "INSERT INTO postern_meta (key, value) VALUES ('generation', 0) ON CONFLICT (key) DO NOTHING",
    )
    .execute(&mut *tx)
    .await
    .map_err(StoreError::from_sqlx)?;
    let version: Option<i64> =
        sqlx::query_scalar("SELECT value FROM postern_meta WHERE key = 'schema'")
            .fetch_optional(&mut *tx)
            .await
            .map_err(StoreError::from_sqlx)?;
    let version = version.unwrap_or(0);
    for (i, migration) in MIGRATIONS.iter().enumerate().skip(version as usize) {
        for statement in migration.split(';').filter(|s| !s.trim().is_empty()) {
            sqlx::query(statement)
                .execute(&mut *tx)
                .await
                .map_err(StoreError::from_sqlx)?;
        }
        if i + 1 == 3 {
            fixup_3(&mut tx).await?;
        }
        sqlx::query(
            "INSERT INTO postern_meta (key, value) VALUES ('schema', $1)
             ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        )
        .bind((i + 1) as i64)
        .execute(&mut *tx)
        .await
        .map_err(StoreError::from_sqlx)?;
    }
    tx.commit().await.map_err(StoreError::from_sqlx)
}

/// What SQL common to both engines cannot do: fill `accounts.tenant` from the bodies, and move
/// an OAuth client's `secret` from its body to its own column.
async fn fixup_3(tx: &mut sqlx::AnyConnection) -> Result<(), StoreError> {
    let accounts = sqlx::query("SELECT name, body FROM accounts")
        .fetch_all(&mut *tx)
        .await
        .map_err(StoreError::from_sqlx)?;
    for row in accounts {
        let name: String = row.try_get(0).map_err(StoreError::from_sqlx)?;
        let body: serde_json::Value = super::parse(
            &row.try_get::<String, _>(1).map_err(StoreError::from_sqlx)?,
            "account",
        )?;
        if let Some(tenant) = body.get("tenant").and_then(|t| t.as_str()) {
            sqlx::query("UPDATE accounts SET tenant = $1 WHERE name = $2")
                .bind(tenant.to_string())
                .bind(name)
                .execute(&mut *tx)
                .await
                .map_err(StoreError::from_sqlx)?;
        }
    }
    let clients = sqlx::query("SELECT client_id, body FROM oauth_clients")
        .fetch_all(&mut *tx)
        .await
        .map_err(StoreError::from_sqlx)?;
    for row in clients {
        let id: String = row.try_get(0).map_err(StoreError::from_sqlx)?;
        let mut body: serde_json::Value = super::parse(
            &row.try_get::<String, _>(1).map_err(StoreError::from_sqlx)?,
            "oauth client",
        )?;
        let secret = body
            .as_object_mut()
            .and_then(|o| o.remove("secret"))
            .and_then(|s| s.as_str().map(str::to_string));
        // Written as the typed client writes it, so the next `apply` of the same file finds
        // nothing changed.
        let body = match serde_json::from_value::<crate::model::OAuthClient>(body.clone()) {
            Ok(client) => super::to_json(&client)?,
            Err(_) => super::to_json(&body)?,
        };
        sqlx::query("UPDATE oauth_clients SET secret = $1, body = $2 WHERE client_id = $3")
            .bind(secret)
            .bind(body)
            .bind(id)
            .execute(&mut *tx)
            .await
            .map_err(StoreError::from_sqlx)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::Store;

    /// The name-clash check of every email written, and the replacement of an account's
    /// addresses, find their rows through an index, not by reading the whole table (SQLite's
    /// plan says which).
    #[tokio::test]
    async fn the_lower_case_name_check_uses_an_index() {
        let store = crate::store::testing::store("lower-name", 1).await;
        // SQLite's plan for `statement`, one step per row (the bound values do not matter).
        let db = store.db();
        let plan_of = |statement: &'static str| async move {
            sqlx::query(statement)
                .bind("alice@example.org")
                .bind("bob")
                .fetch_all(db)
                .await
                .unwrap()
                .iter()
                .map(|row| row.try_get::<String, _>(3).unwrap())
                .collect::<Vec<String>>()
        };
        let plan = plan_of(
            "EXPLAIN QUERY PLAN SELECT name FROM accounts WHERE LOWER(name) = $1 AND name <> $2",
        )
        .await;
        assert!(
            plan.iter().any(|step| step.contains("accounts_lower_name")),
            "{plan:?}"
        );
        let plan =
            plan_of("EXPLAIN QUERY PLAN DELETE FROM account_emails WHERE account = $1").await;
        assert!(
            plan.iter()
                .any(|step| step.contains("account_emails_account")),
            "{plan:?}"
        );
    }

    /// A store written by the previous release (schema 2): OAuth client secrets inside the
    /// body, no tenant column. Opening it moves the secret out and fills the column, and the
    /// body is as the typed client writes it.
    #[tokio::test]
    async fn schema_2_stores_are_brought_up_to_date() {
        sqlx::any::install_default_drivers();
        let path = std::env::temp_dir().join(format!("postern-migrate-{}.db", std::process::id()));
        let _ = std::fs::remove_file(&path);
        let url = format!("sqlite://{}?mode=rwc", path.display());
        let pool = AnyPool::connect(&url).await.unwrap();
        sqlx::query("CREATE TABLE postern_meta (key TEXT PRIMARY KEY, value BIGINT NOT NULL)")
            .execute(&pool)
            .await
            .unwrap();
        for statement in MIGRATIONS[..2].iter().flat_map(|m| m.split(';')) {
            if !statement.trim().is_empty() {
                sqlx::query(statement).execute(&pool).await.unwrap();
            }
        }
        for sql in [
            "INSERT INTO postern_meta (key, value) VALUES ('schema', 2), ('generation', 4)",
            r#"INSERT INTO oauth_clients (client_id, body) VALUES ('app', '{"clientId":"app","secret":"{PLAIN}s3cret","redirectUris":["https://a/cb"],"description":"","permissions":{"mode":"inherit"}}')"#,
            r#"INSERT INTO accounts (name, id, kind, origin, secret, body) VALUES ('alice', 'id1', 'individual', 'internal', NULL, '{"name":"alice","tenant":"acme","permissions":{"mode":"inherit"}}')"#,
        ] {
            sqlx::query(sql).execute(&pool).await.unwrap();
        }
        pool.close().await;

        let store = Store::open(
            &format!("sqlite://{}", path.display()),
            1,
            Duration::from_secs(5),
        )
        .await
        .unwrap();
        let client = store.oauth_client("app").await.unwrap().unwrap();
        assert_eq!(client.secret.unwrap().expose(), "{PLAIN}s3cret");
        assert_eq!(client.version, 1);
        assert_eq!(
            store.generation().await.unwrap(),
            4,
            "the generation is kept"
        );
        let acme = store
            .accounts(
                &crate::store::AccountFilter {
                    tenant: Some("acme".into()),
                    kind: None,
                },
                &crate::store::ListQuery {
                    limit: 10,
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        assert_eq!(acme.items.len(), 1);
        let body: String = sqlx::query_scalar("SELECT body FROM oauth_clients")
            .fetch_one(&AnyPool::connect(&url).await.unwrap())
            .await
            .unwrap();
        assert!(!body.contains("s3cret"), "{body}");
    }
}
