//! The checks the store runs on every write but cannot make alone: permission names belong to
//! the permission table, dates and networks to the engine.

use std::sync::Arc;

use postern_internal::model::Credential;
use postern_internal::store::Rules;

use super::clock::parse_rfc3339;
use super::login::parse_network;

/// `expiresAt` must be RFC 3339, every `allowedIps` entry an address or a network.
pub fn check_credential(c: &Credential) -> Result<(), String> {
    if let Some(t) = &c.expires_at {
        parse_rfc3339(t).map_err(|e| format!("expiresAt: {e}"))?;
    }
    for ip in &c.allowed_ips {
        if parse_network(ip).is_none() {
            return Err(format!("allowedIps: {ip:?} is not an address or network"));
        }
    }
    Ok(())
}

pub fn store_rules() -> Rules {
    Rules {
        is_permission: Arc::new(crate::authz::is_permission),
        permission_hint: Arc::new(crate::authz::permission_hint),
        check_credential: Arc::new(check_credential),
    }
}
