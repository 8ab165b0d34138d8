//! The command line: clap definitions and one function per command. `main` only calls
//! [`run`].

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
    };
    ExitCode::from(code)
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime starts")
}
