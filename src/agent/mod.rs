//! The agent: one loop per project that always reads the current state. Triggers (a
//! commit seen by the watch, a poll, a webhook, a Docker event, the periodic resync, a
//! retry falling due) only wake it; triggers that arrive during a reconcile coalesce
//! into exactly one more.

mod failures;
mod lock;
mod pause;
mod status;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, RwLock};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::executor::{ApplyControl, ApplyOptions, Executor, Outcome, RetryPolicy};
use crate::ledger::Ledger;
use crate::model::LoadOptions;
use crate::plan::Desired;
use crate::runtime::{DockerEngine, Engine};
use crate::source::signature::AllowedSigners;
use crate::source::{CommitInfo, GitSource};

pub use crate::status::{AgentStatus, SharedStatus};
pub use crate::trigger::Trigger;
pub use failures::FailedTargets;
pub use lock::StateLock;
pub use pause::PauseState;

impl Trigger {
    /// May bring a new desired state (or an operator's change) that should not wait
    /// behind a wait for the fleet.
    fn supersedes(self) -> bool {
        matches!(
            self,
            Trigger::Watch | Trigger::Poll | Trigger::Webhook | Trigger::Control
        )
    }

    fn fetches(self) -> bool {
        matches!(
            self,
            Trigger::Start | Trigger::Watch | Trigger::Poll | Trigger::Webhook | Trigger::Resync
        )
    }
}

/// The waits after the engine (or the coordination store) fails: 1 s doubling to 30 s.
const ENGINE_BACKOFF: crate::retry::Backoff =
    crate::retry::Backoff::new(Duration::from_secs(1), Duration::from_secs(30));

/// Everything the agent needs to run.
pub struct AgentConfig {
    /// The repository followed.
    pub source: GitSource,
    /// The only project this agent manages (`--project`); `None` for whatever the
    /// commit names.
    pub project: Option<String>,
    /// The state dir: clone, ledger, lock, pause state.
    pub state_dir: PathBuf,
    /// The HTTP listener (webhook, health, status).
    pub listen: SocketAddr,
    /// Poll interval for remotes (±10 % jitter).
    pub interval: Duration,
    /// Full resync period.
    pub resync: Duration,
    /// The webhook's shared secret.
    pub webhook_secret: Option<Vec<u8>>,
    /// When set, only commits signed by these keys are applied.
    pub allowed_signers: Option<AllowedSigners>,
    /// What the host allows the desired state to mount.
    pub load: LoadOptions,
    /// How apply behaves.
    pub apply: ApplyOptions,
    /// Backoff and attempts per failed target.
    pub retry: RetryPolicy,
    /// Where deploy events go.
    pub notifier: crate::notify::Notifier,
    /// This host: placement, labels and notifications.
    pub host: crate::plan::Host,
    /// The ledger: embedded, or the fleet's shared store.
    pub ledger: Arc<dyn Ledger>,
}

/// The agent's failures that stop it.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    /// Another agent holds the state dir.
    #[error("{0}")]
    Locked(String),
    /// The listener could not bind.
    #[error("listen on {addr}: {error}")]
    Listen {
        /// The address.
        addr: SocketAddr,
        /// Why.
        error: std::io::Error,
    },
    /// The control socket could not be made.
    #[error("control socket {}: {error}", path.display())]
    ControlSocket {
        /// Where.
        path: PathBuf,
        /// Why.
        error: std::io::Error,
    },
    /// Docker or the ledger could not be opened.
    #[error("{0}")]
    Setup(String),
}

/// The state the loop keeps between reconciles.
struct Loop {
    config: AgentConfig,
    metrics: Arc<crate::api::metrics::Metrics>,
    executor: Executor,
    status: SharedStatus,
    /// The last commit that loaded and validated, and its desired state.
    last_good: Option<(CommitInfo, Desired)>,
    /// The head last looked at, valid or not.
    last_seen: Option<String>,
    failures: FailedTargets,
    triggers: mpsc::UnboundedSender<Trigger>,
    deployed: crate::notify::DeployedOnce,
    /// The wait before retrying after the engine failed; doubles up to 30 s.
    engine_backoff: crate::retry::Delays,
    /// The same for a coordination store that does not answer.
    coordination_backoff: crate::retry::Delays,
}

/// Runs the agent until `shutdown` is cancelled (first signal). The step in flight
/// finishes; no service is left below its healthy count.
pub async fn run(config: AgentConfig, shutdown: CancellationToken) -> Result<(), AgentError> {
    // An `apply` that holds the state dir is awaited; another agent is not.
    let dir = config.state_dir.clone();
    let _lock = StateLock::acquire_async(dir, "agent", Duration::from_secs(600))
        .await
        .map_err(AgentError::Locked)?;
    let engine = DockerEngine::connect()
        .await
        .map_err(|e| AgentError::Setup(e.to_string()))?;
    let ledger = config.ledger.clone();
    if ledger.is_shared() {
        tracing::info!(host = %config.host.name, coordination = %ledger.describe(), "fleet coordination through the shared ledger");
    } else {
        tracing::warn!(host = %config.host.name, "coordination is local: migrations run once per host, not once per fleet; for several hosts use --coordination postgres://… or pin migrations with run_on");
    }
    let engine: Arc<dyn Engine> = Arc::new(engine.clone());
    let (tx, mut rx) = mpsc::unbounded_channel::<Trigger>();
    let status: SharedStatus = Arc::new(RwLock::new(AgentStatus::new(&config)));
    let metrics = Arc::new(crate::api::metrics::Metrics::new(Some(&config.host.name)));

    // The HTTP listener (webhook, health, status, control), and the same routes on
    // the control socket, where a state change needs no signature.
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|error| AgentError::Listen {
            addr: config.listen,
            error,
        })?;
    let socket_path = crate::api::control_socket::path_in(&config.state_dir);
    let socket =
        crate::api::control_socket::ControlSocket::bind(&socket_path).map_err(|error| {
            AgentError::ControlSocket {
                path: socket_path.clone(),
                error,
            }
        })?;
    let api = crate::api::ApiState {
        status: status.clone(),
        triggers: tx.clone(),
        webhook_secret: config.webhook_secret.clone().map(Arc::new),
        metrics: metrics.clone(),
        transport: crate::api::Transport::Tcp,
        control_socket: socket_path.clone(),
    };
    let control = crate::api::router(crate::api::ApiState {
        transport: crate::api::Transport::ControlSocket,
        ..api.clone()
    });
    let app = crate::api::router(api);
    let http_shutdown = shutdown.clone();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app)
            .with_graceful_shutdown(async move { http_shutdown.cancelled().await })
            .await;
    });
    let socket_shutdown = shutdown.clone();
    tokio::spawn(async move {
        let _ = axum::serve(socket, control)
            .with_graceful_shutdown(async move { socket_shutdown.cancelled().await })
            .await;
    });
    tracing::info!(
        repo = %config.source.display_url(),
        branch = %config.source.branch,
        listen = %config.listen,
        control_socket = %socket_path.display(),
        webhook = config.webhook_secret.is_some(),
        "agent started"
    );

    // The watch of a local repository, or the poll of a remote.
    let _watcher = match config.source.watch_dir() {
        Some(dir) => {
            let (wtx, mut wrx) = mpsc::unbounded_channel();
            let watcher = crate::source::watch::watch(&dir, wtx)
                .map_err(|e| AgentError::Setup(format!("watch {}: {e}", dir.display())))?;
            let t = tx.clone();
            tokio::spawn(async move {
                while wrx.recv().await.is_some() {
                    let _ = t.send(Trigger::Watch);
                }
            });
            Some(watcher)
        }
        None => None,
    };
    if config.source.watch_dir().is_none() {
        spawn_every(
            tx.clone(),
            Trigger::Poll,
            config.interval,
            true,
            shutdown.clone(),
        );
    }
    spawn_every(
        tx.clone(),
        Trigger::Resync,
        config.resync,
        false,
        shutdown.clone(),
    );
    spawn_docker_events(tx.clone(), shutdown.clone());

    let executor = Executor::new(engine.clone(), ledger, config.apply.clone());
    let mut state = Loop {
        config,
        metrics,
        executor,
        status,
        last_good: None,
        last_seen: None,
        failures: FailedTargets::default(),
        triggers: tx.clone(),
        deployed: crate::notify::DeployedOnce::new(),
        engine_backoff: ENGINE_BACKOFF.delays(),
        coordination_backoff: ENGINE_BACKOFF.delays(),
    };
    let _ = tx.send(Trigger::Start);
    loop {
        let first = tokio::select! {
            t = rx.recv() => match t { Some(t) => t, None => break },
            _ = shutdown.cancelled() => break,
        };
        // Everything that arrived meanwhile folds into this one reconcile.
        let mut fetch = first.fetches();
        let mut why = vec![first];
        while let Ok(t) = rx.try_recv() {
            fetch |= t.fetches();
            why.push(t);
        }
        for t in &why {
            state
                .metrics
                .reconcile_triggers
                .get_or_create(&crate::api::metrics::TriggerLabels {
                    trigger: t.as_str().to_string(),
                })
                .inc();
        }
        tracing::debug!(triggers = ?why, "reconcile");
        // Triggers that arrive while the reconcile runs wait for the next one; those
        // that may bring a new desired state end a wait for the fleet at once.
        let supersede = CancellationToken::new();
        let mut later = Vec::new();
        {
            let work = state.reconcile(fetch, &shutdown, &supersede);
            tokio::pin!(work);
            loop {
                tokio::select! {
                    _ = &mut work => break,
                    Some(t) = rx.recv() => {
                        if t.supersedes() {
                            supersede.cancel();
                        }
                        later.push(t);
                    }
                }
            }
        }
        for t in later {
            let _ = tx.send(t);
        }
        if shutdown.is_cancelled() {
            break;
        }
    }
    // Events already queued get a moment to go out; a dead endpoint does not hold the stop.
    state.config.notifier.flush(Duration::from_secs(5)).await;
    // Only this agent's own socket: the state-dir lock is still held.
    let _ = std::fs::remove_file(&socket_path);
    tracing::info!("agent stopped");
    Ok(())
}

/// Sends `trigger` every `period` (with ±10 % jitter when asked).
fn spawn_every(
    tx: mpsc::UnboundedSender<Trigger>,
    trigger: Trigger,
    period: Duration,
    jitter: bool,
    stop: CancellationToken,
) {
    let spread = if jitter { crate::retry::JITTER } else { 0.0 };
    let mut waits = crate::retry::Backoff::every(period, spread).delays();
    tokio::spawn(async move {
        loop {
            let wait = waits.next_delay();
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = stop.cancelled() => return,
            }
            if tx.send(trigger).is_err() {
                return;
            }
        }
    });
}

/// Wakes the loop on die, destroy and health changes of the project's containers.
/// The stream is reopened with backoff when the engine goes away.
fn spawn_docker_events(tx: mpsc::UnboundedSender<Trigger>, stop: CancellationToken) {
    tokio::spawn(async move {
        let mut delays =
            crate::retry::Backoff::new(Duration::from_millis(500), Duration::from_secs(30))
                .delays();
        loop {
            let docker = match DockerEngine::connect().await {
                Ok(d) => d,
                Err(e) => {
                    tracing::warn!(error = %e, "docker event stream unavailable; retrying");
                    tokio::select! { _ = tokio::time::sleep(delays.next_delay()) => {}, _ = stop.cancelled() => return }
                    continue;
                }
            };
            delays.reset();
            let mut stream = std::pin::pin!(docker.events_of_managed());
            loop {
                tokio::select! {
                    item = futures_util::StreamExt::next(&mut stream) => match item {
                        Some(Ok(())) => { let _ = tx.send(Trigger::DockerEvent); }
                        Some(Err(e)) => { tracing::warn!(error = %e, "docker event stream broke; reopening"); break; }
                        None => break,
                    },
                    _ = stop.cancelled() => return,
                }
            }
            tokio::select! { _ = tokio::time::sleep(delays.next_delay()) => {}, _ = stop.cancelled() => return }
        }
    });
}

/// How soon a service waiting for the fleet is tried again.
const FLEET_RETRY: Duration = Duration::from_secs(2);

impl Loop {
    fn retry_in(&self, wait: Duration) {
        let tx = self.triggers.clone();
        tokio::spawn(async move {
            tokio::time::sleep(wait).await;
            let _ = tx.send(Trigger::Retry);
        });
    }

    /// With a shared ledger: checks that it answers. When it does not, the host is
    /// degraded: what runs keeps running, nothing changes (no migration could be
    /// recorded, no lease taken), and the check is retried with backoff.
    async fn coordination_ok(&mut self, started: Instant) -> bool {
        let ledger = self.config.ledger.clone();
        if !ledger.is_shared() {
            return true;
        }
        match ledger.check().await {
            Ok(()) => {
                self.coordination_backoff.reset();
                self.metrics.coordination_up.set(1);
                // The migrations under way are read after the apply, for status.
                if self.status.write().await.degraded.take().is_some() {
                    tracing::info!(coordination = %ledger.describe(), "coordination store answers again; converging");
                }
                true
            }
            Err(e) => {
                let wait = self.coordination_backoff.next_delay();
                self.metrics.coordination_up.set(0);
                tracing::warn!(error = %e, retry_in_ms = wait.as_millis() as u64, "degraded: the coordination store does not answer; what runs keeps running, nothing changes until it does");
                self.retry_in(wait);
                let mut st = self.status.write().await;
                st.degraded = Some(crate::urls::redact_urls_in(&format!(
                    "the coordination store does not answer ({e}); what runs keeps running, nothing changes until it does"
                )));
                st.finish_reconcile(started.elapsed(), None);
                false
            }
        }
    }

    async fn reconcile(
        &mut self,
        fetch: bool,
        shutdown: &CancellationToken,
        supersede: &CancellationToken,
    ) {
        let started = Instant::now();
        if fetch {
            self.refresh_desired().await;
        }
        let Some((commit, desired)) = self.last_good.clone() else {
            self.status
                .write()
                .await
                .finish_reconcile(started.elapsed(), None);
            return;
        };
        if !self.coordination_ok(started).await {
            return;
        }
        let pause = PauseState::load(&self.config.state_dir);
        let mut exclude: BTreeMap<String, String> = BTreeMap::new();
        for name in desired.services.keys() {
            if pause.is_paused(name) {
                exclude.insert(name.clone(), "paused (berth resume to go on)".into());
            }
        }
        self.failures.forget_changed(&desired);
        for (name, reason) in self.failures.held(&desired, Instant::now()) {
            exclude.entry(name).or_insert(reason);
        }
        let control = ApplyControl {
            exclude,
            cancel: shutdown.clone(),
            supersede: supersede.clone(),
        };
        self.executor.set_commit(Some(commit.sha.clone()));
        // Every event of this reconcile carries the commit.
        let span = tracing::info_span!("reconcile", commit = %commit.short());
        let result =
            tracing::Instrument::instrument(self.executor.apply_with(&desired, &control), span)
                .await;
        match result {
            Ok(report) => {
                let mut waiting = false;
                for s in &report.services {
                    match &s.outcome {
                        Outcome::Failed { error, .. } => {
                            let hash = desired
                                .services
                                .get(&s.service)
                                .map(|d| d.hash.clone())
                                .unwrap_or_default();
                            if let Some(wait) = self.failures.record_failure(
                                &s.service,
                                &hash,
                                &self.config.retry,
                                Instant::now(),
                            ) {
                                tracing::warn!(service = %s.service, commit = %commit.short(), error = %error, retry_in_ms = wait.as_millis() as u64, "service failed; backing off");
                                let tx = self.triggers.clone();
                                tokio::spawn(async move {
                                    tokio::time::sleep(wait).await;
                                    let _ = tx.send(Trigger::Retry);
                                });
                            } else {
                                tracing::error!(service = %s.service, commit = %commit.short(), error = %error, "service failed for good; it is retried when the desired state changes");
                            }
                        }
                        Outcome::Converged | Outcome::InSync => self.failures.clear(&s.service),
                        Outcome::Waiting { reason } => {
                            tracing::info!(service = %s.service, reason = %reason, "waiting for the fleet; trying again shortly");
                            waiting = true;
                        }
                        _ => {}
                    }
                }
                if waiting {
                    self.retry_in(FLEET_RETRY);
                }
                let started_migrations = if self.config.ledger.is_shared() {
                    self.config.ledger.started_migrations(None).await.ok()
                } else {
                    None
                };
                self.engine_backoff.reset();
                self.notify_report(&commit, &desired, &report);
                self.metrics.record(
                    &commit.sha,
                    &report,
                    started.elapsed().as_secs_f64(),
                    self.failures.list().len(),
                );
                let mut st = self.status.write().await;
                if let Some(m) = started_migrations {
                    st.started_migrations = m;
                }
                st.apply_report(&commit, &desired, &report, &self.failures, &pause);
                st.finish_reconcile(started.elapsed(), None);
                tracing::info!(commit = %commit.short(), converged = report.converged(), duration_ms = started.elapsed().as_millis() as u64, action = "reconcile", "reconcile finished");
            }
            Err(e) => {
                self.metrics
                    .reconciles
                    .get_or_create(&crate::api::metrics::OutcomeLabels {
                        outcome: "error".into(),
                    })
                    .inc();
                // The engine (or the state dir) failed: try again soon, backing off.
                let wait = self.engine_backoff.next_delay();
                tracing::error!(error = %e, retry_in_ms = wait.as_millis() as u64, "reconcile failed");
                let tx = self.triggers.clone();
                tokio::spawn(async move {
                    tokio::time::sleep(wait).await;
                    let _ = tx.send(Trigger::Retry);
                });
                self.status
                    .write()
                    .await
                    .finish_reconcile(started.elapsed(), Some(e.to_string()));
            }
        }
    }

    fn event(
        &self,
        kind: crate::notify::EventKind,
        project: &str,
        service: Option<&str>,
        commit: Option<&str>,
        image: Option<String>,
        message: String,
    ) -> crate::notify::Event {
        crate::notify::Event {
            kind,
            project: project.to_string(),
            host: self.config.host.name.clone(),
            service: service.map(str::to_string),
            commit: commit.map(str::to_string),
            image,
            message,
            time: crate::ledger::now_rfc3339(),
        }
    }

    /// Deployed (once per commit and service), failed and rolled back.
    fn notify_report(
        &mut self,
        commit: &CommitInfo,
        desired: &Desired,
        report: &crate::executor::ApplyReport,
    ) {
        use crate::notify::EventKind;
        if !self.config.notifier.is_enabled() {
            return;
        }
        for s in &report.services {
            let image = desired
                .services
                .get(&s.service)
                .map(|d| d.spec.image.full.clone());
            let (kind, message) = match &s.outcome {
                Outcome::Converged if s.action != crate::executor::Action::Remove => {
                    if !self.deployed.first_time(&commit.sha, &s.service) {
                        continue;
                    }
                    (EventKind::Deployed, s.reasons.join("; "))
                }
                Outcome::Failed {
                    error,
                    serving,
                    rolled_back: true,
                } => (EventKind::RolledBack, format!("{error}; {serving}")),
                Outcome::Failed { error, serving, .. } => {
                    (EventKind::Failed, format!("{error}; {serving}"))
                }
                _ => continue,
            };
            let e = self.event(
                kind,
                &report.project,
                Some(&s.service),
                Some(&commit.sha),
                image,
                message,
            );
            self.config.notifier.send(e);
        }
    }

    /// Fetches the branch; a new head is verified and validated, and becomes the last
    /// good commit only when it passes.
    async fn refresh_desired(&mut self) {
        let source = self.config.source.clone();
        let fetched = tokio::task::spawn_blocking(move || source.fetch()).await;
        let oid = match fetched {
            Ok(Ok(oid)) => oid,
            Ok(Err(e)) => {
                self.metrics.git_fetch_errors.inc();
                tracing::warn!(error = %e, "fetch failed; keeping the last good commit");
                self.status.write().await.fetch_failed(e.to_string());
                return;
            }
            Err(e) => {
                tracing::error!(error = %e, "fetch task failed");
                return;
            }
        };
        self.status.write().await.fetch_ok();
        let sha = oid.to_string();
        if self.last_seen.as_deref() == Some(sha.as_str()) {
            return;
        }
        self.last_seen = Some(sha.clone());
        let source = self.config.source.clone();
        let load = self.config.load.clone();
        let signers = self.config.allowed_signers.clone();
        let signed_head = signed_head_file(&self.config.state_dir);
        let outcome = tokio::task::spawn_blocking(move || -> Result<(CommitInfo, crate::model::Loaded), String> {
            let info = source.commit_info(oid).map_err(|e| e.to_string())?;
            if let Some(allowed) = &signers {
                let check = source.verify(oid, allowed).map_err(|e| e.to_string())?;
                if !check.is_valid() {
                    return Err(format!("commit {} refused: {check}; only commits signed by an allowed key are applied", info.short()));
                }
                // Signed history moves forward only: an older signed commit pushed back
                // (a downgrade by force-push) is refused.
                let last = std::fs::read_to_string(&signed_head)
                    .ok()
                    .and_then(|s| git2::Oid::from_str(s.trim()).ok());
                if let Some(last) = last {
                    if !source.descends_from(oid, last).unwrap_or(false) {
                        return Err(format!(
                            "commit {} refused: it does not descend from {}, the last signed commit applied (a rewind or force-push); push a new signed commit on top of it (`git revert` makes one)",
                            info.short(),
                            &last.to_string()[..12]
                        ));
                    }
                }
            }
            let loaded = source.load(oid, &load).map_err(|e| e.to_string())?;
            Ok((info, loaded))
        })
        .await;
        let (info, loaded) = match outcome {
            Ok(Ok(x)) => x,
            Ok(Err(e)) => {
                tracing::error!(commit = %sha, error = %e, "commit not applied; keeping the last good commit");
                self.refuse_commit(&sha, e).await;
                return;
            }
            Err(e) => {
                // A load that panicked is a refused commit like any other.
                let message = format!("commit {sha} could not be loaded: {e}");
                tracing::error!(commit = %sha, error = %e, "commit not applied; keeping the last good commit");
                self.refuse_commit(&sha, message).await;
                return;
            }
        };
        let pin = self.pinned_project();
        match loaded.spec {
            Some(spec) if pin.as_ref().is_some_and(|(p, _)| *p != spec.project) => {
                let (pinned, by_flag) = pin.expect("checked");
                let message = if by_flag {
                    format!(
                        "commit {} names project `{}`; this agent manages only `{pinned}` (--project)",
                        info.short(),
                        spec.project,
                    )
                } else {
                    format!(
                        "commit {} names project `{}`; this state dir belongs to `{pinned}` (recorded in {} at its first commit); to move it to `{}`, start the agent with `--project {}`",
                        info.short(),
                        spec.project,
                        project_file(&self.config.state_dir).display(),
                        spec.project,
                        spec.project,
                    )
                };
                tracing::error!(commit = %info.sha, "{message}; keeping the last good commit");
                self.refuse_commit(&info.sha, message).await;
            }
            Some(spec) => {
                if recorded_project(&self.config.state_dir).as_ref() != Some(&spec.project) {
                    let file = project_file(&self.config.state_dir);
                    if let Err(e) = std::fs::write(&file, &spec.project) {
                        tracing::warn!(file = %file.display(), error = %e, "project not recorded; a commit naming another project is refused only with --project");
                    }
                }
                for w in loaded.diagnostics.warnings() {
                    tracing::warn!(commit = %info.short(), "{}", w.headline());
                }
                tracing::info!(commit = %info.short(), summary = %info.summary, action = "new-commit", "desired state loaded");
                // Env files are read here: off the runtime's threads.
                let host = self.config.host.clone();
                let desired = match tokio::task::spawn_blocking(move || {
                    Desired::resolve_for(spec, &host)
                })
                .await
                {
                    Ok(d) => d,
                    Err(e) => {
                        let message = format!("commit {} could not be resolved: {e}", info.short());
                        tracing::error!(commit = %info.sha, "{message}; keeping the last good commit");
                        self.refuse_commit(&info.sha, message).await;
                        return;
                    }
                };
                if self.config.allowed_signers.is_some() {
                    let file = signed_head_file(&self.config.state_dir);
                    if let Err(e) = std::fs::write(&file, &info.sha) {
                        tracing::warn!(file = %file.display(), error = %e, "last signed commit not recorded; a rewind past it is refused only while the agent runs");
                    }
                }
                self.status.write().await.valid_commit(&info);
                self.failures.clear_all();
                self.last_good = Some((info, desired));
            }
            None => {
                let errors: Vec<String> =
                    loaded.diagnostics.errors().map(|d| d.headline()).collect();
                let message = format!("commit {} is invalid: {}", info.short(), errors.join("; "));
                tracing::error!(commit = %info.sha, errors = errors.len(), "{message}; keeping the last good commit");
                self.refuse_commit(&info.sha, message).await;
            }
        }
    }

    /// The only project this agent may manage, and whether `--project` said so: the
    /// flag, else the project its state dir recorded at its first accepted commit (so a
    /// commit cannot make the agent manage, and prune, another project on the host).
    fn pinned_project(&self) -> Option<(String, bool)> {
        if let Some(p) = &self.config.project {
            return Some((p.clone(), true));
        }
        recorded_project(&self.config.state_dir).map(|p| (p, false))
    }

    /// A head that cannot be applied (unreadable, unsigned, invalid): counted,
    /// notified and shown in status; the last good commit stays.
    async fn refuse_commit(&mut self, sha: &str, message: String) {
        self.metrics.invalid_commits.inc();
        let project = self
            .last_good
            .as_ref()
            .map(|(_, d)| d.spec.project.clone())
            .unwrap_or_default();
        let ev = self.event(
            crate::notify::EventKind::InvalidCommit,
            &project,
            None,
            Some(sha),
            None,
            message.clone(),
        );
        self.config.notifier.send(ev);
        self.status.write().await.invalid_commit(sha, message);
    }
}

/// Where the agent records the last signed commit it accepted, so that a rewind is
/// refused across restarts too.
/// Where the agent records the project its state dir belongs to.
fn project_file(state_dir: &std::path::Path) -> std::path::PathBuf {
    state_dir.join("project")
}

fn recorded_project(state_dir: &std::path::Path) -> Option<String> {
    std::fs::read_to_string(project_file(state_dir))
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
}

fn signed_head_file(state_dir: &std::path::Path) -> std::path::PathBuf {
    state_dir.join("signed-head")
}
