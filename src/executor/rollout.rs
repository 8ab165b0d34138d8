//! One service's steps against the engine: creates, restarts, removals, and the rolling
//! replacement (its rollback is in `rollback`).
//!
//! Traffic follows the service's network alias (its name on each of its networks), and
//! berth moves replicas in and out of it by hand:
//! - a new replica starts under `<name>-next`, outside the alias, reachable only by its
//!   own name; it joins the alias once it has passed its gate, and only then takes the
//!   slot's stable name. So a replica under its stable name is one that serves. (A
//!   service with no replica serving has nobody to protect: its new replicas start
//!   under their names, in the alias.)
//! - a replica on its way out is renamed `<name>-prev` (or keeps the name of a slot that
//!   goes away), leaves the alias, drains for `--drain`, and only then gets its stop
//!   signal. It stays on its networks, without the alias, until it has stopped: requests
//!   in flight and its own connections finish.
//!
//! Docker changes aliases only by a disconnect and a connect; the engine makes the two
//! take turns with berth's other endpoint changes so the address comes back the same
//! (see [`Engine::reconnect`]), and a changed address is logged.
//!
//! A replacement keeps the replica it replaces, stopped as `<name>-prev`, until every
//! slot of the service has passed its gate; so a failure rolls back to exactly the
//! containers that ran before. A crash at any point leaves names and labels from which
//! the next plan repairs the slot (see `plan`): a lone `-next` of the desired spec is
//! joined and promoted, anything else beside the replica is removed.

use std::collections::HashMap;

use futures_util::future::join_all;

use super::container::replica_spec;
use super::drain::{log_moved, ms, Drain};
use super::error::{StepError, StepFailure};
use super::gate::RolloutGate;
use super::progress::{self, Event};
use super::ApplyOptions;
use crate::model::UpdateOrder;
use crate::plan::{DesiredService, Step};
use crate::runtime::{replica_name, Engine, ObservedContainer, Role, RuntimeError};

/// Carries out the steps of one desired service.
pub(super) struct Rollout<'a> {
    pub cancel: &'a tokio_util::sync::CancellationToken,
    pub engine: &'a dyn Engine,
    pub opts: &'a ApplyOptions,
    pub project: &'a str,
    pub desired: &'a DesiredService,
}

/// A slot whose replica was replaced in this run, kept until the service succeeds.
pub(super) struct Moved {
    pub slot: u32,
    pub new_id: String,
    pub prev_id: String,
}

impl<'a> Rollout<'a> {
    pub(super) fn service(&self) -> &'a str {
        self.desired.spec.name.as_str()
    }

    pub(super) fn gate(&self) -> RolloutGate {
        let update = &self.desired.spec.update;
        RolloutGate {
            deadline: update.deadline,
            monitor: update.monitor,
            poll: self.opts.poll,
        }
    }

    pub(super) fn drain(&self) -> Drain<'a> {
        Drain {
            engine: self.engine,
            opts: self.opts,
            project: self.project,
            service: self.service(),
            grace: self.desired.spec.stop_grace,
        }
    }

    pub(super) fn stable(&self, slot: u32) -> String {
        replica_name(self.project, self.service(), slot)
    }

    /// Carries out the steps in an order that keeps capacity: leftovers and extra slots
    /// go first, then adoption, restarts, new slots, and the rolling replacement last.
    pub(super) async fn run(
        &self,
        steps: &[Step],
        by_name: &HashMap<&str, &ObservedContainer>,
    ) -> Result<(), StepFailure> {
        let id_of = |name: &str| {
            by_name
                .get(name)
                .map(|c| c.id.clone())
                .ok_or_else(|| StepError::Vanished(name.to_string()))
        };
        self.drain().remove_all(steps, by_name).await?;
        for step in steps {
            if let Step::Adopt { slot, container } = step {
                let stable = self.stable(*slot);
                let id = id_of(container)?;
                tracing::info!(project = self.project, service = self.service(), action = "adopt", container = %container, to = %stable);
                // A lone replacement may have stopped short of its alias.
                self.join(&id, container).await?;
                self.engine
                    .rename(&id, &stable)
                    .await
                    .map_err(StepError::engine(format!("rename {container} to {stable}")))?;
            }
        }
        for step in steps {
            if let Step::Restart { slot, container } = step {
                self.restart(*slot, container, &id_of(container)?).await?;
            }
        }
        let creates: Vec<u32> = steps
            .iter()
            .filter_map(|s| match s {
                Step::Create { slot } => Some(*slot),
                _ => None,
            })
            .collect();
        if !creates.is_empty() {
            // With no replica of the service serving, nobody is to be kept from a
            // replica that is not ready yet: new ones start in the alias at once.
            let serving = self.opts.served_elsewhere.contains(self.service())
                || by_name
                    .values()
                    .any(|c| c.service == self.service() && c.role == Role::Replica && c.is_up());
            self.create_slots(&creates, !serving).await?;
        }
        let replaces: Vec<(u32, &ObservedContainer)> = steps
            .iter()
            .filter_map(|s| match s {
                Step::Replace { slot, container } => {
                    by_name.get(container.as_str()).map(|c| (*slot, *c))
                }
                _ => None,
            })
            .collect();
        if !replaces.is_empty() {
            self.replace(&replaces).await?;
        }
        Ok(())
    }

    /// Starts a stopped replica again the way a new one starts: outside the alias until
    /// it has passed its gate. One that does not pass is stopped again, as it was found.
    async fn restart(&self, slot: u32, container: &str, id: &str) -> Result<(), StepError> {
        let stable = self.stable(slot);
        let next = format!("{stable}-next");
        tracing::info!(project = self.project, service = self.service(), action = "restart", container = %container);
        self.engine
            .rename(id, &next)
            .await
            .map_err(StepError::engine(format!("rename {container}")))?;
        self.drain().leave(id, false).await;
        let outcome = match self.engine.start(id).await {
            Ok(()) => self
                .gate()
                .pass(self.engine, id)
                .await
                .map_err(StepError::gate(format!("restarted replica {container}"))),
            Err(e) => Err(StepError::engine(format!("start {container}"))(e)),
        };
        if let Err(e) = outcome {
            if let Err(stop) = self.engine.stop(id, self.desired.spec.stop_grace).await {
                tracing::warn!(container = %container, error = %stop, "replica that failed its gate not stopped");
            }
            self.drain().rename_or_log(id, &stable).await;
            return Err(e);
        }
        self.join(id, &next).await?;
        self.engine
            .rename(id, &stable)
            .await
            .map_err(StepError::engine(format!("rename {next} to {stable}")))
    }

    /// New slots all start at once (no running replica is at stake); one that fails its
    /// gate is removed.
    async fn create_slots(&self, slots: &[u32], cold: bool) -> Result<(), StepError> {
        let results = join_all(slots.iter().map(|slot| async move {
            if cold {
                let name = self.stable(*slot);
                let id = self.start_new(*slot, &name, true).await?;
                self.gating(*slot, &name);
                return match self.gate().pass(self.engine, &id).await {
                    Ok(()) => {
                        let slot = *slot;
                        self.emit(|service| Event::SlotDone { service, slot });
                        Ok(())
                    }
                    Err(e) => {
                        tracing::warn!(project = self.project, service = self.service(), slot, action = "gate-failed", container = %name);
                        self.drain().remove_or_log(&id).await;
                        Err(StepError::gate(format!("new replica {name}"))(e))
                    }
                };
            }
            // The new replica gets the slot's name only after its gate: make sure,
            // before anything starts, that nobody else holds it.
            let stable = self.stable(*slot);
            match self.engine.inspect(&stable).await {
                Err(RuntimeError::NotFound(_)) => {}
                Ok(_) => return Err(StepError::Conflict(stable)),
                Err(e) => return Err(StepError::engine(format!("inspect {stable}"))(e)),
            }
            let id = self.start_gated(*slot).await?;
            self.promote(*slot, &id).await?;
            let slot = *slot;
            self.emit(|service| Event::SlotDone { service, slot });
            Ok(())
        }))
        .await;
        results
            .into_iter()
            .find_map(Result::err)
            .map_or(Ok(()), Err)
    }

    /// Creates and starts a replica of the desired spec as `<name>-next`, outside the
    /// service's alias, and waits for its gate; one that fails is removed.
    pub(super) async fn start_gated(&self, slot: u32) -> Result<String, StepError> {
        let name = format!("{}-next", self.stable(slot));
        let id = self.start_new(slot, &name, false).await?;
        self.gating(slot, &name);
        match self.gate().pass(self.engine, &id).await {
            Ok(()) => Ok(id),
            Err(e) => {
                // The error, with the replica's last output, is logged once secrets are masked.
                tracing::warn!(project = self.project, service = self.service(), slot, action = "gate-failed", container = %name);
                self.drain().remove_or_log(&id).await;
                Err(StepError::gate(format!("new replica {name}"))(e))
            }
        }
    }

    /// Puts a replica that passed its gate into the alias and gives it the slot's name.
    pub(super) async fn promote(&self, slot: u32, id: &str) -> Result<(), StepError> {
        let stable = self.stable(slot);
        self.join(id, &format!("{stable}-next")).await?;
        self.engine
            .rename(id, &stable)
            .await
            .map_err(StepError::engine(format!("rename to {stable}")))
    }

    /// Creates and starts a replica of the desired spec under `name`, in the service's
    /// alias only when `in_alias`.
    async fn start_new(&self, slot: u32, name: &str, in_alias: bool) -> Result<String, StepError> {
        let d = self.desired;
        let mut spec = replica_spec(self.project, d, slot, name, self.opts)?;
        if in_alias {
            for (net, aliases) in &mut spec.networks {
                aliases.extend(d.aliases_on(net));
            }
        }
        let started = tokio::time::Instant::now();
        tracing::info!(project = self.project, service = self.service(), slot, action = "create", container = %name);
        let id = match self.engine.create(&spec).await {
            Ok(id) => id,
            Err(RuntimeError::Conflict(_)) => return Err(StepError::Conflict(name.to_string())),
            Err(e) => return Err(StepError::engine(format!("create {name}"))(e)),
        };
        if let Err(e) = self.engine.start(&id).await {
            self.drain().remove_or_log(&id).await;
            return Err(StepError::engine(format!("start {name}"))(e));
        }
        tracing::info!(project = self.project, service = self.service(), slot, action = "start", container = %name, duration_ms = ms(started.elapsed()));
        let container = name.to_string();
        self.emit(|service| Event::ReplicaStarted {
            service,
            slot,
            container,
        });
        Ok(id)
    }

    /// Sends a progress event of this service.
    fn emit(&self, event: impl FnOnce(String) -> Event) {
        progress::emit(&self.opts.progress, || event(self.service().to_string()));
    }

    /// A new replica's gate starts now.
    fn gating(&self, slot: u32, container: &str) {
        let update = &self.desired.spec.update;
        let (deadline_ms, monitor_ms) = progress::gate_times(update.deadline, update.monitor);
        self.emit(|service| Event::Gate {
            service,
            slot,
            container: container.to_string(),
            deadline_ms,
            monitor_ms,
        });
    }

    /// Old replicas leave the alias and drain for `--drain`.
    fn draining(&self, containers: Vec<String>) {
        let until_ms = progress::unix_ms(std::time::SystemTime::now() + self.opts.drain);
        self.emit(|service| Event::Draining {
            service,
            containers,
            until_ms,
        });
    }

    async fn replace(&self, slots: &[(u32, &ObservedContainer)]) -> Result<(), StepFailure> {
        let update = &self.desired.spec.update;
        let mut moved: Vec<Moved> = Vec::new();
        let result = match update.order {
            UpdateOrder::StartFirst => self.replace_start_first(slots, &mut moved).await,
            UpdateOrder::StopFirst => self.replace_stop_first(slots, &mut moved).await,
        };
        match result {
            Err(error)
                if !error.is_shutdown()
                    && update.on_failure == crate::model::OnFailure::Rollback =>
            {
                // With no slot moved yet, every slot is on its previous replica already.
                let rollback = self.roll_back(moved).await;
                Err(StepFailure {
                    error,
                    rollback: Some(rollback),
                })
            }
            // Success, shutdown (the slots moved so far stay moved) and `pause` (they
            // stay on the new spec): the stopped previous replicas go.
            result => {
                for m in &moved {
                    self.drain().remove_or_log(&m.prev_id).await;
                }
                result.map_err(StepFailure::from)
            }
        }
    }

    /// `update.delay` between two batches; a shutdown cuts it short.
    async fn pause_between_batches(&self) -> Result<(), StepError> {
        let delay = self.desired.spec.update.delay;
        if delay.is_zero() {
            return Ok(());
        }
        tracing::info!(
            project = self.project,
            service = self.service(),
            action = "delay",
            delay_ms = ms(delay)
        );
        tokio::select! {
            _ = tokio::time::sleep(delay) => Ok(()),
            _ = self.cancel.cancelled() => Err(StepError::Shutdown),
        }
    }

    async fn replace_start_first(
        &self,
        slots: &[(u32, &ObservedContainer)],
        moved: &mut Vec<Moved>,
    ) -> Result<(), StepError> {
        let spec = &self.desired.spec;
        for (i, chunk) in slots
            .chunks(spec.update.parallelism.max(1) as usize)
            .enumerate()
        {
            if i > 0 {
                self.pause_between_batches().await?;
            }
            if self.cancel.is_cancelled() {
                return Err(StepError::Shutdown);
            }
            let results = join_all(chunk.iter().map(|(slot, old)| async move {
                self.start_gated(*slot)
                    .await
                    .map(|id| (*slot, *old, id))
                    .map_err(|e| StepError::OldKeptServing(Box::new(e)))
            }))
            .await;
            let mut passed = Vec::new();
            let mut failure = None;
            for r in results {
                match r {
                    Ok(p) => passed.push(p),
                    Err(e) => failure = failure.or(Some(e)),
                }
            }
            if let Some(e) = failure {
                for (_, _, id) in passed {
                    self.drain().remove_or_log(&id).await;
                }
                return Err(e);
            }
            // Traffic first, then names, then traffic again: the new replicas join the
            // alias beside the old ones, take the slots' names, and only then do the
            // old ones leave. After a crash between any two steps each slot holds a
            // replica in the alias under its name, or a lone joined `-next` of the
            // desired spec that the next plan promotes.
            let t = tokio::time::Instant::now();
            for (slot, _, new_id) in &passed {
                self.join(new_id, &format!("{}-next", self.stable(*slot)))
                    .await?;
            }
            for (slot, old, new_id) in &passed {
                let stable = self.stable(*slot);
                self.engine
                    .rename(&old.id, &format!("{stable}-prev"))
                    .await
                    .map_err(StepError::engine(format!("rename {}", old.name)))?;
                self.engine
                    .rename(new_id, &stable)
                    .await
                    .map_err(StepError::engine(format!("rename to {stable}")))?;
            }
            // The old replicas of the chunk leave together, so clients see one moment
            // of change per chunk rather than one per slot, then drain together and
            // stop together.
            let ids: Vec<&str> = passed.iter().map(|(_, old, _)| old.id.as_str()).collect();
            self.draining(passed.iter().map(|(_, old, _)| old.name.clone()).collect());
            let stops = self.drain().retire(&ids, spec.stop_grace).await;
            for (slot, old, new_id) in passed {
                tracing::info!(project = self.project, service = self.service(), slot, action = "replaced", container = %self.stable(slot), stop_ms = ms(t.elapsed()));
                self.emit(|service| Event::SlotDone { service, slot });
                moved.push(Moved {
                    slot,
                    new_id,
                    prev_id: old.id.clone(),
                });
            }
            stops?;
        }
        Ok(())
    }

    async fn replace_stop_first(
        &self,
        slots: &[(u32, &ObservedContainer)],
        moved: &mut Vec<Moved>,
    ) -> Result<(), StepError> {
        for (i, (slot, old)) in slots.iter().enumerate() {
            if i > 0 {
                self.pause_between_batches().await?;
            }
            if self.cancel.is_cancelled() {
                return Err(StepError::Shutdown);
            }
            let stable = self.stable(*slot);
            self.engine
                .rename(&old.id, &format!("{stable}-prev"))
                .await
                .map_err(StepError::engine(format!("rename {}", old.name)))?;
            self.draining(vec![old.name.clone()]);
            if let Err(e) = self
                .drain()
                .retire(&[old.id.as_str()], self.desired.spec.stop_grace)
                .await
            {
                return Err(self.restore_stopped(&old.id, &stable, e).await);
            }
            let outcome = match self.start_gated(*slot).await {
                Ok(id) => match self.promote(*slot, &id).await {
                    Ok(()) => Ok(id),
                    Err(e) => {
                        self.drain().remove_or_log(&id).await;
                        Err(e)
                    }
                },
                Err(e) => Err(e),
            };
            match outcome {
                Ok(new_id) => {
                    let slot = *slot;
                    self.emit(|service| Event::SlotDone { service, slot });
                    moved.push(Moved {
                        slot,
                        new_id,
                        prev_id: old.id.clone(),
                    })
                }
                Err(e) => return Err(self.restore_stopped(&old.id, &stable, e).await),
            }
        }
        Ok(())
    }

    /// Puts a replica into its service's alias on each of its networks, where it is not
    /// yet; the step that lets a replica that passed its gate take traffic.
    pub(super) async fn join(&self, id: &str, name: &str) -> Result<(), StepError> {
        let d = self.desired;
        let started = tokio::time::Instant::now();
        let attached = self
            .engine
            .inspect(id)
            .await
            .map_err(StepError::engine(format!("inspect {name}")))?
            .networks;
        for net in &d.networks {
            let alias = d.aliases_on(net);
            let result = match attached.iter().find(|e| &e.network == net) {
                Some(e) if e.aliases.contains(&alias[0]) => continue,
                Some(e) => self
                    .engine
                    .reconnect(net, id, alias.clone())
                    .await
                    .map(|now| log_moved(name, net, e.address.as_deref(), now.as_deref())),
                None => self.engine.connect(net, id, alias.clone()).await,
            };
            result.map_err(StepError::engine(format!(
                "join {name} to {}'s alias on {net}",
                alias[0]
            )))?;
        }
        tracing::info!(project = self.project, service = self.service(), action = "join", container = %name, duration_ms = ms(started.elapsed()));
        Ok(())
    }
}
