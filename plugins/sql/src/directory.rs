//! The `Directory` contract over the three queries.

use async_trait::async_trait;
use postern_directory::secret::{self, Verdict};
use postern_directory::{
    validate_username, Directory, DirectoryError, Identity, LoginRequest, Matched, Outcome,
    PrincipalType, RejectReason,
};
use zeroize::Zeroizing;

use crate::backend::Query;
use crate::error::classify;
use crate::table::{self, Table};
use crate::{SqlDirectory, MAX_LIST_ROWS};

/// One row of `query-login`.
struct Account {
    name: String,
    kind: PrincipalType,
    description: Option<String>,
    /// `None`: the column is absent or NULL.
    secret: Option<Zeroizing<String>>,
    has_secret_column: bool,
}

fn invalid(message: String) -> DirectoryError {
    DirectoryError::InvalidData(message)
}

/// The `type` column: absent or NULL means an individual.
fn principal_type(value: Option<&str>) -> Result<PrincipalType, DirectoryError> {
    let Some(v) = value.map(str::trim) else {
        return Ok(PrincipalType::Individual);
    };
    Ok(match v.to_ascii_lowercase().as_str() {
        "" | "individual" | "user" => PrincipalType::Individual,
        "group" => PrincipalType::Group,
        "tenant" => PrincipalType::Tenant,
        "role" => PrincipalType::Role,
        "resource" => PrincipalType::Resource,
        "location" => PrincipalType::Location,
        "other" => PrincipalType::Other,
        other => {
            return Err(invalid(format!(
                "query-login: column type is {other:?}; expected individual, user or group"
            )))
        }
    })
}

impl SqlDirectory {
    pub(crate) async fn run(
        &self,
        query: &Query,
        arg: &str,
        limit: usize,
    ) -> Result<Table, DirectoryError> {
        match tokio::time::timeout(self.timeout, self.backend.fetch(query, arg, limit)).await {
            Ok(result) => result.map_err(|e| classify(query.key, e)),
            Err(_) => Err(DirectoryError::Unavailable(format!(
                "{}: no answer within {:?}",
                query.key, self.timeout
            ))),
        }
    }

    /// The account `login` names, if any. Names no front-end would pass (empty, overlong,
    /// control characters such as NUL) are nobody's, without asking the database.
    async fn find(&self, login: &str) -> Result<Option<Account>, DirectoryError> {
        if validate_username(login).is_err() {
            return Ok(None);
        }
        // Two rows are enough to know the answer is ambiguous.
        let t = self.run(&self.login, login, 1).await?;
        if t.truncated {
            return Err(invalid(
                "query-login returned more than one row for one login name; the login is \
                 ambiguous, so nothing is granted (make the query select one row)"
                    .into(),
            ));
        }
        let Some(row) = t.rows.first() else {
            return Ok(None);
        };
        let column = |n: &str| t.column(n).and_then(|i| row.get(i));
        let name = match column("name") {
            None => return Err(invalid("query-login returned no column `name`".into())),
            Some(cell) => table::plain(cell, "query-login: column name")?
                .filter(|n| !n.trim().is_empty())
                .ok_or_else(|| invalid("query-login: column name is NULL or empty".into()))?,
        };
        let description = column("description")
            .map(|c| table::plain(c, "query-login: column description"))
            .transpose()?
            .flatten()
            .filter(|d| !d.is_empty());
        let kind = column("type")
            .map(|c| table::plain(c, "query-login: column type"))
            .transpose()?
            .flatten();
        let secret = column("secret")
            .map(|c| table::text(c, "query-login: column secret"))
            .transpose()?
            .flatten();
        Ok(Some(Account {
            name,
            kind: principal_type(kind.as_deref())?,
            description,
            secret,
            has_secret_column: t.column("secret").is_some(),
        }))
    }

    /// One value per row of `query` (column `preferred`, or the first), NULLs skipped,
    /// duplicates dropped.
    async fn list(
        &self,
        query: &Query,
        name: &str,
        preferred: &str,
    ) -> Result<Vec<String>, DirectoryError> {
        let t = self.run(query, name, MAX_LIST_ROWS).await?;
        if t.truncated {
            tracing::warn!(directory = %self.name, query = query.key, "more than {MAX_LIST_ROWS} rows; the rest are ignored");
        }
        let index = t.column(preferred).unwrap_or(0);
        let what = format!(
            "{}: column {}",
            query.key,
            t.columns.get(index).map_or("1", |c| c)
        );
        let mut values: Vec<String> = Vec::new();
        for row in &t.rows {
            if let Some(v) = row.get(index).map(|c| table::plain(c, &what)).transpose()? {
                if let Some(v) = v.filter(|v| !v.is_empty()) {
                    if !values.contains(&v) {
                        values.push(v);
                    }
                }
            }
        }
        Ok(values)
    }

    async fn identity(&self, account: Account) -> Result<Identity, DirectoryError> {
        let groups = match &self.member_of {
            Some(q) => self.list(q, &account.name, "name").await?,
            None => Vec::new(),
        };
        let emails = match &self.emails {
            Some(q) => self.list(q, &account.name, "email").await?,
            // Postfix Admin style: the login is the mailbox address.
            None if account.name.contains('@') => vec![account.name.clone()],
            None => Vec::new(),
        };
        Ok(Identity {
            name: account.name,
            kind: account.kind,
            description: account.description,
            emails,
            groups,
            matched: Matched::Password,
            subject: None,
        })
    }
}

#[async_trait]
impl Directory for SqlDirectory {
    fn name(&self) -> &str {
        &self.name
    }

    async fn authenticate(&self, request: &LoginRequest<'_>) -> Result<Outcome, DirectoryError> {
        // Passwords are all this directory checks (`accepts`' default).
        let Some(password) = request.credential.as_password() else {
            return Ok(Outcome::UnknownUser);
        };
        let client = request.remote_ip;
        let account = match self.find(request.username).await {
            Ok(Some(a)) => a,
            Ok(None) => {
                self.hasher.burn(client, password).await?;
                return Ok(Outcome::UnknownUser);
            }
            Err(e) => {
                if matches!(e, DirectoryError::InvalidData(_)) {
                    // Already an error: a refused burn changes nothing about the answer, and
                    // the data problem is what the operator must see.
                    let _ = self.hasher.burn(client, password).await;
                }
                return Err(e);
            }
        };
        if account.kind != PrincipalType::Individual {
            self.hasher.burn(client, password).await?;
            return Ok(Outcome::Rejected(RejectReason::NotLoginable));
        }
        if !account.has_secret_column {
            let _ = self.hasher.burn(client, password).await;
            return Err(invalid("query-login returned no column `secret`".into()));
        }
        let Some(stored) = account.secret.as_ref() else {
            let _ = self.hasher.burn(client, password).await;
            return Err(invalid(format!(
                "query-login: column secret is NULL for {:?}",
                account.name
            )));
        };
        if password.is_empty() {
            // Never verified: some schemes ({PLAIN} of an empty string) would accept it.
            self.hasher.burn(client, password).await?;
            return Ok(Outcome::Rejected(RejectReason::WrongSecret));
        }
        match self
            .hasher
            .check(
                client,
                &secret::with_default_scheme(stored.as_str(), self.default_scheme.as_deref()),
                password,
            )
            .await?
        {
            Verdict::Match => Ok(Outcome::Authenticated(self.identity(account).await?)),
            Verdict::Mismatch => Ok(Outcome::Rejected(RejectReason::WrongSecret)),
            Verdict::Unverifiable(e) => {
                tracing::error!(directory = %self.name, account = %account.name, error = %e, "stored secret cannot be verified");
                Ok(Outcome::Rejected(RejectReason::UnverifiableSecret))
            }
        }
    }

    async fn lookup(&self, name: &str) -> Result<Option<Identity>, DirectoryError> {
        match self.find(name).await? {
            Some(account) => Ok(Some(self.identity(account).await?)),
            None => Ok(None),
        }
    }

    async fn health(&self) -> Result<(), DirectoryError> {
        match tokio::time::timeout(self.timeout, self.backend.ping()).await {
            Ok(result) => result.map_err(|e| classify("health", e)),
            Err(_) => Err(DirectoryError::Unavailable(format!(
                "no answer within {:?}",
                self.timeout
            ))),
        }
    }

    fn pools(&self) -> Vec<postern_directory::PoolStats> {
        let (open, idle) = self.pool_stats();
        vec![postern_directory::PoolStats {
            pool: "main",
            in_use: (open as usize).saturating_sub(idle),
            idle,
        }]
    }
}
