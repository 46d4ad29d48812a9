//! The blocking client every CLI command (and the hook) uses to talk to
//! the daemon: connect with a timeout, one request, one response (or a
//! stream of log chunks).

use std::io;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

use super::frame::{self, FrameError};
use super::protocol::{Envelope, ErrorKind, IpcError, Request, Response, VERSION};

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("the daemon is not running (no answer on {socket})")]
    NotRunning { socket: String },
    #[error("the daemon did not answer in time")]
    Timeout,
    #[error("talking to the daemon")]
    Frame(#[from] FrameError),
    #[error(
        "the daemon speaks protocol version {0}, this bgtask speaks {VERSION}; restart the daemon (`bgtask restart`)"
    )]
    Version(u32),
    #[error(transparent)]
    Daemon(IpcError),
    #[error("the daemon answered a {0} request with something else")]
    Unexpected(&'static str),
    /// The worktree's socket has no place (no runtime directory).
    #[error("no socket for this worktree: {0}")]
    NoSocket(String),
}

/// One request to the daemon of the worktree at `root`, which has `within`
/// to answer (blocking: from async code, on a blocking thread).
pub fn ask(root: &Path, request: Request, within: Duration) -> Result<Response, ClientError> {
    let paths =
        crate::state::Paths::for_root(root).map_err(|e| ClientError::NoSocket(e.to_string()))?;
    Client::connect(&paths.socket, within)?.call(request)
}

pub struct Client {
    stream: UnixStream,
}

impl Client {
    /// Connects to the daemon's socket; `timeout` bounds the connect (a
    /// hung daemon's full backlog) and every read and write.
    pub fn connect(socket: &Path, timeout: Duration) -> Result<Client, ClientError> {
        let stream = connect_within(socket, timeout).map_err(|e| match e.kind() {
            io::ErrorKind::NotFound | io::ErrorKind::ConnectionRefused => ClientError::NotRunning {
                socket: socket.display().to_string(),
            },
            io::ErrorKind::TimedOut => ClientError::Timeout,
            _ => ClientError::Frame(FrameError::Io(e)),
        })?;
        stream
            .set_read_timeout(Some(timeout))
            .map_err(FrameError::Io)?;
        stream
            .set_write_timeout(Some(timeout))
            .map_err(FrameError::Io)?;
        Ok(Client { stream })
    }

    /// Sets another read timeout (the hook waits longer for its answer
    /// than for its connect).
    pub fn read_timeout(&self, timeout: Duration) -> Result<(), ClientError> {
        self.stream
            .set_read_timeout(Some(timeout))
            .map_err(|e| ClientError::Frame(FrameError::Io(e)))
    }

    /// Removes the read timeout (for `logs --follow`).
    pub fn no_read_timeout(&self) -> Result<(), ClientError> {
        self.stream
            .set_read_timeout(None)
            .map_err(|e| ClientError::Frame(FrameError::Io(e)))
    }

    pub fn send(&mut self, request: Request) -> Result<(), ClientError> {
        frame::write_blocking(&mut self.stream, &Envelope::new(request)).map_err(timeout)
    }

    /// The next response; a daemon error becomes `Err(Daemon)`.
    pub fn receive(&mut self) -> Result<Response, ClientError> {
        let env: Envelope<Response> = frame::read_blocking(&mut self.stream).map_err(timeout)?;
        if env.v != VERSION {
            return Err(ClientError::Version(env.v));
        }
        match env.body {
            Response::Error(e) if e.kind == ErrorKind::Version => Err(ClientError::Version(env.v)),
            Response::Error(e) => Err(ClientError::Daemon(e)),
            other => Ok(other),
        }
    }

    pub fn call(&mut self, request: Request) -> Result<Response, ClientError> {
        self.send(request)?;
        self.receive()
    }
}

/// `connect(2)` on a Unix socket blocks while the listener's backlog is
/// full; non-blocking, it fails with `EAGAIN` instead, so retry that until
/// `timeout`.
fn connect_within(socket: &Path, timeout: Duration) -> io::Result<UnixStream> {
    use std::os::fd::FromRawFd;
    use std::os::unix::ffi::OsStrExt;

    let path = socket.as_os_str().as_bytes();
    // SAFETY: sockaddr_un is plain old data; zeroed is a valid value.
    let mut addr: libc::sockaddr_un = unsafe { std::mem::zeroed() };
    if path.len() >= addr.sun_path.len() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "socket path too long",
        ));
    }
    addr.sun_family = libc::sa_family_t::try_from(libc::AF_UNIX).expect("AF_UNIX fits");
    for (dst, src) in addr.sun_path.iter_mut().zip(path) {
        *dst = libc::c_char::from_ne_bytes([*src]);
    }
    let len = libc::socklen_t::try_from(std::mem::size_of::<libc::sockaddr_un>())
        .expect("sockaddr_un fits");
    // SAFETY: creates a new descriptor, owned below.
    let fd = unsafe {
        libc::socket(
            libc::AF_UNIX,
            libc::SOCK_STREAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
            0,
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` is a fresh socket nobody else owns.
    let stream = unsafe { UnixStream::from_raw_fd(fd) };
    let deadline = std::time::Instant::now() + timeout;
    loop {
        // SAFETY: a valid address of the given length for this socket.
        let r = unsafe { libc::connect(fd, (&raw const addr).cast::<libc::sockaddr>(), len) };
        if r == 0 {
            break;
        }
        let e = io::Error::last_os_error();
        match e.raw_os_error() {
            Some(libc::EAGAIN | libc::EINTR) if std::time::Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(5));
            }
            Some(libc::EAGAIN) => {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "the daemon's backlog is full",
                ));
            }
            _ => return Err(e),
        }
    }
    stream.set_nonblocking(false)?;
    Ok(stream)
}

fn timeout(e: FrameError) -> ClientError {
    match e {
        FrameError::Timeout => ClientError::Timeout,
        other => ClientError::Frame(other),
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::net::UnixListener;
    use std::time::Instant;

    use super::*;

    #[test]
    fn connect_gives_up_on_a_hung_listener_and_knows_a_missing_one() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("d.sock");
        assert!(matches!(
            Client::connect(&path, Duration::from_millis(100)),
            Err(ClientError::NotRunning { .. })
        ));
        // A listener that never accepts: fill its backlog.
        let _listener = UnixListener::bind(&path).unwrap();
        let mut held = Vec::new();
        while let Ok(s) = connect_within(&path, Duration::ZERO) {
            held.push(s);
            assert!(held.len() < 10_000, "the backlog never filled");
        }
        let started = Instant::now();
        let got = Client::connect(&path, Duration::from_millis(200));
        assert!(matches!(got, Err(ClientError::Timeout)), "{:?}", got.err());
        let took = started.elapsed();
        assert!(
            took >= Duration::from_millis(200) && took < Duration::from_secs(2),
            "{took:?}"
        );
    }
}

/// Streams from async code: a request whose answer is a stream
/// (`subscribe`, `logs` with follow), for the front ends that run on a
/// runtime (the dashboard, MCP). The blocking [`Client`] does the same for
/// the CLI and the language server.
pub mod stream {
    use std::path::Path;

    use tokio::net::UnixStream;

    use super::ClientError;
    use crate::ipc::frame;
    use crate::ipc::protocol::{Envelope, Request, Response};

    /// Sends `request` to the daemon listening on `socket`; read the
    /// answers with [`next`].
    pub async fn open(socket: &Path, request: Request) -> Result<UnixStream, ClientError> {
        let mut stream =
            UnixStream::connect(socket)
                .await
                .map_err(|_| ClientError::NotRunning {
                    socket: socket.display().to_string(),
                })?;
        frame::write(&mut stream, &Envelope::new(request)).await?;
        Ok(stream)
    }

    /// The next answer on a stream; `None` once it broke off.
    pub async fn next(stream: &mut UnixStream) -> Option<Response> {
        frame::read::<Envelope<Response>>(stream)
            .await
            .ok()
            .map(|e| e.body)
    }
}
