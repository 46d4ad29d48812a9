//! Frames on the daemon socket: a 4-byte big-endian length, then that many
//! bytes of JSON. What the daemon reads (requests, from any local process)
//! is capped at [`MAX_FRAME`] and refused before anything is allocated; a
//! peer that stops mid-frame hits the read deadline. What the daemon
//! answers (a large report, say) may be up to [`MAX_RESPONSE`].
//!
//! Blocking helpers serve the CLI and the hook (they write requests and
//! read responses); async ones the daemon (the other way round).

use std::io::{self, Read, Write};
use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Largest request the daemon accepts.
pub const MAX_FRAME: usize = 1024 * 1024;
/// Largest response a client accepts.
pub const MAX_RESPONSE: usize = 64 * 1024 * 1024;
/// How long the daemon waits for the rest of a frame once it started.
pub const READ_DEADLINE: Duration = Duration::from_secs(5);

#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    #[error("the peer closed the connection")]
    Closed,
    #[error("frame of {0} bytes is over the {1}-byte limit")]
    TooLarge(usize, usize),
    #[error("timed out waiting for the rest of a frame")]
    Timeout,
    #[error("frame is not valid protocol JSON: {0}")]
    Malformed(String),
    #[error("socket i/o")]
    Io(#[from] io::Error),
}

fn encode<T: Serialize>(msg: &T, limit: usize) -> Result<Vec<u8>, FrameError> {
    let body = serde_json::to_vec(msg).map_err(|e| FrameError::Malformed(e.to_string()))?;
    if body.len() > limit {
        return Err(FrameError::TooLarge(body.len(), limit));
    }
    let len = u32::try_from(body.len()).map_err(|_| FrameError::TooLarge(body.len(), limit))?;
    let mut out = Vec::with_capacity(body.len() + 4);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(&body);
    Ok(out)
}

fn decode<T: DeserializeOwned>(body: &[u8]) -> Result<T, FrameError> {
    serde_json::from_slice(body).map_err(|e| FrameError::Malformed(e.to_string()))
}

fn length(header: [u8; 4], limit: usize) -> Result<usize, FrameError> {
    let len = u32::from_be_bytes(header) as usize;
    if len > limit {
        return Err(FrameError::TooLarge(len, limit));
    }
    Ok(len)
}

/// Writes one request (blocking).
pub fn write_blocking<T: Serialize>(w: &mut impl Write, msg: &T) -> Result<(), FrameError> {
    w.write_all(&encode(msg, MAX_FRAME)?)?;
    w.flush()?;
    Ok(())
}

/// Reads one response (blocking; the socket's own read timeout applies).
pub fn read_blocking<T: DeserializeOwned>(r: &mut impl Read) -> Result<T, FrameError> {
    let mut header = [0u8; 4];
    read_exact_blocking(r, &mut header)?;
    let mut body = vec![0u8; length(header, MAX_RESPONSE)?];
    read_exact_blocking(r, &mut body)?;
    decode(&body)
}

fn read_exact_blocking(r: &mut impl Read, buf: &mut [u8]) -> Result<(), FrameError> {
    r.read_exact(buf).map_err(|e| match e.kind() {
        io::ErrorKind::UnexpectedEof => FrameError::Closed,
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => FrameError::Timeout,
        _ => FrameError::Io(e),
    })
}

/// Writes one response.
pub async fn write<T: Serialize>(
    w: &mut (impl AsyncWriteExt + Unpin),
    msg: &T,
) -> Result<(), FrameError> {
    w.write_all(&encode(msg, MAX_RESPONSE)?).await?;
    w.flush().await?;
    Ok(())
}

/// Reads one request: waits as long as needed for a frame to start (an idle
/// connection is fine), then at most [`READ_DEADLINE`] for the rest.
pub async fn read<T: DeserializeOwned>(
    r: &mut (impl AsyncReadExt + Unpin),
) -> Result<T, FrameError> {
    let mut header = [0u8; 4];
    if r.read(&mut header[..1]).await? == 0 {
        return Err(FrameError::Closed);
    }
    let rest = async {
        r.read_exact(&mut header[1..]).await?;
        let mut body = vec![0u8; length(header, MAX_FRAME)?];
        r.read_exact(&mut body).await?;
        Ok::<_, FrameError>(body)
    };
    let body = match tokio::time::timeout(READ_DEADLINE, rest).await {
        Ok(Ok(body)) => body,
        Ok(Err(FrameError::Io(e))) if e.kind() == io::ErrorKind::UnexpectedEof => {
            return Err(FrameError::Closed);
        }
        Ok(Err(e)) => return Err(e),
        Err(_) => return Err(FrameError::Timeout),
    };
    decode(&body)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    #[test]
    fn blocking_round_trip_and_limits() {
        let mut buf = Vec::new();
        write_blocking(&mut buf, &json!({"op": "ping"})).unwrap();
        assert_eq!(
            &buf[..4],
            &u32::try_from(buf.len() - 4).unwrap().to_be_bytes()
        );
        let back: Value = read_blocking(&mut buf.as_slice()).unwrap();
        assert_eq!(back, json!({"op": "ping"}));

        let huge = (u32::try_from(MAX_RESPONSE).unwrap() + 1).to_be_bytes();
        assert!(matches!(
            read_blocking::<Value>(&mut &huge[..]),
            Err(FrameError::TooLarge(..))
        ));
        let big = "x".repeat(MAX_FRAME);
        assert!(matches!(
            write_blocking(&mut Vec::new(), &big),
            Err(FrameError::TooLarge(..))
        ));
        let truncated = [0, 0, 0, 10, b'{'];
        assert!(matches!(
            read_blocking::<Value>(&mut &truncated[..]),
            Err(FrameError::Closed)
        ));
        let garbage = [0, 0, 0, 3, 0xff, 0xfe, b'x'];
        assert!(matches!(
            read_blocking::<Value>(&mut &garbage[..]),
            Err(FrameError::Malformed(_))
        ));
    }

    #[tokio::test(start_paused = true)]
    async fn async_half_frame_then_silence_times_out() {
        let (mut a, mut b) = tokio::io::duplex(64);
        a.write_all(&[0, 0, 0, 20, b'{']).await.unwrap();
        let got = read::<Value>(&mut b).await;
        assert!(matches!(got, Err(FrameError::Timeout)), "{got:?}");
    }

    #[tokio::test]
    async fn async_round_trip_and_close() {
        let (mut a, mut b) = tokio::io::duplex(1 << 16);
        write(&mut a, &json!({"op": "status"})).await.unwrap();
        drop(a);
        let v: Value = read(&mut b).await.unwrap();
        assert_eq!(v["op"], "status");
        assert!(matches!(
            read::<Value>(&mut b).await,
            Err(FrameError::Closed)
        ));
    }

    mod fuzz {
        use proptest::prelude::*;

        use super::super::*;
        use crate::ipc::{Envelope, Request};

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(2000))]

            /// Any byte string decodes to a request or a typed error, never
            /// a panic, and never reads past the frame cap.
            #[test]
            fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
                let got = read_blocking::<Envelope<Request>>(&mut bytes.as_slice());
                if let Ok(env) = &got {
                    prop_assert!(bytes.len() >= 4);
                    prop_assert!(serde_json::to_vec(&env.body).is_ok());
                }
            }

            /// A valid length with a mangled body is an error, not a panic.
            #[test]
            fn mangled_bodies_are_typed_errors(
                body in proptest::collection::vec(any::<u8>(), 0..256),
                flip in any::<usize>(),
            ) {
                let mut frame = encode(&Envelope::new(Request::Status), MAX_FRAME).unwrap();
                if !body.is_empty() {
                    let n = frame.len() - 4;
                    frame.truncate(4 + flip % n);
                    frame.extend_from_slice(&body);
                    let len = u32::try_from(frame.len() - 4).unwrap();
                    frame[..4].copy_from_slice(&len.to_be_bytes());
                }
                let got = read_blocking::<Envelope<Request>>(&mut frame.as_slice());
                prop_assert!(got.is_ok() || matches!(got, Err(FrameError::Malformed(_))), "{got:?}");
            }
        }
    }
}
