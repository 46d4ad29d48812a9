//! The notifier as the daemon sees it: a [`Notifier`] handle whose sends
//! never block (an unbounded channel), and a thread of its own
//! ([`NotifierThread`]) where a current-thread runtime runs two tasks — the
//! worker, which routes each message, renders it once and hands it to the
//! console, desktop and file channels and to the email digest, and the
//! mailer (`mailer.rs`), which works the outbox. A slow D-Bus, a hung SMTP
//! server or a full disk can delay only that thread, never a job or the
//! scheduler loop.
//!
//! At shutdown the worker handles what is already queued, then both tasks
//! end; an email not sent yet stays in the outbox for the next start.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{Notify, mpsc, watch};
use tokio_util::sync::CancellationToken;

use super::console::ConsoleSink;
use super::db::{Db, Delivery, Outcome};
use super::desktop::{Desktop, DesktopOutcome};
use super::event::{NotificationEvent, RunFinished};
use super::file::JsonlLog;
use super::mailer::{Mailer, SendMail};
use super::novelty::Known;
use super::outbox::Backoff;
use super::render::Rendered;
use super::router::{self, ChannelName, Cooldown, Once};
use crate::clock::Clock;
use crate::config::Config;

/// Resource alerts at most this often.
const RESOURCE_ALERT_EVERY_MS: i64 = 30 * 60_000;

enum Message {
    Event(Box<NotificationEvent>),
    Run(Box<RunFinished>),
    Config(Arc<Config>),
}

/// What the scheduler holds: sends are fire-and-forget.
#[derive(Debug, Clone, Default)]
pub struct Notifier {
    tx: Option<mpsc::UnboundedSender<Message>>,
}

impl std::fmt::Debug for Message {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Message::Event(_) => "Event",
            Message::Run(_) => "Run",
            Message::Config(_) => "Config",
        })
    }
}

impl Notifier {
    /// A handle that drops everything (tests, and a daemon whose notifier
    /// thread could not start).
    pub fn disabled() -> Notifier {
        Notifier { tx: None }
    }

    fn post(&self, m: Message) {
        if let Some(tx) = &self.tx {
            let _ = tx.send(m);
        }
    }

    /// An event from anywhere in the daemon (health, config, trust, …).
    pub fn send(&self, event: NotificationEvent) {
        self.post(Message::Event(Box::new(event)));
    }

    /// A job's run was recorded.
    pub fn run_finished(&self, run: RunFinished) {
        self.post(Message::Run(Box::new(run)));
    }

    /// The config was reloaded.
    pub fn reconfigure(&self, config: Arc<Config>) {
        self.post(Message::Config(config));
    }
}

pub struct NotifierOptions {
    /// The worktree root (relative file paths, the project name).
    pub root: PathBuf,
    /// `.bgtask/state.db`, already migrated.
    pub state_db: PathBuf,
    /// Where console notifications go; `None`: the console channel is off.
    pub console: Option<ConsoleSink>,
    /// How email is sent; `None`: SMTP.
    pub send: Option<SendMail>,
    /// Told of each delivery recorded in the delivery log (the daemon's
    /// event stream); `None`: nobody.
    pub on_delivery: Option<super::db::OnDelivery>,
}

/// The notifier's thread; stop it with [`NotifierThread::stop`].
pub struct NotifierThread {
    notifier: Notifier,
    stop: CancellationToken,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl NotifierThread {
    pub fn start(config: Arc<Config>, opts: NotifierOptions) -> std::io::Result<NotifierThread> {
        let (tx, rx) = mpsc::unbounded_channel();
        let stop = CancellationToken::new();
        let token = stop.clone();
        let thread = std::thread::Builder::new()
            .name("notifier".to_owned())
            .spawn(move || {
                let rt = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(rt) => rt,
                    Err(e) => {
                        tracing::error!(error = %e, "no notifications: could not start their runtime");
                        return;
                    }
                };
                rt.block_on(run(config, opts, rx, token));
            })?;
        Ok(NotifierThread {
            notifier: Notifier { tx: Some(tx) },
            stop,
            thread: Some(thread),
        })
    }

    pub fn handle(&self) -> Notifier {
        self.notifier.clone()
    }

    /// Lets queued notifications go out for up to `grace`, then leaves.
    pub fn stop(mut self, grace: Duration) {
        self.stop.cancel();
        let Some(thread) = self.thread.take() else {
            return;
        };
        let deadline = Instant::now() + grace;
        while !thread.is_finished() {
            if Instant::now() > deadline {
                tracing::warn!("notifications still being delivered at shutdown; leaving them");
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = thread.join();
    }
}

fn project_name(root: &std::path::Path) -> String {
    root.file_name().map_or_else(
        || root.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    )
}

async fn run(
    config: Arc<Config>,
    opts: NotifierOptions,
    rx: mpsc::UnboundedReceiver<Message>,
    stop: CancellationToken,
) {
    let clock = Clock::start();
    let open = |what: &str| match Db::open(&opts.state_db) {
        Ok(db) => Some(db.telling(opts.on_delivery.clone())),
        Err(e) => {
            tracing::error!(error = %e, "{what} without the state database");
            None
        }
    };
    let worker_db = open("notifications go out");
    let mailer_db = open("no email");
    let (config_tx, config_rx) = watch::channel(config.clone());
    let poke = Arc::new(Notify::new());
    let mut worker = Worker {
        project: project_name(&opts.root),
        config,
        config_tx,
        root: opts.root.clone(),
        db: worker_db,
        console: opts.console,
        desktop: Desktop::new(),
        once: Once::default(),
        cooldown: Cooldown::new(RESOURCE_ALERT_EVERY_MS),
        poke: poke.clone(),
        clock,
    };
    let mailer = mailer_db.map(|db| Mailer {
        db,
        config: config_rx,
        poke,
        send: opts
            .send
            .unwrap_or_else(|| super::mailer::smtp(opts.root.clone())),
        backoff: Backoff::default(),
        rng: fastrand::Rng::new(),
        clock,
    });
    let mail = async {
        if let Some(m) = mailer {
            m.run(stop.clone()).await;
        }
    };
    tokio::join!(worker.run(rx, stop.clone()), mail);
}

struct Worker {
    config: Arc<Config>,
    config_tx: watch::Sender<Arc<Config>>,
    root: PathBuf,
    project: String,
    db: Option<Db>,
    console: Option<ConsoleSink>,
    desktop: Desktop,
    once: Once,
    cooldown: Cooldown,
    poke: Arc<Notify>,
    clock: Clock,
}

impl Worker {
    async fn run(&mut self, mut rx: mpsc::UnboundedReceiver<Message>, stop: CancellationToken) {
        // Retention at start, then daily.
        let mut housekeeping = tokio::time::interval(Duration::from_secs(86_400));
        loop {
            tokio::select! {
                biased;
                m = rx.recv() => match m {
                    Some(m) => self.handle(m).await,
                    None => break,
                },
                () = stop.cancelled() => {
                    while let Ok(m) = rx.try_recv() {
                        self.handle(m).await;
                    }
                    break;
                }
                _ = housekeeping.tick() => self.housekeeping(),
            }
        }
    }

    async fn handle(&mut self, m: Message) {
        match m {
            Message::Event(e) => self.deliver(*e).await,
            Message::Run(run) => {
                if let Some(e) = self.once.unavailable(&run) {
                    self.deliver(e).await;
                }
                let known = self.known(&run);
                if let Some(e) = router::run_event(&run, known.as_ref()) {
                    self.deliver(e).await;
                }
            }
            Message::Config(c) => {
                let (was, now) = (self.config.notifications.desktop, c.notifications.desktop);
                if (was.enabled, was.min_severity) != (now.enabled, now.min_severity) {
                    // The desktop section changed: look for a desktop again.
                    self.desktop = Desktop::new();
                }
                self.config = c.clone();
                let _ = self.config_tx.send(c);
            }
        }
    }

    fn known(&self, run: &RunFinished) -> Option<Known> {
        let db = self.db.as_ref()?;
        match db.known(&run.task, run.run_id) {
            Ok(known) => known,
            Err(e) => {
                tracing::warn!(task = %run.task, error = %e, "could not read earlier runs; every finding counts as new");
                None
            }
        }
    }

    fn record(&self, r: &Rendered, channel: ChannelName, outcome: Outcome, error: Option<&str>) {
        let Some(db) = &self.db else { return };
        if let Err(e) = db.record(&Delivery {
            at_ms: self.clock.now(),
            event: r.event.kind.as_str(),
            severity: r.event.level,
            task: r.event.task.as_deref(),
            run_id: r.event.run_id,
            channel: channel.as_str(),
            outcome,
            title: &r.event.title,
            error,
            outbox_id: None,
        }) {
            tracing::warn!(error = %e, "could not record a notification in the delivery log");
        }
    }

    async fn deliver(&mut self, event: NotificationEvent) {
        if !self.cooldown.allow(event.kind, self.clock.now()) {
            return;
        }
        let channels = router::channels_for(&self.config.notifications, event.level);
        tracing::debug!(event = event.kind.as_str(), level = %event.level, ?channels, "notification");
        let r = Rendered::new(event, &self.project);
        for channel in channels {
            match channel {
                ChannelName::Console => {
                    let Some(console) = &mut self.console else {
                        continue;
                    };
                    match console.emit(&r) {
                        Ok(()) => self.record(&r, channel, Outcome::Delivered, None),
                        Err(e) => self.record(&r, channel, Outcome::Failed, Some(&e.to_string())),
                    }
                }
                ChannelName::Desktop => match self.desktop.send(&r).await {
                    DesktopOutcome::Delivered => self.record(&r, channel, Outcome::Delivered, None),
                    DesktopOutcome::Failed(e) => {
                        tracing::warn!(error = %e, "desktop notification failed");
                        self.record(&r, channel, Outcome::Failed, Some(&e));
                    }
                    DesktopOutcome::Disabled(why) => {
                        if self.config.notifications.desktop.explicit {
                            tracing::warn!("desktop notifications are off: {why}");
                        } else {
                            tracing::info!("no desktop here, so no desktop notifications: {why}");
                        }
                        self.record(&r, channel, Outcome::Disabled, Some(&why));
                    }
                    DesktopOutcome::Off => {}
                },
                ChannelName::File => {
                    let log = JsonlLog::new(&self.root, &self.config.notifications.file);
                    match log.append(&r.json) {
                        Ok(()) => self.record(&r, channel, Outcome::Delivered, None),
                        Err(e) => {
                            let msg = format!("write {}: {e}", log.path().display());
                            tracing::warn!("notification log: {msg}");
                            self.record(&r, channel, Outcome::Failed, Some(&msg));
                        }
                    }
                }
                ChannelName::Email => {
                    let stored = self
                        .db
                        .as_ref()
                        .map(|db| db.digest_add(&r, self.clock.now()));
                    match stored {
                        Some(Ok(_)) => {
                            self.record(&r, channel, Outcome::Queued, None);
                            self.poke.notify_one();
                        }
                        Some(Err(e)) => {
                            let msg = format!("could not store the email: {e}");
                            tracing::error!("{msg}");
                            self.record(&r, channel, Outcome::Failed, Some(&msg));
                        }
                        None => tracing::error!(
                            "email notification dropped: the state database is not available"
                        ),
                    }
                }
            }
        }
    }

    fn housekeeping(&self) {
        let n = &self.config.notifications.file;
        let removed = JsonlLog::new(&self.root, n).sweep(std::time::SystemTime::now());
        let keep_days = i64::from(self.config.retention.metrics_days.max(1));
        let pruned = self.db.as_ref().map_or(Ok(0), |db| {
            db.prune(self.clock.now() - keep_days * 86_400_000)
        });
        tracing::debug!(removed_logs = removed, pruned = ?pruned.ok(), "notification retention");
    }
}
