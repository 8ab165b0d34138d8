//! What an apply is doing right now, as typed events: images pulled, replicas started
//! as `-next`, health gates with their deadlines, old replicas draining. The executor
//! sends them (never waiting) to whoever asked ([`ApplyOptions::progress`]); the
//! agent folds them into a [`Board`] for its status page, `berth apply` draws them on
//! a terminal.
//!
//! Events carry only names the status already shows (services, containers, images)
//! and wall-clock times; never an error text or an environment.
//!
//! [`ApplyOptions::progress`]: super::ApplyOptions::progress

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Serialize;
use tokio::sync::mpsc::UnboundedSender;

/// Milliseconds since the epoch, the times the events carry.
pub(crate) fn unix_ms(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// One thing an apply did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "event", rename_all = "kebab-case")]
pub(crate) enum Event {
    /// An image is being pulled.
    PullStarted {
        /// The image, credentials masked.
        image: String,
    },
    /// A pull moved on: layers and bytes so far (the engine's own count).
    PullProgress {
        /// The image.
        image: String,
        /// Layers complete.
        layers_done: u32,
        /// Layers seen.
        layers: u32,
        /// Bytes downloaded.
        bytes: u64,
        /// Bytes to download, as far as the engine knows.
        bytes_total: u64,
    },
    /// A pull ended.
    PullDone {
        /// The image.
        image: String,
        /// Whether the image is here now.
        ok: bool,
    },
    /// A service starts to change.
    ServiceStarted {
        /// The service.
        service: String,
        /// The image it moves to.
        image: String,
    },
    /// A new replica was started, outside the alias when its name ends in `-next`.
    ReplicaStarted {
        /// The service.
        service: String,
        /// The slot.
        slot: u32,
        /// The new container's name.
        container: String,
    },
    /// The new replica's health gate: healthy by `deadline_ms`, then for `monitor_ms`.
    Gate {
        /// The service.
        service: String,
        /// The slot.
        slot: u32,
        /// The container.
        container: String,
        /// When the gate fails if it is not healthy (ms since the epoch).
        deadline_ms: u64,
        /// How long it must stay healthy once it is.
        monitor_ms: u64,
    },
    /// Old replicas left the alias and drain until `until_ms`, then stop.
    Draining {
        /// The service.
        service: String,
        /// The containers.
        containers: Vec<String>,
        /// When their stop signal is sent (ms since the epoch).
        until_ms: u64,
    },
    /// A slot serves from its new replica.
    SlotDone {
        /// The service.
        service: String,
        /// The slot.
        slot: u32,
    },
    /// The service's part of the apply ended.
    ServiceDone {
        /// The service.
        service: String,
        /// `converged`, `failed`, `rolled-back`, ...
        outcome: String,
    },
}

/// Where events go; sending never waits, and a receiver gone is not an error.
#[derive(Debug, Clone)]
pub(crate) struct Sink(UnboundedSender<Event>);

impl Sink {
    /// Events into `tx`.
    pub(crate) fn new(tx: UnboundedSender<Event>) -> Self {
        Self(tx)
    }
}

/// Sends `event` to `sink`, if there is one.
pub(crate) fn emit(sink: &Option<Sink>, event: impl FnOnce() -> Event) {
    if let Some(Sink(tx)) = sink {
        let _ = tx.send(event());
    }
}

/// Gate timing for an event: the deadline as a wall-clock time.
pub(crate) fn gate_times(deadline: Duration, monitor: Duration) -> (u64, u64) {
    (
        unix_ms(SystemTime::now() + deadline),
        monitor.as_millis() as u64,
    )
}

/// A slot being replaced.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub(crate) struct SlotProgress {
    /// The new replica (`…-next` until it passed its gate).
    pub container: Option<String>,
    /// Its gate's deadline (ms since the epoch), while it waits.
    pub deadline_ms: Option<u64>,
    /// The monitor period of the gate.
    pub monitor_ms: Option<u64>,
    /// Passed its gate and serves.
    pub done: bool,
}

/// One service on its way.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub(crate) struct ServiceProgress {
    /// The image it moves to.
    pub image: String,
    /// By slot.
    pub slots: BTreeMap<u32, SlotProgress>,
    /// Old replicas draining, and until when.
    pub draining: Vec<String>,
    /// When the drain ends (ms since the epoch).
    pub drain_until_ms: Option<u64>,
}

/// A pull on its way.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub(crate) struct PullProgress {
    /// Layers complete.
    pub layers_done: u32,
    /// Layers seen.
    pub layers: u32,
    /// Bytes downloaded.
    pub bytes: u64,
    /// Bytes to download.
    pub bytes_total: u64,
}

/// What is under way, folded from events: what the status page shows.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub(crate) struct Board {
    /// Pulls in flight, by image.
    pub pulls: BTreeMap<String, PullProgress>,
    /// Services changing, by name.
    pub services: BTreeMap<String, ServiceProgress>,
}

impl Board {
    /// Takes one event in.
    pub(crate) fn apply(&mut self, event: &Event) {
        match event {
            Event::PullStarted { image } => {
                self.pulls.insert(image.clone(), PullProgress::default());
            }
            Event::PullProgress {
                image,
                layers_done,
                layers,
                bytes,
                bytes_total,
            } => {
                self.pulls.insert(
                    image.clone(),
                    PullProgress {
                        layers_done: *layers_done,
                        layers: *layers,
                        bytes: *bytes,
                        bytes_total: *bytes_total,
                    },
                );
            }
            Event::PullDone { image, .. } => {
                self.pulls.remove(image);
            }
            Event::ServiceStarted { service, image } => {
                self.services.insert(
                    service.clone(),
                    ServiceProgress {
                        image: image.clone(),
                        ..Default::default()
                    },
                );
            }
            Event::ReplicaStarted {
                service,
                slot,
                container,
            } => {
                let s = self.service(service).slots.entry(*slot).or_default();
                *s = SlotProgress {
                    container: Some(container.clone()),
                    ..Default::default()
                };
            }
            Event::Gate {
                service,
                slot,
                container,
                deadline_ms,
                monitor_ms,
            } => {
                let s = self.service(service).slots.entry(*slot).or_default();
                s.container = Some(container.clone());
                s.deadline_ms = Some(*deadline_ms);
                s.monitor_ms = Some(*monitor_ms);
            }
            Event::Draining {
                service,
                containers,
                until_ms,
            } => {
                let s = self.service(service);
                s.draining = containers.clone();
                s.drain_until_ms = Some(*until_ms);
            }
            Event::SlotDone { service, slot } => {
                let s = self.service(service);
                let slot = s.slots.entry(*slot).or_default();
                slot.done = true;
                slot.deadline_ms = None;
                s.draining.clear();
                s.drain_until_ms = None;
            }
            Event::ServiceDone { service, .. } => {
                self.services.remove(service);
            }
        }
    }

    fn service(&mut self, name: &str) -> &mut ServiceProgress {
        self.services.entry(name.to_string()).or_default()
    }

    /// Nothing under way.
    pub(crate) fn is_idle(&self) -> bool {
        self.pulls.is_empty() && self.services.is_empty()
    }
}

#[cfg(test)]
#[path = "progress_tests.rs"]
mod tests;
