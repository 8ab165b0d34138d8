//! One service's steps against the engine: creates, restarts, removals, and the rolling
//! replacement with its rollback.
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
use std::time::Duration;

use futures_util::future::join_all;

use super::container::replica_spec;
use super::gate::RolloutGate;
use super::ApplyOptions;
use crate::model::UpdateOrder;
use crate::plan::{DesiredService, Step};
use crate::runtime::{replica_name, Engine, ObservedContainer, RunState};

/// The error of a rollout stopped because berth is shutting down; never rolled back.
pub(crate) const SHUTDOWN: &str =
    "berth is stopping; the rest of this rollout continues on its next start";

/// Why a service's steps stopped short.
#[derive(Debug)]
pub(crate) enum StepFailure {
    /// berth is shutting down; the slots moved so far stay moved.
    Shutdown,
    /// A step failed.
    Failed {
        /// What failed, unmasked (the caller masks it).
        message: String,
        /// What became of the slots of a replacement with `on_failure: rollback`:
        /// `Some(Ok)` when every one is on its previous replica (none may have moved),
        /// `Some(Err)` with what could not be put back; `None` when nothing was to be
        /// rolled back (another step failed, or `on_failure: pause`).
        rollback: Option<Result<(), String>>,
    },
}

impl From<String> for StepFailure {
    fn from(message: String) -> Self {
        if message == SHUTDOWN {
            StepFailure::Shutdown
        } else {
            StepFailure::Failed {
                message,
                rollback: None,
            }
        }
    }
}

pub(super) struct Rollout<'a> {
    pub cancel: &'a tokio_util::sync::CancellationToken,
    pub engine: &'a dyn Engine,
    pub opts: &'a ApplyOptions,
    pub project: &'a str,
    /// `None` for a service that left the desired state.
    pub desired: Option<&'a DesiredService>,
}

/// A slot whose replica was replaced in this run, kept until the service succeeds.
struct Moved {
    slot: u32,
    new_id: String,
    prev_id: String,
}

fn ms(d: Duration) -> u64 {
    d.as_millis() as u64
}

impl Rollout<'_> {
    fn service(&self) -> &str {
        self.desired.map(|d| d.spec.name.as_str()).unwrap_or("")
    }

    fn gate(&self) -> RolloutGate {
        let d = self.desired.expect("gates only for desired services");
        RolloutGate {
            deadline: d.spec.update.deadline,
            monitor: d.spec.update.monitor,
            poll: self.opts.poll,
        }
    }

    fn stable(&self, slot: u32) -> String {
        replica_name(self.project, self.service(), slot)
    }

    /// Carries out the steps in an order that keeps capacity: leftovers and extra slots
    /// go first, then adoption, restarts, new slots, and the rolling replacement last.
    pub async fn run(
        &self,
        steps: &[Step],
        by_name: &HashMap<&str, &ObservedContainer>,
    ) -> Result<(), StepFailure> {
        let id_of = |name: &str| {
            by_name
                .get(name)
                .map(|c| c.id.clone())
                .ok_or_else(|| format!("container {name} vanished"))
        };
        for step in steps {
            if let Step::Remove { container, .. } = step {
                let c = by_name
                    .get(container.as_str())
                    .ok_or_else(|| format!("container {container} vanished"))?;
                self.remove_gracefully(c).await?;
            }
        }
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
                    .map_err(|e| format!("rename {container} to {stable}: {e}"))?;
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
            let serving = by_name.values().any(|c| {
                c.service == self.service() && c.role == crate::runtime::Role::Replica && c.is_up()
            });
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
    async fn restart(&self, slot: u32, container: &str, id: &str) -> Result<(), String> {
        let stable = self.stable(slot);
        let next = format!("{stable}-next");
        tracing::info!(project = self.project, service = self.service(), action = "restart", container = %container);
        self.engine
            .rename(id, &next)
            .await
            .map_err(|e| format!("rename {container}: {e}"))?;
        self.leave(id, None).await;
        let outcome = match self.engine.start(id).await {
            Ok(()) => self
                .gate()
                .pass(self.engine, id)
                .await
                .map_err(|e| format!("restarted replica {container} {e}")),
            Err(e) => Err(format!("start {container}: {e}")),
        };
        if let Err(e) = outcome {
            if let Err(stop) = self.engine.stop(id, self.grace()).await {
                tracing::warn!(container = %container, error = %stop, "replica that failed its gate not stopped");
            }
            self.rename_or_log(id, &stable).await;
            return Err(e);
        }
        self.join(id, &next).await?;
        self.engine
            .rename(id, &stable)
            .await
            .map_err(|e| format!("rename {next} to {stable}: {e}"))
    }

    /// New slots all start at once (no running replica is at stake); one that fails its
    /// gate is removed.
    async fn create_slots(&self, slots: &[u32], cold: bool) -> Result<(), String> {
        let results = join_all(slots.iter().map(|slot| async move {
            if cold {
                let name = self.stable(*slot);
                let id = self.start_new(*slot, &name, true).await?;
                return match self.gate().pass(self.engine, &id).await {
                    Ok(()) => Ok(()),
                    Err(e) => {
                        tracing::warn!(project = self.project, service = self.service(), slot, action = "gate-failed", container = %name);
                        self.remove_or_log(&id).await;
                        Err(format!("new replica {name} {e}"))
                    }
                };
            }
            // The new replica gets the slot's name only after its gate: make sure,
            // before anything starts, that nobody else holds it.
            let stable = self.stable(*slot);
            match self.engine.inspect(&stable).await {
                Err(crate::runtime::RuntimeError::NotFound(_)) => {}
                Ok(_) => return Err(name_taken(&stable)),
                Err(e) => return Err(format!("inspect {stable}: {e}")),
            }
            let id = self.start_gated(*slot).await?;
            self.promote(*slot, &id).await
        }))
        .await;
        results
            .into_iter()
            .find_map(Result::err)
            .map_or(Ok(()), Err)
    }

    /// Creates and starts a replica of the desired spec as `<name>-next`, outside the
    /// service's alias, and waits for its gate; one that fails is removed.
    async fn start_gated(&self, slot: u32) -> Result<String, String> {
        let name = format!("{}-next", self.stable(slot));
        let id = self.start_new(slot, &name, false).await?;
        match self.gate().pass(self.engine, &id).await {
            Ok(()) => Ok(id),
            Err(e) => {
                // The error, with the replica's last output, is logged once secrets are masked.
                tracing::warn!(project = self.project, service = self.service(), slot, action = "gate-failed", container = %name);
                self.remove_or_log(&id).await;
                Err(format!("new replica {name} {e}"))
            }
        }
    }

    /// Puts a replica that passed its gate into the alias and gives it the slot's name.
    async fn promote(&self, slot: u32, id: &str) -> Result<(), String> {
        let stable = self.stable(slot);
        self.join(id, &format!("{stable}-next")).await?;
        self.engine
            .rename(id, &stable)
            .await
            .map_err(|e| format!("rename to {stable}: {e}"))
    }

    /// Creates and starts a replica of the desired spec under `name`, in the service's
    /// alias only when `in_alias`.
    async fn start_new(&self, slot: u32, name: &str, in_alias: bool) -> Result<String, String> {
        let d = self.desired.expect("desired");
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
            Err(crate::runtime::RuntimeError::Conflict(_)) => return Err(name_taken(name)),
            Err(e) => return Err(format!("create {name}: {e}")),
        };
        if let Err(e) = self.engine.start(&id).await {
            self.remove_or_log(&id).await;
            return Err(format!("start {name}: {e}"));
        }
        tracing::info!(project = self.project, service = self.service(), slot, action = "start", container = %name, duration_ms = ms(started.elapsed()));
        Ok(id)
    }

    async fn replace(&self, slots: &[(u32, &ObservedContainer)]) -> Result<(), StepFailure> {
        let d = self.desired.expect("desired");
        let mut moved: Vec<Moved> = Vec::new();
        let result = match d.spec.update.order {
            UpdateOrder::StartFirst => self.replace_start_first(slots, &mut moved).await,
            UpdateOrder::StopFirst => self.replace_stop_first(slots, &mut moved).await,
        };
        match result {
            Err(message)
                if message != SHUTDOWN
                    && d.spec.update.on_failure == crate::model::OnFailure::Rollback =>
            {
                // With no slot moved yet, every slot is on its previous replica already.
                let restored = self.roll_back(moved).await;
                Err(StepFailure::Failed {
                    message,
                    rollback: Some(restored),
                })
            }
            // Success, shutdown (the slots moved so far stay moved) and `pause` (they
            // stay on the new spec): the stopped previous replicas go.
            result => {
                for m in &moved {
                    self.remove_or_log(&m.prev_id).await;
                }
                result.map_err(StepFailure::from)
            }
        }
    }

    /// `update.delay` between two batches; a shutdown cuts it short.
    async fn pause_between_batches(&self) -> Result<(), String> {
        let delay = self.desired.expect("desired").spec.update.delay;
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
            _ = self.cancel.cancelled() => Err(SHUTDOWN.into()),
        }
    }

    async fn replace_start_first(
        &self,
        slots: &[(u32, &ObservedContainer)],
        moved: &mut Vec<Moved>,
    ) -> Result<(), String> {
        let d = self.desired.expect("desired");
        for (i, chunk) in slots
            .chunks(d.spec.update.parallelism.max(1) as usize)
            .enumerate()
        {
            if i > 0 {
                self.pause_between_batches().await?;
            }
            if self.cancel.is_cancelled() {
                return Err(SHUTDOWN.into());
            }
            let results = join_all(chunk.iter().map(|(slot, old)| async move {
                self.start_gated(*slot)
                    .await
                    .map(|id| (*slot, *old, id))
                    .map_err(|e| format!("{e}; the old replica kept serving"))
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
                    self.remove_or_log(&id).await;
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
                    .map_err(|e| format!("rename {}: {e}", old.name))?;
                self.engine
                    .rename(new_id, &stable)
                    .await
                    .map_err(|e| format!("rename to {stable}: {e}"))?;
            }
            // The old replicas of the chunk leave together, so clients see one moment
            // of change per chunk rather than one per slot, then drain together and
            // stop together.
            let ids: Vec<&str> = passed.iter().map(|(_, old, _)| old.id.as_str()).collect();
            let stops = self.retire(&ids, d.spec.stop_grace).await;
            for (slot, old, new_id) in passed {
                tracing::info!(project = self.project, service = self.service(), slot, action = "replaced", container = %self.stable(slot), stop_ms = ms(t.elapsed()));
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
    ) -> Result<(), String> {
        let d = self.desired.expect("desired");
        for (i, (slot, old)) in slots.iter().enumerate() {
            if i > 0 {
                self.pause_between_batches().await?;
            }
            if self.cancel.is_cancelled() {
                return Err(SHUTDOWN.into());
            }
            let stable = self.stable(*slot);
            self.engine
                .rename(&old.id, &format!("{stable}-prev"))
                .await
                .map_err(|e| format!("rename {}: {e}", old.name))?;
            if let Err(e) = self.retire(&[old.id.as_str()], d.spec.stop_grace).await {
                return Err(self.restore_stopped(&old.id, &stable, e).await);
            }
            let outcome = match self.start_gated(*slot).await {
                Ok(id) => match self.promote(*slot, &id).await {
                    Ok(()) => Ok(id),
                    Err(e) => {
                        self.remove_or_log(&id).await;
                        Err(e)
                    }
                },
                Err(e) => Err(e),
            };
            match outcome {
                Ok(new_id) => moved.push(Moved {
                    slot: *slot,
                    new_id,
                    prev_id: old.id.clone(),
                }),
                Err(e) => return Err(self.restore_stopped(&old.id, &stable, e).await),
            }
        }
        Ok(())
    }

    /// Puts a stop-first slot's old replica back after `error`; the message says
    /// whether it came back.
    async fn restore_stopped(&self, id: &str, stable: &str, error: String) -> String {
        self.rename_or_log(id, stable).await;
        match self.rejoin(id).await {
            Ok(()) => format!("{error}; the old replica was restarted"),
            Err(e) => format!("{error}; the old replica did not come back: {e}"),
        }
    }

    /// Puts the previous replicas back, newest move first: each starts, passes its gate
    /// as a new replica would, and joins the alias before the new one leaves it. Says
    /// which slots could not be put back, and why.
    async fn roll_back(&self, moved: Vec<Moved>) -> Result<(), String> {
        let d = self.desired.expect("desired");
        let mut failed = Vec::new();
        for m in moved.into_iter().rev() {
            let stable = self.stable(m.slot);
            tracing::warn!(project = self.project, service = self.service(), slot = m.slot, action = "rollback", container = %stable);
            let restored = match d.spec.update.order {
                UpdateOrder::StartFirst => match self.rejoin(&m.prev_id).await {
                    Ok(()) => {
                        self.rename_or_log(&m.new_id, &format!("{stable}-next"))
                            .await;
                        self.rename_or_log(&m.prev_id, &stable).await;
                        self.retire_and_remove(&m.new_id, m.slot).await;
                        Ok(())
                    }
                    // The new replica keeps serving in its slot: better than none.
                    Err(e) => {
                        self.remove_or_log(&m.prev_id).await;
                        Err(e)
                    }
                },
                UpdateOrder::StopFirst => {
                    self.rename_or_log(&m.new_id, &format!("{stable}-next"))
                        .await;
                    self.retire_and_remove(&m.new_id, m.slot).await;
                    self.rename_or_log(&m.prev_id, &stable).await;
                    self.rejoin(&m.prev_id).await
                }
            };
            if let Err(e) = restored {
                // The reason may quote the replica's output: the caller logs it masked.
                tracing::error!(
                    service = self.service(),
                    slot = m.slot,
                    "slot not rolled back"
                );
                failed.push(format!("{stable}: {e}"));
            }
        }
        if failed.is_empty() {
            Ok(())
        } else {
            Err(failed.join("; "))
        }
    }

    async fn retire_and_remove(&self, id: &str, slot: u32) {
        if let Err(e) = self.retire(&[id], self.grace()).await {
            tracing::warn!(service = self.service(), slot, error = %e, "replica rolled back from not stopped");
        }
        self.remove_or_log(id).await;
    }

    /// Starts a previous replica again, lets it pass its gate and puts it back into the
    /// alias; says what went wrong when it does not come back.
    async fn rejoin(&self, id: &str) -> Result<(), String> {
        self.leave(id, None).await;
        self.engine
            .start(id)
            .await
            .map_err(|e| format!("previous replica not started again: {e}"))?;
        self.gate()
            .pass(self.engine, id)
            .await
            .map_err(|e| format!("previous replica {e}"))?;
        self.join(id, id).await
    }

    /// Puts a replica into its service's alias on each of its networks, where it is not
    /// yet; the step that lets a replica that passed its gate take traffic.
    async fn join(&self, id: &str, name: &str) -> Result<(), String> {
        let d = self.desired.expect("desired");
        let started = tokio::time::Instant::now();
        let attached = self
            .engine
            .inspect(id)
            .await
            .map_err(|e| format!("inspect {name}: {e}"))?
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
            result.map_err(|e| format!("join {name} to {}'s alias on {net}: {e}", alias[0]))?;
        }
        tracing::info!(project = self.project, service = self.service(), action = "join", container = %name, duration_ms = ms(started.elapsed()));
        Ok(())
    }

    /// Takes a replica out of `service`'s alias on every network, keeping it attached
    /// (same address, when the engine hands it back) so that requests in flight and its
    /// own connections go on while it drains and stops. Failures are logged: a replica
    /// that could not leave is stopped all the same.
    ///
    /// With `service` `None`, it leaves every network's aliases: what a stopped replica
    /// does before it starts again (it joins after its gate), which also forgets the
    /// address it last held, since a newer replica may hold that by now.
    async fn leave(&self, id: &str, service: Option<&str>) {
        let started = tokio::time::Instant::now();
        let attached = match self.engine.inspect(id).await {
            Ok(d) => d.networks,
            Err(e) => {
                tracing::debug!(container = %id, error = %e, "not inspected before leaving its alias");
                return;
            }
        };
        for e in attached
            .iter()
            .filter(|e| service.is_none_or(|s| e.aliases.iter().any(|a| a == s)))
        {
            match self.engine.reconnect(&e.network, id, Vec::new()).await {
                Ok(now) => log_moved(id, &e.network, e.address.as_deref(), now.as_deref()),
                Err(err) => {
                    tracing::warn!(network = %e.network, container = %id, error = %err, "replica did not leave its alias")
                }
            }
        }
        tracing::debug!(project = self.project, service = service.unwrap_or_default(), action = "leave", container = %id, duration_ms = ms(started.elapsed()));
    }

    /// Retires running replicas: they leave the alias together, drain for `--drain`,
    /// then get their stop signal with `grace`, together.
    async fn retire(&self, ids: &[&str], grace: Duration) -> Result<(), String> {
        join_all(ids.iter().map(|id| self.leave(id, Some(self.service())))).await;
        tokio::time::sleep(self.opts.drain).await;
        let stops = join_all(ids.iter().map(|id| async move {
            self.engine
                .stop(id, grace)
                .await
                .map_err(|e| format!("stop {id}: {e}"))
        }))
        .await;
        stops.into_iter().find_map(Result::err).map_or(Ok(()), Err)
    }

    fn grace(&self) -> Duration {
        self.desired
            .map(|d| d.spec.stop_grace)
            .unwrap_or(Duration::from_secs(10))
    }

    async fn rename_or_log(&self, id: &str, name: &str) {
        if let Err(e) = self.engine.rename(id, name).await {
            tracing::warn!(service = self.service(), container = %id, to = %name, error = %e, "rename failed; the next run repairs the slot");
        }
    }

    async fn remove_or_log(&self, id: &str) {
        if let Err(e) = self.engine.remove(id).await {
            tracing::warn!(service = self.service(), container = %id, error = %e, "container not removed; the next run removes it");
        }
    }

    /// Takes a container out of its alias, lets requests drain, stops it with its
    /// grace and removes it.
    async fn remove_gracefully(&self, c: &ObservedContainer) -> Result<(), String> {
        tracing::info!(project = self.project, service = %c.service, action = "remove", container = %c.name);
        if c.state == RunState::Running {
            self.leave(&c.id, Some(&c.service)).await;
            tokio::time::sleep(self.opts.drain).await;
            self.engine
                .stop(&c.id, self.grace())
                .await
                .map_err(|e| format!("stop {}: {e}", c.name))?;
        }
        self.engine
            .remove(&c.id)
            .await
            .map_err(|e| format!("remove {}: {e}", c.name))
    }
}

fn name_taken(name: &str) -> String {
    format!(
        "container name {name} is taken by a container berth does not manage (or of another project); rename or remove it"
    )
}

/// Logs an endpoint whose address changed across a reconnect: connections through the
/// old address did not survive it.
fn log_moved(container: &str, network: &str, before: Option<&str>, after: Option<&str>) {
    if before.is_some() && before != after {
        tracing::info!(container = %container, network = %network, before = ?before, after = ?after, action = "address-changed", "the engine gave another address; connections through the old one were cut");
    }
}
