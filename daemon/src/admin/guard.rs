//! Who may do what: the actor, the permission each operation needs, tenant scoping, and
//! "grant only what you hold".

use postern_internal::model::{Account, AccountType, Mode, RoleSet};

use super::AdminError;
use crate::auth::SessionView;
use crate::authz::engine::RoleContext;
use crate::authz::{PermSet, Permission, Policy, Spec, Subject};

/// Whoever asks: an authenticated principal (HTTP), or the administrator at the daemon's
/// machine (CLI), who holds every permission and no tenant.
#[derive(Debug, Clone)]
pub struct Actor {
    /// For the audit log.
    pub name: String,
    /// A tenant administrator sees and changes only objects of this tenant.
    pub tenant: Option<String>,
    pub held: PermSet,
}

impl Actor {
    /// The CLI on the daemon's machine: whoever can read the store's configuration already
    /// holds everything.
    pub fn local() -> Actor {
        let mut held = PermSet::EMPTY;
        for p in Permission::all() {
            held.insert(p);
        }
        Actor {
            name: "cli".into(),
            tenant: None,
            held,
        }
    }

    /// A session's or API key's principal, with the permissions the view carries (already
    /// narrowed by a key's scope).
    pub fn from_session(view: &SessionView) -> Actor {
        let mut held = PermSet::EMPTY;
        for name in &view.permissions {
            if let Some(p) = Permission::from_name(name) {
                held.insert(p);
            }
        }
        Actor {
            name: view.principal.name.clone(),
            tenant: view.principal.tenant.clone(),
            held,
        }
    }

    /// 403 naming the permission when the actor lacks it.
    pub fn require(&self, name: &'static str) -> Result<(), AdminError> {
        match Permission::from_name(name) {
            Some(p) if self.held.contains(p) => Ok(()),
            _ => Err(AdminError::Forbidden(format!(
                "missing permission {name:?}"
            ))),
        }
    }

    pub fn holds(&self, name: &str) -> bool {
        Permission::from_name(name).is_some_and(|p| self.held.contains(p))
    }

    /// Whether an object of `tenant` is visible: everything for an actor without a tenant,
    /// only their own tenant's objects otherwise.
    pub fn sees(&self, tenant: Option<&str>) -> bool {
        match &self.tenant {
            None => true,
            Some(mine) => tenant == Some(mine.as_str()),
        }
    }

    /// Refuses what only an actor without a tenant may do (tenants, the defaults).
    pub fn require_global(&self, what: &str) -> Result<(), AdminError> {
        match &self.tenant {
            None => Ok(()),
            Some(_) => Err(AdminError::Forbidden(format!(
                "a tenant administrator cannot {what}"
            ))),
        }
    }

    /// The tenant an object written by this actor ends up in: a tenant administrator's own,
    /// whatever was asked (another tenant is refused); anyone else's choice.
    pub fn place(&self, asked: Option<String>, field: &str) -> Result<Option<String>, AdminError> {
        match (&self.tenant, asked) {
            (None, asked) => Ok(asked),
            (Some(mine), None) => Ok(Some(mine.clone())),
            (Some(mine), Some(t)) if &t == mine => Ok(Some(t)),
            (Some(_), Some(t)) => Err(AdminError::Forbidden(format!(
                "{field}: a tenant administrator cannot place objects in tenant {t:?}"
            ))),
        }
    }

    /// 403 unless every permission of `granted` is held, naming those that are not.
    pub fn may_grant(&self, granted: &PermSet, what: &str) -> Result<(), AdminError> {
        let beyond = granted.minus(&self.held);
        if beyond.is_empty() {
            return Ok(());
        }
        let mut names = beyond.sorted_names();
        let more = names.len().saturating_sub(5);
        names.truncate(5);
        let tail = if more > 0 {
            format!(" and {more} more")
        } else {
            String::new()
        };
        Err(AdminError::Forbidden(format!(
            "{what}: cannot grant permissions you do not hold: {}{tail}",
            names.join(", ")
        )))
    }

    /// Only someone who holds everything a principal holds may change it, delete it or mint
    /// its credentials: otherwise setting its password would hand over more than one holds.
    pub fn may_manage(&self, holds: &PermSet, what: &str) -> Result<(), AdminError> {
        if holds.is_subset(&self.held) {
            Ok(())
        } else {
            Err(AdminError::Forbidden(format!(
                "{what} holds permissions you do not hold"
            )))
        }
    }
}

/// What an account confers, under `policy`: an individual's effective set; a group's
/// contribution to a member (its own pair by its mode, and its parent groups'). A dangling
/// reference is the store's to report: it is refused at commit.
pub fn confers(policy: &Policy, a: &Account) -> Result<PermSet, AdminError> {
    let what = format!("account {:?}", a.name);
    let invalid = |e: crate::authz::AuthzError| match e {
        crate::authz::AuthzError::UnknownPermission { names, .. } => unknown(&what, &names),
        e => AdminError::Invalid(vec![format!("{what}: {e}")]),
    };
    match a.kind {
        AccountType::Individual => {
            let subject = Subject::from_account(a, &[]).map_err(invalid)?;
            Ok(policy.evaluate(&subject).map_err(invalid)?.effective)
        }
        AccountType::Group => {
            let spec = Spec::compile(&a.permissions).map_err(|names| unknown(&what, &names))?;
            let own = match spec.mode {
                Mode::Replace => spec.own.enabled.minus(&spec.own.disabled),
                mode => {
                    let roles = a.roles.clone().unwrap_or(RoleSet::Default);
                    let (rc, _) = policy
                        .role_closure(policy.resolve(&roles, RoleContext::Group))
                        .map_err(invalid)?;
                    let mut e = rc.enabled;
                    let mut d = rc.disabled;
                    if mode == Mode::Merge {
                        e = e.union(&spec.own.enabled);
                        d = d.union(&spec.own.disabled);
                    }
                    e.minus(&d)
                }
            };
            // Its parents reach every member too: a member of nothing but them.
            let parents = Subject {
                roles: RoleSet::List(Vec::new()),
                spec: Spec::default(),
                member_of: a.member_of.clone(),
                tenant: None,
            };
            let up = policy.evaluate(&parents).map_err(invalid)?.effective;
            Ok(own.union(&up))
        }
    }
}

/// One problem per unknown permission name, worded as the store words them.
fn unknown(what: &str, names: &[String]) -> AdminError {
    AdminError::Invalid(
        names
            .iter()
            .map(|n| {
                format!(
                    "{what}: permissions: unknown permission {n:?}{}",
                    crate::authz::permission_hint(n)
                )
            })
            .collect(),
    )
}

/// The permissions `names` stand for; unknown names are the store's to report.
pub fn named(names: &[String]) -> PermSet {
    let mut set = PermSet::EMPTY;
    for n in names {
        if let Some(p) = Permission::from_name(n) {
            set.insert(p);
        }
    }
    set
}

/// The permission an operation on a principal of `kind` needs: `individual-…` or `group-…`.
pub fn principal_permission(kind: AccountType, op: Op) -> &'static str {
    match (kind, op) {
        (AccountType::Individual, Op::List) => "individual-list",
        (AccountType::Individual, Op::Get) => "individual-get",
        (AccountType::Individual, Op::Create) => "individual-create",
        (AccountType::Individual, Op::Update) => "individual-update",
        (AccountType::Individual, Op::Delete) => "individual-delete",
        (AccountType::Group, Op::List) => "group-list",
        (AccountType::Group, Op::Get) => "group-get",
        (AccountType::Group, Op::Create) => "group-create",
        (AccountType::Group, Op::Update) => "group-update",
        (AccountType::Group, Op::Delete) => "group-delete",
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    List,
    Get,
    Create,
    Update,
    Delete,
}
