//! Who may talk to the dashboard. It can start analyzers, which run
//! repository code, so every request must:
//! - name a host that is this server (a loopback name with its port, or
//!   the configured one): a page on another site that rebinds its DNS name
//!   to 127.0.0.1 is refused;
//! - carry the token: `Authorization: Bearer T` (scripts) or the cookie
//!   that opening `/?token=T` sets (`HttpOnly`, `SameSite=Strict`) before
//!   redirecting to a clean URL;
//! - when it changes something (POST), come from this origin: a cookie
//!   alone does not do (CSRF); a request with the bearer header may omit
//!   `Origin`, since no other site can set that header.

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
        let cookie = format!("{COOKIE}={t}; HttpOnly; SameSite=Strict; Path=/");
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
        let ours = origin.is_some_and(|o| {
            o.strip_prefix("http://")
                .is_some_and(|h| guard.hosts.iter().any(|ok| ok.eq_ignore_ascii_case(h)))
        });
        if !ours && (origin.is_some() || !bearer) {
            return ApiError::new(
                StatusCode::FORBIDDEN,
                "forbidden_origin",
                "a change must come from the dashboard's own page (Origin) or carry the bearer token",
            )
            .into_response();
        }
    }
    next.run(request).await
}

fn unauthorized() -> Response {
    ApiError::new(
        StatusCode::UNAUTHORIZED,
        "unauthorized",
        "no valid token: open the address `bgtask dashboard` printed, or send `Authorization: Bearer TOKEN`",
    )
    .into_response()
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
}
