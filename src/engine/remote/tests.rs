//! The store layer against a directory, dead stores, and — when
//! `scripts/test.sh` installed them into `$BGTASK_TEST_CACHE/stores-venv` —
//! a real S3 (moto) and a real DAV server (wsgidav).

use std::io::{Read, Write};
use std::path::{Path as FsPath, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use object_store::ObjectStoreExt;

use super::*;

fn key(n: u8) -> String {
    blake3::hash(&[n]).to_hex().to_string()
}

fn soon() -> Instant {
    Instant::now() + Duration::from_secs(5)
}

fn spec(url: &str, secret: &[u8]) -> RemoteSpec {
    RemoteSpec {
        url: url.to_owned(),
        secret: Some(secret.to_vec()),
    }
}

/// A file:// remote in a fresh directory (created by `open`).
fn local(secret: &[u8]) -> (tempfile::TempDir, PathBuf, Remote) {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("team cache");
    let url = url::Url::from_directory_path(&root).unwrap();
    let remote = Remote::open(&spec(url.as_str(), secret)).unwrap();
    assert!(root.is_dir());
    (dir, root, remote)
}

fn entry_file(root: &FsPath, key: &str) -> PathBuf {
    root.join("v1").join(&key[..2]).join(key)
}

#[track_caller]
fn assert_rejected(fetched: &Fetched, want: &str) {
    match fetched {
        Fetched::Rejected(why) => assert!(why.contains(want), "{why}"),
        other => panic!("expected Rejected({want}), got {other:?}"),
    }
}

#[tokio::test]
async fn round_trip_on_a_directory() {
    let (_dir, root, remote) = local(b"team secret");
    assert!(remote.can_verify());
    let payload = br#"{"runs":[{"findings":[]}]}"#.repeat(50);
    remote.put(&key(1), &payload, soon()).await.unwrap();
    let stored = std::fs::read(entry_file(&root, &key(1))).unwrap();
    assert!(stored.starts_with(b"bgtask-result-cache 1\n"));
    assert!(stored.len() < payload.len());
    match remote.get(&key(1), soon()).await {
        Fetched::Hit(got) => assert_eq!(got, payload),
        other => panic!("{other:?}"),
    }
    // Overwriting is allowed (a re-run stores the same key again).
    remote.put(&key(1), b"again", soon()).await.unwrap();
    assert!(matches!(remote.get(&key(1), soon()).await, Fetched::Hit(p) if p == b"again"));
    assert!(matches!(remote.get(&key(2), soon()).await, Fetched::Miss));
}

#[tokio::test]
async fn tampered_entries_are_rejected() {
    let (_dir, root, remote) = local(b"team secret");
    remote.put(&key(1), &[7; 1000], soon()).await.unwrap();
    let file = entry_file(&root, &key(1));
    let good = std::fs::read(&file).unwrap();

    let mut flipped = good.clone();
    flipped[40] ^= 0x20;
    std::fs::write(&file, &flipped).unwrap();
    assert_rejected(&remote.get(&key(1), soon()).await, "MAC mismatch");

    std::fs::write(&file, &good[..good.len() - 1]).unwrap();
    assert_rejected(&remote.get(&key(1), soon()).await, "MAC mismatch");
    std::fs::write(&file, &good[..10]).unwrap();
    assert_rejected(&remote.get(&key(1), soon()).await, "truncated");
    std::fs::write(&file, b"").unwrap();
    assert_rejected(&remote.get(&key(1), soon()).await, "truncated");

    // Another key's entry copied over this one.
    remote.put(&key(2), b"other", soon()).await.unwrap();
    std::fs::copy(entry_file(&root, &key(2)), &file).unwrap();
    assert_rejected(&remote.get(&key(1), soon()).await, "MAC mismatch");

    std::fs::write(&file, &good).unwrap();
    let url = url::Url::from_directory_path(&root).unwrap();
    let stranger = Remote::open(&spec(url.as_str(), b"another secret")).unwrap();
    assert_rejected(&stranger.get(&key(1), soon()).await, "another secret");
    assert!(matches!(remote.get(&key(1), soon()).await, Fetched::Hit(_)));
}

#[tokio::test]
async fn sizes_are_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let url = url::Url::from_directory_path(dir.path()).unwrap();
    let small = Remote::open_with(&spec(url.as_str(), b"s"), &[], 1000).unwrap();
    let err = small.put(&key(1), &[0; 1001], soon()).await.unwrap_err();
    assert!(err.contains("over the limit"), "{err}");
    assert!(!dir.path().join("v1").exists());
    // Written by a writer with a larger limit: compresses well, inflates too far.
    let large = Remote::open_with(&spec(url.as_str(), b"s"), &[], 100_000).unwrap();
    large.put(&key(1), &vec![0; 50_000], soon()).await.unwrap();
    assert_rejected(
        &small.get(&key(1), soon()).await,
        "inflates to more than 1000",
    );
    // Stored bytes past what any entry can take are not downloaded.
    std::fs::write(entry_file(dir.path(), &key(1)), vec![1; 5000]).unwrap();
    assert_rejected(&small.get(&key(1), soon()).await, "over the limit");
}

#[tokio::test]
async fn keys_are_checked_before_any_path_is_built() {
    let (dir, root, remote) = local(b"s");
    for bad in [
        "../../../etc/passwd",
        "ab",
        &key(1).to_uppercase(),
        &format!("{}/..", &key(1)[..61]),
    ] {
        assert!(
            remote
                .put(bad, b"x", soon())
                .await
                .unwrap_err()
                .contains("invalid cache key")
        );
        assert_rejected(&remote.get(bad, soon()).await, "invalid cache key");
        assert!(remote.delete(bad, soon()).await.is_err());
    }
    assert_eq!(std::fs::read_dir(&root).unwrap().count(), 0);
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
}

#[tokio::test]
async fn without_a_secret_nothing_is_read_or_written() {
    let (_dir, root, signed) = local(b"s");
    signed.put(&key(1), b"x", soon()).await.unwrap();
    let url = url::Url::from_directory_path(&root).unwrap();
    for secret in [None, Some(Vec::new())] {
        let remote = Remote::open(&RemoteSpec {
            url: url.to_string(),
            secret,
        })
        .unwrap();
        assert!(!remote.can_verify());
        assert_rejected(&remote.get(&key(1), soon()).await, "no secret");
        assert!(
            remote
                .put(&key(2), b"x", soon())
                .await
                .unwrap_err()
                .contains("no secret")
        );
        assert_eq!(remote.list(soon()).await.unwrap().len(), 1);
    }
}

#[tokio::test]
async fn list_and_delete_on_a_directory() {
    let (_dir, root, remote) = local(b"s");
    assert!(remote.list(soon()).await.unwrap().is_empty());
    for n in 1..=3 {
        remote
            .put(&key(n), &vec![n; 100 * usize::from(n)], soon())
            .await
            .unwrap();
    }
    // Not entries: never listed.
    std::fs::write(root.join("v1").join("README"), "x").unwrap();
    std::fs::write(
        entry_file(&root, &key(1)).with_file_name("partial.tmp"),
        "x",
    )
    .unwrap();
    let mut listed = remote.list(soon()).await.unwrap();
    listed.sort();
    let mut want: Vec<_> = (1..=3).map(key).collect();
    want.sort();
    assert_eq!(listed.iter().map(|e| e.0.clone()).collect::<Vec<_>>(), want);
    for (k, size, modified) in &listed {
        assert_eq!(
            *size,
            std::fs::metadata(entry_file(&root, k)).unwrap().len()
        );
        assert!(modified.elapsed().unwrap() < Duration::from_secs(60));
    }
    remote.delete(&key(2), soon()).await.unwrap();
    remote.delete(&key(2), soon()).await.unwrap();
    assert!(matches!(remote.get(&key(2), soon()).await, Fetched::Miss));
    assert_eq!(remote.list(soon()).await.unwrap().len(), 2);
}

#[test]
fn bad_urls_and_unknown_schemes() {
    let open = |url: &str| Remote::open(&spec(url, b"s")).unwrap_err();
    let cases = [
        (
            "ftp://host/cache",
            "unsupported scheme ftp:// in remote cache URL ftp://host/cache",
        ),
        ("memory:///", "unsupported scheme memory://"),
        (
            "redis://h/x",
            "accepted: s3://bucket/prefix, gs://bucket/prefix, az://container/prefix",
        ),
        (
            "cache/dir",
            "invalid remote cache URL cache/dir: relative URL without a base",
        ),
        (
            "s3:///prefix",
            "invalid remote cache URL s3:///prefix: it names no bucket",
        ),
        (
            "https://:8080/x",
            "invalid remote cache URL https://:8080/x: empty host",
        ),
        ("file://server/share", "a file:// URL takes no host"),
        (
            "https://user:hunter2@[::1/x",
            "invalid remote cache URL https://…@[::1/x",
        ),
    ];
    for (url, want) in cases {
        let err = open(url).to_string();
        assert!(err.contains(want), "{url}: {err}");
        assert!(!err.contains("hunter2"), "{err}");
        assert_eq!(url_problem(url).as_deref(), Some(err.as_str()));
    }
    assert!(
        matches!(open("gopher://x/y"), RemoteError::UnknownScheme { scheme, .. } if scheme == "gopher")
    );
    assert!(matches!(open("s3://"), RemoteError::BadUrl { .. }));
}

#[test]
fn usable_urls() {
    for url in [
        "s3://team-bucket/bgtask",
        "s3a://team-bucket",
        "gs://team-bucket/ci/cache",
        "az://container/cache",
        "abfss://container@account.dfs.core.windows.net/cache",
        "https://account.blob.core.windows.net/container/cache",
        "https://s3.eu-west-1.amazonaws.com/bucket/cache",
        "https://dav.example.com/remote.php/dav/files/ci/cache",
        "http://127.0.0.1:8080/cache",
        "file:///var/cache/bgtask",
    ] {
        assert_eq!(url_problem(url), None, "{url}");
        if url.starts_with("file:") {
            continue;
        }
        // Building may still fail without credentials in the environment
        // (Azure needs an account name): then as a store error.
        match Remote::open(&spec(url, b"s")) {
            Ok(remote) => assert!(!remote.display_url().is_empty()),
            Err(e) => assert!(matches!(e, RemoteError::Store(_)), "{url}: {e}"),
        }
    }
}

#[test]
fn display_url_hides_credentials() {
    let remote = Remote::open(&spec(
        "https://ci:hunter2@dav.example.com/cache?token=abc#x",
        b"s",
    ))
    .unwrap();
    assert_eq!(remote.display_url(), "https://dav.example.com/cache");
    assert!(!format!("{remote:?}").contains("hunter2"));
    let err = Remote::open(&spec("ftp://ci:hunter2@host/x", b"s"))
        .unwrap_err()
        .to_string();
    assert!(!err.contains("hunter2"), "{err}");
}

/// A port nothing listens on.
fn closed_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Options pointing S3 at a local endpoint with moto's fixed credentials.
fn s3_at(endpoint: &str) -> [(&str, &str); 5] {
    [
        ("aws_endpoint", endpoint),
        ("aws_allow_http", "true"),
        ("aws_access_key_id", "test"),
        ("aws_secret_access_key", "test"),
        ("aws_region", "us-east-1"),
    ]
}

/// Every operation on `remote` ends as unavailable by `deadline`, give or
/// take 300 ms.
async fn assert_unavailable(remote: &Remote, budget: Duration) {
    let started = Instant::now();
    let fetched = remote.get(&key(1), started + budget).await;
    let took = started.elapsed();
    assert!(matches!(fetched, Fetched::Unavailable(_)), "{fetched:?}");
    assert!(
        took < budget + Duration::from_millis(300),
        "get took {took:?}"
    );
    let started = Instant::now();
    assert!(remote.put(&key(1), b"x", started + budget).await.is_err());
    assert!(remote.list(started + 2 * budget).await.is_err());
    assert!(remote.delete(&key(1), started + 3 * budget).await.is_err());
    assert!(started.elapsed() < 3 * budget + Duration::from_millis(300));
}

#[tokio::test]
async fn a_closed_port_is_unavailable_at_once() {
    let port = closed_port();
    let url = format!("http://127.0.0.1:{port}/cache");
    let remote = Remote::open(&spec(&url, b"s")).unwrap();
    let started = Instant::now();
    match remote.get(&key(1), started + Duration::from_secs(5)).await {
        Fetched::Unavailable(why) => assert!(why.to_lowercase().contains("connect"), "{why}"),
        other => panic!("{other:?}"),
    }
    assert!(
        started.elapsed() < Duration::from_millis(500),
        "{:?}",
        started.elapsed()
    );
    assert_unavailable(&remote, Duration::from_millis(400)).await;
    let s3 = Remote::open_with(
        &spec("s3://bucket/x", b"s"),
        &s3_at(&format!("http://127.0.0.1:{port}")),
        entry::MAX_PAYLOAD,
    )
    .unwrap();
    assert_unavailable(&s3, Duration::from_millis(400)).await;
}

#[tokio::test]
async fn a_store_that_never_answers_is_unavailable_by_the_deadline() {
    // Accepts connections (the kernel does, into the backlog) and never reads.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let endpoint = format!("http://{}", silent.local_addr().unwrap());
    let s3 = Remote::open_with(
        &spec("s3://bucket/cache", b"s"),
        &s3_at(&endpoint),
        entry::MAX_PAYLOAD,
    )
    .unwrap();
    assert_unavailable(&s3, Duration::from_millis(500)).await;
    let dav = Remote::open(&spec(&format!("{endpoint}/cache"), b"s")).unwrap();
    match dav
        .get(&key(1), Instant::now() + Duration::from_millis(300))
        .await
    {
        Fetched::Unavailable(why) => assert!(why.contains("deadline"), "{why}"),
        other => panic!("{other:?}"),
    }
    // With a generous deadline, the silence (0.9 s of no answer) ends it.
    let started = Instant::now();
    match dav.get(&key(1), started + Duration::from_secs(30)).await {
        Fetched::Unavailable(why) => assert!(why.contains("timed out"), "{why}"),
        other => panic!("{other:?}"),
    }
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_millis(1800),
        "{took:?}"
    );
    drop(silent);
}

// Real servers, from `$BGTASK_TEST_CACHE/stores-venv` (scripts/test.sh).

/// A program of the stores venv; `None` (the test is skipped) when there
/// is no test cache. With one, a missing venv fails the test unless
/// `BGTASK_TEST_SKIP_UNAVAILABLE=1`.
fn stores_venv(program: &str) -> Option<PathBuf> {
    let Some(cache) = std::env::var_os("BGTASK_TEST_CACHE") else {
        eprintln!(
            "skipped: BGTASK_TEST_CACHE is not set (scripts/test.sh sets it and installs {program})"
        );
        return None;
    };
    let path = PathBuf::from(cache).join("stores-venv/bin").join(program);
    if path.exists() {
        return Some(path);
    }
    let msg = format!("{} is missing: scripts/test.sh installs it", path.display());
    if std::env::var_os("BGTASK_TEST_SKIP_UNAVAILABLE").is_some_and(|v| v == "1") {
        eprintln!("skipped: {msg}");
        return None;
    }
    panic!("{msg}; set BGTASK_TEST_SKIP_UNAVAILABLE=1 to skip such tests instead");
}

/// A server process on a loopback port, killed on drop.
struct Server {
    child: Child,
    port: u16,
}

impl Server {
    fn start(cmd: &mut Command, port: u16) -> Server {
        let child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut server = Server { child, port };
        let give_up = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(server.child.try_wait().unwrap().is_none(), "{cmd:?} exited");
            assert!(Instant::now() < give_up, "{cmd:?} did not listen on {port}");
            std::thread::sleep(Duration::from_millis(20));
        }
        server
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}

/// An unsigned `PUT /<path>` (moto creates a bucket so): the status line.
fn raw_put(port: u16, path: &str) -> String {
    let mut conn = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(conn, "PUT /{path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n").unwrap();
    let mut answer = String::new();
    conn.read_to_string(&mut answer).unwrap();
    answer.lines().next().unwrap_or_default().to_owned()
}

/// Put, get, list, delete, a tampered entry, then the server killed.
async fn exercise(remote: &Remote, tamper: impl AsyncFnOnce(&Remote)) {
    assert!(matches!(remote.get(&key(1), soon()).await, Fetched::Miss));
    assert!(remote.list(soon()).await.unwrap().is_empty());
    let payload = br#"{"findings":[{"rule":"B101"}]}"#.repeat(20);
    for n in 1..=3 {
        remote.put(&key(n), &payload, soon()).await.unwrap();
    }
    assert!(matches!(remote.get(&key(2), soon()).await, Fetched::Hit(p) if p == payload));
    let mut listed = remote.list(soon()).await.unwrap();
    listed.sort();
    assert_eq!(listed.len(), 3, "{listed:?}");
    assert!(
        listed
            .iter()
            .all(|(k, size, _)| entry::check_key(k).is_ok() && *size > 32)
    );
    remote.delete(&key(3), soon()).await.unwrap();
    assert!(matches!(remote.get(&key(3), soon()).await, Fetched::Miss));
    assert_eq!(remote.list(soon()).await.unwrap().len(), 2);
    tamper(remote).await;
    assert_rejected(&remote.get(&key(1), soon()).await, "MAC mismatch");
    assert!(matches!(remote.get(&key(2), soon()).await, Fetched::Hit(_)));
}

#[tokio::test]
async fn real_s3_moto() {
    let Some(moto) = stores_venv("moto_server") else {
        return;
    };
    let port = closed_port();
    let mut server = Server::start(
        Command::new(moto).args(["-H", "127.0.0.1", "-p", &port.to_string()]),
        port,
    );
    let status = raw_put(server.port, "team-cache");
    assert!(status.contains(" 200"), "{status}");
    let endpoint = format!("http://127.0.0.1:{port}");
    let remote = Remote::open_with(
        &spec("s3://team-cache/bgtask/ci", b"s"),
        &s3_at(&endpoint),
        entry::MAX_PAYLOAD,
    )
    .unwrap();
    exercise(&remote, async |remote: &Remote| {
        let path = entry::object_path(&remote.inner.prefix, &key(1));
        assert!(path.as_ref().starts_with("bgtask/ci/v1/"), "{path}");
        let mut bytes = remote
            .inner
            .store
            .get(&path)
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap()
            .to_vec();
        *bytes.last_mut().unwrap() ^= 1;
        remote.inner.store.put(&path, bytes.into()).await.unwrap();
    })
    .await;
    server.kill();
    assert_unavailable(&remote, Duration::from_millis(500)).await;
}

#[tokio::test]
async fn real_webdav_wsgidav() {
    let Some(wsgidav) = stores_venv("wsgidav") else {
        return;
    };
    let root = tempfile::tempdir().unwrap();
    let port = closed_port();
    let mut server = Server::start(
        Command::new(wsgidav)
            .args(["--host", "127.0.0.1", "--port", &port.to_string(), "--root"])
            .arg(root.path())
            .args(["--auth", "anonymous", "--no-config"]),
        port,
    );
    let url = format!("http://127.0.0.1:{port}/team/cache");
    let remote = Remote::open(&spec(&url, b"s")).unwrap();
    let files = root.path().join("team/cache");
    exercise(&remote, async |_: &Remote| {
        let file = entry_file(&files, &key(1));
        let bytes = std::fs::read(&file).unwrap();
        std::fs::write(&file, &bytes[..bytes.len() - 1]).unwrap();
    })
    .await;
    server.kill();
    assert_unavailable(&remote, Duration::from_millis(500)).await;
}
