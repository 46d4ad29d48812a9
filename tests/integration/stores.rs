//! The object stores the remote cache tests share results through, started
//! and stopped by the tests themselves: moto's S3 server and the wsgidav
//! DAV server, from the venv `scripts/test.sh` installs into
//! `$BGTASK_TEST_CACHE/stores-venv`. Each listens on a free loopback port
//! and is killed on drop.
//!
//! A missing server fails the test with what to install; only with
//! `BGTASK_TEST_SKIP_UNAVAILABLE=1` is it skipped, with a message.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

use crate::dashboard::curl;
use crate::harness::{tool_cache, wait_for};
use crate::notify_servers::{available, free_port};

const INSTALL: &str = "python3 -m venv target/test-cache/stores-venv && \
     target/test-cache/stores-venv/bin/pip install 'moto[server]==5.2.6' wsgidav==4.4.0 cheroot==11.1.2";

/// A program of the stores venv, when installed.
fn program(name: &str) -> Option<PathBuf> {
    let path = tool_cache().join("stores-venv/bin").join(name);
    available(name, path.exists(), INSTALL).then_some(path)
}

/// A server process with its output in a log file; killed on drop.
struct Process {
    child: Option<Child>,
    log: PathBuf,
    /// Holds the log (and, for DAV, the served files).
    dir: tempfile::TempDir,
}

impl Process {
    fn start(cmd: &mut Command, url_base: &str) -> Process {
        let dir = tempfile::Builder::new()
            .prefix("bgtask-store-")
            .tempdir()
            .unwrap();
        Process::start_in(dir, cmd, url_base)
    }

    /// Starts `cmd` and waits until `url_base` answers HTTP.
    fn start_in(dir: tempfile::TempDir, cmd: &mut Command, url_base: &str) -> Process {
        let log = dir.path().join("server.log");
        let out = std::fs::File::create(&log).unwrap();
        let child = cmd
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
        let mut process = Process {
            child: Some(child),
            log,
            dir,
        };
        wait_for(30, &format!("{cmd:?} to answer on {url_base}"), || {
            if let Some(status) = process.child.as_mut().and_then(|c| c.try_wait().unwrap()) {
                panic!("{cmd:?} exited ({status}):\n{}", process.output());
            }
            curl(&["-o", "/dev/null", url_base]).0 != 0
        });
        process
    }

    /// What the server printed.
    fn output(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.kill();
    }
}

/// moto's S3 server: any bucket, any credentials, state in memory.
pub struct S3Server {
    /// `http://127.0.0.1:PORT`: the endpoint (`AWS_ENDPOINT_URL`).
    pub url_base: String,
    process: Process,
}

impl S3Server {
    /// `None`: moto is not installed and such tests are skipped.
    pub fn start() -> Option<S3Server> {
        let moto = program("moto_server")?;
        let port = free_port();
        let url_base = format!("http://127.0.0.1:{port}");
        let process = Process::start(
            Command::new(moto).args(["-H", "127.0.0.1", "-p", &port.to_string()]),
            &url_base,
        );
        Some(S3Server { url_base, process })
    }

    /// Creates a bucket (an unsigned `PUT /<name>`, which moto takes).
    #[track_caller]
    pub fn create_bucket(&self, name: &str) {
        let (code, body) = curl(&["-X", "PUT", &format!("{}/{name}", self.url_base)]);
        assert_eq!(
            code,
            200,
            "creating bucket {name}: {body}\n{}",
            self.process.output()
        );
    }

    /// The environment that points S3 clients (bgtask, the AWS tools) here.
    pub fn env(&self) -> Vec<(String, String)> {
        [
            ("AWS_ACCESS_KEY_ID", "test"),
            ("AWS_SECRET_ACCESS_KEY", "test"),
            ("AWS_REGION", "us-east-1"),
            ("AWS_ENDPOINT_URL", self.url_base.as_str()),
            ("AWS_ALLOW_HTTP", "true"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
    }

    /// curl with `args` on `url_base/path` (`bucket/key`), signed with the
    /// credentials of `env()` (moto keeps objects private): the status
    /// code and body. Bodies are sent as octet streams (moto would take
    /// curl's default type for a form and store nothing).
    pub fn request(&self, path: &str, args: &[&str]) -> (u16, String) {
        let url = format!("{}/{path}", self.url_base);
        let mut signed = vec![
            "--aws-sigv4",
            "aws:amz:us-east-1:s3",
            "--user",
            "test:test",
            "-H",
            "Content-Type: application/octet-stream",
        ];
        signed.extend_from_slice(args);
        signed.push(&url);
        curl(&signed)
    }

    /// Stops the server now (a store going down mid-run); its objects are gone.
    pub fn kill(&mut self) {
        self.process.kill();
    }

    /// The server's process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.process.child.as_ref().map(Child::id)
    }
}

/// wsgidav serving a fresh directory over DAV, without authentication.
pub struct DavServer {
    /// `http://127.0.0.1:PORT`: the root collection.
    pub url_base: String,
    process: Process,
}

impl DavServer {
    /// `None`: wsgidav is not installed and such tests are skipped.
    pub fn start() -> Option<DavServer> {
        let wsgidav = program("wsgidav")?;
        let port = free_port();
        let url_base = format!("http://127.0.0.1:{port}");
        let dir = tempfile::Builder::new()
            .prefix("bgtask-store-")
            .tempdir()
            .unwrap();
        let root = dir.path().join("root");
        std::fs::create_dir(&root).unwrap();
        let process = Process::start_in(
            dir,
            Command::new(wsgidav)
                .args(["--host", "127.0.0.1", "--port", &port.to_string(), "--root"])
                .arg(&root)
                .args(["--auth", "anonymous", "--no-config"]),
            &url_base,
        );
        Some(DavServer { url_base, process })
    }

    /// The directory served at `url_base`: what a PUT wrote is here.
    pub fn root(&self) -> PathBuf {
        self.process.dir.path().join("root")
    }

    /// Stops the server now (a store going down mid-run); its files stay.
    pub fn kill(&mut self) {
        self.process.kill();
    }
}

/// Both servers start, take an object, give it back and stop.
#[test]
fn both_stores_take_an_object_give_it_back_and_stop() {
    let (Some(mut s3), Some(mut dav)) = (S3Server::start(), DavServer::start()) else {
        return;
    };
    s3.create_bucket("team-cache");
    let env = s3.env();
    assert!(env.contains(&("AWS_ENDPOINT_URL".to_owned(), s3.url_base.clone())));
    let s3_object = format!("{}/team-cache/v1/ab/object", s3.url_base);
    let dav_object = format!("{}/object", dav.url_base);
    let put = ["-X", "PUT", "--data-binary", "stored bytes"];
    let (code, body) = s3.request("team-cache/v1/ab/object", &put);
    assert_eq!(code, 200, "PUT {s3_object}: {body}");
    let stored = (200, "stored bytes".to_owned());
    assert_eq!(s3.request("team-cache/v1/ab/object", &[]), stored);
    assert_eq!(s3.request("team-cache/none", &[]).0, 404);
    // Unsigned: refused.
    assert_eq!(curl(&[&s3_object]).0, 403);
    let (code, body) = curl(&[&put[..], &[dav_object.as_str()]].concat());
    assert_eq!(code, 201, "PUT {dav_object}: {body}");
    assert_eq!(curl(&[&dav_object]), stored);
    assert_eq!(
        std::fs::read_to_string(dav.root().join("object")).unwrap(),
        "stored bytes"
    );
    s3.kill();
    dav.kill();
    for object in [&s3_object, &dav_object] {
        assert_eq!(curl(&[object]).0, 0, "{object} still answers");
    }
}
