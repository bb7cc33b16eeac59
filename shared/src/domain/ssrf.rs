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

/// The class of a forbidden address, or `None` for a public unicast one.
pub fn forbidden_ipv4(ip: Ipv4Addr) -> Option<&'static str> {
    let [a, b, c, _] = ip.octets();
    Some(match (a, b, c) {
        (0, _, _) => "the unspecified \"this network\" range 0.0.0.0/8",
        (10, _, _) => "the private range 10.0.0.0/8",
        (100, 64..=127, _) => "the carrier-grade NAT range 100.64.0.0/10",
        (127, _, _) => "loopback",
        (169, 254, _) => "the link-local range 169.254.0.0/16 (cloud metadata lives there)",
        (172, 16..=31, _) => "the private range 172.16.0.0/12",
        (192, 0, 0) => "the IETF protocol range 192.0.0.0/24",
        (192, 0, 2) | (198, 51, 100) | (203, 0, 113) => "a documentation range",
        (192, 88, 99) => "the deprecated 6to4 relay range",
        (192, 168, _) => "the private range 192.168.0.0/16",
        (198, 18..=19, _) => "the benchmarking range 198.18.0.0/15",
        (224..=239, _, _) => "multicast",
        (240..=255, _, _) => "the reserved range 240.0.0.0/4 (and broadcast)",
        // Azure's platform endpoint (instance metadata, DNS, health) answers on a public address.
        (168, 63, 129) if ip.octets()[3] == 16 => "a cloud metadata address",
        _ => return None,
    })
}

pub fn forbidden_ipv6(ip: Ipv6Addr) -> Option<&'static str> {
    let segments = ip.segments();
    if ip.is_unspecified() {
        return Some("the unspecified address ::");
    }
    if ip.is_loopback() {
        return Some("loopback");
    }
    // Addresses that embed an IPv4 address are judged by it: mapped (::ffff:a.b.c.d), the old
    // compatible form (::a.b.c.d), NAT64 (64:ff9b::/96) and 6to4 (2002::/16).
    if let Some(v4) = ip.to_ipv4_mapped() {
        return forbidden_ipv4(v4);
    }
    if segments[..6] == [0, 0, 0, 0, 0, 0] {
        return Some("the deprecated IPv4-compatible range ::/96");
    }
    if segments[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        let v4 = Ipv4Addr::from(u32::from(segments[6]) << 16 | u32::from(segments[7]));
        return forbidden_ipv4(v4);
    }
    if segments[0] == 0x2002 {
        let v4 = Ipv4Addr::from(u32::from(segments[1]) << 16 | u32::from(segments[2]));
        return forbidden_ipv4(v4);
    }
    Some(match segments[0] {
        0xfc00..=0xfdff => "the unique-local range fc00::/7 (cloud metadata lives there too)",
        0xfe80..=0xfebf => "the link-local range fe80::/10",
        0xfec0..=0xfeff => "the deprecated site-local range fec0::/10",
        0xff00..=0xffff => "multicast",
        0x0100 if segments[1..4] == [0, 0, 0] => "the discard range 100::/64",
        0x2001 if segments[1] == 0x0db8 => "the documentation range 2001:db8::/32",
        0x2001 if segments[1] < 0x0200 => "the IETF protocol range 2001::/23",
        _ => return None,
    })
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
    match forbidden_ip(ip) {
        Some(class) => Err(refuse(format!("{name} resolves to {class} ({ip})"))),
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
    }
}
