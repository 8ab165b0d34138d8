//! What a test tells the memory engine, and what it reads back: the calls, how an
//! image behaves, a container as seen from outside.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use crate::runtime::{labels, HealthState, RunState};

/// An engine call, as the memory engine records it and as a failure is injected into.
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
