//! The ledger's calls on PostgreSQL: each one statement (or one transaction) through
//! `PgLedger::call`, within its deadline.

use super::*;

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
                // A result is this host's to record only while the row is its own claim
                // under way (or there is no row): a success is final, another host's
                // claim is never overwritten, and a leftover container whose result was
                // recorded already is not counted twice.
                let written = c.execute(
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
                     WHERE berth.migrations.status = 'started'
                       AND COALESCE(berth.migrations.host, '') = COALESCE(EXCLUDED.host, '')",
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
                .await?;
                if written == 0 {
                    tracing::warn!(project = %m.project, migration = %m.migration, host = ?m.host, "migration result not recorded: the ledger holds a success or another host's claim for it");
                }
                Ok(())
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

    async fn leases(&self, project: &str) -> Result<Vec<LeaseHeld>, LedgerError> {
        let project = project.to_string();
        self.call("read leases", move |c| {
            Box::pin(async move {
                let rows = c
                    .query(
                        "SELECT service, host,
                                to_char(expires_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')
                         FROM berth.leases WHERE project = $1 AND expires_at > now()
                         ORDER BY service, host",
                        &[&project],
                    )
                    .await?;
                Ok(rows
                    .iter()
                    .map(|r| LeaseHeld {
                        service: r.get(0),
                        host: r.get(1),
                        expires_at: r.get(2),
                    })
                    .collect())
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
