//! `postern status` (what the failed-login throttle has locked, from the store) and
//! `postern unlock NAME|ADDRESS` (lift those locks: their rows are deleted, and the daemons
//! sharing the store lift them at their next sync, within a second).

use std::path::PathBuf;

use postern_internal::Store;

use super::{load_valid, Failure};
use crate::auth::clock::rfc3339;
use crate::auth::throttle::key::{fold, Block, Key};
use crate::config::{find_source, Config};
use crate::runtime;

async fn open(config: Option<PathBuf>) -> Result<(Config, Store), Failure> {
    let config = load_valid(&find_source(config.as_deref()))?;
    let store = runtime::open_store(&config).await?;
    Ok((config, store))
}

fn store_failure(e: postern_internal::StoreError) -> Failure {
    Failure::runtime(format!("store: {e}"))
}

pub async fn status(config: Option<PathBuf>) -> Result<(), Failure> {
    let (config, store) = open(config).await?;
    let limits = runtime::throttle_limits(&config.authentication);
    let now = runtime::system_clock().unix();
    let window = i64::try_from(limits.window.as_secs().max(1)).unwrap_or(i64::MAX);
    let (account, ip) = (i64::from(limits.per_account), i64::from(limits.per_ip));
    let rows = store
        .failure_rows(now, window, account, ip, account)
        .await
        .map_err(store_failure)?;
    let total = i64::from(limits.per_account_total);
    let mut shown = 0;
    for row in rows {
        let Some(key) = Key::from_stored(&row.key) else {
            continue;
        };
        let (target, what) = match &key {
            Key::Address(b) => (b.to_string(), "locked for every account".to_string()),
            Key::Pair(b, a) => (b.to_string(), format!("locked for account {a:?}")),
            Key::Account(a) if row.failures >= total => (
                a.to_string(),
                "under attack: open to its known-good addresses only".to_string(),
            ),
            Key::Account(a) => (
                a.to_string(),
                "locked for callers without an address".to_string(),
            ),
        };
        println!(
            "{}\t{target}\t{} failures\tuntil {}\t{what}",
            key.kind().as_str(),
            row.failures,
            rfc3339(row.until)
        );
        shown += 1;
    }
    if shown == 0 {
        println!("nothing is locked");
    }
    Ok(())
}

pub async fn unlock(config: Option<PathBuf>, target: String) -> Result<(), Failure> {
    if target.trim().is_empty() {
        return Err(Failure::user(vec![
            "unlock: give an account name or a client address".into(),
        ]));
    }
    let (_, store) = open(config).await?;
    // An address (or block) first: no account name parses as one.
    let block = Block::parse(&target);
    let account = fold(&target);
    let keys: Vec<String> = store
        .login_failure_keys()
        .await
        .map_err(store_failure)?
        .into_iter()
        .filter(|k| {
            Key::from_stored(k).is_some_and(|k| match block {
                Some(b) => k.block() == Some(b),
                None => k.account() == Some(&*account),
            })
        })
        .collect();
    let n = store
        .delete_login_failures(&keys)
        .await
        .map_err(store_failure)?;
    let what = match block {
        Some(b) => format!("address block {b}"),
        None => format!("account {account:?}"),
    };
    if n == 0 {
        println!("{what}: no failed logins recorded, nothing to unlock");
    } else {
        println!("{what}: unlocked ({n} counts deleted; running daemons follow within a second)");
    }
    Ok(())
}
