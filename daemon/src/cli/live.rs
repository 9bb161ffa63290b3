//! `postern check-config --live`: after the static checks, ask each external directory's
//! backend what only it can answer. For SQL directories: can we connect, does the database
//! accept each query (syntax, tables, columns, parameter count), does `query-login` return the
//! columns Postern reads. For OIDC directories: discovery (issuer exact, PKCE S256, the
//! endpoint `token-validation` needs) and the key set. Nothing is written anywhere.

use postern_directory::secret::Hasher;
use postern_directory::ConfigProblem;

use super::Failure;
use crate::config::{Config, ConfigError, DirectoryConfig};

/// Every problem as one `FILE: directory.NAME.KEY: REASON` line; exit 1 when there are any.
pub fn check(config: &Config, file: &str) -> Result<(), Failure> {
    let runtime =
        super::tokio_runtime().map_err(|e| Failure::runtime(format!("cannot start: {e}")))?;
    let lines = runtime.block_on(problems(config, file));
    if lines.is_empty() {
        Ok(())
    } else {
        Err(Failure::user(lines))
    }
}

async fn problems(config: &Config, file: &str) -> Vec<String> {
    let mut lines = Vec::new();
    for (name, directory) in &config.directory {
        let table = format!("directory.{name}");
        let line = |p: ConfigProblem| {
            let p = p.prefixed(&table);
            ConfigError::new(file, p.key, p.reason).to_string()
        };
        let sql = match directory {
            DirectoryConfig::Sql(sql) => sql,
            // Discovery and the key set, as a login would fetch them.
            DirectoryConfig::Oidc(oidc) => {
                match postern_oidc::OidcDirectory::new(
                    name,
                    oidc.clone(),
                    &config.server.public_url,
                    crate::runtime::oidc_clock(),
                ) {
                    Err(e) => lines.push(line(e)),
                    Ok(d) => lines.extend(d.check_live().await.into_iter().map(line)),
                }
                continue;
            }
            DirectoryConfig::Ldap(_) => continue,
        };
        // Verifications never run here: one hashing slot is plenty.
        match postern_sql::SqlDirectory::new(name, sql.clone(), Hasher::new(1)) {
            Err(e) => lines.push(line(e)),
            Ok(d) => lines.extend(d.check_live().await.into_iter().map(line)),
        }
    }
    lines
}
