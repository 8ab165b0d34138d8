//! The command line: clap definitions and one function per command. `main` only calls
//! [`run`]. The commands and their dispatch are here, their flags in `args`, logging in
//! `logs`.

mod adopt;
mod agent;
mod apply;
mod args;
mod bump;
mod config;
mod convert;
mod coordination;
mod history;
mod logs;
mod pause;
mod plan;
mod progress;
mod rollback;
mod secrets;
mod source;
mod status;
mod validate;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

pub(crate) use args::*;
pub(crate) use coordination::CoordinationArgs;
pub(crate) use logs::LogFormat;
use logs::{init_logs, init_logs_at};

/// Exit statuses scripts can rely on.
pub(crate) mod exit {
    /// Success; for `plan`, nothing to change.
    pub(crate) const OK: u8 = 0;
    /// Invalid input (validate, plan), a failed service, or an error talking to Docker.
    pub(crate) const FAILED: u8 = 1;
    /// Bad usage or an unreadable path; for `apply`, also invalid input.
    pub(crate) const USAGE: u8 = 2;
    /// `plan` only: changes are pending.
    pub(crate) const CHANGES: u8 = 3;
}

/// GitOps for plain Docker hosts: a git repository holds the desired state of a stack,
/// and berth converges the host's containers to it.
#[derive(Debug, Parser)]
#[command(name = "berth", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
    /// Log format: `json` lines, readable `text`, or `auto` (text on a terminal, JSON
    /// otherwise). `RUST_LOG` filters (default `info`).
    #[arg(long, global = true, value_enum, env = "BERTH_LOG_FORMAT", default_value_t = LogFormat::Auto)]
    log_format: LogFormat,
}

/// Prints a command's answer: pretty JSON, or the text `human` renders.
fn print_answer<T: serde::Serialize>(output: Output, value: &T, human: impl FnOnce(&T) -> String) {
    match output {
        Output::Json => println!(
            "{}",
            serde_json::to_string_pretty(value).expect("plain data serializes")
        ),
        Output::Human => print!("{}", human(value)),
    }
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Check a desired-state file or directory: exit 0 valid, 1 invalid (every error
    /// printed with file:line:col), 2 unreadable.
    Validate {
        /// A berth.yaml file, or a directory whose *.yaml files are merged.
        #[arg(default_value = ".")]
        path: PathBuf,
        /// A compose file (repeatable: merged in order, as `docker compose -f`); replaces
        /// PATH.
        #[arg(long, short = 'f', conflicts_with = "path")]
        file: Vec<PathBuf>,
        /// A compose project's name when its files have no top-level `name:` (default:
        /// the directory's name).
        #[arg(long, env = "BERTH_PROJECT", value_name = "NAME")]
        project: Option<String>,
        /// A host path prefix bind mounts may use, `PATH[:rw]` (repeatable; read-only
        /// unless `:rw`).
        #[arg(
            long = "allow-host-path",
            env = "BERTH_ALLOW_HOST_PATH",
            value_delimiter = ',',
            value_name = "PATH[:rw]"
        )]
        allow_host_path: Vec<crate::model::AllowedHostPath>,
        /// Output format.
        #[arg(long, value_enum, default_value_t = Output::Human, env = "BERTH_OUTPUT")]
        output: Output,
    },
    /// Print the resolved desired state as a compose file, as `docker compose config`
    /// does: interpolated, defaults filled in, keys sorted, secrets masked; a format v1
    /// file comes out in compose terms. Exit 0 printed, 1 invalid, 2 unreadable.
    Config(ConfigArgs),
    /// Write a format v1 desired state as a compose file.
    ///
    /// To stdout, or to a new file with `-o OUT`; values as committed, and checked to
    /// read back through berth's compose reader to the same stack. Exit 0 written, 1 invalid or not
    /// convertible (migrations), 2 unreadable or usage.
    Convert(ConvertArgs),
    /// Take over a stack that docker compose runs on this host, keeping its volumes.
    ///
    /// The operator's act, never a commit's: compose's volumes and networks that the
    /// desired state declares under the same names are recorded as berth's to use
    /// (`<state-dir>/adopted.json`; never removed by berth), then compose's containers
    /// are replaced service by service in dependency order: start-first, or stop-first
    /// for a service publishing host ports or updated stop-first (the switch's
    /// downtime). Other compose projects, and what the desired state does not name, are
    /// left alone. Exit 0
    /// switched and converged, 1 a service failed (compose's container of it runs
    /// again) or Docker failed, 2 invalid input or usage. Try `--dry-run` first; see
    /// "Switching from docker compose" in the README.
    Adopt(AdoptArgs),
    /// Show what `apply` would change on this host, without acting: exit 0 in sync,
    /// 3 changes pending, 1 invalid input or Docker error, 2 usage error.
    Plan(PlanArgs),
    /// Converge this host to the desired state once and exit: 0 converged, 1 a service
    /// failed (each said, with what still serves), 2 invalid input or usage.
    Apply(ApplyArgs),
    /// Follow a branch and keep this host converged: the daemon.
    Agent(AgentArgs),
    /// Freeze convergence of one service, or all: neither updated nor healed.
    Pause(PauseArgs),
    /// Lift a pause.
    Resume(PauseArgs),
    /// Release an image: change a service's image in this checkout of the desired-state
    /// repository and commit it (`bump api: v1 → v2`).
    ///
    /// The `image:` value is edited in place (or, for `image: name:${TAG}`, the `.env`
    /// line of the variable), everything else kept byte for byte; the result is checked
    /// with the loader first. Services sharing the line (an anchor, the variable) move
    /// together and are named. Exit 0 committed (or already there), 1 refused or failed
    /// (nothing written), 2 usage.
    Bump(BumpArgs),
    /// Undo the last change of a service's image: show the commit that made it, then
    /// commit its revert (or, when it does not revert cleanly or changed more, the
    /// previous image written as `bump` writes it). Exit 0 committed, 1 refused or
    /// failed, 2 usage.
    Rollback(RollbackArgs),
    /// Per service: desired and running image, healthy replicas, last deploy, state.
    /// Asks the running agent; without one, reads Docker and the ledger.
    Status(StatusArgs),
    /// A complete deploy story on this host, offline, in under a minute: builds demo
    /// images, makes a local desired-state repository, runs the agent, and commits a
    /// bump, a broken release and reverts. Cleans up after itself.
    Demo {
        /// Leave the demo stack and images in place.
        #[arg(long, env = "BERTH_DEMO_KEEP")]
        keep: bool,
    },
    /// The demo's HTTP service (runs inside the demo image).
    #[command(hide = true)]
    DemoServe {
        /// The version it answers with.
        #[arg(long)]
        version: String,
        /// Fail the health check.
        #[arg(long)]
        broken: bool,
    },
    /// The demo's health check (runs inside the demo image).
    #[command(hide = true)]
    DemoProbe,
    /// Prints a shell completion script (bash, zsh, fish, elvish, powershell).
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// The deploy log: per apply, its commit and time, each service's image before and
    /// after with the outcome, and the migrations run.
    History(HistoryArgs),
    /// The migration ledger: runs under way, and settling one whose host never came back.
    #[command(subcommand)]
    Migrations(coordination::MigrationsCommand),
    /// The repository's age-encrypted files (`.age`): a host's recipient, editing one,
    /// encrypting all again after a host joined or left.
    #[command(subcommand)]
    Secrets(secrets::SecretsCommand),
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
        Command::Validate {
            path,
            file,
            project,
            allow_host_path,
            output,
        } => validate::run(
            &paths(path, file),
            &allow_host_path,
            project.as_deref(),
            output,
        ),
        Command::Config(args) => config::run(&args),
        Command::Convert(args) => convert::run(&args),
        Command::Adopt(args) => {
            // stdout holds the plan and the report; the log goes to stderr.
            init_logs(cli.log_format, false);
            runtime().block_on(adopt::run(&args))
        }
        Command::Plan(args) => runtime().block_on(plan::run(&args)),
        Command::History(args) => runtime().block_on(history::run(&args)),
        Command::Migrations(command) => runtime().block_on(coordination::run(&command)),
        Command::Demo { keep } => {
            // The demo tells its own story; the agent's log (RUST_LOG=info) would drown it.
            init_logs_at(LogFormat::Text, false, "off");
            match runtime().block_on(crate::demo::run(crate::demo::DemoOptions { keep })) {
                Ok(()) => exit::OK,
                Err(e) => {
                    eprintln!("error: {e}");
                    exit::FAILED
                }
            }
        }
        Command::DemoServe { version, broken } => {
            match runtime().block_on(crate::demo::serve(version, broken)) {
                Ok(()) => exit::OK,
                Err(e) => {
                    eprintln!("error: {e}");
                    exit::FAILED
                }
            }
        }
        Command::DemoProbe => {
            if runtime().block_on(crate::demo::probe()) {
                exit::OK
            } else {
                exit::FAILED
            }
        }
        Command::Status(args) => runtime().block_on(status::run(&args)),
        Command::Completions { shell } => {
            use clap::CommandFactory;
            use std::io::Write;
            let mut script = Vec::new();
            clap_complete::generate(shell, &mut Cli::command(), "berth", &mut script);
            // A closed pipe (`| head`) is not an error worth a panic.
            let _ = std::io::stdout().write_all(&script);
            exit::OK
        }
        Command::Bump(args) => bump::run(&args),
        Command::Secrets(command) => secrets::run(&command),
        Command::Rollback(args) => rollback::run(&args),
        Command::Pause(args) => runtime().block_on(pause::run(&args, true)),
        Command::Resume(args) => runtime().block_on(pause::run(&args, false)),
        Command::Apply(args) => {
            // stdout holds the report; the log goes to stderr, where a terminal gets
            // live progress instead of the info lines.
            if progress::wanted() {
                init_logs_at(cli.log_format, false, "warn");
            } else {
                init_logs(cli.log_format, false);
            }
            runtime().block_on(apply::run(&args))
        }
        Command::Agent(args) => {
            init_logs(cli.log_format, true);
            runtime().block_on(agent::run(args))
        }
    };
    ExitCode::from(code)
}

/// The desired state's paths: the `--file`s given, else the one PATH.
fn paths(path: PathBuf, files: Vec<PathBuf>) -> Vec<PathBuf> {
    if files.is_empty() {
        vec![path]
    } else {
        files
    }
}

pub(super) fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime starts")
}

#[cfg(test)]
mod tests;
