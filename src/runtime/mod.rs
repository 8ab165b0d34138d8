//! The Docker boundary: one trait the rest of berth talks to, the bollard
//! implementation, and the conversions from bollard's models to berth's own types.

pub mod compose;
mod docker;
pub mod labels;
#[cfg(any(test, feature = "test-util"))]
pub mod memory;

use std::collections::BTreeMap;
use std::time::Duration;

use async_trait::async_trait;

pub use docker::{replica_name, DockerEngine};

/// What a berth-managed container is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// A serving replica in its slot.
    Replica,
    /// Beside a replica in its slot: a replacement not yet promoted, or the previous
    /// replica kept stopped for rollback. Told apart from the replica by its name.
    Candidate,
    /// A one-shot migration run.
    Migration,
}

impl Role {
    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Replica => "replica",
            Role::Candidate => "candidate",
            Role::Migration => "migration",
        }
    }
}

/// A container's life-cycle state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase", tag = "state", content = "exit_code")]
pub enum RunState {
    /// Created, never started.
    Created,
    /// Running.
    Running,
    /// Frozen by `docker pause`.
    Paused,
    /// Being restarted by its restart policy.
    Restarting,
    /// Stopped, with its exit code when Docker reported one.
    Exited(Option<i64>),
    /// Being removed.
    Removing,
    /// Dead (failed removal).
    Dead,
}

/// A container's health as Docker reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum HealthState {
    /// No health check configured.
    None,
    /// Within its start period, or no check has finished yet.
    Starting,
    /// The last checks passed.
    Healthy,
    /// Failed `retries` checks in a row.
    Unhealthy,
}

/// A container berth manages, as observed.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ObservedContainer {
    /// Docker's container ID.
    pub id: String,
    /// The container name without the leading `/`.
    pub name: String,
    /// The service (or, for a migration, the `from` service).
    pub service: String,
    /// The slot, 0 for migrations.
    pub slot: u32,
    /// What the container is.
    pub role: Role,
    /// The spec hash it was created from.
    pub spec_hash: String,
    /// The per-part hashes label, when present.
    #[serde(skip)]
    pub parts: Option<String>,
    /// The commit it was created for.
    pub commit: Option<String>,
    /// The image reference as the desired state named it.
    pub image: String,
    /// For migrations: the migration's name.
    pub migration: Option<String>,
    /// Life-cycle state.
    pub state: RunState,
    /// Health.
    pub health: HealthState,
    /// Creation time, seconds since the epoch.
    pub created: i64,
}

impl ObservedContainer {
    /// Running (or being restarted by Docker, which will bring it back on its own).
    pub fn is_up(&self) -> bool {
        matches!(self.state, RunState::Running | RunState::Restarting)
    }
}

/// A managed network or volume.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObservedObject {
    /// Its full name.
    pub name: String,
    /// Docker's ID for a network (names of networks need not be unique), the name for
    /// a volume.
    pub id: String,
    /// Its `berth.project` label.
    pub project: String,
}

/// How a port is published.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublishedPort {
    /// Host address, `None` for all.
    pub host_ip: Option<String>,
    /// Host port.
    pub host_port: u16,
    /// Container port.
    pub container_port: u16,
    /// `tcp` or `udp`.
    pub protocol: &'static str,
}

/// One bind mount.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BindMount {
    /// Host path or volume name.
    pub source: String,
    /// Path in the container.
    pub target: String,
    /// Read-only.
    pub read_only: bool,
    /// True when `source` names a volume rather than a host path.
    pub volume: bool,
}

/// Health check configuration for a container.
#[derive(Debug, Clone, PartialEq)]
pub struct HealthConfig {
    /// `["CMD", …]`, `["CMD-SHELL", …]` or `["NONE"]`.
    pub test: Vec<String>,
    /// Time between checks.
    pub interval: Duration,
    /// Time one check may take.
    pub timeout: Duration,
    /// Failures before unhealthy.
    pub retries: u32,
    /// Grace period after start.
    pub start_period: Duration,
}

/// Everything needed to create one container.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ContainerSpec {
    /// Container name.
    pub name: String,
    /// Image reference.
    pub image: String,
    /// Command override.
    pub command: Option<Vec<String>>,
    /// `KEY=VALUE` entries.
    pub env: Vec<String>,
    /// Labels.
    pub labels: BTreeMap<String, String>,
    /// Full network names, each joined with these aliases.
    pub networks: Vec<(String, Vec<String>)>,
    /// Ports exposed (not published).
    pub expose: Vec<u16>,
    /// Ports published on the host.
    pub ports: Vec<PublishedPort>,
    /// Mounts.
    pub mounts: Vec<BindMount>,
    /// Health check; `None` keeps the image's.
    pub health: Option<HealthConfig>,
    /// Memory limit in bytes.
    pub memory: Option<u64>,
    /// CPU limit in cores.
    pub cpus: Option<f64>,
    /// Grace between SIGTERM and SIGKILL.
    pub stop_grace: Duration,
    /// Restart policy `unless-stopped` when true (replicas); none for one-shot jobs.
    pub restart: bool,
    /// Entrypoint override; an empty list clears the image's.
    pub entrypoint: Option<Vec<String>>,
    /// `user[:group]` in the container.
    pub user: Option<String>,
    /// Working directory in the container.
    pub working_dir: Option<String>,
    /// The container's hostname; `None` for Docker's (the short ID).
    pub hostname: Option<String>,
    /// Read-only root filesystem.
    pub read_only: bool,
    /// An init process as PID 1.
    pub init: bool,
    /// The stop signal; `None` for the image's (SIGTERM by default).
    pub stop_signal: Option<String>,
    /// tmpfs mounts: target and Docker's mount options.
    pub tmpfs: Vec<(String, String)>,
    /// `/etc/hosts` entries, `host:ip`.
    pub extra_hosts: Vec<String>,
    /// DNS servers.
    pub dns: Vec<String>,
    /// Log driver and its options; `None` for `json-file` rotated at 10 MiB × 3.
    pub log: Option<(String, BTreeMap<String, String>)>,
    /// Process limits: name, soft, hard.
    pub ulimits: Vec<(String, i64, i64)>,
    /// Size of `/dev/shm` in bytes.
    pub shm_size: Option<u64>,
    /// Most processes.
    pub pids_limit: Option<i64>,
    /// Capabilities dropped.
    pub cap_drop: Vec<String>,
    /// Security options (`no-new-privileges:true`).
    pub security_opt: Vec<String>,
    /// Memory reservation in bytes.
    pub memory_reservation: Option<u64>,
    /// Allocates a pseudo-TTY.
    pub tty: bool,
    /// Keeps stdin open.
    pub stdin_open: bool,
}

/// A container's place on one network.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// The network's full name.
    pub network: String,
    /// The names it answers to on that network besides its own (Docker adds the short
    /// container ID).
    pub aliases: Vec<String>,
    /// Its IPv4 address there; `None` while it is not running.
    pub address: Option<String>,
}

/// Failures at the Docker boundary.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// The engine could not be reached or answered with an error.
    #[error("docker: {0}")]
    Docker(String),
    /// Docker said the object does not exist.
    #[error("not found: {0}")]
    NotFound(String),
    /// A name is taken (by an object berth may not own).
    #[error("name conflict: {0}")]
    Conflict(String),
    /// A managed container whose labels berth cannot read; never skipped silently.
    #[error("container {id} has unreadable berth labels: {reason}")]
    Conversion {
        /// The container.
        id: String,
        /// What was wrong.
        reason: String,
    },
    /// Pulling an image failed; the message is the registry's.
    #[error("pull {image}: {message}")]
    Pull {
        /// The image reference.
        image: String,
        /// What the registry or engine said.
        message: String,
    },
}

impl RuntimeError {
    /// True for a pull that got no answer from the registry: it could not be reached
    /// (refused, reset, timed out, not resolved) or said it is unavailable for now
    /// (502, 503, 504, rate limited). Such a failure is not the release's: the same pull
    /// can succeed once the registry is back. A registry that answers "no such image"
    /// or "denied" is not unreachable.
    pub fn registry_unreachable(&self) -> bool {
        let RuntimeError::Pull { message, .. } = self else {
            return false;
        };
        let m = message.to_ascii_lowercase();
        UNREACHABLE.iter().any(|p| m.contains(p))
    }
}

/// What dockerd says when a pull got no answer from the registry.
const UNREACHABLE: [&str; 15] = [
    "dial tcp",
    "connection refused",
    "connection reset",
    "no such host",
    "i/o timeout",
    "tls handshake timeout",
    "context deadline exceeded",
    "client.timeout exceeded",
    "unexpected eof",
    "no route to host",
    "network is unreachable",
    "502 bad gateway",
    "503 service unavailable",
    "504 gateway timeout",
    "toomanyrequests",
];

/// The details of one container that listing does not give.
#[derive(Debug, Clone, PartialEq)]
pub struct ContainerDetails {
    /// Life-cycle state.
    pub state: RunState,
    /// Health.
    pub health: HealthState,
    /// The last health check output, when there is one.
    pub health_log: Option<String>,
    /// True when the image or spec has a health check.
    pub has_healthcheck: bool,
    /// When it last started (RFC 3339), if ever.
    pub started_at: Option<String>,
    /// When it last stopped (RFC 3339), if ever.
    pub finished_at: Option<String>,
    /// Its endpoint on each network it is attached to.
    pub networks: Vec<Endpoint>,
    /// How often Docker's restart policy has restarted it.
    pub restart_count: i64,
    /// The exit code of its last run, when it has exited at least once.
    pub last_exit_code: Option<i64>,
}

/// How far a pull has come, as the engine reports it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PullStatus {
    /// Layers downloaded and extracted, or already here.
    pub layers_done: u32,
    /// Layers seen so far.
    pub layers: u32,
    /// Bytes downloaded.
    pub bytes: u64,
    /// Bytes to download, of the layers whose size is known.
    pub bytes_total: u64,
}

/// Called as a pull moves on.
pub type OnPull<'a> = &'a (dyn Fn(PullStatus) + Send + Sync);

/// The Docker operations berth needs. Everything that touches the engine goes through
/// this trait.
#[async_trait]
pub trait Engine: Send + Sync {
    /// Every container berth manages, of every project, in one list call.
    async fn list_managed(&self) -> Result<Vec<(String, ObservedContainer)>, RuntimeError>;
    /// Every container of `project`, in one list call.
    async fn list_project(&self, project: &str) -> Result<Vec<ObservedContainer>, RuntimeError>;
    /// Inspects one container.
    async fn inspect(&self, id: &str) -> Result<ContainerDetails, RuntimeError>;
    /// True when the image is present on the host.
    async fn has_image(&self, image: &str) -> Result<bool, RuntimeError>;
    /// Pulls an image with the given registry credentials.
    async fn pull(&self, image: &str, auth: Option<RegistryAuth>) -> Result<(), RuntimeError>;
    /// [`Engine::pull`], telling `on` how far it has come (an engine that cannot tell
    /// just pulls).
    async fn pull_watched(
        &self,
        image: &str,
        auth: Option<RegistryAuth>,
        _on: OnPull<'_>,
    ) -> Result<(), RuntimeError> {
        self.pull(image, auth).await
    }
    /// The digest that names the image's content everywhere: the manifest digest the
    /// registry gave for its repository, or, for an image never pulled or pushed, its
    /// ID.
    async fn image_digest(&self, image: &str) -> Result<String, RuntimeError>;
    /// Creates a container, returning its ID.
    async fn create(&self, spec: &ContainerSpec) -> Result<String, RuntimeError>;
    /// Starts a container.
    async fn start(&self, id: &str) -> Result<(), RuntimeError>;
    /// Stops a container, giving it `grace` before SIGKILL.
    async fn stop(&self, id: &str, grace: Duration) -> Result<(), RuntimeError>;
    /// Kills a container at once.
    async fn kill(&self, id: &str) -> Result<(), RuntimeError>;
    /// Removes a container (forcibly).
    async fn remove(&self, id: &str) -> Result<(), RuntimeError>;
    /// Renames a container.
    async fn rename(&self, id: &str, name: &str) -> Result<(), RuntimeError>;
    /// Takes a container off a network, so no new connection reaches it.
    async fn disconnect(&self, network: &str, id: &str) -> Result<(), RuntimeError>;
    /// Puts a container on a network with the given aliases.
    async fn connect(
        &self,
        network: &str,
        id: &str,
        aliases: Vec<String>,
    ) -> Result<(), RuntimeError>;
    /// Takes a container off a network and puts it back at once with other aliases (the
    /// only way Docker changes them), returning its address afterwards. Endpoint changes
    /// made through one engine take turns with each other and with container starts,
    /// so the address just given up is, unless something outside berth takes it
    /// meanwhile, the one handed back: connections
    /// to and from the container then survive the change.
    async fn reconnect(
        &self,
        network: &str,
        id: &str,
        aliases: Vec<String>,
    ) -> Result<Option<String>, RuntimeError>;
    /// Whether a network of this name exists, berth's or not.
    async fn network_exists(&self, name: &str) -> Result<bool, RuntimeError>;
    /// Whether a volume of this name exists, berth's or not.
    async fn volume_exists(&self, name: &str) -> Result<bool, RuntimeError>;
    /// Managed networks of `project`.
    async fn list_networks(&self, project: &str) -> Result<Vec<ObservedObject>, RuntimeError>;
    /// Creates a labelled bridge network.
    async fn create_network(
        &self,
        name: &str,
        labels: BTreeMap<String, String>,
    ) -> Result<(), RuntimeError>;
    /// Removes a network.
    async fn remove_network(&self, name: &str) -> Result<(), RuntimeError>;
    /// Managed volumes of `project`.
    async fn list_volumes(&self, project: &str) -> Result<Vec<ObservedObject>, RuntimeError>;
    /// Creates a labelled volume.
    async fn create_volume(
        &self,
        name: &str,
        labels: BTreeMap<String, String>,
    ) -> Result<(), RuntimeError>;
    /// The last `lines` lines of a container's output.
    async fn logs_tail(&self, id: &str, lines: usize) -> Result<String, RuntimeError>;
    /// Waits for a container to exit and returns its exit code.
    async fn wait(&self, id: &str) -> Result<i64, RuntimeError>;
    /// One item for every die, destroy or health change of a berth-managed container,
    /// of any project: what wakes the agent. An error ends the stream; the caller opens
    /// it again.
    fn events(&self) -> futures_util::stream::BoxStream<'_, Result<(), RuntimeError>>;
    /// Whether the engine answers at all: after a failure, tells an engine that is
    /// away (restarting, stopped) from one that refused a call.
    async fn ping(&self) -> Result<(), RuntimeError> {
        self.list_managed().await.map(|_| ())
    }
}

/// Registry credentials, as `docker login` stores them or a credential helper gives
/// them. Its `Debug` shows neither the password nor the token.
#[derive(Clone, PartialEq, Eq)]
pub struct RegistryAuth {
    /// User name.
    pub username: String,
    /// Password or token.
    pub password: String,
    /// An identity (refresh) token, used instead of the user name and password.
    pub identity_token: Option<String>,
    /// The registry host.
    pub server: String,
}

impl std::fmt::Debug for RegistryAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegistryAuth")
            .field("username", &self.username)
            .field("password", &"***")
            .field(
                "identity_token",
                &self.identity_token.as_ref().map(|_| "***"),
            )
            .field("server", &self.server)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::RuntimeError;

    fn pull(message: &str) -> RuntimeError {
        RuntimeError::Pull {
            image: "registry.example/app:v2".into(),
            message: message.into(),
        }
    }

    #[test]
    fn a_pull_without_an_answer_from_the_registry_is_unreachable_and_a_refusal_is_not() {
        // What dockerd 20.10 says, as bollard hands it over.
        for unreachable in [
            r#"Get "http://127.0.0.1:5000/v2/": dial tcp 127.0.0.1:5000: connect: connection refused"#,
            r#"Get "https://registry.example/v2/": dial tcp: lookup registry.example on 127.0.0.53:53: no such host"#,
            r#"Get "https://registry.example/v2/": net/http: TLS handshake timeout"#,
            r#"Get "https://registry.example/v2/": context deadline exceeded (Client.Timeout exceeded while awaiting headers)"#,
            "received unexpected HTTP status: 503 Service Unavailable",
            "toomanyrequests: You have reached your pull rate limit.",
        ] {
            assert!(pull(unreachable).registry_unreachable(), "{unreachable}");
        }
        for refused in [
            "manifest for registry.example/app:v2 not found: manifest unknown: manifest unknown",
            "pull access denied for registry.example/app, repository does not exist or may require 'docker login': denied: requested access to the resource is denied",
            "unauthorized: authentication required",
            "no matching manifest for linux/amd64 in the manifest list entries",
        ] {
            assert!(!pull(refused).registry_unreachable(), "{refused}");
        }
        assert!(!RuntimeError::Docker("dial tcp: connection refused".into()).registry_unreachable());
    }
}
