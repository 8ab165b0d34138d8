//! The embedded ledger: SQLite in WAL mode, so another process (`berth history`) can
//! read while the agent writes, and every write is one transaction that survives
//! `kill -9`.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use rusqlite::{params, Connection, OptionalExtension};

use super::*;

/// Schema steps, in order; step `i` brings `user_version` to `i + 1`, in one
/// transaction with it.
const SCHEMA: &[&str] = &[
    // 1: migrations and deploys.
    "CREATE TABLE IF NOT EXISTS migrations (
       project TEXT NOT NULL, name TEXT NOT NULL, digest TEXT NOT NULL,
       image TEXT NOT NULL, commit_sha TEXT, started_at TEXT NOT NULL,
       ended_at TEXT NOT NULL, exit_code INTEGER NOT NULL,
       duration_ms INTEGER NOT NULL, outcome TEXT NOT NULL, output TEXT NOT NULL,
       attempts INTEGER NOT NULL DEFAULT 1,
       PRIMARY KEY (project, name, digest));
     CREATE TABLE IF NOT EXISTS deploys (
       id INTEGER PRIMARY KEY AUTOINCREMENT, project TEXT NOT NULL,
       commit_sha TEXT, started_at TEXT NOT NULL, ended_at TEXT NOT NULL,
       services TEXT NOT NULL, migrations TEXT NOT NULL);
     CREATE INDEX IF NOT EXISTS deploys_project ON deploys (project, id);",
    // 2: deploys name the host that made them.
    "ALTER TABLE deploys ADD COLUMN host TEXT;",
    // 3: migrations name the host that ran (or settled) them.
    "ALTER TABLE migrations ADD COLUMN host TEXT;",
];
const SCHEMA_VERSION: i64 = SCHEMA.len() as i64;

/// The ledger in `<state-dir>/ledger.db`.
pub struct SqliteLedger {
    path: PathBuf,
    conn: Mutex<Connection>,
}

impl SqliteLedger {
    /// Opens (creating when needed) the ledger at `path`, upgrading its schema.
    pub fn open(path: &Path) -> Result<Self, LedgerError> {
        let fail = |e: &dyn std::fmt::Display| LedgerError {
            path: path.display().to_string(),
            message: e.to_string(),
        };
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| fail(&e))?;
        }
        let conn = Connection::open(path).map_err(|e| fail(&e))?;
        conn.busy_timeout(Duration::from_secs(10))
            .map_err(|e| fail(&e))?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(|e| fail(&e))?;
        conn.pragma_update(None, "synchronous", "FULL")
            .map_err(|e| fail(&e))?;
        let version: i64 = conn
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .map_err(|e| fail(&e))?;
        if version > SCHEMA_VERSION {
            return Err(fail(&format!(
                "schema version {version} is newer than this berth understands ({SCHEMA_VERSION}); upgrade berth"
            )));
        }
        for (i, step) in SCHEMA.iter().enumerate().skip(version.max(0) as usize) {
            conn.execute_batch(&format!(
                "BEGIN; {step} PRAGMA user_version = {}; COMMIT;",
                i + 1
            ))
            .map_err(|e| fail(&e))?;
        }
        Ok(Self {
            path: path.to_path_buf(),
            conn: Mutex::new(conn),
        })
    }

    fn err(&self, e: impl std::fmt::Display) -> LedgerError {
        LedgerError {
            path: self.path.display().to_string(),
            message: e.to_string(),
        }
    }

    fn conn(&self) -> std::sync::MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl SqliteLedger {
    /// See [`Ledger::migration`].
    pub fn migration(
        &self,
        project: &str,
        migration: &str,
        digest: &str,
    ) -> Result<Option<MigrationRecord>, LedgerError> {
        self.conn()
            .query_row(
                "SELECT image, commit_sha, started_at, ended_at, exit_code, duration_ms, outcome, output, attempts, host
                 FROM migrations WHERE project = ?1 AND name = ?2 AND digest = ?3",
                params![project, migration, digest],
                |r| {
                    Ok(MigrationRecord {
                        project: project.to_string(),
                        migration: migration.to_string(),
                        digest: digest.to_string(),
                        image: r.get(0)?,
                        commit: r.get(1)?,
                        started_at: r.get(2)?,
                        ended_at: r.get(3)?,
                        exit_code: r.get(4)?,
                        duration_ms: r.get::<_, i64>(5)? as u64,
                        outcome: MigrationOutcome::parse(&r.get::<_, String>(6)?),
                        output: r.get(7)?,
                        attempts: r.get::<_, i64>(8)? as u32,
                        host: r.get(9)?,
                    })
                },
            )
            .optional()
            .map_err(|e| self.err(e))
    }

    /// See [`Ledger::record_migration`].
    pub fn record_migration(&self, m: &MigrationRecord) -> Result<(), LedgerError> {
        let mut conn = self.conn();
        let tx = conn.transaction().map_err(|e| self.err(e))?;
        let previous: Option<(String, i64)> = tx
            .query_row(
                "SELECT outcome, attempts FROM migrations WHERE project = ?1 AND name = ?2 AND digest = ?3",
                params![m.project, m.migration, m.digest],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()
            .map_err(|e| self.err(e))?;
        // A success is final: nothing overwrites it, so a record can never make a
        // migration run twice.
        if let Some((outcome, _)) = &previous {
            if outcome == "succeeded" {
                return Ok(());
            }
        }
        let attempts = previous.map(|p| p.1).unwrap_or(0) + 1;
        tx.execute(
            "INSERT OR REPLACE INTO migrations
             (project, name, digest, image, commit_sha, started_at, ended_at, exit_code, duration_ms, outcome, output, attempts, host)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
            params![
                m.project,
                m.migration,
                m.digest,
                m.image,
                m.commit,
                m.started_at,
                m.ended_at,
                m.exit_code,
                m.duration_ms as i64,
                m.outcome.as_str(),
                m.output,
                attempts,
                m.host
            ],
        )
        .map_err(|e| self.err(e))?;
        tx.commit().map_err(|e| self.err(e))
    }

    /// See [`Ledger::record_deploy`].
    pub fn record_deploy(&self, d: &DeployRecord) -> Result<i64, LedgerError> {
        let conn = self.conn();
        conn.execute(
            "INSERT INTO deploys (project, commit_sha, started_at, ended_at, services, migrations, host)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![
                d.project,
                d.commit,
                d.started_at,
                d.ended_at,
                serde_json::to_string(&d.services).map_err(|e| self.err(e))?,
                serde_json::to_string(&d.migrations).map_err(|e| self.err(e))?,
                d.host
            ],
        )
        .map_err(|e| self.err(e))?;
        Ok(conn.last_insert_rowid())
    }

    /// See [`Ledger::deploys`].
    pub fn deploys(
        &self,
        project: Option<&str>,
        service: Option<&str>,
        limit: usize,
    ) -> Result<Vec<DeployRecord>, LedgerError> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare(
                "SELECT id, project, commit_sha, started_at, ended_at, services, migrations, host FROM deploys
                 WHERE (?1 IS NULL OR project = ?1) ORDER BY id DESC",
            )
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map(params![project], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, Option<String>>(2)?,
                    r.get::<_, String>(3)?,
                    r.get::<_, String>(4)?,
                    r.get::<_, String>(5)?,
                    r.get::<_, String>(6)?,
                    r.get::<_, Option<String>>(7)?,
                ))
            })
            .map_err(|e| self.err(e))?;
        let mut out = Vec::new();
        for row in rows {
            let (id, project, commit, started_at, ended_at, services, migrations, host) =
                row.map_err(|e| self.err(e))?;
            let mut services: Vec<ServiceDeploy> =
                serde_json::from_str(&services).map_err(|e| self.err(e))?;
            if let Some(s) = service {
                services.retain(|d| d.service == s);
                if services.is_empty() {
                    continue;
                }
            }
            out.push(DeployRecord {
                id,
                project,
                host,
                commit,
                started_at,
                ended_at,
                services,
                migrations: serde_json::from_str(&migrations).map_err(|e| self.err(e))?,
            });
            if out.len() >= limit {
                break;
            }
        }
        Ok(out)
    }
}

impl SqliteLedger {
    /// See [`Ledger::resolve_migration`]. One host has no run of another host to
    /// settle; this marks a migration's result by hand (e.g. one applied out of band).
    pub fn resolve_migration(&self, r: &Resolution) -> Result<MigrationRecord, LedgerError> {
        let project = r.project.as_deref().ok_or_else(|| {
            self.err("name the project with --project (the local ledger keeps several)")
        })?;
        if let Some(m) = self.migration(project, &r.migration, &r.digest)? {
            if m.outcome == MigrationOutcome::Succeeded {
                return Err(self.err(already_succeeded(&m)));
            }
        }
        let now = now_rfc3339();
        let record = MigrationRecord {
            project: project.to_string(),
            migration: r.migration.clone(),
            digest: r.digest.clone(),
            image: String::new(),
            commit: None,
            started_at: now.clone(),
            ended_at: now,
            exit_code: -1,
            duration_ms: 0,
            outcome: r.outcome,
            output: format!("resolved by hand by {}", r.by),
            attempts: 0,
            host: Some(r.by.clone()),
        };
        self.record_migration(&record)?;
        self.migration(project, &r.migration, &r.digest)?
            .ok_or_else(|| self.err("the resolution was not stored"))
    }
}

#[async_trait::async_trait]
impl Ledger for SqliteLedger {
    fn describe(&self) -> String {
        format!("local ledger {}", self.path.display())
    }

    async fn migration(
        &self,
        project: &str,
        migration: &str,
        digest: &str,
    ) -> Result<Option<MigrationRecord>, LedgerError> {
        SqliteLedger::migration(self, project, migration, digest)
    }

    async fn record_migration(&self, record: &MigrationRecord) -> Result<(), LedgerError> {
        SqliteLedger::record_migration(self, record)
    }

    async fn resolve_migration(&self, r: &Resolution) -> Result<MigrationRecord, LedgerError> {
        SqliteLedger::resolve_migration(self, r)
    }

    async fn record_deploy(&self, deploy: &DeployRecord) -> Result<i64, LedgerError> {
        SqliteLedger::record_deploy(self, deploy)
    }

    async fn deploys(
        &self,
        project: Option<&str>,
        service: Option<&str>,
        limit: usize,
    ) -> Result<Vec<DeployRecord>, LedgerError> {
        SqliteLedger::deploys(self, project, service, limit)
    }
}

#[cfg(test)]
mod tests;
