//! `postern auth test USER`: the counterpart of `doveadm auth test`. Asks the running daemon
//! over its dovecot-auth listener, as Postfix would, then reads from the store what the answer
//! rests on: the directory that holds the account, its roles, and the permissions the
//! service requires.

use std::io::{BufRead, IsTerminal, Read};
use std::path::PathBuf;

use zeroize::Zeroizing;

use super::client::{self, AuthAnswer};
use super::output::out;
use super::{load_valid, Failure};
use crate::authz::{Permission, Policy, Service, Subject};
use crate::config::{Config, Protocol};
use crate::runtime;

pub struct Request {
    pub config: Option<PathBuf>,
    pub user: String,
    pub service: String,
    pub mechanism: String,
    pub socket: Option<String>,
}

pub async fn run(r: Request) -> Result<(), Failure> {
    let config = load_valid(&client::daemon_source(r.config.as_deref()))?;
    let at = match &r.socket {
        Some(s) => s.clone(),
        None => client::listener(&config, Protocol::DovecotAuth)
            .map(|l| client::address_of(&l.bind))
            .ok_or_else(|| {
                Failure::runtime(client::ClientError::NoListener("dovecot-auth").to_string())
            })?,
    };
    let password = read_password()?;
    let (user, service, mechanism) = (r.user.clone(), r.service.clone(), r.mechanism.clone());
    let target = at.clone();
    let answer = tokio::task::spawn_blocking(move || {
        client::dovecot_auth(&target, &service, &mechanism, &user, &password)
    })
    .await
    .map_err(|e| Failure::runtime(format!("auth test: {e}")))?
    .map_err(|e| Failure::runtime(e.to_string()))?;
    let (ok, fields) = match answer {
        AuthAnswer::Ok(f) => (true, f),
        AuthAnswer::Fail(f) => (false, f),
    };
    let outcome = match ok {
        true => "succeeded",
        false if fields.iter().any(|f| f == "temp") => "failed temporarily",
        false => "failed",
    };
    out!("passdb: {} auth {outcome} (via {at})", r.user)?;
    if !fields.is_empty() {
        out!("extra fields:")?;
        for f in &fields {
            out!("  {f}")?;
        }
    }
    let name = fields
        .iter()
        .find_map(|f| f.strip_prefix("user="))
        .unwrap_or(&r.user)
        .to_string();
    describe(&config, &name, &r.service, &fields).await?;
    match ok {
        true => Ok(()),
        false if fields.iter().any(|f| f == "temp") => Err(Failure {
            code: 2,
            lines: Vec::new(),
        }),
        false => Err(Failure {
            code: 1,
            lines: Vec::new(),
        }),
    }
}

/// What the store says of the account: directory, roles, and the service's permissions.
async fn describe(
    config: &Config,
    name: &str,
    service: &str,
    _fields: &[String],
) -> Result<(), Failure> {
    let allowed: Vec<String> = config
        .listener
        .iter()
        .flat_map(|l| l.services.iter().cloned())
        .collect();
    let mut needed = vec![Permission::known("authenticate")];
    match Service::resolve(service, &allowed) {
        Ok(s) => needed.extend(s.requires()),
        Err(e) => {
            out!("service: {e}")?;
            return Ok(());
        }
    }
    let store = match runtime::open_store(config).await {
        Ok(s) => s,
        Err(e) => return out!("store: cannot be read here ({e})"),
    };
    let account = match store.account(name).await {
        Ok(Some(a)) => a,
        Ok(None) => return out!("directory: {name:?} is not recorded in the store"),
        Err(e) => return out!("store: {e}"),
    };
    out!("directory: {}", account.origin)?;
    let grant = match store
        .snapshot()
        .await
        .map_err(|e| e.to_string())
        .and_then(|s| {
            let policy = Policy::compile(&s).map_err(|e| e.join("; "))?;
            let subject =
                Subject::from_account(&account.account, &[]).map_err(|e| e.to_string())?;
            policy.evaluate(&subject).map_err(|e| e.to_string())
        }) {
        Ok(g) => g,
        Err(e) => return out!("roles: cannot be computed ({e})"),
    };
    out!(
        "roles: {}",
        grant.roles.iter().cloned().collect::<Vec<_>>().join(", ")
    )?;
    for p in needed {
        let state = match grant.effective.contains(p) {
            true => "granted",
            false => "MISSING",
        };
        out!("service {service} requires {}: {state}", p.name())?;
    }
    Ok(())
}

/// From the terminal without echo, else the first line of stdin.
fn read_password() -> Result<Zeroizing<String>, Failure> {
    let stdin = std::io::stdin();
    let tty = stdin.is_terminal();
    let mut line = Zeroizing::new(String::new());
    if tty {
        eprint!("Password: ");
        let _ = std::process::Command::new("stty").arg("-echo").status();
        let read = stdin.lock().read_line(&mut line);
        let _ = std::process::Command::new("stty").arg("echo").status();
        eprintln!();
        read.map_err(|e| Failure::user(vec![format!("terminal: {e}")]))?;
    } else {
        stdin
            .lock()
            .take(64 * 1024)
            .read_line(&mut line)
            .map_err(|e| Failure::user(vec![format!("stdin: cannot read a password: {e}")]))?;
    }
    let trimmed = Zeroizing::new(line.trim_end_matches(['\r', '\n']).to_string());
    if trimmed.is_empty() {
        return Err(Failure::user(vec!["empty password".into()]));
    }
    Ok(trimmed)
}
