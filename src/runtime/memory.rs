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

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use async_trait::async_trait;
use bollard::models::{ContainerSummary, ContainerSummaryStateEnum};
use futures_util::stream::BoxStream;
use tokio::sync::{broadcast, watch};
use tokio::time::Instant;

use super::{
    labels, ContainerDetails, ContainerSpec, Endpoint, Engine, HealthState, ObservedContainer,
    ObservedObject, RegistryAuth, RunState, RuntimeError,
};

/// One kind of engine call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Op {
    /// [`Engine::list_managed`].
    ListManaged,
    /// [`Engine::list_project`].
    ListProject,
    /// [`Engine::inspect`].
    Inspect,
    /// [`Engine::has_image`].
    HasImage,
    /// [`Engine::pull`].
    Pull,
    /// [`Engine::image_digest`].
    ImageDigest,
    /// [`Engine::create`].
    Create,
    /// [`Engine::start`].
    Start,
    /// [`Engine::stop`].
    Stop,
    /// [`Engine::kill`].
    Kill,
    /// [`Engine::remove`].
    Remove,
    /// [`Engine::rename`].
    Rename,
    /// [`Engine::disconnect`].
    Disconnect,
    /// [`Engine::connect`].
    Connect,
    /// [`Engine::reconnect`].
    Reconnect,
    /// [`Engine::network_exists`].
    NetworkExists,
    /// [`Engine::volume_exists`].
    VolumeExists,
    /// [`Engine::list_networks`].
    ListNetworks,
    /// [`Engine::create_network`].
    CreateNetwork,
    /// [`Engine::remove_network`].
    RemoveNetwork,
    /// [`Engine::list_volumes`].
    ListVolumes,
    /// [`Engine::create_volume`].
    CreateVolume,
    /// [`Engine::logs_tail`].
    LogsTail,
    /// [`Engine::wait`].
    Wait,
    /// [`Engine::events`].
    Events,
}

impl Op {
    /// The word in recorded calls.
    pub fn as_str(self) -> &'static str {
        match self {
            Op::ListManaged => "list-managed",
            Op::ListProject => "list",
            Op::Inspect => "inspect",
            Op::HasImage => "has-image",
            Op::Pull => "pull",
            Op::ImageDigest => "image-digest",
            Op::Create => "create",
            Op::Start => "start",
            Op::Stop => "stop",
            Op::Kill => "kill",
            Op::Remove => "remove",
            Op::Rename => "rename",
            Op::Disconnect => "disconnect",
            Op::Connect => "connect",
            Op::Reconnect => "reconnect",
            Op::NetworkExists => "network-exists",
            Op::VolumeExists => "volume-exists",
            Op::ListNetworks => "list-networks",
            Op::CreateNetwork => "create-network",
            Op::RemoveNetwork => "remove-network",
            Op::ListVolumes => "list-volumes",
            Op::CreateVolume => "create-volume",
            Op::LogsTail => "logs",
            Op::Wait => "wait",
            Op::Events => "events",
        }
    }

    /// True for calls that change something on the host.
    pub fn mutates(self) -> bool {
        matches!(
            self,
            Op::Pull
                | Op::Create
                | Op::Start
                | Op::Stop
                | Op::Kill
                | Op::Remove
                | Op::Rename
                | Op::Disconnect
                | Op::Connect
                | Op::Reconnect
                | Op::CreateNetwork
                | Op::RemoveNetwork
                | Op::CreateVolume
        )
    }
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One recorded call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Call {
    /// What was called.
    pub op: Op,
    /// On what: a container's name at the time of the call (or the ID asked for, when no
    /// container has it), an image, a network, a volume or a project.
    pub target: String,
    /// The rest: a rename's new name, the network of an endpoint change.
    pub arg: Option<String>,
    /// When, since the engine was made.
    pub at: Duration,
    /// Whether the call failed.
    pub failed: bool,
}

impl fmt::Display for Call {
    /// `rename shop-api-1 shop-api-1-prev`, `start shop-api-1-next`, `pull app:v2 (failed)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.op, self.target)?;
        if let Some(arg) = &self.arg {
            write!(f, " {arg}")?;
        }
        if self.failed {
            f.write_str(" (failed)")?;
        }
        Ok(())
    }
}

/// How a container's health check answers over time, counted in checks since it
/// (last) started.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Health {
    /// The image has no health check (unless the spec gives one, which then passes at
    /// its first check).
    NoCheck,
    /// `starting` until the `healthy`-th check, healthy from then, unhealthy from the
    /// `unhealthy`-th check on; either may never come.
    Checks {
        /// The check from which it is healthy.
        healthy: Option<u32>,
        /// The check from which it is unhealthy.
        unhealthy: Option<u32>,
    },
}

/// How the containers of an image (or of a name) behave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Behaviour {
    /// Its health check's answers.
    pub health: Health,
    /// Time between checks when the spec does not set one.
    pub interval: Duration,
    /// Exits this long after each start, with this code. With a restart policy the
    /// engine brings it back at once and counts a restart, as Docker does.
    pub exit: Option<(Duration, i64)>,
    /// What it prints.
    pub output: String,
}

impl Default for Behaviour {
    /// Healthy at its first check, a second after it starts; never exits.
    fn default() -> Self {
        Self::healthy_after(1)
    }
}

impl Behaviour {
    /// Healthy from the `n`-th check on.
    pub fn healthy_after(n: u32) -> Self {
        Self {
            health: Health::Checks {
                healthy: Some(n),
                unhealthy: None,
            },
            interval: Duration::from_secs(1),
            exit: None,
            output: String::new(),
        }
    }

    /// Always `starting`: the gate's deadline runs out.
    pub fn never_healthy() -> Self {
        Self {
            health: Health::Checks {
                healthy: None,
                unhealthy: None,
            },
            ..Self::healthy_after(1)
        }
    }

    /// Unhealthy from the `n`-th check on, never healthy before.
    pub fn unhealthy_after(n: u32) -> Self {
        Self {
            health: Health::Checks {
                healthy: None,
                unhealthy: Some(n),
            },
            ..Self::healthy_after(1)
        }
    }

    /// No health check in the image.
    pub fn no_check() -> Self {
        Self {
            health: Health::NoCheck,
            ..Self::healthy_after(1)
        }
    }

    /// Healthy from check `healthy`, unhealthy again from check `unhealthy`.
    pub fn healthy_then_unhealthy(healthy: u32, unhealthy: u32) -> Self {
        Self {
            health: Health::Checks {
                healthy: Some(healthy),
                unhealthy: Some(unhealthy),
            },
            ..Self::healthy_after(1)
        }
    }

    /// Exits `after` each start with `code`.
    pub fn exits_after(mut self, after: Duration, code: i64) -> Self {
        self.exit = Some((after, code));
        self
    }

    /// Prints `output`.
    pub fn output(mut self, output: &str) -> Self {
        self.output = output.to_string();
        self
    }

    /// Checks every `interval`.
    pub fn interval(mut self, interval: Duration) -> Self {
        self.interval = interval;
        self
    }
}

/// A container as a test sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct ContainerView {
    /// Its ID.
    pub id: String,
    /// Its name now.
    pub name: String,
    /// Its image reference.
    pub image: String,
    /// Its state.
    pub state: RunState,
    /// Its health now.
    pub health: HealthState,
    /// Its labels.
    pub labels: BTreeMap<String, String>,
    /// Its aliases by network.
    pub aliases: BTreeMap<String, Vec<String>>,
}

impl ContainerView {
    /// The `berth.service` label.
    pub fn service(&self) -> &str {
        self.labels
            .get(labels::SERVICE)
            .map(String::as_str)
            .unwrap_or("")
    }
}

#[derive(Debug)]
struct Fault {
    op: Op,
    target: String,
    /// Failures left; `None` for every call.
    left: Option<u32>,
}

#[derive(Debug)]
struct Container {
    id: String,
    spec: ContainerSpec,
    name: String,
    behaviour: Behaviour,
    state: RunState,
    /// When it last started, while it runs.
    started: Option<Instant>,
    started_at: Option<String>,
    finished_at: Option<String>,
    restart_count: i64,
    last_exit_code: Option<i64>,
    endpoints: Vec<Endpoint>,
    /// Counts starts, so that a timer of an earlier run does nothing.
    run: u64,
    created: i64,
}

#[derive(Debug, Default)]
struct World {
    containers: BTreeMap<String, Container>,
    /// Images on the host, with their digests.
    images: BTreeMap<String, String>,
    digests: HashMap<String, String>,
    pull_delays: HashMap<String, Duration>,
    by_image: HashMap<String, Behaviour>,
    by_name: Vec<(String, Behaviour)>,
    default: Behaviour,
    networks: Vec<(ObservedObject, BTreeMap<String, String>)>,
    volumes: Vec<(ObservedObject, BTreeMap<String, String>)>,
    faults: Vec<Fault>,
    calls: Vec<Call>,
    next_id: u64,
    next_address: u32,
}

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

fn now_text() -> String {
    crate::ledger::now_rfc3339()
}

fn digest_of(image: &str) -> String {
    use sha2::{Digest, Sha256};
    format!("sha256:{}", hex::encode(Sha256::digest(image.as_bytes())))
}

fn injected(op: Op, target: &str) -> RuntimeError {
    match op {
        Op::Pull => RuntimeError::Pull {
            image: target.to_string(),
            message: "injected failure".into(),
        },
        _ => RuntimeError::Docker(format!("injected failure: {op} {target}")),
    }
}

impl Container {
    fn has_check(&self) -> bool {
        match &self.spec.health {
            Some(h) => h.test.first().is_some_and(|t| t != "NONE"),
            None => self.behaviour.health != Health::NoCheck,
        }
    }

    fn interval(&self) -> Duration {
        self.spec
            .health
            .as_ref()
            .map(|h| h.interval)
            .filter(|i| !i.is_zero())
            .unwrap_or(self.behaviour.interval)
            .max(Duration::from_millis(1))
    }

    fn health(&self, now: Instant) -> HealthState {
        if !self.has_check() {
            return HealthState::None;
        }
        let Some(started) = self.started.filter(|_| self.is_up()) else {
            return HealthState::Starting;
        };
        let checks =
            (now.saturating_duration_since(started).as_nanos() / self.interval().as_nanos()) as u32;
        let (healthy, unhealthy) = match self.behaviour.health {
            Health::NoCheck => (Some(1), None),
            Health::Checks { healthy, unhealthy } => (healthy, unhealthy),
        };
        if unhealthy.is_some_and(|n| checks >= n) {
            HealthState::Unhealthy
        } else if healthy.is_some_and(|n| checks >= n) {
            HealthState::Healthy
        } else {
            HealthState::Starting
        }
    }

    fn is_up(&self) -> bool {
        matches!(self.state, RunState::Running | RunState::Restarting)
    }

    fn status(&self, now: Instant) -> String {
        match self.state {
            RunState::Created => "Created".into(),
            RunState::Running | RunState::Restarting => {
                let health = match self.health(now) {
                    HealthState::None => "",
                    HealthState::Starting => " (health: starting)",
                    HealthState::Healthy => " (healthy)",
                    HealthState::Unhealthy => " (unhealthy)",
                };
                format!("Up 1 second{health}")
            }
            RunState::Paused => "Up 1 second (Paused)".into(),
            RunState::Exited(code) => format!("Exited ({}) 1 second ago", code.unwrap_or(0)),
            RunState::Removing => "Removal In Progress".into(),
            RunState::Dead => "Dead".into(),
        }
    }

    fn summary(&self, now: Instant) -> ContainerSummary {
        let state = match self.state {
            RunState::Created => ContainerSummaryStateEnum::CREATED,
            RunState::Running => ContainerSummaryStateEnum::RUNNING,
            RunState::Paused => ContainerSummaryStateEnum::PAUSED,
            RunState::Restarting => ContainerSummaryStateEnum::RESTARTING,
            RunState::Exited(_) => ContainerSummaryStateEnum::EXITED,
            RunState::Removing => ContainerSummaryStateEnum::REMOVING,
            RunState::Dead => ContainerSummaryStateEnum::DEAD,
        };
        ContainerSummary {
            id: Some(self.id.clone()),
            names: Some(vec![format!("/{}", self.name)]),
            image: Some(self.spec.image.clone()),
            labels: Some(
                self.spec
                    .labels
                    .iter()
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect(),
            ),
            state: Some(state),
            status: Some(self.status(now)),
            created: Some(self.created),
            ..Default::default()
        }
    }

    fn view(&self, now: Instant) -> ContainerView {
        ContainerView {
            id: self.id.clone(),
            name: self.name.clone(),
            image: self.spec.image.clone(),
            state: self.state,
            health: self.health(now),
            labels: self.spec.labels.clone(),
            aliases: self
                .endpoints
                .iter()
                .map(|e| (e.network.clone(), e.aliases.clone()))
                .collect(),
        }
    }
}

impl World {
    /// The ID of the container with this ID or name.
    fn find(&self, id_or_name: &str) -> Option<String> {
        if self.containers.contains_key(id_or_name) {
            return Some(id_or_name.to_string());
        }
        self.containers
            .values()
            .find(|c| c.name == id_or_name)
            .map(|c| c.id.clone())
    }

    fn container(&mut self, id_or_name: &str) -> Result<&mut Container, RuntimeError> {
        let id = self
            .find(id_or_name)
            .ok_or_else(|| RuntimeError::NotFound(format!("No such container: {id_or_name}")))?;
        self.containers
            .get_mut(&id)
            .ok_or_else(|| RuntimeError::NotFound(format!("No such container: {id_or_name}")))
    }

    /// The name a call on `id_or_name` is recorded under.
    fn label_of(&self, id_or_name: &str) -> String {
        self.find(id_or_name)
            .and_then(|id| self.containers.get(&id))
            .map(|c| c.name.clone())
            .unwrap_or_else(|| id_or_name.to_string())
    }

    fn behaviour_for(&self, spec: &ContainerSpec) -> Behaviour {
        self.by_name
            .iter()
            .filter(|(prefix, _)| spec.name.starts_with(prefix.as_str()))
            .max_by_key(|(prefix, _)| prefix.len())
            .map(|(_, b)| b.clone())
            .or_else(|| self.by_image.get(&spec.image).cloned())
            .unwrap_or_else(|| self.default.clone())
    }

    /// Takes one injected failure of `op` on `target`, if there is one.
    fn fault(&mut self, op: Op, target: &str) -> bool {
        let Some(i) = self
            .faults
            .iter()
            .position(|f| f.op == op && (f.target == target || f.target == "*"))
        else {
            return false;
        };
        match &mut self.faults[i].left {
            Some(1) => {
                self.faults.remove(i);
            }
            Some(n) => *n -= 1,
            None => {}
        }
        true
    }

    fn address(&mut self) -> String {
        self.next_address += 1;
        format!(
            "10.{}.{}.{}",
            (self.next_address >> 16) & 0xff,
            (self.next_address >> 8) & 0xff,
            self.next_address & 0xff
        )
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

#[async_trait]
impl Engine for MemoryEngine {
    async fn list_managed(&self) -> Result<Vec<(String, ObservedContainer)>, RuntimeError> {
        self.call(Op::ListManaged, "*", None)?;
        let all = self.list(None)?;
        let w = self.world();
        Ok(all
            .into_iter()
            .map(|o| {
                let project = w
                    .containers
                    .get(&o.id)
                    .and_then(|c| c.spec.labels.get(labels::PROJECT).cloned())
                    .unwrap_or_default();
                (project, o)
            })
            .collect())
    }

    async fn list_project(&self, project: &str) -> Result<Vec<ObservedContainer>, RuntimeError> {
        self.call(Op::ListProject, project, None)?;
        self.list(Some(project))
    }

    async fn inspect(&self, id: &str) -> Result<ContainerDetails, RuntimeError> {
        self.call(Op::Inspect, id, None)?;
        let now = Instant::now();
        let mut w = self.world();
        let c = w.container(id)?;
        Ok(ContainerDetails {
            state: c.state,
            health: c.health(now),
            health_log: match c.health(now) {
                HealthState::Unhealthy => Some("check failed".into()),
                _ => None,
            },
            has_healthcheck: c.has_check(),
            started_at: c.started_at.clone(),
            finished_at: c.finished_at.clone(),
            networks: c.endpoints.clone(),
            restart_count: c.restart_count,
            last_exit_code: c.last_exit_code,
        })
    }

    async fn has_image(&self, image: &str) -> Result<bool, RuntimeError> {
        self.call(Op::HasImage, image, None)?;
        Ok(self.world().images.contains_key(image))
    }

    async fn pull(&self, image: &str, _auth: Option<RegistryAuth>) -> Result<(), RuntimeError> {
        self.call(Op::Pull, image, None)?;
        let delay = self.world().pull_delays.get(image).copied();
        if let Some(delay) = delay {
            tokio::time::sleep(delay).await;
        }
        let mut w = self.world();
        let digest = w
            .digests
            .get(image)
            .cloned()
            .unwrap_or_else(|| digest_of(image));
        w.images.insert(image.to_string(), digest);
        Ok(())
    }

    async fn image_digest(&self, image: &str) -> Result<String, RuntimeError> {
        self.call(Op::ImageDigest, image, None)?;
        self.world()
            .images
            .get(image)
            .cloned()
            .ok_or_else(|| RuntimeError::NotFound(format!("No such image: {image}")))
    }

    async fn create(&self, spec: &ContainerSpec) -> Result<String, RuntimeError> {
        self.call(Op::Create, &spec.name, None)?;
        let mut w = self.world();
        if w.find(&spec.name).is_some() {
            drop(w);
            self.mark_failed();
            return Err(RuntimeError::Conflict(format!(
                "the container name \"/{}\" is already in use",
                spec.name
            )));
        }
        if !w.images.contains_key(&spec.image) {
            drop(w);
            self.mark_failed();
            return Err(RuntimeError::NotFound(format!(
                "No such image: {}",
                spec.image
            )));
        }
        w.next_id += 1;
        let id = format!("{:012x}", w.next_id);
        let behaviour = w.behaviour_for(spec);
        let created = w.next_id as i64;
        let endpoints = spec
            .networks
            .iter()
            .map(|(network, aliases)| Endpoint {
                network: network.clone(),
                aliases: aliases.clone(),
                address: None,
            })
            .collect();
        w.containers.insert(
            id.clone(),
            Container {
                id: id.clone(),
                spec: spec.clone(),
                name: spec.name.clone(),
                behaviour,
                state: RunState::Created,
                started: None,
                started_at: None,
                finished_at: None,
                restart_count: 0,
                last_exit_code: None,
                endpoints,
                run: 0,
                created,
            },
        );
        drop(w);
        self.touched();
        Ok(id)
    }

    async fn start(&self, id: &str) -> Result<(), RuntimeError> {
        self.call(Op::Start, id, None)?;
        let exit = {
            let mut w = self.world();
            let mut addresses: Vec<String> = Vec::new();
            let count = w.container(id)?.endpoints.len();
            for _ in 0..count {
                addresses.push(w.address());
            }
            let c = w.container(id)?;
            if c.is_up() {
                return Ok(());
            }
            c.state = RunState::Running;
            c.started = Some(Instant::now());
            c.started_at = Some(now_text());
            c.restart_count = 0;
            c.run += 1;
            for (e, a) in c.endpoints.iter_mut().zip(addresses) {
                if e.address.is_none() {
                    e.address = Some(a);
                }
            }
            c.behaviour
                .exit
                .map(|(after, code)| (c.id.clone(), c.run, after, code))
        };
        self.touched();
        if let Some((id, run, after, code)) = exit {
            self.schedule_exit(&id, run, after, code);
        }
        Ok(())
    }

    async fn stop(&self, id: &str, _grace: Duration) -> Result<(), RuntimeError> {
        self.call(Op::Stop, id, None)?;
        let died = {
            let mut w = self.world();
            let c = w.container(id)?;
            let was_up = c.is_up();
            if was_up {
                c.state = RunState::Exited(Some(0));
                c.last_exit_code = Some(0);
                c.started = None;
                c.finished_at = Some(now_text());
                c.run += 1;
                for e in &mut c.endpoints {
                    e.address = None;
                }
            }
            was_up
        };
        self.touched();
        if died {
            self.event();
        }
        Ok(())
    }

    async fn kill(&self, id: &str) -> Result<(), RuntimeError> {
        self.call(Op::Kill, id, None)?;
        let died = {
            let mut w = self.world();
            let c = w.container(id)?;
            let was_up = c.is_up();
            if was_up {
                c.state = RunState::Exited(Some(137));
                c.last_exit_code = Some(137);
                c.started = None;
                c.finished_at = Some(now_text());
                c.run += 1;
            }
            was_up
        };
        self.touched();
        if died {
            self.event();
        }
        Ok(())
    }

    async fn remove(&self, id: &str) -> Result<(), RuntimeError> {
        self.call(Op::Remove, id, None)?;
        let removed = {
            let mut w = self.world();
            match w.find(id) {
                Some(id) => w.containers.remove(&id).is_some(),
                // Docker's engine answers 404, which berth takes as done.
                None => false,
            }
        };
        if removed {
            self.touched();
            self.event();
        }
        Ok(())
    }

    async fn rename(&self, id: &str, name: &str) -> Result<(), RuntimeError> {
        self.call(Op::Rename, id, Some(name.to_string()))?;
        let mut w = self.world();
        let target = w
            .find(id)
            .ok_or_else(|| RuntimeError::NotFound(format!("No such container: {id}")))?;
        if let Some(other) = w.find(name).filter(|o| *o != target) {
            drop(w);
            self.mark_failed();
            return Err(RuntimeError::Conflict(format!(
                "the name {name} is taken by {other}"
            )));
        }
        w.container(&target)?.name = name.to_string();
        Ok(())
    }

    async fn disconnect(&self, network: &str, id: &str) -> Result<(), RuntimeError> {
        self.call(Op::Disconnect, id, Some(network.to_string()))?;
        let mut w = self.world();
        let c = w.container(id)?;
        let before = c.endpoints.len();
        c.endpoints.retain(|e| e.network != network);
        if c.endpoints.len() == before {
            return Err(RuntimeError::Docker(format!(
                "container {id} is not connected to network {network}"
            )));
        }
        Ok(())
    }

    async fn connect(
        &self,
        network: &str,
        id: &str,
        aliases: Vec<String>,
    ) -> Result<(), RuntimeError> {
        self.call(
            Op::Connect,
            id,
            Some(format!("{network} [{}]", aliases.join(","))),
        )?;
        let mut w = self.world();
        let address = w.address();
        let c = w.container(id)?;
        if c.endpoints.iter().any(|e| e.network == network) {
            return Err(RuntimeError::Docker(format!(
                "endpoint with name {} already exists in network {network}",
                c.name
            )));
        }
        let up = c.is_up();
        c.endpoints.push(Endpoint {
            network: network.to_string(),
            aliases,
            address: up.then_some(address),
        });
        Ok(())
    }

    async fn reconnect(
        &self,
        network: &str,
        id: &str,
        aliases: Vec<String>,
    ) -> Result<Option<String>, RuntimeError> {
        self.call(
            Op::Reconnect,
            id,
            Some(format!("{network} [{}]", aliases.join(","))),
        )?;
        let mut w = self.world();
        let c = w.container(id)?;
        let e = c
            .endpoints
            .iter_mut()
            .find(|e| e.network == network)
            .ok_or_else(|| {
                RuntimeError::Docker(format!(
                    "container {id} is not connected to network {network}"
                ))
            })?;
        // The address comes back the same, as the engine promises.
        e.aliases = aliases;
        Ok(e.address.clone())
    }

    async fn network_exists(&self, name: &str) -> Result<bool, RuntimeError> {
        self.call(Op::NetworkExists, name, None)?;
        Ok(self.world().networks.iter().any(|(n, _)| n.name == name))
    }

    async fn volume_exists(&self, name: &str) -> Result<bool, RuntimeError> {
        self.call(Op::VolumeExists, name, None)?;
        Ok(self.world().volumes.iter().any(|(v, _)| v.name == name))
    }

    async fn list_networks(&self, project: &str) -> Result<Vec<ObservedObject>, RuntimeError> {
        self.call(Op::ListNetworks, project, None)?;
        Ok(self
            .world()
            .networks
            .iter()
            .filter(|(_, l)| l.get(labels::PROJECT).is_some_and(|p| p == project))
            .map(|(n, _)| n.clone())
            .collect())
    }

    async fn create_network(
        &self,
        name: &str,
        labels: BTreeMap<String, String>,
    ) -> Result<(), RuntimeError> {
        self.call(Op::CreateNetwork, name, None)?;
        let mut w = self.world();
        w.next_id += 1;
        let object = ObservedObject {
            name: name.to_string(),
            id: format!("net{:09x}", w.next_id),
            project: labels.get(labels::PROJECT).cloned().unwrap_or_default(),
        };
        // Docker lets two networks share a name.
        w.networks.push((object, labels));
        Ok(())
    }

    async fn remove_network(&self, name: &str) -> Result<(), RuntimeError> {
        self.call(Op::RemoveNetwork, name, None)?;
        let mut w = self.world();
        let matching: Vec<usize> = w
            .networks
            .iter()
            .enumerate()
            .filter(|(_, (n, _))| n.id == name || n.name == name)
            .map(|(i, _)| i)
            .collect();
        let [i] = matching[..] else {
            return Err(if matching.is_empty() {
                RuntimeError::NotFound(format!("network {name} not found"))
            } else {
                RuntimeError::Docker(format!("network {name} is ambiguous"))
            });
        };
        let full = w.networks[i].0.name.clone();
        let in_use = w
            .containers
            .values()
            .any(|c| c.endpoints.iter().any(|e| e.network == full));
        if in_use {
            return Err(RuntimeError::Docker(format!(
                "network {full} has active endpoints"
            )));
        }
        w.networks.remove(i);
        Ok(())
    }

    async fn list_volumes(&self, project: &str) -> Result<Vec<ObservedObject>, RuntimeError> {
        self.call(Op::ListVolumes, project, None)?;
        Ok(self
            .world()
            .volumes
            .iter()
            .filter(|(_, l)| l.get(labels::PROJECT).is_some_and(|p| p == project))
            .map(|(v, _)| v.clone())
            .collect())
    }

    async fn create_volume(
        &self,
        name: &str,
        labels: BTreeMap<String, String>,
    ) -> Result<(), RuntimeError> {
        self.call(Op::CreateVolume, name, None)?;
        let mut w = self.world();
        if !w.volumes.iter().any(|(v, _)| v.name == name) {
            let object = ObservedObject {
                name: name.to_string(),
                id: name.to_string(),
                project: labels.get(labels::PROJECT).cloned().unwrap_or_default(),
            };
            w.volumes.push((object, labels));
        }
        Ok(())
    }

    async fn logs_tail(&self, id: &str, lines: usize) -> Result<String, RuntimeError> {
        self.call(Op::LogsTail, id, None)?;
        let mut w = self.world();
        let output = &w.container(id)?.behaviour.output;
        let all: Vec<&str> = output.lines().collect();
        let tail = &all[all.len().saturating_sub(lines)..];
        Ok(tail.iter().map(|l| format!("{l}\n")).collect())
    }

    async fn wait(&self, id: &str) -> Result<i64, RuntimeError> {
        self.call(Op::Wait, id, None)?;
        let mut changed = self.shared.changed.subscribe();
        loop {
            {
                let mut w = self.world();
                let c = w.container(id)?;
                if let RunState::Exited(code) = c.state {
                    return Ok(code.unwrap_or(-1));
                }
            }
            if changed.changed().await.is_err() {
                return Err(RuntimeError::Docker("engine gone".into()));
            }
        }
    }

    fn events(&self) -> BoxStream<'_, Result<(), RuntimeError>> {
        // Opening the stream cannot fail here; an injected failure breaks it at once.
        let opened = self.call(Op::Events, "*", None);
        let rx = self.shared.events.subscribe();
        let first = futures_util::stream::iter(opened.err().map(Err));
        let rest = futures_util::stream::unfold(rx, |mut rx| async move {
            match rx.recv().await {
                Ok(Ok(())) => Some((Ok(()), rx)),
                Ok(Err(e)) => Some((Err(RuntimeError::Docker(e)), rx)),
                // Some were missed: one wake-up says as much.
                Err(broadcast::error::RecvError::Lagged(_)) => Some((Ok(()), rx)),
                Err(broadcast::error::RecvError::Closed) => None,
            }
        });
        Box::pin(futures_util::StreamExt::chain(first, rest))
    }
}
