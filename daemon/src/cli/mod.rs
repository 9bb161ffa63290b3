//! The command line (SPEC §1). Exit codes: 0 ok, 1 user error, 2 runtime failure; errors are
//! one line each on stderr, naming file, key and reason.

mod apply;
mod auth_test;
mod checkpassword;
mod client;
mod credential;
mod explain;
mod generate;
mod live;
mod oauth;
pub mod output;
mod principal;
mod prune;
mod serve;
mod status;
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
    about = "Authentication daemon for mail servers and web applications",
    after_help = "Examples:\n  postern serve --config /etc/postern/postern.toml\n  postern check-config --config /etc/postern/postern.toml\n  postern status\n  postern auth test alice --service imap\n  postern explain alice email-send\n\nExit codes: 0 ok, 1 user error, 2 runtime failure. Each command's --help has examples;\nman postern-COMMAND, man postern.toml."
)]
pub struct Args {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the daemon (embedded defaults without --config and ./postern.toml).
    #[command(
        after_help = "Examples:\n  postern serve --config /etc/postern/postern.toml\n  POSTERN_ADMIN_PASSWORD=secret postern serve     # embedded defaults, data under ./data\n\nThe first start on an empty store creates the account admin and prints its password (or\ntakes POSTERN_ADMIN_PASSWORD)."
    )]
    Serve {
        /// The configuration file, e.g. --config /etc/postern/postern.toml (default:
        /// ./postern.toml, else the embedded defaults).
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
    },
    /// Validate a configuration and print every error with its key path.
    #[command(
        after_help = "Examples:\n  postern check-config --config /etc/postern/postern.toml\n  postern check-config --config /etc/postern/postern.toml --live\n\nExit 1 with one line per problem: FILE: KEY: REASON."
    )]
    CheckConfig {
        /// The configuration file to check, e.g. --config /etc/postern/postern.toml.
        #[arg(long, value_name = "FILE")]
        config: PathBuf,
        /// Also connect to each SQL directory's database and check its queries there, e.g.
        /// --live.
        #[arg(long)]
        live: bool,
    },
    /// Create or update objects of the internal store from a provisioning file (idempotent;
    /// `-` reads stdin).
    #[command(
        after_help = "Examples:\n  postern apply users.toml\n  postern apply --config /etc/postern/postern.toml /etc/postern/provision.toml\n  generate-users | postern apply -\n  postern apply --prune --yes provision.toml\n\nThe file's format: /usr/share/doc/postern/examples/provision.example.toml."
    )]
    Apply {
        /// The daemon's configuration, to find its store, e.g. --config
        /// /etc/postern/postern.toml (default: ./postern.toml, else the embedded defaults).
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
        /// The provisioning file (TOML): tenants, roles, accounts, groups, API keys, app
        /// passwords, OAuth clients, defaults. E.g. users.toml.
        provision: PathBuf,
        /// Also delete what the file no longer names, within the kinds it covers (listed
        /// first, then asked), e.g. --prune.
        #[arg(long)]
        prune: bool,
        /// Prune without asking (needed without a terminal), e.g. --prune --yes.
        #[arg(long)]
        yes: bool,
    },
    /// Principals (accounts and groups) of the internal store.
    Principal {
        /// The daemon's configuration, to find its store, e.g. --config
        /// /etc/postern/postern.toml (default: ./postern.toml, else the embedded defaults).
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
        #[command(subcommand)]
        action: principal::PrincipalAction,
    },
    /// Set a principal's password (asked twice on a terminal, else one line of stdin).
    #[command(
        after_help = "Examples:\n  postern passwd alice\n  printf '%s\\n' \"$NEW_PASSWORD\" | postern passwd --config /etc/postern/postern.toml alice"
    )]
    Passwd {
        /// The daemon's configuration, to find its store, e.g. --config
        /// /etc/postern/postern.toml (default: ./postern.toml, else the embedded defaults).
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
        name: String,
    },
    /// Roles of the internal store.
    Role {
        /// The daemon's configuration, to find its store, e.g. --config
        /// /etc/postern/postern.toml (default: ./postern.toml, else the embedded defaults).
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
        #[command(subcommand)]
        action: principal::RoleAction,
    },
    /// A principal's API keys.
    ApiKey {
        /// The daemon's configuration, to find its store, e.g. --config
        /// /etc/postern/postern.toml (default: ./postern.toml, else the embedded defaults).
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
        #[command(subcommand)]
        action: credential::CredentialAction,
    },
    /// A principal's app passwords.
    AppPassword {
        /// The daemon's configuration, to find its store, e.g. --config
        /// /etc/postern/postern.toml (default: ./postern.toml, else the embedded defaults).
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
        #[command(subcommand)]
        action: credential::CredentialAction,
    },
    /// Read a password from stdin and print its hash (argon2id; the form `secret` takes).
    #[command(
        after_help = "Schemes written: argon2id (argon2id, ARGON2ID, argon2); {ARGON2ID} prints Dovecot's\n{ARGON2ID}-prefixed form, as `doveadm pw -s ARGON2ID` does.\nSchemes accepted as stored hashes (not written): argon2, bcrypt ({BLF-CRYPT}), scrypt,\nyescrypt, PBKDF2, SHA-crypt ({SHA512-CRYPT}, {SHA256-CRYPT}), MD5-crypt ({MD5-CRYPT}),\nLDAP and Dovecot {SSHA512}, {SHA512}, {SSHA256}, {SHA256}, {SSHA}, {SHA}, {SMD5}, {MD5},\n{SCRAM-SHA-1}, {SCRAM-SHA-256}, {PLAIN}.\n\nExamples:\n  printf '%s' 'the password' | postern hash-password\n  printf '%s' 'the password' | postern hash-password --scheme '{ARGON2ID}'"
    )]
    HashPassword {
        /// The scheme of the new hash, e.g. --scheme argon2id or --scheme '{ARGON2ID}'.
        #[arg(long, default_value = "argon2id")]
        scheme: String,
    },
    /// Print a principal's effective permissions, or why one permission is granted or denied.
    #[command(
        after_help = "Examples:\n  postern explain alice\n  postern explain alice@example.org email-send --config /etc/postern/postern.toml"
    )]
    Explain {
        /// The daemon's configuration, to find its store, e.g. --config
        /// /etc/postern/postern.toml.
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
        /// The account's name or address, e.g. alice.
        name: String,
        /// One permission to explain, e.g. email-send.
        permission: Option<String>,
    },
    /// Ask the running daemon how it is (version, listeners, store, directories, sessions,
    /// hash queue), then list what the failed-login throttle has locked, from the store.
    #[command(
        after_help = "Examples:\n  postern status\n  postern status --config /etc/postern/postern.toml\n\nExit 2 with one line when the daemon does not answer on its HTTP listener."
    )]
    Status {
        /// The daemon's configuration, to find its listeners and store (default:
        /// ./postern.toml, else /etc/postern/postern.toml), e.g. --config /etc/postern/postern.toml.
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
    },
    /// Ask the running daemon about a login, as a mail server would.
    #[command(subcommand)]
    Auth(AuthCommand),
    /// Write man pages (man8/, man5/) and shell completions (completions/) into DIR, from
    /// these very definitions (the package build runs it).
    #[command(hide = true)]
    GenerateDocs {
        /// Where to write, e.g. target/docs.
        dir: PathBuf,
    },
    /// Lift the failed-login locks of an account name or a client address (IPv6: its /64).
    #[command(
        after_help = "Examples:\n  postern unlock alice\n  postern unlock 192.0.2.7 --config /etc/postern/postern.toml\n  postern unlock 2001:db8::1           # its /64"
    )]
    Unlock {
        /// The daemon's configuration, to find its store, e.g. --config
        /// /etc/postern/postern.toml.
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
        /// An account name, or a client address, e.g. alice or 192.0.2.7.
        target: String,
    },
    /// The OAuth server's signing keys.
    Keys {
        #[command(subcommand)]
        action: oauth::KeysAction,
    },
    /// OAuth clients: add (secret printed once), list, remove.
    OauthClient {
        #[command(subcommand)]
        action: oauth::ClientAction,
    },
}

#[derive(Debug, Subcommand)]
pub enum AuthCommand {
    /// Check USER's password with the running daemon over its dovecot-auth listener, like
    /// `doveadm auth test`: prints the outcome, the directory that holds the account, its
    /// roles and the permissions the service requires. The password is read from the
    /// terminal (not echoed) or the first line of stdin.
    #[command(
        after_help = "Examples:\n  postern auth test alice\n  postern auth test alice@example.org --service imap --mechanism login\n  printf '%s\\n' \"$PW\" | postern auth test alice --config /etc/postern/postern.toml\n\nExit 0: accepted; 1: refused; 2: temporary failure, or the daemon does not answer."
    )]
    Test {
        /// The daemon's configuration, to find its dovecot-auth listener and store (default:
        /// ./postern.toml, else /etc/postern/postern.toml), e.g. --config /etc/postern/postern.toml.
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
        /// The service named in the request (smtp, imap, pop3, sieve, submission, or one
        /// of a listener's `services`), e.g. --service imap.
        #[arg(long, default_value = "smtp")]
        service: String,
        /// The SASL mechanism: plain or login, e.g. --mechanism login.
        #[arg(long, default_value = "plain")]
        mechanism: String,
        /// Ask this listener instead of the configuration's first dovecot-auth one, e.g.
        /// --socket unix:/run/postern/auth or --socket 127.0.0.1:8481.
        #[arg(long, value_name = "ADDRESS")]
        socket: Option<String>,
        /// The account name, e.g. alice or alice@example.org.
        user: String,
    },
    /// The checkpassword interface for Dovecot's `passdb checkpassword`: reads
    /// `user\0password\0` on descriptor 3, asks the running daemon, and on success runs the
    /// reply program Dovecot passes with USER set; exit 1 refused, 111 temporary failure.
    #[command(
        after_help = "Examples:\n  # dovecot.conf\n  passdb {\n    driver = checkpassword\n    args = /usr/sbin/postern auth checkpassword --socket unix:/run/postern/dovecot-auth\n  }"
    )]
    Checkpassword {
        /// The daemon's configuration, to find its dovecot-auth listener, e.g. --config
        /// /etc/postern/postern.toml (not needed with --socket).
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
        /// The dovecot-auth listener to ask, e.g. --socket unix:/run/postern/dovecot-auth.
        #[arg(long, value_name = "ADDRESS")]
        socket: Option<String>,
        /// The service the login is for, e.g. --service pop3 (default: Dovecot's SERVICE
        /// variable, else imap).
        #[arg(long)]
        service: Option<String>,
        /// The reply program and its arguments (Dovecot appends its checkpassword-reply),
        /// e.g. /usr/lib/dovecot/checkpassword-reply.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        reply: Vec<String>,
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
        Command::Status { config } => tokio_runtime()?.block_on(status::run(config)),
        Command::GenerateDocs { dir } => generate::run(&dir),
        Command::Auth(AuthCommand::Test {
            config,
            service,
            mechanism,
            socket,
            user,
        }) => tokio_runtime()?.block_on(auth_test::run(auth_test::Request {
            config,
            user,
            service,
            mechanism,
            socket,
        })),
        Command::Auth(AuthCommand::Checkpassword {
            config,
            socket,
            service,
            reply,
        }) => checkpassword::run(checkpassword::Request {
            config,
            socket,
            service,
            reply,
        }),
        Command::Unlock { config, target } => {
            tokio_runtime()?.block_on(throttle::unlock(config, target))
        }
        Command::Keys { action } => tokio_runtime()?.block_on(oauth::keys(action)),
        Command::OauthClient { action } => tokio_runtime()?.block_on(oauth::clients(action)),
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
    // Dovecot's `doveadm pw -s ARGON2ID` prints `{ARGON2ID}$argon2id$…`: with the braces,
    // so does this, for a passwd-file or a `{SCHEME}` column an operator migrates.
    let braced = scheme.starts_with('{') && scheme.ends_with('}');
    let name = scheme.trim_start_matches('{').trim_end_matches('}');
    if !(name.eq_ignore_ascii_case("argon2id") || name.eq_ignore_ascii_case("argon2")) {
        let verified = postern_directory::secret::is_known_tag(name);
        return Err(Failure::user(vec![match verified {
            true => format!(
                "--scheme: {scheme} hashes are accepted as stored (`secret`, LDAP, SQL) but new \
                 hashes are argon2id: use --scheme argon2id or {{ARGON2ID}}"
            ),
            false => format!(
                "--scheme: unknown scheme {scheme:?}; new hashes are argon2id (argon2id, ARGON2ID, {{ARGON2ID}})"
            ),
        }]));
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
    match braced {
        true => output::out!("{{ARGON2ID}}{hash}"),
        false => output::out!("{hash}"),
    }
}

/// Logging to stderr (journald captures it), text or JSON.
pub fn init_logging(c: &config::LogConfig) {
    if tracing::subscriber::set_global_default(log_subscriber(c, std::io::stderr)).is_err() {
        // Already initialised (tests): keep the first subscriber.
    }
}

/// The daemon's log subscriber writing to `writer`: the filter of `RUST_LOG` or `[log] level`,
/// text or JSON lines.
pub fn log_subscriber<W>(
    c: &config::LogConfig,
    writer: W,
) -> Box<dyn tracing::Subscriber + Send + Sync>
where
    W: for<'w> tracing_subscriber::fmt::MakeWriter<'w> + Send + Sync + 'static,
{
    let filter = std::env::var("RUST_LOG")
        .ok()
        .and_then(|f| f.parse::<tracing_subscriber::EnvFilter>().ok())
        .or_else(|| c.level.parse().ok())
        .unwrap_or_else(|| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer);
    match c.format {
        config::LogFormat::Json => Box::new(builder.json().finish()),
        config::LogFormat::Text => Box::new(builder.with_ansi(false).finish()),
    }
}
