//! The team's shared result cache on an object store: S3, GCS, Azure Blob,
//! an HTTP server (DAV, or plain PUT/GET/DELETE), or a directory (`file://`).
//!
//! Owns the store client, the object layout (`<prefix>/v1/<key[..2]>/<key>`)
//! and the entry format (`entry.rs`: compressed, MAC'd with a key derived
//! from the team secret). Does not own cache keys, what a payload means, or
//! when to look up and store: the engine decides that.
//!
//! Every call is bounded by the caller's deadline on top of short
//! per-request timeouts and no retries, so a dead store costs at most the
//! deadline. A lookup never fails: it is a hit, a miss, a rejected entry
//! (tampered, corrupt, another secret or format, too large), or the store
//! being unavailable. Without a secret nothing can be verified, so
//! nothing is read or written; listing and deleting still work.

mod entry;
mod store;
#[cfg(test)]
mod tests;

use std::fmt;
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use futures_util::StreamExt;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};

/// What to open: the store's URL and the team secret (None: no secret configured).
pub struct RemoteSpec {
    pub url: String,
    pub secret: Option<Vec<u8>>,
}

#[derive(Debug, thiserror::Error)]
pub enum RemoteError {
    #[error("invalid remote cache URL {url}: {why} (accepted: {})", store::SCHEMES)]
    BadUrl { url: String, why: String },
    #[error(
        "unsupported scheme {scheme}:// in remote cache URL {url} (accepted: {})",
        store::SCHEMES
    )]
    UnknownScheme { url: String, scheme: String },
    /// The store's client could not be set up (the message names the URL).
    #[error("cannot set up the remote cache at {0}")]
    Store(String),
}

/// Checks a URL without building anything (for config validation): None when usable, else why.
pub fn url_problem(url: &str) -> Option<String> {
    store::parse(url).err().map(|e| e.to_string())
}

/// A handle on the remote cache; cheap to clone.
#[derive(Clone)]
pub struct Remote {
    inner: Arc<Inner>,
}

struct Inner {
    store: Arc<dyn ObjectStore>,
    prefix: Path,
    display: String,
    mac: Option<entry::MacKey>,
    /// The password in the URL, kept out of every message.
    password: Option<String>,
    max_payload: usize,
}

/// One lookup's outcome.
#[derive(Debug)]
pub enum Fetched {
    /// Verified and decompressed: the payload bytes that were put.
    Hit(Vec<u8>),
    Miss,
    /// Present but failed the MAC, truncated, corrupt, too large, or of another format version: counted, never used.
    Rejected(String),
    /// The store could not be asked (down, slow, forbidden, timed out): why.
    Unavailable(String),
}

const NO_SECRET: &str = "no secret is configured, so entries can be neither verified nor signed";
const TIMED_OUT: &str = "no answer before the deadline";

impl fmt::Debug for Remote {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Remote")
            .field("url", &self.inner.display)
            .field("can_verify", &self.can_verify())
            .finish_non_exhaustive()
    }
}

impl Remote {
    /// Builds the store from the URL (no network I/O).
    pub fn open(spec: &RemoteSpec) -> Result<Remote, RemoteError> {
        Remote::open_with(spec, &[], entry::MAX_PAYLOAD)
    }

    /// `open`, with store config keys set over the environment's and a
    /// payload limit (tests).
    fn open_with(
        spec: &RemoteSpec,
        overrides: &[(&str, &str)],
        max_payload: usize,
    ) -> Result<Remote, RemoteError> {
        let target = store::parse(&spec.url)?;
        let store = store::build(&target, overrides)?;
        Ok(Remote {
            inner: Arc::new(Inner {
                store,
                prefix: target.prefix,
                display: target.display,
                mac: spec
                    .secret
                    .as_deref()
                    .filter(|s| !s.is_empty())
                    .map(entry::MacKey::new),
                password: target.url.password().map(str::to_owned),
                max_payload,
            }),
        })
    }

    /// Whether entries can be verified (a secret is configured); without one, `get()` must not be used.
    pub fn can_verify(&self) -> bool {
        self.inner.mac.is_some()
    }

    /// The URL, without any userinfo/credentials, for messages.
    pub fn display_url(&self) -> String {
        self.inner.display.clone()
    }

    /// Looks an entry up, giving up at `deadline` (Unavailable).
    pub async fn get(&self, key: &str, deadline: Instant) -> Fetched {
        if let Err(why) = entry::check_key(key) {
            return Fetched::Rejected(why);
        }
        let Some(mac) = &self.inner.mac else {
            return Fetched::Rejected(NO_SECRET.into());
        };
        let path = entry::object_path(&self.inner.prefix, key);
        let bytes = match bounded(deadline, self.download(&path)).await {
            Err(()) => return Fetched::Unavailable(TIMED_OUT.into()),
            Ok(Err(outcome)) => return outcome,
            Ok(Ok(bytes)) => bytes,
        };
        match entry::decode(mac, key, &bytes, self.inner.max_payload) {
            Ok(payload) => Fetched::Hit(payload),
            Err(why) => Fetched::Rejected(why),
        }
    }

    /// The stored bytes at `path`, or the lookup's outcome when there are none.
    async fn download(&self, path: &Path) -> Result<Vec<u8>, Fetched> {
        let limit = entry::max_stored(self.inner.max_payload);
        let too_large = |size: u64| {
            Fetched::Rejected(format!(
                "the entry is {size} bytes or more, over the limit of {limit}"
            ))
        };
        let got = match self.inner.store.get(path).await {
            Ok(got) => got,
            Err(object_store::Error::NotFound { .. }) => return Err(Fetched::Miss),
            Err(e) => return Err(Fetched::Unavailable(self.why(&e))),
        };
        if got.meta.size > limit {
            return Err(too_large(got.meta.size));
        }
        let mut bytes = Vec::new();
        let mut chunks = got.into_stream();
        while let Some(chunk) = chunks.next().await {
            let chunk = chunk.map_err(|e| Fetched::Unavailable(self.why(&e)))?;
            let size = (bytes.len() + chunk.len()) as u64;
            if size > limit {
                return Err(too_large(size));
            }
            bytes.extend_from_slice(&chunk);
        }
        Ok(bytes)
    }

    /// Stores an entry (compressed, MAC'd); Err(why) on failure; bounded by `deadline`.
    pub async fn put(&self, key: &str, payload: &[u8], deadline: Instant) -> Result<(), String> {
        entry::check_key(key)?;
        let mac = self.inner.mac.as_ref().ok_or(NO_SECRET)?;
        let bytes = entry::encode(mac, key, payload, self.inner.max_payload)?;
        let path = entry::object_path(&self.inner.prefix, key);
        let stored = self.inner.store.put(&path, PutPayload::from(bytes));
        match bounded(deadline, stored).await {
            Err(()) => Err(TIMED_OUT.into()),
            Ok(Err(e)) => Err(self.why(&e)),
            Ok(Ok(_)) => Ok(()),
        }
    }

    /// Every entry: (key, stored size in bytes, last modified).
    pub async fn list(&self, deadline: Instant) -> Result<Vec<(String, u64, SystemTime)>, String> {
        let dir = entry::entries_dir(&self.inner.prefix);
        let listing = async {
            let mut entries = Vec::new();
            let mut metas = self.inner.store.list(Some(&dir));
            while let Some(meta) = metas.next().await {
                match meta {
                    // Objects that are not entries (a store's temporary
                    // files, anything put there by hand) are not listed.
                    Ok(meta) => {
                        if let Some(key) = entry::key_of(&meta.location) {
                            entries.push((key, meta.size, SystemTime::from(meta.last_modified)));
                        }
                    }
                    // Nothing stored yet.
                    Err(object_store::Error::NotFound { .. }) => break,
                    Err(e) => return Err(self.why(&e)),
                }
            }
            Ok(entries)
        };
        bounded(deadline, listing)
            .await
            .map_err(|()| TIMED_OUT.to_owned())?
    }

    /// Deletes an entry; one that is not there counts as deleted.
    pub async fn delete(&self, key: &str, deadline: Instant) -> Result<(), String> {
        entry::check_key(key)?;
        let path = entry::object_path(&self.inner.prefix, key);
        match bounded(deadline, self.inner.store.delete(&path)).await {
            Err(()) => Err(TIMED_OUT.into()),
            Ok(Ok(()) | Err(object_store::Error::NotFound { .. })) => Ok(()),
            Ok(Err(e)) => Err(self.why(&e)),
        }
    }

    /// A store error as one line: the error and its causes, without the
    /// URL's password.
    fn why(&self, e: &object_store::Error) -> String {
        let mut why = e.to_string();
        let mut cause = std::error::Error::source(e);
        while let Some(c) = cause {
            let text = c.to_string();
            if !why.contains(&text) {
                why.push_str(": ");
                why.push_str(&text);
            }
            cause = c.source();
        }
        if let Some(password) = self.inner.password.as_deref().filter(|p| !p.is_empty()) {
            why = why.replace(password, "***");
        }
        why
    }
}

/// `fut`, unless `deadline` comes first (Err).
async fn bounded<T>(deadline: Instant, fut: impl Future<Output = T>) -> Result<T, ()> {
    tokio::time::timeout_at(tokio::time::Instant::from_std(deadline), fut)
        .await
        .map_err(|_| ())
}
