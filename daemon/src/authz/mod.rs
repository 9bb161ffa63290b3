//! Authorization: the permission table, the effective-permission engine and its explanation.

pub mod engine;
mod explain;
pub mod permissions;
#[cfg(test)]
mod tests;

pub use engine::{AuthzError, Grant, Pair, Policy, Scope, Spec, Subject};
pub use permissions::{is_permission, permission_hint, PermSet, Permission};

/// The permission a front-end requires beside `authenticate` for a SASL `service`, if any.
pub fn service_permission(service: &str) -> Option<Permission> {
    let name = match service.to_ascii_lowercase().as_str() {
        "imap" => "imap-authenticate",
        "pop3" => "pop3-authenticate",
        "sieve" | "managesieve" => "sieve-authenticate",
        "smtp" | "submission" | "submissions" => "email-send",
        _ => return None,
    };
    Permission::from_name(name)
}
