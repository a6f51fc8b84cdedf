//! The SSRF guard: a webhook URL may point only to public addresses unless the configuration
//! allows loopback (`HUB_WEBHOOK_ALLOW_LOOPBACK`) or private networks
//! (`HUB_WEBHOOK_ALLOW_PRIVATE`). Checked when an endpoint is registered, and again at every
//! connection by [`GuardedResolver`], so a name that later resolves elsewhere (DNS rebinding)
//! is refused too. Redirects are never followed.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};

/// Which non-public addresses are allowed.
#[derive(Debug, Clone, Copy, Default)]
pub struct Policy {
    /// 127.0.0.0/8 and ::1.
    pub allow_loopback: bool,
    /// Private, link-local, shared (CGNAT) and unique-local ranges.
    pub allow_private: bool,
}

/// What kind of address `ip` is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// Routable on the internet.
    Public,
    /// This machine.
    Loopback,
    /// A private or link-local network.
    Private,
    /// Never a valid destination (unspecified, multicast, broadcast, documentation, reserved).
    Never,
}

/// Classifies `ip` (IPv4-mapped IPv6 addresses as their IPv4 address).
pub fn classify(ip: IpAddr) -> Class {
    match ip {
        IpAddr::V4(v4) => classify_v4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => classify_v4(v4),
            None => classify_v6(v6),
        },
    }
}

fn classify_v4(ip: Ipv4Addr) -> Class {
    let o = ip.octets();
    if ip.is_loopback() {
        Class::Loopback
    } else if ip.is_private() || ip.is_link_local() || (o[0] == 100 && (o[1] & 0xc0) == 64) {
        Class::Private
    } else if ip.is_unspecified()
        || ip.is_multicast()
        || ip.is_broadcast()
        || ip.is_documentation()
        || o[0] == 0
        || o[0] >= 240
        || (o[0] == 192 && o[1] == 0 && o[2] == 0)
        || (o[0] == 198 && (o[1] & 0xfe) == 18)
    {
        Class::Never
    } else {
        Class::Public
    }
}

fn classify_v6(ip: Ipv6Addr) -> Class {
    let s = ip.segments();
    if ip.is_loopback() {
        Class::Loopback
    } else if (s[0] & 0xfe00) == 0xfc00 || (s[0] & 0xffc0) == 0xfe80 {
        Class::Private
    } else if ip.is_unspecified() || ip.is_multicast() || s[0] == 0x2001 && s[1] == 0x0db8 {
        Class::Never
    } else if ip.to_ipv4().is_some() {
        // IPv4-compatible (deprecated) and NAT64 forms are not destinations we send to.
        Class::Never
    } else {
        Class::Public
    }
}

impl Policy {
    /// Whether a connection to `ip` is allowed.
    pub fn allows(&self, ip: IpAddr) -> bool {
        match classify(ip) {
            Class::Public => true,
            Class::Loopback => self.allow_loopback,
            Class::Private => self.allow_private,
            Class::Never => false,
        }
    }

    /// Checks a URL's form (absolute http(s), a host, no credentials) and, when its host is an
    /// address literal, the address. Names are checked by [`Policy::check_resolved`].
    pub fn check_url(&self, raw: &str) -> Result<reqwest::Url, String> {
        if raw.len() > 2048 {
            return Err("at most 2048 characters".into());
        }
        let url = reqwest::Url::parse(raw).map_err(|e| format!("not a URL: {e}"))?;
        if !matches!(url.scheme(), "https" | "http") {
            return Err("must be an http or https URL".into());
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err("must not carry credentials".into());
        }
        match url.host() {
            None => return Err("must have a host".into()),
            Some(url::Host::Ipv4(ip)) if !self.allows(ip.into()) => {
                return Err(format!("{ip} is not a public address"))
            }
            Some(url::Host::Ipv6(ip)) if !self.allows(ip.into()) => {
                return Err(format!("{ip} is not a public address"))
            }
            _ => {}
        }
        Ok(url)
    }

    /// Resolves the URL's host now and checks every address it has.
    pub async fn check_resolved(&self, url: &reqwest::Url) -> Result<(), String> {
        let host = url.host_str().ok_or("must have a host")?;
        let port = url.port_or_known_default().unwrap_or(443);
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host, port))
            .await
            .map_err(|e| format!("cannot resolve {host}: {e}"))?
            .collect();
        if addrs.is_empty() {
            return Err(format!("{host} has no address"));
        }
        match addrs.iter().find(|a| !self.allows(a.ip())) {
            Some(bad) => Err(format!(
                "{host} resolves to {}, not a public address",
                bad.ip()
            )),
            None => Ok(()),
        }
    }
}

/// A resolver for the sender's HTTP client that drops disallowed addresses, so a name is
/// checked at every connection, not only at registration.
#[derive(Debug, Clone)]
pub struct GuardedResolver(pub Policy);

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let policy = self.0;
        Box::pin(async move {
            let host = name.as_str().to_string();
            let found: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0))
                .await?
                .filter(|a| policy.allows(a.ip()))
                .collect();
            if found.is_empty() {
                return Err(format!("{host} has no allowed address").into());
            }
            let addrs: Addrs = Box::new(found.into_iter());
            Ok(addrs)
        })
    }
}

/// The sender's HTTP client: guarded resolution, no redirects, no proxies from the
/// environment, the configured timeout.
pub fn client(policy: Policy, timeout: std::time::Duration) -> reqwest::Client {
    reqwest::Client::builder()
        .dns_resolver(Arc::new(GuardedResolver(policy)))
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .timeout(timeout)
        .connect_timeout(timeout.min(std::time::Duration::from_secs(5)))
        .user_agent(concat!("ProctorHub-Webhooks/", env!("CARGO_PKG_VERSION")))
        .build()
        .expect("the webhook HTTP client builds")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn classifies_addresses() {
        for (a, c) in [
            ("8.8.8.8", Class::Public),
            ("2606:4700::1111", Class::Public),
            ("127.0.0.1", Class::Loopback),
            ("::1", Class::Loopback),
            ("10.1.2.3", Class::Private),
            ("172.16.0.1", Class::Private),
            ("192.168.1.1", Class::Private),
            ("169.254.169.254", Class::Private),
            ("100.64.0.1", Class::Private),
            ("fd00::1", Class::Private),
            ("fe80::1", Class::Private),
            ("::ffff:127.0.0.1", Class::Loopback),
            ("::ffff:10.0.0.1", Class::Private),
            ("0.0.0.0", Class::Never),
            ("::", Class::Never),
            ("224.0.0.1", Class::Never),
            ("255.255.255.255", Class::Never),
            ("192.0.2.1", Class::Never),
        ] {
            assert_eq!(classify(ip(a)), c, "{a}");
        }
    }

    #[test]
    fn policy_allows_what_it_says() {
        let strict = Policy::default();
        assert!(strict.allows(ip("1.1.1.1")));
        assert!(!strict.allows(ip("127.0.0.1")));
        assert!(!strict.allows(ip("169.254.169.254")));
        let loopback = Policy {
            allow_loopback: true,
            allow_private: false,
        };
        assert!(loopback.allows(ip("127.0.0.1")));
        assert!(!loopback.allows(ip("10.0.0.1")));
        assert!(!loopback.allows(ip("0.0.0.0")));
    }

    #[test]
    fn urls_are_checked() {
        let p = Policy::default();
        assert!(p.check_url("https://lms.example.edu/hooks").is_ok());
        assert!(p.check_url("ftp://lms.example.edu/").is_err());
        assert!(p.check_url("https://user:pw@lms.example.edu/").is_err());
        assert!(p.check_url("http://127.0.0.1:8080/").is_err());
        assert!(p.check_url("http://[::1]/").is_err());
        assert!(p
            .check_url("http://169.254.169.254/latest/meta-data")
            .is_err());
        assert!(p.check_url("not a url").is_err());
    }
}
