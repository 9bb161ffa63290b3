//! Searches through the service pool, entries as plain maps, and the mapping of LDAP errors
//! onto the directory contract: anything that is not an answer is an outage.

use std::collections::HashMap;
use std::panic::AssertUnwindSafe;

use ldap3::{ResultEntry, Scope, SearchEntry, SearchOptions, SearchResult};
use postern_directory::DirectoryError;

use crate::conn::unavailable;
use crate::pool::Pool;

/// LDAP result codes this plugin tells apart (RFC 4511 appendix A).
pub mod rc {
    pub const SUCCESS: u32 = 0;
    pub const SIZE_LIMIT_EXCEEDED: u32 = 4;
    pub const NO_SUCH_OBJECT: u32 = 32;
    pub const INVALID_CREDENTIALS: u32 = 49;
    pub const INSUFFICIENT_ACCESS: u32 = 50;
    pub const UNWILLING_TO_PERFORM: u32 = 53;
}

/// One entry, attribute names lowercased (servers answer with the schema's spelling, which
/// need not be the configured one).
#[derive(Debug, Clone, Default)]
pub struct Entry {
    pub dn: String,
    attrs: HashMap<String, Vec<String>>,
    bin: HashMap<String, Vec<Vec<u8>>>,
}

fn lower<V>(m: HashMap<String, V>) -> HashMap<String, V> {
    m.into_iter()
        .map(|(k, v)| (k.to_ascii_lowercase(), v))
        .collect()
}

impl Entry {
    fn from_search(e: SearchEntry) -> Entry {
        Entry {
            dn: e.dn,
            attrs: lower(e.attrs),
            bin: lower(e.bin_attrs),
        }
    }

    /// Text values of `attr` (empty when absent or unreadable).
    pub fn values(&self, attr: &str) -> &[String] {
        self.attrs
            .get(&attr.to_ascii_lowercase())
            .map(Vec::as_slice)
            .unwrap_or(&[])
    }

    pub fn first(&self, attr: &str) -> Option<&str> {
        self.values(attr)
            .iter()
            .map(String::as_str)
            .find(|v| !v.is_empty())
    }

    /// Every value of `attr`, text or not (a `userPassword` need not be UTF-8; a non-UTF-8
    /// value then fails as a malformed hash, never as a match).
    pub fn raw_values(&self, attr: &str) -> Vec<String> {
        let key = attr.to_ascii_lowercase();
        let mut out = self.values(attr).to_vec();
        if let Some(bin) = self.bin.get(&key) {
            out.extend(bin.iter().map(|b| String::from_utf8_lossy(b).into_owned()));
        }
        out
    }
}

/// What a search returned.
pub struct Found {
    pub entries: Vec<Entry>,
    /// The server stopped at the size limit: there were more.
    pub truncated: bool,
    /// The base DN does not exist.
    pub no_such_base: bool,
}

fn decode(entries: Vec<ResultEntry>) -> Result<Vec<Entry>, DirectoryError> {
    let mut out = Vec::with_capacity(entries.len());
    for re in entries {
        // Referrals and intermediate messages are not entries; this plugin does not chase
        // referrals (a login must not be sent to a server the operator did not name).
        if re.is_ref() || re.is_intermediate() {
            continue;
        }
        // `SearchEntry::construct` panics on a malformed entry; a bad answer from the
        // server must be an error for this login, not a panic.
        let e = std::panic::catch_unwind(AssertUnwindSafe(|| SearchEntry::construct(re)))
            .map_err(|_| DirectoryError::InvalidData("malformed search entry".into()))?;
        out.push(Entry::from_search(e));
    }
    Ok(out)
}

/// Searches with a service connection, bounded by `limit` entries and the pool's timeout. A
/// connection taken from the idle list that fails at the transport level (the server was
/// restarted since) is replaced once by a fresh one before the error counts.
pub async fn search(
    pool: &Pool,
    timeout: std::time::Duration,
    base: &str,
    scope: Scope,
    filter: &str,
    attrs: &[&str],
    limit: i32,
) -> Result<Found, DirectoryError> {
    for attempt in 0..2 {
        let mut conn = pool.get().await?;
        let op = conn
            .ldap
            .with_search_options(SearchOptions::new().sizelimit(limit))
            .with_timeout(timeout)
            .search(base, scope, filter, attrs.to_vec());
        let result = tokio::time::timeout(timeout, op).await;
        let SearchResult(entries, res) = match result {
            Ok(Ok(r)) => r,
            Ok(Err(e)) => {
                if conn.reused && attempt == 0 {
                    continue;
                }
                return Err(unavailable("LDAP search", e));
            }
            Err(_) => return Err(unavailable("LDAP search", "timed out")),
        };
        conn.release();
        return match res.rc {
            rc::SUCCESS | rc::SIZE_LIMIT_EXCEEDED => Ok(Found {
                entries: decode(entries)?,
                truncated: res.rc == rc::SIZE_LIMIT_EXCEEDED,
                no_such_base: false,
            }),
            rc::NO_SUCH_OBJECT => Ok(Found {
                entries: Vec::new(),
                truncated: false,
                no_such_base: true,
            }),
            other => Err(DirectoryError::Unavailable(format!(
                "LDAP search failed (rc {other}: {})",
                res.text
            ))),
        };
    }
    Err(DirectoryError::Unavailable("LDAP search failed".into()))
}
