//! The durable record of migrations and deploys. One host keeps it embedded (SQLite in
//! the state dir); everything else talks to the [`Ledger`] trait, so a shared store can
//! stand behind it for a fleet.

mod sqlite;

use serde::{Deserialize, Serialize};

pub use sqlite::SqliteLedger;

/// How a migration run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum MigrationOutcome {
    /// Exit code 0: never runs again for this image.
    Succeeded,
    /// Non-zero exit: retried with backoff.
    Failed,
    /// Killed after its timeout: retried with backoff.
    TimedOut,
}

impl MigrationOutcome {
    /// The stored word.
    pub fn as_str(self) -> &'static str {
        match self {
            MigrationOutcome::Succeeded => "succeeded",
            MigrationOutcome::Failed => "failed",
            MigrationOutcome::TimedOut => "timed-out",
        }
    }

    fn parse(s: &str) -> Self {
        match s {
            "succeeded" => MigrationOutcome::Succeeded,
            "timed-out" => MigrationOutcome::TimedOut,
            _ => MigrationOutcome::Failed,
        }
    }
}

/// One migration run, keyed by (project, migration, image digest).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MigrationRecord {
    /// The project.
    pub project: String,
    /// The migration's name.
    pub migration: String,
    /// The digest of the image it ran from.
    pub digest: String,
    /// The image reference.
    pub image: String,
    /// The desired-state commit, when known.
    pub commit: Option<String>,
    /// Start time, RFC 3339.
    pub started_at: String,
    /// End time, RFC 3339.
    pub ended_at: String,
    /// The container's exit code (137 when killed).
    pub exit_code: i64,
    /// Wall time in milliseconds.
    pub duration_ms: u64,
    /// How it ended.
    pub outcome: MigrationOutcome,
    /// The last 100 lines of output, secrets masked.
    pub output: String,
    /// Runs recorded for this key (failed ones included).
    pub attempts: u32,
}

/// A service's part in one deploy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceDeploy {
    /// The service.
    pub service: String,
    /// The image before, when one ran.
    pub from: Option<String>,
    /// The image asked for.
    pub to: Option<String>,
    /// `converged`, `failed`, `rolled-back`, `blocked`, `removed`.
    pub outcome: String,
    /// The error, when it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// A migration's part in one deploy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MigrationRun {
    /// The migration.
    pub migration: String,
    /// Its outcome.
    pub outcome: MigrationOutcome,
    /// How long it took, in milliseconds.
    pub duration_ms: u64,
}

/// One `apply` (or agent reconcile) that changed something.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeployRecord {
    /// Assigned by the ledger.
    pub id: i64,
    /// The project.
    pub project: String,
    /// The host that made the deploy.
    #[serde(default)]
    pub host: Option<String>,
    /// The desired-state commit, when known.
    pub commit: Option<String>,
    /// Start time, RFC 3339.
    pub started_at: String,
    /// End time, RFC 3339.
    pub ended_at: String,
    /// Per changed service.
    pub services: Vec<ServiceDeploy>,
    /// Migrations run.
    pub migrations: Vec<MigrationRun>,
}

/// Failures of the ledger's store.
#[derive(Debug, thiserror::Error)]
#[error("ledger {path}: {message}")]
pub struct LedgerError {
    /// The store's location.
    pub path: String,
    /// What failed.
    pub message: String,
}

/// The durable record berth keeps.
pub trait Ledger: Send + Sync {
    /// The record of a migration for an image, if it ever ran.
    fn migration(
        &self,
        project: &str,
        migration: &str,
        digest: &str,
    ) -> Result<Option<MigrationRecord>, LedgerError>;
    /// Stores a finished run, replacing an earlier one of the same key and counting it.
    fn record_migration(&self, record: &MigrationRecord) -> Result<(), LedgerError>;
    /// Appends a deploy and returns its id.
    fn record_deploy(&self, deploy: &DeployRecord) -> Result<i64, LedgerError>;
    /// Deploys of a project, newest first, optionally only those touching `service`.
    fn deploys(
        &self,
        project: Option<&str>,
        service: Option<&str>,
        limit: usize,
    ) -> Result<Vec<DeployRecord>, LedgerError>;
}

/// Now, RFC 3339 in UTC with milliseconds.
pub fn now_rfc3339() -> String {
    let now = time::OffsetDateTime::now_utc();
    now.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}
