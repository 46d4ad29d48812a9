//! Is there a network at all? Asked once per run before a dependency audit
//! starts, so that with the network down an audit ends in a moment with an
//! honest reason instead of after the tool's retries (pip-audit: 20 s).
//!
//! Two checks that cost no request to anyone: the machine has a usable route
//! that is not loopback (`/proc/net/route`, `/proc/net/ipv6_route`), and the
//! proxy the tools would use, if one is set, accepts a connection. Whatever
//! else can go wrong (DNS, a firewall that drops packets) is left to the
//! tool, which says so itself.

use std::time::Duration;

/// How long a proxy gets to accept a connection.
const PROXY_CONNECT: Duration = Duration::from_secs(2);

/// Route flags (`linux/route.h`).
const RTF_UP: u32 = 0x0001;
const RTF_REJECT: u32 = 0x0200;

/// `Err` says why the network cannot be reached.
pub async fn reachable() -> Result<(), String> {
    if !has_route() {
        return Err("the network is unreachable (no network route on this machine)".to_owned());
    }
    if let Some((var, addr)) = proxy() {
        let connect = tokio::net::TcpStream::connect(addr.as_str());
        match tokio::time::timeout(PROXY_CONNECT, connect).await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => {
                return Err(format!(
                    "the network is unreachable (the proxy in ${var}, {addr}: {e})"
                ));
            }
            Err(_) => {
                return Err(format!(
                    "the network is unreachable (the proxy in ${var}, {addr}, did not answer in {}s)",
                    PROXY_CONNECT.as_secs()
                ));
            }
        }
    }
    Ok(())
}

/// Whether any route that is up, not a reject route and not on loopback
/// exists. Where the tables cannot be read (not Linux), assume yes.
fn has_route() -> bool {
    let v4 = std::fs::read_to_string("/proc/net/route");
    let v6 = std::fs::read_to_string("/proc/net/ipv6_route");
    if v4.is_err() && v6.is_err() {
        return true;
    }
    let v4 = v4.unwrap_or_default();
    let v6 = v6.unwrap_or_default();
    // v4: Iface Destination Gateway Flags ... (a header line first).
    let v4_up = v4.lines().skip(1).any(|line| {
        let cols: Vec<&str> = line.split_whitespace().collect();
        cols.len() > 3 && usable(cols[0], cols[3])
    });
    // v6: dest plen src plen next-hop metric refcnt use flags iface.
    let v6_up = v6.lines().any(|line| {
        let cols: Vec<&str> = line.split_whitespace().collect();
        cols.len() == 10 && usable(cols[9], cols[8])
    });
    v4_up || v6_up
}

fn usable(iface: &str, flags_hex: &str) -> bool {
    let Ok(flags) = u32::from_str_radix(flags_hex, 16) else {
        return false;
    };
    iface != "lo" && flags & RTF_UP != 0 && flags & RTF_REJECT == 0
}

/// The proxy HTTPS requests would go through (`host:port`) and the variable
/// that set it, unless `NO_PROXY` exempts everything.
fn proxy() -> Option<(String, String)> {
    let no_proxy = ["NO_PROXY", "no_proxy"]
        .iter()
        .filter_map(|v| std::env::var(v).ok())
        .any(|v| v.split(',').any(|h| h.trim() == "*"));
    if no_proxy {
        return None;
    }
    ["HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"]
        .iter()
        .find_map(|var| {
            let value = std::env::var(var).ok()?;
            proxy_addr(&value).map(|addr| ((*var).to_owned(), addr))
        })
}

/// `scheme://user:pass@host:port/path` → `host:port` (the scheme's port
/// when none is given).
fn proxy_addr(value: &str) -> Option<String> {
    let value = value.trim();
    if value.is_empty() {
        return None;
    }
    let (scheme, rest) = value.split_once("://").unwrap_or(("http", value));
    let rest = rest.split('/').next().unwrap_or(rest);
    let host_port = rest.rsplit_once('@').map_or(rest, |(_, h)| h);
    if host_port.is_empty() {
        return None;
    }
    let has_port = match host_port.rfind(']') {
        Some(close) => host_port[close..].contains(':'),
        None => host_port.contains(':'),
    };
    if has_port {
        return Some(host_port.to_owned());
    }
    let port = match scheme {
        "https" => 443,
        s if s.starts_with("socks") => 1080,
        _ => 80,
    };
    Some(format!("{host_port}:{port}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proxy_addresses() {
        assert_eq!(
            proxy_addr("http://127.0.0.1:9").as_deref(),
            Some("127.0.0.1:9")
        );
        assert_eq!(
            proxy_addr("http://u:p@proxy.corp:3128/").as_deref(),
            Some("proxy.corp:3128")
        );
        assert_eq!(proxy_addr("proxy.corp").as_deref(), Some("proxy.corp:80"));
        assert_eq!(
            proxy_addr("https://proxy.corp").as_deref(),
            Some("proxy.corp:443")
        );
        assert_eq!(proxy_addr("socks5h://[::1]").as_deref(), Some("[::1]:1080"));
        assert_eq!(proxy_addr("http://[::1]:8").as_deref(), Some("[::1]:8"));
        assert_eq!(proxy_addr(" "), None);
    }

    #[test]
    fn route_flags() {
        assert!(usable("eth0", "0003"));
        assert!(usable("eth0", "00000001"));
        assert!(!usable("lo", "0001"));
        // A namespace without interfaces: reject routes on loopback.
        assert!(!usable("lo", "00200200"));
        assert!(!usable("eth0", "0201"));
        assert!(!usable("eth0", "0000"));
        assert!(!usable("eth0", "zz"));
    }
}
