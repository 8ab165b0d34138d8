//! What the executor's and the agent's tests share: desired states from YAML, a ledger
//! held in memory whose fleet answers a test scripts, and an executor over the
//! in-memory engine.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::executor::{ApplyOptions, Executor, RetryPolicy};
use crate::ledger::{
    Claim, DeployRecord, LeaseAnswer, LeaseKey, Ledger, LedgerError, MigrationClaim,
    MigrationOutcome, MigrationRecord, Resolution, StartedMigration,
};
use crate::model::{load_tree, MemTree};
use crate::plan::Desired;
use crate::runtime::memory::MemoryEngine;

/// The desired state a YAML file describes (no env files, no repository files).
pub(crate) fn desired(yaml: &str) -> Desired {
    let loaded = load_tree(&MemTree::new().with("berth.yaml", yaml), "berth.yaml")
        .expect("the test's YAML loads");
    let spec = loaded
        .spec
        .unwrap_or_else(|| panic!("invalid test stack: {}", loaded.diagnostics));
    Desired::resolve(spec, std::path::Path::new("/nonexistent/env"))
}

/// One service `api` of `image` with `replicas`, and `extra` lines appended under it.
pub(crate) fn api(image: &str, replicas: u32, extra: &str) -> Desired {
    desired(&format!(
        "project: shop\nservices:\n  api:\n    image: {image}\n    replicas: {replicas}\n{extra}"
    ))
}

/// Options for tests: no retry within an apply, a short drain, a quick poll.
pub(crate) fn options(state_dir: &std::path::Path) -> ApplyOptions {
    ApplyOptions {
        state_dir: state_dir.to_path_buf(),
        retry: RetryPolicy {
            max_attempts: 1,
            jitter: 0.0,
            ..RetryPolicy::default()
        },
        drain: Duration::from_millis(100),
        poll: Duration::from_millis(100),
        fleet_wait: Duration::from_secs(60),
        // Never the Docker config of the machine the tests run on.
        auth: crate::executor::auth::AuthEnv::from_vars(None, None, None),
        ..ApplyOptions::default()
    }
}

/// An executor over a fresh memory engine and memory ledger.
pub(crate) struct Bench {
    pub engine: MemoryEngine,
    pub ledger: Arc<MemoryLedger>,
    pub executor: Executor,
    pub _dir: tempfile::TempDir,
}

impl Bench {
    pub(crate) fn new() -> Self {
        Self::with(|_| {}, MemoryLedger::local())
    }

    pub(crate) fn with(tune: impl FnOnce(&mut ApplyOptions), ledger: MemoryLedger) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut opts = options(dir.path());
        tune(&mut opts);
        let engine = MemoryEngine::new();
        let ledger = Arc::new(ledger);
        let executor = Executor::new(Arc::new(engine.clone()), ledger.clone(), opts);
        Self {
            engine,
            ledger,
            executor,
            _dir: dir,
        }
    }
}

#[derive(Default)]
struct Fleet {
    migrations: BTreeMap<(String, String, String), MigrationRecord>,
    claims: BTreeMap<(String, String, String), StartedMigration>,
    /// Answers of `converged_since` still to give, by host; the last one stays.
    converged: BTreeMap<String, VecDeque<Option<String>>>,
    /// Busy answers still to give before a lease is held.
    busy: VecDeque<Vec<String>>,
    leases: Vec<LeaseKey>,
    released: Vec<LeaseKey>,
    recorded_converged: Vec<(String, String)>,
    deploys: Vec<DeployRecord>,
    down: bool,
    calls: Vec<String>,
}

/// A ledger in memory. Local (one host) or shared, with the fleet's answers scripted.
pub(crate) struct MemoryLedger {
    shared: bool,
    fleet: Mutex<Fleet>,
}

impl MemoryLedger {
    /// The ledger of a single host.
    pub(crate) fn local() -> Self {
        Self {
            shared: false,
            fleet: Mutex::default(),
        }
    }

    /// A fleet's shared ledger.
    pub(crate) fn shared() -> Self {
        Self {
            shared: true,
            fleet: Mutex::default(),
        }
    }

    fn fleet(&self) -> std::sync::MutexGuard<'_, Fleet> {
        self.fleet.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// `converged_since` for `host` answers these, one per call, then the last forever.
    pub(crate) fn script_converged(&self, host: &str, answers: &[Option<&str>]) {
        self.fleet().converged.insert(
            host.to_string(),
            answers.iter().map(|a| a.map(str::to_string)).collect(),
        );
    }

    /// The next lease requests are refused, held by these hosts.
    pub(crate) fn script_busy(&self, answers: &[&[&str]]) {
        self.fleet().busy = answers
            .iter()
            .map(|hs| hs.iter().map(|h| h.to_string()).collect())
            .collect();
    }

    /// Every call fails from now on (or answers again).
    pub(crate) fn set_down(&self, down: bool) {
        self.fleet().down = down;
    }

    /// Another host recorded the start of a run.
    pub(crate) fn claim_elsewhere(&self, s: StartedMigration) {
        self.fleet().claims.insert(
            (s.project.clone(), s.migration.clone(), s.digest.clone()),
            s,
        );
    }

    /// The recorded runs.
    pub(crate) fn migrations(&self) -> Vec<MigrationRecord> {
        self.fleet().migrations.values().cloned().collect()
    }

    /// The deploys recorded.
    pub(crate) fn deploys(&self) -> Vec<DeployRecord> {
        self.fleet().deploys.clone()
    }

    /// Leases given back.
    pub(crate) fn released(&self) -> Vec<LeaseKey> {
        self.fleet().released.clone()
    }

    /// (service, target) recorded as converged.
    pub(crate) fn recorded_converged(&self) -> Vec<(String, String)> {
        self.fleet().recorded_converged.clone()
    }

    /// The fleet calls, as text.
    pub(crate) fn calls(&self) -> Vec<String> {
        self.fleet().calls.clone()
    }

    fn call(&self, what: String) -> Result<std::sync::MutexGuard<'_, Fleet>, LedgerError> {
        let mut f = self.fleet();
        f.calls.push(what);
        if f.down {
            return Err(LedgerError {
                path: "memory".into(),
                message: "connection refused".into(),
            });
        }
        Ok(f)
    }
}

#[async_trait::async_trait]
impl Ledger for MemoryLedger {
    fn describe(&self) -> String {
        "memory".into()
    }

    fn is_shared(&self) -> bool {
        self.shared
    }

    async fn check(&self) -> Result<(), LedgerError> {
        self.call("check".into()).map(|_| ())
    }

    async fn migration(
        &self,
        project: &str,
        migration: &str,
        digest: &str,
    ) -> Result<Option<MigrationRecord>, LedgerError> {
        let f = self.call(format!("migration {migration}"))?;
        let key = (project.into(), migration.into(), digest.into());
        // As on PostgreSQL: a claim under way hides the result before it.
        if f.claims.contains_key(&key) {
            return Ok(None);
        }
        Ok(f.migrations.get(&key).cloned())
    }

    async fn claim_migration(&self, claim: &MigrationClaim) -> Result<Claim, LedgerError> {
        let mut f = self.call(format!("claim {}", claim.migration))?;
        let key = (
            claim.project.clone(),
            claim.migration.clone(),
            claim.digest.clone(),
        );
        if f.migrations
            .get(&key)
            .is_some_and(|m| m.outcome == MigrationOutcome::Succeeded)
        {
            return Ok(Claim::Succeeded);
        }
        if let Some(s) = f.claims.get(&key).filter(|s| s.host != claim.host) {
            return Ok(Claim::RunningElsewhere(s.clone()));
        }
        f.claims.insert(
            key,
            StartedMigration {
                project: claim.project.clone(),
                migration: claim.migration.clone(),
                digest: claim.digest.clone(),
                host: claim.host.clone(),
                container: claim.container.clone(),
                since: crate::ledger::now_rfc3339(),
            },
        );
        Ok(Claim::Granted)
    }

    async fn record_migration(&self, record: &MigrationRecord) -> Result<(), LedgerError> {
        let mut f = self.call(format!("record {}", record.migration))?;
        let key = (
            record.project.clone(),
            record.migration.clone(),
            record.digest.clone(),
        );
        // As on PostgreSQL: a shared ledger takes a result only from the host whose
        // claim is under way; a local one from its one host, unless it succeeded.
        let claim = f.claims.get(&key).map(|s| s.host.clone());
        let ours = match (&claim, self.shared) {
            (Some(h), _) => *h == record.host.clone().unwrap_or_default(),
            (None, true) => !f.migrations.contains_key(&key),
            (None, false) => true,
        };
        if !ours
            || f.migrations
                .get(&key)
                .is_some_and(|m| m.outcome == MigrationOutcome::Succeeded)
        {
            return Ok(());
        }
        f.claims.remove(&key);
        let attempts = f.migrations.get(&key).map_or(0, |m| m.attempts) + 1;
        f.migrations.insert(
            key,
            MigrationRecord {
                attempts,
                ..record.clone()
            },
        );
        Ok(())
    }

    async fn resolve_migration(&self, r: &Resolution) -> Result<MigrationRecord, LedgerError> {
        Err(LedgerError {
            path: "memory".into(),
            message: format!("not settled by hand in tests: {}", r.migration),
        })
    }

    async fn started_migrations(
        &self,
        _project: Option<&str>,
    ) -> Result<Vec<StartedMigration>, LedgerError> {
        let f = self.call("started".into())?;
        Ok(f.claims.values().cloned().collect())
    }

    async fn record_deploy(&self, deploy: &DeployRecord) -> Result<i64, LedgerError> {
        let mut f = self.call("deploy".into())?;
        f.deploys.push(deploy.clone());
        Ok(f.deploys.len() as i64)
    }

    async fn deploys(
        &self,
        _project: Option<&str>,
        _service: Option<&str>,
        _limit: usize,
    ) -> Result<Vec<DeployRecord>, LedgerError> {
        Ok(self.fleet().deploys.clone())
    }

    async fn acquire_lease(
        &self,
        key: &LeaseKey,
        _max: u32,
        _ttl: Duration,
    ) -> Result<LeaseAnswer, LedgerError> {
        let mut f = self.call(format!("lease {}", key.service))?;
        if let Some(holders) = f.busy.pop_front() {
            return Ok(LeaseAnswer::Busy(holders));
        }
        if !f.leases.contains(key) {
            f.leases.push(key.clone());
        }
        Ok(LeaseAnswer::Held)
    }

    async fn release_lease(&self, key: &LeaseKey) -> Result<(), LedgerError> {
        let mut f = self.call(format!("release {}", key.service))?;
        f.leases.retain(|k| k != key);
        f.released.push(key.clone());
        Ok(())
    }

    async fn record_converged(
        &self,
        _project: &str,
        service: &str,
        _host: &str,
        target: &str,
    ) -> Result<(), LedgerError> {
        let mut f = self.call(format!("converged {service}"))?;
        f.recorded_converged
            .push((service.to_string(), target.to_string()));
        Ok(())
    }

    async fn converged_since(
        &self,
        _project: &str,
        service: &str,
        host: &str,
        _target: &str,
    ) -> Result<Option<String>, LedgerError> {
        let mut f = self.call(format!("canary {service} on {host}"))?;
        let Some(answers) = f.converged.get_mut(host) else {
            return Ok(None);
        };
        Ok(if answers.len() > 1 {
            answers.pop_front().flatten()
        } else {
            answers.front().cloned().flatten()
        })
    }
}
