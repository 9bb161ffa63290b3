//! Every rule of SPEC §4 with hand-computed expectations, then properties over random policies.

use postern_internal::model::{
    Account, AuthDefaults, CredentialScope, Mode, Permissions, Role, RoleSet, ScopeMode, Tenant,
};
use postern_internal::Snapshot;
use proptest::prelude::*;

use super::engine::{AuthzError, Policy, Scope, Spec, Subject};
use super::permissions::{PermSet, Permission};

fn set(names: &[&str]) -> PermSet {
    PermSet::from_names(names).unwrap()
}

fn role(id: &str, role_ids: &[&str], enabled: &[&str], disabled: &[&str]) -> Role {
    Role {
        id: id.into(),
        description: String::new(),
        role_ids: role_ids.iter().map(|s| s.to_string()).collect(),
        enabled_permissions: enabled.iter().map(|s| s.to_string()).collect(),
        disabled_permissions: disabled.iter().map(|s| s.to_string()).collect(),
        member_tenant_id: None,
    }
}

fn perms(mode: Mode, enabled: &[&str], disabled: &[&str]) -> Permissions {
    Permissions {
        mode,
        enabled: enabled.iter().map(|s| s.to_string()).collect(),
        disabled: disabled.iter().map(|s| s.to_string()).collect(),
    }
}

fn group(name: &str, member_of: &[&str], roles: RoleSet, p: Permissions) -> Account {
    serde_json::from_value(serde_json::json!({"name": name, "type": "group"}))
        .map(|mut a: Account| {
            a.member_of = member_of.iter().map(|s| s.to_string()).collect();
            a.roles = Some(roles);
            a.permissions = p;
            a
        })
        .unwrap()
}

fn subject(roles: RoleSet, p: Permissions, member_of: &[&str], tenant: Option<&str>) -> Subject {
    Subject {
        roles,
        spec: Spec::compile(&p).unwrap(),
        member_of: member_of.iter().map(|s| s.to_string()).collect(),
        tenant: tenant.map(str::to_string),
    }
}

fn list(ids: &[&str]) -> RoleSet {
    RoleSet::List(ids.iter().map(|s| s.to_string()).collect())
}

/// r1 → r2 → r1 (a cycle); helpdesk; a group cycle staff ↔ all; a replace-mode group; tenant acme.
fn fixture() -> Policy {
    let snapshot = Snapshot {
        generation: 1,
        defaults: AuthDefaults {
            default_group_role_ids: vec!["grp".into()],
            ..AuthDefaults::default()
        },
        roles: vec![
            role("r1", &["r2"], &["authenticate", "email-send"], &[]),
            role("r2", &["r1"], &["imap-authenticate"], &["email-send"]),
            role(
                "helpdesk",
                &["user"],
                &["individual-list"],
                &["impersonate"],
            ),
            role("grp", &[], &["sieve-authenticate"], &[]),
        ],
        tenants: vec![Tenant {
            id: "acme".into(),
            description: String::new(),
            roles: list(&["r1"]),
            permissions: perms(Mode::Merge, &["individual-list"], &["imap-authenticate"]),
        }],
        groups: vec![
            group(
                "staff",
                &["all"],
                list(&["helpdesk"]),
                Permissions::default(),
            ),
            group(
                "all",
                &["staff"],
                RoleSet::Default,
                perms(Mode::Merge, &["pop3-authenticate"], &[]),
            ),
            group(
                "locked",
                &[],
                list(&["admin"]),
                perms(Mode::Replace, &["email-receive"], &["authenticate"]),
            ),
        ],
    };
    Policy::compile(&snapshot).unwrap()
}

#[test]
fn rule1_keywords_resolve_to_defaults() {
    let p = fixture();
    let user = p
        .evaluate(&subject(RoleSet::User, Permissions::default(), &[], None))
        .unwrap();
    assert_eq!(user.effective, PermSet::builtin("user").unwrap());
    assert_eq!(user.roles.iter().collect::<Vec<_>>(), ["user"]);
    let admin = p
        .evaluate(&subject(RoleSet::Admin, Permissions::default(), &[], None))
        .unwrap();
    assert_eq!(admin.effective.len(), 265);
    // "admin" with a tenant means defaultTenantRoleIds (tenant-admin), under acme's ceiling
    // (acme: r1, r2 + individual-list, minus imap-authenticate).
    let tadmin = p
        .evaluate(&subject(
            RoleSet::Admin,
            Permissions::default(),
            &[],
            Some("acme"),
        ))
        .unwrap();
    assert_eq!(tadmin.roles.iter().collect::<Vec<_>>(), ["tenant-admin"]);
    assert_eq!(tadmin.effective, set(&["authenticate", "individual-list"]));
}

#[test]
fn rule2_role_closure_with_cycle() {
    let p = fixture();
    let g = p
        .evaluate(&subject(list(&["r1"]), Permissions::default(), &[], None))
        .unwrap();
    // E = {authenticate, email-send, imap-authenticate}, D = {email-send}.
    assert_eq!(g.effective, set(&["authenticate", "imap-authenticate"]));
    assert_eq!(g.roles.iter().collect::<Vec<_>>(), ["r1", "r2"]);
}

#[test]
fn rule3_groups_nested_with_cycle_and_modes() {
    let p = fixture();
    let g = p
        .evaluate(&subject(
            list(&[]),
            Permissions::default(),
            &["staff"],
            None,
        ))
        .unwrap();
    assert_eq!(g.groups.iter().collect::<Vec<_>>(), ["all", "staff"]);
    // staff (inherit): helpdesk → user, minus impersonate; all (merge, roles "default" → grp):
    // sieve-authenticate + pop3-authenticate.
    let expected = PermSet::builtin("user")
        .unwrap()
        .union(&set(&["individual-list"]));
    assert_eq!(g.effective, expected);
    assert_eq!(
        g.roles.iter().collect::<Vec<_>>(),
        ["grp", "helpdesk", "user"]
    );
}

#[test]
fn rule3_replace_group_gives_only_its_own_lists() {
    let p = fixture();
    let g = p
        .evaluate(&subject(
            list(&["r1"]),
            Permissions::default(),
            &["locked"],
            None,
        ))
        .unwrap();
    // r1/r2: authenticate, imap-authenticate (email-send disabled); locked: +email-receive,
    // disables authenticate; its role "admin" is ignored.
    assert_eq!(g.effective, set(&["imap-authenticate", "email-receive"]));
    assert!(!g.roles.contains("admin"));
}

#[test]
fn rule3_account_modes() {
    let p = fixture();
    let merge = p
        .evaluate(&subject(
            list(&["r1"]),
            perms(Mode::Merge, &["email-receive"], &["authenticate"]),
            &[],
            None,
        ))
        .unwrap();
    assert_eq!(
        merge.effective,
        set(&["imap-authenticate", "email-receive"])
    );
    let replace = p
        .evaluate(&subject(
            RoleSet::Admin,
            perms(Mode::Replace, &["authenticate"], &[]),
            &["staff"],
            None,
        ))
        .unwrap();
    assert_eq!(replace.effective, set(&["authenticate"]));
    assert!(replace.roles.is_empty());
    // G is still reported: membership is a fact, only its permissions are ignored.
    assert_eq!(replace.groups.len(), 2);
}

#[test]
fn rule4_tenant_is_a_ceiling() {
    let p = fixture();
    let g = p
        .evaluate(&subject(
            RoleSet::User,
            Permissions::default(),
            &[],
            Some("acme"),
        ))
        .unwrap();
    // user ∩ {authenticate, email-send, imap-authenticate, individual-list}, minus
    // {email-send (r2), imap-authenticate (tenant)}.
    assert_eq!(g.effective, set(&["authenticate"]));
}

#[test]
fn rule5_disabled_anywhere_wins() {
    let p = fixture();
    let g = p
        .evaluate(&subject(
            list(&["admin", "helpdesk"]),
            Permissions::default(),
            &[],
            None,
        ))
        .unwrap();
    assert!(!g.effective.contains(Permission::known("impersonate")));
    assert_eq!(g.effective.len(), 264);
}

#[test]
fn rule6_credential_scopes() {
    let eff = set(&["authenticate", "email-send", "imap-authenticate"]);
    let scope = |mode, names: &[&str]| {
        Scope::compile(&CredentialScope {
            mode,
            permissions: names.iter().map(|s| s.to_string()).collect(),
        })
        .unwrap()
    };
    assert_eq!(scope(ScopeMode::Inherit, &[]).apply(&eff), eff);
    assert_eq!(
        scope(ScopeMode::Disable, &["email-send"]).apply(&eff),
        set(&["authenticate", "imap-authenticate"])
    );
    assert_eq!(
        scope(ScopeMode::Replace, &["authenticate", "impersonate"]).apply(&eff),
        set(&["authenticate"])
    );
}

#[test]
fn dangling_references_fail_closed() {
    let p = fixture();
    assert_eq!(
        p.evaluate(&subject(
            list(&["ghost"]),
            Permissions::default(),
            &[],
            None
        )),
        Err(AuthzError::MissingRole("ghost".into()))
    );
    assert_eq!(
        p.evaluate(&subject(
            RoleSet::User,
            Permissions::default(),
            &[],
            Some("nowhere")
        )),
        Err(AuthzError::MissingTenant("nowhere".into()))
    );
    // An external directory's group unknown here is a group without roles.
    let g = p
        .evaluate(&subject(
            RoleSet::User,
            Permissions::default(),
            &["ldap-only"],
            None,
        ))
        .unwrap();
    assert!(g.groups.contains("ldap-only"));
}

#[test]
fn unknown_permissions_are_refused_when_compiling() {
    let snapshot = Snapshot {
        roles: vec![role("x", &[], &["fly"], &[])],
        ..Snapshot::default()
    };
    let errors = Policy::compile(&snapshot).unwrap_err();
    assert!(errors[0].contains("fly"), "{errors:?}");
}

#[test]
fn explain_names_the_chain() {
    let p = fixture();
    let s = subject(list(&["r1"]), Permissions::default(), &[], None);
    let lines = p.explain(&s, Permission::known("email-send")).unwrap();
    let text = lines.join("\n");
    assert!(text.contains("role r1"), "{text}");
    assert!(
        text.contains("role r2 ← r1 (from account) disables email-send"),
        "{text}"
    );
    assert!(text.ends_with("email-send is DENIED"), "{text}");
}

// ---- properties over random policies ----

const POOL: [&str; 6] = [
    "authenticate",
    "email-send",
    "email-receive",
    "imap-authenticate",
    "impersonate",
    "individual-list",
];

fn names() -> impl Strategy<Value = Vec<String>> {
    proptest::sample::subsequence(POOL.to_vec(), 0..=POOL.len())
        .prop_map(|v| v.into_iter().map(String::from).collect())
}

fn mode() -> impl Strategy<Value = Mode> {
    prop_oneof![Just(Mode::Inherit), Just(Mode::Merge), Just(Mode::Replace)]
}

fn ids(prefix: &'static str, n: usize) -> impl Strategy<Value = Vec<String>> {
    proptest::collection::vec(0..n, 0..3)
        .prop_map(move |v| v.into_iter().map(|i| format!("{prefix}{i}")).collect())
}

#[derive(Debug, Clone)]
struct World {
    snapshot: Snapshot,
    subject: Subject,
}

fn world() -> impl Strategy<Value = World> {
    let roles = proptest::collection::vec((ids("r", 5), names(), names()), 5);
    let groups = proptest::collection::vec((ids("g", 4), ids("r", 5), mode(), names(), names()), 4);
    let tenant = (ids("r", 5), mode(), names(), names());
    let account = (
        ids("r", 5),
        mode(),
        names(),
        names(),
        ids("g", 5),
        any::<bool>(),
    );
    (roles, groups, tenant, account).prop_map(|(roles, groups, tenant, account)| {
        let roles = roles
            .into_iter()
            .enumerate()
            .map(|(i, (role_ids, e, d))| Role {
                id: format!("r{i}"),
                description: String::new(),
                role_ids,
                enabled_permissions: e,
                disabled_permissions: d,
                member_tenant_id: None,
            })
            .collect();
        let groups = groups
            .into_iter()
            .enumerate()
            .map(|(i, (member_of, r, m, e, d))| {
                let mut g = group(
                    &format!("g{i}"),
                    &[],
                    RoleSet::List(r),
                    Permissions {
                        mode: m,
                        enabled: e,
                        disabled: d,
                    },
                );
                g.member_of = member_of;
                g
            })
            .collect();
        let (troles, tmode, te, td) = tenant;
        let (aroles, amode, ae, ad, member_of, has_tenant) = account;
        World {
            snapshot: Snapshot {
                generation: 0,
                defaults: AuthDefaults::default(),
                roles,
                groups,
                tenants: vec![Tenant {
                    id: "t".into(),
                    description: String::new(),
                    roles: RoleSet::List(troles),
                    permissions: Permissions {
                        mode: tmode,
                        enabled: te,
                        disabled: td,
                    },
                }],
            },
            subject: Subject {
                roles: RoleSet::List(aroles),
                spec: Spec::compile(&Permissions {
                    mode: amode,
                    enabled: ae,
                    disabled: ad,
                })
                .unwrap(),
                member_of,
                tenant: has_tenant.then(|| "t".to_string()),
            },
        }
    })
}

proptest! {
    #[test]
    fn disabled_at_any_level_is_never_effective(w in world()) {
        let p = Policy::compile(&w.snapshot).unwrap();
        let g = p.evaluate(&w.subject).unwrap();
        let mut disabled = PermSet::EMPTY;
        if w.subject.spec.mode != Mode::Inherit {
            disabled = disabled.union(&w.subject.spec.own.disabled);
        }
        if w.subject.spec.mode != Mode::Replace {
            let (rc, _) = p.role_closure(p.resolve(&w.subject.roles, super::engine::RoleContext::Account { has_tenant: false })).unwrap();
            disabled = disabled.union(&rc.disabled);
        }
        if let Some(t) = &w.subject.tenant {
            disabled = disabled.union(&p.tenant_pair(t).unwrap().disabled);
        }
        prop_assert!(g.effective.intersect(&disabled).is_empty());
    }

    #[test]
    fn replace_ignores_roles_and_groups(w in world(), other_roles in ids("r", 5), other_groups in ids("g", 4)) {
        let p = Policy::compile(&w.snapshot).unwrap();
        let mut s = w.subject.clone();
        s.spec.mode = Mode::Replace;
        let a = p.evaluate(&s).unwrap();
        s.roles = RoleSet::List(other_roles);
        s.member_of = other_groups;
        let b = p.evaluate(&s).unwrap();
        prop_assert_eq!(a.effective, b.effective);
        prop_assert!(a.roles.is_empty());
        let own = w.subject.spec.own.enabled.minus(&w.subject.spec.own.disabled);
        prop_assert!(a.effective.is_subset(&own));
    }

    #[test]
    fn tenant_ceiling_never_adds(w in world()) {
        let p = Policy::compile(&w.snapshot).unwrap();
        let mut s = w.subject.clone();
        s.tenant = Some("t".into());
        let with = p.evaluate(&s).unwrap();
        s.tenant = None;
        let without = p.evaluate(&s).unwrap();
        prop_assert!(with.effective.is_subset(&without.effective));
    }

    #[test]
    fn scope_never_exceeds_account(w in world(), m in prop_oneof![Just(ScopeMode::Inherit), Just(ScopeMode::Disable), Just(ScopeMode::Replace)], l in names()) {
        let p = Policy::compile(&w.snapshot).unwrap();
        let eff = p.evaluate(&w.subject).unwrap().effective;
        let scope = Scope::compile(&CredentialScope { mode: m, permissions: l }).unwrap();
        prop_assert!(scope.apply(&eff).is_subset(&eff));
    }

    #[test]
    fn matches_a_naive_string_set_reference(w in world()) {
        let p = Policy::compile(&w.snapshot).unwrap();
        let got: Vec<&str> = p.evaluate(&w.subject).unwrap().effective.sorted_names();
        prop_assert_eq!(got, reference::effective(&w.snapshot, &w.subject));
    }
}

/// The specification transcribed literally with sets of strings and recursion, to check the
/// bitset engine against (only for lists of explicit role ids, as the generator makes).
mod reference {
    use std::collections::BTreeSet;

    use super::*;

    type S = BTreeSet<String>;

    fn rc(snap: &Snapshot, ids: &[String], seen: &mut BTreeSet<String>, e: &mut S, d: &mut S) {
        for id in ids {
            if !seen.insert(id.clone()) {
                continue;
            }
            if let Some(r) = snap.roles.iter().find(|r| &r.id == id) {
                e.extend(r.enabled_permissions.iter().cloned());
                d.extend(r.disabled_permissions.iter().cloned());
                rc(snap, &r.role_ids, seen, e, d);
            }
        }
    }

    fn pair(snap: &Snapshot, roles: &RoleSet, p: &Permissions) -> (S, S) {
        let (mut e, mut d) = (S::new(), S::new());
        if p.mode != Mode::Replace {
            rc(snap, roles.explicit(), &mut BTreeSet::new(), &mut e, &mut d);
        }
        if p.mode != Mode::Inherit {
            e.extend(p.enabled.iter().cloned());
            d.extend(p.disabled.iter().cloned());
        }
        (e, d)
    }

    fn groups(snap: &Snapshot, names: &[String], seen: &mut BTreeSet<String>) {
        for n in names {
            if seen.insert(n.clone()) {
                if let Some(g) = snap.groups.iter().find(|g| &g.name == n) {
                    groups(snap, &g.member_of, seen);
                }
            }
        }
    }

    pub fn effective(snap: &Snapshot, s: &Subject) -> Vec<&'static str> {
        let own = Permissions {
            mode: s.spec.mode,
            enabled: s
                .spec
                .own
                .enabled
                .names()
                .iter()
                .map(|n| n.to_string())
                .collect(),
            disabled: s
                .spec
                .own
                .disabled
                .names()
                .iter()
                .map(|n| n.to_string())
                .collect(),
        };
        let (mut e, mut d) = (S::new(), S::new());
        if own.mode != Mode::Replace {
            rc(
                snap,
                s.roles.explicit(),
                &mut BTreeSet::new(),
                &mut e,
                &mut d,
            );
            let mut g = BTreeSet::new();
            groups(snap, &s.member_of, &mut g);
            for name in g {
                if let Some(group) = snap.groups.iter().find(|x| x.name == name) {
                    let (ge, gd) = pair(
                        snap,
                        group.roles.as_ref().unwrap_or(&RoleSet::Default),
                        &group.permissions,
                    );
                    e.extend(ge);
                    d.extend(gd);
                }
            }
        }
        if own.mode != Mode::Inherit {
            e.extend(own.enabled.iter().cloned());
            d.extend(own.disabled.iter().cloned());
        }
        if let Some(t) = &s.tenant {
            let tenant = snap.tenants.iter().find(|x| &x.id == t).unwrap();
            let (te, td) = pair(snap, &tenant.roles, &tenant.permissions);
            e = e.intersection(&te).cloned().collect();
            d.extend(td);
        }
        let mut out: Vec<&'static str> = e
            .difference(&d)
            .map(|n| Permission::from_name(n).unwrap().name())
            .collect();
        out.sort_unstable();
        out
    }
}
