//! Who may talk to the dashboard. It can start analyzers, which run
//! repository code, so every request must:
//! - name a host that is this server (a loopback name with its port, the
//!   `--listen` address, or a name given with `--allow-host`): a page on
//!   another site that rebinds its DNS name to 127.0.0.1 is refused;
//! - carry the token: `Authorization: Bearer T` (scripts) or the cookie
//!   that opening `/?token=T` sets (`HttpOnly`, `SameSite=Strict`, and
//!   `Secure` over HTTPS) before redirecting to a clean URL;
//! - when it changes something (POST), come from this origin (this
//!   server's scheme and one of its hosts): a cookie alone does not do
//!   (CSRF); a request with the bearer header may omit `Origin`, since no
//!   other site can set that header.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::error::ApiError;

const COOKIE: &str = "bgtask_token";

pub struct Guard {
    pub token: String,
    /// `Host` values that name this server (`127.0.0.1:7420`, …).
    pub hosts: Vec<String>,
    /// Served over HTTPS: origins are `https://…`, the cookie is `Secure`.
    pub tls: bool,
}

impl Guard {
    /// The guard of a server on `addr`, which also answers to the
    /// `--allow-host` names in `allow`.
    pub fn new(token: String, addr: SocketAddr, allow: &[String], tls: bool) -> Guard {
        Guard {
            token,
            hosts: hosts(addr, allow),
            tls,
        }
    }

    fn scheme(&self) -> &'static str {
        if self.tls { "https" } else { "http" }
    }

    /// `origin` is `scheme://host` of this server.
    fn is_ours(&self, origin: &str) -> bool {
        origin
            .strip_prefix(self.scheme())
            .and_then(|o| o.strip_prefix("://"))
            .is_some_and(|h| self.hosts.iter().any(|ok| ok.eq_ignore_ascii_case(h)))
    }
}

/// `--allow-host`'s value: a name as it appears in `Host`, with or
/// without its port.
pub fn parse_host(s: &str) -> Result<String, String> {
    let ok = !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || ".-_:[]".contains(c));
    if ok {
        Ok(s.to_owned())
    } else {
        Err("expected NAME or NAME:PORT, like dash.example.com or 192.168.1.5:7420".to_owned())
    }
}

/// The `Host` values that name this server on `addr`: the loopback names
/// with its port, the address itself (unless it is every interface: no
/// client names it so), and the `--allow-host` names, as given and, when
/// they have no port, with this one.
fn hosts(addr: SocketAddr, allow: &[String]) -> Vec<String> {
    let port = addr.port();
    let mut hosts = vec![
        format!("127.0.0.1:{port}"),
        format!("localhost:{port}"),
        format!("[::1]:{port}"),
    ];
    let mut add = |h: String| {
        if !hosts.iter().any(|o| o.eq_ignore_ascii_case(&h)) {
            hosts.push(h);
        }
    };
    if !addr.ip().is_unspecified() {
        add(addr.to_string());
    }
    for name in allow {
        add(name.clone());
        if !has_port(name) {
            add(format!("{name}:{port}"));
        }
    }
    hosts
}

/// `name:7420`, `[::1]:7420` have a port; `name`, `[::1]`, `::1` do not.
fn has_port(host: &str) -> bool {
    host.rsplit_once(':').is_some_and(|(name, port)| {
        port.parse::<u16>().is_ok() && (name.ends_with(']') || !name.contains(':'))
    })
}

/// A fresh secret: 32 bytes from the kernel, in hex.
pub fn new_token() -> std::io::Result<String> {
    use std::io::Read;
    let mut bytes = [0u8; 32];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut bytes)?;
    Ok(blake3::Hash::from_bytes(bytes).to_hex().to_string())
}

/// Equal, in time that does not depend on where they differ.
fn same(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

fn header<'a>(headers: &'a HeaderMap, name: &header::HeaderName) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

fn cookie_token(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|c| c.trim().strip_prefix(COOKIE)?.strip_prefix('='))
}

fn query_token(query: Option<&str>) -> Option<&str> {
    query?.split('&').find_map(|kv| kv.strip_prefix("token="))
}

pub async fn check(State(guard): State<Arc<Guard>>, request: Request, next: Next) -> Response {
    let headers = request.headers();
    let host = header(headers, &header::HOST).unwrap_or("");
    if !guard.hosts.iter().any(|h| h.eq_ignore_ascii_case(host)) {
        return ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden_host",
            format!("{host:?} is not this server's name (open it by the address `bgtask dashboard` printed)"),
        )
        .into_response();
    }
    // Opening the printed URL: keep the token in a cookie, then drop it
    // from the address bar (and the history).
    if request.method() == Method::GET
        && let Some(t) = query_token(request.uri().query())
    {
        if !same(t, &guard.token) {
            return unauthorized();
        }
        let secure = if guard.tls { "; Secure" } else { "" };
        let cookie = format!("{COOKIE}={t}; HttpOnly; SameSite=Strict; Path=/{secure}");
        return (
            StatusCode::SEE_OTHER,
            [
                (header::LOCATION, request.uri().path().to_owned()),
                (header::SET_COOKIE, cookie),
            ],
        )
            .into_response();
    }
    let bearer = header(headers, &header::AUTHORIZATION)
        .and_then(|v| v.strip_prefix("Bearer "))
        .is_some_and(|t| same(t.trim(), &guard.token));
    let cookie = cookie_token(headers).is_some_and(|t| same(t, &guard.token));
    if !bearer && !cookie {
        return unauthorized();
    }
    if request.method() != Method::GET && request.method() != Method::HEAD {
        let origin = header(headers, &header::ORIGIN);
        let ours = origin.is_some_and(|o| guard.is_ours(o));
        if !ours && (origin.is_some() || !bearer) {
            return ApiError::new(
                StatusCode::FORBIDDEN,
                "forbidden_origin",
                "a change from a browser must come from the dashboard's own page (Origin); \
                 other clients send the bearer token and no Origin",
            )
            .into_response();
        }
    }
    next.run(request).await
}

/// 401, with the scheme to use (RFC 6750), so a client such as an MCP
/// one knows to send the token rather than start an OAuth flow.
fn unauthorized() -> Response {
    let mut response = ApiError::new(
        StatusCode::UNAUTHORIZED,
        "unauthorized",
        "no valid token: open the address `bgtask dashboard` printed, or send `Authorization: Bearer TOKEN`",
    )
    .into_response();
    response.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        header::HeaderValue::from_static("Bearer realm=\"bgtask\""),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_fresh_and_compared_whole() {
        let (a, b) = (new_token().unwrap(), new_token().unwrap());
        assert_eq!(a.len(), 64);
        assert_ne!(a, b);
        assert!(same(&a, &a.clone()));
        assert!(!same(&a, &b));
        assert!(!same(&a, &a[..63]));
    }

    #[test]
    fn the_token_is_found_in_a_cookie_or_the_query() {
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            "a=1; bgtask_token=abc; b=2".parse().unwrap(),
        );
        assert_eq!(cookie_token(&h), Some("abc"));
        assert_eq!(query_token(Some("x=1&token=t0")), Some("t0"));
        assert_eq!(query_token(Some("tokens=1")), None);
    }

    #[test]
    fn the_host_names_are_loopback_the_address_and_the_allowed_ones() {
        let loopback = ["127.0.0.1:7420", "localhost:7420", "[::1]:7420"];
        let rows: [(&str, &[&str], &[&str]); 5] = [
            ("127.0.0.1:7420", &[], &[]),
            ("192.168.1.5:7420", &[], &["192.168.1.5:7420"]),
            ("0.0.0.0:7420", &[], &[]),
            (
                "[::]:7420",
                &["Dash.example", "dash.example:443", "[fe80::1]"],
                &[
                    "Dash.example",
                    "Dash.example:7420",
                    "dash.example:443",
                    "[fe80::1]",
                    "[fe80::1]:7420",
                ],
            ),
            ("[fe80::1]:7420", &["[fe80::1]:7420"], &["[fe80::1]:7420"]),
        ];
        for (addr, allow, more) in rows {
            let allow: Vec<String> = allow.iter().map(|&a| a.to_owned()).collect();
            let want: Vec<&str> = loopback.iter().chain(more).copied().collect();
            assert_eq!(hosts(addr.parse().unwrap(), &allow), want, "{addr}");
        }
    }

    #[test]
    fn allowed_hosts_are_names_with_or_without_a_port() {
        for ok in [
            "dash.example.com",
            "dash:8443",
            "[fe80::1]:7420",
            "192.168.1.5",
        ] {
            assert_eq!(parse_host(ok).as_deref(), Ok(ok));
        }
        for bad in ["", "a b", "https://dash", "dash/x", "user@dash"] {
            assert!(parse_host(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn an_origin_is_ours_with_our_scheme_and_one_of_our_hosts() {
        let guard = |tls| Guard {
            token: String::new(),
            hosts: vec!["127.0.0.1:7420".into(), "Dash.example".into()],
            tls,
        };
        let rows = [
            (false, "http://127.0.0.1:7420", true),
            (false, "http://dash.example", true),
            (false, "https://127.0.0.1:7420", false),
            (false, "http://127.0.0.1:7421", false),
            (false, "http://attacker.example", false),
            (false, "null", false),
            (true, "https://127.0.0.1:7420", true),
            (true, "https://DASH.example", true),
            (true, "http://127.0.0.1:7420", false),
            (true, "https:/127.0.0.1:7420", false),
        ];
        for (tls, origin, ours) in rows {
            assert_eq!(guard(tls).is_ours(origin), ours, "tls {tls}, {origin}");
        }
    }
}
