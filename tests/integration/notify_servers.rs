//! The real servers the notification tests talk to, started and stopped by
//! the tests themselves: an SMTP server (aiosmtpd, from the venv
//! `scripts/test.sh` installs, with STARTTLS, AUTH and a certificate signed
//! by a private CA made here with openssl), and a desktop (Xvfb, a D-Bus
//! session bus and the dunst notification server, from Debian's packages).
//!
//! A missing program fails the test with what to install; only with
//! `BGTASK_TEST_SKIP_UNAVAILABLE=1` is it skipped, with a message.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::harness::{tool_cache, wait_for};

/// Whether the test may go on: panics when `what` is missing, unless
/// skipping is allowed.
pub fn available(what: &str, present: bool, install: &str) -> bool {
    if present {
        return true;
    }
    let msg = format!("{what} is not available: {install} (scripts/test.sh does this)");
    if std::env::var_os("BGTASK_TEST_SKIP_UNAVAILABLE").is_some_and(|v| v == "1") {
        eprintln!("skipped: {msg}");
        return false;
    }
    panic!("{msg}; set BGTASK_TEST_SKIP_UNAVAILABLE=1 to skip such tests instead");
}

pub fn on_path(program: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {program}")])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// A port nothing listens on right now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn run(cmd: &mut Command) {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A private CA and a server certificate it signed for `names`
/// (`DNS:localhost,IP:127.0.0.1`); returns (ca, cert, key).
pub fn certificates(dir: &Path, names: &str) -> (PathBuf, PathBuf, PathBuf) {
    let p = |f: &str| dir.join(f);
    run(Command::new("openssl")
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
        ])
        .args(["-subj", "/CN=bgtask test CA"])
        .arg("-keyout")
        .arg(p("ca.key"))
        .arg("-out")
        .arg(p("ca.pem")));
    run(Command::new("openssl")
        .args([
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-subj",
            "/CN=localhost",
        ])
        .arg("-keyout")
        .arg(p("server.key"))
        .arg("-out")
        .arg(p("server.csr")));
    std::fs::write(
        p("ext.cnf"),
        format!(
            "basicConstraints=critical,CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\nsubjectAltName={names}\n"
        ),
    )
    .unwrap();
    run(Command::new("openssl")
        .args(["x509", "-req", "-days", "2", "-CAcreateserial"])
        .arg("-in")
        .arg(p("server.csr"))
        .arg("-CA")
        .arg(p("ca.pem"))
        .arg("-CAkey")
        .arg(p("ca.key"))
        .arg("-extfile")
        .arg(p("ext.cnf"))
        .arg("-out")
        .arg(p("server.pem")));
    (p("ca.pem"), p("server.pem"), p("server.key"))
}

fn smtp_python() -> PathBuf {
    tool_cache().join("notify-venv/bin/python")
}

/// An aiosmtpd server on loopback.
pub struct Smtp {
    child: Option<Child>,
    pub port: u16,
    pub dir: tempfile::TempDir,
    tls: bool,
    /// TLS from the first byte (SMTPS) instead of STARTTLS.
    pub implicit: bool,
    pub password: String,
}

impl Smtp {
    /// With STARTTLS (a CA-signed certificate for localhost and
    /// 127.0.0.1) and AUTH as `ci-bot` / `s3cret`; `None`: skipped.
    pub fn start() -> Option<Smtp> {
        Smtp::start_with(true, "DNS:localhost,IP:127.0.0.1")
    }

    pub fn start_with(tls: bool, names: &str) -> Option<Smtp> {
        let python = smtp_python();
        let has_aiosmtpd = Command::new(&python)
            .args(["-c", "import aiosmtpd"])
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !available(
            "aiosmtpd",
            has_aiosmtpd,
            &format!(
                "python3 -m venv {0} && {0}/bin/pip install aiosmtpd",
                python.parent().unwrap().parent().unwrap().display()
            ),
        ) || !available("openssl", on_path("openssl"), "apt-get install openssl")
        {
            return None;
        }
        let dir = tempfile::Builder::new()
            .prefix("bgtask-smtp-")
            .tempdir()
            .unwrap();
        if tls {
            certificates(dir.path(), names);
        }
        let mut s = Smtp {
            child: None,
            port: free_port(),
            dir,
            tls,
            implicit: false,
            password: "s3cret".to_owned(),
        };
        s.restart();
        Some(s)
    }

    /// Implicit TLS (SMTPS) with the same certificate and AUTH.
    pub fn start_implicit() -> Option<Smtp> {
        let mut s = Smtp::start()?;
        s.stop();
        s.implicit = true;
        s.restart();
        Some(s)
    }

    pub fn ca(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }

    fn out(&self) -> PathBuf {
        self.dir.path().join("mail")
    }

    /// (Re)starts the server on the same port.
    pub fn restart(&mut self) {
        assert!(self.child.is_none(), "already running");
        let script =
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/smtp_server.py");
        let mut cmd = Command::new(smtp_python());
        cmd.arg(script)
            .args(["--port", &self.port.to_string()])
            .arg("--out")
            .arg(self.out())
            .args(["--password", &self.password])
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(self.dir.path().join("server.log")).unwrap());
        if self.tls {
            cmd.arg("--cert")
                .arg(self.dir.path().join("server.pem"))
                .arg("--key")
                .arg(self.dir.path().join("server.key"));
            if self.implicit {
                cmd.arg("--implicit");
            }
        }
        // The port may still be held by the last run for a moment.
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let mut child = cmd.spawn().unwrap();
            let mut line = String::new();
            let _ = BufReader::new(child.stdout.take().unwrap()).read_line(&mut line);
            if line.trim() == "ready" {
                self.child = Some(child);
                return;
            }
            let _ = child.wait();
            assert!(
                Instant::now() < deadline,
                "the SMTP server did not start: {}",
                std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Stops it (SIGTERM, then waits).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            crate::harness::signal(child.id(), libc::SIGTERM);
            // aiosmtpd's stop can hang on a connection a client keeps
            // open: a few seconds, then SIGKILL (the port closes either way).
            let deadline = Instant::now() + Duration::from_secs(5);
            while child.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        // Nothing answers on the port any more.
        wait_for(10, "the SMTP port to close", || {
            std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err()
        });
    }

    /// The messages received, oldest first (decoded by the server).
    pub fn messages(&self) -> Vec<Value> {
        let mut out = Vec::new();
        for n in 1.. {
            let Ok(text) = std::fs::read_to_string(self.out().join(format!("{n}.json"))) else {
                break;
            };
            out.push(serde_json::from_str(&text).unwrap());
        }
        out
    }

    /// "ok USER" / "fail USER" per AUTH attempt.
    pub fn auth_log(&self) -> Vec<String> {
        std::fs::read_to_string(self.out().join("auth.log"))
            .unwrap_or_default()
            .lines()
            .map(str::to_owned)
            .collect()
    }

    /// The `notifications.email` config section for this server.
    pub fn email_config(&self, host: &str, extra: &str) -> String {
        let tls = if self.tls {
            let mode = if self.implicit { "tls" } else { "starttls" };
            format!(r#""tls": "{mode}", "ca_file": "{}","#, self.ca().display())
        } else {
            r#""tls": "starttls","#.to_owned()
        };
        format!(
            r#""email": {{"enabled": true, "min_severity": "warning", "smtp_host": "{host}", "smtp_port": {}, {tls}
                "username": "ci-bot", "password_env": "BGTASK_TEST_SMTP_PASSWORD",
                "from": "bgtask@example.com", "to": ["dev@example.com"], "digest_minutes": 0 {extra}}}"#,
            self.port
        )
    }
}

impl Drop for Smtp {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Xvfb, a session bus and (optionally) dunst.
pub struct Desktop {
    children: Vec<Child>,
    pub address: String,
    dir: tempfile::TempDir,
}

impl Desktop {
    /// `with_server`: dunst serves `org.freedesktop.Notifications`;
    /// without it the bus has nobody to show notifications.
    pub fn start(with_server: bool) -> Option<Desktop> {
        for (program, package) in [
            ("dbus-daemon", "dbus"),
            ("dbus-monitor", "dbus"),
            ("Xvfb", "xvfb"),
            ("dunst", "dunst"),
            ("dunstctl", "dunst"),
        ] {
            if !available(
                program,
                on_path(program),
                &format!("apt-get install {package}"),
            ) {
                return None;
            }
        }
        let dir = tempfile::Builder::new()
            .prefix("bgtask-desktop-")
            .tempdir()
            .unwrap();
        let mut children = Vec::new();
        let mut bus = Command::new("dbus-daemon")
            .args(["--session", "--nofork", "--print-address=1"])
            .arg(format!(
                "--address=unix:path={}",
                dir.path().join("bus").display()
            ))
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut address = String::new();
        BufReader::new(bus.stdout.take().unwrap())
            .read_line(&mut address)
            .unwrap();
        children.push(bus);
        let address = address.trim().to_owned();
        assert!(address.starts_with("unix:"), "bus address {address:?}");
        let mut d = Desktop {
            children,
            address,
            dir,
        };
        if with_server {
            d.start_dunst();
        }
        Some(d)
    }

    fn start_dunst(&mut self) {
        let display_file = self.dir.path().join("display");
        let display_out = std::fs::File::create(&display_file).unwrap();
        let xvfb = Command::new("Xvfb")
            .args([
                "-displayfd",
                "1",
                "-screen",
                "0",
                "640x480x24",
                "-nolisten",
                "tcp",
            ])
            .stdout(display_out)
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        self.children.push(xvfb);
        let mut display = String::new();
        wait_for(20, "Xvfb to pick a display", || {
            display = std::fs::read_to_string(&display_file).unwrap_or_default();
            display.ends_with('\n')
        });
        let dunst = Command::new("dunst")
            .env("DISPLAY", format!(":{}", display.trim()))
            .env("DBUS_SESSION_BUS_ADDRESS", &self.address)
            .env("XDG_CONFIG_HOME", self.dir.path().join("config"))
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(self.dir.path().join("dunst.log")).unwrap())
            .spawn()
            .unwrap();
        self.children.push(dunst);
        wait_for(20, "dunst to serve notifications", || {
            self.dunstctl(&["is-paused"]).is_some()
        });
    }

    fn dunstctl(&self, args: &[&str]) -> Option<String> {
        let out = Command::new("dunstctl")
            .args(args)
            .env("DBUS_SESSION_BUS_ADDRESS", &self.address)
            .output()
            .ok()?;
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// Every notification dunst has shown, as (appname, summary, body):
    /// displayed ones are closed first so that they are in its history.
    pub fn shown(&self) -> Vec<(String, String, String)> {
        self.dunstctl(&["close-all"]).expect("dunstctl close-all");
        let history: Value =
            serde_json::from_str(&self.dunstctl(&["history"]).expect("dunstctl history")).unwrap();
        let field = |n: &Value, k: &str| n[k]["data"].as_str().unwrap_or_default().to_owned();
        history["data"][0]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| (field(n, "appname"), field(n, "summary"), field(n, "body")))
            .collect()
    }

    /// `dbus-monitor` on the bus, watching Notify calls, until dropped.
    pub fn monitor(&self) -> Monitor {
        let file = self
            .dir
            .path()
            .join(format!("monitor-{}.log", self.children.len()));
        let child = Command::new("dbus-monitor")
            .arg("--address")
            .arg(&self.address)
            .arg("interface='org.freedesktop.Notifications',member='Notify'")
            .stdout(std::fs::File::create(&file).unwrap())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        // It prints its own NameAcquired signal once it listens.
        std::thread::sleep(Duration::from_millis(300));
        Monitor { child, file }
    }
}

impl Drop for Desktop {
    fn drop(&mut self) {
        for child in self.children.iter_mut().rev() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

pub struct Monitor {
    child: Child,
    file: PathBuf,
}

impl Monitor {
    pub fn text(&self) -> String {
        std::fs::read_to_string(&self.file).unwrap_or_default()
    }
}

impl Drop for Monitor {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
