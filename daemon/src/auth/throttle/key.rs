//! What the throttle counts failures against: an address block, an account, or one account
//! from one address block. Addresses are aggregated per block (IPv6 /64, what one subscriber
//! gets; IPv4 /32), so an attacker cannot spread over the addresses of one network to multiply
//! its budget.

use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::Arc;

/// A client address as the throttle counts it: an IPv4 address, or an IPv6 /64.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Block(IpAddr);

impl Block {
    pub fn of(ip: IpAddr) -> Block {
        match ip {
            // An IPv4-mapped IPv6 address is the IPv4 client it maps.
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => Block(IpAddr::V4(v4)),
                None => {
                    let bits = u128::from(v6) & !((1u128 << 64) - 1);
                    Block(IpAddr::V6(Ipv6Addr::from(bits)))
                }
            },
            v4 => Block(v4),
        }
    }

    /// An address (`192.0.2.1`, `2001:db8::1`) or a block as written (`2001:db8::/64`).
    pub fn parse(text: &str) -> Option<Block> {
        let text = text.trim();
        let ip = match text.split_once('/') {
            Some((addr, _)) => text.parse::<ipnet::IpNet>().ok().map(|_| addr)?,
            None => text,
        };
        ip.parse().ok().map(Block::of)
    }
}

impl fmt::Display for Block {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            IpAddr::V4(v4) => write!(f, "{v4}"),
            IpAddr::V6(v6) => write!(f, "{v6}/64"),
        }
    }
}

/// Account keys are case-folded: `Alice` and `alice` are one target for an attacker. A name
/// already folded (most: mail clients send what the user typed once) is not copied.
pub fn fold(account: &str) -> Cow<'_, str> {
    if account
        .bytes()
        .any(|b| b.is_ascii_uppercase() || !b.is_ascii())
    {
        Cow::Owned(account.to_lowercase())
    } else {
        Cow::Borrowed(account)
    }
}

/// Names a directory answered for with another canonical name (`alice@example.org` →
/// `alice`), learned from its answers only, so an outsider cannot make one name count for
/// another. Bounded: when full it starts over, and names count under themselves until they
/// are learnt again.
#[derive(Default)]
pub struct Aliases(std::sync::Mutex<HashMap<Arc<str>, Arc<str>>>);

/// Aliases remembered at most.
const MAX_ALIASES: usize = 65_536;

impl Aliases {
    /// The name to count under: shared with every key of the attempt, so one allocation.
    pub fn canonical(&self, folded: &str) -> Arc<str> {
        self.lock()
            .get(folded)
            .cloned()
            .unwrap_or_else(|| Arc::from(folded))
    }

    pub fn learn(&self, folded: &str, canonical: &str) {
        if folded == canonical {
            return;
        }
        let mut map = self.lock();
        if map.get(folded).is_some_and(|c| **c == *canonical) {
            return; // known: every login under the alias would otherwise copy both names
        }
        if map.len() >= MAX_ALIASES {
            map.clear();
        }
        map.insert(Arc::from(folded), Arc::from(canonical));
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Arc<str>, Arc<str>>> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Names are shared (`Arc<str>`): one attempt's keys and their table entries hold one copy.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Key {
    /// Failures from one block on any account.
    Address(Block),
    /// Failures on one account from everywhere.
    Account(Arc<str>),
    /// Failures on one account from one block: what locks an attacker out of that account.
    Pair(Block, Arc<str>),
}

/// One attempt's keys, inline: the account's, and with an address the pair's and, when
/// `with_address`, the block's own.
pub struct Keys([Option<Key>; 3]);

impl Keys {
    pub fn none() -> Keys {
        Keys([None, None, None])
    }

    pub fn of(account: &Arc<str>, block: Option<Block>, with_address: bool) -> Keys {
        Keys([
            Some(Key::Account(account.clone())),
            block.map(|b| Key::Pair(b, account.clone())),
            block.filter(|_| with_address).map(Key::Address),
        ])
    }

    pub fn iter(&self) -> impl Iterator<Item = &Key> {
        self.0.iter().flatten()
    }

    pub fn is_empty(&self) -> bool {
        self.iter().next().is_none()
    }
}

/// The metric label and log field of a key's kind (never the key itself in a label).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Address,
    Account,
    AccountAddress,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Address => "address",
            Kind::Account => "account",
            Kind::AccountAddress => "account-address",
        }
    }
}

impl Key {
    pub fn kind(&self) -> Kind {
        match self {
            Key::Address(_) => Kind::Address,
            Key::Account(_) => Kind::Account,
            Key::Pair(..) => Kind::AccountAddress,
        }
    }

    /// The account a key concerns, if any.
    pub fn account(&self) -> Option<&str> {
        match self {
            Key::Account(a) | Key::Pair(_, a) => Some(a),
            Key::Address(_) => None,
        }
    }

    pub fn block(&self) -> Option<Block> {
        match self {
            Key::Address(b) | Key::Pair(b, _) => Some(*b),
            Key::Account(_) => None,
        }
    }

    /// The key as the store holds it: `ip:<block>`, `account:<name>`, `pair:<block>|<name>`
    /// (a block never holds `|`, so the first one separates even a name that has one).
    pub fn stored(&self) -> String {
        match self {
            Key::Account(a) => format!("account:{a}"),
            Key::Address(b) => format!("ip:{b}"),
            Key::Pair(b, a) => format!("pair:{b}|{a}"),
        }
    }

    pub fn from_stored(s: &str) -> Option<Key> {
        if let Some(a) = s.strip_prefix("account:") {
            return Some(Key::Account(a.into()));
        }
        if let Some(rest) = s.strip_prefix("pair:") {
            let (b, a) = rest.split_once('|')?;
            return Some(Key::Pair(Block::parse(b)?, a.into()));
        }
        s.strip_prefix("ip:")
            .and_then(Block::parse)
            .map(Key::Address)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_and_stored_keys() {
        let b = Block::of("2001:db8:1:2:3:4:5:6".parse().unwrap());
        assert_eq!(b, Block::of("2001:db8:1:2::9".parse().unwrap()));
        assert_ne!(b, Block::of("2001:db8:1:3::9".parse().unwrap()));
        assert_eq!(b.to_string(), "2001:db8:1:2::/64");
        assert_eq!(Block::parse("2001:db8:1:2::/64"), Some(b));
        assert_eq!(
            Block::of("::ffff:192.0.2.1".parse().unwrap()),
            Block::parse("192.0.2.1").unwrap()
        );
        assert_eq!(Block::parse("alice"), None);
        for k in [
            Key::Address(b),
            Key::Account("a|b".into()),
            Key::Pair(b, "x|y".into()),
        ] {
            assert_eq!(Key::from_stored(&k.stored()), Some(k));
        }
    }
}
