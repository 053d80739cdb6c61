//! HTTP Basic authentication and client addresses: the parsing half of the
//! access checks in [`crate::gate::access`].
//!
//! Basic is the one scheme every WebDAV client speaks; it is only safe over
//! TLS (or on a private network), which README says. The challenge is a
//! single `WWW-Authenticate: Basic realm="edgedav"` header.
//!
//! The client address is the TCP peer, unless the peer is a configured
//! trusted proxy: then `X-Forwarded-For` is read from the right, skipping
//! trusted proxies, and the first other address is the client. Headers from
//! untrusted peers are ignored, so a client cannot pick its own address to
//! dodge the rate limit or the defender.

use std::net::IpAddr;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hyper::HeaderMap;

use crate::config::{IpNet, canonical_ip};

/// The realm of the Basic challenge.
pub const CHALLENGE: &str = "Basic realm=\"edgedav\"";

/// Credentials from an `Authorization` header.
#[derive(Debug, PartialEq, Eq)]
pub enum Credentials {
    /// No Authorization header.
    None,
    /// Basic user name and password.
    Basic { user: String, password: String },
    /// Another scheme, or a malformed Basic header.
    Unusable,
}

/// Reads the `Authorization` header.
pub fn credentials(headers: &HeaderMap) -> Credentials {
    let Some(value) = headers.get(hyper::header::AUTHORIZATION) else {
        return Credentials::None;
    };
    let Ok(value) = value.to_str() else {
        return Credentials::Unusable;
    };
    parse_basic(value).map_or(Credentials::Unusable, |(user, password)| {
        Credentials::Basic { user, password }
    })
}

/// Parses `Basic base64(user:password)`.
pub fn parse_basic(value: &str) -> Option<(String, String)> {
    let (scheme, token) = value.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = STANDARD.decode(token.trim()).ok()?;
    let decoded = String::from_utf8(decoded).ok()?;
    let (user, password) = decoded.split_once(':')?;
    Some((user.to_owned(), password.to_owned()))
}

/// The client's address (see the module docs).
pub fn client_ip(peer: IpAddr, headers: &HeaderMap, trusted: &[IpNet]) -> IpAddr {
    let peer = canonical_ip(peer);
    let is_trusted = |ip: IpAddr| trusted.iter().any(|net| net.contains(ip));
    if !is_trusted(peer) {
        return peer;
    }
    let hops: Vec<Option<IpAddr>> = headers
        .get_all("x-forwarded-for")
        .iter()
        .flat_map(|v| v.to_str().unwrap_or("").split(','))
        .map(|hop| hop.trim().parse::<IpAddr>().ok().map(canonical_ip))
        .collect();
    let mut client = peer;
    for hop in hops.into_iter().rev() {
        // An unreadable hop ends the chain: the last good one is the client.
        let Some(hop) = hop else { break };
        client = hop;
        if !is_trusted(hop) {
            break;
        }
    }
    client
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_credentials() {
        assert_eq!(
            parse_basic("Basic YWxpY2U6czNjcjN0OndpdGg6Y29sb25z"),
            Some(("alice".into(), "s3cr3t:with:colons".into()))
        );
        assert_eq!(
            parse_basic("basic   YWxpY2U6"),
            Some(("alice".into(), String::new()))
        );
        assert_eq!(parse_basic("Bearer abc"), None);
        assert_eq!(parse_basic("Basic !!!"), None);
        assert_eq!(parse_basic("Basic YWxpY2U="), None); // no colon
    }

    #[test]
    fn forwarded_for_only_from_trusted_proxies() {
        let trusted: Vec<IpNet> = vec!["10.0.0.0/8".parse().unwrap()];
        let mut headers = HeaderMap::new();
        headers.insert("x-forwarded-for", "203.0.113.9, 10.0.0.7".parse().unwrap());
        let proxy: IpAddr = "10.0.0.1".parse().unwrap();
        let stranger: IpAddr = "198.51.100.1".parse().unwrap();
        assert_eq!(
            client_ip(proxy, &headers, &trusted),
            "203.0.113.9".parse::<IpAddr>().unwrap()
        );
        assert_eq!(client_ip(stranger, &headers, &trusted), stranger);
        assert_eq!(client_ip(proxy, &headers, &[]), proxy);
        // A client cannot hide behind a forged list: the rightmost untrusted hop wins.
        headers.insert("x-forwarded-for", "1.1.1.1, 203.0.113.9".parse().unwrap());
        assert_eq!(
            client_ip(proxy, &headers, &trusted),
            "203.0.113.9".parse::<IpAddr>().unwrap()
        );
    }
}
