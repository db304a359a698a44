//! Where a node's media service is: the address a node registers on chain (the second entry
//! of its identity's addresses, after the overlay's multiaddr), `/ip4/<ip>/tcp/<port>/http`
//! or `/ip6/<ip>/tcp/<port>/http`, and the signalling base URL it stands for. WebRTC's UDP
//! socket uses the same port number.

use std::net::{IpAddr, SocketAddr};

/// The address to register for a media service reachable at `addr`.
pub fn media_address(addr: SocketAddr) -> String {
    let proto = match addr.ip() {
        IpAddr::V4(_) => "ip4",
        IpAddr::V6(_) => "ip6",
    };
    format!("/{proto}/{}/tcp/{}/http", addr.ip(), addr.port())
}

/// The socket address a registered media address names, if it is one.
pub fn parse_media_address(text: &str) -> Option<SocketAddr> {
    let mut parts = text.strip_prefix('/')?.split('/');
    let (proto, ip, tcp, port, http) = (
        parts.next()?,
        parts.next()?,
        parts.next()?,
        parts.next()?,
        parts.next()?,
    );
    if parts.next().is_some() || tcp != "tcp" || http != "http" {
        return None;
    }
    let ip: IpAddr = match proto {
        "ip4" => IpAddr::V4(ip.parse().ok()?),
        "ip6" => IpAddr::V6(ip.parse().ok()?),
        _ => return None,
    };
    Some(SocketAddr::new(ip, port.parse().ok()?))
}

/// The signalling base URL (`http://ip:port`) of a registered media address.
pub fn media_url(text: &str) -> Option<String> {
    let addr = parse_media_address(text)?;
    Some(format!("http://{addr}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn media_addresses_round_trip_and_others_are_not_media() {
        for addr in ["127.0.0.1:30445", "[::1]:8080"] {
            let addr: SocketAddr = addr.parse().expect("addr");
            let text = media_address(addr);
            assert_eq!(parse_media_address(&text), Some(addr));
        }
        assert_eq!(
            media_url("/ip4/10.0.0.2/tcp/30445/http").as_deref(),
            Some("http://10.0.0.2:30445")
        );
        for bad in [
            "/ip4/127.0.0.1/tcp/30444",
            "/ip4/127.0.0.1/tcp/30444/p2p/12D3",
            "/ip4/999.0.0.1/tcp/1/http",
            "/dns/example.com/tcp/1/http",
            "/ip4/127.0.0.1/udp/1/http",
            "",
        ] {
            assert_eq!(parse_media_address(bad), None, "{bad}");
        }
    }
}
