//! Per-consumer IP allow/deny lists (CIDR, IPv4 and IPv6).
//!
//! Semantics, in order: a deny match rejects; otherwise an empty allow list admits; otherwise
//! only an allow match admits. IPv4-mapped IPv6 peers (`::ffff:a.b.c.d`, what a dual-stack
//! listener reports for an IPv4 client) are matched as the IPv4 address, so `10.0.0.0/8`
//! covers them.

use std::net::IpAddr;

use ipnet::IpNet;

/// Compiled allow/deny rules for one consumer.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct IpRules {
    allow: Vec<IpNet>,
    deny: Vec<IpNet>,
}

impl IpRules {
    /// Build rules from CIDR strings (`10.0.0.0/8`, `2001:db8::/32`) or bare addresses
    /// (`192.0.2.7` = `/32`, `::1` = `/128`). The error names the first bad entry.
    pub fn new(allow: &[&str], deny: &[&str]) -> Result<IpRules, String> {
        let parse = |v: &[&str]| {
            v.iter()
                .map(|s| parse_net(s))
                .collect::<Result<Vec<_>, _>>()
        };
        Ok(IpRules {
            allow: parse(allow)?,
            deny: parse(deny)?,
        })
    }

    /// No restrictions.
    pub fn allow_all() -> IpRules {
        IpRules::default()
    }

    pub(crate) fn from_nets(allow: Vec<IpNet>, deny: Vec<IpNet>) -> IpRules {
        IpRules { allow, deny }
    }

    /// Whether a peer address is admitted. Deny wins; a non-empty allow list admits only
    /// matching addresses. IPv4-mapped IPv6 (`::ffff:a.b.c.d`) is matched as the IPv4 address.
    pub fn allows(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        if self.deny.iter().any(|n| n.contains(&ip)) {
            return false;
        }
        self.allow.is_empty() || self.allow.iter().any(|n| n.contains(&ip))
    }

    /// `true` when there are no rules at all (every address is admitted).
    pub fn is_empty(&self) -> bool {
        self.allow.is_empty() && self.deny.is_empty()
    }
}

/// One rule entry: a CIDR network or a single address. Host bits below the prefix are
/// ignored (`10.1.2.3/8` means `10.0.0.0/8`), as in most firewalls.
pub(crate) fn parse_net(s: &str) -> Result<IpNet, String> {
    let t = s.trim();
    if let Ok(n) = t.parse::<IpNet>() {
        return Ok(canonical_net(n.trunc()));
    }
    match t.parse::<IpAddr>() {
        Ok(a) => Ok(IpNet::from(canonical(a))),
        Err(_) => Err(format!(
            "bad IP rule {s:?}: expected a CIDR network (10.0.0.0/8, 2001:db8::/32) or an address"
        )),
    }
}

/// `::ffff:a.b.c.d` → `a.b.c.d`; everything else unchanged.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(v6),
        },
        v4 => v4,
    }
}

/// A rule written as an IPv4-mapped IPv6 network (`::ffff:10.0.0.0/104`) becomes the IPv4
/// network, because addresses are canonicalised the same way before matching.
fn canonical_net(n: IpNet) -> IpNet {
    if let IpNet::V6(v6) = n
        && v6.prefix_len() >= 96
        && let Some(v4) = v6.network().to_ipv4_mapped()
        && let Ok(net) = ipnet::Ipv4Net::new(v4, v6.prefix_len() - 96)
    {
        return IpNet::V4(net);
    }
    n
}
