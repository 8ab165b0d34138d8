//! What the agent knows about itself: written by its loop, read by the HTTP listener
//! (`/status`, `/healthz`). Neither owns it, so it sits beside both.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use tokio::sync::RwLock;

use crate::ledger::now_rfc3339;
use crate::source::CommitInfo;
use crate::urls::redact_urls_in;

/// The status shared between the loop and the listener.
pub(crate) type SharedStatus = Arc<RwLock<AgentStatus>>;

/// One service as status shows it.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct ServiceStatus {
    /// The image asked for.
    pub desired_image: Option<String>,
    /// Running replicas by image.
    pub running_images: BTreeMap<String, u32>,
    /// Desired replicas.
    pub desired: u32,
    /// Replicas running when the last reconcile looked.
    pub running: u32,
    /// Of those, healthy (or running without a health check).
    pub healthy: u32,
    /// The spec hash that failed, when the service is backing off or held.
    pub failed_target: Option<FailedTarget>,
    /// The last deploy of the service: when, and how it ended.
    pub last_deploy: Option<LastDeploy>,
    /// The outcome of the last reconcile.
    pub last_outcome: String,
    /// The last error, if the last reconcile failed it.
    pub last_error: Option<String>,
    /// Paused by an operator.
    pub paused: bool,
    /// The host that takes a release first in a fleet (`update.canary`), if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub canary: Option<String>,
}

/// When a service last changed, and how that ended.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct LastDeploy {
    /// RFC 3339.
    pub at: String,
    /// The commit.
    pub commit: String,
    /// converged, failed, rolled-back, blocked, removed.
    pub outcome: String,
}

/// The agent's state.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct AgentStatus {
    /// This host.
    pub host: crate::plan::Host,
    /// The repository followed, credentials masked.
    pub repo: String,
    /// The branch followed.
    pub branch: String,
    /// The commit being converged (the last good one).
    pub applied_commit: Option<CommitInfo>,
    /// The last head seen, valid or not.
    pub head: Option<String>,
    /// The last error (an invalid or refused commit, a fetch failure, an engine failure).
    pub last_error: Option<String>,
    /// When the last reconcile ended.
    pub last_reconcile: Option<String>,
    /// How long it took, in milliseconds.
    pub last_reconcile_ms: Option<u64>,
    /// Consecutive failed fetches.
    pub fetch_failures: u32,
    /// Per service.
    pub services: BTreeMap<String, ServiceStatus>,
    /// Targets backing off or given up.
    pub failed_targets: Vec<FailedTarget>,
    /// Everything paused.
    pub paused: bool,
    /// Where migrations and deploys are recorded.
    pub coordination: String,
    /// Why the host is degraded (its coordination store does not answer), if it is.
    pub degraded: Option<String>,
    /// Why the Docker engine does not answer, while it does not: nothing is changed
    /// meanwhile, and the agent converges once it answers again.
    pub engine_down: Option<String>,
    /// Migrations recorded as started without a result, fleet-wide: a run whose host
    /// died stays here until that host returns or an operator settles it.
    pub started_migrations: Vec<crate::ledger::StartedMigration>,
    /// What the apply in flight is doing: pulls, slots, gates, drains.
    pub rollout: crate::executor::progress::Board,
    /// When the last successful reconcile ended; `/healthz` fails when it is too old.
    #[serde(skip)]
    pub(crate) last_reconcile_at: Option<std::time::Instant>,
    /// How old the last successful reconcile may be before `/healthz` fails.
    #[serde(skip)]
    pub(crate) stale_after: Duration,
}

/// A failed target as status shows it.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct FailedTarget {
    /// The service.
    pub service: String,
    /// The spec hash that failed.
    pub spec: String,
    /// Attempts so far.
    pub attempts: u32,
    /// True once no more attempts are made until the desired state changes.
    pub given_up: bool,
}

impl AgentStatus {
    /// A reconcile ended.
    pub(crate) fn finish_reconcile(&mut self, took: Duration, error: Option<String>) {
        self.last_reconcile = Some(now_rfc3339());
        self.last_reconcile_ms = Some(took.as_millis() as u64);
        if let Some(error) = error {
            self.last_error = Some(redact_urls_in(&error));
        } else {
            self.last_reconcile_at = Some(std::time::Instant::now());
        }
    }

    /// A fetch failed.
    pub(crate) fn fetch_failed(&mut self, error: String) {
        self.fetch_failures += 1;
        self.last_error = Some(redact_urls_in(&error));
    }

    /// A fetch succeeded.
    pub(crate) fn fetch_ok(&mut self) {
        if self.fetch_failures > 0 {
            self.fetch_failures = 0;
            self.last_error = None;
        }
    }

    /// A head that cannot be applied.
    pub(crate) fn invalid_commit(&mut self, sha: &str, error: String) {
        self.head = Some(sha.to_string());
        self.last_error = Some(redact_urls_in(&error));
    }

    /// A head that loaded and validated.
    pub(crate) fn valid_commit(&mut self, info: &CommitInfo) {
        self.head = Some(info.sha.clone());
        self.applied_commit = Some(info.clone());
        self.last_error = None;
    }

    /// `None` when healthy, else why not.
    pub(crate) fn unhealthy_because(&self) -> Option<String> {
        if let Some(why) = &self.engine_down {
            return Some(format!("the Docker engine does not answer: {why}"));
        }
        match self.last_reconcile_at {
            None => Some("no reconcile has finished yet".into()),
            Some(at) if at.elapsed() > self.stale_after => Some(format!(
                "the last successful reconcile was {}s ago",
                at.elapsed().as_secs()
            )),
            _ if self.fetch_failures >= 3 => Some(format!(
                "{} fetches in a row failed; converging the last good commit: {}",
                self.fetch_failures,
                self.last_error.clone().unwrap_or_default()
            )),
            _ => None,
        }
    }
}
