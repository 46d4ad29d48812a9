//! HTTPS for the dashboard (`--tls-cert`, `--tls-key`): the certificate
//! chain and key read from PEM files, and a listener that hands axum a
//! connection only once its TLS handshake is done. Handshakes run side
//! by side, each within [`HANDSHAKE_TIMEOUT`]; one that fails or stalls is
//! logged at debug and dropped, and the server carries on. Where to
//! listen and who may talk are `mod.rs`'s and `guard.rs`'s.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls;
use tokio_rustls::rustls::pki_types::pem::{self, PemObject};
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::server::TlsStream;

/// A client that has not finished its handshake by then is dropped.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Handshakes under way at once; more connections wait in the kernel's
/// backlog until one ends (at the latest after [`HANDSHAKE_TIMEOUT`]).
const MAX_HANDSHAKES: usize = 64;

/// A certificate or key that cannot serve HTTPS. Each message names the
/// file and says what is wrong with it.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read {}: {why}", path.display())]
    Read { path: PathBuf, why: std::io::Error },
    #[error("{} is not a PEM file: {why}", path.display())]
    NotPem { path: PathBuf, why: pem::Error },
    #[error("{} holds no PEM certificate (`-----BEGIN CERTIFICATE-----`)", path.display())]
    NoCertificate { path: PathBuf },
    #[error("{} holds no PEM private key (`-----BEGIN PRIVATE KEY-----`)", path.display())]
    NoKey { path: PathBuf },
    #[error("cannot serve HTTPS with the certificate {} and the key {}: {why}", cert.display(), key.display())]
    Unusable {
        cert: PathBuf,
        key: PathBuf,
        why: rustls::Error,
    },
}

impl TlsError {
    fn pem(path: &Path, e: pem::Error, empty: fn(PathBuf) -> TlsError) -> TlsError {
        let path = path.to_owned();
        match e {
            pem::Error::Io(why) => TlsError::Read { path, why },
            pem::Error::NoItemsFound => empty(path),
            why => TlsError::NotPem { path, why },
        }
    }
}

/// A loaded certificate and key, ready to accept connections.
pub struct Tls {
    acceptor: TlsAcceptor,
}

impl Tls {
    /// Reads the chain (`cert`, leaf first) and its private key (`key`,
    /// PKCS#8, PKCS#1 or SEC1), and checks that they belong together.
    pub fn load(cert: &Path, key: &Path) -> Result<Tls, TlsError> {
        let chain = CertificateDer::pem_file_iter(cert)
            .and_then(Iterator::collect::<Result<Vec<_>, _>>)
            .map_err(|e| TlsError::pem(cert, e, |path| TlsError::NoCertificate { path }))?;
        if chain.is_empty() {
            return Err(TlsError::NoCertificate {
                path: cert.to_owned(),
            });
        }
        let secret = PrivateKeyDer::from_pem_file(key)
            .map_err(|e| TlsError::pem(key, e, |path| TlsError::NoKey { path }))?;
        let unusable = |why| TlsError::Unusable {
            cert: cert.to_owned(),
            key: key.to_owned(),
            why,
        };
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(unusable)?
            .with_no_client_auth()
            .with_single_cert(chain, secret)
            .map_err(unusable)?;
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Tls {
            acceptor: TlsAcceptor::from(Arc::new(config)),
        })
    }

    /// Serves TLS on `tcp`'s connections.
    pub fn listener(&self, tcp: TcpListener) -> TlsListener {
        TlsListener {
            tcp,
            acceptor: self.acceptor.clone(),
            handshakes: JoinSet::new(),
        }
    }
}

/// A TCP listener whose connections come out with their TLS handshake
/// done.
pub struct TlsListener {
    tcp: TcpListener,
    acceptor: TlsAcceptor,
    /// Connections still shaking hands; each ends within the timeout.
    handshakes: JoinSet<Option<(TlsStream<TcpStream>, SocketAddr)>>,
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        // Both branches are cancel-safe: a connection accepted or a
        // handshake finished is kept in `self` until it is returned.
        loop {
            tokio::select! {
                accepted = self.tcp.accept(), if self.handshakes.len() < MAX_HANDSHAKES => {
                    match accepted {
                        Ok((tcp, peer)) => {
                            self.handshakes
                                .spawn(handshake(self.acceptor.clone(), tcp, peer));
                        }
                        Err(e) => accept_failed(&e).await,
                    }
                }
                Some(done) = self.handshakes.join_next() => {
                    if let Ok(Some(ready)) = done {
                        return ready;
                    }
                }
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        self.tcp.local_addr()
    }
}

async fn handshake(
    acceptor: TlsAcceptor,
    tcp: TcpStream,
    peer: SocketAddr,
) -> Option<(TlsStream<TcpStream>, SocketAddr)> {
    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
        Ok(Ok(tls)) => Some((tls, peer)),
        Ok(Err(e)) => {
            tracing::debug!(%peer, error = %e, "TLS handshake failed");
            None
        }
        Err(_) => {
            tracing::debug!(%peer, timeout = ?HANDSHAKE_TIMEOUT, "TLS handshake timed out");
            None
        }
    }
}

/// As axum's own TCP listener: a connection that went away before it was
/// accepted is nothing; anything else (out of file descriptors) gets a
/// pause before the next try.
async fn accept_failed(e: &std::io::Error) {
    use std::io::ErrorKind::{ConnectionAborted, ConnectionRefused, ConnectionReset};
    if matches!(
        e.kind(),
        ConnectionAborted | ConnectionRefused | ConnectionReset
    ) {
        return;
    }
    tracing::error!(error = %e, "accepting a dashboard connection failed");
    tokio::time::sleep(Duration::from_secs(1)).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(cert: &str, key: &str) -> Result<Tls, TlsError> {
        let dir = tempfile::tempdir().unwrap();
        let (c, k) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
        std::fs::write(&c, cert).unwrap();
        std::fs::write(&k, key).unwrap();
        Tls::load(&c, &k)
    }

    #[test]
    fn bad_files_are_named_with_what_is_wrong() {
        let cert_body = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";
        let rows: [(&str, &str, &str, &str); 4] = [
            (
                "not a certificate\n",
                "",
                "cert.pem",
                "holds no PEM certificate",
            ),
            (
                "-----BEGIN CERTIFICATE-----\nAAAA\n",
                "",
                "cert.pem",
                "is not a PEM file",
            ),
            (cert_body, "hello\n", "key.pem", "holds no PEM private key"),
            (
                cert_body,
                "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
                "key.pem",
                "cannot serve HTTPS with",
            ),
        ];
        for (cert, key, file, says) in rows {
            let Err(e) = load(cert, key) else {
                panic!("{cert:?} / {key:?} loaded");
            };
            let msg = e.to_string();
            assert!(msg.contains(file) && msg.contains(says), "{msg}");
        }
        let missing = Tls::load(Path::new("/nonexistent/c.pem"), Path::new("k.pem"));
        assert!(
            matches!(missing, Err(TlsError::Read { ref path, .. }) if path.ends_with("c.pem")),
            "{:?}",
            missing.err()
        );
    }

    /// A server with no certificate at all: enough for a client that
    /// never says hello.
    #[derive(Debug)]
    struct NoCertificate;

    impl rustls::server::ResolvesServerCert for NoCertificate {
        fn resolve(
            &self,
            _: rustls::server::ClientHello<'_>,
        ) -> Option<Arc<rustls::sign::CertifiedKey>> {
            None
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_client_that_never_shakes_hands_is_dropped_after_the_timeout() {
        use axum::serve::Listener;
        use tokio::io::AsyncReadExt;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_cert_resolver(Arc::new(NoCertificate));
        let tls = Tls {
            acceptor: TlsAcceptor::from(Arc::new(config)),
        };
        let mut listener = tls.listener(TcpListener::bind("127.0.0.1:0").await.unwrap());
        let mut stalled = TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        let wait = HANDSHAKE_TIMEOUT + Duration::from_secs(1);
        let accepted = tokio::time::timeout(wait, listener.accept()).await;
        assert!(accepted.is_err(), "no connection to hand on");
        assert!(listener.handshakes.is_empty(), "the handshake was given up");
        let mut byte = [0u8; 1];
        assert_eq!(stalled.read(&mut byte).await.unwrap(), 0, "and closed");
    }
}
