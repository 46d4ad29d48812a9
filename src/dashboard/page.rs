//! The dashboard's page: one HTML file and its scripts, one per page of
//! the dashboard (`assets/dashboard/`), embedded in the binary — nothing
//! from a CDN: machines are often offline. The page draws from the API
//! and redraws on the event stream.

use axum::extract::Path;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::error::ApiError;

const INDEX: &str = include_str!("../../assets/dashboard/index.html");

/// The page's files, by the name it loads them with.
const ASSETS: &[(&str, &str)] = &[
    ("core.js", include_str!("../../assets/dashboard/core.js")),
    (
        "overview.js",
        include_str!("../../assets/dashboard/overview.js"),
    ),
    (
        "project.js",
        include_str!("../../assets/dashboard/project.js"),
    ),
    ("run.js", include_str!("../../assets/dashboard/run.js")),
    ("trust.js", include_str!("../../assets/dashboard/trust.js")),
    (
        "notifications.js",
        include_str!("../../assets/dashboard/notifications.js"),
    ),
    ("tasks.js", include_str!("../../assets/dashboard/tasks.js")),
    // uPlot (MIT), vendored from npm: assets/dashboard/vendor/README.md.
    (
        "uplot.js",
        include_str!("../../assets/dashboard/vendor/uplot.js"),
    ),
    (
        "uplot.css",
        include_str!("../../assets/dashboard/vendor/uplot.css"),
    ),
    ("plots.js", include_str!("../../assets/dashboard/plots.js")),
    ("start.js", include_str!("../../assets/dashboard/start.js")),
];

/// Scripts from this server only, inline styles; nothing is loaded from
/// elsewhere, and no other site may frame the page.
const POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; connect-src 'self'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; form-action 'none'";

fn content_type(name: &str) -> &'static str {
    match name.rsplit('.').next() {
        Some("js") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        _ => "text/html; charset=utf-8",
    }
}

fn serve(name: &str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type(name)),
            (header::CACHE_CONTROL, "no-store"),
            (header::CONTENT_SECURITY_POLICY, POLICY),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        body,
    )
        .into_response()
}

pub async fn index() -> Response {
    serve("index.html", INDEX)
}

pub async fn asset(Path(name): Path<String>) -> Response {
    match ASSETS.iter().find(|(n, _)| *n == name) {
        Some((n, body)) => serve(n, body),
        None => not_found().await,
    }
}

pub async fn not_found() -> Response {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "not_found",
        "no such page or endpoint: the API is under /api/v1",
    )
    .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every byte the page loads: its HTML and every asset.
    fn page_bytes() -> usize {
        INDEX.len() + ASSETS.iter().map(|(_, b)| b.len()).sum::<usize>()
    }

    /// Every script the page names is served, and every asset is named.
    #[test]
    fn the_page_loads_every_asset_and_only_those() {
        for (name, _) in ASSETS {
            assert!(
                INDEX.contains(&format!("/assets/{name}")),
                "{name} is embedded but the page never loads it"
            );
        }
        let named = INDEX.matches("/assets/").count();
        assert_eq!(
            named,
            ASSETS.len(),
            "the page loads an asset that is not embedded"
        );
    }

    #[test]
    fn the_page_stays_small() {
        assert!(page_bytes() < 150 * 1024, "{} bytes", page_bytes());
    }
}
