//! Service integration: `bgtask service install|uninstall` writes a systemd
//! user unit that runs the worktree's daemon in the foreground, restarts it
//! on failure, and expects watchdog pings from the core loop; the daemon
//! reports readiness and pings over `$NOTIFY_SOCKET` when run under it.

use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Sends a state line (`READY=1`, `WATCHDOG=1`, `STOPPING=1`) to systemd, if
/// it asked for them.
pub fn notify(state: &str) {
    let Some(path) = std::env::var_os("NOTIFY_SOCKET") else {
        return;
    };
    let Ok(sock) = UnixDatagram::unbound() else {
        return;
    };
    let bytes = path.as_encoded_bytes();
    let result = if let Some(abstract_name) = bytes.strip_prefix(b"@") {
        use std::os::linux::net::SocketAddrExt;
        std::os::unix::net::SocketAddr::from_abstract_name(abstract_name)
            .and_then(|addr| sock.send_to_addr(state.as_bytes(), &addr))
    } else {
        sock.send_to(state.as_bytes(), PathBuf::from(path))
    };
    if let Err(e) = result {
        tracing::debug!(error = %e, "sd_notify failed");
    }
}

/// Half the watchdog period systemd asked for, if it asked.
pub fn watchdog_interval() -> Option<Duration> {
    let usec: u64 = std::env::var("WATCHDOG_USEC").ok()?.parse().ok()?;
    if let Ok(pid) = std::env::var("WATCHDOG_PID")
        && pid.parse::<u32>().ok() != Some(std::process::id())
    {
        return None;
    }
    Some(Duration::from_micros(usec / 2).max(Duration::from_millis(100)))
}

/// The unit's name for a worktree.
pub fn unit_name(root: &Path) -> String {
    let canonical = root.canonicalize().unwrap_or_else(|_| root.to_owned());
    let hash = blake3::hash(canonical.as_os_str().as_encoded_bytes()).to_hex();
    let base = canonical
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let base: String = base
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '-'
            }
        })
        .collect();
    format!("bgtask-{base}-{}.service", &hash[..8])
}

/// Where systemd looks for user units.
pub fn unit_dir() -> PathBuf {
    std::env::var_os("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".config")
        })
        .join("systemd")
        .join("user")
}

/// The unit text for the daemon of `root`, run by `exe`.
pub fn unit(root: &Path, exe: &Path) -> String {
    let q = |p: &Path| {
        format!(
            "\"{}\"",
            p.display()
                .to_string()
                .replace('\\', "\\\\")
                .replace('"', "\\\"")
        )
    };
    format!(
        "[Unit]\n\
         Description=bgtask daemon for {root}\n\
         Documentation=man:bgtask(1)\n\
         \n\
         [Service]\n\
         Type=notify\n\
         ExecStart={exe} -C {rootq} start --foreground\n\
         ExecStop={exe} -C {rootq} stop\n\
         Restart=on-failure\n\
         RestartSec=5\n\
         WatchdogSec=60\n\
         TimeoutStopSec=30\n\
         KillMode=mixed\n\
         \n\
         [Install]\n\
         WantedBy=default.target\n",
        root = root.display(),
        exe = q(exe),
        rootq = q(root),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unit_runs_the_daemon_in_the_foreground_with_a_watchdog() {
        let text = unit(Path::new("/home/me/my repo"), Path::new("/usr/bin/bgtask"));
        assert!(text.contains(
            "ExecStart=\"/usr/bin/bgtask\" -C \"/home/me/my repo\" start --foreground\n"
        ));
        assert!(text.contains("Type=notify\n"));
        assert!(text.contains("WatchdogSec=60\n"));
        assert!(text.contains("Restart=on-failure\n"));
        let name = unit_name(Path::new("/nonexistent/My Repo"));
        assert!(
            name.starts_with("bgtask-My-Repo-") && name.ends_with(".service"),
            "{name}"
        );
    }

    #[test]
    fn notify_reaches_a_datagram_socket() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify.sock");
        let server = UnixDatagram::bind(&path).unwrap();
        // SAFETY: this test binary does not read NOTIFY_SOCKET concurrently.
        unsafe { std::env::set_var("NOTIFY_SOCKET", &path) };
        notify("READY=1");
        // SAFETY: as above.
        unsafe { std::env::remove_var("NOTIFY_SOCKET") };
        let mut buf = [0u8; 64];
        server
            .set_read_timeout(Some(Duration::from_secs(2)))
            .unwrap();
        let n = server.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"READY=1");
    }
}
