//! Failed logins counted across every daemon that shares the store, so that N daemons behind
//! a balancer lock an account or an address after the configured number of failures in all,
//! not N times that.
//!
//! Each daemon counts failures in memory (that is what answers at once) and reports what it
//! counted every half second; it reads back the keys that are over their limit in total. A key
//! is `account:<lowercased name>`, `ip:<address block>` or `pair:<address block>|<name>` (one
//! account from one block). `postern unlock` deletes rows and `postern status` lists them. Only failures are written: a store write
//! per successful login would cost every user for the sake of attackers.

use crate::{Store, StoreError};

/// A key with its failures in a window that has not ended, and when that window ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailureRow {
    pub key: String,
    pub failures: i64,
    pub until: i64,
}

/// A key over its limit, and when its window ends (unix seconds).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Locked {
    pub key: String,
    pub until: i64,
}

impl Store {
    /// Adds failures a daemon counted since its last report. A key whose window (`window`
    /// seconds from its first failure) has ended starts a new one at `now`.
    pub async fn add_login_failures(
        &self,
        counts: &[(String, i64)],
        now: i64,
        window: i64,
    ) -> Result<(), StoreError> {
        let mut tx = self.db().begin().await.map_err(StoreError::from_sqlx)?;
        for (key, n) in counts {
            sqlx::query(
                "INSERT INTO login_failures (key, window_start, failures) VALUES ($1, $2, $3)
                 ON CONFLICT (key) DO UPDATE SET
                   failures = CASE WHEN login_failures.window_start + $4 <= $2 THEN $3
                                   ELSE login_failures.failures + $3 END,
                   window_start = CASE WHEN login_failures.window_start + $4 <= $2 THEN $2
                                       ELSE login_failures.window_start END",
            )
            .bind(key.as_str())
            .bind(now)
            .bind(*n)
            .bind(window)
            .execute(&mut *tx)
            .await
            .map_err(StoreError::from_sqlx)?;
        }
        tx.commit().await.map_err(StoreError::from_sqlx)
    }

    /// Keys with at least `per_account` (`account:…`) or `per_ip` (`ip:…`) failures in a
    /// window that has not ended.
    pub async fn locked_keys(
        &self,
        now: i64,
        window: i64,
        per_account: i64,
        per_ip: i64,
    ) -> Result<Vec<Locked>, StoreError> {
        let rows: Vec<(String, i64)> = sqlx::query_as(
            "SELECT key, window_start + $2 FROM login_failures
             WHERE window_start + $2 > $1
               AND failures >= CASE WHEN key LIKE 'account:%' THEN $3 ELSE $4 END",
        )
        .bind(now)
        .bind(window)
        .bind(per_account)
        .bind(per_ip)
        .fetch_all(self.db())
        .await
        .map_err(StoreError::from_sqlx)?;
        Ok(rows
            .into_iter()
            .map(|(key, until)| Locked { key, until })
            .collect())
    }

    /// Keys with at least `per_account` (`account:…`), `per_ip` (`ip:…`) or `per_pair`
    /// (`pair:…`) failures in a window that has not ended, with their count.
    pub async fn failure_rows(
        &self,
        now: i64,
        window: i64,
        per_account: i64,
        per_ip: i64,
        per_pair: i64,
    ) -> Result<Vec<FailureRow>, StoreError> {
        let rows: Vec<(String, i64, i64)> = sqlx::query_as(
            "SELECT key, failures, window_start + $2 FROM login_failures
             WHERE window_start + $2 > $1
               AND failures >= CASE WHEN key LIKE 'account:%' THEN $3
                                    WHEN key LIKE 'pair:%' THEN $5 ELSE $4 END
             ORDER BY key",
        )
        .bind(now)
        .bind(window)
        .bind(per_account)
        .bind(per_ip)
        .bind(per_pair)
        .fetch_all(self.db())
        .await
        .map_err(StoreError::from_sqlx)?;
        Ok(rows
            .into_iter()
            .map(|(key, failures, until)| FailureRow {
                key,
                failures,
                until,
            })
            .collect())
    }

    /// Every key the table holds (for `postern unlock`, which picks the ones to delete: user
    /// input never goes into a LIKE pattern).
    pub async fn login_failure_keys(&self) -> Result<Vec<String>, StoreError> {
        sqlx::query_scalar("SELECT key FROM login_failures ORDER BY key")
            .fetch_all(self.db())
            .await
            .map_err(StoreError::from_sqlx)
    }

    /// Deletes the rows of these keys (`postern unlock`); the daemons sharing the store lift
    /// the lock at their next sync. The number of rows deleted.
    pub async fn delete_login_failures(&self, keys: &[String]) -> Result<u64, StoreError> {
        let mut tx = self.db().begin().await.map_err(StoreError::from_sqlx)?;
        let mut n = 0;
        for key in keys {
            n += sqlx::query("DELETE FROM login_failures WHERE key = $1")
                .bind(key.as_str())
                .execute(&mut *tx)
                .await
                .map_err(StoreError::from_sqlx)?
                .rows_affected();
        }
        tx.commit().await.map_err(StoreError::from_sqlx)?;
        Ok(n)
    }

    /// Forgets an account's failures (after a successful login).
    pub async fn clear_login_failures(&self, key: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM login_failures WHERE key = $1")
            .bind(key)
            .execute(self.db())
            .await
            .map(|_| ())
            .map_err(StoreError::from_sqlx)
    }

    /// Deletes failures whose window has ended.
    pub async fn purge_login_failures(&self, now: i64, window: i64) -> Result<u64, StoreError> {
        sqlx::query("DELETE FROM login_failures WHERE window_start + $2 <= $1")
            .bind(now)
            .bind(window)
            .execute(self.db())
            .await
            .map(|r| r.rows_affected())
            .map_err(StoreError::from_sqlx)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn failures_add_up_across_reports_and_windows() {
        let path = std::env::temp_dir().join(format!(
            "postern-store-test-{}-failures.db",
            std::process::id()
        ));
        let _ = std::fs::remove_file(&path);
        let url = format!("sqlite://{}", path.display());
        let store = Store::open(&url, 2, Duration::from_secs(5)).await.unwrap();
        let key = |k: &str| k.to_string();
        // Two daemons report 2 and 2 for alice; the limit is 3.
        store
            .add_login_failures(
                &[(key("account:alice"), 2), (key("ip:192.0.2.1"), 2)],
                1000,
                60,
            )
            .await
            .unwrap();
        assert!(store.locked_keys(1001, 60, 3, 5).await.unwrap().is_empty());
        store
            .add_login_failures(
                &[(key("account:alice"), 2), (key("ip:192.0.2.1"), 2)],
                1010,
                60,
            )
            .await
            .unwrap();
        let locked = store.locked_keys(1011, 60, 3, 5).await.unwrap();
        // The window runs from the first failure; the address (4 < 5) is not locked.
        assert_eq!(
            locked,
            vec![Locked {
                key: key("account:alice"),
                until: 1060
            }]
        );
        // After the window, a new failure starts a new count.
        assert!(store.locked_keys(1060, 60, 3, 5).await.unwrap().is_empty());
        store
            .add_login_failures(&[(key("account:alice"), 1)], 1070, 60)
            .await
            .unwrap();
        assert!(store.locked_keys(1071, 60, 1, 5).await.unwrap().len() == 1);
        assert!(store.locked_keys(1071, 60, 2, 5).await.unwrap().is_empty());
        // A success clears the account; the purge drops ended windows.
        store.clear_login_failures("account:alice").await.unwrap();
        assert!(store.locked_keys(1071, 60, 1, 5).await.unwrap().is_empty());
        store
            .add_login_failures(&[(key("ip:192.0.2.9"), 1)], 1080, 60)
            .await
            .unwrap();
        assert_eq!(store.purge_login_failures(2000, 60).await.unwrap(), 2);
        // Rows with their counts, per kind of key; deleted by key.
        store
            .add_login_failures(
                &[
                    (key("pair:192.0.2.1|bob"), 3),
                    (key("account:bob"), 3),
                    (key("ip:192.0.2.1"), 3),
                ],
                3000,
                60,
            )
            .await
            .unwrap();
        let rows = store.failure_rows(3001, 60, 4, 4, 3).await.unwrap();
        assert_eq!(
            rows,
            vec![FailureRow {
                key: key("pair:192.0.2.1|bob"),
                failures: 3,
                until: 3060
            }]
        );
        assert_eq!(store.login_failure_keys().await.unwrap().len(), 3);
        let gone = [
            key("pair:192.0.2.1|bob"),
            key("account:bob"),
            key("nothing"),
        ];
        assert_eq!(store.delete_login_failures(&gone).await.unwrap(), 2);
        assert_eq!(
            store.login_failure_keys().await.unwrap(),
            vec![key("ip:192.0.2.1")]
        );
        let _ = std::fs::remove_file(&path);
    }
}
