//! One service's steps against the engine: creates, restarts, removals, and the rolling
//! replacement with its rollback.
//!
//! A replacement keeps the replica it replaces, stopped and renamed `<name>-prev`, until
//! every slot of the service has passed its gate; so a failure rolls back to exactly the
//! containers that ran before. A crash at any point leaves names and labels from which
//! the next plan repairs the slot (see `plan`).

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
    prev_networks: Vec<String>,
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
    ) -> Result<(), String> {
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
                tracing::info!(project = self.project, service = self.service(), action = "adopt", container = %container, to = %stable);
                self.engine
                    .rename(&id_of(container)?, &stable)
                    .await
                    .map_err(|e| format!("rename {container} to {stable}: {e}"))?;
            }
        }
        for step in steps {
            if let Step::Restart { container, .. } = step {
                let id = id_of(container)?;
                tracing::info!(project = self.project, service = self.service(), action = "restart", container = %container);
                self.engine
                    .start(&id)
                    .await
                    .map_err(|e| format!("start {container}: {e}"))?;
                self.gate()
                    .pass(self.engine, &id)
                    .await
                    .map_err(|e| format!("restarted replica {container} {e}"))?;
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
            self.create_slots(&creates).await?;
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

    /// New slots all start at once (no running replica is at stake); one that fails its
    /// gate is removed.
    async fn create_slots(&self, slots: &[u32]) -> Result<(), String> {
        {
            let chunk = slots;
            let results = join_all(chunk.iter().map(|slot| async move {
                let name = self.stable(*slot);
                let id = self.start_new(*slot, &name).await?;
                match self.gate().pass(self.engine, &id).await {
                    Ok(()) => Ok(()),
                    Err(e) => {
                        let _ = self.engine.remove(&id).await;
                        Err(format!("new replica {name} {e}"))
                    }
                }
            }))
            .await;
            if let Some(err) = results.into_iter().find_map(Result::err) {
                return Err(err);
            }
        }
        Ok(())
    }

    /// Creates and starts a replica of the desired spec under `name`.
    async fn start_new(&self, slot: u32, name: &str) -> Result<String, String> {
        let d = self.desired.expect("desired");
        let spec = replica_spec(self.project, d, slot, name, self.opts)?;
        let started = tokio::time::Instant::now();
        tracing::info!(project = self.project, service = self.service(), slot, action = "create", container = %name);
        let id = match self.engine.create(&spec).await {
            Ok(id) => id,
            Err(crate::runtime::RuntimeError::Conflict(_)) => {
                return Err(format!(
                    "container name {name} is taken by a container berth does not manage (or of another project); rename or remove it"
                ))
            }
            Err(e) => return Err(format!("create {name}: {e}")),
        };
        if let Err(e) = self.engine.start(&id).await {
            let _ = self.engine.remove(&id).await;
            return Err(format!("start {name}: {e}"));
        }
        tracing::info!(project = self.project, service = self.service(), slot, action = "start", container = %name, duration_ms = ms(started.elapsed()));
        Ok(id)
    }

    async fn replace(&self, slots: &[(u32, &ObservedContainer)]) -> Result<(), String> {
        let d = self.desired.expect("desired");
        let mut moved: Vec<Moved> = Vec::new();
        let result = match d.spec.update.order {
            UpdateOrder::StartFirst => self.replace_start_first(slots, &mut moved).await,
            UpdateOrder::StopFirst => self.replace_stop_first(slots, &mut moved).await,
        };
        match result {
            Ok(()) => {
                for m in &moved {
                    if let Err(e) = self.engine.remove(&m.prev_id).await {
                        tracing::warn!(service = self.service(), error = %e, "previous replica not removed; the next run removes it");
                    }
                }
                Ok(())
            }
            Err(e) if e == SHUTDOWN => {
                // The slots moved so far stay moved; the stopped previous replicas go.
                for m in &moved {
                    let _ = self.engine.remove(&m.prev_id).await;
                }
                Err(e)
            }
            Err(e) => {
                if d.spec.update.on_failure == crate::model::OnFailure::Rollback {
                    self.roll_back(moved).await;
                } else {
                    // `pause`: the slots that moved stay on the new spec; the previous
                    // replicas are removed so the service is left as it stands.
                    for m in &moved {
                        let _ = self.engine.remove(&m.prev_id).await;
                    }
                }
                Err(e)
            }
        }
    }

    async fn replace_start_first(
        &self,
        slots: &[(u32, &ObservedContainer)],
        moved: &mut Vec<Moved>,
    ) -> Result<(), String> {
        let d = self.desired.expect("desired");
        for chunk in slots.chunks(d.spec.update.parallelism.max(1) as usize) {
            if self.cancel.is_cancelled() {
                return Err(SHUTDOWN.into());
            }
            let results = join_all(chunk.iter().map(|(slot, old)| async move {
                let name = format!("{}-next", self.stable(*slot));
                let id = self.start_new(*slot, &name).await?;
                match self.gate().pass(self.engine, &id).await {
                    Ok(()) => Ok((*slot, *old, id)),
                    Err(e) => {
                        // The error, with the replica's last output, is logged once secrets are masked.
                        tracing::warn!(project = self.project, service = self.service(), slot, action = "gate-failed", container = %name);
                        let _ = self.engine.remove(&id).await;
                        Err(format!("new replica {name} {e}; the old replica kept serving"))
                    }
                }
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
                    let _ = self.engine.remove(&id).await;
                }
                return Err(e);
            }
            // Names first, traffic second: after a crash between any two of these
            // steps each slot holds the new replica under its name, or as the only
            // healthy one of the desired spec, and the next plan finishes the move.
            let t = tokio::time::Instant::now();
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
            // The old replicas of the chunk leave the network together, so clients
            // see one moment of change per chunk rather than one per slot, then drain
            // together and stop together.
            let networks = join_all(
                passed
                    .iter()
                    .map(|(_, old, _)| self.take_off_networks(&old.id)),
            )
            .await;
            tokio::time::sleep(self.opts.drain).await;
            let stops = join_all(passed.iter().map(|(_, old, _)| async move {
                self.engine
                    .stop(&old.id, d.spec.stop_grace)
                    .await
                    .map_err(|e| format!("stop {}: {e}", old.name))
            }))
            .await;
            for ((slot, old, new_id), prev_networks) in passed.into_iter().zip(networks) {
                tracing::info!(project = self.project, service = self.service(), slot, action = "replaced", container = %self.stable(slot), stop_ms = ms(t.elapsed()));
                moved.push(Moved {
                    slot,
                    new_id,
                    prev_id: old.id.clone(),
                    prev_networks,
                });
            }
            if let Some(e) = stops.into_iter().find_map(Result::err) {
                return Err(e);
            }
        }
        Ok(())
    }

    async fn replace_stop_first(
        &self,
        slots: &[(u32, &ObservedContainer)],
        moved: &mut Vec<Moved>,
    ) -> Result<(), String> {
        let d = self.desired.expect("desired");
        for (slot, old) in slots {
            if self.cancel.is_cancelled() {
                return Err(SHUTDOWN.into());
            }
            let stable = self.stable(*slot);
            let prev = format!("{stable}-prev");
            self.engine
                .stop(&old.id, d.spec.stop_grace)
                .await
                .map_err(|e| format!("stop {}: {e}", old.name))?;
            self.engine
                .rename(&old.id, &prev)
                .await
                .map_err(|e| format!("rename {}: {e}", old.name))?;
            let outcome = match self.start_new(*slot, &stable).await {
                Ok(id) => match self.gate().pass(self.engine, &id).await {
                    Ok(()) => Ok(id),
                    Err(e) => {
                        let _ = self.engine.remove(&id).await;
                        Err(format!(
                            "new replica {stable} {e}; the old replica was restarted"
                        ))
                    }
                },
                Err(e) => Err(e),
            };
            match outcome {
                Ok(new_id) => moved.push(Moved {
                    slot: *slot,
                    new_id,
                    prev_id: old.id.clone(),
                    prev_networks: Vec::new(),
                }),
                Err(e) => {
                    let _ = self.engine.rename(&old.id, &stable).await;
                    let _ = self.engine.start(&old.id).await;
                    return Err(e);
                }
            }
        }
        Ok(())
    }

    /// Puts the previous replicas back, newest move first.
    async fn roll_back(&self, moved: Vec<Moved>) {
        let d = self.desired.expect("desired");
        for m in moved.into_iter().rev() {
            let stable = self.stable(m.slot);
            tracing::warn!(project = self.project, service = self.service(), slot = m.slot, action = "rollback", container = %stable);
            match d.spec.update.order {
                UpdateOrder::StartFirst => {
                    for net in &m.prev_networks {
                        let _ = self
                            .engine
                            .connect(net, &m.prev_id, vec![self.service().to_string()])
                            .await;
                    }
                    let _ = self.engine.start(&m.prev_id).await;
                    if let Err(e) = self.gate().pass(self.engine, &m.prev_id).await {
                        tracing::error!(service = self.service(), slot = m.slot, error = %e, "previous replica did not come back healthy");
                    }
                    let _ = self
                        .engine
                        .rename(&m.new_id, &format!("{stable}-next"))
                        .await;
                    let _ = self.engine.rename(&m.prev_id, &stable).await;
                    self.take_off_networks(&m.new_id).await;
                    tokio::time::sleep(self.opts.drain).await;
                    let _ = self.engine.stop(&m.new_id, d.spec.stop_grace).await;
                    let _ = self.engine.remove(&m.new_id).await;
                }
                UpdateOrder::StopFirst => {
                    let _ = self.engine.stop(&m.new_id, d.spec.stop_grace).await;
                    let _ = self.engine.remove(&m.new_id).await;
                    let _ = self.engine.rename(&m.prev_id, &stable).await;
                    let _ = self.engine.start(&m.prev_id).await;
                }
            }
        }
    }

    /// Disconnects a container from every network so no new request reaches it;
    /// returns the networks it was on.
    async fn take_off_networks(&self, id: &str) -> Vec<String> {
        let networks = match self.engine.inspect(id).await {
            Ok(d) => d.networks,
            Err(_) => return Vec::new(),
        };
        for net in &networks {
            if let Err(e) = self.engine.disconnect(net, id).await {
                tracing::debug!(network = %net, error = %e, "disconnect failed");
            }
        }
        networks
    }

    /// Takes a container off its networks, lets requests drain, stops it with its
    /// grace and removes it.
    async fn remove_gracefully(&self, c: &ObservedContainer) -> Result<(), String> {
        tracing::info!(project = self.project, service = %c.service, action = "remove", container = %c.name);
        let grace = self
            .desired
            .map(|d| d.spec.stop_grace)
            .unwrap_or(Duration::from_secs(10));
        if c.state == RunState::Running {
            self.take_off_networks(&c.id).await;
            tokio::time::sleep(self.opts.drain).await;
            self.engine
                .stop(&c.id, grace)
                .await
                .map_err(|e| format!("stop {}: {e}", c.name))?;
        }
        self.engine
            .remove(&c.id)
            .await
            .map_err(|e| format!("remove {}: {e}", c.name))
    }
}
