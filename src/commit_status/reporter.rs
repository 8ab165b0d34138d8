//! The queue of statuses and its delivery task: in order, each retried with backoff
//! until the host takes it or it is given up, never blocking the caller.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{mpsc, watch};

use super::{describe, State, Target};
use crate::http_client::{ClientError, ClientOptions, HttpClient};
use crate::retry::RetryPolicy;

/// Statuses waiting beyond this are dropped with a warning: a host's API down for long
/// costs bounded memory.
const QUEUE_CAPACITY: usize = 256;
/// Commits whose last status is remembered; older ones are forgotten all at once.
const REMEMBERED: usize = 64;
/// One attempt's deadline.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(10);
/// The most of an error answer's body kept for the log.
const BODY_EXCERPT: usize = 200;

struct Job {
    sha: String,
    state: State,
    description: String,
}

struct Shared {
    tx: mpsc::Sender<Job>,
    /// The last status queued per recent commit, so that a reconcile that changes
    /// nothing sends nothing, and a commit that has a status is not set pending again.
    last: Mutex<HashMap<String, (State, String)>>,
    limit: usize,
    /// Statuses queued or in delivery, for `flush`.
    pending: Arc<watch::Sender<usize>>,
}

/// Sets commit statuses in the background; disabled without `--git-status`.
#[derive(Clone)]
pub(crate) struct CommitStatus {
    shared: Option<Arc<Shared>>,
}

impl std::fmt::Debug for CommitStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CommitStatus")
            .field("enabled", &self.shared.is_some())
            .finish()
    }
}

impl CommitStatus {
    /// Starts the delivery task to `target`.
    ///
    /// # Errors
    ///
    /// When the HTTP client cannot be built (an unreadable or invalid CA file).
    pub(crate) fn start(
        target: Target,
        retry: RetryPolicy,
        ca_file: Option<PathBuf>,
    ) -> Result<CommitStatus, ClientError> {
        let client = HttpClient::new(&ClientOptions {
            ca_file,
            ..ClientOptions::tcp(ATTEMPT_TIMEOUT)
        })?;
        let (tx, rx) = mpsc::channel(QUEUE_CAPACITY);
        let pending = Arc::new(watch::Sender::new(0usize));
        let limit = target.provider.description_limit();
        tokio::spawn(deliver_all(client, target, rx, retry, pending.clone()));
        Ok(CommitStatus {
            shared: Some(Arc::new(Shared {
                tx,
                last: Mutex::new(HashMap::new()),
                limit,
                pending,
            })),
        })
    }

    /// Sends nothing.
    pub(crate) fn disabled() -> CommitStatus {
        CommitStatus { shared: None }
    }

    /// A reconcile of `sha` starts: `pending`, unless `sha` already has a status.
    pub(crate) fn starting(&self, sha: &str) {
        let Some(shared) = &self.shared else { return };
        let known = shared.last.lock().expect("not poisoned").contains_key(sha);
        if !known {
            self.set(sha, State::Pending, "deploying");
        }
    }

    /// Every service of `sha` converged.
    pub(crate) fn converged(&self, sha: &str) {
        self.set(sha, State::Success, "deployed");
    }

    /// `sha` failed because of `reason`, whose first line is told.
    pub(crate) fn failed(&self, sha: &str, reason: &str) {
        self.set(sha, State::Failure, reason);
    }

    fn set(&self, sha: &str, state: State, description: &str) {
        let Some(shared) = &self.shared else { return };
        let description = describe(description, shared.limit);
        {
            let mut last = shared.last.lock().expect("not poisoned");
            let now = (state, description.clone());
            if last.get(sha) == Some(&now) {
                return;
            }
            if last.len() >= REMEMBERED && !last.contains_key(sha) {
                last.clear();
            }
            last.insert(sha.to_string(), now);
        }
        shared.pending.send_modify(|n| *n += 1);
        let job = Job {
            sha: sha.to_string(),
            state,
            description,
        };
        if let Err(e) = shared.tx.try_send(job) {
            shared.pending.send_modify(|n| *n = n.saturating_sub(1));
            let reason = match e {
                mpsc::error::TrySendError::Full(_) => "queue full",
                mpsc::error::TrySendError::Closed(_) => "delivery task gone",
            };
            tracing::warn!(commit = %short(sha), ?state, reason, "commit status dropped");
        }
    }

    /// Waits until every queued status was delivered or given up, or `timeout` passed.
    pub(crate) async fn flush(&self, timeout: Duration) -> bool {
        let Some(shared) = &self.shared else {
            return true;
        };
        let mut idle = shared.pending.subscribe();
        let idle = async { idle.wait_for(|n| *n == 0).await.is_ok() };
        tokio::time::timeout(timeout, idle).await.unwrap_or(false)
    }
}

fn short(sha: &str) -> &str {
    sha.get(..12).unwrap_or(sha)
}

async fn deliver_all(
    client: HttpClient,
    target: Target,
    mut rx: mpsc::Receiver<Job>,
    retry: RetryPolicy,
    pending: Arc<watch::Sender<usize>>,
) {
    while let Some(job) = rx.recv().await {
        deliver(&client, &target, &job, &retry).await;
        pending.send_modify(|n| *n = n.saturating_sub(1));
    }
}

/// Why one attempt failed.
enum Failure {
    /// No answer, or a server error: worth another attempt.
    Transient(String),
    /// The host refused the request (a bad token, missing scope, unknown commit): the
    /// same request would be refused again.
    Refused(String),
}

async fn attempt(client: &HttpClient, target: &Target, job: &Job) -> Result<(), Failure> {
    let request = target.request(&job.sha, job.state, &job.description);
    let reply = client
        .post_authorized(
            &request.url,
            request.content_type,
            (request.auth_header, request.auth_value.0.as_str()),
            request.body,
        )
        .await
        .map_err(|e| Failure::Transient(e.to_string()))?;
    let status = reply.status();
    if (200..300).contains(&status) {
        return Ok(());
    }
    let body = tokio::time::timeout(Duration::from_millis(500), reply.text(64 * 1024))
        .await
        .ok()
        .and_then(Result::ok)
        .unwrap_or_default();
    let body: String = body
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .chars()
        .filter(|c| !c.is_control())
        .take(BODY_EXCERPT)
        .collect();
    // The answer could echo the token in the worst case: it is masked.
    let body = body.replace(&target.token.0, "***");
    let what = if body.is_empty() {
        format!("HTTP {status}")
    } else {
        format!("HTTP {status}: {body}")
    };
    if status == 408 || status == 429 || status >= 500 {
        Err(Failure::Transient(what))
    } else {
        Err(Failure::Refused(what))
    }
}

async fn deliver(client: &HttpClient, target: &Target, job: &Job, retry: &RetryPolicy) {
    let mut delays = retry.schedule();
    let mut attempts = 1u32;
    let api = target.provider.as_str();
    loop {
        let error = match attempt(client, target, job).await {
            Ok(()) => {
                tracing::info!(action = "commit-status", api, commit = %short(&job.sha), state = ?job.state, attempts, "commit status set");
                return;
            }
            Err(Failure::Refused(error)) => {
                tracing::warn!(action = "commit-status", api, commit = %short(&job.sha), state = ?job.state, error = %error, "commit status refused by the git host; check the token and its scopes (README: Commit status)");
                return;
            }
            Err(Failure::Transient(error)) => error,
        };
        match delays.next() {
            Some(delay) => {
                tracing::warn!(action = "commit-status", api, commit = %short(&job.sha), state = ?job.state, attempts, error = %error, retry_in_ms = delay.as_millis() as u64, "commit status failed; retrying");
                tokio::time::sleep(delay).await;
                attempts += 1;
            }
            None => {
                tracing::warn!(action = "commit-status", api, commit = %short(&job.sha), state = ?job.state, attempts, error = %error, "commit status given up");
                return;
            }
        }
    }
}
