//! The fleet's ledger: PostgreSQL, shared by every host. berth keeps its tables in its
//! own schema (`berth`), which it creates and upgrades itself, one numbered step at a
//! time under an advisory lock, so hosts of different versions starting together agree.
//!
//! Every call has a deadline; a store that does not answer is an error the caller
//! sees (and the agent reports itself degraded), never a hang. Deploys that could not
//! be written are kept in memory and written when the store answers again.
//!
//! `target` reads the URL and sets up TLS, `schema` creates and upgrades the tables,
//! `store` holds the calls of the [`Ledger`] trait.

mod schema;
mod store;
mod target;

use std::sync::Mutex as StdMutex;
use std::time::Duration;

use futures_util::future::BoxFuture;
use postgres_openssl::MakeTlsConnector;
use tokio::sync::Mutex;
use tokio_postgres::Client;

use super::*;
use schema::upgrade_schema;
pub use target::PgTarget;

/// How long one call may take, connecting included.
const CALL_DEADLINE: Duration = Duration::from_secs(10);
/// Deploys kept in memory while the store is away.
const PENDING_MAX: usize = 1000;

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

#[cfg(test)]
mod tests;
