//! The fleet's ledger: PostgreSQL, shared by every host. berth keeps its tables in its
//! own schema (`berth`), which it creates and upgrades itself, one numbered step at a
//! time under an advisory lock, so hosts of different versions starting together agree.
//!
//! Every call has a deadline; a store that does not answer is an error the caller
//! sees (and the agent reports itself degraded), never a hang. Deploys that could not
//! be written are kept in memory and written when the store answers again.

use std::path::Path;
use std::str::FromStr;
use std::sync::Mutex as StdMutex;
use std::time::Duration;

use futures_util::future::BoxFuture;
use openssl::ssl::{SslConnector, SslMethod, SslVerifyMode};
use postgres_openssl::MakeTlsConnector;
use tokio::sync::Mutex;
use tokio_postgres::config::{Host, SslMode};
use tokio_postgres::{Client, Config};

use super::*;

/// Schema steps, in order; step `i` brings the schema to version `i + 1`.
const SCHEMA: &[&str] = &[
    // 1: migrations with their claim, deploys of every host, leases, converged targets.
    "CREATE TABLE berth.migrations (
       project text NOT NULL, migration text NOT NULL, digest text NOT NULL,
       status text NOT NULL, image text NOT NULL DEFAULT '', commit_sha text,
       host text, container text, started_at text NOT NULL, ended_at text,
       exit_code bigint, duration_ms bigint NOT NULL DEFAULT 0,
       output text NOT NULL DEFAULT '', attempts integer NOT NULL DEFAULT 0,
       resolved_by text,
       PRIMARY KEY (project, migration, digest));
     CREATE TABLE berth.deploys (
       id bigserial PRIMARY KEY, project text NOT NULL, host text, commit_sha text,
       started_at text NOT NULL, ended_at text NOT NULL,
       services jsonb NOT NULL, migrations jsonb NOT NULL);
     CREATE INDEX deploys_project ON berth.deploys (project, id);
     CREATE TABLE berth.leases (
       project text NOT NULL, service text NOT NULL, host text NOT NULL,
       expires_at timestamptz NOT NULL,
       PRIMARY KEY (project, service, host));
     CREATE TABLE berth.converged (
       project text NOT NULL, service text NOT NULL, host text NOT NULL,
       target text NOT NULL, since text NOT NULL,
       PRIMARY KEY (project, service, host));",
];

/// Advisory-lock namespace of schema upgrades (any constant shared by all hosts).
const SCHEMA_LOCK: i64 = 0x6265_7274_6800;
/// How long one call may take, connecting included.
const CALL_DEADLINE: Duration = Duration::from_secs(10);
/// Deploys kept in memory while the store is away.
const PENDING_MAX: usize = 1000;

/// Where the fleet's PostgreSQL is and how to reach it.
#[derive(Clone)]
pub struct PgTarget {
    config: Config,
    /// Verify the server certificate against the trusted roots.
    verify_ca: bool,
    /// Also check that it names the host.
    verify_host: bool,
    /// A CA file to trust instead of the system's roots.
    root_cert: Option<std::path::PathBuf>,
}

impl std::fmt::Debug for PgTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.describe())
    }
}

impl PgTarget {
    /// Parses a `postgres://` URL. What it leaves out comes from the `PG*` environment
    /// (`PGHOST`, `PGPORT`, `PGUSER`, `PGPASSWORD`, `PGDATABASE`, `PGSSLMODE`,
    /// `PGSSLROOTCERT`) through `env`, and the password from `password_file` when given.
    /// `sslmode` takes libpq's words: `disable`, `prefer`, `require` (encrypted, no
    /// certificate check), `verify-ca` and `verify-full`.
    pub fn parse(
        url: &str,
        password_file: Option<&Path>,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<PgTarget, String> {
        // libpq's verify modes are not in the driver's parser: take sslmode and
        // sslrootcert out and apply them here.
        let (base, query) = url.split_once('?').unwrap_or((url, ""));
        let mut ssl_mode = None;
        let mut root_cert = None;
        let mut rest = Vec::new();
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            match pair.split_once('=') {
                Some(("sslmode", v)) => ssl_mode = Some(v.to_string()),
                Some(("sslrootcert", v)) => root_cert = Some(v.to_string()),
                _ => rest.push(pair),
            }
        }
        let cleaned = if rest.is_empty() {
            base.to_string()
        } else {
            format!("{base}?{}", rest.join("&"))
        };
        let mut config = Config::from_str(&cleaned).map_err(|e| {
            // The driver's message may quote the URL, password and all.
            let e = crate::urls::redact_urls_in(&e.to_string());
            format!("--coordination: not a PostgreSQL URL ({e}); expected postgres://USER@HOST:PORT/DATABASE?sslmode=verify-full")
        })?;
        if config.get_hosts().is_empty() {
            config.host(env("PGHOST").as_deref().unwrap_or("localhost"));
        }
        if config.get_ports().is_empty() {
            if let Some(p) = env("PGPORT") {
                let port = p
                    .parse::<u16>()
                    .map_err(|_| format!("PGPORT {p:?} is not a port number"))?;
                config.port(port);
            }
        }
        if config.get_user().is_none() {
            if let Some(u) = env("PGUSER") {
                config.user(u);
            }
        }
        if config.get_dbname().is_none() {
            if let Some(d) = env("PGDATABASE") {
                config.dbname(d);
            }
        }
        if config.get_user().is_none() {
            return Err("--coordination: no user; put it in the URL (postgres://berth@db/berth) or set PGUSER".into());
        }
        if let Some(file) = password_file {
            let text = std::fs::read_to_string(file)
                .map_err(|e| format!("--coordination-password-file {}: {e}", file.display()))?;
            config.password(text.trim_end_matches(['\r', '\n']));
        } else if config.get_password().is_none() {
            if let Some(p) = env("PGPASSWORD") {
                config.password(p);
            }
        }
        let mode = ssl_mode.or_else(|| env("PGSSLMODE"));
        let (ssl, verify_ca, verify_host) = match mode.as_deref().unwrap_or("prefer") {
            "disable" => (SslMode::Disable, false, false),
            "allow" | "prefer" => (SslMode::Prefer, false, false),
            "require" => (SslMode::Require, false, false),
            "verify-ca" => (SslMode::Require, true, false),
            "verify-full" => (SslMode::Require, true, true),
            other => {
                return Err(format!(
                    "--coordination: unknown sslmode {other:?}; use disable, prefer, require, verify-ca or verify-full"
                ))
            }
        };
        config.ssl_mode(ssl);
        config.connect_timeout(Duration::from_secs(5));
        config.application_name("berth");
        config.keepalives_idle(Duration::from_secs(30));
        Ok(PgTarget {
            config,
            verify_ca,
            verify_host,
            root_cert: root_cert
                .or_else(|| env("PGSSLROOTCERT"))
                .map(std::path::PathBuf::from),
        })
    }

    /// `postgres://user@host:port/db`, never with the password.
    pub fn describe(&self) -> String {
        let host = match self.config.get_hosts().first() {
            Some(Host::Tcp(h)) => h.clone(),
            Some(Host::Unix(p)) => p.display().to_string(),
            None => "localhost".into(),
        };
        let port = self.config.get_ports().first().copied().unwrap_or(5432);
        format!(
            "postgres://{}@{host}:{port}/{}",
            self.config.get_user().unwrap_or(""),
            self.config
                .get_dbname()
                .or(self.config.get_user())
                .unwrap_or("")
        )
    }

    fn tls(&self) -> Result<MakeTlsConnector, String> {
        let mut builder =
            SslConnector::builder(SslMethod::tls()).map_err(|e| format!("TLS setup: {e}"))?;
        if let Some(ca) = &self.root_cert {
            builder
                .set_ca_file(ca)
                .map_err(|e| format!("sslrootcert {}: {e}", ca.display()))?;
        }
        if !self.verify_ca {
            builder.set_verify(SslVerifyMode::NONE);
        }
        let mut tls = MakeTlsConnector::new(builder.build());
        let verify_host = self.verify_host;
        tls.set_callback(move |connect, _domain| {
            connect.set_verify_hostname(verify_host);
            Ok(())
        });
        Ok(tls)
    }
}

/// The ledger in PostgreSQL.
pub struct PgLedger {
    target: PgTarget,
    tls: MakeTlsConnector,
    client: Mutex<Option<Client>>,
    pending: StdMutex<Vec<DeployRecord>>,
}

type Call<'c, T> = BoxFuture<'c, Result<T, tokio_postgres::Error>>;

impl PgLedger {
    /// A ledger for `target`. Nothing connects yet: the first call does, creating or
    /// upgrading berth's schema.
    pub fn new(target: PgTarget) -> Result<Self, LedgerError> {
        let tls = target.tls().map_err(|message| LedgerError {
            path: target.describe(),
            message,
        })?;
        Ok(Self {
            target,
            tls,
            client: Mutex::new(None),
            pending: StdMutex::new(Vec::new()),
        })
    }

    fn err(&self, message: impl std::fmt::Display) -> LedgerError {
        LedgerError {
            path: self.target.describe(),
            message: message.to_string(),
        }
    }

    async fn connect(&self) -> Result<Client, String> {
        let (mut client, connection) = self
            .target
            .config
            .connect(self.tls.clone())
            .await
            .map_err(|e| describe_pg(&e))?;
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(error = %e, "coordination connection closed");
            }
        });
        upgrade_schema(&mut client)
            .await
            .map_err(|e| describe_pg(&e))?;
        Ok(client)
    }

    /// Runs `f` with a connected client, within the call deadline. A failed call drops
    /// the connection; the next one connects afresh.
    async fn call<T, F>(&self, what: &str, f: F) -> Result<T, LedgerError>
    where
        F: for<'c> FnOnce(&'c mut Client) -> Call<'c, T>,
    {
        let mut guard = self.client.lock().await;
        let attempt = async {
            if guard.as_ref().is_none_or(|c| c.is_closed()) {
                *guard = Some(self.connect().await?);
            }
            let client = guard.as_mut().expect("connected");
            f(client).await.map_err(|e| describe_pg(&e))
        };
        match tokio::time::timeout(CALL_DEADLINE, attempt).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => {
                *guard = None;
                Err(self.err(format!("{what}: {e}")))
            }
            Err(_) => {
                *guard = None;
                Err(self.err(format!(
                    "{what}: no answer within {}s",
                    CALL_DEADLINE.as_secs()
                )))
            }
        }
    }

    async fn insert_deploy(&self, d: &DeployRecord) -> Result<i64, LedgerError> {
        let services = serde_json::to_string(&d.services).map_err(|e| self.err(e))?;
        let migrations = serde_json::to_string(&d.migrations).map_err(|e| self.err(e))?;
        let d = d.clone();
        self.call("record deploy", move |c| {
            Box::pin(async move {
                let row = c
                    .query_one(
                        "INSERT INTO berth.deploys
                         (project, host, commit_sha, started_at, ended_at, services, migrations)
                         VALUES ($1, $2, $3, $4, $5, ($6::text)::jsonb, ($7::text)::jsonb)
                         RETURNING id",
                        &[
                            &d.project,
                            &d.host,
                            &d.commit,
                            &d.started_at,
                            &d.ended_at,
                            &services,
                            &migrations,
                        ],
                    )
                    .await?;
                Ok(row.get::<_, i64>(0))
            })
        })
        .await
    }

    /// Writes the deploys kept while the store was away, oldest first.
    async fn flush_pending(&self) -> Result<(), LedgerError> {
        loop {
            let next = self
                .pending
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .first()
                .cloned();
            let Some(d) = next else { return Ok(()) };
            self.insert_deploy(&d).await?;
            let mut pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
            if pending.first() == Some(&d) {
                pending.remove(0);
            }
        }
    }
}

/// The driver's error with the server's own message, when there is one; a URL it
/// quotes has its credentials masked.
fn describe_pg(e: &tokio_postgres::Error) -> String {
    crate::urls::redact_urls_in(&describe_pg_raw(e))
}

fn describe_pg_raw(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{}: {}", db.severity(), db.message()),
        None => {
            let mut s = e.to_string();
            let mut source = std::error::Error::source(e);
            while let Some(inner) = source {
                s.push_str(&format!(": {inner}"));
                source = inner.source();
            }
            s
        }
    }
}

/// Creates or upgrades berth's schema: each missing step in one transaction, under an
/// advisory lock so that hosts starting together take turns.
async fn upgrade_schema(client: &mut Client) -> Result<(), tokio_postgres::Error> {
    let tx = client.transaction().await?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&SCHEMA_LOCK])
        .await?;
    // A schema made for berth by an administrator needs no CREATE on the database;
    // only a missing one is created (which does).
    let exists = tx
        .query_opt("SELECT 1 FROM pg_namespace WHERE nspname = 'berth'", &[])
        .await?
        .is_some();
    if !exists {
        tx.batch_execute("CREATE SCHEMA berth").await?;
    }
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS berth.schema_version (
           version integer NOT NULL, applied_at timestamptz NOT NULL DEFAULT now());",
    )
    .await?;
    let current: i32 = tx
        .query_one(
            "SELECT coalesce(max(version), 0) FROM berth.schema_version",
            &[],
        )
        .await?
        .get(0);
    let known = SCHEMA.len() as i32;
    if current > known {
        tracing::warn!(
            schema = current,
            understood = known,
            "the coordination schema is newer than this berth; upgrade berth"
        );
    }
    for (i, step) in SCHEMA.iter().enumerate().skip(current.max(0) as usize) {
        tx.batch_execute(step).await?;
        tx.execute(
            "INSERT INTO berth.schema_version (version) VALUES ($1)",
            &[&(i as i32 + 1)],
        )
        .await?;
        tracing::info!(version = i + 1, "coordination schema upgraded");
    }
    tx.commit().await
}

fn record_from(row: &tokio_postgres::Row) -> MigrationRecord {
    MigrationRecord {
        project: row.get("project"),
        migration: row.get("migration"),
        digest: row.get("digest"),
        image: row.get("image"),
        commit: row.get("commit_sha"),
        started_at: row.get("started_at"),
        ended_at: row.get::<_, Option<String>>("ended_at").unwrap_or_default(),
        exit_code: row.get::<_, Option<i64>>("exit_code").unwrap_or(-1),
        duration_ms: row.get::<_, i64>("duration_ms").max(0) as u64,
        outcome: MigrationOutcome::parse(row.get("status")),
        output: row.get("output"),
        attempts: row.get::<_, i32>("attempts").max(0) as u32,
        host: row.get("host"),
    }
}

fn started_from(row: &tokio_postgres::Row) -> StartedMigration {
    StartedMigration {
        project: row.get("project"),
        migration: row.get("migration"),
        digest: row.get("digest"),
        host: row.get::<_, Option<String>>("host").unwrap_or_default(),
        container: row
            .get::<_, Option<String>>("container")
            .unwrap_or_default(),
        since: row.get("started_at"),
    }
}

const MIGRATION_COLUMNS: &str = "project, migration, digest, status, image, commit_sha, host, container, started_at, ended_at, exit_code, duration_ms, output, attempts";

#[async_trait::async_trait]
impl Ledger for PgLedger {
    fn describe(&self) -> String {
        self.target.describe()
    }

    fn is_shared(&self) -> bool {
        true
    }

    async fn check(&self) -> Result<(), LedgerError> {
        self.call("check", |c| {
            Box::pin(async move { c.simple_query("SELECT 1").await.map(|_| ()) })
        })
        .await?;
        self.flush_pending().await
    }

    async fn migration(
        &self,
        project: &str,
        migration: &str,
        digest: &str,
    ) -> Result<Option<MigrationRecord>, LedgerError> {
        let key = [
            project.to_string(),
            migration.to_string(),
            digest.to_string(),
        ];
        self.call("read migration", move |c| {
            Box::pin(async move {
                let row = c
                    .query_opt(
                        &format!("SELECT {MIGRATION_COLUMNS} FROM berth.migrations
                                  WHERE project = $1 AND migration = $2 AND digest = $3 AND status <> 'started'"),
                        &[&key[0], &key[1], &key[2]],
                    )
                    .await?;
                Ok(row.as_ref().map(record_from))
            })
        })
        .await
    }

    async fn claim_migration(&self, claim: &MigrationClaim) -> Result<Claim, LedgerError> {
        let claim = claim.clone();
        self.call("claim migration", move |c| {
            Box::pin(async move {
                let tx = c.transaction().await?;
                let lock = format!("{}/{}/{}", claim.project, claim.migration, claim.digest);
                tx.execute(
                    "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))",
                    &[&lock],
                )
                .await?;
                let row = tx
                    .query_opt(
                        &format!(
                            "SELECT {MIGRATION_COLUMNS} FROM berth.migrations
                             WHERE project = $1 AND migration = $2 AND digest = $3"
                        ),
                        &[&claim.project, &claim.migration, &claim.digest],
                    )
                    .await?;
                let answer = match &row {
                    Some(r) if r.get::<_, &str>("status") == "succeeded" => Claim::Succeeded,
                    Some(r)
                        if r.get::<_, &str>("status") == "started"
                            && r.get::<_, Option<&str>>("host") != Some(claim.host.as_str()) =>
                    {
                        Claim::RunningElsewhere(started_from(r))
                    }
                    // Ours already (a restart of this host), failed before, or new.
                    Some(r) if r.get::<_, &str>("status") == "started" => Claim::Granted,
                    _ => {
                        tx.execute(
                            "INSERT INTO berth.migrations
                             (project, migration, digest, status, image, commit_sha, host, container, started_at)
                             VALUES ($1, $2, $3, 'started', $4, $5, $6, $7, $8)
                             ON CONFLICT (project, migration, digest) DO UPDATE SET
                               status = 'started', image = EXCLUDED.image,
                               commit_sha = EXCLUDED.commit_sha, host = EXCLUDED.host,
                               container = EXCLUDED.container, started_at = EXCLUDED.started_at,
                               ended_at = NULL, exit_code = NULL, resolved_by = NULL",
                            &[
                                &claim.project,
                                &claim.migration,
                                &claim.digest,
                                &claim.image,
                                &claim.commit,
                                &claim.host,
                                &claim.container,
                                &now_rfc3339(),
                            ],
                        )
                        .await?;
                        Claim::Granted
                    }
                };
                tx.commit().await?;
                Ok(answer)
            })
        })
        .await
    }

    async fn record_migration(&self, m: &MigrationRecord) -> Result<(), LedgerError> {
        let m = m.clone();
        self.call("record migration", move |c| {
            Box::pin(async move {
                // A success is final: nothing overwrites it.
                c.execute(
                    "INSERT INTO berth.migrations
                     (project, migration, digest, status, image, commit_sha, host, started_at,
                      ended_at, exit_code, duration_ms, output, attempts)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, 1)
                     ON CONFLICT (project, migration, digest) DO UPDATE SET
                       status = EXCLUDED.status, image = EXCLUDED.image,
                       commit_sha = EXCLUDED.commit_sha, host = EXCLUDED.host,
                       started_at = EXCLUDED.started_at, ended_at = EXCLUDED.ended_at,
                       exit_code = EXCLUDED.exit_code, duration_ms = EXCLUDED.duration_ms,
                       output = EXCLUDED.output,
                       attempts = berth.migrations.attempts + 1
                     WHERE berth.migrations.status <> 'succeeded'",
                    &[
                        &m.project,
                        &m.migration,
                        &m.digest,
                        &m.outcome.as_str(),
                        &m.image,
                        &m.commit,
                        &m.host,
                        &m.started_at,
                        &m.ended_at,
                        &m.exit_code,
                        &(m.duration_ms as i64),
                        &m.output,
                    ],
                )
                .await
                .map(|_| ())
            })
        })
        .await
    }

    async fn resolve_migration(&self, r: &Resolution) -> Result<MigrationRecord, LedgerError> {
        enum Found {
            Resolved(MigrationRecord),
            AlreadySucceeded(MigrationRecord),
            NotOne(Vec<String>),
        }
        let req = r.clone();
        let found = self
            .call("resolve migration", move |c| {
                Box::pin(async move {
                    let tx = c.transaction().await?;
                    let rows = tx
                        .query(
                            &format!(
                                "SELECT {MIGRATION_COLUMNS} FROM berth.migrations
                                 WHERE ($1::text IS NULL OR project = $1) AND migration = $2 AND digest = $3
                                 FOR UPDATE"
                            ),
                            &[&req.project, &req.migration, &req.digest],
                        )
                        .await?;
                    let [row] = rows.as_slice() else {
                        return Ok(Found::NotOne(
                            rows.iter().map(|r| r.get("project")).collect(),
                        ));
                    };
                    if row.get::<_, &str>("status") == "succeeded" {
                        return Ok(Found::AlreadySucceeded(record_from(row)));
                    }
                    let project: String = row.get("project");
                    let row = tx
                        .query_one(
                            &format!(
                                "UPDATE berth.migrations SET status = $4, ended_at = $5,
                                   resolved_by = $6, output = output || $7
                                 WHERE project = $1 AND migration = $2 AND digest = $3
                                 RETURNING {MIGRATION_COLUMNS}"
                            ),
                            &[
                                &project,
                                &req.migration,
                                &req.digest,
                                &req.outcome.as_str(),
                                &now_rfc3339(),
                                &req.by,
                                &format!("\n[resolved as {} by {}]", req.outcome.as_str(), req.by),
                            ],
                        )
                        .await?;
                    tx.commit().await?;
                    Ok(Found::Resolved(record_from(&row)))
                })
            })
            .await?;
        match found {
            Found::Resolved(record) => Ok(record),
            Found::AlreadySucceeded(done) => Err(self.err(already_succeeded(&done))),
            Found::NotOne(projects) if projects.is_empty() => Err(self.err(format!(
                "no record of migration {} for {}; check the name and the full digest (berth status lists started migrations)",
                r.migration, r.digest
            ))),
            Found::NotOne(projects) => Err(self.err(format!(
                "migration {} for {} is known in projects {}; name one with --project",
                r.migration,
                r.digest,
                projects.join(", ")
            ))),
        }
    }

    async fn started_migrations(
        &self,
        project: Option<&str>,
    ) -> Result<Vec<StartedMigration>, LedgerError> {
        let project = project.map(str::to_string);
        self.call("read started migrations", move |c| {
            Box::pin(async move {
                let rows = c
                    .query(
                        &format!(
                            "SELECT {MIGRATION_COLUMNS} FROM berth.migrations
                             WHERE status = 'started' AND ($1::text IS NULL OR project = $1)
                             ORDER BY started_at"
                        ),
                        &[&project],
                    )
                    .await?;
                Ok(rows.iter().map(started_from).collect())
            })
        })
        .await
    }

    async fn record_deploy(&self, deploy: &DeployRecord) -> Result<i64, LedgerError> {
        let flushed = self.flush_pending().await;
        match flushed {
            Ok(()) => match self.insert_deploy(deploy).await {
                Ok(id) => return Ok(id),
                Err(e) => self.keep(deploy, e),
            },
            Err(e) => self.keep(deploy, e),
        }
    }

    async fn deploys(
        &self,
        project: Option<&str>,
        service: Option<&str>,
        limit: usize,
    ) -> Result<Vec<DeployRecord>, LedgerError> {
        let project = project.map(str::to_string);
        let service = service.map(str::to_string);
        let wanted = service.clone();
        let limit = limit.min(i64::MAX as usize) as i64;
        let rows = self
            .call("read deploys", move |c| {
                Box::pin(async move {
                    c.query(
                        "SELECT id, project, host, commit_sha, started_at, ended_at,
                                services::text, migrations::text
                         FROM berth.deploys
                         WHERE ($1::text IS NULL OR project = $1)
                           AND ($2::text IS NULL OR services @> jsonb_build_array(jsonb_build_object('service', $2::text)))
                         ORDER BY id DESC LIMIT $3",
                        &[&project, &wanted, &limit],
                    )
                    .await
                })
            })
            .await?;
        let mut out = Vec::new();
        for row in rows {
            let mut services: Vec<ServiceDeploy> =
                serde_json::from_str(row.get(6)).map_err(|e| self.err(e))?;
            if let Some(s) = service.as_deref() {
                services.retain(|d| d.service == s);
            }
            out.push(DeployRecord {
                id: row.get(0),
                project: row.get(1),
                host: row.get(2),
                commit: row.get(3),
                started_at: row.get(4),
                ended_at: row.get(5),
                services,
                migrations: serde_json::from_str(row.get(7)).map_err(|e| self.err(e))?,
            });
        }
        Ok(out)
    }

    async fn acquire_lease(
        &self,
        key: &LeaseKey,
        max: u32,
        ttl: Duration,
    ) -> Result<LeaseAnswer, LedgerError> {
        let key = key.clone();
        let ttl_ms = ttl.as_millis().min(i64::MAX as u128) as i64;
        self.call("acquire lease", move |c| {
            Box::pin(async move {
                let tx = c.transaction().await?;
                let lock = format!("lease/{}/{}", key.project, key.service);
                tx.execute(
                    "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))",
                    &[&lock],
                )
                .await?;
                tx.execute(
                    "DELETE FROM berth.leases WHERE project = $1 AND service = $2 AND expires_at < now()",
                    &[&key.project, &key.service],
                )
                .await?;
                let holders: Vec<String> = tx
                    .query(
                        "SELECT host FROM berth.leases WHERE project = $1 AND service = $2 ORDER BY host",
                        &[&key.project, &key.service],
                    )
                    .await?
                    .iter()
                    .map(|r| r.get(0))
                    .collect();
                let answer = if holders.contains(&key.host) || holders.len() < max as usize {
                    tx.execute(
                        "INSERT INTO berth.leases (project, service, host, expires_at)
                         VALUES ($1, $2, $3, now() + make_interval(secs => $4::bigint / 1000.0))
                         ON CONFLICT (project, service, host) DO UPDATE SET expires_at = EXCLUDED.expires_at",
                        &[&key.project, &key.service, &key.host, &ttl_ms],
                    )
                    .await?;
                    LeaseAnswer::Held
                } else {
                    LeaseAnswer::Busy(holders)
                };
                tx.commit().await?;
                Ok(answer)
            })
        })
        .await
    }

    async fn release_lease(&self, key: &LeaseKey) -> Result<(), LedgerError> {
        let key = key.clone();
        self.call("release lease", move |c| {
            Box::pin(async move {
                c.execute(
                    "DELETE FROM berth.leases WHERE project = $1 AND service = $2 AND host = $3",
                    &[&key.project, &key.service, &key.host],
                )
                .await
                .map(|_| ())
            })
        })
        .await
    }

    async fn record_converged(
        &self,
        project: &str,
        service: &str,
        host: &str,
        target: &str,
    ) -> Result<(), LedgerError> {
        let args = [
            project.to_string(),
            service.to_string(),
            host.to_string(),
            target.to_string(),
            now_rfc3339(),
        ];
        self.call("record converged", move |c| {
            Box::pin(async move {
                c.execute(
                    "INSERT INTO berth.converged (project, service, host, target, since)
                     VALUES ($1, $2, $3, $4, $5)
                     ON CONFLICT (project, service, host) DO UPDATE
                       SET target = EXCLUDED.target, since = EXCLUDED.since
                       WHERE berth.converged.target <> EXCLUDED.target",
                    &[&args[0], &args[1], &args[2], &args[3], &args[4]],
                )
                .await
                .map(|_| ())
            })
        })
        .await
    }

    async fn converged_since(
        &self,
        project: &str,
        service: &str,
        host: &str,
        target: &str,
    ) -> Result<Option<String>, LedgerError> {
        let args = [
            project.to_string(),
            service.to_string(),
            host.to_string(),
            target.to_string(),
        ];
        self.call("read converged", move |c| {
            Box::pin(async move {
                let row = c
                    .query_opt(
                        "SELECT since FROM berth.converged
                         WHERE project = $1 AND service = $2 AND host = $3 AND target = $4",
                        &[&args[0], &args[1], &args[2], &args[3]],
                    )
                    .await?;
                Ok(row.map(|r| r.get(0)))
            })
        })
        .await
    }
}

impl PgLedger {
    fn keep(&self, deploy: &DeployRecord, e: LedgerError) -> Result<i64, LedgerError> {
        let mut pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        if pending.len() >= PENDING_MAX {
            pending.remove(0);
        }
        pending.push(deploy.clone());
        Err(self.err(format!(
            "{}; the deploy is kept in memory ({} waiting) and written when the store answers",
            e.message,
            pending.len()
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env_of(pairs: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |k| {
            pairs
                .iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| v.to_string())
        }
    }

    #[test]
    fn url_and_environment_fill_each_other_and_the_password_never_shows() {
        let t = PgTarget::parse(
            "postgres://berth:s3cret@db.internal:6432/fleet?sslmode=verify-full",
            None,
            &env_of(&[]),
        )
        .unwrap();
        assert_eq!(t.describe(), "postgres://berth@db.internal:6432/fleet");
        assert!(t.verify_ca && t.verify_host);
        assert!(!format!("{t:?}").contains("s3cret"));

        let t = PgTarget::parse(
            "postgres://db.internal/fleet",
            None,
            &env_of(&[
                ("PGUSER", "deployer"),
                ("PGPASSWORD", "pw"),
                ("PGSSLMODE", "verify-ca"),
            ]),
        )
        .unwrap();
        assert_eq!(t.describe(), "postgres://deployer@db.internal:5432/fleet");
        assert_eq!(t.config.get_password(), Some(&b"pw"[..]));
        assert!(t.verify_ca && !t.verify_host);
        assert_eq!(t.config.get_ssl_mode(), SslMode::Require);
    }

    #[test]
    fn a_password_file_wins_and_bad_input_says_what_to_do() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("pw");
        std::fs::write(&file, "from-file\n").unwrap();
        let t = PgTarget::parse(
            "postgres://berth@db/fleet?sslmode=disable",
            Some(&file),
            &env_of(&[("PGPASSWORD", "from-env")]),
        )
        .unwrap();
        assert_eq!(t.config.get_password(), Some(&b"from-file"[..]));
        assert_eq!(t.config.get_ssl_mode(), SslMode::Disable);

        let e = PgTarget::parse("postgres://berth@db/x?sslmode=strict", None, &env_of(&[]))
            .unwrap_err();
        assert_eq!(e, "--coordination: unknown sslmode \"strict\"; use disable, prefer, require, verify-ca or verify-full");
        let e = PgTarget::parse("postgres://db/x", None, &env_of(&[])).unwrap_err();
        assert!(e.contains("no user"), "{e}");
        let e = PgTarget::parse(
            "postgres://u@db/x",
            Some(&dir.path().join("none")),
            &env_of(&[]),
        )
        .unwrap_err();
        assert!(e.starts_with("--coordination-password-file"), "{e}");
    }
}
