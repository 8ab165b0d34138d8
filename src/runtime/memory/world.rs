//! The host the memory engine keeps: containers with their state and endpoints,
//! images, networks, volumes, injected failures and the record of calls.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use bollard::models::{ContainerSummary, ContainerSummaryStateEnum};
use tokio::time::Instant;

use super::script::{Behaviour, Call, ContainerView, Health, Op};
use crate::runtime::{
    ContainerSpec, Endpoint, HealthState, ObservedObject, RunState, RuntimeError,
};

#[derive(Debug)]
pub(super) struct Fault {
    pub(super) op: Op,
    pub(super) target: String,
    /// Failures left; `None` for every call.
    pub(super) left: Option<u32>,
}

#[derive(Debug)]
pub(super) struct Container {
    pub(super) id: String,
    pub(super) spec: ContainerSpec,
    pub(super) name: String,
    pub(super) behaviour: Behaviour,
    pub(super) state: RunState,
    /// When it last started, while it runs.
    pub(super) started: Option<Instant>,
    pub(super) started_at: Option<String>,
    pub(super) finished_at: Option<String>,
    pub(super) restart_count: i64,
    pub(super) last_exit_code: Option<i64>,
    pub(super) endpoints: Vec<Endpoint>,
    /// Counts starts, so that a timer of an earlier run does nothing.
    pub(super) run: u64,
    pub(super) created: i64,
}

#[derive(Debug, Default)]
pub(super) struct World {
    pub(super) containers: BTreeMap<String, Container>,
    /// Images on the host, with their digests.
    pub(super) images: BTreeMap<String, String>,
    pub(super) digests: HashMap<String, String>,
    pub(super) pull_delays: HashMap<String, Duration>,
    /// Pulls get no answer from the registry.
    pub(super) registry_down: bool,
    pub(super) by_image: HashMap<String, Behaviour>,
    pub(super) by_name: Vec<(String, Behaviour)>,
    pub(super) default: Behaviour,
    pub(super) networks: Vec<(ObservedObject, BTreeMap<String, String>)>,
    pub(super) volumes: Vec<(ObservedObject, BTreeMap<String, String>)>,
    pub(super) faults: Vec<Fault>,
    pub(super) calls: Vec<Call>,
    pub(super) next_id: u64,
    pub(super) next_address: u32,
}

pub(super) fn now_text() -> String {
    crate::ledger::now_rfc3339()
}

pub(super) fn digest_of(image: &str) -> String {
    use sha2::{Digest, Sha256};
    format!("sha256:{}", hex::encode(Sha256::digest(image.as_bytes())))
}

pub(super) fn injected(op: Op, target: &str) -> RuntimeError {
    match op {
        Op::Pull => RuntimeError::Pull {
            image: target.to_string(),
            message: "injected failure".into(),
        },
        _ => RuntimeError::Docker(format!("injected failure: {op} {target}")),
    }
}

impl Container {
    pub(super) fn has_check(&self) -> bool {
        match &self.spec.health {
            Some(h) => h.test.first().is_some_and(|t| t != "NONE"),
            None => self.behaviour.health != Health::NoCheck,
        }
    }

    pub(super) fn interval(&self) -> Duration {
        self.spec
            .health
            .as_ref()
            .map(|h| h.interval)
            .filter(|i| !i.is_zero())
            .unwrap_or(self.behaviour.interval)
            .max(Duration::from_millis(1))
    }

    pub(super) fn health(&self, now: Instant) -> HealthState {
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

    pub(super) fn is_up(&self) -> bool {
        matches!(self.state, RunState::Running | RunState::Restarting)
    }

    pub(super) fn status(&self, now: Instant) -> String {
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

    pub(super) fn summary(&self, now: Instant) -> ContainerSummary {
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

    pub(super) fn view(&self, now: Instant) -> ContainerView {
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
    pub(super) fn find(&self, id_or_name: &str) -> Option<String> {
        if self.containers.contains_key(id_or_name) {
            return Some(id_or_name.to_string());
        }
        self.containers
            .values()
            .find(|c| c.name == id_or_name)
            .map(|c| c.id.clone())
    }

    pub(super) fn container(&mut self, id_or_name: &str) -> Result<&mut Container, RuntimeError> {
        let id = self
            .find(id_or_name)
            .ok_or_else(|| RuntimeError::NotFound(format!("No such container: {id_or_name}")))?;
        self.containers
            .get_mut(&id)
            .ok_or_else(|| RuntimeError::NotFound(format!("No such container: {id_or_name}")))
    }

    /// The name a call on `id_or_name` is recorded under.
    pub(super) fn label_of(&self, id_or_name: &str) -> String {
        self.find(id_or_name)
            .and_then(|id| self.containers.get(&id))
            .map(|c| c.name.clone())
            .unwrap_or_else(|| id_or_name.to_string())
    }

    pub(super) fn behaviour_for(&self, spec: &ContainerSpec) -> Behaviour {
        self.by_name
            .iter()
            .filter(|(prefix, _)| spec.name.starts_with(prefix.as_str()))
            .max_by_key(|(prefix, _)| prefix.len())
            .map(|(_, b)| b.clone())
            .or_else(|| self.by_image.get(&spec.image).cloned())
            .unwrap_or_else(|| self.default.clone())
    }

    /// Takes one injected failure of `op` on `target`, if there is one.
    pub(super) fn fault(&mut self, op: Op, target: &str) -> bool {
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

    pub(super) fn address(&mut self) -> String {
        self.next_address += 1;
        format!(
            "10.{}.{}.{}",
            (self.next_address >> 16) & 0xff,
            (self.next_address >> 8) & 0xff,
            self.next_address & 0xff
        )
    }
}
