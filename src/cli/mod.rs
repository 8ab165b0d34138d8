//! The command line: clap definitions and one function per command. `main` only calls
//! [`run`].

mod apply;
mod history;
mod plan;
mod validate;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

/// Exit statuses scripts can rely on.
pub mod exit {
    /// Success; for `plan`, nothing to change.
    pub const OK: u8 = 0;
    /// Invalid input, a failed service, or an error talking to Docker.
    pub const FAILED: u8 = 1;
    /// Bad usage or an unreadable path.
    pub const USAGE: u8 = 2;
    /// `plan` only: changes are pending.
    pub const CHANGES: u8 = 3;
}

/// GitOps for plain Docker hosts: a git repository holds the desired state of a stack,
/// and berth converges the host's containers to it.
#[derive(Debug, Parser)]
#[command(name = "berth", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// A duration flag: `500ms`, `10s`, `2m`.
#[derive(Debug, Clone, Copy)]
pub struct DurationArg(std::time::Duration);

impl std::str::FromStr for DurationArg {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        crate::model::units::parse_duration(s).map(DurationArg)
    }
}

impl From<DurationArg> for std::time::Duration {
    fn from(d: DurationArg) -> Self {
        d.0
    }
}

/// Flags of `berth apply`.
#[derive(Debug, clap::Args)]
pub struct ApplyArgs {
    /// The desired state: a berth.yaml file or a directory of *.yaml files.
    #[arg(long, short = 'f', env = "BERTH_FILE")]
    pub file: PathBuf,
    /// Where berth keeps what it writes on the host (mounted repository files).
    #[arg(long, env = "BERTH_STATE_DIR", default_value = "/var/lib/berth")]
    pub state_dir: PathBuf,
    /// Retries of a failed service within this run, with exponential backoff.
    #[arg(long, env = "BERTH_RETRIES", default_value_t = 0)]
    pub retries: u32,
    /// The first retry delay; later ones double.
    #[arg(long, env = "BERTH_BACKOFF_INITIAL", default_value = "10s")]
    pub backoff_initial: DurationArg,
    /// The longest retry delay.
    #[arg(long, env = "BERTH_BACKOFF_MAX", default_value = "5m")]
    pub backoff_max: DurationArg,
    /// Services converged at the same time (dependencies still go first).
    #[arg(long, env = "BERTH_CONCURRENCY", default_value_t = 4)]
    pub concurrency: usize,
    /// Pause between taking an old replica off its networks and stopping it.
    #[arg(long, env = "BERTH_DRAIN", default_value = "1s")]
    pub drain: DurationArg,
    /// Keep services that left the desired state running.
    #[arg(long, env = "BERTH_NO_PRUNE")]
    pub no_prune: bool,
    /// The commit being applied, recorded in container labels.
    #[arg(long, env = "BERTH_COMMIT")]
    pub commit: Option<String>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Output::Human, env = "BERTH_OUTPUT")]
    pub output: Output,
}

/// Flags of `berth history`.
#[derive(Debug, clap::Args)]
pub struct HistoryArgs {
    /// Where the ledger lives (`<state-dir>/ledger.db`).
    #[arg(long, env = "BERTH_STATE_DIR", default_value = "/var/lib/berth")]
    pub state_dir: PathBuf,
    /// Only this project.
    #[arg(long, env = "BERTH_PROJECT")]
    pub project: Option<String>,
    /// Only deploys that touched this service.
    #[arg(long)]
    pub service: Option<String>,
    /// At most this many deploys, newest first.
    #[arg(long, default_value_t = 20)]
    pub limit: usize,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Output::Human, env = "BERTH_OUTPUT")]
    pub output: Output,
}

/// Output formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Output {
    /// Readable text.
    Human,
    /// One JSON document.
    Json,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Check a desired-state file or directory: exit 0 valid, 1 invalid (every error
    /// printed with file:line:col), 2 unreadable.
    Validate {
        /// A berth.yaml file, or a directory whose *.yaml files are merged.
        #[arg(default_value = ".")]
        path: PathBuf,
        /// Output format.
        #[arg(long, value_enum, default_value_t = Output::Human, env = "BERTH_OUTPUT")]
        output: Output,
    },
    /// Show what `apply` would change on this host, without acting: exit 0 in sync,
    /// 3 changes pending, 1 invalid input or Docker error, 2 usage error.
    Plan {
        /// The desired state: a berth.yaml file or a directory of *.yaml files.
        #[arg(long, short = 'f', env = "BERTH_FILE")]
        file: PathBuf,
        /// Output format.
        #[arg(long, value_enum, default_value_t = Output::Human, env = "BERTH_OUTPUT")]
        output: Output,
    },
    /// Converge this host to the desired state once and exit: 0 converged, 1 a service
    /// failed (each said, with what still serves), 2 invalid input or usage.
    Apply(ApplyArgs),
    /// The deploy log: per apply, its commit and time, each service's image before and
    /// after with the outcome, and the migrations run.
    History(HistoryArgs),
}

/// Parses the command line and runs the command.
pub fn run() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() {
                exit::USAGE
            } else {
                exit::OK
            });
        }
    };
    let code = match cli.command {
        Command::Validate { path, output } => validate::run(&path, output),
        Command::Plan { file, output } => runtime().block_on(plan::run(&file, output)),
        Command::History(args) => history::run(&args),
        Command::Apply(args) => {
            init_logs();
            runtime().block_on(apply::run(&args))
        }
    };
    ExitCode::from(code)
}

/// Logs go to stderr so that stdout holds only the command's answer; `RUST_LOG`
/// filters them.
fn init_logs() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false)
        .try_init();
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime starts")
}
