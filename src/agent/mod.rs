//! The agent: one loop per project that always reads the current state. Triggers (a
//! commit seen by the watch, a poll, a webhook, a Docker event, the periodic resync, a
//! retry falling due) only wake it; triggers that arrive during a reconcile coalesce
//! into exactly one more.
//!
//! This file starts the agent (lock, listener, control socket, watch, timers, the
//! engine's events); `reconcile` is the loop, `commits` reads the repository, and
//! `triggers` holds what wakes the loop besides requests.

mod commits;
mod env_watch;
mod failures;
mod lock;
mod pause;
mod reconcile;
mod status;
#[cfg(test)]
mod tests;
mod triggers;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, RwLock};
use tokio_util::sync::CancellationToken;

use crate::executor::{ApplyOptions, RetryPolicy};
use crate::ledger::Ledger;
use crate::model::LoadOptions;
use crate::runtime::Engine;
use crate::source::signature::AllowedSigners;
use crate::source::GitSource;

pub(crate) use crate::status::{AgentStatus, SharedStatus};
pub(crate) use crate::trigger::Trigger;
pub(crate) use failures::FailedTargets;
pub(crate) use lock::{LockError, StateLock};
pub(crate) use pause::PauseState;

impl Trigger {
    /// May bring a new desired state (or an operator's change) that should not wait
    /// behind a wait for the fleet.
    fn supersedes(self) -> bool {
        matches!(
            self,
            Trigger::Watch | Trigger::Poll | Trigger::Webhook | Trigger::Control
        )
    }

    fn fetches(self) -> bool {
        matches!(
            self,
            Trigger::Start | Trigger::Watch | Trigger::Poll | Trigger::Webhook | Trigger::Resync
        )
    }
}

/// Everything the agent needs to run.
pub(crate) struct AgentConfig {
    /// The repository followed.
    pub source: GitSource,
    /// The only project this agent manages (`--project`); `None` for whatever the
    /// commit names.
    pub project: Option<String>,
    /// The state dir: clone, ledger, lock, pause state.
    pub state_dir: PathBuf,
    /// The HTTP listener (webhook, health, status).
    pub listen: SocketAddr,
    /// Poll interval for remotes (±10 % jitter).
    pub interval: Duration,
    /// Full resync period.
    pub resync: Duration,
    /// The webhook's shared secret.
    pub webhook_secret: Option<Vec<u8>>,
    /// When set, only commits signed by these keys are applied.
    pub allowed_signers: Option<AllowedSigners>,
    /// What the host allows the desired state to mount.
    pub load: LoadOptions,
    /// How apply behaves.
    pub apply: ApplyOptions,
    /// Backoff and attempts per failed target.
    pub retry: RetryPolicy,
    /// Where deploy events go.
    pub notifier: crate::notify::Notifier,
    /// Commit statuses on the git host (`--git-status`).
    pub commit_status: crate::commit_status::CommitStatus,
    /// This host: placement, labels and notifications.
    pub host: crate::plan::Host,
    /// The ledger: embedded, or the fleet's shared store.
    pub ledger: Arc<dyn Ledger>,
}

/// The agent's failures that stop it.
#[derive(Debug, thiserror::Error)]
pub(crate) enum AgentError {
    /// Another agent holds the state dir, or it cannot be locked.
    #[error(transparent)]
    Locked(#[from] LockError),
    /// The listener could not bind.
    #[error("listen on {addr}: {error}")]
    Listen {
        /// The address.
        addr: SocketAddr,
        /// Why.
        error: std::io::Error,
    },
    /// The control socket could not be made.
    #[error("control socket {}: {error}", path.display())]
    ControlSocket {
        /// Where.
        path: PathBuf,
        /// Why.
        error: std::io::Error,
    },
    /// The local repository could not be watched.
    #[error("watch {}: {error}", dir.display())]
    Watch {
        /// The directory.
        dir: PathBuf,
        /// Why.
        error: notify::Error,
    },
}

/// Runs the agent on `engine` until `shutdown` is cancelled (first signal). The step in
/// flight finishes; no service is left below its healthy count. The engine's event
/// stream wakes the loop.
pub(crate) async fn run(
    mut config: AgentConfig,
    engine: Arc<dyn Engine>,
    shutdown: CancellationToken,
) -> Result<(), AgentError> {
    // An `apply` that holds the state dir is awaited; another agent is not.
    let dir = config.state_dir.clone();
    let _lock = StateLock::acquire_async(dir, "agent", Duration::from_secs(600)).await?;
    let ledger = config.ledger.clone();
    if ledger.is_shared() {
        tracing::info!(host = %config.host.name, coordination = %ledger.describe(), "fleet coordination through the shared ledger");
    } else {
        tracing::warn!(host = %config.host.name, "coordination is local: migrations run once per host, not once per fleet; for several hosts use --coordination postgres://… or pin migrations with run_on");
    }
    let (tx, mut rx) = mpsc::unbounded_channel::<Trigger>();
    let status: SharedStatus = Arc::new(RwLock::new(AgentStatus::new(&config)));
    let metrics = Arc::new(crate::api::metrics::Metrics::new(Some(&config.host.name)));

    // The HTTP listener (webhook, health, status, control), and the same routes on
    // the control socket, where a state change needs no signature.
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|error| AgentError::Listen {
            addr: config.listen,
            error,
        })?;
    let socket_path = crate::api::control_socket::path_in(&config.state_dir);
    let socket =
        crate::api::control_socket::ControlSocket::bind(&socket_path).map_err(|error| {
            AgentError::ControlSocket {
                path: socket_path.clone(),
                error,
            }
        })?;
    let api = crate::api::ApiState {
        status: status.clone(),
        triggers: tx.clone(),
        webhook_secret: config.webhook_secret.clone().map(Arc::new),
        metrics: metrics.clone(),
        transport: crate::api::Transport::Tcp,
        control_socket: socket_path.clone(),
        branch: config.source.branch.clone(),
    };
    let control = crate::api::router(crate::api::ApiState {
        transport: crate::api::Transport::ControlSocket,
        ..api.clone()
    });
    // The status page, on TCP only: the control socket has no browser.
    let page = crate::page::PageState::new(status.clone(), config.ledger.clone(), shutdown.clone());
    let app = crate::api::router(api).merge(crate::page::router(page));
    config.apply.progress = Some(crate::page::follow_progress(status.clone()));
    let http_shutdown = shutdown.clone();
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app)
            .with_graceful_shutdown(async move { http_shutdown.cancelled().await })
            .await
        {
            tracing::error!(error = %e, "the HTTP listener stopped");
        }
    });
    let socket_shutdown = shutdown.clone();
    tokio::spawn(async move {
        if let Err(e) = axum::serve(socket, control)
            .with_graceful_shutdown(async move { socket_shutdown.cancelled().await })
            .await
        {
            tracing::error!(error = %e, "the control socket stopped");
        }
    });
    tracing::info!(
        repo = %config.source.display_url(),
        branch = %config.source.branch,
        listen = %config.listen,
        control_socket = %socket_path.display(),
        webhook = config.webhook_secret.is_some(),
        "agent started"
    );

    // The watch of a local repository, or the poll of a remote.
    let _watcher = match config.source.watch_dir() {
        Some(dir) => {
            let (wtx, mut wrx) = mpsc::unbounded_channel();
            let watcher = crate::source::watch::watch(&dir, wtx)
                .map_err(|error| AgentError::Watch { dir, error })?;
            let t = tx.clone();
            tokio::spawn(async move {
                while wrx.recv().await.is_some() {
                    if t.send(Trigger::Watch).is_err() {
                        return;
                    }
                }
            });
            Some(watcher)
        }
        None => None,
    };
    if config.source.watch_dir().is_none() {
        triggers::every(
            tx.clone(),
            Trigger::Poll,
            config.interval,
            true,
            shutdown.clone(),
        );
    }
    triggers::every(
        tx.clone(),
        Trigger::Resync,
        config.resync,
        false,
        shutdown.clone(),
    );
    triggers::engine_events(engine.clone(), tx.clone(), shutdown.clone());

    let _ = tx.send(Trigger::Start);
    let mut state = reconcile::Loop::new(config, engine, metrics, status, tx);
    state.drive(&mut rx, &shutdown).await;
    // Events already queued get a moment to go out; a dead endpoint does not hold the stop.
    state.config.notifier.flush(Duration::from_secs(5)).await;
    state
        .config
        .commit_status
        .flush(Duration::from_secs(5))
        .await;
    // Only this agent's own socket: the state-dir lock is still held.
    if let Err(e) = std::fs::remove_file(&socket_path) {
        tracing::debug!(path = %socket_path.display(), error = %e, "control socket not removed");
    }
    tracing::info!("agent stopped");
    Ok(())
}
