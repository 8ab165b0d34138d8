//! The validated desired state: every value checked, every default filled in.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use super::image::ImageRef;

/// A whole stack as one commit (or one directory) describes it.
#[derive(Debug, Clone, PartialEq)]
pub struct Spec {
    /// Prefixes every object berth creates for this stack.
    pub project: String,
    /// Networks by their short name; created as `<project>_<name>`.
    pub networks: BTreeMap<String, NetworkSpec>,
    /// Named volumes by their short name; created as `<project>_<name>`.
    pub volumes: BTreeMap<String, VolumeSpec>,
    /// Long-running services by name.
    pub services: BTreeMap<String, ServiceSpec>,
    /// One-shot migrations by name.
    pub migrations: BTreeMap<String, MigrationSpec>,
    /// Values that must never be printed: in a compose file, every value interpolated
    /// from the host's `.env`, and the host variables it read. Empty for format v1.
    pub secrets: Vec<String>,
}

/// A host-side env file a service reads.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct EnvFileRef {
    /// Absolute, or relative to the project's env directory on the host; for a file of
    /// the repository (`sealed`), its repository path.
    pub path: PathBuf,
    /// When false, a missing file is no variables (compose's `required: false`).
    pub required: bool,
    /// For an age-encrypted env file of the repository (`secrets/api.env.age`): its
    /// ciphertext at the deployed commit, decrypted on the host.
    pub sealed: Option<Arc<[u8]>>,
}

/// A bridge network of the project.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NetworkSpec {
    /// Made outside berth and used as it is, under its own name: never created,
    /// changed or removed.
    pub external: bool,
}

/// A named volume of the project.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VolumeSpec {
    /// Made outside berth and used as it is, under its own name: never created,
    /// changed or removed.
    pub external: bool,
}

/// One service: N identical replicas of one container spec.
#[derive(Debug, Clone, PartialEq)]
pub struct ServiceSpec {
    /// The service name, also its network alias.
    pub name: String,
    /// The pinned image.
    pub image: ImageRef,
    /// Replicas on this host; 0 scales the service to zero.
    pub replicas: u32,
    /// Overrides the image's command when set.
    pub command: Option<Vec<String>>,
    /// Committed environment (never secrets).
    pub env: BTreeMap<String, String>,
    /// Host-side env files holding secrets, read in order: a later file's keys win.
    pub env_files: Vec<EnvFileRef>,
    /// Ports reachable by other services, not published on the host.
    pub expose: Vec<u16>,
    /// Ports published on the host.
    pub ports: Vec<PortMapping>,
    /// Short names of the networks the replicas join.
    pub networks: Vec<String>,
    /// Mounts: named volumes, repository files, host paths.
    pub volumes: Vec<Mount>,
    /// How health is judged.
    pub health: Health,
    /// Memory and CPU limits.
    pub resources: Resources,
    /// How long a replica gets between SIGTERM and SIGKILL.
    pub stop_grace: Duration,
    /// How replicas are replaced.
    pub update: UpdatePolicy,
    /// Services that must be healthy before this one changes.
    pub depends_on: Vec<String>,
    /// Which hosts run it.
    pub placement: Placement,
    /// The container options of compose files (user, labels, tmpfs, ulimits, …);
    /// format v1 leaves them at their defaults.
    pub options: ContainerOptions,
}

/// Container options beyond image, command, environment and wiring. Every field's
/// default is what berth does without it, so a service that sets none is unchanged.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ContainerOptions {
    /// Overrides the image's entrypoint; an empty list clears it.
    pub entrypoint: Option<Vec<String>>,
    /// `user[:group]`, names or ids, inside the container.
    pub user: Option<String>,
    /// Absolute working directory inside the container.
    pub working_dir: Option<String>,
    /// The service's own labels; never a `berth.` key.
    pub labels: BTreeMap<String, String>,
    /// The container's hostname.
    pub hostname: Option<String>,
    /// Mounts the root filesystem read-only.
    pub read_only: bool,
    /// Runs an init process as PID 1; `None` keeps berth's default (on).
    pub init: Option<bool>,
    /// The signal that stops the container instead of SIGTERM.
    pub stop_signal: Option<String>,
    /// tmpfs mounts.
    pub tmpfs: Vec<Tmpfs>,
    /// `/etc/hosts` entries as `host:ip`, in file order.
    pub extra_hosts: Vec<String>,
    /// DNS servers (IP addresses).
    pub dns: Vec<String>,
    /// The log driver; `None` keeps berth's rotated `json-file`.
    pub logging: Option<Logging>,
    /// Resource limits of the process (`nofile`, `nproc`, …) by name.
    pub ulimits: BTreeMap<String, Ulimit>,
    /// Size of `/dev/shm` in bytes.
    pub shm_size: Option<u64>,
    /// Most processes the container may hold.
    pub pids_limit: Option<i64>,
    /// Kernel capabilities dropped (upper case, as written: `NET_RAW`, `ALL`).
    pub cap_drop: Vec<String>,
    /// `security_opt: [no-new-privileges]`: no process gains privileges through setuid.
    pub no_new_privileges: bool,
    /// Memory reservation (soft limit) in bytes.
    pub mem_reservation: Option<u64>,
    /// Allocates a pseudo-TTY.
    pub tty: bool,
    /// Keeps stdin open.
    pub stdin_open: bool,
    /// Names the replicas answer to beside the service's own, by network (short name);
    /// like the service name, held only by replicas that take traffic.
    pub aliases: BTreeMap<String, Vec<String>>,
}

/// A tmpfs mount.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Tmpfs {
    /// Absolute path in the container.
    pub target: String,
    /// Docker's mount options, checked (`size=67108864,mode=1777`); empty for none.
    pub options: String,
}

/// A log driver and its options.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Logging {
    /// The driver (`json-file`, `local`, `journald`, `syslog`, …).
    pub driver: String,
    /// Its options.
    pub options: BTreeMap<String, String>,
}

/// A soft and a hard process limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Ulimit {
    /// The limit the process gets.
    pub soft: i64,
    /// The most it may raise its soft limit to.
    pub hard: i64,
}

/// Which hosts run a service: every host by default; with `hosts`, only those named;
/// with `labels`, only hosts carrying every one of them (both must hold when both are
/// given). Replicas are per host.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Placement {
    /// Host names; empty for any.
    pub hosts: Vec<String>,
    /// Labels a host must carry.
    pub labels: BTreeMap<String, String>,
}

impl Placement {
    /// True when a host of this name and these labels runs the service.
    pub fn admits(&self, host: &str, labels: &BTreeMap<String, String>) -> bool {
        (self.hosts.is_empty() || self.hosts.iter().any(|h| h == host))
            && self.labels.iter().all(|(k, v)| labels.get(k) == Some(v))
    }
}

/// A published port: `[ip:]host:container[/proto]`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
pub struct PortMapping {
    /// Host address to bind; `None` binds every address.
    pub host_ip: Option<String>,
    /// Port on the host.
    pub host_port: u16,
    /// Port in the container.
    pub container_port: u16,
    /// `tcp` or `udp`.
    pub protocol: Protocol,
}

/// Transport protocol of a port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    /// TCP.
    Tcp,
    /// UDP.
    Udp,
}

impl Protocol {
    /// `tcp` or `udp`.
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
        }
    }
}

/// One mount of a service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    /// Where it comes from.
    pub source: MountSource,
    /// Absolute path in the container.
    pub target: String,
    /// Mounted read-only.
    pub read_only: bool,
}

/// The source of a mount.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MountSource {
    /// A named volume of the project (short name).
    Volume(String),
    /// A file of the repository at the deployed commit.
    RepoFile(RepoFile),
    /// A directory of the repository at the deployed commit, with everything below it.
    RepoDir(RepoDir),
    /// An absolute path on the host.
    HostPath(PathBuf),
    /// The project's own data on the host: a relative bind (`./data`) that is not in the
    /// repository. The path is relative to the compose file's directory and lives under
    /// `<state-dir>/data/<project>/`, created on first use and never removed.
    HostData(String),
    /// A compose secret: a file of the host's env directory (relative to it, or
    /// absolute inside it), checked as env files are and mounted read-only.
    Secret {
        /// The secret's name in the compose file.
        name: String,
        /// Its file as written: relative to the env directory, or absolute; for a file
        /// of the repository (`sealed`), its repository path.
        path: PathBuf,
        /// For an age-encrypted file of the repository (`secrets/db.age`): its
        /// ciphertext at the deployed commit, decrypted on the host.
        sealed: Option<Arc<[u8]>>,
    },
}

/// A repository file with its content, read when the desired state was loaded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepoFile {
    /// Repository-relative, normalized path (`files/Caddyfile`).
    pub path: String,
    /// The file's bytes.
    pub content: Arc<[u8]>,
}

/// A repository directory with its files, read when the desired state was loaded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepoDir {
    /// Repository-relative, normalized path (`desired/static`).
    pub path: String,
    /// Every file below it: the path relative to the directory, and the bytes; sorted.
    pub files: Vec<(String, Arc<[u8]>)>,
}

impl RepoDir {
    /// A hex digest of the paths and contents below the directory (not of its own path):
    /// two directories with the same files share one copy on the host.
    pub fn digest(&self) -> String {
        use sha2::{Digest, Sha256};
        let mut h = Sha256::new();
        for (path, content) in &self.files {
            h.update((path.len() as u64).to_le_bytes());
            h.update(path.as_bytes());
            h.update((content.len() as u64).to_le_bytes());
            h.update(content);
        }
        hex::encode(h.finalize())
    }
}

/// How a replica's health is judged.
#[derive(Debug, Clone, PartialEq)]
pub enum Health {
    /// The image's own HEALTHCHECK (or none, then running for `monitor` counts).
    Image,
    /// Health checking switched off (`test: ["NONE"]`).
    Disabled,
    /// A check given in the desired state.
    Check(HealthCheck),
}

/// A health check command with its timing.
#[derive(Debug, Clone, PartialEq)]
pub struct HealthCheck {
    /// `["CMD", …]` or `["CMD-SHELL", "…"]`.
    pub test: Vec<String>,
    /// Time between checks.
    pub interval: Duration,
    /// Time one check may take.
    pub timeout: Duration,
    /// Consecutive failures that make the container unhealthy.
    pub retries: u32,
    /// Grace after start during which failures do not count.
    pub start_period: Duration,
}

/// Memory and CPU limits.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Resources {
    /// Memory limit in bytes.
    pub memory: Option<u64>,
    /// CPU limit in cores.
    pub cpus: Option<f64>,
}

/// Whether the new replica starts before or after the old one stops.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum UpdateOrder {
    /// New beside old; the old goes once the new is healthy.
    StartFirst,
    /// Old stops first (needed when a host port is published).
    StopFirst,
}

/// What happens when a new replica fails its gate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum OnFailure {
    /// Remove the failed replica, keep the old ones, retry later with backoff.
    Rollback,
    /// Leave things as they are and stop converging the service.
    Pause,
}

/// How a service's replicas are replaced.
#[derive(Debug, Clone, PartialEq)]
pub struct UpdatePolicy {
    /// Start-first or stop-first.
    pub order: UpdateOrder,
    /// Slots replaced at a time.
    pub parallelism: u32,
    /// A pause between one batch's end and the next batch's start.
    pub delay: Duration,
    /// How long a new replica must stay healthy.
    pub monitor: Duration,
    /// How long a new replica may take to become healthy.
    pub deadline: Duration,
    /// What a failed gate leads to.
    pub on_failure: OnFailure,
    /// At most this many hosts replace the service's replicas at once (fleet
    /// coordination only); `None` for all.
    pub max_hosts: Option<u32>,
    /// The host that goes first; the others wait until its replicas are healthy
    /// (fleet coordination only).
    pub canary: Option<String>,
}

/// A one-shot job run once per image digest: of its `from` service (format v1), or of
/// its own container (a compose job).
#[derive(Debug, Clone, PartialEq)]
pub struct MigrationSpec {
    /// The migration name.
    pub name: String,
    /// Format v1: the service whose image, env, env_file, volumes and networks it uses.
    /// A compose job: the gated service it is placed with (one on the job's image when
    /// there is one).
    pub from: String,
    /// The command to run; for a compose job, its container's command (empty for the
    /// image's own).
    pub command: Vec<String>,
    /// A compose job's own container (image, command, environment, env_file, volumes,
    /// networks, options), compiled by the same rules as a service; `None` for format
    /// v1, which runs `from`'s container with `command`. Its `depends_on` are services
    /// it waits for, also added to every service it gates.
    pub job: Option<Box<ServiceSpec>>,
    /// Killed after this long.
    pub timeout: Duration,
    /// Services that wait for it.
    pub gates: Vec<String>,
    /// The only host that runs it, when set; the others wait for its result (with
    /// fleet coordination) or leave it alone (without).
    pub run_on: Option<String>,
}
