//! Where webhooks may go: HTTPS URLs naming public hosts, never loopback, private, link-local,
//! CGNAT, multicast, reserved or cloud-metadata addresses. Checked at creation and again before
//! every delivery; natively the resolved addresses are checked too (`platform::native`).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Why a URL or address is refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Refusal(pub String);

fn refuse(reason: impl Into<String>) -> Refusal {
    Refusal(reason.into())
}

/// IANA's IPv4 Special-Purpose Address Registry, every entry (even those marked globally reachable,
/// such as AS112 or AMT: anycast infrastructure is no webhook receiver), and the multicast range.
/// Each is the network, its prefix length and what is refused.
const IPV4_SPECIAL: &[([u8; 4], u8, &str)] = &[
    (
        [0, 0, 0, 0],
        8,
        "the unspecified \"this network\" range 0.0.0.0/8",
    ),
    ([10, 0, 0, 0], 8, "the private range 10.0.0.0/8"),
    (
        [100, 64, 0, 0],
        10,
        "the carrier-grade NAT range 100.64.0.0/10",
    ),
    ([127, 0, 0, 0], 8, "loopback"),
    (
        [169, 254, 0, 0],
        16,
        "the link-local range 169.254.0.0/16 (cloud metadata lives there)",
    ),
    ([172, 16, 0, 0], 12, "the private range 172.16.0.0/12"),
    ([192, 0, 0, 0], 24, "the IETF protocol range 192.0.0.0/24"),
    ([192, 0, 2, 0], 24, "a documentation range"),
    ([192, 31, 196, 0], 24, "the AS112 range 192.31.196.0/24"),
    ([192, 52, 193, 0], 24, "the AMT range 192.52.193.0/24"),
    ([192, 88, 99, 0], 24, "the deprecated 6to4 relay range"),
    ([192, 168, 0, 0], 16, "the private range 192.168.0.0/16"),
    (
        [192, 175, 48, 0],
        24,
        "the AS112 direct delegation range 192.175.48.0/24",
    ),
    ([198, 18, 0, 0], 15, "the benchmarking range 198.18.0.0/15"),
    ([198, 51, 100, 0], 24, "a documentation range"),
    ([203, 0, 113, 0], 24, "a documentation range"),
    ([224, 0, 0, 0], 4, "multicast"),
    (
        [240, 0, 0, 0],
        4,
        "the reserved range 240.0.0.0/4 (and broadcast)",
    ),
    // Azure's platform endpoint (instance metadata, DNS, health) answers on a public address.
    ([168, 63, 129, 16], 32, "a cloud metadata address"),
];

/// IANA's IPv6 Special-Purpose Address Registry, every entry but those judged by the IPv4 address
/// they embed (mapped `::ffff:0:0/96`, NAT64 `64:ff9b::/96`, 6to4 `2002::/16`: see
/// [`forbidden_ipv6`]), with the older ranges it no longer lists and multicast.
const IPV6_SPECIAL: &[(u128, u8, &str)] = &[
    (0, 128, "the unspecified address ::"),
    (1, 128, "loopback"),
    (0, 96, "the deprecated IPv4-compatible range ::/96"),
    (
        0xffff_0000_0000_0000,
        96,
        "the SIIT IPv4-translated range ::ffff:0:0:0/96",
    ),
    (
        0x0064_ff9b_0001 << 80,
        48,
        "the local-use IPv4/IPv6 translation range 64:ff9b:1::/48",
    ),
    (0x0100 << 112, 64, "the discard range 100::/64"),
    (
        (0x0100 << 112) | (1 << 64),
        64,
        "the dummy prefix 100:0:0:1::/64",
    ),
    (
        0x2001 << 112,
        23,
        "the IETF protocol range 2001::/23 (Teredo, ORCHID, AMT, AS112, benchmarking)",
    ),
    (
        0x2001_0db8 << 96,
        32,
        "the documentation range 2001:db8::/32",
    ),
    (
        0x2620_004f_8000 << 80,
        48,
        "the AS112 direct delegation range 2620:4f:8000::/48",
    ),
    (0x3fff << 112, 20, "the documentation range 3fff::/20"),
    (0x5f00 << 112, 16, "the segment routing range 5f00::/16"),
    (
        0xfc00 << 112,
        7,
        "the unique-local range fc00::/7 (cloud metadata lives there too)",
    ),
    (0xfe80 << 112, 10, "the link-local range fe80::/10"),
    (
        0xfec0 << 112,
        10,
        "the deprecated site-local range fec0::/10",
    ),
    (0xff00 << 112, 8, "multicast"),
];

fn within(address: u128, network: u128, length: u8, bits: u32) -> bool {
    let shift = bits - u32::from(length);
    length == 0 || address >> shift == network >> shift
}

/// The class of a forbidden address, or `None` for a public unicast one.
pub fn forbidden_ipv4(ip: Ipv4Addr) -> Option<&'static str> {
    let address = u128::from(u32::from(ip));
    IPV4_SPECIAL
        .iter()
        .find(|(network, length, _)| {
            within(
                address,
                u128::from(u32::from_be_bytes(*network)),
                *length,
                32,
            )
        })
        .map(|(_, _, class)| *class)
}

pub fn forbidden_ipv6(ip: Ipv6Addr) -> Option<&'static str> {
    let segments = ip.segments();
    // Addresses that embed an IPv4 address are judged by it: mapped (::ffff:a.b.c.d), NAT64
    // (64:ff9b::/96) and 6to4 (2002::/16).
    if let Some(v4) = ip.to_ipv4_mapped() {
        return forbidden_ipv4(v4);
    }
    if segments[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        let v4 = Ipv4Addr::from(u32::from(segments[6]) << 16 | u32::from(segments[7]));
        return forbidden_ipv4(v4);
    }
    if segments[0] == 0x2002 {
        let v4 = Ipv4Addr::from(u32::from(segments[1]) << 16 | u32::from(segments[2]));
        return forbidden_ipv4(v4);
    }
    let address = u128::from(ip);
    IPV6_SPECIAL
        .iter()
        .find(|(network, length, _)| within(address, *network, *length, 128))
        .map(|(_, _, class)| *class)
}

/// The class of a forbidden address, or `None` for a public unicast one.
pub fn forbidden_ip(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => forbidden_ipv4(v4),
        IpAddr::V6(v6) => forbidden_ipv6(v6),
    }
}

fn is_loopback(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_loopback(),
        IpAddr::V6(v6) => {
            v6.is_loopback() || v6.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
        }
    }
}

/// Host names that only mean something inside a network, never on the public internet.
fn forbidden_name(host: &str) -> Option<&'static str> {
    let host = host.trim_end_matches('.');
    let suffix = |s: &str| host == s || host.ends_with(&format!(".{s}"));
    if suffix("localhost") {
        return Some("loopback");
    }
    if !host.contains('.') {
        return Some("a name without a domain (intranet or container names)");
    }
    for (name, class) in [
        ("local", "an mDNS (.local) name"),
        (
            "internal",
            "an internal name (cloud metadata such as metadata.google.internal)",
        ),
        ("home.arpa", "a home network name"),
        ("localdomain", "a local name"),
    ] {
        if suffix(name) {
            return Some(class);
        }
    }
    None
}

/// A webhook target that passed the checks, in the form that is stored and requested (the parser's
/// normalisation, so what was checked is exactly what is fetched: `https://0x7f.1/` is `127.0.0.1`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    pub url: String,
    /// The host as a name to resolve, or `None` when the URL names an address.
    pub domain: Option<String>,
}

/// Checks a webhook URL. `allow_loopback` is the development switch: `http` or `https` to
/// 127.0.0.0/8, `::1` or `localhost`, and nothing else it would otherwise refuse.
pub fn check_url(raw: &str, allow_loopback: bool) -> Result<Target, Refusal> {
    let url = url::Url::parse(raw.trim()).map_err(|e| refuse(format!("not a URL: {e}")))?;
    if !url.username().is_empty() || url.password().is_some() {
        return Err(refuse(
            "credentials in the URL are not allowed; verify deliveries by their signature",
        ));
    }
    if url.fragment().is_some() {
        return Err(refuse("a fragment (#...) is not allowed"));
    }
    let host = url.host().ok_or_else(|| refuse("the URL names no host"))?;
    let (ip, domain) = match host {
        url::Host::Ipv4(v4) => (Some(IpAddr::V4(v4)), None),
        url::Host::Ipv6(v6) => (Some(IpAddr::V6(v6)), None),
        url::Host::Domain(name) => (None, Some(name.to_ascii_lowercase())),
    };
    let loopback_target = match (ip, domain.as_deref()) {
        (Some(ip), _) => is_loopback(ip),
        (None, Some(name)) => {
            let name = name.trim_end_matches('.');
            name == "localhost" || name.ends_with(".localhost")
        }
        _ => false,
    };
    if allow_loopback && loopback_target {
        if !matches!(url.scheme(), "http" | "https") {
            return Err(refuse("the URL must be http or https"));
        }
        return Ok(Target {
            url: url.to_string(),
            domain,
        });
    }
    if url.scheme() != "https" {
        return Err(refuse("the URL must be https"));
    }
    let class = match (ip, domain.as_deref()) {
        (Some(ip), _) => forbidden_ip(ip),
        (None, Some(name)) => forbidden_name(name),
        _ => None,
    };
    if let Some(class) = class {
        return Err(refuse(format!("the URL names {class}")));
    }
    Ok(Target {
        url: url.to_string(),
        domain,
    })
}

/// Whether a resolved address may be connected to: public ones always, loopback ones only with the
/// development switch and only for a name that is loopback by definition (`localhost`).
pub fn may_connect(ip: IpAddr, name: &str, allow_loopback: bool) -> Result<(), Refusal> {
    let name = name.trim_end_matches('.').to_ascii_lowercase();
    let local_name = name == "localhost" || name.ends_with(".localhost");
    if allow_loopback && local_name && is_loopback(ip) {
        return Ok(());
    }
    // Neither the address nor its class: a tenant reading its delivery log must not learn how
    // names resolve inside the network (split-horizon DNS); the operator's log has them.
    match forbidden_ip(ip) {
        Some(_) => Err(refuse("the destination resolves to a disallowed address")),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(url: &str) -> bool {
        check_url(url, false).is_err()
    }

    #[test]
    fn public_https_urls_pass_in_normal_form() {
        let target = check_url("https://Hooks.Example.com:8443/in?x=1", false).unwrap();
        assert_eq!(target.url, "https://hooks.example.com:8443/in?x=1");
        assert_eq!(target.domain.as_deref(), Some("hooks.example.com"));
        assert!(check_url("https://93.184.215.14/x", false).is_ok());
        assert!(check_url("https://[2606:4700::6810:84e5]/x", false).is_ok());
    }

    #[test]
    fn every_forbidden_class_is_refused() {
        for url in [
            "http://hooks.example.com/", // not https
            "ftp://hooks.example.com/",
            "https://user:pw@hooks.example.com/",
            "https://hooks.example.com/#frag",
            "https://127.0.0.1/", // loopback
            "https://127.1/",
            "https://2130706433/", // 127.0.0.1 as one number
            "https://0x7f.0.0.1/",
            "https://[::1]/",
            "https://[::ffff:127.0.0.1]/",
            "https://localhost/",
            "https://api.localhost/",
            "https://0.0.0.0/", // unspecified
            "https://[::]/",
            "https://10.1.2.3/", // private
            "https://172.16.0.1/",
            "https://172.31.255.255/",
            "https://192.168.1.1/",
            "https://[fd00::1]/",
            "https://[fd00:ec2::254]/", // AWS metadata over IPv6
            "https://169.254.169.254/latest/meta-data/", // link-local, cloud metadata
            "https://[fe80::1]/",
            "https://100.64.0.1/",      // CGNAT
            "https://100.100.100.200/", // Alibaba metadata, in CGNAT
            "https://224.0.0.1/",       // multicast
            "https://[ff02::1]/",
            "https://255.255.255.255/", // broadcast, reserved
            "https://240.0.0.1/",
            "https://168.63.129.16/", // Azure metadata
            "https://metadata.google.internal/",
            "https://intranet/",
            "https://printer.local/",
            "https://[64:ff9b::a9fe:a9fe]/", // NAT64 of 169.254.169.254
            "https://[2002:a9fe:a9fe::]/",   // 6to4 of 169.254.169.254
            "https://198.18.0.1/",
            "https://192.0.2.1/",
            "not a url",
        ] {
            assert!(refused(url), "{url} was accepted");
        }
        assert!(!refused("https://172.32.0.1/"));
        assert!(!refused("https://100.128.0.1/"));
    }

    /// One address inside each range of IANA's special-purpose registries (and multicast), one
    /// just outside where the range ends mid-space, and public ones in the embedding ranges.
    #[test]
    fn every_range_of_the_special_purpose_registries_is_refused() {
        for ip in [
            "0.1.2.3",
            "10.255.0.1",
            "100.127.255.254",
            "127.8.8.8",
            "169.254.0.1",
            "172.20.0.1",
            "192.0.0.8",
            "192.0.0.171",
            "192.0.2.200",
            "192.31.196.1",
            "192.52.193.1",
            "192.88.99.1",
            "192.168.255.255",
            "192.175.48.1",
            "198.19.255.1",
            "198.51.100.1",
            "203.0.113.9",
            "224.0.0.251",
            "239.255.255.250",
            "240.0.0.1",
            "255.255.255.255",
            "168.63.129.16",
            "::",
            "::1",
            "::10.0.0.1",
            "::ffff:10.0.0.1",
            "::ffff:0:10.0.0.1",  // SIIT, even of a private address
            "::ffff:0:8.8.8.8",   // SIIT of a public one: translation inside the network
            "64:ff9b::10.0.0.1",  // NAT64 of a private address
            "64:ff9b:1::8.8.8.8", // local-use NAT64
            "64:ff9b:1:ffff::1",
            "100::1",
            "100:0:0:1::1",
            "2001::1", // Teredo
            "2001:1::1",
            "2001:2::1",
            "2001:3::1",
            "2001:4:112::1",
            "2001:10::1",
            "2001:20::1",
            "2001:30::1",
            "2001:1ff::1",
            "2001:db8::1",
            "2002:a00:1::", // 6to4 of 10.0.0.1
            "2620:4f:8000::1",
            "3fff::1",
            "3fff:fff::1",
            "5f00::1",
            "fc00::1",
            "fdff::1",
            "fe80::1",
            "febf::1",
            "fec0::1",
            "ff02::1",
        ] {
            let ip: IpAddr = ip.parse().unwrap();
            assert!(forbidden_ip(ip).is_some(), "{ip} was accepted");
        }
        for ip in [
            "1.1.1.1",
            "100.128.0.1",
            "172.32.0.1",
            "192.0.1.1",
            "198.20.0.1",
            "223.255.255.255",
            "168.63.129.17",
            "2606:4700::6810:84e5",
            "64:ff9b::8.8.8.8", // NAT64 of a public address
            "64:ff9b:2::1",
            "2001:200::1",
            "2002:808:808::", // 6to4 of 8.8.8.8
            "2620:4f:8001::1",
            "3fff:1000::1",
        ] {
            let ip: IpAddr = ip.parse().unwrap();
            assert_eq!(forbidden_ip(ip), None, "{ip}");
        }
    }

    #[test]
    fn the_development_switch_admits_loopback_only() {
        for url in [
            "http://127.0.0.1:8080/hook",
            "http://localhost:9/x",
            "http://[::1]:7/",
        ] {
            assert!(check_url(url, true).is_ok(), "{url}");
            assert!(check_url(url, false).is_err(), "{url}");
        }
        for url in [
            "http://10.0.0.1/",
            "http://hooks.example.com/",
            "https://169.254.169.254/",
        ] {
            assert!(check_url(url, true).is_err(), "{url}");
        }
    }

    #[test]
    fn resolved_addresses_are_judged_with_the_name() {
        let loopback: IpAddr = "127.0.0.1".parse().unwrap();
        let private: IpAddr = "10.0.0.7".parse().unwrap();
        let public: IpAddr = "93.184.215.14".parse().unwrap();
        assert!(may_connect(public, "hooks.example.com", false).is_ok());
        assert!(may_connect(private, "hooks.example.com", true).is_err());
        assert!(may_connect(loopback, "rebind.example.com", true).is_err());
        assert!(may_connect(loopback, "localhost", false).is_err());
        assert!(may_connect(loopback, "localhost", true).is_ok());
        // What a tenant reads names neither the address nor its range.
        let refusal = may_connect("10.1.2.3".parse().unwrap(), "split.example.com", false)
            .unwrap_err()
            .to_string();
        assert_eq!(refusal, "the destination resolves to a disallowed address");
    }
}
