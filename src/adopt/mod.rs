//! Taking a stack over from docker compose: the operator's act on the host, never the
//! pusher's.
//!
//! berth never touches an object it did not create, and a commit that names docker
//! compose's volume `<project>_data` is refused like any other object made elsewhere.
//! `berth adopt`, run by the host's operator, is the one way such objects become
//! berth's to use:
//! - the volumes and networks of the compose project that the desired state declares
//!   under the same Docker names are recorded in `<state-dir>/adopted.json`, which only
//!   the host writes; from then on `apply` and the agent use them as they are (like
//!   `external` ones: never created, changed or removed, since they carry no berth
//!   label);
//! - compose's containers are replaced service by service, in dependency order: berth's
//!   replicas start and pass their gate, then compose's container leaves its alias,
//!   drains and stops (start-first); a service that publishes host ports cannot have two
//!   owners of a port, and one whose `update.order` is stop-first (a database) must not
//!   run twice on its volume, so there compose's container stops first and the service
//!   is unserved until berth's replica passes its gate (stop-first, the downtime of the
//!   switch);
//! - what the desired state does not name (other volumes, services, one-off
//!   containers) and everything of other compose projects is left alone.
//!
//! This file holds the record and the plan (pure); [`switch`] carries the plan out.

pub(crate) mod switch;

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use crate::model::Spec;
use crate::plan::desired::ObjectNames;
use crate::runtime::compose::{ComposeContainer, ComposeObject, ComposeProject};

pub(crate) use crate::executor::adopted::Adopted;

/// How compose's containers of one service give way to berth's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum Order {
    /// berth's replicas start and pass their gate first; then compose's containers
    /// leave the alias, drain and stop. Nothing is unserved.
    StartFirst,
    /// The service publishes host ports, which only one container can hold, or its
    /// `update.order` is stop-first (a database must not run twice on one volume):
    /// compose's containers stop first, and the service is unserved until berth's
    /// replicas pass their gate.
    StopFirst,
}

/// One service to switch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct ServiceSwitch {
    /// The service.
    pub service: String,
    /// How.
    pub order: Order,
    /// Why stop-first, when it is.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub why: Option<String>,
    /// compose's containers of it (running or not), by name.
    pub containers: Vec<String>,
    #[serde(skip)]
    pub(crate) compose: Vec<ComposeContainer>,
}

/// An object handed over.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct Handover {
    /// Its Docker name.
    pub name: String,
    /// Its name in the desired state.
    pub short: String,
}

/// What `berth adopt` will do: a plain value, computed from the desired state and
/// what compose made.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct SwitchPlan {
    /// The project (the same name for compose and berth).
    pub project: String,
    /// Volumes to hand over.
    pub volumes: Vec<Handover>,
    /// Networks to hand over.
    pub networks: Vec<Handover>,
    /// Services whose compose containers berth replaces, in dependency order.
    pub services: Vec<ServiceSwitch>,
    /// What is left alone, with why.
    pub left: Vec<String>,
}

impl SwitchPlan {
    /// Plans the switch of `compose` (the objects of compose project `spec.project`) to
    /// `spec`. Only objects whose Docker names the desired state would give its own are
    /// handed over.
    pub(crate) fn new(spec: &Spec, compose: &ComposeProject) -> SwitchPlan {
        let names = ObjectNames::of(spec);
        let mut left = Vec::new();
        let mut handover = |kind: &str,
                            objects: &[ComposeObject],
                            declared: &dyn Fn(&str) -> Option<bool>,
                            docker_name: &dyn Fn(&str) -> String| {
            let mut out = Vec::new();
            for o in objects {
                if o.berth {
                    left.push(format!("{kind} {}: already berth's", o.name));
                    continue;
                }
                match declared(&o.short) {
                    Some(false) if docker_name(&o.short) == o.name => out.push(Handover {
                        name: o.name.clone(),
                        short: o.short.clone(),
                    }),
                    Some(true) => left.push(format!(
                        "{kind} {}: the desired state declares `{}` external; used under its own name as it is",
                        o.name, o.short
                    )),
                    Some(false) => left.push(format!(
                        "{kind} {}: the desired state's `{}` is `{}` on this host, another object",
                        o.name,
                        o.short,
                        docker_name(&o.short)
                    )),
                    _ => left.push(format!(
                        "{kind} {}: the desired state does not declare it",
                        o.name
                    )),
                }
            }
            out
        };
        let volumes = handover(
            "volume",
            &compose.volumes,
            &|short| spec.volumes.get(short).map(|v| v.external),
            &|short| names.volume(short),
        );
        let networks = handover(
            "network",
            &compose.networks,
            &|short| spec.networks.get(short).map(|n| n.external),
            &|short| names.network(short),
        );
        let mut by_service: BTreeMap<&str, Vec<ComposeContainer>> = BTreeMap::new();
        for c in &compose.containers {
            if c.oneoff {
                left.push(format!(
                    "container {}: a one-off container (`docker-compose run`)",
                    c.name
                ));
            } else if !spec.services.contains_key(&c.service) {
                left.push(format!(
                    "container {}: service `{}` is not in the desired state of this host",
                    c.name, c.service
                ));
            } else {
                by_service.entry(&c.service).or_default().push(c.clone());
            }
        }
        let services = dependency_order(spec)
            .into_iter()
            .filter_map(|name| {
                let compose = by_service.remove(name.as_str())?;
                let publishes =
                    !spec.services[&name].ports.is_empty() || compose.iter().any(|c| c.publishes);
                let why = if publishes {
                    Some("publishes host ports".to_string())
                } else if spec.services[&name].update.order == crate::model::UpdateOrder::StopFirst
                {
                    Some("its update order is stop-first".to_string())
                } else {
                    None
                };
                Some(ServiceSwitch {
                    order: if why.is_some() {
                        Order::StopFirst
                    } else {
                        Order::StartFirst
                    },
                    why,
                    containers: compose.iter().map(|c| c.name.clone()).collect(),
                    service: name,
                    compose,
                })
            })
            .collect();
        SwitchPlan {
            project: spec.project.clone(),
            volumes,
            networks,
            services,
            left,
        }
    }

    /// True when compose has nothing of the project on this host.
    pub(crate) fn is_empty(&self) -> bool {
        self.volumes.is_empty()
            && self.networks.is_empty()
            && self.services.is_empty()
            && self.left.is_empty()
    }

    /// The record of what is handed over.
    pub(crate) fn adopted(&self) -> Adopted {
        Adopted {
            volumes: self.volumes.iter().map(|h| h.name.clone()).collect(),
            networks: self.networks.iter().map(|h| h.name.clone()).collect(),
        }
    }

    /// The plan as text, for the operator to read before it is carried out.
    pub(crate) fn render(&self, drain: std::time::Duration) -> String {
        let mut out = format!(
            "docker compose project `{}` → berth project `{}`\n",
            self.project, self.project
        );
        for (kind, list) in [("volumes", &self.volumes), ("networks", &self.networks)] {
            if list.is_empty() {
                continue;
            }
            out.push_str(&format!(
                "{kind} handed over (used as they are; berth never removes them):\n"
            ));
            for h in list {
                out.push_str(&format!("  {} (`{}`)\n", h.name, h.short));
            }
        }
        if !self.services.is_empty() {
            out.push_str("services, in dependency order:\n");
        }
        let width = self
            .services
            .iter()
            .map(|s| s.service.len())
            .max()
            .unwrap_or(0);
        for s in &self.services {
            let containers = s.containers.join(", ");
            let (leaves, stops) = if s.containers.len() == 1 {
                ("leaves its alias", "stops")
            } else {
                ("leave their alias", "stop")
            };
            let how = match s.order {
                Order::StartFirst => format!(
                    "start-first: berth's replicas start and pass their gate, then {containers} {leaves}, drain {}ms and {stops}",
                    drain.as_millis()
                ),
                Order::StopFirst => format!(
                    "stop-first ({}): {containers} {stops}, then berth's replicas start; unserved until they pass their gate",
                    s.why.as_deref().unwrap_or_default()
                ),
            };
            out.push_str(&format!("  {:<width$}  {how}\n", s.service));
        }
        if !self.left.is_empty() {
            out.push_str("left alone:\n");
            for l in &self.left {
                out.push_str(&format!("  {l}\n"));
            }
        }
        out
    }
}

/// The services of `spec`, each after the services it depends on, by name otherwise.
pub(crate) fn dependency_order(spec: &Spec) -> Vec<String> {
    let mut order: Vec<String> = Vec::new();
    let mut placed: BTreeSet<&str> = BTreeSet::new();
    // Validation rules out cycles and unknown names; a bad input still ends.
    while placed.len() < spec.services.len() {
        let ready: Vec<&str> = spec
            .services
            .iter()
            .filter(|(name, s)| {
                !placed.contains(name.as_str())
                    && s.depends_on
                        .iter()
                        .all(|d| placed.contains(d.as_str()) || !spec.services.contains_key(d))
            })
            .map(|(name, _)| name.as_str())
            .collect();
        let next: Vec<&str> = if ready.is_empty() {
            spec.services
                .keys()
                .map(String::as_str)
                .filter(|n| !placed.contains(n))
                .collect()
        } else {
            ready
        };
        for n in next {
            placed.insert(n);
            order.push(n.to_string());
        }
    }
    order
}

#[cfg(test)]
mod tests;
