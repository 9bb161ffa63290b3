//! The store's per-object API and `apply` on top of it: the same checks on both paths.

use postern_directory::secret::Hasher;

use super::*;
use crate::input::{AccountInput, Password};
use crate::model::{AccountType, Credential, Origin, Role, RoleSet, Tenant};
use crate::store::testing::store;
use crate::store::{AccountFilter, ListQuery};

fn provision(toml_json: serde_json::Value) -> Provision {
    serde_json::from_value(toml_json).unwrap()
}

fn role(id: &str, includes: &[&str]) -> Role {
    Role {
        id: id.into(),
        description: String::new(),
        role_ids: includes.iter().map(|s| s.to_string()).collect(),
        enabled_permissions: vec!["authenticate".into()],
        disabled_permissions: vec![],
        member_tenant_id: None,
    }
}

#[tokio::test]
async fn external_principal_keeps_a_stable_id_and_fresh_groups() {
    let store = store("external", 1).await;
    let groups = vec!["admins".to_string(), "staff".to_string()];
    let first = store
        .record_external(
            "corp",
            "ann",
            Some("Ann"),
            &["ann@x.org".into()],
            &groups,
            None,
        )
        .await
        .unwrap();
    assert_eq!(first.origin, Origin::Directory("corp".into()));
    assert_eq!(first.account.directory_groups, groups);

    // Removed from `admins` in the directory: the next login refreshes the stored groups.
    let second = store
        .record_external("corp", "ann", None, &[], &["staff".to_string()], None)
        .await
        .unwrap();
    assert_eq!(second.id, first.id);
    assert_eq!(second.account.directory_groups, vec!["staff".to_string()]);
    assert_eq!(second.account.description, "Ann");
    let stored = store.account("ann").await.unwrap().unwrap();
    assert_eq!(stored.account.directory_groups, vec!["staff".to_string()]);
    assert!(stored.account.emails.is_empty());
}

#[tokio::test]
async fn provisioning_cannot_set_directory_groups() {
    let err = serde_json::from_value::<Provision>(serde_json::json!({
        "account": [{"name": "bob", "directoryGroups": ["admins"]}]
    }))
    .unwrap_err();
    assert!(err.to_string().contains("directoryGroups"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_first_logins_all_get_the_same_record() {
    let store = store("race", 8).await;
    let mut tasks = Vec::new();
    for _ in 0..16 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            store
                .record_external("corp", "new", None, &[], &["staff".to_string()], None)
                .await
        }));
    }
    let mut ids = std::collections::BTreeSet::new();
    for t in tasks {
        ids.insert(t.await.unwrap().expect("no temporary failure").id);
    }
    assert_eq!(ids.len(), 1, "one stable id: {ids:?}");
}

/// Many directory users logging in for the first time at once (a mail server after a
/// migration): each is recorded, none refused as busy. With deferred transactions on SQLite a
/// writer whose read came before another's commit failed at once, busy timeout or not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn first_logins_of_many_users_at_once_all_succeed() {
    let store = store("first-logins", 8).await;
    let mut tasks = Vec::new();
    for i in 0..64 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let name = format!("user{i}");
            store
                .record_external("corp", &name, None, &[], &["staff".to_string()], None)
                .await
                .map(|a| a.account.name)
        }));
    }
    let mut names = std::collections::BTreeSet::new();
    for t in tasks {
        names.insert(t.await.unwrap().expect("no temporary failure"));
    }
    assert_eq!(names.len(), 64);
    assert_eq!(store.count_accounts().await.unwrap(), 64);
}

#[tokio::test]
async fn apply_and_a_direct_call_are_refused_by_the_same_checks() {
    let store = store("same-checks", 1).await;
    let hasher = Hasher::new(1);
    let bad = Role {
        enabled_permissions: vec!["fly-to-the-moon".into()],
        ..role("broken", &["ghost"])
    };
    let file = Provision {
        role: vec![bad.clone()],
        ..Provision::default()
    };
    let ApplyError::Invalid(from_apply) = apply(&store, &file, &hasher).await.unwrap_err() else {
        panic!("invalid expected")
    };
    let mut tx = store.begin().await.unwrap();
    let direct = tx.put_role(&bad, Expect::New).await.unwrap_err();
    let WriteError::Invalid(at_once) = direct else {
        panic!("invalid expected")
    };
    assert_eq!(
        at_once,
        vec!["role \"broken\": unknown permission \"fly-to-the-moon\""]
    );
    let WriteError::Invalid(at_commit) = tx.commit().await.unwrap_err() else {
        panic!("invalid expected")
    };
    assert_eq!(from_apply, at_commit);
    // A dangling reference alone is found at commit, on both paths.
    let file = Provision {
        role: vec![role("dangling", &["ghost"])],
        ..Provision::default()
    };
    let err = apply(&store, &file, &hasher).await.unwrap_err();
    assert!(
        err.to_string()
            .contains("role \"dangling\": role \"ghost\" does not exist"),
        "{err}"
    );
    let mut tx = store.begin().await.unwrap();
    tx.put_role(&role("dangling", &["ghost"]), Expect::New)
        .await
        .unwrap();
    let err = tx.commit().await.unwrap_err();
    assert!(
        err.to_string().contains("role \"ghost\" does not exist"),
        "{err}"
    );
    assert!(store.role("dangling").await.unwrap().is_none());
    assert_eq!(store.generation().await.unwrap(), 0, "nothing written");
}

#[tokio::test]
async fn objects_written_together_may_name_each_other_in_any_order() {
    let store = store("cycles", 1).await;
    let hasher = Hasher::new(1);
    let file = provision(serde_json::json!({
        "role": [{"id": "a", "roleIds": ["b"]}, {"id": "b", "roleIds": ["a"]}],
        "account": [
            {"name": "alice", "password": "pw-alice-1", "memberOf": ["staff"], "roles": ["a"]},
            {"name": "staff", "type": "group"}
        ],
        "api-key": [{"id": "k1", "account": "alice"}]
    }));
    let report = apply(&store, &file, &hasher).await.unwrap();
    assert_eq!(report.created.len(), 5, "{report:?}");
    assert_eq!(report.new_secrets.len(), 1);
    assert_eq!(store.generation().await.unwrap(), 1);
    // Twice: nothing changes, the generation stays.
    let again = apply(&store, &file, &hasher).await.unwrap();
    assert!(!again.changed(), "{again:?}");
    assert_eq!(again.unchanged, 5);
    assert_eq!(store.generation().await.unwrap(), 1);
}

#[tokio::test]
async fn updates_name_the_version_they_read() {
    let store = store("versions", 1).await;
    let mut tx = store.begin().await.unwrap();
    assert_eq!(
        tx.put_role(&role("r", &[]), Expect::New).await.unwrap(),
        Change::Created
    );
    tx.commit().await.unwrap();
    let v1 = store.role("r").await.unwrap().unwrap();
    assert_eq!(v1.version, 1);

    let mut changed = v1.value.clone();
    changed.description = "first".into();
    let mut tx = store.begin().await.unwrap();
    tx.put_role(&changed, Expect::Existing(Some(1)))
        .await
        .unwrap();
    tx.commit().await.unwrap();
    assert_eq!(store.role("r").await.unwrap().unwrap().version, 2);

    // A writer that read version 1 is told, and changes nothing.
    changed.description = "stale".into();
    let mut tx = store.begin().await.unwrap();
    let err = tx
        .put_role(&changed, Expect::Existing(Some(1)))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            WriteError::Conflict {
                current: 2,
                expected: 1,
                ..
            }
        ),
        "{err}"
    );
    drop(tx);
    let mut tx = store.begin().await.unwrap();
    assert!(matches!(
        tx.put_role(&changed, Expect::New).await.unwrap_err(),
        WriteError::Exists(_)
    ));
    assert!(matches!(
        tx.put_role(&role("nope", &[]), Expect::Existing(None))
            .await
            .unwrap_err(),
        WriteError::NotFound(_)
    ));
    drop(tx);
    assert_eq!(
        store.role("r").await.unwrap().unwrap().value.description,
        "first"
    );
}

#[tokio::test]
async fn deleting_what_is_still_named_is_refused() {
    let store = store("delete", 1).await;
    let hasher = Hasher::new(1);
    let file = provision(serde_json::json!({
        "tenant": [{"id": "acme"}],
        "role": [{"id": "helpdesk"}],
        "account": [
            {"name": "staff", "type": "group"},
            {"name": "bob", "password": "pw-bob-1", "tenant": "acme", "memberOf": ["staff"],
             "roles": ["helpdesk"]}
        ],
        "app-password": [{"id": "phone", "account": "bob"}]
    }));
    apply(&store, &file, &hasher).await.unwrap();
    for (kind, id) in [("role", "helpdesk"), ("tenant", "acme"), ("group", "staff")] {
        let mut tx = store.begin().await.unwrap();
        match kind {
            "role" => tx.delete_role(id, None).await.unwrap(),
            "tenant" => tx.delete_tenant(id, None).await.unwrap(),
            _ => tx.delete_account(id, None).await.unwrap(),
        }
        let err = tx.commit().await.unwrap_err().to_string();
        assert!(
            err.contains(&format!("{kind} {id:?}: still named by account \"bob\"")),
            "{err}"
        );
    }
    // Deleting bob takes his app password with him; then the rest may go.
    let mut tx = store.begin().await.unwrap();
    tx.delete_account("bob", None).await.unwrap();
    tx.delete_account("staff", None).await.unwrap();
    tx.delete_role("helpdesk", None).await.unwrap();
    tx.delete_tenant("acme", None).await.unwrap();
    tx.commit().await.unwrap();
    assert!(store.account("bob").await.unwrap().is_none());
    assert!(store
        .credential(CredentialType::AppPassword, "phone")
        .await
        .unwrap()
        .is_none());
    let mut tx = store.begin().await.unwrap();
    assert!(matches!(
        tx.delete_role("user", None).await.unwrap_err(),
        WriteError::Invalid(_)
    ));
}

#[tokio::test]
async fn lists_are_paged_in_a_stable_order() {
    let store = store("lists", 1).await;
    let hasher = Hasher::new(1);
    let mut tx = store.begin().await.unwrap();
    for i in 0..7 {
        let input = AccountInput {
            name: format!("user{i}"),
            password: Some(Password::new(format!("pw-{i}-secret"))),
            tenant: (i % 2 == 0).then(|| "even".to_string()),
            ..AccountInput::default()
        };
        tx.put_account(&input, &hasher, Expect::New).await.unwrap();
    }
    tx.put_tenant(
        &Tenant {
            id: "even".into(),
            description: String::new(),
            roles: RoleSet::Default,
            permissions: Default::default(),
        },
        Expect::New,
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    let mut q = ListQuery {
        limit: 3,
        ..ListQuery::default()
    };
    let mut names = Vec::new();
    loop {
        let page = store.accounts(&AccountFilter::default(), &q).await.unwrap();
        assert!(page.items.len() <= 3);
        names.extend(page.items.iter().map(|a| a.account.name.clone()));
        match page.next {
            Some(next) => q.after = Some(next),
            None => break,
        }
    }
    assert_eq!(
        names,
        (0..7).map(|i| format!("user{i}")).collect::<Vec<_>>()
    );
    let even = store
        .accounts(
            &AccountFilter {
                tenant: Some("even".into()),
                kind: Some(AccountType::Individual),
            },
            &ListQuery {
                limit: 100,
                ..ListQuery::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(even.items.len(), 4);
    let none = store
        .accounts(
            &AccountFilter::default(),
            &ListQuery {
                limit: 100,
                prefix: Some("nobody".into()),
                ..ListQuery::default()
            },
        )
        .await
        .unwrap();
    assert!(none.items.is_empty() && none.next.is_none());
}

#[tokio::test]
async fn an_oauth_client_secret_stays_out_of_every_body() {
    let store = store("oauth", 1).await;
    let hasher = Hasher::new(1);
    let file = provision(serde_json::json!({
        "oauth-client": [{"clientId": "app", "secret": "{PLAIN}client-secret",
                          "redirectUris": ["https://app.example/cb"]}]
    }));
    apply(&store, &file, &hasher).await.unwrap();
    let stored = store.oauth_client("app").await.unwrap().unwrap();
    assert_eq!(
        stored.secret.as_ref().unwrap().expose(),
        "{PLAIN}client-secret"
    );
    assert!(!format!("{stored:?}").contains("client-secret"));
    let shown = serde_json::to_string(&crate::view::OAuthClientView::from(&stored)).unwrap();
    assert!(!shown.contains("client-secret") && shown.contains("\"confidential\":true"));
    // A new secret alone is a change.
    let file = provision(serde_json::json!({
        "oauth-client": [{"clientId": "app", "secret": "{PLAIN}rotated",
                          "redirectUris": ["https://app.example/cb"]}]
    }));
    let r = apply(&store, &file, &hasher).await.unwrap();
    assert_eq!(r.updated, vec!["oauth-client app".to_string()]);
}

#[tokio::test]
async fn an_email_belongs_to_one_account() {
    let store = store("emails", 1).await;
    let hasher = Hasher::new(1);
    apply(
        &store,
        &provision(serde_json::json!({
            "account": [{"name": "alice", "emails": ["a@x.org"]}]
        })),
        &hasher,
    )
    .await
    .unwrap();
    let err = apply(
        &store,
        &provision(serde_json::json!({
            "account": [{"name": "bob", "emails": ["A@x.org"]}]
        })),
        &hasher,
    )
    .await
    .unwrap_err();
    assert!(
        err.to_string()
            .contains("email \"a@x.org\" belongs to account \"alice\""),
        "{err}"
    );
    // Swapped in one file: fine.
    apply(
        &store,
        &provision(serde_json::json!({
            "account": [{"name": "alice", "emails": []}, {"name": "bob", "emails": ["a@x.org"]}]
        })),
        &hasher,
    )
    .await
    .unwrap();
    assert_eq!(
        store
            .account("a@x.org")
            .await
            .unwrap()
            .unwrap()
            .account
            .name,
        "bob"
    );
}

#[tokio::test]
async fn credentials_keep_their_owner() {
    let store = store("owners", 1).await;
    let hasher = Hasher::new(1);
    let file = provision(serde_json::json!({
        "account": [{"name": "alice"}, {"name": "bob"}, {"name": "g", "type": "group"}],
        "api-key": [{"id": "k", "account": "alice"}, {"id": "kg", "account": "g"}]
    }));
    let err = apply(&store, &file, &hasher).await.unwrap_err().to_string();
    assert!(
        err.contains("api-key \"kg\": account \"g\" is a group"),
        "{err}"
    );
    let file = provision(serde_json::json!({
        "account": [{"name": "alice"}, {"name": "bob"}],
        "api-key": [{"id": "k", "account": "alice"}]
    }));
    apply(&store, &file, &hasher).await.unwrap();
    let moved = Credential {
        account: "bob".into(),
        ..store
            .credential(CredentialType::ApiKey, "k")
            .await
            .unwrap()
            .unwrap()
            .value
    };
    let mut tx = store.begin().await.unwrap();
    let err = tx
        .put_credential(CredentialType::ApiKey, &moved, Expect::Existing(None))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("cannot change owner"), "{err}");
}

#[tokio::test]
async fn a_name_is_never_another_accounts_email() {
    let store = store("identities", 1).await;
    let hasher = Hasher::new(1);
    let file = |v: serde_json::Value| provision(serde_json::json!({ "account": v }));
    apply(
        &store,
        &file(serde_json::json!([{"name": "alice", "emails": ["alice@example.org"]}])),
        &hasher,
    )
    .await
    .unwrap();
    // Named like alice's address: alice could no longer log in by email.
    let err = apply(
        &store,
        &file(serde_json::json!([{"name": "Alice@example.org"}])),
        &hasher,
    )
    .await
    .unwrap_err()
    .to_string();
    assert!(err.contains("is an email of account \"alice\""), "{err}");
    // Listing alice's name as an address.
    let err = apply(
        &store,
        &file(serde_json::json!([{"name": "bob", "emails": ["ALICE"]}])),
        &hasher,
    )
    .await
    .unwrap_err()
    .to_string();
    assert!(err.contains("is the name of account \"alice\""), "{err}");
    assert!(store.account("bob").await.unwrap().is_none());
    // An account's own name among its emails is fine.
    apply(
        &store,
        &file(serde_json::json!([{"name": "carol@example.org", "emails": ["carol@example.org"]}])),
        &hasher,
    )
    .await
    .unwrap();
}
