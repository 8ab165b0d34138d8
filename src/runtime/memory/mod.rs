//! An [`Engine`] held in memory, for tests of everything above the Docker boundary.
//!
//! It behaves as dockerd does where berth looks (names are unique, a container is found
//! by name or ID, a removed container is gone, a stop is a `die` event), and it can be
//! told how each image behaves: when its health check passes or fails, when its
//! containers exit and with which code, how long a pull takes, which call fails. Every
//! call is recorded with its time, so a test asserts the order of operations.
//!
//! Time is `tokio::time` only: under `#[tokio::test(start_paused = true)]` a health gate
//! of two minutes takes no wall-clock time at all, and to the millisecond.
//!
//! Listing goes through the same conversion as the Docker engine's (labels, the role told
//! by the name), so what the executor observes is what it would observe from dockerd.

mod engine;
mod script;
mod world;

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bollard::models::ContainerSummary;
use tokio::sync::{broadcast, watch};
use tokio::time::Instant;

pub use script::{Behaviour, Call, ContainerView, Health, Op};
use world::{digest_of, injected, now_text, Fault, World};

use super::{labels, ObservedContainer, RunState, RuntimeError};

struct Shared {
    world: Mutex<World>,
    /// Bumped on every change of a container, so that `wait` wakes.
    changed: watch::Sender<u64>,
    /// One message per `die`, `destroy` or health change, as Docker's event stream.
    events: broadcast::Sender<Result<(), String>>,
    epoch: Instant,
}

/// The in-memory engine. Clones share one host.
#[derive(Clone)]
pub struct MemoryEngine {
    shared: Arc<Shared>,
}

impl Default for MemoryEngine {
    fn default() -> Self {
        Self::new()
    }
}

impl MemoryEngine {
    /// An empty host: no image, no container; every image pulls at once and is healthy
    /// at its first check.
    pub fn new() -> Self {
        let (changed, _) = watch::channel(0);
        let (events, _) = broadcast::channel(1024);
        Self {
            shared: Arc::new(Shared {
                world: Mutex::new(World::default()),
                changed,
                events,
                epoch: Instant::now(),
            }),
        }
    }

    fn world(&self) -> MutexGuard<'_, World> {
        // A test that panicked while holding the lock has failed already.
        self.shared
            .world
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn touched(&self) {
        self.shared.changed.send_modify(|n| *n += 1);
    }

    fn event(&self) {
        // Nobody listening is fine.
        let _ = self.shared.events.send(Ok(()));
    }

    /// Records a call and answers whether an injected failure takes it.
    fn call(&self, op: Op, target: &str, arg: Option<String>) -> Result<(), RuntimeError> {
        let at = self.shared.epoch.elapsed();
        let mut w = self.world();
        let target_name = w.label_of(target);
        let failed = w.fault(op, &target_name) || (target_name != target && w.fault(op, target));
        w.calls.push(Call {
            op,
            target: target_name.clone(),
            arg,
            at,
            failed,
        });
        if failed {
            Err(injected(op, &target_name))
        } else {
            Ok(())
        }
    }

    fn mark_failed(&self) {
        if let Some(last) = self.world().calls.last_mut() {
            last.failed = true;
        }
    }

    // --- Scripting -------------------------------------------------------------------

    /// How containers of `image` behave from now on (those created later).
    pub fn behave(&self, image: &str, behaviour: Behaviour) -> &Self {
        self.world().by_image.insert(image.to_string(), behaviour);
        self
    }

    /// How containers whose name starts with `prefix` behave; the longest prefix wins,
    /// over any image's behaviour.
    pub fn behave_named(&self, prefix: &str, behaviour: Behaviour) -> &Self {
        self.world().by_name.push((prefix.to_string(), behaviour));
        self
    }

    /// How every other container behaves.
    pub fn behave_by_default(&self, behaviour: Behaviour) -> &Self {
        self.world().default = behaviour;
        self
    }

    /// Puts `image` on the host, as if pulled before.
    pub fn add_image(&self, image: &str) -> &Self {
        let mut w = self.world();
        let digest = w
            .digests
            .get(image)
            .cloned()
            .unwrap_or_else(|| digest_of(image));
        w.images.insert(image.to_string(), digest);
        self
    }

    /// Gives `image` this digest (by default one derived from its reference).
    pub fn set_digest(&self, image: &str, digest: &str) -> &Self {
        let mut w = self.world();
        w.digests.insert(image.to_string(), digest.to_string());
        if let Some(d) = w.images.get_mut(image) {
            *d = digest.to_string();
        }
        self
    }

    /// Makes every pull fail as dockerd's does when the registry cannot be reached
    /// (`down`), or succeed again.
    pub fn registry_down(&self, down: bool) -> &Self {
        self.world().registry_down = down;
        self
    }

    /// Makes a pull of `image` take `delay`.
    pub fn slow_pull(&self, image: &str, delay: Duration) -> &Self {
        self.world().pull_delays.insert(image.to_string(), delay);
        self
    }

    /// Makes every call `op` on `target` fail (a container's name, an image, a network;
    /// `*` for any).
    pub fn fail(&self, op: Op, target: &str) -> &Self {
        self.fail_times(op, target, None)
    }

    /// Makes the next `times` calls `op` on `target` fail.
    pub fn fail_next(&self, op: Op, target: &str, times: u32) -> &Self {
        self.fail_times(op, target, Some(times.max(1)))
    }

    fn fail_times(&self, op: Op, target: &str, left: Option<u32>) -> &Self {
        self.world().faults.push(Fault {
            op,
            target: target.to_string(),
            left,
        });
        self
    }

    /// Takes back every injected failure of `op`.
    pub fn heal(&self, op: Op) -> &Self {
        self.world().faults.retain(|f| f.op != op);
        self
    }

    /// A container dies as if killed from outside berth (the OOM killer, `docker kill`):
    /// a `die` event, and Docker's restart policy does not bring it back.
    pub fn crash(&self, name: &str, code: i64) -> Result<(), RuntimeError> {
        {
            let mut w = self.world();
            let c = w.container(name)?;
            c.state = RunState::Exited(Some(code));
            c.last_exit_code = Some(code);
            c.started = None;
            c.finished_at = Some(now_text());
            c.run += 1;
            for e in &mut c.endpoints {
                e.address = None;
            }
        }
        self.touched();
        self.event();
        Ok(())
    }

    /// A container removed from outside berth (`docker rm -f`): a `destroy` event.
    pub fn remove_by_hand(&self, name: &str) -> Result<(), RuntimeError> {
        {
            let mut w = self.world();
            let id = w
                .find(name)
                .ok_or_else(|| RuntimeError::NotFound(name.to_string()))?;
            w.containers.remove(&id);
        }
        self.touched();
        self.event();
        Ok(())
    }

    /// Breaks every open event stream, as a daemon restart does.
    pub fn break_events(&self) {
        let _ = self.shared.events.send(Err("event stream closed".into()));
    }

    // --- Looking ---------------------------------------------------------------------

    /// Every call so far.
    pub fn calls(&self) -> Vec<Call> {
        self.world().calls.clone()
    }

    /// The calls that changed something, as text (`create shop-api-1`), in order.
    pub fn actions(&self) -> Vec<String> {
        self.world()
            .calls
            .iter()
            .filter(|c| c.op.mutates())
            .map(Call::to_string)
            .collect()
    }

    /// The calls of these kinds, as text, in order.
    pub fn calls_of(&self, ops: &[Op]) -> Vec<String> {
        self.world()
            .calls
            .iter()
            .filter(|c| ops.contains(&c.op))
            .map(Call::to_string)
            .collect()
    }

    /// How many calls of `op` were made.
    pub fn count(&self, op: Op) -> usize {
        self.world().calls.iter().filter(|c| c.op == op).count()
    }

    /// Forgets the calls so far (the state stays).
    pub fn clear_calls(&self) {
        self.world().calls.clear();
    }

    /// Every container, by name.
    pub fn containers(&self) -> Vec<ContainerView> {
        let now = Instant::now();
        let w = self.world();
        let mut all: Vec<ContainerView> = w.containers.values().map(|c| c.view(now)).collect();
        all.sort_by(|a, b| a.name.cmp(&b.name));
        all
    }

    /// The container of this name.
    pub fn container(&self, name: &str) -> Option<ContainerView> {
        self.containers().into_iter().find(|c| c.name == name)
    }

    /// `name image` of each running container, by name: what serves.
    pub fn running(&self) -> Vec<String> {
        self.containers()
            .into_iter()
            .filter(|c| matches!(c.state, RunState::Running | RunState::Restarting))
            .map(|c| format!("{} {}", c.name, c.image))
            .collect()
    }

    /// True when `image` is on the host.
    pub fn image_present(&self, image: &str) -> bool {
        self.world().images.contains_key(image)
    }

    /// Names of the networks.
    pub fn networks(&self) -> Vec<String> {
        self.world()
            .networks
            .iter()
            .map(|(n, _)| n.name.clone())
            .collect()
    }

    // --- Internals -------------------------------------------------------------------

    /// Schedules the exit a behaviour asks for, for run `run` of container `id`.
    fn schedule_exit(&self, id: &str, run: u64, after: Duration, code: i64) {
        let engine = self.clone();
        let id = id.to_string();
        tokio::spawn(async move {
            tokio::time::sleep(after).await;
            let exited = {
                let mut w = engine.world();
                let Some(c) = w.containers.get_mut(&id) else {
                    return;
                };
                if c.run != run || !c.is_up() {
                    return;
                }
                c.last_exit_code = Some(code);
                if c.spec.restart {
                    // Docker's restart policy brings it back at once.
                    c.restart_count += 1;
                    c.run += 1;
                    c.started = Some(Instant::now());
                    c.started_at = Some(now_text());
                    Some((c.run, true))
                } else {
                    c.state = RunState::Exited(Some(code));
                    c.started = None;
                    c.finished_at = Some(now_text());
                    for e in &mut c.endpoints {
                        e.address = None;
                    }
                    Some((c.run, false))
                }
            };
            engine.touched();
            engine.event();
            if let Some((run, true)) = exited {
                engine.schedule_exit(&id, run, after, code);
            }
        });
    }

    fn list(&self, project: Option<&str>) -> Result<Vec<ObservedContainer>, RuntimeError> {
        let now = Instant::now();
        let summaries: Vec<ContainerSummary> = {
            let w = self.world();
            w.containers
                .values()
                .filter(|c| match (project, c.spec.labels.get(labels::PROJECT)) {
                    (_, None) => false,
                    (None, Some(_)) => true,
                    (Some(p), Some(q)) => p == q,
                })
                .map(|c| c.summary(now))
                .collect()
        };
        summaries
            .into_iter()
            .map(super::docker::convert_summary)
            .collect()
    }
}

#[cfg(test)]
mod tests;
