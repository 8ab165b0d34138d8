//! `berth agent`.

use tokio_util::sync::CancellationToken;

use super::{exit, AgentArgs, ConvergeArgs};
use crate::agent::AgentConfig;
use crate::executor::{ApplyOptions, RetryPolicy};

/// Apply options from the converge flags, with `attempts` per target.
pub(super) fn apply_options(c: &ConvergeArgs, attempts: u32) -> ApplyOptions {
    ApplyOptions {
        state_dir: c.state_dir.clone(),
        runtime_dir: c.runtime_dir.clone(),
        retry: retry_policy(c, attempts),
        concurrency: c.concurrency,
        drain: c.drain.into(),
        prune: !c.no_prune,
        ..ApplyOptions::default()
    }
}

fn retry_policy(c: &ConvergeArgs, attempts: u32) -> RetryPolicy {
    RetryPolicy {
        initial: c.backoff_initial.into(),
        max: c.backoff_max.into(),
        max_attempts: attempts.max(1),
        ..RetryPolicy::default()
    }
}

/// Commit statuses to the git host (`--git-status`), or none.
pub(super) fn git_status(args: &AgentArgs) -> Result<crate::commit_status::CommitStatus, String> {
    use crate::commit_status::{Choice, CommitStatus, Provider, Setup};
    let Some(choice) = args.git_status else {
        if args.git_status_token_file.is_some() || args.git_status_url.is_some() {
            return Err("--git-status-token-file and --git-status-url need --git-status github|gitlab|gitea|auto".into());
        }
        return Ok(CommitStatus::disabled());
    };
    let choice = match choice {
        super::args::GitStatusArg::Auto => Choice::Auto,
        super::args::GitStatusArg::Github => Choice::Is(Provider::GitHub),
        super::args::GitStatusArg::Gitlab => Choice::Is(Provider::GitLab),
        super::args::GitStatusArg::Gitea => Choice::Is(Provider::Gitea),
    };
    let target = crate::commit_status::target(&Setup {
        choice,
        repo_url: args.source.repo.clone().unwrap_or_default(),
        token_file: args.git_status_token_file.clone(),
        api_url: args.git_status_url.clone(),
        host_name: args.host.host().name,
    })?;
    tracing::info!(api = target.provider.as_str(), base = %target.base, repo = %target.remote.path, context = %target.context, "commit statuses on");
    CommitStatus::start(
        target,
        crate::commit_status::DEFAULT_RETRY,
        args.notify_ca_file.clone(),
    )
    .map_err(|e| format!("--notify-ca-file {e}"))
}

/// Runs the agent until SIGTERM or SIGINT: the first lets the step in flight finish,
/// the second exits at once.
pub(super) async fn run(args: AgentArgs) -> u8 {
    if args.source.repo.is_none() {
        eprintln!("error: the agent follows a git repository; give --repo (a URL or a local path)");
        return exit::USAGE;
    }
    let fail = |e: String| {
        eprintln!("error: {e}");
        exit::USAGE
    };
    let state_dir = args.converge.state_dir.clone();
    let source = match super::source::git_source(&args.source, &state_dir) {
        Ok(Some(s)) => s,
        Ok(None) => return fail("--repo is required".into()),
        Err(e) => return fail(e),
    };
    let allowed_signers = match super::source::allowed_signers(&args.source) {
        Ok(a) => a,
        Err(e) => return fail(e),
    };
    let webhook_secret = match &args.webhook_secret_file {
        Some(p) => match std::fs::read(p) {
            Ok(b) if String::from_utf8_lossy(&b).trim().is_empty() => {
                return fail(format!(
                    "--webhook-secret-file {} is empty: anyone could sign a webhook with an empty secret; write a long random one (e.g. `openssl rand -hex 32`)",
                    p.display()
                ))
            }
            Ok(b) => Some(String::from_utf8_lossy(&b).trim().as_bytes().to_vec()),
            Err(e) => return fail(format!("--webhook-secret-file {}: {e}", p.display())),
        },
        None => None,
    };
    let notifier = match notifier(&args, &source.url) {
        Ok(n) => n,
        Err(e) => return fail(e),
    };
    let commit_status = match git_status(&args) {
        Ok(c) => c,
        Err(e) => return fail(e),
    };
    let ledger = match args.converge.coordination.open(&state_dir) {
        Ok(l) => l,
        Err(e) => return fail(e),
    };
    let host = match args.host.host_with_keys() {
        Ok(h) => h,
        Err(e) => return fail(e),
    };
    let config = AgentConfig {
        project: args.project.clone(),
        ledger,
        notifier,
        commit_status,
        host,
        source,
        state_dir,
        listen: args.listen,
        interval: args.interval.into(),
        resync: args.resync.into(),
        webhook_secret,
        allowed_signers,
        load: super::source::load_options(&args.source, &args.host, args.project.as_deref()),
        // Within one reconcile nothing is retried; the agent retries across reconciles.
        apply: ApplyOptions {
            host: Some(args.host.host().name),
            fleet_wait: args.fleet_wait.into(),
            lease_ttl: args.lease_ttl,
            allow_host_paths: args.source.allow_host_path.clone(),
            ..apply_options(&args.converge, 1)
        },
        retry: retry_policy(&args.converge, args.max_attempts),
    };
    let shutdown = CancellationToken::new();
    let signals = shutdown.clone();
    tokio::spawn(async move {
        use tokio::signal::unix::{signal, SignalKind};
        let (Ok(mut term), Ok(mut int)) = (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
        ) else {
            return;
        };
        tokio::select! { _ = term.recv() => {}, _ = int.recv() => {} }
        tracing::info!("stopping: finishing the step in flight (signal again to stop at once)");
        signals.cancel();
        tokio::select! { _ = term.recv() => {}, _ = int.recv() => {} }
        tracing::warn!("second signal: stopping now");
        std::process::exit(130);
    });
    let engine = match crate::runtime::DockerEngine::connect().await {
        Ok(engine) => std::sync::Arc::new(engine),
        Err(e) => {
            eprintln!("error: {e}");
            return exit::FAILED;
        }
    };
    match crate::agent::run(config, engine, shutdown).await {
        Ok(()) => exit::OK,
        Err(e) => {
            eprintln!("error: {e}");
            exit::FAILED
        }
    }
}

/// The notifier of `--notify-url`, `--notify-format`, `--notify-ca-file` and
/// `--notify-secret-file`: every URL is checked first, so that a mistyped format or
/// URL stops the start. Errors quote a URL by its format, scheme and host only.
fn notifier(args: &AgentArgs, repository: &str) -> Result<crate::notify::Notifier, String> {
    use crate::notify::Format;
    let format = match args.notify_format {
        super::NotifyFormat::Json => Format::Json,
        super::NotifyFormat::Slack => Format::Slack,
        super::NotifyFormat::Discord => Format::Discord,
        super::NotifyFormat::Teams => Format::Teams,
        super::NotifyFormat::Ntfy => Format::Ntfy,
    };
    for url in &args.notify_url {
        crate::notify::check_url(url, format)
            .map_err(|e| format!("--notify-url {}: {e}", crate::notify::redact_spec(url)))?;
    }
    let secret = match &args.notify_secret_file {
        Some(path) => Some(
            crate::notify::Secret::from_file(path)
                .map_err(|e| format!("--notify-secret-file {e}"))?,
        ),
        None => None,
    };
    crate::notify::Notifier::start(crate::notify::NotifyConfig {
        urls: args.notify_url.clone(),
        format,
        retry: crate::notify::DEFAULT_RETRY,
        ca_file: args.notify_ca_file.clone(),
        secret,
        repository: Some(repository.to_string()),
    })
    .map_err(|e| format!("--notify-ca-file {e}"))
}
