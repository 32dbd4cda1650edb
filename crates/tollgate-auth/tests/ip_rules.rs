//! IP allow/deny semantics: CIDR v4/v6, bare addresses, deny wins, empty allow admits all,
//! IPv4-mapped IPv6 matched as IPv4; plus a proptest against a masking reference.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::{IpAddr, Ipv4Addr};

use proptest::prelude::*;
use tollgate_auth::IpRules;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

#[test]
fn v4_cidr() {
    let r = IpRules::new(&["10.0.0.0/8"], &[]).unwrap();
    assert!(r.allows(ip("10.255.0.1")));
    assert!(!r.allows(ip("11.0.0.1")));
    assert!(!r.allows(ip("2001:db8::1")));
}

#[test]
fn v6_cidr() {
    let r = IpRules::new(&["2001:db8::/32"], &[]).unwrap();
    assert!(r.allows(ip("2001:db8:ffff::1")));
    assert!(!r.allows(ip("2001:db9::1")));
    assert!(!r.allows(ip("10.0.0.1")));
}

#[test]
fn single_address_without_prefix() {
    let r = IpRules::new(&["192.0.2.7", "::1"], &[]).unwrap();
    assert!(r.allows(ip("192.0.2.7")));
    assert!(!r.allows(ip("192.0.2.8")));
    assert!(r.allows(ip("::1")));
    assert!(!r.allows(ip("::2")));
}

#[test]
fn deny_wins_over_allow() {
    let r = IpRules::new(&["10.0.0.0/8"], &["10.9.0.0/16"]).unwrap();
    assert!(r.allows(ip("10.8.0.1")));
    assert!(!r.allows(ip("10.9.0.1")));
    let same = IpRules::new(&["10.0.0.1"], &["10.0.0.1"]).unwrap();
    assert!(!same.allows(ip("10.0.0.1")));
}

#[test]
fn empty_allow_admits_all_but_denied() {
    let all = IpRules::allow_all();
    assert!(all.is_empty());
    assert!(all.allows(ip("203.0.113.9")) && all.allows(ip("fe80::1")));
    let deny_only = IpRules::new(&[], &["203.0.113.0/24"]).unwrap();
    assert!(!deny_only.is_empty());
    assert!(!deny_only.allows(ip("203.0.113.9")));
    assert!(deny_only.allows(ip("198.51.100.1")));
}

#[test]
fn ipv4_mapped_v6_matches_as_v4() {
    let r = IpRules::new(&["10.0.0.0/8"], &["10.9.0.0/16"]).unwrap();
    assert!(r.allows(ip("::ffff:10.1.2.3")));
    assert!(!r.allows(ip("::ffff:10.9.2.3")));
    assert!(!r.allows(ip("::ffff:11.1.2.3")));
    // A rule written in mapped form covers plain IPv4 peers too.
    let mapped = IpRules::new(&["::ffff:192.0.2.0/120"], &[]).unwrap();
    assert!(mapped.allows(ip("192.0.2.200")));
    assert!(mapped.allows(ip("::ffff:192.0.2.1")));
    assert!(!mapped.allows(ip("192.0.3.1")));
}

#[test]
fn host_bits_are_ignored() {
    let r = IpRules::new(&["10.1.2.3/8"], &[]).unwrap();
    assert!(r.allows(ip("10.200.0.1")));
}

#[test]
fn bad_cidr_error_names_the_entry() {
    for bad in [
        "10.0.0.0/33",
        "2001:db8::/129",
        "10.0.0",
        "example.com",
        "",
        "10.0.0.0/",
    ] {
        let e = IpRules::new(&["10.0.0.0/8", bad], &[]).unwrap_err();
        assert!(e.contains(&format!("{bad:?}")), "{e}");
        let e = IpRules::new(&[], &[bad]).unwrap_err();
        assert!(e.contains(&format!("{bad:?}")), "{e}");
    }
}

proptest! {
    /// `allows` agrees with a reference computed by masking for random v4 networks.
    #[test]
    fn v4_allow_agrees_with_masking(net in any::<u32>(), len in 0u8..=32, addr in any::<u32>(), deny in any::<bool>()) {
        let mask = if len == 0 { 0 } else { u32::MAX << (32 - len) };
        let cidr = format!("{}/{len}", Ipv4Addr::from(net));
        let inside = (addr & mask) == (net & mask);
        let r = if deny {
            IpRules::new(&[], &[cidr.as_str()]).unwrap()
        } else {
            IpRules::new(&[cidr.as_str()], &[]).unwrap()
        };
        let want = if deny { !inside } else { inside };
        let a = Ipv4Addr::from(addr);
        prop_assert_eq!(r.allows(IpAddr::V4(a)), want);
        prop_assert_eq!(r.allows(IpAddr::V6(a.to_ipv6_mapped())), want);
    }
}
