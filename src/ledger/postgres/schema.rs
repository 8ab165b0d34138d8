//! berth's own schema in the fleet's PostgreSQL, and its upgrade step by step.

use tokio_postgres::Client;

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

/// Creates or upgrades berth's schema: each missing step in one transaction, under an
/// advisory lock so that hosts starting together take turns.
pub(super) async fn upgrade_schema(client: &mut Client) -> Result<(), tokio_postgres::Error> {
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
