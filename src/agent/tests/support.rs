//! A loop over the memory engine, with its desired state handed in (no repository).

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, RwLock};
use tokio_util::sync::CancellationToken;

use super::super::reconcile::Loop;
use super::super::{AgentConfig, AgentStatus, SharedStatus, Trigger};
use crate::api::metrics::{Metrics, OutcomeLabels, TriggerLabels};
use crate::executor::tests::support::{options, MemoryLedger};
use crate::executor::RetryPolicy;
use crate::ledger::Ledger;
use crate::plan::Desired;
use crate::runtime::memory::MemoryEngine;
use crate::source::{CommitInfo, GitAuth, GitSource};

/// Backoff in tests: 10 s doubling, 3 attempts, no jitter.
pub(super) fn retry() -> RetryPolicy {
    RetryPolicy {
        initial: Duration::from_secs(10),
        max: Duration::from_secs(300),
        max_attempts: 3,
        jitter: 0.0,
    }
}

/// The configuration of agent `h1` in `dir`, whose repository does not exist (the
/// desired state is handed in).
pub(super) fn config(dir: &std::path::Path, ledger: Arc<dyn Ledger>) -> AgentConfig {
    let mut apply = options(dir);
    apply.host = Some("h1".into());
    AgentConfig {
        source: GitSource::new(
            &dir.join("no-repository").display().to_string(),
            "main",
            "berth.yaml",
            dir,
            GitAuth::default(),
        ),
        project: None,
        state_dir: dir.to_path_buf(),
        listen: ([127, 0, 0, 1], 0).into(),
        interval: Duration::from_secs(3600),
        resync: Duration::from_secs(3600),
        webhook_secret: None,
        allowed_signers: None,
        load: Default::default(),
        apply,
        retry: retry(),
        notifier: crate::notify::Notifier::disabled(),
        commit_status: crate::commit_status::CommitStatus::disabled(),
        host: crate::plan::Host {
            name: "h1".into(),
            ..Default::default()
        },
        ledger,
    }
}

/// A running loop, and what a test looks at and pulls on.
pub(super) struct Agent {
    pub engine: MemoryEngine,
    pub ledger: Arc<MemoryLedger>,
    pub metrics: Arc<Metrics>,
    pub status: SharedStatus,
    pub triggers: mpsc::UnboundedSender<Trigger>,
    pub shutdown: CancellationToken,
    pub task: tokio::task::JoinHandle<()>,
    pub dir: tempfile::TempDir,
}

impl Agent {
    /// A loop over `engine` with `desired` as its last good commit, waiting for its
    /// first trigger.
    pub(super) fn start(engine: MemoryEngine, ledger: MemoryLedger, desired: Desired) -> Self {
        Self::start_with(engine, ledger, desired, |_| {})
    }

    pub(super) fn start_with(
        engine: MemoryEngine,
        ledger: MemoryLedger,
        desired: Desired,
        tune: impl FnOnce(&mut AgentConfig),
    ) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let ledger = Arc::new(ledger);
        let mut config = config(dir.path(), ledger.clone());
        tune(&mut config);
        let (tx, mut rx) = mpsc::unbounded_channel();
        let status: SharedStatus = Arc::new(RwLock::new(AgentStatus::new(&config)));
        let metrics = Arc::new(Metrics::new(Some("h1")));
        let mut state = Loop::new(
            config,
            Arc::new(engine.clone()),
            metrics.clone(),
            status.clone(),
            tx.clone(),
        );
        state.last_good = Some((
            CommitInfo {
                sha: "c0ffee0000000000000000000000000000000000".into(),
                summary: "release".into(),
                author: "ops".into(),
            },
            desired,
        ));
        let shutdown = CancellationToken::new();
        let stop = shutdown.clone();
        let task = tokio::spawn(async move { state.drive(&mut rx, &stop).await });
        Self {
            engine,
            ledger,
            metrics,
            status,
            triggers: tx,
            shutdown,
            task,
            dir,
        }
    }

    /// Wakes the loop.
    pub(super) fn trigger(&self, t: Trigger) {
        self.triggers.send(t).expect("the loop runs");
    }

    /// Reconciles finished so far, whatever their outcome.
    pub(super) fn reconciles(&self) -> u64 {
        ["converged", "failed", "error"]
            .into_iter()
            .map(|o| {
                self.metrics
                    .reconciles
                    .get_or_create(&OutcomeLabels { outcome: o.into() })
                    .get()
            })
            .sum()
    }

    /// Triggers the loop took in, of one kind.
    pub(super) fn triggers_seen(&self, t: Trigger) -> u64 {
        self.metrics
            .reconcile_triggers
            .get_or_create(&TriggerLabels {
                trigger: t.as_str().into(),
            })
            .get()
    }

    /// Waits (on tokio's clock) until `done`, looking every 10 ms, at most `max`.
    pub(super) async fn until(&self, max: Duration, mut done: impl FnMut(&Self) -> bool) {
        let until = tokio::time::Instant::now() + max;
        while !done(self) {
            assert!(
                tokio::time::Instant::now() < until,
                "not within {max:?}; engine calls: {:?}",
                self.engine.actions()
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}
