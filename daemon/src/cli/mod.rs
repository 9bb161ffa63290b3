//! The command line (SPEC §1). Exit codes: 0 ok, 1 user error, 2 runtime failure; errors are
//! one line each on stderr, naming file, key and reason.

mod apply;
mod credential;
mod explain;
mod live;
pub mod output;
mod principal;
mod prune;
mod serve;
mod throttle;

use std::io::Read;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::config::{self, Config, Source};

#[derive(Debug, Parser)]
#[command(
    name = "postern",
    version,
    about = "Authentication daemon for mail servers and web applications"
)]
pub struct Args {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the daemon (embedded defaults without --config and ./postern.toml).
    Serve {
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Validate a configuration and print every error with its key path.
    CheckConfig {
        #[arg(long)]
        config: PathBuf,
        /// Also connect to each SQL directory's database and check its queries there.
        #[arg(long)]
        live: bool,
    },
    /// Create or update objects of the internal store from a provisioning file (idempotent;
    /// `-` reads stdin).
    Apply {
        #[arg(long)]
        config: Option<PathBuf>,
        provision: PathBuf,
        /// Also delete what the file no longer names, within the kinds it covers.
        #[arg(long)]
        prune: bool,
        /// Prune without asking.
        #[arg(long)]
        yes: bool,
    },
    /// Principals (accounts and groups) of the internal store.
    Principal {
        #[arg(long)]
        config: Option<PathBuf>,
        #[command(subcommand)]
        action: principal::PrincipalAction,
    },
    /// Set a principal's password (asked twice on a terminal, else one line of stdin).
    Passwd {
        #[arg(long)]
        config: Option<PathBuf>,
        name: String,
    },
    /// Roles of the internal store.
    Role {
        #[arg(long)]
        config: Option<PathBuf>,
        #[command(subcommand)]
        action: principal::RoleAction,
    },
    /// A principal's API keys.
    ApiKey {
        #[arg(long)]
        config: Option<PathBuf>,
        #[command(subcommand)]
        action: credential::CredentialAction,
    },
    /// A principal's app passwords.
    AppPassword {
        #[arg(long)]
        config: Option<PathBuf>,
        #[command(subcommand)]
        action: credential::CredentialAction,
    },
    /// Read a password from stdin and print its hash.
    HashPassword {
        #[arg(long, default_value = "argon2id")]
        scheme: String,
    },
    /// Print a principal's effective permissions, or why one permission is granted or denied.
    Explain {
        #[arg(long)]
        config: Option<PathBuf>,
        name: String,
        permission: Option<String>,
    },
    /// List what the failed-login throttle has locked (accounts, addresses), from the store.
    Status {
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Lift the failed-login locks of an account name or a client address (IPv6: its /64).
    Unlock {
        #[arg(long)]
        config: Option<PathBuf>,
        /// An account name, or a client address.
        target: String,
    },
}

/// A failure to report: its lines and exit code.
pub struct Failure {
    pub code: u8,
    pub lines: Vec<String>,
}

impl Failure {
    pub fn user(lines: Vec<String>) -> Self {
        Failure { code: 1, lines }
    }

    pub fn runtime(line: String) -> Self {
        Failure {
            code: 2,
            lines: vec![line],
        }
    }

    /// Stop here and exit 0 without a word: whoever read our output has gone.
    pub fn quiet() -> Self {
        Failure {
            code: 0,
            lines: Vec::new(),
        }
    }
}

impl From<crate::runtime::BuildError> for Failure {
    fn from(e: crate::runtime::BuildError) -> Self {
        Failure {
            code: e.exit_code(),
            lines: vec![e.to_string()],
        }
    }
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let result = match args.command {
        Command::CheckConfig { config, live } => load_valid(&Source::File(config.clone()))
            .and_then(|c| match live {
                true => live::check(&c, &config.display().to_string()),
                false => Ok(()),
            })
            .and_then(|_| output::out!("configuration is valid")),
        Command::HashPassword { scheme } => hash_password(&scheme),
        Command::Serve { config } => tokio_runtime()?.block_on(serve::run(config)),
        Command::Apply {
            config,
            provision,
            prune,
            yes,
        } => tokio_runtime()?.block_on(apply::run(config, provision, prune, yes)),
        Command::Principal { config, action } => {
            tokio_runtime()?.block_on(principal::principal(config, action))
        }
        Command::Passwd { config, name } => {
            tokio_runtime()?.block_on(principal::passwd(config, name))
        }
        Command::Role { config, action } => {
            tokio_runtime()?.block_on(principal::role(config, action))
        }
        Command::ApiKey { config, action } => tokio_runtime()?.block_on(credential::run(
            config,
            postern_internal::model::CredentialType::ApiKey,
            action,
        )),
        Command::AppPassword { config, action } => tokio_runtime()?.block_on(credential::run(
            config,
            postern_internal::model::CredentialType::AppPassword,
            action,
        )),
        Command::Explain {
            config,
            name,
            permission,
        } => tokio_runtime()?.block_on(explain::run(config, name, permission)),
        Command::Status { config } => tokio_runtime()?.block_on(throttle::status(config)),
        Command::Unlock { config, target } => {
            tokio_runtime()?.block_on(throttle::unlock(config, target))
        }
    };
    Ok(match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => {
            for line in f.lines {
                output::error_line(&line);
            }
            ExitCode::from(f.code)
        }
    })
}

fn tokio_runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?)
}

/// Loads and validates; every problem becomes one line.
pub fn load_valid(source: &Source) -> Result<Config, Failure> {
    config::load(source)
        .map_err(|errors| Failure::user(errors.iter().map(|e| e.to_string()).collect()))
}

fn hash_password(scheme: &str) -> Result<(), Failure> {
    if !scheme.eq_ignore_ascii_case("argon2id") {
        return Err(Failure::user(vec![format!(
            "--scheme: unsupported scheme {scheme:?}; new hashes are argon2id"
        )]));
    }
    let mut input = zeroize::Zeroizing::new(String::new());
    std::io::stdin()
        .read_to_string(&mut input)
        .map_err(|e| Failure::user(vec![format!("stdin: cannot read a password: {e}")]))?;
    let password = input.strip_suffix('\n').unwrap_or(&input);
    let password = password.strip_suffix('\r').unwrap_or(password);
    if password.is_empty() {
        return Err(Failure::user(vec!["stdin: empty password".into()]));
    }
    let hash = postern_directory::secret::hash_password(password.as_bytes())
        .map_err(|e| Failure::runtime(format!("hashing failed: {e}")))?;
    output::out!("{hash}")
}

/// Logging to stderr (journald captures it), text or JSON.
pub fn init_logging(c: &config::LogConfig) {
    let filter = std::env::var("RUST_LOG")
        .ok()
        .and_then(|f| f.parse::<tracing_subscriber::EnvFilter>().ok())
        .or_else(|| c.level.parse().ok())
        .unwrap_or_else(|| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let result = match c.format {
        config::LogFormat::Json => builder.json().try_init(),
        config::LogFormat::Text => builder.with_ansi(false).try_init(),
    };
    if result.is_err() {
        // Already initialised (tests): keep the first subscriber.
    }
}
