//! The client's address for rate limits and logs: the peer address, or, behind the proxies
//! `TRUSTED_PROXY_HOPS` / `TRUSTED_PROXIES` name, the rightmost `X-Forwarded-For` entry that is
//! not one of them (see `domain::infra::config::TrustedProxies`). Other headers (`X-Real-IP`,
//! `Forwarded`) are never believed: a client can send them.

use std::net::{IpAddr, Ipv4Addr};

use domain::infra::config::TrustedProxies;
use poem::Request;

pub fn client_ip(req: &Request, trusted: &TrustedProxies) -> IpAddr {
    let peer = req
        .remote_addr()
        .as_socket_addr()
        .map(|a| a.ip())
        .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
    if trusted == &TrustedProxies::default() {
        return peer.to_canonical();
    }
    let forwarded_for: Vec<&str> = req
        .headers()
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect();
    trusted.client_address(peer, &forwarded_for)
}
