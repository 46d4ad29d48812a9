//! The dashboard's page: one HTML file and its scripts, one per page of
//! the dashboard (`assets/dashboard/`), embedded in the binary — nothing
//! from a CDN: machines are often offline. The page draws from the API
//! and redraws on the event stream.

use axum::extract::Path;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::error::ApiError;

const INDEX: &str = include_str!("../../assets/dashboard/index.html");

/// The page's script: one file per page in `assets/dashboard/`, served
/// as one response in this order (core first, start last; uPlot before
/// the plots), so a first visit costs one request for them all.
const APP: &str = concat!(
    include_str!("../../assets/dashboard/core.js"),
    "\n",
    include_str!("../../assets/dashboard/overview.js"),
    "\n",
    include_str!("../../assets/dashboard/project.js"),
    "\n",
    include_str!("../../assets/dashboard/pause.js"),
    "\n",
    include_str!("../../assets/dashboard/run.js"),
    "\n",
    include_str!("../../assets/dashboard/trust.js"),
    "\n",
    include_str!("../../assets/dashboard/notifications.js"),
    "\n",
    include_str!("../../assets/dashboard/tasks.js"),
    "\n",
    // uPlot (MIT), vendored from npm: assets/dashboard/vendor/README.md.
    include_str!("../../assets/dashboard/vendor/uplot.js"),
    "\n",
    include_str!("../../assets/dashboard/plots.js"),
    "\n",
    include_str!("../../assets/dashboard/start.js"),
);

/// The page's files, by the name it loads them with.
const ASSETS: &[(&str, &str)] = &[
    ("app.js", APP),
    (
        "uplot.css",
        include_str!("../../assets/dashboard/vendor/uplot.css"),
    ),
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
    /// A page's script added to the directory but not to the bundle would
    /// never run.
    #[test]
    fn every_script_is_in_the_bundle() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/dashboard");
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "js") {
                let text = std::fs::read_to_string(&path).unwrap();
                assert!(APP.contains(&text), "{} is not in APP", path.display());
            }
        }
    }

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
