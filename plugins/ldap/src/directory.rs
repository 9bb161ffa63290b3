//! [`LdapDirectory`]: the `Directory` implementation.

use std::net::IpAddr;
use std::sync::Arc;

use async_trait::async_trait;
use ldap3::Scope;
use postern_directory::secret::{self, Hasher, Verdict};
use postern_directory::{
    read_secret_file, ConfigProblem, Directory, DirectoryError, Identity, LoginRequest, Matched,
    Outcome, PrincipalType, RejectReason, MAX_USERNAME_LEN,
};
use zeroize::Zeroizing;

use crate::config::{LdapAuthMethod, LdapConfig};
use crate::conn::{tls_config, unavailable, Connector, Credentials};
use crate::escape::fill;
use crate::pool::{Pool, PoolStats};
use crate::search::{rc, search, Entry};

/// Why a directory could not be built from its configuration.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// Displayed as `KEY: REASON`, the key relative to the directory's section.
    #[error(transparent)]
    Config(#[from] ConfigProblem),
}

pub struct LdapDirectory {
    pub(crate) name: String,
    pub(crate) config: LdapConfig,
    /// Service-account connections: every search.
    pub(crate) service: Pool,
    /// Connections used only to bind as users, never for searches: a user's bind must not
    /// change what the service account's connections may see.
    auth: Pool,
    hasher: Hasher,
}

impl LdapDirectory {
    /// Checks the configuration, reads `bind-password-file` and `ca-file`; opens nothing.
    pub fn new(name: &str, config: LdapConfig, hasher: Hasher) -> Result<Self, BuildError> {
        if let Some(problem) = config.problems().into_iter().next() {
            return Err(problem.into());
        }
        let password = match (&config.bind_password, &config.bind_password_file) {
            (Some(p), _) => Some(Zeroizing::new(p.clone())),
            (None, Some(path)) => Some(read_secret_file("bind-password-file", path)?),
            (None, None) => None,
        };
        let bind = config
            .bind_dn
            .clone()
            .zip(password)
            .map(|(dn, password)| Credentials { dn, password });
        let tls = tls_config(config.ca_file.as_deref())
            .map_err(|reason| ConfigProblem::new("ca-file", reason))?;
        let connector = Arc::new(Connector {
            urls: config.url.as_vec(),
            starttls: config.starttls,
            tls,
            timeout: config.timeout,
        });
        Ok(LdapDirectory {
            name: name.to_string(),
            service: Pool::new(Arc::clone(&connector), bind, config.pool_size),
            auth: Pool::new(connector, None, config.pool_size),
            config,
            hasher,
        })
    }

    /// Connections of the service pool and of the user-bind pool (`(service, auth)`).
    pub fn pool_stats(&self) -> (PoolStats, PoolStats) {
        (self.service.stats(), self.auth.stats())
    }

    /// The single entry `user-filter` finds for `username`. Several entries is a directory
    /// error: guessing which one is meant could log someone in as another person.
    async fn find_user(&self, username: &str) -> Result<Option<Entry>, DirectoryError> {
        let a = &self.config.attributes;
        let mut attrs = vec![a.name.as_str(), a.email.as_str(), a.description.as_str()];
        if self.config.group_filter.is_none() {
            attrs.push(a.groups.as_str());
        }
        if self.config.auth_method == LdapAuthMethod::Lookup {
            attrs.push(a.secret.as_str());
        }
        let filter = fill(&self.config.user_filter, "{user}", username);
        let found = search(
            &self.service,
            self.config.timeout,
            &self.config.base_dn,
            Scope::Subtree,
            &filter,
            &attrs,
            2,
        )
        .await?;
        if found.no_such_base {
            return Err(DirectoryError::InvalidData(format!(
                "base-dn {:?} does not exist",
                self.config.base_dn
            )));
        }
        if found.entries.len() > 1 || found.truncated {
            return Err(DirectoryError::InvalidData(format!(
                "user-filter matches more than one entry for {username:?}"
            )));
        }
        Ok(found.entries.into_iter().next())
    }

    async fn identity(&self, entry: &Entry) -> Result<Identity, DirectoryError> {
        let a = &self.config.attributes;
        let Some(name) = entry.first(&a.name) else {
            tracing::error!(directory = %self.name, dn = %entry.dn, attribute = %a.name, "LDAP entry has no name attribute");
            return Err(DirectoryError::InvalidData(format!(
                "{} has no {} attribute",
                entry.dn, a.name
            )));
        };
        Ok(Identity {
            name: name.to_string(),
            kind: PrincipalType::Individual,
            description: entry.first(&a.description).map(str::to_string),
            emails: entry.values(&a.email).to_vec(),
            groups: self.groups(entry).await?,
            matched: Matched::Password,
            subject: None,
        })
    }

    /// Binds as `dn` on a connection of the user-bind pool.
    async fn bind_as(
        &self,
        dn: &str,
        password: &str,
    ) -> Result<Option<RejectReason>, DirectoryError> {
        for attempt in 0..2 {
            let mut conn = self.auth.get().await?;
            let timeout = self.config.timeout;
            let op = conn.ldap.with_timeout(timeout).simple_bind(dn, password);
            let res = match tokio::time::timeout(timeout, op).await {
                Ok(Ok(res)) => res,
                Ok(Err(e)) => {
                    if conn.reused && attempt == 0 {
                        continue;
                    }
                    return Err(unavailable("LDAP bind", e));
                }
                Err(_) => return Err(unavailable("LDAP bind", "timed out")),
            };
            conn.release();
            return match res.rc {
                rc::SUCCESS => Ok(None),
                rc::INVALID_CREDENTIALS => Ok(Some(RejectReason::WrongSecret)),
                // What servers answer for accounts they refuse outright (locked, expired,
                // not allowed to bind).
                rc::INSUFFICIENT_ACCESS | rc::UNWILLING_TO_PERFORM => {
                    Ok(Some(RejectReason::Disabled))
                }
                other => Err(DirectoryError::Unavailable(format!(
                    "LDAP bind failed (rc {other}: {})",
                    res.text
                ))),
            };
        }
        Err(DirectoryError::Unavailable("LDAP bind failed".into()))
    }

    /// Verifies `password` against the entry's stored secret(s). Any value that verifies is
    /// enough (an entry may hold several); a value in a scheme we cannot check is logged.
    async fn check_stored(
        &self,
        entry: &Entry,
        client: Option<IpAddr>,
        password: &str,
    ) -> Result<Option<RejectReason>, DirectoryError> {
        let stored = entry.raw_values(&self.config.attributes.secret);
        if stored.is_empty() {
            tracing::error!(directory = %self.name, dn = %entry.dn, attribute = %self.config.attributes.secret, "no readable stored secret (check the service account's read access)");
            self.hasher.burn(client, password).await?;
            return Ok(Some(RejectReason::UnverifiableSecret));
        }
        let mut wrong = false;
        for value in stored {
            let candidate = Zeroizing::new(
                secret::with_default_scheme(&value, self.config.default_scheme.as_deref())
                    .into_owned(),
            );
            match self
                .hasher
                .check(client, candidate.as_str(), password)
                .await?
            {
                Verdict::Match => return Ok(None),
                Verdict::Mismatch => wrong = true,
                Verdict::Unverifiable(e) => {
                    tracing::error!(directory = %self.name, dn = %entry.dn, error = %e, "stored secret cannot be verified");
                }
            }
        }
        Ok(Some(if wrong {
            RejectReason::WrongSecret
        } else {
            RejectReason::UnverifiableSecret
        }))
    }
}

#[async_trait]
impl Directory for LdapDirectory {
    fn name(&self) -> &str {
        &self.name
    }

    async fn authenticate(&self, request: &LoginRequest<'_>) -> Result<Outcome, DirectoryError> {
        // Passwords are all this directory checks (`accepts`' default).
        let Some(password) = request.credential.as_password() else {
            return Ok(Outcome::UnknownUser);
        };
        // Refused before any bind: many servers take a simple bind with an empty password as
        // an anonymous bind, and report it as success (RFC 4513 §5.1.2).
        if password.is_empty() {
            return Ok(Outcome::Rejected(RejectReason::WrongSecret));
        }
        if request.username.is_empty() || request.username.len() > MAX_USERNAME_LEN {
            return Ok(Outcome::UnknownUser);
        }
        let lookup = self.config.auth_method == LdapAuthMethod::Lookup;
        let client = request.remote_ip;
        let Some(entry) = self.find_user(request.username).await? else {
            if lookup {
                self.hasher.burn(client, password).await?;
            }
            return Ok(Outcome::UnknownUser);
        };
        let rejected = if lookup {
            self.check_stored(&entry, client, password).await?
        } else {
            self.bind_as(&entry.dn, password).await?
        };
        if let Some(reason) = rejected {
            return Ok(Outcome::Rejected(reason));
        }
        Ok(Outcome::Authenticated(self.identity(&entry).await?))
    }

    async fn lookup(&self, name: &str) -> Result<Option<Identity>, DirectoryError> {
        if name.is_empty() || name.len() > MAX_USERNAME_LEN {
            return Ok(None);
        }
        match self.find_user(name).await? {
            Some(entry) => Ok(Some(self.identity(&entry).await?)),
            None => Ok(None),
        }
    }

    async fn health(&self) -> Result<(), DirectoryError> {
        let found = search(
            &self.service,
            self.config.timeout,
            &self.config.base_dn,
            Scope::Base,
            "(objectClass=*)",
            &["1.1"],
            1,
        )
        .await?;
        if found.no_such_base {
            return Err(DirectoryError::InvalidData(format!(
                "base-dn {:?} does not exist",
                self.config.base_dn
            )));
        }
        Ok(())
    }

    fn pools(&self) -> Vec<postern_directory::PoolStats> {
        let (service, auth) = self.pool_stats();
        [("service", service), ("auth", auth)]
            .into_iter()
            .map(|(pool, s)| postern_directory::PoolStats {
                pool,
                in_use: s.in_use,
                idle: s.idle,
            })
            .collect()
    }
}
