//! `bgtask dashboard --listen`: off loopback only with HTTPS (a real
//! certificate from the `openssl` CLI, served by rustls, checked by curl)
//! or an explicit `--insecure-listen`; what a bad flag or a bad PEM file
//! says; and who may talk over HTTPS (token, Secure cookie, https Origin).

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use crate::dashboard::{Dashboard, curl};
use crate::harness::Project;

/// A dashboard started with `args`; its stderr goes to a file.
struct Served {
    d: Dashboard,
    stderr: PathBuf,
}

impl Served {
    fn start(p: &Project, args: &[&str]) -> Served {
        let stderr = p.path().join("dashboard.stderr");
        let file = std::fs::File::create(&stderr).unwrap();
        let d = Dashboard::start_with(p, args, file.into(), || {
            std::fs::read_to_string(&stderr).unwrap()
        });
        Served { d, stderr }
    }

    /// What it said on stderr so far (its warnings come before the
    /// address on stdout).
    fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap()
    }
}

impl std::ops::Deref for Served {
    type Target = Dashboard;

    fn deref(&self) -> &Dashboard {
        &self.d
    }
}

/// A self-signed certificate for localhost and 127.0.0.1, and its key,
/// made by the `openssl` CLI in `dir` as `NAME.cert.pem`, `NAME.key.pem`.
fn self_signed(dir: &Path, name: &str) -> (PathBuf, PathBuf) {
    let (cert, key) = (
        dir.join(format!("{name}.cert.pem")),
        dir.join(format!("{name}.key.pem")),
    );
    let out = Command::new("openssl")
        .args(["req", "-x509", "-newkey", "ec", "-pkeyopt"])
        .args(["ec_paramgen_curve:prime256v1", "-nodes", "-days", "1"])
        .args(["-subj", "/CN=localhost"])
        .args(["-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .expect("openssl (scripts/test.sh installs it)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    (cert, key)
}

fn text(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn listening_off_loopback_needs_tls_or_an_explicit_insecure_listen() {
    let p = Project::empty();
    let rows: [(&[&str], &[&str]); 6] = [
        (
            &["--listen", "127.0.0.1:0"],
            &["--tls-cert FILE --tls-key FILE", "--insecure-listen"],
        ),
        (&["--insecure-listen"], &["--listen <IP:PORT>"]),
        (&["--listen", "localhost:7420"], &["expected IP:PORT"]),
        (&["--tls-cert", "cert.pem"], &["--tls-key <FILE>"]),
        (
            &[
                "--listen",
                "127.0.0.1:0",
                "--port",
                "0",
                "--insecure-listen",
            ],
            &["--port"],
        ),
        (&["--allow-host", "https://dash"], &["expected NAME"]),
    ];
    for (args, says) in rows {
        let mut all = vec!["dashboard", "--no-open", "--json"];
        all.extend_from_slice(args);
        let run = p.bgtask(&all);
        run.code(64);
        for s in says {
            assert!(run.stderr.contains(s), "{args:?}: {}", run.stderr);
        }
    }
    assert!(!p.runtime_dir().join("dashboard.json").exists());
}

#[test]
fn insecure_listen_serves_plain_http_and_warns() {
    let p = Project::empty();
    let d = Served::start(&p, &["--listen", "127.0.0.1:0", "--insecure-listen"]);
    assert!(d.url.starts_with("http://127.0.0.1:"), "{}", d.url);
    let warned = d.stderr();
    assert!(
        warned.contains("warning: --insecure-listen") && warned.contains("clear text"),
        "{warned}"
    );
    let (code, body) = d.curl(&[&format!("{}/api/v1/projects", d.url)]);
    assert_eq!(code, 200, "{body}");
    // A plain `bgtask dashboard` finds it; one asking for HTTPS does not
    // take it for what it asked.
    let again = p.bgtask(&["dashboard", "--json"]);
    let v: Value = again.code(0).json();
    assert_eq!(
        (&v["reused"], &v["url"]),
        (&Value::Bool(true), &Value::from(d.url.as_str()))
    );
    let (cert, key) = self_signed(p.path(), "a");
    let other = p.bgtask(&[
        "dashboard",
        "--listen",
        "127.0.0.1:0",
        "--tls-cert",
        text(&cert),
        "--tls-key",
        text(&key),
    ]);
    assert!(
        other.code(64).stderr.contains("already runs"),
        "{}",
        other.stderr
    );
}

#[test]
fn tls_serves_https_with_the_certificate_and_only_https() {
    let p = Project::jobs(&[("a", "medium")], "");
    p.start();
    let (cert, key) = self_signed(p.path(), "a");
    let tls = ["--tls-cert", text(&cert), "--tls-key", text(&key)];
    let d = Served::start(&p, &[&["--listen", "127.0.0.1:0"], &tls[..]].concat());
    assert!(d.url.starts_with("https://127.0.0.1:"), "{}", d.url);
    assert!(!d.stderr().contains("warning"), "{}", d.stderr());
    // A client that connects and never shakes hands holds nobody up.
    let stalled = std::net::TcpStream::connect(d.url.trim_start_matches("https://")).unwrap();
    let ca = ["--cacert", text(&cert)];
    let projects = format!("{}/api/v1/projects", d.url);
    // (Its handshake would time out after 10 s.)
    let quick = ["--max-time", "5", &projects];
    let (code, body) = d.curl(&[&ca[..], &quick[..]].concat());
    assert_eq!(code, 200, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    let id = v["projects"][0]["id"].as_str().unwrap().to_owned();
    let (code, body) = curl(&[&ca[..], &[projects.as_str()]].concat());
    assert_eq!(code, 401, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["error"]["code"], "unauthorized", "{v}");
    // Plain HTTP on the same port gets no HTTP answer, and the failed
    // handshake does not end the server.
    let plain = projects.replacen("https://", "http://", 1);
    assert_eq!(d.curl(&[&plain]).0, 0);
    drop(stalled);
    assert_eq!(d.curl(&[&ca[..], &[projects.as_str()]].concat()).0, 200);
    // The printed address's cookie is Secure; a change with it needs the
    // https origin.
    let open = format!("{}/?token={}", d.url, d.token);
    let (code, headers) = curl(&[&ca[..], &["-D", "-", "-o", "/dev/null", &open]].concat());
    assert_eq!(code, 303);
    assert!(
        headers.contains("HttpOnly; SameSite=Strict; Path=/; Secure"),
        "{headers}"
    );
    let cookie = format!("Cookie: bgtask_token={}", d.token);
    let activity = format!("{}/api/v1/projects/{id}/activity", d.url);
    let post = |origin: &str| {
        let args = [
            "-X",
            "POST",
            "-H",
            &cookie,
            "-H",
            origin,
            "--data-binary",
            "{}",
        ];
        let args = [
            &ca[..],
            &args[..],
            &["-H", "Content-Type: application/json", &activity],
        ];
        curl(&args.concat())
    };
    let plain_origin = format!("Origin: {}", d.url.replacen("https://", "http://", 1));
    assert_eq!(post(&plain_origin).0, 403, "an http origin");
    let (code, body) = post(&format!("Origin: {}", d.url));
    assert_eq!(code, 200, "{body}");
    // A second one asking for the same finds it.
    let again = p.bgtask(
        &[
            &["dashboard", "--json", "--listen", "127.0.0.1:0"],
            &tls[..],
        ]
        .concat(),
    );
    assert_eq!(again.code(0).json()["url"], d.url.as_str());
    p.stop();
}

#[test]
fn a_bad_certificate_or_key_is_named_before_anything_listens() {
    let p = Project::empty();
    let (cert, key) = self_signed(p.path(), "a");
    let (_, other_key) = self_signed(p.path(), "b");
    let not_pem = p.path().join("not.pem");
    std::fs::write(&not_pem, "this is not a certificate\n").unwrap();
    // A port nobody uses, so that "nothing listens" can be checked.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let listen = format!("127.0.0.1:{port}");
    let rows = [
        (&not_pem, &key, &not_pem, "holds no PEM certificate"),
        (&cert, &not_pem, &not_pem, "holds no PEM private key"),
        (&key, &key, &key, "holds no PEM certificate"),
        (&cert, &other_key, &other_key, "cannot serve HTTPS with"),
    ];
    for (c, k, named, says) in rows {
        let args = ["dashboard", "--no-open", "--listen", &listen];
        let run = p.bgtask(&[&args[..], &["--tls-cert", text(c), "--tls-key", text(k)]].concat());
        run.code(64);
        assert!(
            run.stderr.contains(text(named)) && run.stderr.contains(says),
            "{}",
            run.stderr
        );
        assert!(
            std::net::TcpStream::connect(&listen).is_err(),
            "nothing listens"
        );
        assert!(!p.runtime_dir().join("dashboard.json").exists());
    }
}

#[test]
fn tls_without_listen_serves_https_on_loopback() {
    let p = Project::empty();
    let (cert, key) = self_signed(p.path(), "a");
    let tls = [
        "--port",
        "0",
        "--tls-cert",
        text(&cert),
        "--tls-key",
        text(&key),
    ];
    let d = Served::start(&p, &tls);
    assert!(d.url.starts_with("https://127.0.0.1:"), "{}", d.url);
    assert_eq!(d.stderr(), "", "no warning");
    let by_name = d.url.replacen("127.0.0.1", "localhost", 1);
    for url in [&d.url, &by_name] {
        let projects = format!("{url}/api/v1/projects");
        let (code, body) = d.curl(&["--cacert", text(&cert), &projects]);
        assert_eq!(code, 200, "{url}: {body}");
    }
}
