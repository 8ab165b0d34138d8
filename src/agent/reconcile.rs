//! The loop: triggers fold into one reconcile at a time; each reconcile reads the
//! current state, applies the last good commit, and turns the report into backoff,
//! status, metrics and notifications.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::{AgentConfig, FailedTargets, PauseState, SharedStatus, Trigger};
use crate::executor::{ApplyControl, ApplyReport, Executor, Outcome};
use crate::plan::Desired;
use crate::runtime::Engine;
use crate::source::CommitInfo;

/// The waits after the engine (or the coordination store) fails: 1 s doubling to 30 s.
pub(super) const ENGINE_BACKOFF: crate::retry::Backoff =
    crate::retry::Backoff::new(Duration::from_secs(1), Duration::from_secs(30));
/// How soon a service waiting for the fleet is tried again.
const FLEET_RETRY: Duration = Duration::from_secs(2);

/// Why a reconcile could not use the engine (or the state dir), as its message.
struct EngineGone(String);

/// The state the loop keeps between reconciles.
pub(super) struct Loop {
    pub(super) config: AgentConfig,
    pub(super) metrics: Arc<crate::api::metrics::Metrics>,
    pub(super) executor: Executor,
    pub(super) status: SharedStatus,
    /// The last commit that loaded and validated, and its desired state.
    pub(super) last_good: Option<(CommitInfo, Desired)>,
    /// The head last looked at, valid or not.
    pub(super) last_seen: Option<String>,
    /// Commits refused since the host's inputs were last read: a fall-back does not
    /// examine them again.
    pub(super) refused: std::collections::HashSet<git2::Oid>,
    pub(super) failures: FailedTargets,
    /// The engine itself (the executor's is bounded): asked whether it answers after a
    /// failure.
    engine: Arc<dyn Engine>,
    pub(super) triggers: mpsc::UnboundedSender<Trigger>,
    deployed: crate::notify::DeployedOnce,
    /// The watch of the project's env directory, once its project is known.
    pub(super) env_watch: Option<super::env_watch::EnvWatch>,
    /// Read the env files again in the next reconcile (the env directory changed, or
    /// the periodic resync is due).
    reread_env: bool,
    /// The wait before retrying after the engine failed; doubles up to 30 s.
    engine_backoff: crate::retry::Delays,
    /// The same for a coordination store that does not answer.
    coordination_backoff: crate::retry::Delays,
}

impl Loop {
    /// The loop over `engine`; `triggers` is how it wakes itself (retries).
    pub(super) fn new(
        config: AgentConfig,
        engine: Arc<dyn Engine>,
        metrics: Arc<crate::api::metrics::Metrics>,
        status: SharedStatus,
        triggers: mpsc::UnboundedSender<Trigger>,
    ) -> Self {
        let executor = Executor::new(engine.clone(), config.ledger.clone(), config.apply.clone());
        Self {
            config,
            metrics,
            executor,
            status,
            last_good: None,
            last_seen: None,
            refused: Default::default(),
            failures: FailedTargets::default(),
            engine,
            triggers,
            deployed: crate::notify::DeployedOnce::new(),
            env_watch: None,
            reread_env: false,
            engine_backoff: ENGINE_BACKOFF.delays(),
            coordination_backoff: ENGINE_BACKOFF.delays(),
        }
    }

    /// Reconciles once per wake-up until `shutdown`: every trigger that arrived
    /// meanwhile folds into the one reconcile; those that arrive during it wait for the
    /// next one (and those that may bring a new desired state end a wait for the fleet
    /// at once). A shutdown lets the reconcile in flight finish.
    pub(super) async fn drive(
        &mut self,
        rx: &mut mpsc::UnboundedReceiver<Trigger>,
        shutdown: &CancellationToken,
    ) {
        loop {
            let first = tokio::select! {
                t = rx.recv() => match t { Some(t) => t, None => break },
                _ = shutdown.cancelled() => break,
            };
            let mut fetch = first.fetches();
            let mut why = vec![first];
            while let Ok(t) = rx.try_recv() {
                fetch |= t.fetches();
                why.push(t);
            }
            for t in &why {
                self.metrics
                    .reconcile_triggers
                    .get_or_create(&crate::api::metrics::TriggerLabels {
                        trigger: t.as_str().to_string(),
                    })
                    .inc();
            }
            self.reread_env |= why
                .iter()
                .any(|t| matches!(t, Trigger::EnvDir | Trigger::Resync));
            tracing::debug!(triggers = ?why, "reconcile");
            let supersede = CancellationToken::new();
            let mut later = Vec::new();
            {
                let work = self.reconcile(fetch, shutdown, &supersede);
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
                let _ = self.triggers.send(t);
            }
            if shutdown.is_cancelled() {
                break;
            }
        }
    }

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

    /// What the agent holds back this time: paused services, and failed targets whose
    /// next attempt is not due (or that gave up).
    fn held_back(&mut self, desired: &Desired, pause: &PauseState) -> BTreeMap<String, String> {
        let mut exclude: BTreeMap<String, String> = BTreeMap::new();
        for name in desired.services.keys() {
            if pause.is_paused(name) {
                exclude.insert(name.clone(), "paused (berth resume to go on)".into());
            }
        }
        self.failures.forget_changed(desired);
        for (name, reason) in self.failures.held(desired, Instant::now()) {
            exclude.entry(name).or_insert(reason);
        }
        exclude
    }

    pub(super) async fn reconcile(
        &mut self,
        fetch: bool,
        shutdown: &CancellationToken,
        supersede: &CancellationToken,
    ) {
        let started = Instant::now();
        if fetch {
            self.refresh_desired().await;
        }
        if std::mem::take(&mut self.reread_env) {
            self.reread_env().await;
        }
        self.watch_env_dir();
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
        // An engine reported away that answers again is reported back before the apply
        // (which may take a while: it converges what changed meanwhile).
        if self.status.read().await.engine_down.is_some() && self.engine.ping().await.is_ok() {
            self.engine_answers().await;
        }
        let pause = PauseState::load(&self.config.state_dir);
        let control = ApplyControl {
            exclude: self.held_back(&desired, &pause),
            cancel: shutdown.clone(),
            supersede: supersede.clone(),
        };
        self.executor.set_commit(Some(commit.sha.clone()));
        self.config.commit_status.starting(&commit.sha);
        // Every event of this reconcile carries the commit.
        let span = tracing::info_span!("reconcile", commit = %commit.short());
        let result =
            tracing::Instrument::instrument(self.executor.apply_with(&desired, &control), span)
                .await;
        // A service that failed because the engine went away (dockerd restarting) did
        // not fail its release: the attempt is not counted, and the whole reconcile is
        // tried again once the engine answers.
        let result = match result {
            Ok(report) if report.services.iter().any(|s| s.outcome.is_failed()) => {
                match self.engine.ping().await {
                    Ok(()) => Ok(report),
                    Err(e) => Err(EngineGone(format!(
                        "the Docker engine went away during the apply: {e}"
                    ))),
                }
            }
            Ok(report) => Ok(report),
            Err(e) => Err(EngineGone(e.to_string())),
        };
        match result {
            Ok(report) => {
                self.engine_answers().await;
                self.after_report(&commit, &desired, &report);
                let started_migrations = if self.config.ledger.is_shared() {
                    self.config.ledger.started_migrations(None).await.ok()
                } else {
                    None
                };
                self.engine_backoff.reset();
                self.notify_report(&commit, &desired, &report);
                self.report_commit_status(&commit, &report);
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
            Err(EngineGone(e)) => {
                match self.engine.ping().await {
                    Err(down) => self.engine_away(&down.to_string()).await,
                    Ok(()) => self.engine_answers().await,
                }
                self.metrics
                    .reconciles
                    .get_or_create(&crate::api::metrics::OutcomeLabels {
                        outcome: "error".into(),
                    })
                    .inc();
                // The engine (or the state dir) failed: try again soon, backing off.
                let wait = self.engine_backoff.next_delay();
                tracing::error!(error = %e, retry_in_ms = wait.as_millis() as u64, "reconcile failed");
                self.retry_in(wait);
                self.config
                    .commit_status
                    .failed(&commit.sha, &e.to_string());
                self.status
                    .write()
                    .await
                    .finish_reconcile(started.elapsed(), Some(e.to_string()));
            }
        }
    }

    /// The engine answered a whole apply: it is up (again).
    async fn engine_answers(&mut self) {
        self.metrics.engine_up.set(1);
        if self.status.write().await.engine_down.take().is_some() {
            tracing::info!(
                action = "engine-back",
                "the Docker engine answers again; converging"
            );
        }
    }

    /// The engine does not answer: reported (status, `/healthz`, metric) until it does.
    async fn engine_away(&mut self, why: &str) {
        self.metrics.engine_up.set(0);
        let mut st = self.status.write().await;
        if st.engine_down.is_none() {
            tracing::warn!(action = "engine-down", error = %why, "the Docker engine does not answer; nothing changes until it does");
        }
        st.engine_down = Some(why.to_string());
    }

    /// Failed services back off (or give up until the desired state changes); converged
    /// ones are forgotten; a service waiting for the fleet is looked at again shortly.
    fn after_report(&mut self, commit: &CommitInfo, desired: &Desired, report: &ApplyReport) {
        let mut waiting = false;
        for s in &report.services {
            match &s.outcome {
                Outcome::Failed { error, .. } => {
                    let hash = desired
                        .services
                        .get(&s.service)
                        .map(|d| d.hash.clone())
                        .unwrap_or_default();
                    let counted = !s.registry_unreachable;
                    match self.failures.record_failure(
                        &s.service,
                        &hash,
                        &self.config.retry,
                        Instant::now(),
                        counted,
                    ) {
                        Some(wait) if counted => {
                            tracing::warn!(service = %s.service, commit = %commit.short(), error = %error, retry_in_ms = wait.as_millis() as u64, "service failed; backing off");
                            self.retry_in(wait);
                        }
                        Some(wait) => {
                            tracing::warn!(service = %s.service, commit = %commit.short(), error = %error, retry_in_ms = wait.as_millis() as u64, "the registry cannot be reached; backing off, not counted against the release");
                            self.retry_in(wait);
                        }
                        None => {
                            tracing::error!(service = %s.service, commit = %commit.short(), error = %error, "service failed for good; it is retried when the desired state changes");
                        }
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
    }

    /// The commit's status on the git host: `success` once every service is in sync,
    /// `failure` with the first failed service's reason; a service held back, blocked
    /// or waiting for the fleet leaves it as it was.
    fn report_commit_status(&self, commit: &CommitInfo, report: &ApplyReport) {
        let failed = report.services.iter().find_map(|s| match &s.outcome {
            Outcome::Failed { error, .. } => Some(format!("{}: {error}", s.service)),
            _ => None,
        });
        if let Some(reason) = failed {
            self.config.commit_status.failed(&commit.sha, &reason);
        } else if report.services.iter().all(|s| {
            matches!(
                s.outcome,
                Outcome::InSync | Outcome::Converged | Outcome::Skipped
            )
        }) {
            self.config.commit_status.converged(&commit.sha);
        }
    }

    pub(super) fn event(
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
            ..Default::default()
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
            let e = crate::notify::Event {
                images_before: report
                    .before
                    .get(&s.service)
                    .map(|o| o.images.keys().cloned().collect())
                    .unwrap_or_default(),
                commit_summary: Some(commit.summary.clone()),
                commit_author: Some(commit.author.clone()),
                ..self.event(
                    kind,
                    &report.project,
                    Some(&s.service),
                    Some(&commit.sha),
                    image,
                    message,
                )
            };
            self.config.notifier.send(e);
        }
    }
}
