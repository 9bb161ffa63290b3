//! Effective permissions, exactly as SPEC §4 defines them.
//!
//! A [`Policy`] is compiled from the store's snapshot (roles, tenants, groups, defaults) with
//! every permission list turned into a bitset once; evaluating an account is then a walk over
//! role and group ids with word-wide set operations.

use std::collections::{BTreeSet, HashMap, VecDeque};

use postern_internal::model::{
    Account, AuthDefaults, CredentialScope, Mode, Permissions, Role, RoleSet, ScopeMode,
};
use postern_internal::Snapshot;

use super::permissions::PermSet;

/// An (enabled, disabled) pair: E and D of the specification.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Pair {
    pub enabled: PermSet,
    pub disabled: PermSet,
}

impl Pair {
    pub fn union(self, other: &Pair) -> Pair {
        Pair {
            enabled: self.enabled.union(&other.enabled),
            disabled: self.disabled.union(&other.disabled),
        }
    }
}

/// An object's own `permissions`, compiled.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Spec {
    pub mode: Mode,
    pub own: Pair,
}

impl Spec {
    pub fn compile(p: &Permissions) -> Result<Spec, Vec<String>> {
        let enabled = PermSet::from_names(&p.enabled);
        let disabled = PermSet::from_names(&p.disabled);
        match (enabled, disabled) {
            (Ok(enabled), Ok(disabled)) => Ok(Spec {
                mode: p.mode,
                own: Pair { enabled, disabled },
            }),
            (e, d) => Err(e.err().into_iter().chain(d.err()).flatten().collect()),
        }
    }
}

#[derive(Debug, Clone)]
pub(super) struct CRole {
    pub role_ids: Vec<String>,
    pub own: Pair,
}

#[derive(Debug, Clone)]
pub(super) struct CGroup {
    pub member_of: Vec<String>,
    pub roles: RoleSet,
    pub spec: Spec,
}

#[derive(Debug, Clone)]
pub(super) struct CTenant {
    pub roles: RoleSet,
    pub spec: Spec,
}

/// Ids reached by a walk, each with the id that led to it (`None` for a starting point).
pub type Chain = Vec<(String, Option<String>)>;

/// Where a `roles` value is resolved: the keywords mean different defaults in each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RoleContext {
    Account { has_tenant: bool },
    Group,
    Tenant,
}

/// The principal being evaluated: an account's own fields, with `member_of` already holding
/// every group name a directory reported.
#[derive(Debug, Clone)]
pub struct Subject {
    pub roles: RoleSet,
    pub spec: Spec,
    pub member_of: Vec<String>,
    pub tenant: Option<String>,
}

impl Subject {
    pub fn from_account(a: &Account, extra_groups: &[String]) -> Result<Subject, AuthzError> {
        let spec =
            Spec::compile(&a.permissions).map_err(|names| AuthzError::UnknownPermission {
                object: format!("account {:?}", a.name),
                names,
            })?;
        let mut member_of = a.member_of.clone();
        member_of.extend(a.directory_groups.iter().cloned());
        member_of.extend(extra_groups.iter().cloned());
        Ok(Subject {
            roles: a.effective_roles(),
            spec,
            member_of,
            tenant: a.tenant.clone(),
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthzError {
    /// A dangling reference met at login: fail closed, and name the object.
    #[error("role {0:?} does not exist")]
    MissingRole(String),
    #[error("tenant {0:?} does not exist")]
    MissingTenant(String),
    #[error("{object}: unknown permissions {names:?}")]
    UnknownPermission { object: String, names: Vec<String> },
}

/// The result for one principal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    pub effective: PermSet,
    /// Role ids whose permissions counted (none under `replace`).
    pub roles: BTreeSet<String>,
    /// The group closure G.
    pub groups: BTreeSet<String>,
}

#[derive(Debug, Clone, Default)]
pub struct Policy {
    pub generation: i64,
    pub(super) defaults: AuthDefaults,
    pub(super) roles: HashMap<String, CRole>,
    pub(super) groups: HashMap<String, CGroup>,
    pub(super) tenants: HashMap<String, CTenant>,
}

impl Policy {
    /// Compiles a snapshot; the error lists every object with unknown permission names.
    pub fn compile(s: &Snapshot) -> Result<Policy, Vec<String>> {
        let mut errors = Vec::new();
        let roles = compile_roles(&s.roles, &mut errors);
        let mut groups = HashMap::new();
        for g in &s.groups {
            match Spec::compile(&g.permissions) {
                Ok(spec) => {
                    groups.insert(
                        g.name.clone(),
                        CGroup {
                            member_of: g.member_of.clone(),
                            roles: g.effective_roles(),
                            spec,
                        },
                    );
                }
                Err(names) => {
                    errors.push(format!("group {:?}: unknown permissions {names:?}", g.name))
                }
            }
        }
        let mut tenants = HashMap::new();
        for t in &s.tenants {
            match Spec::compile(&t.permissions) {
                Ok(spec) => {
                    tenants.insert(
                        t.id.clone(),
                        CTenant {
                            roles: t.roles.clone(),
                            spec,
                        },
                    );
                }
                Err(names) => {
                    errors.push(format!("tenant {:?}: unknown permissions {names:?}", t.id))
                }
            }
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        Ok(Policy {
            generation: s.generation,
            defaults: s.defaults.clone(),
            roles,
            groups,
            tenants,
        })
    }

    /// Rule 1: the role ids a `roles` value stands for.
    pub fn resolve<'a>(&'a self, roles: &'a RoleSet, ctx: RoleContext) -> &'a [String] {
        let d = &self.defaults;
        match (roles, ctx) {
            (RoleSet::List(ids), _) => ids,
            (RoleSet::Admin, RoleContext::Account { has_tenant: true }) => {
                &d.default_tenant_role_ids
            }
            (RoleSet::Admin, _) => &d.default_admin_role_ids,
            (RoleSet::Default, RoleContext::Group) => &d.default_group_role_ids,
            (RoleSet::Default, RoleContext::Tenant) => &d.default_tenant_role_ids,
            (RoleSet::User, _) | (RoleSet::Default, RoleContext::Account { .. }) => {
                &d.default_user_role_ids
            }
        }
    }

    /// Rule 2: RC(ids). Follows `roleIds` breadth-first, each role once (cycles end there).
    /// Returns the pair and the roles reached, each with the role that led to it.
    pub fn role_closure(&self, ids: &[String]) -> Result<(Pair, Chain), AuthzError> {
        let mut pair = Pair::default();
        let mut reached: Vec<(String, Option<String>)> = Vec::new();
        let mut seen = BTreeSet::new();
        let mut queue: VecDeque<(&String, Option<&String>)> =
            ids.iter().map(|i| (i, None)).collect();
        while let Some((id, via)) = queue.pop_front() {
            if !seen.insert(id.as_str()) {
                continue;
            }
            let role = self
                .roles
                .get(id)
                .ok_or_else(|| AuthzError::MissingRole(id.clone()))?;
            pair = pair.union(&role.own);
            reached.push((id.clone(), via.cloned()));
            queue.extend(role.role_ids.iter().map(|r| (r, Some(id))));
        }
        Ok((pair, reached))
    }

    /// Rule 3's G: every group reachable through `memberOf`, each once. Names the internal
    /// store does not know are groups without roles (an external directory's groups).
    pub fn group_closure(&self, member_of: &[String]) -> Chain {
        let mut out = Vec::new();
        let mut seen = BTreeSet::new();
        let mut queue: VecDeque<(&String, Option<&String>)> =
            member_of.iter().map(|g| (g, None)).collect();
        while let Some((name, via)) = queue.pop_front() {
            if !seen.insert(name.as_str()) {
                continue;
            }
            out.push((name.clone(), via.cloned()));
            if let Some(g) = self.groups.get(name) {
                queue.extend(g.member_of.iter().map(|p| (p, Some(name))));
            }
        }
        out
    }

    /// A group's or tenant's contribution by its mode; also returns the role ids that counted.
    fn contribution(
        &self,
        roles: &RoleSet,
        spec: &Spec,
        ctx: RoleContext,
    ) -> Result<(Pair, Vec<String>), AuthzError> {
        match spec.mode {
            Mode::Replace => Ok((spec.own, Vec::new())),
            mode => {
                let (rc, reached) = self.role_closure(self.resolve(roles, ctx))?;
                let pair = if mode == Mode::Merge {
                    rc.union(&spec.own)
                } else {
                    rc
                };
                Ok((pair, reached.into_iter().map(|(id, _)| id).collect()))
            }
        }
    }

    pub fn tenant_pair(&self, tenant: &str) -> Result<Pair, AuthzError> {
        let t = self
            .tenants
            .get(tenant)
            .ok_or_else(|| AuthzError::MissingTenant(tenant.to_string()))?;
        Ok(self.contribution(&t.roles, &t.spec, RoleContext::Tenant)?.0)
    }

    /// Rules 1–5.
    pub fn evaluate(&self, s: &Subject) -> Result<Grant, AuthzError> {
        let ctx = RoleContext::Account {
            has_tenant: s.tenant.is_some(),
        };
        let groups = self.group_closure(&s.member_of);
        let (mut pair, mut roles) = match s.spec.mode {
            Mode::Replace => (s.spec.own, BTreeSet::new()),
            mode => {
                let (rc, reached) = self.role_closure(self.resolve(&s.roles, ctx))?;
                let mut inherited = rc;
                let mut roles: BTreeSet<String> = reached.into_iter().map(|(id, _)| id).collect();
                for (name, _) in &groups {
                    if let Some(g) = self.groups.get(name) {
                        let (p, r) = self.contribution(&g.roles, &g.spec, RoleContext::Group)?;
                        inherited = inherited.union(&p);
                        roles.extend(r);
                    }
                }
                let pair = if mode == Mode::Merge {
                    inherited.union(&s.spec.own)
                } else {
                    inherited
                };
                (pair, roles)
            }
        };
        if let Some(t) = &s.tenant {
            let tp = self.tenant_pair(t)?;
            pair.enabled = pair.enabled.intersect(&tp.enabled);
            pair.disabled = pair.disabled.union(&tp.disabled);
        }
        if s.spec.mode == Mode::Replace {
            roles.clear();
        }
        Ok(Grant {
            effective: pair.enabled.minus(&pair.disabled),
            roles,
            groups: groups.into_iter().map(|(g, _)| g).collect(),
        })
    }
}

/// A credential's scope, compiled (rule 6).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scope {
    pub mode: ScopeMode,
    pub list: PermSet,
}

impl Scope {
    pub fn compile(s: &CredentialScope) -> Result<Scope, Vec<String>> {
        Ok(Scope {
            mode: s.mode,
            list: PermSet::from_names(&s.permissions)?,
        })
    }

    /// Never more than the account has.
    pub fn apply(&self, effective: &PermSet) -> PermSet {
        match self.mode {
            ScopeMode::Inherit => *effective,
            ScopeMode::Disable => effective.minus(&self.list),
            ScopeMode::Replace => self.list.intersect(effective),
        }
    }
}

/// The built-in roles with their sets from `data/permissions.tsv`, then the stored ones.
fn compile_roles(stored: &[Role], errors: &mut Vec<String>) -> HashMap<String, CRole> {
    let mut roles = HashMap::new();
    for builtin in ["user", "admin", "tenant-admin"] {
        let enabled = PermSet::builtin(builtin).unwrap_or_default();
        roles.insert(
            builtin.to_string(),
            CRole {
                role_ids: Vec::new(),
                own: Pair {
                    enabled,
                    disabled: PermSet::EMPTY,
                },
            },
        );
    }
    for r in stored {
        if roles.contains_key(&r.id) {
            errors.push(format!(
                "role {:?}: a built-in role cannot be redefined",
                r.id
            ));
            continue;
        }
        let e = PermSet::from_names(&r.enabled_permissions);
        let d = PermSet::from_names(&r.disabled_permissions);
        match (e, d) {
            (Ok(enabled), Ok(disabled)) => {
                roles.insert(
                    r.id.clone(),
                    CRole {
                        role_ids: r.role_ids.clone(),
                        own: Pair { enabled, disabled },
                    },
                );
            }
            (e, d) => errors.push(format!(
                "role {:?}: unknown permissions {:?}",
                r.id,
                e.err()
                    .into_iter()
                    .chain(d.err())
                    .flatten()
                    .collect::<Vec<_>>()
            )),
        }
    }
    roles
}
