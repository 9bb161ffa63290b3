//! The `ldap` directory (SPEC §5): users found with a service account and checked either by
//! binding as them (`auth-method = "bind"`) or by verifying their stored `userPassword` here
//! (`auth-method = "lookup"`), with groups from `memberOf` or a `group-filter`.
//!
//! Construction is synchronous and never touches the network: a server that is down at
//! start is a temporary failure at login and readiness, and connections are (re)opened on
//! demand, so the directory recovers by itself when the server returns.

mod config;
mod conn;
mod directory;
pub mod escape;
mod groups;
mod pool;
mod search;

pub use config::{LdapAttributes, LdapAuthMethod, LdapConfig, OneOrMany};
pub use directory::{BuildError, LdapDirectory};
pub use pool::PoolStats;
