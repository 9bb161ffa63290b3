use std::time::Duration;

use postern_directory::secret::Hasher;
use postern_internal::input::{AccountInput, Provision};
use postern_internal::model::{AccountType, CredentialScope, CredentialType, Role, ScopeMode};
use postern_internal::Store;

use super::*;
use crate::authz::{PermSet, Permission};

async fn admin() -> (tempfile::TempDir, Admin) {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("s.db").display());
    let store = Store::open(&url, 2, Duration::from_secs(5))
        .await
        .unwrap()
        .with_rules(crate::auth::store_rules());
    let hasher = Hasher::new(1);
    let file: Provision = toml::from_str(
        r#"
        [[tenant]]
        id = "acme"
        [[tenant]]
        id = "other"
        [[role]]
        id = "acme-helpdesk"
        memberTenantId = "acme"
        enabledPermissions = ["individual-get"]
        [[role]]
        id = "other-role"
        memberTenantId = "other"
        [[role]]
        id = "big"
        roleIds = ["admin"]
        [[account]]
        name = "acme-staff"
        type = "group"
        tenant = "acme"
        [[account]]
        name = "other-staff"
        type = "group"
        tenant = "other"
        [[account]]
        name = "carol"
        tenant = "acme"
        password = "carol-secret"
        [[account]]
        name = "dave"
        tenant = "other"
        [[account]]
        name = "root"
        roles = "admin"
        "#,
    )
    .unwrap();
    postern_internal::apply::apply(&store, &file, &hasher)
        .await
        .unwrap();
    (dir, Admin::new(store, hasher))
}

fn actor(tenant: Option<&str>, perms: &[&str]) -> Actor {
    let mut held = PermSet::EMPTY;
    for p in perms {
        held.insert(Permission::from_name(p).unwrap());
    }
    Actor {
        name: "tester".into(),
        tenant: tenant.map(String::from),
        held,
    }
}

fn tenant_admin() -> Actor {
    let mut a = actor(Some("acme"), &[]);
    a.held = PermSet::builtin("tenant-admin").unwrap();
    a
}

fn input(json: serde_json::Value) -> AccountInput {
    serde_json::from_value(json).unwrap()
}

#[test]
fn grants_beyond_the_held_set_are_named() {
    let a = actor(None, &["individual-get"]);
    let mut wanted = PermSet::EMPTY;
    wanted.insert(Permission::known("individual-get"));
    assert!(a.may_grant(&wanted, "x").is_ok());
    wanted.insert(Permission::known("impersonate"));
    let e = a.may_grant(&wanted, "x").unwrap_err();
    assert!(
        matches!(&e, AdminError::Forbidden(m) if m.contains("impersonate")),
        "{e}"
    );
}

#[test]
fn tenant_admins_place_objects_in_their_tenant() {
    let a = tenant_admin();
    assert_eq!(a.place(None, "tenant").unwrap().as_deref(), Some("acme"));
    assert!(a.place(Some("other".into()), "tenant").is_err());
    assert!(a.sees(Some("acme")) && !a.sees(Some("other")) && !a.sees(None));
    assert!(Actor::local().place(None, "tenant").unwrap().is_none());
}

#[tokio::test]
async fn a_tenant_admin_sees_only_their_tenant() {
    let (_d, admin) = admin().await;
    let a = tenant_admin();
    let list = admin
        .list_principals(&a, &PrincipalQuery::default())
        .await
        .unwrap();
    let names: Vec<_> = list.items.iter().map(|v| v.name.as_str()).collect();
    assert_eq!(names, ["acme-staff", "carol"]);
    assert!(matches!(
        admin.principal(&a, "dave").await,
        Err(AdminError::NotFound(_))
    ));
    assert!(matches!(
        admin.delete_principal(&a, "dave", None).await,
        Err(AdminError::NotFound(_))
    ));
    let roles = admin.list_roles(&a, &Window::default()).await.unwrap();
    assert_eq!(roles.items.len(), 1);
    assert!(admin
        .create_tenant(
            &Actor::local(),
            serde_json::from_str(r#"{"id":"x"}"#).unwrap()
        )
        .await
        .is_ok());
    assert!(matches!(
        admin.defaults(&a).await,
        Err(AdminError::Forbidden(_))
    ));
}

#[tokio::test]
async fn a_tenant_admin_creates_inside_and_cannot_grant_more() {
    let (_d, admin) = admin().await;
    let a = tenant_admin();
    let v = admin
        .create_principal(
            &a,
            input(serde_json::json!({"name": "erin", "password": "pw-erin-1"})),
        )
        .await
        .unwrap();
    assert_eq!(v.tenant.as_deref(), Some("acme"));
    // Another tenant's group is absent to them: nothing written.
    let e = admin
        .create_principal(
            &a,
            input(serde_json::json!({"name": "fred", "memberOf": ["other-staff"]})),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(&e, AdminError::Invalid(p) if p[0].contains("memberOf")),
        "{e}"
    );
    assert!(admin.store().account("fred").await.unwrap().is_none());
    // A permission they do not hold.
    let e = admin
        .create_principal(
            &a,
            input(serde_json::json!({"name": "gus", "permissions": {"mode": "merge", "enabled": ["impersonate"]}})),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(&e, AdminError::Forbidden(m) if m.contains("impersonate")),
        "{e}"
    );
    // Another tenant, asked for outright.
    assert!(matches!(
        admin
            .create_principal(
                &a,
                input(serde_json::json!({"name": "hal", "tenant": "other"}))
            )
            .await,
        Err(AdminError::Forbidden(_))
    ));
    // A role granting what they lack.
    let big: Role = serde_json::from_str(r#"{"id":"mine","roleIds":["admin"]}"#).unwrap();
    assert!(matches!(
        admin.create_role(&a, big).await,
        Err(AdminError::Forbidden(_))
    ));
    assert!(admin.store().role("mine").await.unwrap().is_none());
}

#[tokio::test]
async fn permissions_are_required_and_named() {
    let (_d, admin) = admin().await;
    let a = actor(None, &["group-list"]);
    let list = admin
        .list_principals(&a, &PrincipalQuery::default())
        .await
        .unwrap();
    assert!(list.items.iter().all(|v| v.kind == AccountType::Group));
    let e = admin
        .list_principals(
            &a,
            &PrincipalQuery {
                kind: Some(AccountType::Individual),
                ..Default::default()
            },
        )
        .await
        .unwrap_err();
    assert!(
        matches!(&e, AdminError::Forbidden(m) if m.contains("individual-list")),
        "{e}"
    );
}

#[tokio::test]
async fn keys_reach_no_further_than_the_minter() {
    let (_d, admin) = admin().await;
    // May mint keys, but holds little: a key for an account holding more is refused.
    let a = actor(None, &["api-key-create", "api-key-list", "individual-get"]);
    let e = admin
        .create_credential(
            &a,
            CredentialType::ApiKey,
            "root",
            CredentialRequest::default(),
        )
        .await
        .unwrap_err();
    assert!(matches!(e, AdminError::Forbidden(_)), "{e}");
    // Narrowed to what they hold, it is allowed; the secret comes once.
    let req = CredentialRequest {
        permissions: CredentialScope {
            mode: ScopeMode::Replace,
            permissions: vec!["individual-get".into()],
        },
        ..Default::default()
    };
    let made = admin
        .create_credential(&a, CredentialType::ApiKey, "root", req)
        .await
        .unwrap();
    assert!(made.secret.starts_with("pak_"));
    let list = admin
        .list_credentials(&a, CredentialType::ApiKey, "root", &Window::default())
        .await
        .unwrap();
    assert_eq!(list.items.len(), 1);
    assert!(!serde_json::to_string(&list).unwrap().contains(&made.secret));
}

#[tokio::test]
async fn stale_versions_and_referenced_deletes_are_refused() {
    let (_d, admin) = admin().await;
    let root = Actor::local();
    let v = admin.principal(&root, "carol").await.unwrap();
    let patch = serde_json::json!({"description": "Carol"});
    let e = admin
        .patch_principal(&root, "carol", &patch, Some(v.version + 7))
        .await
        .unwrap_err();
    assert!(matches!(e, AdminError::Stale(_)), "{e}");
    let after = admin
        .patch_principal(&root, "carol", &patch, Some(v.version))
        .await
        .unwrap();
    assert_eq!(after.description, "Carol");
    assert!(after.has_password, "a patch keeps the password");
    let e = admin.delete_tenant(&root, "acme", None).await.unwrap_err();
    assert!(
        matches!(&e, AdminError::Referenced(p) if p.iter().any(|x| x.contains("carol"))),
        "{e}"
    );
    let exp = admin.explain(&root, "root", "impersonate").await.unwrap();
    assert!(exp.granted && exp.steps.last().unwrap().contains("GRANTED"));
}

/// A principal an OIDC directory recorded carries fields only Postern writes (its groups, its
/// subject): a patch keeps them and is not refused for them.
#[tokio::test]
async fn a_patch_of_a_recorded_principal_keeps_what_postern_wrote() {
    let (_d, admin) = admin().await;
    let root = Actor::local();
    let groups = ["staff".to_string()];
    admin
        .store
        .record_external("corp", "dora", None, &[], &groups, Some("sub-1"))
        .await
        .unwrap();
    let patch = serde_json::json!({"description": "Dora"});
    let after = admin
        .patch_principal(&root, "dora", &patch, None)
        .await
        .unwrap();
    assert_eq!(after.description, "Dora");
    let stored = admin.store.account("dora").await.unwrap().unwrap();
    assert_eq!(stored.account.subject.as_deref(), Some("sub-1"));
    assert_eq!(stored.account.directory_groups, groups);
}
