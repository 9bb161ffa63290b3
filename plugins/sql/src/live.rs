//! `postern check-config --live`: the checks only the database can answer. Each query is
//! prepared (syntax errors, unknown tables and columns, parameter count), its columns are
//! compared with what Postern reads, and it is run once with a login name nobody has.

use postern_directory::Directory;

use crate::error::classify;
use crate::SqlDirectory;

/// A problem found against the live database: the key of the directory's section, and why.
/// The same shape as the static checks' problems, so the daemon reports both alike.
pub type LiveProblem = postern_directory::ConfigProblem;

/// Bound to each query by the live check; matches no real account.
const PROBE: &str = "postern-check-config.invalid";

impl SqlDirectory {
    /// Every problem found; empty when the database accepts all queries.
    pub async fn check_live(&self) -> Vec<LiveProblem> {
        let mut problems = Vec::new();
        if let Err(e) = self.health().await {
            problems.push(LiveProblem::new(
                "url",
                format!("cannot reach the database: {e}"),
            ));
            return problems;
        }
        let queries = [
            Some(&self.login),
            self.member_of.as_ref(),
            self.emails.as_ref(),
        ];
        for query in queries.into_iter().flatten() {
            let mut problem = |reason: String| problems.push(LiveProblem::new(query.key, reason));
            let shape =
                match tokio::time::timeout(self.timeout, self.backend.shape(&query.sql)).await {
                    Ok(Ok(shape)) => shape,
                    Ok(Err(e)) => {
                        problem(format!(
                            "rejected by the database: {}",
                            classify(query.key, e)
                        ));
                        continue;
                    }
                    Err(_) => {
                        problem(format!("not prepared within {:?}", self.timeout));
                        continue;
                    }
                };
            // MySQL counts every `?`; PostgreSQL and SQLite count distinct parameters.
            if let Some(n) = shape.parameters {
                if n != query.binds {
                    problem(format!(
                        "the database sees {n} parameters; Postern binds the login name to {}",
                        query.binds
                    ));
                }
            }
            if query.key == "query-login" {
                for column in ["name", "secret"] {
                    if !shape.columns.iter().any(|c| c == column) {
                        problem(format!(
                            "returns no column `{column}` (columns: {})",
                            shape.columns.join(", ")
                        ));
                    }
                }
            } else if shape.columns.is_empty() {
                problem("returns no column".into());
            }
            if let Err(e) = self.run(query, PROBE, 1).await {
                problem(format!("fails when run: {e}"));
            }
        }
        problems
    }
}
