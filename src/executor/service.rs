//! One service within an apply: held, blocked, its migrations, the fleet's gate, then
//! its steps, retried with backoff. The first attempt carries out the plan the apply
//! made; a retry (or a wait for the fleet) looks at the engine again and plans afresh.

use std::collections::HashMap;
use std::sync::Arc;

use tokio::time::Instant;

use super::drain::{Drain, DEFAULT_GRACE};
use super::error::{StepError, StepFailure};
use super::migrate::{MigrationError, MigrationFailure, MigrationRunner};
use super::progress::{self, Event};
use super::rollout::Rollout;
use super::{fleet, Action, ApplyControl, Executor, Outcome, Redactor, ServiceReport};
use crate::ledger::MigrationRun;
use crate::plan::{plan, Desired, ServicePlan, Step};
use crate::runtime::{ObservedContainer, Role};

/// A migration's one run within an apply, awaited by every service it gates.
pub(super) type MigrationCell =
    tokio::sync::OnceCell<Result<Option<MigrationRun>, MigrationFailure>>;

/// A migration a service waits for: its name, the image digest, its run.
pub(super) type Gate = (String, String, Arc<MigrationCell>);

/// What one apply knows while it converges its services.
pub(super) struct Reconcile<'a> {
    pub desired: &'a Desired,
    pub control: &'a ApplyControl,
    pub redactor: &'a Redactor,
    /// The containers the plan was made from, by name.
    pub by_name: HashMap<&'a str, &'a ObservedContainer>,
    /// By service, the pull that failed.
    pub pull_errors: HashMap<String, super::pull::PullFailure>,
    /// By service, the migrations it waits for.
    pub gating: HashMap<String, Vec<Gate>>,
}

/// Where the steps an attempt carries out come from.
enum Steps<'a> {
    /// The apply's plan, made from its one look at the engine.
    Planned(&'a [Step]),
    /// A fresh look at the engine.
    Fresh,
}

fn shutdown() -> Outcome {
    Outcome::Held {
        reason: StepError::Shutdown.to_string(),
    }
}

impl Executor {
    /// Converges one service of the plan, or says why not.
    pub(super) async fn converge_one(
        &self,
        r: &Reconcile<'_>,
        sp: &ServicePlan,
        blocked_by: Option<String>,
    ) -> ServiceReport {
        let start = Instant::now();
        let name = &sp.service;
        let report = |outcome, attempts, millis| ServiceReport {
            service: name.clone(),
            action: sp.action,
            reasons: sp.reasons.iter().map(|x| r.redactor.redact(x)).collect(),
            outcome,
            attempts,
            millis,
            registry_unreachable: false,
        };
        if sp.action == Action::InSync {
            self.record_converged(r.desired, name).await;
            return report(Outcome::InSync, 0, 0);
        }
        if let Some(reason) = r.control.exclude.get(name) {
            return report(
                Outcome::Held {
                    reason: reason.clone(),
                },
                0,
                0,
            );
        }
        if r.control.cancel.is_cancelled() {
            return report(shutdown(), 0, 0);
        }
        let pull_error = r.pull_errors.get(name).cloned();
        let unreachable =
            blocked_by.is_none() && pull_error.as_ref().is_some_and(|p| p.unreachable);
        let (outcome, attempts) = if let Some(by) = blocked_by {
            (Outcome::Blocked { by }, 0)
        } else if let Some(pull) = pull_error {
            self.failed_before_moving(r, name, pull.error).await
        } else {
            match self.migrations_for(r, name).await {
                Some(outcome) => outcome,
                None if sp.action == Action::Remove && !self.opts.prune => (Outcome::Skipped, 0),
                None => {
                    let image = r
                        .desired
                        .services
                        .get(name)
                        .map(|d| d.spec.image.full.clone())
                        .unwrap_or_default();
                    progress::emit(&self.opts.progress, || Event::ServiceStarted {
                        service: name.clone(),
                        image,
                    });
                    let done = self.converge_in_fleet(r, sp).await;
                    progress::emit(&self.opts.progress, || Event::ServiceDone {
                        service: name.clone(),
                        outcome: report(done.0.clone(), 0, 0).outcome_word().to_string(),
                    });
                    done
                }
            }
        };
        if outcome == Outcome::Converged {
            self.record_converged(r.desired, name).await;
        }
        // Only a replacement has anything to roll back.
        let outcome = match outcome {
            Outcome::Failed {
                error,
                serving,
                rolled_back,
            } => Outcome::Failed {
                error,
                serving,
                rolled_back: rolled_back && sp.action == Action::Replace,
            },
            other => other,
        };
        ServiceReport {
            registry_unreachable: unreachable,
            ..report(outcome, attempts, start.elapsed().as_millis() as u64)
        }
    }

    /// A service that failed before anything of it moved (its image, a migration).
    async fn failed_before_moving(
        &self,
        r: &Reconcile<'_>,
        name: &str,
        error: String,
    ) -> (Outcome, u32) {
        let serving = self.serving(&r.desired.spec.project, name).await;
        (
            Outcome::Failed {
                error,
                serving,
                rolled_back: false,
            },
            1,
        )
    }

    /// Runs (or awaits) the migrations that gate the service; `Some` outcome when the
    /// service may not move.
    async fn migrations_for(&self, r: &Reconcile<'_>, name: &str) -> Option<(Outcome, u32)> {
        for (m, digest, cell) in r.gating.get(name).map(Vec::as_slice).unwrap_or_default() {
            let result = cell
                .get_or_init(|| self.migrate_with_retries(r, m, digest))
                .await;
            let Err(f) = result else { continue };
            let message = format!("{}; {name} was not changed", f.error);
            return Some(match &f.error {
                MigrationError::Shutdown => (shutdown(), 0),
                e if e.waits() => (Outcome::Waiting { reason: message }, 0),
                _ => self.failed_before_moving(r, name, message).await,
            });
        }
        None
    }

    async fn migrate_with_retries(
        &self,
        r: &Reconcile<'_>,
        name: &str,
        digest: &str,
    ) -> Result<Option<MigrationRun>, MigrationFailure> {
        let m = &r.desired.spec.migrations[name];
        let mut delays = self.opts.retry.schedule();
        loop {
            let runner = MigrationRunner {
                control: Some(r.control),
                ..self.migrations(r.redactor)
            };
            match runner.ensure(r.desired, m, digest).await {
                Ok(run) => return Ok(run),
                Err(f) if matches!(f.error, MigrationError::Shutdown) => return Err(f),
                Err(f) => {
                    tracing::warn!(migration = name, error = %f.error, "migration failed");
                    match delays.next() {
                        Some(delay) => {
                            tracing::info!(
                                migration = name,
                                delay_ms = delay.as_millis() as u64,
                                "retrying after backoff"
                            );
                            tokio::time::sleep(delay).await;
                        }
                        None => return Err(f),
                    }
                }
            }
        }
    }

    /// Converges one service, first passing the fleet's gate (canary, rollout lease)
    /// when the ledger is shared and the service's replicas are to be replaced.
    async fn converge_in_fleet(&self, r: &Reconcile<'_>, sp: &ServicePlan) -> (Outcome, u32) {
        let staged = self.ledger.is_shared()
            && matches!(
                sp.action,
                Action::Create | Action::Replace | Action::Restart
            );
        let admission = match r.desired.services.get(&sp.service).filter(|_| staged) {
            Some(d) => {
                let gate = fleet::FleetGate {
                    ledger: &self.ledger,
                    project: &r.desired.spec.project,
                    host: self.opts.host.as_deref().unwrap_or_default(),
                    wait: self.opts.fleet_wait,
                    lease_ttl: self.opts.lease_ttl,
                    control: r.control,
                };
                match gate.admit(d).await {
                    Ok(admission) => Some(admission),
                    Err(fleet::Hold::Wait(reason)) => return (Outcome::Waiting { reason }, 0),
                    Err(fleet::Hold::Superseded) => {
                        return (
                            Outcome::Waiting {
                                reason: "the desired state may have changed".into(),
                            },
                            0,
                        )
                    }
                    Err(fleet::Hold::Shutdown) => return (shutdown(), 0),
                }
            }
            None => None,
        };
        // After a wait for the fleet, what runs may have changed: look again.
        let steps = match &admission {
            Some(a) if a.waited => Steps::Fresh,
            _ => Steps::Planned(&sp.steps),
        };
        let result = self.converge_with_retries(r, &sp.service, steps).await;
        if let Some(lease) = admission.and_then(|a| a.lease) {
            lease.release().await;
        }
        result
    }

    async fn converge_with_retries(
        &self,
        r: &Reconcile<'_>,
        name: &str,
        mut steps: Steps<'_>,
    ) -> (Outcome, u32) {
        let mut delays = self.opts.retry.schedule();
        let mut attempts = 0;
        loop {
            attempts += 1;
            let result = match steps {
                Steps::Planned(planned) => self.carry_out(r, name, planned, &r.by_name).await,
                Steps::Fresh => self.plan_and_carry_out(r, name).await,
            };
            let StepFailure { error, rollback } = match result {
                Ok(()) => return (Outcome::Converged, attempts),
                Err(f) if f.error.is_shutdown() => return (shutdown(), attempts),
                Err(f) => f,
            };
            // What the rollback did, not what was configured: a slot that could not be
            // put back makes the outcome a plain failure.
            let rolled_back = rollback.as_ref().is_some_and(|rb| rb.complete());
            let message = match rollback.as_ref().and_then(|rb| rb.describe()) {
                Some(what) => format!("{error}; {what}"),
                None => error.to_string(),
            };
            let error = r.redactor.redact(&message);
            tracing::warn!(service = name, attempt = attempts, error = %error, "service failed to converge");
            match delays.next() {
                Some(delay) => {
                    tracing::info!(
                        service = name,
                        delay_ms = delay.as_millis() as u64,
                        "retrying after backoff"
                    );
                    tokio::time::sleep(delay).await;
                    steps = Steps::Fresh;
                }
                None => {
                    let serving = self.serving(&r.desired.spec.project, name).await;
                    return (
                        Outcome::Failed {
                            error,
                            serving,
                            rolled_back,
                        },
                        attempts,
                    );
                }
            }
        }
    }

    /// Looks at the engine again, plans, and carries out the service's part.
    async fn plan_and_carry_out(&self, r: &Reconcile<'_>, name: &str) -> Result<(), StepFailure> {
        let project = &r.desired.spec.project;
        let observed = self
            .engine
            .list_project(project)
            .await
            .map_err(StepError::engine(format!("list {project}")))?;
        let the_plan = plan(r.desired, &observed);
        let Some(sp) = the_plan.services.iter().find(|s| s.service == name) else {
            return Ok(());
        };
        let by_name: HashMap<&str, &ObservedContainer> =
            observed.iter().map(|c| (c.name.as_str(), c)).collect();
        self.carry_out(r, name, &sp.steps, &by_name).await
    }

    /// Carries out a service's steps: a rollout for a desired service, removals for one
    /// that left the desired state.
    async fn carry_out(
        &self,
        r: &Reconcile<'_>,
        name: &str,
        steps: &[Step],
        by_name: &HashMap<&str, &ObservedContainer>,
    ) -> Result<(), StepFailure> {
        let project = &r.desired.spec.project;
        match r.desired.services.get(name) {
            Some(desired) => {
                let rollout = Rollout {
                    engine: self.engine.as_ref(),
                    opts: &self.opts,
                    project,
                    desired,
                    cancel: &r.control.cancel,
                };
                rollout.run(steps, by_name).await
            }
            None => {
                let drain = Drain {
                    engine: self.engine.as_ref(),
                    opts: &self.opts,
                    project,
                    service: name,
                    grace: DEFAULT_GRACE,
                };
                Ok(drain.remove_all(steps, by_name).await?)
            }
        }
    }

    /// "2 replicas of sha-1111111 still serve", from a fresh look at the engine.
    pub(super) async fn serving(&self, project: &str, service: &str) -> String {
        let Ok(observed) = self.engine.list_project(project).await else {
            return "unknown (the engine did not answer)".into();
        };
        let mut by_image: std::collections::BTreeMap<String, u32> = Default::default();
        for c in observed
            .iter()
            .filter(|c| c.service == service && c.role == Role::Replica && c.is_up())
        {
            *by_image
                .entry(crate::plan::desired::short(&c.image))
                .or_default() += 1;
        }
        if by_image.is_empty() {
            return "no replica is running".into();
        }
        let parts: Vec<String> = by_image
            .into_iter()
            .map(|(img, n)| format!("{n} replica{} of {img}", if n == 1 { "" } else { "s" }))
            .collect();
        format!("{} still serving", parts.join(" and "))
    }
}
