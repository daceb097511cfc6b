//! Which address a request came from, behind the proxies we were told to trust.
//!
//! Each proxy appends the address it saw to `X-Forwarded-For`, so only the right end of the list
//! is written by our proxies; everything further left is whatever the client sent. We walk from
//! the right over the proxies we trust (`TRUSTED_PROXY_HOPS` of them, then any address inside
//! `TRUSTED_PROXIES`) and take the first address that is not one of them.

use std::net::{IpAddr, SocketAddr};

use ipnet::IpNet;

/// The proxies in front of the api whose `X-Forwarded-For` entries are believed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TrustedProxies {
    /// Proxies every request passes through, whatever their address (Render's router: 1).
    pub hops: u8,
    /// Proxies trusted by address wherever they sit (Cloudflare's ranges, a local nginx).
    pub networks: Vec<IpNet>,
}

impl TrustedProxies {
    /// Reads `TRUSTED_PROXY_HOPS` and `TRUSTED_PROXIES` (addresses or CIDR ranges, comma or space
    /// separated); the older `TRUST_PROXY_HEADERS=true` means one hop.
    pub(super) fn parse(
        hops: Option<String>,
        networks: Option<String>,
        legacy_flag: Option<bool>,
    ) -> Result<Self, super::ConfigError> {
        if legacy_flag.is_some() && (hops.is_some() || networks.is_some()) {
            return Err(super::problem(
                "TRUST_PROXY_HEADERS",
                "is replaced by TRUSTED_PROXY_HOPS and TRUSTED_PROXIES: remove it",
            ));
        }
        let hops = match hops {
            None => u8::from(legacy_flag == Some(true)),
            Some(raw) => raw.parse().ok().filter(|h| *h <= 16).ok_or_else(|| {
                super::problem("TRUSTED_PROXY_HOPS", "must be a whole number from 0 to 16")
            })?,
        };
        let networks = networks
            .unwrap_or_default()
            .split([',', ' '])
            .filter(|n| !n.is_empty())
            .map(|n| {
                n.parse::<IpNet>()
                    .or_else(|_| n.parse::<IpAddr>().map(IpNet::from))
                    .map(|n| n.trunc())
                    .map_err(|_| {
                        super::problem(
                            "TRUSTED_PROXIES",
                            "must be addresses or CIDR ranges such as 10.0.0.0/8, comma-separated",
                        )
                    })
            })
            .collect::<Result<_, _>>()?;
        Ok(Self { hops, networks })
    }

    fn trusts_address(&self, ip: IpAddr) -> bool {
        self.networks.iter().any(|n| n.contains(&ip))
    }

    /// The client's address: `peer` is the connection's, `forwarded_for` the `X-Forwarded-For`
    /// header values in the order received. Without trusted proxies, always `peer`.
    pub fn client_address(&self, peer: IpAddr, forwarded_for: &[&str]) -> IpAddr {
        let peer = peer.to_canonical();
        let mut hops_left = self.hops;
        let mut is_proxy = |ip: IpAddr| {
            if hops_left > 0 {
                hops_left -= 1;
                true
            } else {
                self.trusts_address(ip)
            }
        };
        if !is_proxy(peer) {
            return peer;
        }
        let entries = forwarded_for
            .iter()
            .rev()
            .flat_map(|value| value.rsplit(','));
        // The address the last proxy we passed reported; each entry is written by the proxy to
        // its right, so nothing the client wrote is read before an untrusted address is found.
        let mut seen = peer;
        for entry in entries {
            let Some(ip) = parse_entry(entry) else {
                // Garbage where a trusted proxy should have written an address: keep that
                // proxy's own address rather than guess.
                return seen;
            };
            seen = ip;
            if !is_proxy(ip) {
                return ip;
            }
        }
        // Fewer entries than trusted proxies: the leftmost was still written by one of them.
        seen
    }
}

/// An `X-Forwarded-For` entry: an address, possibly with a port or in brackets.
fn parse_entry(entry: &str) -> Option<IpAddr> {
    let entry = entry.trim();
    entry
        .parse::<IpAddr>()
        .or_else(|_| entry.parse::<SocketAddr>().map(|s| s.ip()))
        .ok()
        .map(|ip| ip.to_canonical())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn proxies(hops: Option<&str>, networks: Option<&str>) -> TrustedProxies {
        TrustedProxies::parse(hops.map(Into::into), networks.map(Into::into), None).unwrap()
    }

    #[test]
    fn without_trusted_proxies_the_header_is_ignored() {
        let none = TrustedProxies::default();
        let peer = ip("198.51.100.1");
        assert_eq!(none.client_address(peer, &["203.0.113.9"]), peer);
    }

    #[test]
    fn one_hop_takes_the_address_the_proxy_appended() {
        let render = proxies(Some("1"), None);
        let peer = ip("10.0.0.5");
        let spoofed = ["203.0.113.66, 198.51.100.7", "192.0.2.1"];
        assert_eq!(render.client_address(peer, &spoofed), ip("192.0.2.1"));
        assert_eq!(
            render.client_address(peer, &["203.0.113.66, 192.0.2.1"]),
            ip("192.0.2.1")
        );
        // The proxy set no header: its own address, never anything the client chose.
        assert_eq!(render.client_address(peer, &[]), peer);
    }

    #[test]
    fn two_hops_skip_the_outer_proxy_too() {
        let two = proxies(Some("2"), None);
        let header = ["1.1.1.1, 192.0.2.1, 172.16.0.9"];
        assert_eq!(two.client_address(ip("10.0.0.5"), &header), ip("192.0.2.1"));
        assert_eq!(
            two.client_address(ip("10.0.0.5"), &["192.0.2.1"]),
            ip("192.0.2.1")
        );
    }

    #[test]
    fn trusted_ranges_are_skipped_only_when_the_peer_is_one_of_them() {
        let cloudflare = proxies(None, Some("127.0.0.1, 173.245.48.0/20 2400:cb00::/32"));
        let header = ["6.6.6.6, 192.0.2.1, 173.245.48.7"];
        assert_eq!(
            cloudflare.client_address(ip("127.0.0.1"), &header),
            ip("192.0.2.1")
        );
        let direct = ip("198.51.100.4");
        assert_eq!(cloudflare.client_address(direct, &header), direct);
        let v6 = ["2001:db8::7, 2400:cb00:1::1"];
        assert_eq!(
            cloudflare.client_address(ip("::ffff:127.0.0.1"), &v6),
            ip("2001:db8::7")
        );
    }

    #[test]
    fn entries_with_ports_parse_and_garbage_stops_the_walk() {
        let one = proxies(Some("1"), None);
        let peer = ip("10.0.0.5");
        assert_eq!(
            one.client_address(peer, &["192.0.2.1:5555"]),
            ip("192.0.2.1")
        );
        assert_eq!(
            one.client_address(peer, &["[2001:db8::1]:443"]),
            ip("2001:db8::1")
        );
        assert_eq!(one.client_address(peer, &["unknown"]), peer);
    }

    #[test]
    fn bad_settings_are_refused_with_the_variable_named() {
        let hops = TrustedProxies::parse(Some("many".into()), None, None).unwrap_err();
        assert_eq!(hops.variable, "TRUSTED_PROXY_HOPS");
        let nets = TrustedProxies::parse(None, Some("10.0.0.0/33".into()), None).unwrap_err();
        assert_eq!(nets.variable, "TRUSTED_PROXIES");
        let both = TrustedProxies::parse(Some("1".into()), None, Some(true)).unwrap_err();
        assert_eq!(both.variable, "TRUST_PROXY_HEADERS");
        let legacy = TrustedProxies::parse(None, None, Some(true)).unwrap();
        assert_eq!(legacy.hops, 1);
        let off = TrustedProxies::parse(None, None, Some(false)).unwrap();
        assert_eq!(off, TrustedProxies::default());
    }
}
