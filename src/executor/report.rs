//! What an apply reports: per service how it ended and why, the migrations that ran,
//! and what runs afterwards.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::ledger::MigrationRun;
use crate::plan::{Action, Desired};
use crate::runtime::{HealthState, ObservedContainer, Role};

/// How one service ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "outcome", rename_all = "kebab-case")]
pub(crate) enum Outcome {
    /// Nothing needed doing.
    InSync,
    /// Changed, and now converged.
    Converged,
    /// Could not be converged; what ran before keeps running.
    Failed {
        /// What went wrong (secrets masked).
        error: String,
        /// What still serves.
        serving: String,
        /// True when the replicas already moved were put back.
        rolled_back: bool,
    },
    /// Not touched because a service it depends on failed.
    Blocked {
        /// The failed dependency.
        by: String,
    },
    /// Not changed because it was removed from the desired state and pruning is off.
    Skipped,
    /// Left alone this time, with why (paused, failed until the desired state changes,
    /// waiting for its next retry, berth stopping).
    Held {
        /// Why.
        reason: String,
    },
    /// Not changed yet because the fleet comes first: the canary host, another host's
    /// rollout lease or migration, or a coordination store that does not answer. Tried
    /// again soon; what runs keeps running.
    Waiting {
        /// For what.
        reason: String,
    },
}

impl Outcome {
    /// True for a service that could not be converged.
    pub(crate) fn is_failed(&self) -> bool {
        matches!(self, Outcome::Failed { .. })
    }
}

/// The report of one service.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct ServiceReport {
    /// The service.
    pub service: String,
    /// What the plan said.
    pub action: Action,
    /// Why.
    pub reasons: Vec<String>,
    /// How it ended.
    #[serde(flatten)]
    pub outcome: Outcome,
    /// Attempts made.
    pub attempts: u32,
    /// Wall time spent on it, in milliseconds.
    pub millis: u64,
    /// It failed because the registry could not be reached for its image: retried on
    /// the backoff schedule without using up `--max-attempts`.
    #[serde(skip)]
    pub registry_unreachable: bool,
}

impl ServiceReport {
    /// The outcome in the one word history, status and metrics use: `in-sync`,
    /// `converged`, `removed`, `failed`, `rolled-back`, `blocked`, `not-pruned`, `held`,
    /// `waiting`.
    pub(crate) fn outcome_word(&self) -> &'static str {
        match &self.outcome {
            Outcome::InSync => "in-sync",
            Outcome::Converged if self.action == Action::Remove => "removed",
            Outcome::Converged => "converged",
            Outcome::Failed {
                rolled_back: true, ..
            } => "rolled-back",
            Outcome::Failed { .. } => "failed",
            Outcome::Blocked { .. } => "blocked",
            Outcome::Skipped => "not-pruned",
            Outcome::Held { .. } => "held",
            Outcome::Waiting { .. } => "waiting",
        }
    }

    /// Why the service did not converge, when it did not.
    pub(crate) fn error(&self) -> Option<String> {
        match &self.outcome {
            Outcome::Failed { error, .. } => Some(error.clone()),
            Outcome::Blocked { by } => Some(format!("depends on {by}, which did not converge")),
            Outcome::Held { reason } | Outcome::Waiting { reason } => Some(reason.clone()),
            _ => None,
        }
    }

    /// True when the apply changed (or tried to change) the service.
    pub(crate) fn attempted(&self) -> bool {
        !matches!(
            self.outcome,
            Outcome::InSync | Outcome::Skipped | Outcome::Held { .. } | Outcome::Waiting { .. }
        )
    }
}

/// The report of one `apply`.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct ApplyReport {
    /// The project.
    pub project: String,
    /// Per service, by name.
    pub services: Vec<ServiceReport>,
    /// Migrations that ran (or failed) in this apply.
    pub migrations: Vec<MigrationReport>,
    /// What runs, per service, after the apply.
    pub observed: BTreeMap<String, ServiceObserved>,
    /// What ran, per service, before the apply (notifications name the images before
    /// and after).
    #[serde(skip)]
    pub before: BTreeMap<String, ServiceObserved>,
}

/// What runs of one service.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub(crate) struct ServiceObserved {
    /// Desired replicas (0 for a service no longer desired).
    pub desired: u32,
    /// Replicas running.
    pub running: u32,
    /// Replicas running and healthy (or running without a health check).
    pub healthy: u32,
    /// Running replicas by image.
    pub images: BTreeMap<String, u32>,
}

/// Counts what runs per service, from one observation.
pub(crate) fn observe(
    desired: &Desired,
    observed: &[ObservedContainer],
) -> BTreeMap<String, ServiceObserved> {
    let mut out: BTreeMap<String, ServiceObserved> = desired
        .services
        .iter()
        .map(|(name, d)| {
            (
                name.clone(),
                ServiceObserved {
                    desired: d.spec.replicas,
                    ..Default::default()
                },
            )
        })
        .collect();
    for c in observed
        .iter()
        .filter(|c| c.role == Role::Replica && c.is_up())
    {
        let o = out.entry(c.service.clone()).or_default();
        o.running += 1;
        if matches!(c.health, HealthState::Healthy | HealthState::None) {
            o.healthy += 1;
        }
        *o.images.entry(c.image.clone()).or_default() += 1;
    }
    out
}

/// A migration's part in one apply.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct MigrationReport {
    /// The migration.
    pub migration: String,
    /// The run, when one finished.
    #[serde(flatten)]
    pub run: Option<MigrationRun>,
    /// The error, when it did not succeed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl MigrationReport {
    /// The report of a migration's run in this apply; `None` when nothing had to run.
    pub(super) fn of(
        name: &str,
        result: &Result<Option<MigrationRun>, super::migrate::MigrationFailure>,
    ) -> Option<Self> {
        match result {
            Ok(None) => None,
            Ok(Some(run)) => Some(MigrationReport {
                migration: name.to_string(),
                run: Some(run.clone()),
                error: None,
            }),
            Err(f) => Some(MigrationReport {
                migration: name.to_string(),
                run: f.run.clone(),
                error: Some(f.error.to_string()),
            }),
        }
    }
}

impl ApplyReport {
    /// True when no service failed or was blocked.
    pub(crate) fn converged(&self) -> bool {
        self.services.iter().all(|s| {
            !matches!(
                s.outcome,
                Outcome::Failed { .. } | Outcome::Blocked { .. } | Outcome::Waiting { .. }
            )
        })
    }
}
