//! Ownership of unix socket files.

use super::UnixOptions;

pub(super) fn chown(path: &std::path::Path, o: &UnixOptions) -> Result<(), String> {
    let uid = match &o.user {
        Some(u) => Some(lookup_id("/etc/passwd", u)?),
        None => None,
    };
    let gid = match &o.group {
        Some(g) => Some(lookup_id("/etc/group", g)?),
        None => None,
    };
    std::os::unix::fs::chown(path, uid, gid).map_err(|e| format!("chown: {e}"))
}

/// Resolves a user or group name (or number) from the local files; systemd deployments give
/// the socket's group through these files, and NSS modules are out of reach without libc calls.
fn lookup_id(file: &str, name: &str) -> Result<u32, String> {
    if let Ok(n) = name.parse() {
        return Ok(n);
    }
    let text = std::fs::read_to_string(file).map_err(|e| format!("{file}: {e}"))?;
    text.lines()
        .map(|l| l.split(':').collect::<Vec<_>>())
        .find(|f| f.first() == Some(&name))
        .and_then(|f| f.get(2).and_then(|id| id.parse().ok()))
        .ok_or_else(|| format!("{name:?} not found in {file}"))
}
