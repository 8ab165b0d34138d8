//! Where logs go and in which format.

use clap::ValueEnum;

/// How logs are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum LogFormat {
    /// Text on a terminal, JSON lines otherwise.
    Auto,
    /// JSON lines.
    Json,
    /// Readable text.
    Text,
}

/// Sets up logging to stdout (the agent) or stderr (commands whose answer is on
/// stdout); `RUST_LOG` filters (default `info`).
pub(super) fn init_logs(format: LogFormat, stdout: bool) {
    init_logs_at(format, stdout, "info")
}

/// [`init_logs`] with another default level.
pub(super) fn init_logs_at(format: LogFormat, stdout: bool, default_level: &str) {
    use std::io::IsTerminal;
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_level));
    let terminal = if stdout {
        std::io::stdout().is_terminal()
    } else {
        std::io::stderr().is_terminal()
    };
    let json = match format {
        LogFormat::Json => true,
        LogFormat::Text => false,
        LogFormat::Auto => !terminal,
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false);
    let _ = match (json, stdout) {
        (true, true) => builder
            .json()
            .flatten_event(true)
            .with_span_list(false)
            .with_writer(std::io::stdout)
            .try_init(),
        (true, false) => builder
            .json()
            .flatten_event(true)
            .with_span_list(false)
            .with_writer(std::io::stderr)
            .try_init(),
        (false, true) => builder
            .with_ansi(terminal)
            .with_writer(std::io::stdout)
            .try_init(),
        (false, false) => builder
            .with_ansi(terminal)
            .with_writer(std::io::stderr)
            .try_init(),
    };
}
