//! Who the client is: the TCP peer, or — when the peer is one of `[server] trusted-proxies` —
//! the address that proxy reports in `Forwarded: for=` (RFC 7239) or else `X-Forwarded-For`.
//!
//! The rule, as nginx's `real_ip_recursive` and Kanidm's `trust_x_forward_for`: the hops are
//! read from the right (the right-most was appended by the proxy we talk to), hops that are
//! themselves trusted proxies are skipped, and the first one that is not is the client. What
//! lies left of it was written by the client and is never believed. A header a trusted proxy
//! sent that cannot be read is not guessed at: the peer stays the client.

use std::net::IpAddr;

use axum::http::{HeaderMap, HeaderName};
use ipnet::IpNet;

/// `[server] trusted-proxies`, parsed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies(Vec<IpNet>);

#[derive(Debug, thiserror::Error)]
#[error("server.trusted-proxies: {0:?} is not an address or a network (CIDR)")]
pub struct BadProxy(pub String);

impl TrustedProxies {
    /// Every entry must be a network (`10.0.0.0/8`) or a single address.
    pub fn parse<S: AsRef<str>>(entries: &[S]) -> Result<TrustedProxies, BadProxy> {
        entries
            .iter()
            .map(|e| {
                let e = e.as_ref();
                crate::auth::parse_network(e.trim()).ok_or_else(|| BadProxy(e.to_string()))
            })
            .collect::<Result<Vec<_>, _>>()
            .map(TrustedProxies)
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        self.0.iter().any(|n| n.contains(&ip))
    }

    /// The client's address for a request from `peer` (none on a unix socket).
    pub fn client(&self, peer: Option<IpAddr>, headers: &HeaderMap) -> Option<IpAddr> {
        let peer = peer?.to_canonical();
        if !self.contains(peer) {
            return Some(peer);
        }
        match self.hops(headers) {
            Ok(None) => Some(peer),
            Ok(Some(hops)) => Some(self.walk(&hops).unwrap_or(peer)),
            Err(problem) => {
                tracing::debug!(%peer, problem, "unreadable forwarding header from a trusted proxy; the proxy is taken as the client");
                Some(peer)
            }
        }
    }

    /// From the right, the first hop that is not a trusted proxy; the left-most when all are.
    /// `None` when a hop on the way is not an address (`unknown`, an obfuscated name).
    fn walk(&self, hops: &[&str]) -> Option<IpAddr> {
        let mut last = None;
        for hop in hops.iter().rev() {
            let Some(ip) = node_address(hop) else {
                tracing::debug!(
                    hop,
                    "forwarded hop is not an address; the proxy is taken as the client"
                );
                return None;
            };
            if !self.contains(ip) {
                return Some(ip);
            }
            last = Some(ip);
        }
        last
    }

    /// The hops the headers list, left to right: `Forwarded` when present, else
    /// `X-Forwarded-For`; `Ok(None)` when neither is there.
    fn hops<'h>(&self, headers: &'h HeaderMap) -> Result<Option<Vec<&'h str>>, &'static str> {
        if let Some(values) = joined(headers, &axum::http::header::FORWARDED)? {
            let mut hops = Vec::new();
            for element in split_outside_quotes(&values, ',') {
                hops.push(for_parameter(element).ok_or("Forwarded element without for=")?);
            }
            return Ok(Some(hops));
        }
        match joined(headers, &X_FORWARDED_FOR)? {
            Some(values) => Ok(Some(
                values.into_iter().flat_map(|v| v.split(',')).collect(),
            )),
            None => Ok(None),
        }
    }
}

static X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");

/// Every value of a header, in order (several lines are one comma-separated list).
fn joined<'h>(
    headers: &'h HeaderMap,
    name: &HeaderName,
) -> Result<Option<Vec<&'h str>>, &'static str> {
    let mut values = Vec::new();
    for v in headers.get_all(name) {
        values.push(v.to_str().map_err(|_| "forwarding header is not ASCII")?);
    }
    Ok((!values.is_empty()).then_some(values))
}

/// Splits on `sep` except inside double quotes (RFC 7230 quoted-string, backslash escapes).
fn split_outside_quotes<'a>(values: &[&'a str], sep: char) -> Vec<&'a str> {
    let mut parts = Vec::new();
    for value in values {
        let (mut start, mut quoted, mut escaped) = (0, false, false);
        for (i, c) in value.char_indices() {
            match c {
                _ if escaped => escaped = false,
                '\\' if quoted => escaped = true,
                '"' => quoted = !quoted,
                c if c == sep && !quoted => {
                    parts.push(&value[start..i]);
                    start = i + 1;
                }
                _ => {}
            }
        }
        parts.push(&value[start..]);
    }
    parts
}

/// The `for=` value of one `Forwarded` element (`for=192.0.2.1;proto=https`).
fn for_parameter(element: &str) -> Option<&str> {
    split_outside_quotes(&[element], ';')
        .into_iter()
        .filter_map(|pair| pair.split_once('='))
        .find(|(name, _)| name.trim().eq_ignore_ascii_case("for"))
        .map(|(_, value)| value.trim())
}

/// The address of a node: `192.0.2.1`, `192.0.2.1:4711`, `"[2001:db8::1]:4711"`,
/// `2001:db8::1` (unquoted, as some proxies write it in X-Forwarded-For). `None` for
/// `unknown`, obfuscated identifiers and anything else.
fn node_address(node: &str) -> Option<IpAddr> {
    let node = node.trim();
    let node = node
        .strip_prefix('"')
        .and_then(|n| n.strip_suffix('"'))
        .unwrap_or(node);
    if let Ok(ip) = node.parse::<IpAddr>() {
        return Some(ip.to_canonical());
    }
    if let Some(rest) = node.strip_prefix('[') {
        let (inside, after) = rest.split_once(']')?;
        if !(after.is_empty() || port(after.strip_prefix(':')?)) {
            return None;
        }
        return inside
            .parse::<std::net::Ipv6Addr>()
            .ok()
            .map(|ip| IpAddr::V6(ip).to_canonical());
    }
    let (host, p) = node.split_once(':')?;
    if !port(p) {
        return None;
    }
    host.parse::<std::net::Ipv4Addr>().ok().map(IpAddr::V4)
}

/// RFC 7239 node-port: a port number or an obfuscated `_port`.
fn port(p: &str) -> bool {
    p.parse::<u16>().is_ok()
        || (p.starts_with('_')
            && p.len() > 1
            && p[1..]
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '_' || c == '-'))
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    fn proxies(entries: &[&str]) -> TrustedProxies {
        TrustedProxies::parse(entries).unwrap()
    }

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (name, value) in pairs {
            h.append(*name, HeaderValue::from_str(value).unwrap());
        }
        h
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn client(t: &TrustedProxies, peer: &str, pairs: &[(&'static str, &str)]) -> Option<IpAddr> {
        t.client(Some(ip(peer)), &headers(pairs))
    }

    #[test]
    fn entries_are_networks_or_addresses() {
        let t = proxies(&["127.0.0.1/32", "10.0.0.0/8", "::1", " 192.0.2.7 "]);
        assert!(t.contains(ip("10.1.2.3")));
        assert!(t.contains(ip("::1")));
        assert!(t.contains(ip("192.0.2.7")));
        assert!(!t.contains(ip("192.0.2.8")));
        for bad in ["", "localhost", "10.0.0.0/33", "1.2.3.4:80"] {
            let e = TrustedProxies::parse(&[bad]).unwrap_err();
            assert!(e.to_string().contains("server.trusted-proxies"), "{e}");
        }
        assert_eq!(
            TrustedProxies::parse::<&str>(&[]).unwrap(),
            TrustedProxies::default()
        );
    }

    #[test]
    fn an_untrusted_peer_is_the_client_whatever_it_sends() {
        let t = proxies(&["127.0.0.1/32"]);
        let forged = [
            ("x-forwarded-for", "203.0.113.9"),
            ("forwarded", "for=203.0.113.9"),
        ];
        assert_eq!(client(&t, "192.0.2.1", &forged), Some(ip("192.0.2.1")));
        // No trusted proxies at all (the default): headers never count.
        let none = TrustedProxies::default();
        assert_eq!(client(&none, "127.0.0.1", &forged), Some(ip("127.0.0.1")));
    }

    #[test]
    fn unix_socket_peers_have_no_address() {
        let t = proxies(&["127.0.0.1/32"]);
        let h = headers(&[("x-forwarded-for", "203.0.113.9")]);
        assert_eq!(t.client(None, &h), None);
    }

    #[test]
    fn a_trusted_peer_without_headers_is_the_client() {
        let t = proxies(&["127.0.0.1/32"]);
        assert_eq!(client(&t, "127.0.0.1", &[]), Some(ip("127.0.0.1")));
    }

    #[test]
    fn x_forwarded_for_is_walked_from_the_right() {
        let t = proxies(&["127.0.0.1/32", "10.0.0.0/8"]);
        // The client wrote 198.51.100.1 itself; 203.0.113.9 is what our proxies saw.
        let h = [("x-forwarded-for", "198.51.100.1, 203.0.113.9, 10.0.0.2")];
        assert_eq!(client(&t, "127.0.0.1", &h), Some(ip("203.0.113.9")));
        // Several header lines are one list, in order.
        let h = [
            ("x-forwarded-for", "198.51.100.1, 203.0.113.9"),
            ("x-forwarded-for", "10.0.0.2"),
        ];
        assert_eq!(client(&t, "127.0.0.1", &h), Some(ip("203.0.113.9")));
        // Ports and IPv6 forms.
        let h = [("x-forwarded-for", "203.0.113.9:51234")];
        assert_eq!(client(&t, "127.0.0.1", &h), Some(ip("203.0.113.9")));
        let h = [("x-forwarded-for", "2001:db8::7")];
        assert_eq!(client(&t, "127.0.0.1", &h), Some(ip("2001:db8::7")));
        let h = [("x-forwarded-for", "[2001:db8::7]:443")];
        assert_eq!(client(&t, "127.0.0.1", &h), Some(ip("2001:db8::7")));
    }

    #[test]
    fn every_hop_trusted_gives_the_left_most() {
        let t = proxies(&["127.0.0.1/32", "10.0.0.0/8"]);
        let h = [("x-forwarded-for", "10.0.0.5, 10.0.0.2")];
        assert_eq!(client(&t, "127.0.0.1", &h), Some(ip("10.0.0.5")));
    }

    #[test]
    fn forwarded_wins_over_x_forwarded_for() {
        let t = proxies(&["127.0.0.1/32", "10.0.0.0/8"]);
        let h = [
            ("x-forwarded-for", "198.51.100.1"),
            (
                "forwarded",
                "for=198.51.100.1, for=\"[2001:db8:cafe::17]:4711\";proto=https, For=10.0.0.2;by=127.0.0.1",
            ),
        ];
        assert_eq!(client(&t, "127.0.0.1", &h), Some(ip("2001:db8:cafe::17")));
        let h = [("forwarded", "for=192.0.2.60;proto=http;by=203.0.113.43")];
        assert_eq!(client(&t, "127.0.0.1", &h), Some(ip("192.0.2.60")));
        let h = [("forwarded", "for=\"192.0.2.60:8080\"")];
        assert_eq!(client(&t, "127.0.0.1", &h), Some(ip("192.0.2.60")));
        // A quoted comma or semicolon does not split.
        let h = [("forwarded", "by=\"a,b;c\";for=192.0.2.61")];
        assert_eq!(client(&t, "127.0.0.1", &h), Some(ip("192.0.2.61")));
    }

    #[test]
    fn ipv4_mapped_addresses_are_the_ipv4_ones() {
        let t = proxies(&["127.0.0.1/32"]);
        let h = [("x-forwarded-for", "::ffff:203.0.113.9")];
        assert_eq!(client(&t, "::ffff:127.0.0.1", &h), Some(ip("203.0.113.9")));
        assert_eq!(client(&t, "::ffff:192.0.2.1", &[]), Some(ip("192.0.2.1")));
    }

    #[test]
    fn unreadable_headers_from_a_trusted_proxy_leave_the_peer() {
        let t = proxies(&["127.0.0.1/32"]);
        let peer = Some(ip("127.0.0.1"));
        for h in [
            [("x-forwarded-for", "not-an-address")],
            [("x-forwarded-for", "203.0.113.9, ")],
            [("x-forwarded-for", "")],
            [("x-forwarded-for", "203.0.113.9:99999")],
            [("x-forwarded-for", "[2001:db8::1")],
            [("forwarded", "for=unknown")],
            [("forwarded", "for=_hidden")],
            [("forwarded", "proto=https")],
            [("forwarded", "for=\"[2001:db8::1]:x\"")],
        ] {
            assert_eq!(client(&t, "127.0.0.1", &h), peer, "{h:?}");
        }
        // Not ASCII.
        let mut h = HeaderMap::new();
        h.insert(
            "x-forwarded-for",
            HeaderValue::from_bytes(b"203.0.113.9\xff").unwrap(),
        );
        assert_eq!(t.client(peer, &h), peer);
    }

    #[test]
    fn unreadable_hops_left_of_the_client_do_not_matter() {
        // They were written by the client, and the walk stops before them.
        let t = proxies(&["127.0.0.1/32"]);
        let h = [("x-forwarded-for", "garbage, 203.0.113.9")];
        assert_eq!(client(&t, "127.0.0.1", &h), Some(ip("203.0.113.9")));
        let h = [("forwarded", "for=unknown, for=203.0.113.9")];
        assert_eq!(client(&t, "127.0.0.1", &h), Some(ip("203.0.113.9")));
    }

    #[test]
    fn obfuscated_ports_are_accepted() {
        let t = proxies(&["127.0.0.1/32"]);
        let h = [("forwarded", "for=\"192.0.2.43:_abc\"")];
        assert_eq!(client(&t, "127.0.0.1", &h), Some(ip("192.0.2.43")));
    }
}
