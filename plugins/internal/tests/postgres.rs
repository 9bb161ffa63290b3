//! The store's per-object API on a private PostgreSQL: the same SQL as on SQLite (the unit
//! tests), where the two engines differ most (parameter types, text order, DDL).

use std::sync::Arc;
use std::time::Duration;

use postern_directory::secret::Hasher;
use postern_e2e::pg::Postgres;
use postern_internal::apply::apply;
use postern_internal::input::Provision;
use postern_internal::model::{AccountType, CredentialType};
use postern_internal::store::{AccountFilter, Expect, ListQuery, Rules, WriteError};
use postern_internal::Store;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_per_object_api_on_postgres() {
    let pg = Postgres::start();
    let url = pg.database("store");
    let store = Store::open(&url, 4, Duration::from_secs(10))
        .await
        .expect("store")
        .with_rules(Rules {
            is_permission: Arc::new(|n| n != "fly-to-the-moon"),
            ..Rules::default()
        });
    let hasher = Hasher::new(1);
    let file: Provision = serde_json::from_value(serde_json::json!({
        "tenant": [{"id": "acme"}],
        "role": [{"id": "a", "roleIds": ["b"]}, {"id": "b", "roleIds": ["a"]}],
        "account": [
            {"name": "staff", "type": "group"},
            {"name": "u1", "password": "pw-u1-secret", "tenant": "acme", "memberOf": ["staff"],
             "emails": ["U1@example.org"]},
            {"name": "u2", "password": "pw-u2-secret", "roles": ["a"]},
            {"name": "u3", "password": "pw-u3-secret", "tenant": "acme"}
        ],
        "api-key": [{"id": "k1", "account": "u1"}],
        "oauth-client": [{"clientId": "app", "secret": "{PLAIN}cs"}]
    }))
    .unwrap();
    let report = apply(&store, &file, &hasher).await.expect("apply");
    assert_eq!(report.created.len(), 9, "{report:?}");
    assert!(!apply(&store, &file, &hasher).await.unwrap().changed());

    // One statement finds an account by name or by address.
    assert_eq!(
        store
            .account("u1@example.org")
            .await
            .unwrap()
            .unwrap()
            .account
            .name,
        "u1"
    );
    // Pages in a stable order, filters, prefixes.
    let q = |after: Option<&str>| ListQuery {
        after: after.map(String::from),
        limit: 2,
        prefix: Some("u".into()),
    };
    let first = store
        .accounts(&AccountFilter::default(), &q(None))
        .await
        .unwrap();
    assert_eq!(first.items.len(), 2);
    let second = store
        .accounts(&AccountFilter::default(), &q(first.next.as_deref()))
        .await
        .unwrap();
    let names: Vec<_> = first
        .items
        .iter()
        .chain(&second.items)
        .map(|a| a.account.name.as_str())
        .collect();
    assert_eq!(names, ["u1", "u2", "u3"]);
    assert!(second.next.is_none());
    let acme = store
        .accounts(
            &AccountFilter {
                tenant: Some("acme".into()),
                kind: Some(AccountType::Individual),
            },
            &ListQuery {
                limit: 10,
                ..ListQuery::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(acme.items.len(), 2);
    let roles = store
        .roles(&ListQuery {
            limit: 10,
            ..ListQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(roles.items.len(), 2);
    let keys = store
        .credentials(
            CredentialType::ApiKey,
            Some("u1"),
            &ListQuery {
                limit: 10,
                ..ListQuery::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(keys.items.len(), 1);

    // Versions, and references checked at commit.
    let role = store.role("b").await.unwrap().unwrap();
    let mut tx = store.begin().await.unwrap();
    let err = tx
        .put_role(&role.value, Expect::Existing(Some(role.version + 1)))
        .await
        .unwrap_err();
    assert!(matches!(err, WriteError::Conflict { .. }), "{err}");
    drop(tx);
    let mut tx = store.begin().await.unwrap();
    tx.delete_tenant("acme", None).await.unwrap();
    let err = tx.commit().await.unwrap_err().to_string();
    assert!(err.contains("still named by account \"u1\""), "{err}");
    let client = store.oauth_client("app").await.unwrap().unwrap();
    assert_eq!(client.secret.unwrap().expose(), "{PLAIN}cs");
}
