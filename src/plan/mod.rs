//! (desired, observed) → [`Plan`]: a pure function, tested as plain data.

mod change;
pub mod desired;
pub mod env_file;

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

pub use desired::{
    describe_change, image_change, Desired, DesiredService, EnvFile, Host, SecretFile, SpecParts,
};

use crate::runtime::{HealthState, ObservedContainer, Role, RunState};

/// What happens to one service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Action {
    /// Nothing to do.
    InSync,
    /// No replica exists yet.
    Create,
    /// Replicas are missing.
    ScaleUp,
    /// Replicas (or leftovers) are extra.
    ScaleDown,
    /// Replicas run a different spec.
    Replace,
    /// Replicas are stopped.
    Restart,
    /// The service left the desired state.
    Remove,
}

impl Action {
    /// The word shown in plans.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::InSync => "in sync",
            Action::Create => "create",
            Action::ScaleUp => "scale up",
            Action::ScaleDown => "scale down",
            Action::Replace => "replace",
            Action::Restart => "restart",
            Action::Remove => "remove",
        }
    }
}

/// One step of a service's plan, for one slot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "step", rename_all = "kebab-case")]
pub enum Step {
    /// Start a replica in an empty slot.
    Create {
        /// The empty slot, from 1 to the desired replicas.
        slot: u32,
    },
    /// Replace the replica in a slot with one of the desired spec.
    Replace {
        /// The slot whose replica is replaced.
        slot: u32,
        /// The replica being replaced.
        container: String,
    },
    /// Start a stopped replica that already has the desired spec.
    Restart {
        /// The slot of the stopped replica.
        slot: u32,
        /// The stopped replica.
        container: String,
    },
    /// Promote a leftover replacement that already runs the desired spec and is healthy.
    Adopt {
        /// The slot that lost its replica and now takes the replacement.
        slot: u32,
        /// The replacement, started by an earlier rollout.
        container: String,
    },
    /// Remove a container (extra slot, duplicate, leftover, removed service).
    Remove {
        /// The slot the container leaves.
        slot: u32,
        /// The container's name.
        container: String,
    },
}

/// The plan for one service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ServicePlan {
    /// The service's name.
    pub service: String,
    /// The action that sums the steps up.
    pub action: Action,
    /// Why, in words; never a secret value.
    pub reasons: Vec<String>,
    /// Desired replicas (0 for a removed service).
    pub desired: u32,
    /// Replicas that run now.
    pub running: u32,
    /// The image the service should run.
    pub image: Option<String>,
    /// What to do, slot by slot.
    pub steps: Vec<Step>,
}

/// What `berth apply` would do to a project.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Plan {
    /// The project's name.
    pub project: String,
    /// One entry per service, desired or observed, by name.
    pub services: Vec<ServicePlan>,
}

impl Plan {
    /// True when nothing needs doing.
    pub fn in_sync(&self) -> bool {
        self.services.iter().all(|s| s.action == Action::InSync)
    }

    /// The services that need changes.
    pub fn changes(&self) -> impl Iterator<Item = &ServicePlan> {
        self.services.iter().filter(|s| s.action != Action::InSync)
    }
}

/// Compares the desired state with the containers of the project and says, per
/// service, what must change and why.
pub fn plan(desired: &Desired, observed: &[ObservedContainer]) -> Plan {
    let mut by_service: BTreeMap<&str, Vec<&ObservedContainer>> = BTreeMap::new();
    for c in observed.iter().filter(|c| c.role != Role::Migration) {
        by_service.entry(c.service.as_str()).or_default().push(c);
    }
    let names: BTreeSet<&str> = desired
        .services
        .keys()
        .map(String::as_str)
        .chain(by_service.keys().copied())
        .collect();
    let services = names
        .into_iter()
        .map(|name| {
            let containers = by_service.get(name).map(Vec::as_slice).unwrap_or(&[]);
            match desired.services.get(name) {
                Some(d) => plan_service(d, containers),
                None => plan_removal(name, containers),
            }
        })
        .collect();
    Plan {
        project: desired.spec.project.clone(),
        services,
    }
}

fn plan_removal(name: &str, containers: &[&ObservedContainer]) -> ServicePlan {
    let mut steps: Vec<Step> = containers
        .iter()
        .map(|c| Step::Remove {
            slot: c.slot,
            container: c.name.clone(),
        })
        .collect();
    steps.sort_by_key(|s| std::cmp::Reverse(slot_of(s)));
    ServicePlan {
        service: name.to_string(),
        action: Action::Remove,
        reasons: vec!["service is no longer in the desired state of this host".into()],
        desired: 0,
        running: containers.iter().filter(|c| c.is_up()).count() as u32,
        image: None,
        steps,
    }
}

fn slot_of(step: &Step) -> u32 {
    match step {
        Step::Create { slot } => *slot,
        Step::Replace { slot, .. }
        | Step::Restart { slot, .. }
        | Step::Adopt { slot, .. }
        | Step::Remove { slot, .. } => *slot,
    }
}

/// The container to keep in a slot when there are several: the one with the desired
/// spec, then running, then healthy, then the newest.
fn rank(c: &ObservedContainer, hash: &str) -> (bool, bool, bool, bool, i64) {
    (
        c.role == Role::Replica,
        c.spec_hash == hash,
        c.is_up(),
        c.health == HealthState::Healthy,
        c.created,
    )
}

/// The plan for a desired service from its containers: slots 1 to the desired
/// replicas are filled, corrected or kept; containers in any other slot are removed.
fn plan_service(d: &DesiredService, containers: &[&ObservedContainer]) -> ServicePlan {
    let want = d.spec.replicas;
    let mut slots: BTreeMap<u32, Vec<&ObservedContainer>> = BTreeMap::new();
    for c in containers {
        slots.entry(c.slot).or_default().push(c);
    }
    let mut steps = Vec::new();
    let mut reasons = Reasons::default();
    let mut missing = 0;
    for slot in 1..=want {
        match slots.get_mut(&slot) {
            None => {
                steps.push(Step::Create { slot });
                missing += 1;
            }
            Some(list) => missing += plan_slot(d, slot, list, &mut steps, &mut reasons),
        }
    }
    if missing > 0 && !containers.is_empty() {
        reasons.add(missing_reason(missing, &steps));
    }
    // Slots kept that serve now: a scale-down keeps as many healthy extras as the kept
    // slots lack (one crashed and restarting, say), so the service never has fewer
    // healthy replicas than it wants and had; they go once the kept ones are healthy.
    let serving = (1..=want)
        .filter(|s| slots.get(s).is_some_and(|l| l.iter().any(|c| serves(c))))
        .count() as u32;
    let (extra, spared) = remove_extra(&slots, want, want - serving, &mut steps);
    if extra > 0 {
        let running_slots = containers
            .iter()
            .filter(|c| c.role == Role::Replica)
            .map(|c| c.slot)
            .collect::<BTreeSet<_>>()
            .len();
        reasons.add(format!("scale {running_slots} → {want}"));
    }
    if !spared.is_empty() {
        reasons.add(format!(
            "{} kept until the replicas that stay are healthy",
            spared.join(", ")
        ));
    }
    let mut reasons = reasons.0;
    let action = summarise(&steps, containers.is_empty() && want > 0);
    if action == Action::Create {
        reasons.insert(
            0,
            format!(
                "{want} replica{} of {}",
                if want == 1 { "" } else { "s" },
                image_short(d)
            ),
        );
    }
    ServicePlan {
        service: d.spec.name.clone(),
        action,
        reasons,
        desired: want,
        running: containers
            .iter()
            .filter(|c| c.role == Role::Replica && c.is_up())
            .count() as u32,
        image: Some(d.spec.image.full.clone()),
        steps,
    }
}

/// Why a plan is what it is, each reason once, in the order found.
#[derive(Default)]
struct Reasons(Vec<String>);

impl Reasons {
    fn add(&mut self, reason: String) {
        if !self.0.contains(&reason) {
            self.0.push(reason);
        }
    }
}

/// The steps for one occupied slot of the desired replicas: the best container of
/// `list` is kept (and replaced or restarted when it must be), the others removed.
/// Returns 1 when the slot ends up to be filled anew, else 0.
fn plan_slot(
    d: &DesiredService,
    slot: u32,
    list: &mut [&ObservedContainer],
    steps: &mut Vec<Step>,
    reasons: &mut Reasons,
) -> u32 {
    list.sort_by_key(|c| std::cmp::Reverse(rank(c, &d.hash)));
    let keep = list[0];
    for other in &list[1..] {
        // A leftover replacement beside a replica is removed: the rollout that made
        // it will be redone from the current desired state.
        steps.push(Step::Remove {
            slot,
            container: other.name.clone(),
        });
        let why = if other.role == Role::Candidate {
            format!("leftover replacement {} removed", other.name)
        } else {
            format!("duplicate replica {} in slot {slot} removed", other.name)
        };
        reasons.add(why);
    }
    if keep.role == Role::Candidate {
        // No replica left in this slot, only a replacement. One that serves (up and
        // healthy: it joined the alias) is promoted, and when it is not the desired
        // spec (the desired state moved on meanwhile) replaced start-first below like
        // any replica: removed first, it could leave the service with none serving.
        // One that does not serve is started over.
        if !answers(keep) {
            steps.push(Step::Remove {
                slot,
                container: keep.name.clone(),
            });
            steps.push(Step::Create { slot });
            return 1;
        }
        steps.push(Step::Adopt {
            slot,
            container: keep.name.clone(),
        });
        reasons.add(format!("replacement {} promoted to slot {slot}", keep.name));
    }
    if keep.spec_hash != d.hash {
        steps.push(Step::Replace {
            slot,
            container: keep.name.clone(),
        });
        let change = keep
            .parts
            .as_deref()
            .and_then(|p| serde_json::from_str::<SpecParts>(p).ok())
            .map(|old| describe_change(&old, &d.parts))
            .filter(|c| !c.is_empty())
            .unwrap_or_else(|| vec!["container spec changed".to_string()]);
        for r in change {
            reasons.add(r);
        }
    } else if !keep.is_up() {
        steps.push(Step::Restart {
            slot,
            container: keep.name.clone(),
        });
        let why = match keep.state {
            RunState::Exited(Some(code)) => format!("{} exited with code {code}", keep.name),
            RunState::Created => format!("{} was never started", keep.name),
            RunState::Paused => format!("{} is paused", keep.name),
            _ => format!("{} is not running", keep.name),
        };
        reasons.add(why);
    }
    0
}

/// "replica N missing" for one slot to fill, the count for several.
fn missing_reason(missing: u32, steps: &[Step]) -> String {
    if missing == 1 {
        let slot = steps.iter().find_map(|s| match s {
            Step::Create { slot } => Some(*slot),
            _ => None,
        });
        format!("replica {} missing", slot.unwrap_or_default())
    } else {
        format!("{missing} replicas missing")
    }
}

/// A container that answers now: running (not being restarted by Docker, which says
/// nothing of its health meanwhile), and healthy or without a health check.
fn answers(c: &ObservedContainer) -> bool {
    c.state == RunState::Running && matches!(c.health, HealthState::Healthy | HealthState::None)
}

/// A replica that answers now.
fn serves(c: &ObservedContainer) -> bool {
    c.role == Role::Replica && answers(c)
}

/// A replica that serves, or may in a moment: running with its health check yet to
/// answer, as every replica is right after its engine restarted. Such a replica is a
/// better bet than none while the replicas that stay do not serve.
fn may_serve(c: &ObservedContainer) -> bool {
    c.role == Role::Replica && c.state == RunState::Running && c.health != HealthState::Unhealthy
}

/// Removes every container of a slot outside 1 to `want`, highest slots first, but
/// keeps up to `lacking` of them that serve or may serve in a moment (those that serve
/// first, then the lowest slots) while kept slots do not; returns how many are extra,
/// and those kept.
fn remove_extra(
    slots: &BTreeMap<u32, Vec<&ObservedContainer>>,
    want: u32,
    lacking: u32,
    steps: &mut Vec<Step>,
) -> (usize, Vec<String>) {
    let mut removals: Vec<(u32, &ObservedContainer)> = slots
        .iter()
        .filter(|(s, _)| **s == 0 || **s > want)
        .flat_map(|(s, list)| list.iter().map(move |c| (*s, *c)))
        .collect();
    removals.sort_by_key(|(s, c)| (std::cmp::Reverse(*s), c.name.clone()));
    let mut candidates: Vec<&(u32, &ObservedContainer)> = removals
        .iter()
        .filter(|(s, c)| *s > 0 && may_serve(c))
        .collect();
    candidates.sort_by_key(|(s, c)| (!serves(c), *s, c.name.clone()));
    let mut spared: Vec<String> = candidates
        .into_iter()
        .take(lacking as usize)
        .map(|(_, c)| c.name.clone())
        .collect();
    for (slot, c) in &removals {
        if !spared.contains(&c.name) {
            steps.push(Step::Remove {
                slot: *slot,
                container: c.name.clone(),
            });
        }
    }
    spared.sort();
    (removals.len(), spared)
}

/// The action that sums `steps` up; `creates` when the service has no container yet
/// and wants some.
fn summarise(steps: &[Step], creates: bool) -> Action {
    let has = |f: fn(&Step) -> bool| steps.iter().any(f);
    if creates {
        Action::Create
    } else if has(|s| matches!(s, Step::Replace { .. })) {
        Action::Replace
    } else if has(|s| matches!(s, Step::Restart { .. } | Step::Adopt { .. })) {
        Action::Restart
    } else if has(|s| matches!(s, Step::Create { .. })) {
        Action::ScaleUp
    } else if has(|s| matches!(s, Step::Remove { .. })) {
        Action::ScaleDown
    } else {
        Action::InSync
    }
}

fn image_short(d: &DesiredService) -> String {
    d.spec.image.short()
}

#[cfg(test)]
pub(crate) mod tests;
