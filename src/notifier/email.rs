//! The email channel's wire: one outbox message over SMTP (lettre, rustls).
//!
//! Security: `starttls` requires the server to offer STARTTLS and upgrades
//! before anything else (no fallback to plaintext, ever); `tls` is implicit
//! TLS. Certificates and host names are always verified, against the
//! system's roots plus `ca_file` (a corporate relay's private CA). `none`
//! (plaintext) is refused for any host that is not loopback, here as well
//! as in the config check. The password is read when sending, from
//! `password_env` or by running `password_command`; it never comes from the
//! config file.
//!
//! Errors: a 5xx reply is permanent (the message is dead: retrying a wrong
//! password only locks the account); everything else — connection refused,
//! TLS failure, timeouts, 4xx, a password not available yet — is transient.
//! Queueing and retries are `outbox.rs`.

use std::path::Path;
use std::time::Duration;

use lettre::message::{Mailbox, MultiPart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use super::render::Email;
use crate::config::{EmailChannel, PasswordSource, TlsMode};

/// How long one SMTP conversation may take.
const SMTP_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a `password_command` may take.
const PASSWORD_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// Retrying will not help (a 5xx reply, an unusable address).
    #[error("{0}")]
    Permanent(String),
    /// Worth another try later.
    #[error("{0}")]
    Transient(String),
}

impl SendError {
    pub fn is_permanent(&self) -> bool {
        matches!(self, SendError::Permanent(_))
    }
}

/// Whether `host` is this machine (the only place plaintext may go).
pub fn is_loopback(host: &str) -> bool {
    host == "localhost"
        || host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// "smtp.example.com:587 (STARTTLS)".
pub fn describe(c: &EmailChannel) -> String {
    let tls = match c.tls {
        TlsMode::Starttls => "STARTTLS",
        TlsMode::Tls => "TLS",
        TlsMode::None => "plaintext, loopback only",
    };
    format!("{}:{} ({tls})", c.smtp_host, c.smtp_port)
}

fn tls(c: &EmailChannel, root: &Path) -> Result<Tls, SendError> {
    if c.tls == TlsMode::None {
        if !is_loopback(&c.smtp_host) {
            return Err(SendError::Permanent(format!(
                "refusing to send mail in plaintext to `{}`: only a loopback host may use `tls: none`",
                c.smtp_host
            )));
        }
        return Ok(Tls::None);
    }
    let mut params = TlsParameters::builder(c.smtp_host.clone());
    if let Some(ca) = &c.ca_file {
        let path = root.join(ca);
        let pem = std::fs::read(&path)
            .map_err(|e| SendError::Transient(format!("read ca_file {}: {e}", path.display())))?;
        let not_pem = |why: String| {
            SendError::Transient(format!(
                "ca_file {} is not a PEM certificate: {why}",
                path.display()
            ))
        };
        if !pem.windows(27).any(|w| w == b"-----BEGIN CERTIFICATE-----") {
            return Err(not_pem("no BEGIN CERTIFICATE block".to_owned()));
        }
        let cert = Certificate::from_pem(&pem).map_err(|e| not_pem(e.to_string()))?;
        params = params.add_root_certificate(cert);
    }
    let params = params
        .build_rustls()
        .map_err(|e| SendError::Transient(format!("TLS setup: {e}")))?;
    Ok(match c.tls {
        TlsMode::Tls => Tls::Wrapper(params),
        TlsMode::Starttls | TlsMode::None => Tls::Required(params),
    })
}

/// The SMTP password, read now.
pub async fn password(source: &PasswordSource) -> Result<String, SendError> {
    match source {
        PasswordSource::Env(var) => std::env::var(var).map_err(|_| {
            SendError::Transient(format!(
                "the SMTP password variable `{var}` is not set in the daemon's environment"
            ))
        }),
        PasswordSource::Command(argv) => {
            let Some((program, rest)) = argv.split_first() else {
                return Err(SendError::Permanent(
                    "the password command is empty".to_owned(),
                ));
            };
            let run = tokio::process::Command::new(program)
                .args(rest)
                .stdin(std::process::Stdio::null())
                .kill_on_drop(true)
                .output();
            let out = match tokio::time::timeout(PASSWORD_TIMEOUT, run).await {
                Err(_) => {
                    return Err(SendError::Transient(format!(
                        "the password command `{program}` did not finish within {}s",
                        PASSWORD_TIMEOUT.as_secs()
                    )));
                }
                Ok(Err(e)) => {
                    return Err(SendError::Transient(format!(
                        "run the password command `{program}`: {e}"
                    )));
                }
                Ok(Ok(out)) => out,
            };
            if !out.status.success() {
                let stderr = String::from_utf8_lossy(&out.stderr);
                return Err(SendError::Transient(format!(
                    "the password command `{program}` failed ({}): {}",
                    out.status,
                    stderr.trim()
                )));
            }
            let stdout = String::from_utf8_lossy(&out.stdout);
            Ok(stdout.lines().next().unwrap_or_default().to_owned())
        }
    }
}

fn mailbox(what: &str, s: &str) -> Result<Mailbox, SendError> {
    s.parse()
        .map_err(|e| SendError::Permanent(format!("the {what} address `{s}` is not usable: {e}")))
}

/// The message: text and HTML alternatives, and a Message-ID that stays
/// the same across retries of the same outbox entry.
pub fn message(
    c: &EmailChannel,
    outbox_id: i64,
    created_ms: i64,
    email: &Email,
) -> Result<Message, SendError> {
    let from = mailbox("from", &c.from)?;
    let domain = c
        .from
        .rsplit_once('@')
        .map_or("localhost", |(_, d)| d.trim_end_matches('>'));
    let mut b = Message::builder()
        .from(from)
        .subject(email.subject.clone())
        .message_id(Some(format!("<bgtask.{created_ms}.{outbox_id}@{domain}>")));
    for to in &c.to {
        b = b.to(mailbox("to", to)?);
    }
    b.multipart(MultiPart::alternative_plain_html(
        email.text.clone(),
        email.html.clone(),
    ))
    .map_err(|e| SendError::Permanent(format!("build the message: {e}")))
}

/// Sends one message; `root` anchors a relative `ca_file`. Returns the
/// server's reply.
pub async fn send(
    c: &EmailChannel,
    root: &Path,
    outbox_id: i64,
    created_ms: i64,
    email: &Email,
) -> Result<String, SendError> {
    let msg = message(c, outbox_id, created_ms, email)?;
    let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(c.smtp_host.clone())
        .port(c.smtp_port)
        .tls(tls(c, root)?)
        .timeout(Some(SMTP_TIMEOUT));
    if let Some(user) = &c.username {
        let pass = match &c.password {
            Some(source) => password(source).await?,
            None => String::new(),
        };
        builder = builder.credentials(Credentials::new(user.clone(), pass));
    }
    let transport = builder.build();
    match transport.send(msg).await {
        Ok(reply) => Ok(reply.message().collect::<Vec<_>>().join(" ")),
        Err(e) if e.is_permanent() => Err(SendError::Permanent(tidy(&e.to_string()))),
        Err(e) => Err(SendError::Transient(tidy(&e.to_string()))),
    }
}

/// An error chain without a part said twice in a row ("Connection error:
/// Connection error: …").
fn tidy(message: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for part in message.split(": ") {
        if parts.last() != Some(&part) {
            parts.push(part);
        }
    }
    parts.join(": ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn channel(tls: TlsMode, host: &str) -> EmailChannel {
        EmailChannel {
            min_severity: crate::config::NotifyLevel::Critical,
            smtp_host: host.to_owned(),
            smtp_port: 2525,
            tls,
            ca_file: None,
            username: None,
            password: None,
            from: "bgtask@example.com".to_owned(),
            to: vec![
                "dev@example.com".to_owned(),
                "Ops <ops@example.com>".to_owned(),
            ],
            digest_minutes: 0,
        }
    }

    #[test]
    fn repeated_parts_of_an_error_are_said_once() {
        assert_eq!(
            tidy("Connection error: Connection error: invalid peer certificate: UnknownIssuer"),
            "Connection error: invalid peer certificate: UnknownIssuer"
        );
        assert_eq!(tidy("a: b: a"), "a: b: a");
    }

    #[test]
    fn loopback_hosts() {
        for (host, want) in [
            ("localhost", true),
            ("127.0.0.1", true),
            ("127.8.9.1", true),
            ("::1", true),
            ("[::1]", true),
            ("smtp.example.com", false),
            ("10.0.0.1", false),
            ("localhost.example.com", false),
        ] {
            assert_eq!(is_loopback(host), want, "{host}");
        }
    }

    #[test]
    fn plaintext_only_to_loopback() {
        let root = Path::new("/");
        assert!(matches!(
            tls(&channel(TlsMode::None, "127.0.0.1"), root),
            Ok(Tls::None)
        ));
        let Err(e) = tls(&channel(TlsMode::None, "smtp.example.com"), root) else {
            panic!("plaintext to a remote host")
        };
        assert!(
            e.is_permanent() && e.to_string().contains("plaintext"),
            "{e}"
        );
        assert!(matches!(
            tls(&channel(TlsMode::Starttls, "smtp.example.com"), root),
            Ok(Tls::Required(_))
        ));
        assert!(matches!(
            tls(&channel(TlsMode::Tls, "smtp.example.com"), root),
            Ok(Tls::Wrapper(_))
        ));
    }

    #[test]
    fn a_bad_ca_file_is_a_transient_error() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("ca.pem"), "not a certificate").unwrap();
        for (file, want) in [("missing.pem", "read ca_file"), ("ca.pem", "not a PEM")] {
            let mut c = channel(TlsMode::Starttls, "smtp.example.com");
            c.ca_file = Some(file.into());
            let Err(e) = tls(&c, dir.path()) else {
                panic!("{file} accepted")
            };
            assert!(!e.is_permanent() && e.to_string().contains(want), "{e}");
        }
    }

    #[test]
    fn a_message_has_both_bodies_and_a_stable_id() {
        let email = Email {
            subject: "[bgtask] demo: security: 1 new finding".to_owned(),
            text: "plain body\n".to_owned(),
            html: "<p>html body</p>".to_owned(),
        };
        let c = channel(TlsMode::Starttls, "smtp.example.com");
        let raw = String::from_utf8(message(&c, 9, 1234, &email).unwrap().formatted()).unwrap();
        assert!(
            raw.contains("Message-ID: <bgtask.1234.9@example.com>"),
            "{raw}"
        );
        assert!(raw.contains("multipart/alternative"), "{raw}");
        assert!(
            raw.contains("text/plain") && raw.contains("text/html"),
            "{raw}"
        );
        assert!(
            raw.contains("To: dev@example.com, Ops <ops@example.com>"),
            "{raw}"
        );
        let mut bad = c.clone();
        bad.to = vec!["not an address".to_owned()];
        assert!(message(&bad, 1, 1, &email).unwrap_err().is_permanent());
    }

    #[tokio::test]
    async fn passwords_come_from_the_environment_or_a_command() {
        let missing = password(&PasswordSource::Env("BGTASK_TEST_NO_SUCH_VAR".to_owned())).await;
        assert!(matches!(missing, Err(SendError::Transient(m)) if m.contains("not set")));
        let cmd =
            |argv: &[&str]| PasswordSource::Command(argv.iter().map(|s| (*s).to_owned()).collect());
        assert_eq!(
            password(&cmd(&["printf", "s3cret\\nignored"]))
                .await
                .unwrap(),
            "s3cret"
        );
        let failed = password(&cmd(&["sh", "-c", "echo locked >&2; exit 3"])).await;
        assert!(matches!(failed, Err(SendError::Transient(m)) if m.contains("locked")));
        let absent = password(&cmd(&["/nonexistent/pass"])).await;
        assert!(matches!(absent, Err(SendError::Transient(_))));
    }

    #[tokio::test]
    async fn a_refused_connection_is_transient() {
        // A port nothing listens on: bind, learn the port, close.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut c = channel(TlsMode::Starttls, "127.0.0.1");
        c.smtp_port = port;
        let email = Email {
            subject: "s".to_owned(),
            text: "t".to_owned(),
            html: "h".to_owned(),
        };
        let e = send(&c, Path::new("/"), 1, 1, &email).await.unwrap_err();
        assert!(!e.is_permanent(), "{e}");
    }
}
