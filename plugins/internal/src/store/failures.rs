//! Failed logins counted across every daemon that shares the store, so that N daemons behind
//! a balancer lock an account or an address after the configured number of failures in all,
//! not N times that.
//!
//! Each daemon counts failures in memory (that is what answers at once) and reports what it
//! counted every half second; it reads back the keys that are over their limit in total. A key
//! is `account:<lowercased name>` or `ip:<address>`. Only failures are written: a store write
//! per successful login would cost every user for the sake of attackers.

use crate::{Store, StoreError};

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
        let _ = std::fs::remove_file(&path);
    }
}
