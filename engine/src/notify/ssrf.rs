//! The server-side request forgery guard for every user-supplied URL (channels and webhooks).
//! Only http(s) is allowed, and every address the host resolves to must be public: loopback,
//! private, link-local, shared, documentation, multicast and cloud-metadata ranges are refused
//! unless the operator allows private targets (LAN self-hosting, tests).
//!
//! The check resolves the name itself and the caller connects to exactly the addresses it
//! approved (see [`Target::addrs`]), so a DNS answer that changes between check and connect
//! (rebinding) cannot smuggle a private address in.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use url::Url;

use crate::error::{Error, Result};

/// A URL that passed the guard, with the addresses it may be reached at.
#[derive(Debug, Clone)]
pub struct Target {
    pub url: Url,
    pub host: String,
    pub addrs: Vec<SocketAddr>,
}

/// Parses `raw` as an http(s) URL without credentials (errors name `field`).
pub fn parse_url(field: &'static str, raw: &str) -> Result<Url> {
    let url =
        Url::parse(raw.trim()).map_err(|e| Error::invalid(field, format!("not a URL: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(Error::invalid(field, "must be an http or https URL"));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(Error::invalid(field, "must name a host"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(Error::invalid(field, "must not carry credentials"));
    }
    Ok(url)
}

/// Resolves `url` and refuses it when any address is not public (unless `allow_private`).
pub async fn check(field: &'static str, url: &Url, allow_private: bool) -> Result<Target> {
    let host = url
        .host_str()
        .ok_or_else(|| Error::invalid(field, "must name a host"))?
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_string();
    let port = url
        .port_or_known_default()
        .ok_or_else(|| Error::invalid(field, "has no port"))?;
    let addrs: Vec<SocketAddr> = match host.parse::<IpAddr>() {
        Ok(ip) => vec![SocketAddr::new(ip, port)],
        Err(_) => tokio::net::lookup_host((host.as_str(), port))
            .await
            .map_err(|e| Error::invalid(field, format!("host '{host}' does not resolve: {e}")))?
            .collect(),
    };
    if addrs.is_empty() {
        return Err(Error::invalid(
            field,
            format!("host '{host}' has no address"),
        ));
    }
    if !allow_private && let Some(bad) = addrs.iter().find(|a| !is_public(a.ip())) {
        return Err(Error::invalid(
            field,
            format!(
                "resolves to {} (a loopback, private, link-local or metadata address); set VITASYNC_ALLOW_PRIVATE_TARGETS=true to allow it",
                bad.ip()
            ),
        ));
    }
    Ok(Target {
        url: url.clone(),
        host,
        addrs,
    })
}

/// True for addresses a server on the public internet may have.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_public_v4(v4);
            }
            is_public_v6(v6)
        }
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    !(ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local() // 169.254/16, which holds the cloud metadata service
        || ip.is_broadcast()
        || ip.is_documentation()
        || ip.is_multicast()
        || a == 0
        || (a == 100 && (64..128).contains(&b)) // shared address space (carrier NAT)
        || (a == 192 && b == 0 && c == 0) // IETF protocol assignments
        || (a == 198 && (b == 18 || b == 19)) // benchmarking
        || a >= 240)
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    let seg = ip.segments();
    !(ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_multicast()
        || (seg[0] & 0xfe00) == 0xfc00 // unique local
        || (seg[0] & 0xffc0) == 0xfe80 // link-local
        || (seg[0] == 0xfd00 && seg[1] == 0x0ec2) // AWS metadata (fd00:ec2::254)
        || (seg[0] == 0x2001 && seg[1] == 0x0db8) // documentation
        || (seg[0] == 0x0064 && seg[1] == 0xff9b)) // NAT64 can reach private IPv4
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_ranges() {
        for private in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "::1",
            "fe80::1",
            "fd00:ec2::254",
            "fc00::1",
            "::ffff:127.0.0.1",
        ] {
            assert!(!is_public(private.parse().unwrap()), "{private}");
        }
        for public in ["93.184.216.34", "1.1.1.1", "2606:4700:4700::1111"] {
            assert!(is_public(public.parse().unwrap()), "{public}");
        }
    }

    #[test]
    fn only_http_without_credentials() {
        assert!(parse_url("url", "ftp://example.com/").is_err());
        assert!(parse_url("url", "https://user:pw@example.com/").is_err());
        assert!(parse_url("url", "not a url").is_err());
        assert!(parse_url("url", "https://example.com/hook").is_ok());
    }
}
