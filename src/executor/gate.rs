//! The health gate a new replica must pass before it takes traffic from an old one.

use std::time::Duration;

use tokio::time::Instant;

use crate::runtime::{Engine, HealthState, RunState, RuntimeError};

/// How long and how often the gate looks.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RolloutGate {
    /// How long the replica may take to become healthy (or, without a health check,
    /// to be running).
    pub deadline: Duration,
    /// How long it must then stay healthy and running.
    pub monitor: Duration,
    /// Time between looks.
    pub poll: Duration,
}

/// Why a replica did not pass.
#[derive(Debug, thiserror::Error)]
pub(crate) enum GateFailure {
    /// It exited; the gate fails at once, without waiting for the deadline.
    #[error("exited with code {code}{}", tail(.logs))]
    Exited {
        /// Its exit code.
        code: i64,
        /// Its last lines of output.
        logs: String,
    },
    /// Docker judged it unhealthy.
    #[error("became unhealthy{}", check(.last_check))]
    Unhealthy {
        /// The output of the last health check.
        last_check: Option<String>,
    },
    /// It was not healthy by the deadline.
    #[error("was not healthy within {deadline:?} (health: {health:?}){}", check(.last_check))]
    Deadline {
        /// The deadline.
        deadline: Duration,
        /// Its health when time ran out.
        health: HealthState,
        /// The output of the last health check.
        last_check: Option<String>,
    },
    /// The engine failed.
    #[error(transparent)]
    Engine(#[from] RuntimeError),
}

fn tail(logs: &str) -> String {
    let t = logs.trim();
    if t.is_empty() {
        String::new()
    } else {
        format!(
            "; last output: {}",
            t.lines().collect::<Vec<_>>().join(" | ")
        )
    }
}

fn check(last: &Option<String>) -> String {
    match last.as_deref().map(str::trim) {
        Some(s) if !s.is_empty() => format!("; last check: {s}"),
        _ => String::new(),
    }
}

impl RolloutGate {
    /// Waits until the container is healthy (or running, without a health check) and has
    /// stayed so for `monitor`.
    pub(crate) async fn pass(&self, engine: &dyn Engine, id: &str) -> Result<(), GateFailure> {
        let start = Instant::now();
        let mut healthy_since: Option<Instant> = None;
        loop {
            let d = engine.inspect(id).await?;
            if let RunState::Exited(code) = d.state {
                let logs = engine.logs_tail(id, 5).await.unwrap_or_default();
                return Err(GateFailure::Exited {
                    code: code.unwrap_or(-1),
                    logs,
                });
            }
            // With restart policy unless-stopped, a replica that exits is brought back by
            // Docker; a restart during the gate is an exit all the same.
            if d.restart_count > 0 || d.state == RunState::Restarting {
                let logs = engine.logs_tail(id, 5).await.unwrap_or_default();
                return Err(GateFailure::Exited {
                    code: d.last_exit_code.unwrap_or(-1),
                    logs,
                });
            }
            if d.state == RunState::Dead {
                return Err(GateFailure::Exited {
                    code: -1,
                    logs: String::new(),
                });
            }
            let ok = if d.has_healthcheck {
                match d.health {
                    HealthState::Healthy => true,
                    HealthState::Unhealthy => {
                        return Err(GateFailure::Unhealthy {
                            last_check: d.health_log,
                        })
                    }
                    _ => false,
                }
            } else {
                d.state == RunState::Running
            };
            let now = Instant::now();
            match (ok, healthy_since) {
                (true, None) => healthy_since = Some(now),
                (true, Some(since)) if now - since >= self.monitor => return Ok(()),
                (false, Some(_)) => healthy_since = None,
                _ => {}
            }
            if healthy_since.is_none() && now - start > self.deadline {
                return Err(GateFailure::Deadline {
                    deadline: self.deadline,
                    health: d.health,
                    last_check: d.health_log,
                });
            }
            if healthy_since.is_some_and(|s| now - s >= self.monitor) {
                return Ok(());
            }
            tokio::time::sleep(self.poll).await;
        }
    }
}
