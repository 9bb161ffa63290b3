//! Authorization: the permission table, the effective-permission engine and its explanation.

pub mod engine;
mod explain;
pub mod permissions;
#[cfg(test)]
mod tests;

pub use engine::{AuthzError, Grant, Pair, Policy, Scope, Spec, Subject};
pub use permissions::{is_permission, permission_hint, PermSet, Permission};

/// The service a client named (SASL `service=`, saslauthd's service, nginx's protocol), resolved
/// to what it requires beside `authenticate`. Front-ends make one before they call the engine,
/// so a name no rule knows cannot reach a login and pass with `authenticate` alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Service<'a> {
    name: &'a str,
    requires: Option<Permission>,
}

/// A service name no rule maps and the listener does not allow.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown service {0:?}")]
pub struct UnknownService(pub String);

impl<'a> Service<'a> {
    /// Postern's own web login.
    pub const HTTP: Service<'static> = Service {
        name: "http",
        requires: None,
    };

    /// Resolves a service name. The names real clients send (Postfix and Exim: `smtp`;
    /// nginx: `imap`, `pop3`, `smtp`; Cyrus: `imap`, `pop`, `sieve`; Dovecot: `imap`, `pop3`,
    /// `submission`, `sieve`) and their TLS variants map to their permission; a name in
    /// `allowed` (the listener's `services`) requires `authenticate` only; anything else is
    /// refused.
    pub fn resolve(name: &'a str, allowed: &[String]) -> Result<Service<'a>, UnknownService> {
        // Compared without case, in place: a lower-cased copy per login was an allocation.
        const KNOWN: &[(&str, Option<&str>)] = &[
            ("imap", Some("imap-authenticate")),
            ("imaps", Some("imap-authenticate")),
            ("pop", Some("pop3-authenticate")),
            ("pop3", Some("pop3-authenticate")),
            ("pop3s", Some("pop3-authenticate")),
            ("sieve", Some("sieve-authenticate")),
            ("managesieve", Some("sieve-authenticate")),
            ("smtp", Some("email-send")),
            ("smtps", Some("email-send")),
            ("esmtp", Some("email-send")),
            ("submission", Some("email-send")),
            ("submissions", Some("email-send")),
            ("http", None),
            ("https", None),
        ];
        let permission = match KNOWN.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)) {
            Some((_, permission)) => *permission,
            None if allowed.iter().any(|a| a.eq_ignore_ascii_case(name)) => None,
            None => return Err(UnknownService(name.to_string())),
        };
        Ok(Service {
            name,
            requires: permission.and_then(Permission::from_name),
        })
    }

    pub fn name(&self) -> &'a str {
        self.name
    }

    /// The permission required beside `authenticate`, if any.
    pub fn requires(&self) -> Option<Permission> {
        self.requires
    }
}

#[cfg(test)]
mod service_tests {
    use super::*;

    #[test]
    fn services_resolve_or_are_refused() {
        let send = Permission::from_name("email-send");
        for name in [
            "smtp",
            "SMTP",
            "smtps",
            "esmtp",
            "submission",
            "submissions",
        ] {
            assert_eq!(
                Service::resolve(name, &[]).unwrap().requires(),
                send,
                "{name}"
            );
        }
        assert_eq!(
            Service::resolve("pop", &[]).unwrap().requires(),
            Permission::from_name("pop3-authenticate")
        );
        assert_eq!(Service::resolve("http", &[]).unwrap().requires(), None);
        for name in ["smtp\0x", "ftp", "", "lmtp"] {
            assert_eq!(
                Service::resolve(name, &[]),
                Err(UnknownService(name.to_string())),
                "{name}"
            );
        }
        let allowed = vec!["Webmail".to_string()];
        assert_eq!(
            Service::resolve("webmail", &allowed).unwrap().requires(),
            None
        );
    }
}
