//! Group names of a user: from the user's `memberOf`-style attribute (values are group DNs) or,
//! for servers without one, from `group-filter` searches with `{dn}`. Nested groups are
//! followed breadth-first up to `group-depth` levels; a DN seen once is never visited again,
//! so a loop of groups ends like any other tree.

use std::collections::{BTreeSet, HashSet};

use ldap3::Scope;
use postern_directory::DirectoryError;

use crate::escape::{fill, rdn_value};
use crate::search::{search, Entry};
use crate::LdapDirectory;

/// No user needs more groups than this; a directory that reports more is cut off (and logged)
/// rather than allowed to make one login run thousands of searches.
pub const MAX_GROUPS: usize = 1000;

/// A group reached: its DN and, when its entry was read, the entry.
struct Reached {
    dn: String,
    entry: Option<Entry>,
}

impl LdapDirectory {
    pub(crate) async fn groups(&self, user: &Entry) -> Result<Vec<String>, DirectoryError> {
        let name_attr = self.config.group_name_attribute.as_str();
        let mut seen: HashSet<String> = HashSet::new();
        let mut names: BTreeSet<String> = BTreeSet::new();
        let mut frontier: Vec<Reached> = match &self.config.group_filter {
            Some(_) => self.groups_by_filter(&user.dn).await?,
            None => {
                self.read_groups(user.values(&self.config.attributes.groups))
                    .await?
            }
        };
        let mut depth = 0;
        while !frontier.is_empty() {
            let mut next_dns: Vec<String> = Vec::new();
            for g in frontier {
                if !seen.insert(g.dn.to_ascii_lowercase()) {
                    continue;
                }
                if seen.len() > MAX_GROUPS {
                    tracing::warn!(directory = %self.name, user = %user.dn, "more than {MAX_GROUPS} groups; the rest are ignored");
                    return Ok(names.into_iter().collect());
                }
                let name = g
                    .entry
                    .as_ref()
                    .and_then(|e| e.first(name_attr))
                    .map(str::to_string)
                    .or_else(|| rdn_value(&g.dn, name_attr));
                match name {
                    Some(n) => {
                        names.insert(n);
                    }
                    None => {
                        tracing::warn!(directory = %self.name, group = %g.dn, attribute = %name_attr, "group has no name attribute; ignored")
                    }
                }
                if depth < self.config.group_depth {
                    match (&self.config.group_filter, &g.entry) {
                        (Some(_), _) => next_dns.push(g.dn),
                        (None, Some(e)) => next_dns.extend(
                            e.values(&self.config.attributes.groups)
                                .iter()
                                .filter(|d| !seen.contains(&d.to_ascii_lowercase()))
                                .cloned(),
                        ),
                        (None, None) => {}
                    }
                }
            }
            depth += 1;
            if depth > self.config.group_depth || next_dns.is_empty() {
                break;
            }
            frontier = match &self.config.group_filter {
                Some(_) => {
                    let mut parents = Vec::new();
                    for dn in next_dns {
                        parents.extend(self.groups_by_filter(&dn).await?);
                    }
                    parents
                }
                None => self.read_groups(&next_dns).await?,
            };
        }
        Ok(names.into_iter().collect())
    }

    /// Groups whose `group-filter` matches `dn` (escaped), with their name attribute.
    async fn groups_by_filter(&self, dn: &str) -> Result<Vec<Reached>, DirectoryError> {
        let Some(template) = &self.config.group_filter else {
            return Ok(Vec::new());
        };
        let filter = fill(template, "{dn}", dn);
        let found = search(
            &self.service,
            self.config.timeout,
            &self.config.base_dn,
            Scope::Subtree,
            &filter,
            &[self.config.group_name_attribute.as_str()],
            i32::try_from(MAX_GROUPS).unwrap_or(i32::MAX),
        )
        .await?;
        Ok(found
            .entries
            .into_iter()
            .map(|e| Reached {
                dn: e.dn.clone(),
                entry: Some(e),
            })
            .collect())
    }

    /// The entries of groups named by DN, read only when needed: for their name when the RDN
    /// does not carry it, and for their own memberships when nesting is followed. A group
    /// that no longer exists (dangling `memberOf`) keeps the name of its RDN.
    async fn read_groups(&self, dns: &[String]) -> Result<Vec<Reached>, DirectoryError> {
        let name_attr = self.config.group_name_attribute.as_str();
        let need_read = self.config.group_depth > 0;
        let mut out = Vec::with_capacity(dns.len());
        for dn in dns.iter().take(MAX_GROUPS) {
            if !need_read && rdn_value(dn, name_attr).is_some() {
                out.push(Reached {
                    dn: dn.clone(),
                    entry: None,
                });
                continue;
            }
            let found = search(
                &self.service,
                self.config.timeout,
                dn,
                Scope::Base,
                "(objectClass=*)",
                &[name_attr, self.config.attributes.groups.as_str()],
                1,
            )
            .await?;
            out.push(Reached {
                dn: dn.clone(),
                entry: found.entries.into_iter().next(),
            });
        }
        Ok(out)
    }
}
