//! From a remote cache URL to an `object_store` client: which schemes are
//! accepted, how each store is built, and the short timeouts and retries
//! that keep a dead store cheap.
//!
//! Credentials, regions and endpoints come from the environment and each
//! store's usual sources (`AWS_*`, `GOOGLE_*`, `AZURE_*`, instance
//! metadata), never from bgtask's config. Building does no network I/O.

use std::sync::{Arc, Once};
use std::time::Duration;

use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey};
use object_store::azure::{AzureConfigKey, MicrosoftAzureBuilder};
use object_store::gcp::{GoogleCloudStorageBuilder, GoogleConfigKey};
use object_store::http::HttpBuilder;
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use object_store::{BackoffConfig, ClientConfigKey, ObjectStore, ObjectStoreScheme, RetryConfig};
use url::Url;

use super::RemoteError;

/// One line listing the schemes, for error messages.
pub(super) const SCHEMES: &str = "s3://bucket/prefix, gs://bucket/prefix, az://container/prefix \
     (or azure://, adl://, abfs[s]://, https://<account>.blob.core.windows.net/...), \
     http(s)://host/prefix (WebDAV, or any server taking PUT/GET/DELETE) or file:///dir";

/// Per request: giving up on a connection, on a silence while reading,
/// and on a whole request. Under a second for the first two, so that a
/// store that never accepts, or accepts and never answers, costs a run
/// less than a second all told (the rest of its lookups are not made).
const TIMEOUTS: [(ClientConfigKey, &str); 3] = [
    (ClientConfigKey::ConnectTimeout, "900ms"),
    (ClientConfigKey::ReadTimeout, "900ms"),
    (ClientConfigKey::Timeout, "2s"),
];

/// A checked URL: which store, where, and how to name it in messages.
pub(super) struct Target {
    pub url: Url,
    pub scheme: ObjectStoreScheme,
    /// The path prefix inside the store (empty for file://, whose
    /// directory is the store's root).
    pub prefix: Path,
    /// The URL without credentials, query or fragment.
    pub display: String,
}

/// Parses and checks `raw` without building anything.
pub(super) fn parse(raw: &str) -> Result<Target, RemoteError> {
    let bad = |why: String| RemoteError::BadUrl {
        url: redacted(raw),
        why,
    };
    let url = Url::parse(raw.trim())
        .map_err(|e| bad(format!("{e} (expected e.g. s3://bucket/prefix)")))?;
    let display = display(&url);
    let bad = |why: &str| RemoteError::BadUrl {
        url: display.clone(),
        why: why.to_owned(),
    };
    match url.scheme() {
        "s3" | "s3a" | "gs" | "az" | "adl" | "azure" | "abfs" | "abfss" | "http" | "https" => {
            if url.host_str().is_none_or(str::is_empty) {
                return Err(bad("it names no bucket, container or host"));
            }
        }
        "file" => {
            if url.host_str().is_some_and(|h| !h.is_empty()) {
                return Err(bad("a file:// URL takes no host: file:///absolute/dir"));
            }
        }
        scheme => {
            return Err(RemoteError::UnknownScheme {
                url: display,
                scheme: scheme.to_owned(),
            });
        }
    }
    let (scheme, prefix) = ObjectStoreScheme::parse(&url).map_err(|e| bad(&e.to_string()))?;
    let prefix = if scheme == ObjectStoreScheme::Local {
        url.to_file_path()
            .map_err(|()| bad("not a local directory path"))?;
        Path::default()
    } else {
        prefix
    };
    Ok(Target {
        url,
        scheme,
        prefix,
        display,
    })
}

/// `url` without userinfo, query or fragment.
pub(super) fn display(url: &Url) -> String {
    let mut shown = url.clone();
    let _ = shown.set_username("");
    let _ = shown.set_password(None);
    shown.set_query(None);
    shown.set_fragment(None);
    shown.to_string()
}

/// An unparsable URL for a message: everything before an `@` (which may be
/// a password) is dropped.
fn redacted(raw: &str) -> String {
    match raw.rsplit_once('@') {
        Some((before, after)) => match before.split_once("://") {
            Some((scheme, _)) => format!("{scheme}://…@{after}"),
            None => format!("…@{after}"),
        },
        None => raw.to_owned(),
    }
}

fn retry() -> RetryConfig {
    RetryConfig {
        backoff: BackoffConfig {
            init_backoff: Duration::from_millis(50),
            max_backoff: Duration::from_millis(200),
            base: 2.0,
        },
        max_retries: 0,
        retry_timeout: Duration::from_secs(1),
    }
}

/// The TLS of every store is rustls with ring, installed once per process.
fn install_crypto() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // Err: the process already has a provider, which serves as well.
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

/// The client for `target`. `overrides` are store config keys set after the
/// environment was read (tests point S3 at a local server this way).
pub(super) fn build(
    target: &Target,
    overrides: &[(&str, &str)],
) -> Result<Arc<dyn ObjectStore>, RemoteError> {
    install_crypto();
    let url = target.url.as_str();
    let failed = |e: &dyn std::fmt::Display| RemoteError::Store(format!("{}: {e}", target.display));
    let unknown_key =
        |k: &str| RemoteError::Store(format!("{}: unknown store option {k}", target.display));
    let store: Arc<dyn ObjectStore> = match &target.scheme {
        ObjectStoreScheme::AmazonS3 => {
            let mut b = AmazonS3Builder::from_env()
                .with_url(url)
                .with_retry(retry());
            for (key, value) in TIMEOUTS {
                b = b.with_config(AmazonS3ConfigKey::Client(key), value);
            }
            for (k, v) in overrides {
                b = b.with_config(k.parse().map_err(|_| unknown_key(k))?, *v);
            }
            Arc::new(b.build().map_err(|e| failed(&e))?)
        }
        ObjectStoreScheme::GoogleCloudStorage => {
            let mut b = GoogleCloudStorageBuilder::from_env()
                .with_url(url)
                .with_retry(retry());
            for (key, value) in TIMEOUTS {
                b = b.with_config(GoogleConfigKey::Client(key), value);
            }
            for (k, v) in overrides {
                b = b.with_config(k.parse().map_err(|_| unknown_key(k))?, *v);
            }
            Arc::new(b.build().map_err(|e| failed(&e))?)
        }
        ObjectStoreScheme::MicrosoftAzure => {
            let mut b = MicrosoftAzureBuilder::from_env()
                .with_url(url)
                .with_retry(retry());
            for (key, value) in TIMEOUTS {
                b = b.with_config(AzureConfigKey::Client(key), value);
            }
            for (k, v) in overrides {
                b = b.with_config(k.parse().map_err(|_| unknown_key(k))?, *v);
            }
            Arc::new(b.build().map_err(|e| failed(&e))?)
        }
        ObjectStoreScheme::Http => {
            let mut b = HttpBuilder::new()
                .with_url(&target.url[..url::Position::BeforePath])
                .with_retry(retry())
                .with_config(
                    ClientConfigKey::AllowHttp,
                    (target.url.scheme() == "http").to_string(),
                );
            for (key, value) in TIMEOUTS {
                b = b.with_config(key, value);
            }
            for (k, v) in overrides {
                b = b.with_config(k.parse().map_err(|_| unknown_key(k))?, *v);
            }
            Arc::new(b.build().map_err(|e| failed(&e))?)
        }
        ObjectStoreScheme::Local => {
            let dir = target
                .url
                .to_file_path()
                .map_err(|()| failed(&"not a local directory path"))?;
            std::fs::create_dir_all(&dir)
                .map_err(|e| failed(&format!("cannot create the directory: {e}")))?;
            Arc::new(LocalFileSystem::new_with_prefix(&dir).map_err(|e| failed(&e))?)
        }
        other => {
            return Err(RemoteError::UnknownScheme {
                url: target.display.clone(),
                scheme: format!("{other:?}").to_lowercase(),
            });
        }
    };
    Ok(store)
}
