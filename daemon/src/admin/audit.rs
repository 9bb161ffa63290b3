//! One audit line per change made through the management operations: who, what, which
//! object, never a secret (objects are named by kind and key only).

use super::Actor;

/// Logs a committed change on the `postern::audit` target.
pub fn log(actor: &Actor, action: &'static str, kind: &'static str, key: &str) {
    tracing::info!(
        target: "postern::audit",
        actor = %actor.name.escape_debug(),
        actor_tenant = actor.tenant.as_deref().unwrap_or("-"),
        action,
        kind,
        object = %key.escape_debug(),
        "management change"
    );
}
