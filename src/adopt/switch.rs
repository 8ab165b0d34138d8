//! Carries a [`SwitchPlan`] out: records the handover, then replaces compose's
//! containers service by service, and converges the rest.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use tokio::time::Instant;

use super::{Order, ServiceSwitch, SwitchPlan};
use crate::executor::{ApplyControl, ApplyError, ApplyReport, Executor, Outcome};
use crate::plan::Desired;
use crate::runtime::{Engine, RuntimeError};

/// How one service was switched.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Switched {
    /// The service.
    pub service: String,
    /// How.
    pub order: super::Order,
    /// compose's containers removed.
    pub removed: Vec<String>,
    /// Stop-first only: from compose's stop to berth's replicas healthy, in
    /// milliseconds — the time the published ports were closed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub closed_ms: Option<u64>,
    /// The whole switch of the service, in milliseconds.
    pub millis: u64,
}

/// What `berth adopt` did.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct SwitchReport {
    /// The services switched, in order.
    pub switched: Vec<Switched>,
    /// The final converge of the whole project.
    pub apply: Option<ApplyReport>,
}

/// Why a switch stopped.
#[derive(Debug, thiserror::Error)]
pub(crate) enum SwitchError {
    /// The record could not be written.
    #[error("state dir {path}: {error}")]
    Record {
        /// The record's path.
        path: String,
        /// What failed.
        error: std::io::Error,
    },
    /// The apply itself could not run.
    #[error(transparent)]
    Apply(#[from] ApplyError),
    /// An image could not be pulled; nothing was changed.
    #[error("{0}; nothing was adopted or stopped: compose still runs everything")]
    Pull(String),
    /// One service did not converge; what compose ran of it runs again.
    #[error("{service}: berth's replicas did not converge ({why}); {what}. Services switched before it stay with berth; fix the cause and run `berth adopt` again")]
    Service {
        /// The service.
        service: String,
        /// What went wrong.
        why: String,
        /// What was done about compose's containers.
        what: String,
        /// Services switched before it.
        done: Vec<Switched>,
    },
    /// compose's container could not be stopped or removed.
    #[error("{container}: {error}")]
    Engine {
        /// The container.
        container: String,
        /// What failed.
        error: RuntimeError,
    },
}

/// Carries out `plan` for `desired` with `executor` (whose options name the services
/// compose still serves, see [`crate::executor::ApplyOptions::served_elsewhere`]).
pub(crate) async fn run(
    plan: &SwitchPlan,
    desired: &Desired,
    executor: &Executor,
    engine: Arc<dyn Engine>,
    state_dir: &std::path::Path,
    drain: Duration,
) -> Result<SwitchReport, SwitchError> {
    // Every image first: a stop-first service must not wait for a pull with its
    // ports closed, and a pull that fails is better known before anything moves.
    let failed = executor.pull(desired).await?;
    if !failed.is_empty() {
        let mut lines: Vec<String> = failed
            .into_iter()
            .map(|(service, failure)| {
                let e = &failure.error;
                let e = e
                    .strip_suffix("; nothing of this service was stopped")
                    .unwrap_or(e);
                format!("{service}: {e}")
            })
            .collect();
        lines.sort();
        return Err(SwitchError::Pull(lines.join("; ")));
    }
    plan.adopted()
        .record(state_dir, &plan.project)
        .map_err(|error| SwitchError::Record {
            path: super::Adopted::path(state_dir).display().to_string(),
            error,
        })?;
    tracing::info!(project = %plan.project, volumes = ?plan.adopted().volumes, networks = ?plan.adopted().networks, action = "adopt-objects");
    let mut switched = Vec::new();
    for s in &plan.services {
        match switch_service(s, desired, executor, engine.as_ref(), drain).await {
            Ok(done) => switched.push(done),
            Err(SwitchError::Service {
                service, why, what, ..
            }) => {
                return Err(SwitchError::Service {
                    service,
                    why,
                    what,
                    done: switched,
                })
            }
            Err(e) => return Err(e),
        }
    }
    let apply = executor.apply(desired).await?;
    Ok(SwitchReport {
        switched,
        apply: Some(apply),
    })
}

/// The outcome of `service` in `report`, as an error when it did not converge.
fn converged(report: &ApplyReport, service: &str) -> Result<(), String> {
    match report.services.iter().find(|r| r.service == service) {
        Some(r) => match &r.outcome {
            Outcome::InSync | Outcome::Converged => Ok(()),
            _ => Err(r.error().unwrap_or_else(|| r.outcome_word().to_string())),
        },
        None => Ok(()),
    }
}

async fn switch_service(
    s: &ServiceSwitch,
    desired: &Desired,
    executor: &Executor,
    engine: &dyn Engine,
    drain: Duration,
) -> Result<Switched, SwitchError> {
    let started = Instant::now();
    let grace = desired
        .services
        .get(&s.service)
        .map(|d| d.spec.stop_grace)
        .unwrap_or(Duration::from_secs(10));
    let control = ApplyControl {
        exclude: desired
            .services
            .keys()
            .filter(|n| **n != s.service)
            .map(|n| {
                (
                    n.clone(),
                    format!("switched from docker compose after {}", s.service),
                )
            })
            .collect::<BTreeMap<_, _>>(),
        ..ApplyControl::default()
    };
    let running: Vec<_> = s.compose.iter().filter(|c| c.running).collect();
    let engine_err = |container: &str| {
        let container = container.to_string();
        move |error| SwitchError::Engine { container, error }
    };
    let mut closed_ms = None;
    match s.order {
        Order::StopFirst => {
            let mut stopped = Vec::new();
            let mut failure = None;
            for c in &running {
                tracing::info!(service = %s.service, container = %c.name, action = "stop-compose");
                match engine.stop(&c.id, grace).await {
                    Ok(()) => stopped.push(*c),
                    Err(e) => {
                        failure = Some(format!("stopping compose's {}: {e}", c.name));
                        break;
                    }
                }
            }
            if failure.is_none() {
                failure = match executor.apply_with(desired, &control).await {
                    Ok(report) => converged(&report, &s.service).err(),
                    Err(e) => Some(e.to_string()),
                };
            }
            if let Some(why) = failure {
                // The ports go back to compose.
                let mut restarted = Vec::new();
                for c in &stopped {
                    match engine.start(&c.id).await {
                        Ok(()) => restarted.push(c.name.clone()),
                        Err(e) => {
                            tracing::warn!(container = %c.name, error = %e, "compose's container did not start again")
                        }
                    }
                }
                return Err(SwitchError::Service {
                    service: s.service.clone(),
                    why,
                    what: if restarted.len() == stopped.len() {
                        if restarted.is_empty() {
                            "compose's containers were not stopped".into()
                        } else {
                            format!("compose's {} started again", restarted.join(", "))
                        }
                    } else {
                        "compose's containers are stopped, not removed (start them with `docker start`)".into()
                    },
                    done: Vec::new(),
                });
            }
            closed_ms = Some(started.elapsed().as_millis() as u64);
        }
        Order::StartFirst => {
            let outcome = match executor.apply_with(desired, &control).await {
                Ok(report) => converged(&report, &s.service),
                Err(e) => Err(e.to_string()),
            };
            if let Err(why) = outcome {
                return Err(SwitchError::Service {
                    service: s.service.clone(),
                    why,
                    what: "compose's containers were not touched and keep serving".into(),
                    done: Vec::new(),
                });
            }
            // Out of the alias first, so that nothing new reaches them, yet still on
            // their networks (at the same address) for requests in flight; then a
            // drain, then the stop.
            for c in &running {
                for net in &c.networks {
                    match engine.reconnect(net, &c.id, Vec::new()).await {
                        Ok(_) | Err(RuntimeError::NotFound(_)) => {}
                        Err(e) => return Err(engine_err(&c.name)(e)),
                    }
                }
            }
            if !running.is_empty() {
                tokio::time::sleep(drain).await;
            }
            for c in &running {
                tracing::info!(service = %s.service, container = %c.name, action = "stop-compose");
                engine
                    .stop(&c.id, grace)
                    .await
                    .map_err(engine_err(&c.name))?;
            }
        }
    }
    for c in &s.compose {
        engine.remove(&c.id).await.map_err(engine_err(&c.name))?;
    }
    let done = Switched {
        service: s.service.clone(),
        order: s.order,
        removed: s.containers.clone(),
        closed_ms,
        millis: started.elapsed().as_millis() as u64,
    };
    tracing::info!(service = %s.service, closed_ms = ?done.closed_ms, duration_ms = done.millis, action = "switched");
    Ok(done)
}

/// The switched services as text, one line each.
pub(crate) fn render(report: &SwitchReport) -> String {
    let mut out = String::new();
    let width = report
        .switched
        .iter()
        .map(|s| s.service.len())
        .max()
        .unwrap_or(0);
    for s in &report.switched {
        let secs = |ms: u64| ms as f64 / 1000.0;
        let line = match s.closed_ms {
            Some(ms) => format!(
                "✓ {:<width$}  switched stop-first: published ports closed for {:.2}s ({} removed)",
                s.service,
                secs(ms),
                s.removed.join(", ")
            ),
            None => format!(
                "✓ {:<width$}  switched start-first in {:.1}s ({} removed)",
                s.service,
                secs(s.millis),
                s.removed.join(", ")
            ),
        };
        out.push_str(&line);
        out.push('\n');
    }
    out
}
