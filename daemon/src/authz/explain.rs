//! `postern explain`: the chain of roles, groups, tenant and modes that grants or denies one
//! permission. It walks the same structures as [`Policy::evaluate`] and checks its verdict
//! against it, so the explanation cannot drift from the decision.

use postern_internal::model::Mode;

use super::engine::{AuthzError, Policy, RoleContext, Subject};
use super::permissions::Permission;

fn path(name: &str, via: &Option<String>, chain: &[(String, Option<String>)]) -> String {
    let mut out = name.to_string();
    let mut cur = via.clone();
    let mut guard = 0;
    while let Some(parent) = cur {
        out.push_str(" ← ");
        out.push_str(&parent);
        cur = chain
            .iter()
            .find(|(n, _)| n == &parent)
            .and_then(|(_, v)| v.clone());
        guard += 1;
        if guard > chain.len() {
            break;
        }
    }
    out
}

fn verdict(enabled: bool, disabled: bool) -> Option<&'static str> {
    match (enabled, disabled) {
        (true, true) => Some("enables and disables"),
        (true, false) => Some("enables"),
        (false, true) => Some("disables"),
        (false, false) => None,
    }
}

impl Policy {
    /// Lines of explanation, the last one the verdict.
    pub fn explain(&self, s: &Subject, p: Permission) -> Result<Vec<String>, AuthzError> {
        let name = p.name();
        let mut lines = Vec::new();
        let ctx = RoleContext::Account {
            has_tenant: s.tenant.is_some(),
        };
        let mode = |m: Mode| match m {
            Mode::Inherit => "inherit",
            Mode::Merge => "merge",
            Mode::Replace => "replace",
        };
        lines.push(format!("account mode: {}", mode(s.spec.mode)));
        if s.spec.mode == Mode::Replace {
            lines.push("  roles and groups are ignored (replace)".into());
        } else {
            let ids = self.resolve(&s.roles, ctx);
            lines.push(format!(
                "account roles {} → {:?}",
                serde_json::to_string(&s.roles).unwrap_or_default(),
                ids
            ));
            let (_, chain) = self.role_closure(ids)?;
            self.role_lines(&chain, "account", p, &mut lines);
            let groups = self.group_closure(&s.member_of);
            for (g, via) in &groups {
                let Some(group) = self.groups.get(g) else {
                    lines.push(format!(
                        "  group {} (not in the internal store: no roles)",
                        path(g, via, &groups)
                    ));
                    continue;
                };
                lines.push(format!(
                    "  group {} (mode {})",
                    path(g, via, &groups),
                    mode(group.spec.mode)
                ));
                if group.spec.mode != Mode::Inherit {
                    if let Some(v) = verdict(
                        group.spec.own.enabled.contains(p),
                        group.spec.own.disabled.contains(p),
                    ) {
                        lines.push(format!("    its own list {v} {name}"));
                    }
                }
                if group.spec.mode != Mode::Replace {
                    let ids = self.resolve(&group.roles, RoleContext::Group);
                    let (_, chain) = self.role_closure(ids)?;
                    self.role_lines(&chain, &format!("group {g}"), p, &mut lines);
                }
            }
        }
        if s.spec.mode != Mode::Inherit {
            if let Some(v) = verdict(
                s.spec.own.enabled.contains(p),
                s.spec.own.disabled.contains(p),
            ) {
                lines.push(format!("  account's own list {v} {name}"));
            }
        }
        if let Some(t) = &s.tenant {
            let tp = self.tenant_pair(t)?;
            lines.push(format!(
                "tenant {t}: ceiling {} {name}{}",
                if tp.enabled.contains(p) {
                    "includes"
                } else {
                    "excludes"
                },
                if tp.disabled.contains(p) {
                    ", and disables it"
                } else {
                    ""
                }
            ));
        }
        let granted = self.evaluate(s)?.effective.contains(p);
        lines.push(format!(
            "result: {name} is {}",
            if granted { "GRANTED" } else { "DENIED" }
        ));
        Ok(lines)
    }

    fn role_lines(
        &self,
        chain: &[(String, Option<String>)],
        origin: &str,
        p: Permission,
        lines: &mut Vec<String>,
    ) {
        for (id, via) in chain {
            let Some(role) = self.roles.get(id) else {
                continue;
            };
            if let Some(v) = verdict(role.own.enabled.contains(p), role.own.disabled.contains(p)) {
                lines.push(format!(
                    "    role {} (from {origin}) {v} {}",
                    path(id, via, chain),
                    p.name()
                ));
            }
        }
    }
}
