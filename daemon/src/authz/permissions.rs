//! The 265 permissions of the product contract, as a compact bitset.

use std::collections::HashMap;
use std::sync::LazyLock;

pub struct PermissionDef {
    pub name: &'static str,
    pub description: &'static str,
    pub admin: bool,
    pub tenant_admin: bool,
    pub user: bool,
}

include!(concat!(env!("OUT_DIR"), "/permissions.rs"));

const WORDS: usize = COUNT.div_ceil(64);

static INDEX: LazyLock<HashMap<&'static str, u16>> = LazyLock::new(|| {
    PERMISSIONS
        .iter()
        .enumerate()
        .map(|(i, p)| (p.name, i as u16))
        .collect()
});

/// A permission, by its index in [`PERMISSIONS`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Permission(u16);

impl Permission {
    pub fn from_name(name: &str) -> Option<Permission> {
        INDEX.get(name).copied().map(Permission)
    }

    /// Only for names known to be in the table (tests, constants of this crate).
    pub fn known(name: &'static str) -> Permission {
        // An unknown constant is a programming error caught by the `named_constants` test;
        // fall back to index 0 rather than panicking in a server.
        Permission::from_name(name).unwrap_or(Permission(0))
    }

    pub fn name(self) -> &'static str {
        PERMISSIONS
            .get(self.0 as usize)
            .map(|p| p.name)
            .unwrap_or("")
    }

    pub fn all() -> impl Iterator<Item = Permission> {
        (0..COUNT as u16).map(Permission)
    }
}

pub fn is_permission(name: &str) -> bool {
    INDEX.contains_key(name)
}

/// `, did you mean `principal-create`?` for a misspelt permission name, or nothing: appended to
/// "unknown permission" messages wherever a file names permissions.
pub fn permission_hint(name: &str) -> String {
    postern_directory::config::did_you_mean(name, PERMISSIONS.iter().map(|p| p.name))
}

/// A set of permissions: one bit each, so union, intersection and difference are a few word
/// operations whatever the number of roles.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct PermSet([u64; WORDS]);

impl PermSet {
    pub const EMPTY: PermSet = PermSet([0; WORDS]);

    pub fn insert(&mut self, p: Permission) {
        self.0[p.0 as usize / 64] |= 1 << (p.0 % 64);
    }

    pub fn contains(&self, p: Permission) -> bool {
        self.0[p.0 as usize / 64] & (1 << (p.0 % 64)) != 0
    }

    pub fn union(mut self, other: &PermSet) -> PermSet {
        self.0.iter_mut().zip(other.0).for_each(|(a, b)| *a |= b);
        self
    }

    pub fn intersect(mut self, other: &PermSet) -> PermSet {
        self.0.iter_mut().zip(other.0).for_each(|(a, b)| *a &= b);
        self
    }

    pub fn minus(mut self, other: &PermSet) -> PermSet {
        self.0.iter_mut().zip(other.0).for_each(|(a, b)| *a &= !b);
        self
    }

    pub fn is_subset(&self, other: &PermSet) -> bool {
        self.0.iter().zip(other.0).all(|(a, b)| a & !b == 0)
    }

    pub fn is_empty(&self) -> bool {
        self.0.iter().all(|w| *w == 0)
    }

    pub fn len(&self) -> usize {
        self.0.iter().map(|w| w.count_ones() as usize).sum()
    }

    pub fn iter(&self) -> impl Iterator<Item = Permission> + '_ {
        Permission::all().filter(|p| self.contains(*p))
    }

    /// Names in table order.
    pub fn names(&self) -> Vec<&'static str> {
        self.iter().map(Permission::name).collect()
    }

    /// Sorted names (the session view's order).
    pub fn sorted_names(&self) -> Vec<&'static str> {
        let mut names = self.names();
        names.sort_unstable();
        names
    }

    /// Parses names; the error lists every unknown one.
    pub fn from_names<S: AsRef<str>>(names: &[S]) -> Result<PermSet, Vec<String>> {
        let mut set = PermSet::EMPTY;
        let mut unknown = Vec::new();
        for n in names {
            match Permission::from_name(n.as_ref()) {
                Some(p) => set.insert(p),
                None => unknown.push(n.as_ref().to_string()),
            }
        }
        if unknown.is_empty() {
            Ok(set)
        } else {
            Err(unknown)
        }
    }

    pub fn builtin(role: &str) -> Option<PermSet> {
        let pick: fn(&PermissionDef) -> bool = match role {
            "admin" => |p| p.admin,
            "tenant-admin" => |p| p.tenant_admin,
            "user" => |p| p.user,
            _ => return None,
        };
        let mut set = PermSet::EMPTY;
        for (i, p) in PERMISSIONS.iter().enumerate() {
            if pick(p) {
                set.insert(Permission(i as u16));
            }
        }
        Some(set)
    }
}

impl std::fmt::Debug for PermSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_set().entries(self.names()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_matches_contract() {
        assert_eq!(COUNT, 265);
        assert_eq!(PermSet::builtin("admin").unwrap().len(), 265);
        assert_eq!(PermSet::builtin("tenant-admin").unwrap().len(), 229);
        assert_eq!(PermSet::builtin("user").unwrap().len(), 179);
        assert!(PermSet::builtin("nobody").is_none());
    }

    #[test]
    fn named_constants() {
        for name in [
            "authenticate",
            "imap-authenticate",
            "pop3-authenticate",
            "sieve-authenticate",
            "email-send",
            "impersonate",
        ] {
            assert!(is_permission(name), "{name}");
            assert_eq!(Permission::known(name).name(), name);
        }
    }

    #[test]
    fn misspelt_permissions_get_a_hint() {
        assert_eq!(
            permission_hint("principal-craete"),
            ", did you mean `principal-create`?"
        );
        assert_eq!(
            permission_hint("authenticat"),
            ", did you mean `authenticate`?"
        );
        assert_eq!(permission_hint("fly"), "");
    }

    #[test]
    fn set_operations() {
        let a = PermSet::from_names(&["authenticate", "email-send"]).unwrap();
        let b = PermSet::from_names(&["email-send", "impersonate"]).unwrap();
        assert_eq!(a.union(&b).len(), 3);
        assert_eq!(a.intersect(&b).names(), vec!["email-send"]);
        assert_eq!(a.minus(&b).names(), vec!["authenticate"]);
        assert!(a.intersect(&b).is_subset(&a));
        assert_eq!(
            PermSet::from_names(&["authenticate", "fly", "swim"]).unwrap_err(),
            vec!["fly", "swim"]
        );
    }
}
