//! Deployment status written back to the git host: after each reconcile the agent sets
//! a commit status with context `berth/<host>` on the commit it applies, `pending`
//! when it starts on a new commit, `success` once every service converged, `failure`
//! with the first line of the reason when a service failed.
//!
//! GitHub, GitLab and Gitea/Forgejo are spoken to (`provider`), the repository is read
//! from the remote URL (`remote`), and statuses go out in the background (`reporter`):
//! one queue, retried with backoff, never blocking or failing a deploy. The token is
//! read from a file and never logged.

mod provider;
mod remote;
mod reporter;

use std::path::{Path, PathBuf};
use std::time::Duration;

pub(crate) use provider::{describe, Provider, Target, Token};
pub(crate) use remote::Remote;
#[cfg(test)]
pub(crate) use remote::RemoteError;
pub(crate) use reporter::CommitStatus;

use crate::retry::RetryPolicy;

/// A commit status's state, as berth sees it; each provider names it its own way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum State {
    /// A reconcile of the commit started.
    Pending,
    /// Every service converged.
    Success,
    /// A service failed.
    Failure,
}

/// Which API: one, or whichever the remote's host is known to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Choice {
    /// Told from the remote's host (see [`Provider::guess`]).
    Auto,
    /// This one.
    Is(Provider),
}

/// What the operator gave.
#[derive(Debug, Clone)]
pub(crate) struct Setup {
    /// `--git-status`.
    pub choice: Choice,
    /// The remote followed (`--repo`), possibly with credentials.
    pub repo_url: String,
    /// `--git-status-token-file`.
    pub token_file: Option<PathBuf>,
    /// `--git-status-url`: the API base of a self-hosted instance.
    pub api_url: Option<String>,
    /// This host's name, in the context `berth/<host>`.
    pub host_name: String,
}

/// How a failed status is retried: 2 s doubling to 5 min, ±10 %, 10 attempts (about
/// 15 minutes), so that a host's API that is down for a while still gets the outcome.
pub(crate) const DEFAULT_RETRY: RetryPolicy = RetryPolicy {
    initial: Duration::from_secs(2),
    max: Duration::from_secs(300),
    max_attempts: 10,
    jitter: crate::retry::JITTER,
};

/// Where statuses go, or what is wrong with the setup (what, where, what to do). The
/// token's value never appears in an error.
pub(crate) fn target(setup: &Setup) -> Result<Target, String> {
    let remote = Remote::parse(&setup.repo_url).map_err(|e| {
        format!(
            "--git-status: --repo {}: {e}",
            crate::urls::redact_url(&setup.repo_url)
        )
    })?;
    let provider = match setup.choice {
        Choice::Is(p) => p,
        Choice::Auto => Provider::guess(&remote.host).ok_or_else(|| {
            format!(
                "--git-status auto: the host {} is not known to be GitHub, GitLab or Gitea; give --git-status github|gitlab|gitea (and --git-status-url for a self-hosted API)",
                remote.host
            )
        })?,
    };
    provider
        .check_path(&remote)
        .map_err(|e| format!("--git-status {}: {e}", provider.as_str()))?;
    let token_file = setup.token_file.as_deref().ok_or_else(|| {
        format!(
            "--git-status {} needs --git-status-token-file: a file holding an API token that may set commit statuses",
            provider.as_str()
        )
    })?;
    let token = read_token(token_file)?;
    let base = match &setup.api_url {
        Some(url) => check_base(url)?,
        None => provider.default_base(&remote.host),
    };
    Ok(Target {
        provider,
        base,
        remote,
        token,
        context: format!("berth/{}", setup.host_name),
    })
}

fn read_token(path: &Path) -> Result<Token, String> {
    let shown = path.display();
    let raw = std::fs::read(path).map_err(|e| format!("--git-status-token-file {shown}: {e}"))?;
    let text = String::from_utf8(raw)
        .map_err(|_| format!("--git-status-token-file {shown}: not UTF-8 text"))?;
    let token = text.trim();
    if token.is_empty() {
        return Err(format!(
            "--git-status-token-file {shown} is empty: write the API token in it"
        ));
    }
    if token.contains(['\n', '\r']) || token.chars().any(char::is_control) {
        return Err(format!(
            "--git-status-token-file {shown} holds more than one line: write the token alone"
        ));
    }
    Ok(Token(token.to_string()))
}

fn check_base(url: &str) -> Result<String, String> {
    let parsed = reqwest::Url::parse(url.trim())
        .map_err(|e| format!("--git-status-url {}: {e}", crate::urls::redact_url(url)))?;
    if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
        return Err(format!(
            "--git-status-url {}: give the API's http:// or https:// URL",
            crate::urls::redact_url(url)
        ));
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err("--git-status-url: credentials in the URL are not used; put the token in --git-status-token-file".into());
    }
    Ok(url.trim().trim_end_matches('/').to_string())
}

#[cfg(test)]
pub(crate) mod tests;
