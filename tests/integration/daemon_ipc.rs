//! The daemon's socket under hostile clients (RELIABILITY 17, 18): each bad
//! frame gets a typed error and a closed connection, and the daemon and
//! other clients carry on.

use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::harness::Project;

fn connect(p: &Project) -> UnixStream {
    let s = UnixStream::connect(p.socket()).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
    s
}

fn frame(body: &[u8]) -> Vec<u8> {
    let mut out = u32::try_from(body.len()).unwrap().to_be_bytes().to_vec();
    out.extend_from_slice(body);
    out
}

/// Reads one response frame, then checks the daemon closed the connection.
fn answer_then_closed(s: &mut UnixStream) -> Value {
    let mut len = [0u8; 4];
    s.read_exact(&mut len).expect("a response frame");
    let mut body = vec![0u8; u32::from_be_bytes(len) as usize];
    s.read_exact(&mut body).unwrap();
    let mut rest = Vec::new();
    let n = s.read_to_end(&mut rest).unwrap_or(0);
    assert_eq!(n, 0, "the connection is closed after the error");
    serde_json::from_slice(&body).unwrap()
}

fn error_kind(v: &Value) -> &str {
    assert_eq!(v["v"], 1, "{v}");
    assert_eq!(v["body"]["kind"], "error", "{v}");
    assert!(v["body"]["message"].is_string(), "{v}");
    v["body"]["code"].as_str().unwrap()
}

#[test]
fn hostile_frames_get_typed_errors_and_the_daemon_carries_on() {
    let p = Project::jobs(&[("a", "medium")], "");
    let pid = p.start();

    // Half a frame, then silence: held open while the others run.
    let mut half = connect(&p);
    half.write_all(&[0, 0, 0, 100]).unwrap();
    half.write_all(b"{\"v\":1,").unwrap();
    let half_sent = Instant::now();

    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "random bytes",
            frame(&[0x13, 0x37, 0x00, 0xff, 0x42]),
            "malformed",
        ),
        (
            "4 GB length",
            vec![0xff, 0xff, 0xff, 0xff, b'{'],
            "too_large",
        ),
        (
            "just over 1 MiB",
            (1_048_577_u32).to_be_bytes().to_vec(),
            "too_large",
        ),
        (
            "newline JSON",
            b"{\"v\":1,\"body\":{\"op\":\"ping\"}}\n".to_vec(),
            "too_large",
        ),
        (
            "bad UTF-8",
            frame(b"{\"v\":1,\"body\":\"\xff\xfe\"}"),
            "malformed",
        ),
        (
            "unknown version",
            frame(br#"{"v":99,"body":{"op":"ping"}}"#),
            "version",
        ),
        (
            "unknown op",
            frame(br#"{"v":1,"body":{"op":"format_disk"}}"#),
            "malformed",
        ),
        ("no envelope", frame(br#"{"op":"ping"}"#), "malformed"),
    ];
    for (what, bytes, want) in cases {
        let mut s = connect(&p);
        s.write_all(&bytes).unwrap();
        let v = answer_then_closed(&mut s);
        assert_eq!(error_kind(&v), want, "{what}: {v}");
        // Another client is served normally in between.
        p.bgtask(&["status"]).code(0);
    }
    // A client that connects and says nothing costs nothing either.
    let idle = connect(&p);
    p.bgtask(&["status"]).code(0);
    drop(idle);

    let v = answer_then_closed(&mut half);
    assert_eq!(error_kind(&v), "timeout", "{v}");
    let waited = half_sent.elapsed();
    assert!(waited >= Duration::from_secs(4), "{waited:?}");
    assert_eq!(p.status()["pid"], pid, "same daemon throughout");
    p.stop();
}

/// RELIABILITY 17: even with the directory and socket opened up, another
/// user is refused by the peer uid check.
#[test]
fn another_user_is_refused() {
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("not root: cannot act as another user here");
        return;
    }
    let p = Project::jobs(&[("a", "medium")], "");
    p.start();
    let socket = p.socket();
    for dir in [p.xdg_runtime().to_owned(), p.runtime_dir()] {
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o711)).unwrap();
    }
    std::fs::set_permissions(&socket, std::fs::Permissions::from_mode(0o666)).unwrap();
    let script = "import socket,struct,sys\n\
s=socket.socket(socket.AF_UNIX)\n\
s.connect(sys.argv[1])\n\
b=b'{\"v\":1,\"body\":{\"op\":\"stop\"}}'\n\
s.sendall(struct.pack('>I',len(b))+b)\n\
n=struct.unpack('>I',s.recv(4))[0]\n\
print(s.recv(n).decode())\n";
    let out = std::process::Command::new("setpriv")
        .args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "/usr/bin/python3",
            "-c",
            script,
        ])
        .arg(&socket)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(error_kind(&v), "forbidden", "{v}");
    assert!(
        p.daemon_log()
            .contains("refused a connection from another user")
    );
    // Closed up again, the owner's client uses it as before.
    for dir in [p.xdg_runtime().to_owned(), p.runtime_dir()] {
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).unwrap();
    }
    p.bgtask(&["status"]).code(0);
    p.stop();
}

/// One request cannot make unbounded work: repeated task names count
/// once, and past 256 names the submit is refused.
#[test]
fn a_submit_is_bounded() {
    let p = Project::jobs(&[("a", "medium")], "");
    p.start();
    let mut s = connect(&p);
    let mut ask = |tasks: &[&str]| -> Value {
        let body = serde_json::json!({"v": 1, "body": {"op": "submit", "tasks": tasks,
            "files": null, "priority": null, "source": {"kind": "manual", "command": "t"}}});
        s.write_all(&frame(body.to_string().as_bytes())).unwrap();
        let mut len = [0u8; 4];
        s.read_exact(&mut len).unwrap();
        let mut reply = vec![0u8; u32::from_be_bytes(len) as usize];
        s.read_exact(&mut reply).unwrap();
        serde_json::from_slice(&reply).unwrap()
    };
    let v = ask(&["all"; 300]);
    assert_eq!(error_kind(&v), "invalid", "{v}");
    assert!(
        v["body"]["message"]
            .as_str()
            .unwrap()
            .contains("at most 256"),
        "{v}"
    );
    let v = ask(&["a", "all", "a", "all"]);
    assert_eq!(v["body"]["jobs"].as_array().unwrap().len(), 1, "{v}");
    p.stop();
}
