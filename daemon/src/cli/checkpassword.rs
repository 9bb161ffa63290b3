//! `postern auth checkpassword [--socket ADDRESS] REPLY-PROGRAM…`: the checkpassword
//! interface (qmail's, as Dovecot's `passdb checkpassword` drives it), answered by the running
//! daemon over its dovecot-auth listener. Dovecot writes `user\0password\0…` on descriptor 3;
//! on success this execs the reply program Dovecot named (its `checkpassword-reply`) with
//! `USER` set to the name Postern answered; a refusal exits 1, a temporary failure (the daemon
//! down, a directory outage) 111, as the interface defines.

use std::io::Read;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;

use zeroize::Zeroizing;

use super::client::{self, AuthAnswer};
use super::{load_valid, Failure};
use crate::config::Protocol;

/// checkpassword's exit codes.
const REFUSED: u8 = 1;
const TEMPORARY: u8 = 111;

pub struct Request {
    pub config: Option<PathBuf>,
    pub socket: Option<String>,
    pub service: Option<String>,
    pub reply: Vec<String>,
}

pub fn run(r: Request) -> Result<(), Failure> {
    let temporary = |line: String| Failure {
        code: TEMPORARY,
        lines: vec![line],
    };
    let at = match r.socket {
        Some(s) => s,
        None => {
            let config =
                load_valid(&client::daemon_source(r.config.as_deref())).map_err(|f| Failure {
                    code: TEMPORARY,
                    lines: f.lines,
                })?;
            client::listener(&config, Protocol::DovecotAuth)
                .map(|l| client::address_of(&l.bind))
                .ok_or_else(|| {
                    temporary(client::ClientError::NoListener("dovecot-auth").to_string())
                })?
        }
    };
    // Descriptor 3, through the file system so no unsafe code takes it over.
    let mut input = Zeroizing::new(Vec::new());
    std::fs::File::open("/dev/fd/3")
        .and_then(|f| f.take(4096).read_to_end(&mut input))
        .map_err(|e| temporary(format!("descriptor 3: {e}")))?;
    let mut fields = input.split(|b| *b == 0);
    let user = fields
        .next()
        .and_then(|u| std::str::from_utf8(u).ok())
        .filter(|u| !u.is_empty())
        .ok_or_else(|| Failure {
            code: REFUSED,
            lines: vec!["descriptor 3: no user name".into()],
        })?
        .to_string();
    let password = Zeroizing::new(
        fields
            .next()
            .and_then(|p| std::str::from_utf8(p).ok())
            .unwrap_or_default()
            .to_string(),
    );
    // Dovecot sets SERVICE (imap, pop3, …); a mail client never chooses it.
    let service = r
        .service
        .or_else(|| std::env::var("SERVICE").ok())
        .unwrap_or_else(|| "imap".into());
    match client::dovecot_auth(&at, &service, "plain", &user, &password) {
        Ok(AuthAnswer::Ok(fields)) => {
            let name = fields
                .iter()
                .find_map(|f| f.strip_prefix("user="))
                .unwrap_or(&user)
                .to_string();
            let Some((program, args)) = r.reply.split_first() else {
                return Ok(());
            };
            let e = std::process::Command::new(program)
                .args(args)
                .env("USER", name)
                .exec();
            Err(temporary(format!("cannot run {program}: {e}")))
        }
        Ok(AuthAnswer::Fail(fields)) if fields.iter().any(|f| f == "temp") => {
            Err(temporary(format!("{user}: temporary failure")))
        }
        Ok(AuthAnswer::Fail(_)) => Err(Failure {
            code: REFUSED,
            lines: Vec::new(),
        }),
        Err(e) => Err(temporary(e.to_string())),
    }
}
