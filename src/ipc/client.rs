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
}

pub struct Client {
    stream: UnixStream,
}

impl Client {
    /// Connects to the daemon's socket; `timeout` bounds every read and write.
    pub fn connect(socket: &Path, timeout: Duration) -> Result<Client, ClientError> {
        let stream = UnixStream::connect(socket).map_err(|e| match e.kind() {
            io::ErrorKind::NotFound | io::ErrorKind::ConnectionRefused => ClientError::NotRunning {
                socket: socket.display().to_string(),
            },
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

fn timeout(e: FrameError) -> ClientError {
    match e {
        FrameError::Timeout => ClientError::Timeout,
        other => ClientError::Frame(other),
    }
}
