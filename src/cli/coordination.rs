//! `--coordination`: the embedded ledger of one host, or the PostgreSQL a fleet shares;
//! and `berth migrations`, which reads and settles the migration ledger.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use clap::ValueEnum;

use super::{exit, Output};
use crate::ledger::{Ledger, MigrationOutcome, PgLedger, PgTarget, Resolution, SqliteLedger};

/// Where migrations and deploys are recorded, and how hosts of a fleet agree.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct CoordinationArgs {
    /// `local` (the embedded ledger in the state dir; one host) or a PostgreSQL URL
    /// shared by every host of a fleet: postgres://USER@HOST:PORT/DB?sslmode=verify-full.
    /// What the URL leaves out comes from PGHOST, PGPORT, PGUSER, PGPASSWORD,
    /// PGDATABASE, PGSSLMODE and PGSSLROOTCERT.
    #[arg(
        long,
        env = "BERTH_COORDINATION",
        default_value = "local",
        hide_env_values = true
    )]
    pub coordination: String,
    /// A file holding the PostgreSQL password (instead of PGPASSWORD).
    #[arg(long, env = "BERTH_COORDINATION_PASSWORD_FILE")]
    pub coordination_password_file: Option<PathBuf>,
}

impl CoordinationArgs {
    /// True for the embedded ledger.
    pub(crate) fn is_local(&self) -> bool {
        self.coordination == "local"
    }

    /// Opens the ledger; `local` lives at `<state_dir>/ledger.db`.
    pub(crate) fn open(&self, state_dir: &Path) -> Result<Arc<dyn Ledger>, String> {
        if self.is_local() {
            return SqliteLedger::open(&state_dir.join("ledger.db"))
                .map(|l| Arc::new(l) as Arc<dyn Ledger>)
                .map_err(|e| e.to_string());
        }
        if !self.coordination.starts_with("postgres://")
            && !self.coordination.starts_with("postgresql://")
        {
            return Err(format!(
                "--coordination {:?}: use `local` or a postgres:// URL",
                crate::urls::redact_url(&self.coordination)
            ));
        }
        let target = PgTarget::parse(
            &self.coordination,
            self.coordination_password_file.as_deref(),
            &|k| std::env::var(k).ok(),
        )?;
        PgLedger::new(target)
            .map(|l| Arc::new(l) as Arc<dyn Ledger>)
            .map_err(|e| e.to_string())
    }
}

/// How an operator settles a migration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(super) enum Settled {
    /// It ran to the end: the gated services may move.
    Succeeded,
    /// It did not: it runs again (on whichever host claims it first).
    Failed,
}

/// `berth migrations …`.
#[derive(Debug, clap::Subcommand)]
pub(super) enum MigrationsCommand {
    /// Migrations recorded as started with no result yet, with their host and since when.
    List {
        #[command(flatten)]
        ledger: LedgerArgs,
        /// Only this project.
        #[arg(long, env = "BERTH_PROJECT")]
        project: Option<String>,
        /// Output format.
        #[arg(long, value_enum, default_value_t = Output::Human, env = "BERTH_OUTPUT")]
        output: Output,
    },
    /// Settle a migration whose host never came back: record it succeeded or failed.
    /// A success is final; a failed one runs again.
    Resolve {
        /// The migration's name.
        name: String,
        /// The image digest it ran for (sha256:…, as `berth migrations list` shows).
        #[arg(long = "image")]
        image: String,
        /// The result to record.
        #[arg(long = "as", value_enum)]
        outcome: Settled,
        #[command(flatten)]
        ledger: LedgerArgs,
        /// The project (needed when several know this migration and digest).
        #[arg(long, env = "BERTH_PROJECT")]
        project: Option<String>,
    },
}

/// The ledger a command reads.
#[derive(Debug, Clone, clap::Args)]
pub(super) struct LedgerArgs {
    #[command(flatten)]
    pub coordination: CoordinationArgs,
    /// Where the local ledger lives (`<state-dir>/ledger.db`).
    #[arg(long, env = "BERTH_STATE_DIR", default_value = "/var/lib/berth")]
    pub state_dir: PathBuf,
}

/// Runs `berth migrations …`.
pub(super) async fn run(command: &MigrationsCommand) -> u8 {
    let ledger_args = match command {
        MigrationsCommand::List { ledger, .. } | MigrationsCommand::Resolve { ledger, .. } => {
            ledger
        }
    };
    let ledger = match ledger_args.coordination.open(&ledger_args.state_dir) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("error: {e}");
            return exit::USAGE;
        }
    };
    match command {
        MigrationsCommand::List {
            project, output, ..
        } => match ledger.started_migrations(project.as_deref()).await {
            Ok(list) => {
                super::print_answer(*output, &list, |list| {
                    if list.is_empty() {
                        return "no migration is recorded as started without a result\n".into();
                    }
                    list.iter()
                        .map(|m| {
                            format!(
                                "{} {} {}: started on {} at {} (container {})\n",
                                m.project, m.migration, m.digest, m.host, m.since, m.container
                            )
                        })
                        .collect()
                });
                exit::OK
            }
            Err(e) => {
                eprintln!("error: {e}");
                exit::FAILED
            }
        },
        MigrationsCommand::Resolve {
            name,
            image,
            outcome,
            project,
            ..
        } => {
            let resolution = Resolution {
                project: project.clone(),
                migration: name.clone(),
                digest: image.clone(),
                outcome: match outcome {
                    Settled::Succeeded => MigrationOutcome::Succeeded,
                    Settled::Failed => MigrationOutcome::Failed,
                },
                by: format!(
                    "{}@{}",
                    std::env::var("USER").unwrap_or_else(|_| "operator".into()),
                    crate::host::hostname()
                ),
            };
            match ledger.resolve_migration(&resolution).await {
                Ok(r) => {
                    println!(
                        "migration {} of {} for {} recorded as {}",
                        r.migration,
                        r.project,
                        r.digest,
                        r.outcome.as_str()
                    );
                    exit::OK
                }
                Err(e) => {
                    eprintln!("error: {e}");
                    exit::FAILED
                }
            }
        }
    }
}
