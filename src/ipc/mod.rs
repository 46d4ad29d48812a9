//! The daemon's IPC: a small versioned request/response protocol over a
//! Unix socket, in length-prefixed JSON frames.
//!
//! Owns the wire format and the client; the server side (accepting,
//! checking the peer, dispatching) is the daemon's.

pub mod bulk;
mod client;
pub mod events;
pub mod frame;
mod protocol;

pub use client::{Client, ClientError, ask, stream};
pub use protocol::*;
