//! One service written back: the compose service's keys (fields in alphabetical order,
//! so that the serialized keys are sorted) and how a [`ServiceSpec`] fills them.

use std::collections::BTreeMap;

use serde::Serialize;

use super::super::super::spec::*;
use super::super::super::units::format_duration;
use super::{format_size, literal, relative, Masking, MASK};

/// A service's use of a secret.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct SecretUse {
    /// The secret's name.
    pub source: String,
    /// Where it is mounted.
    pub target: String,
}

/// One compose service.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct Service {
    /// Capabilities dropped.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub cap_drop: Vec<String>,
    /// The command, as a list.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub command: Option<Vec<String>>,
    /// Services that must be healthy first.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub depends_on: BTreeMap<String, Dependency>,
    /// Replicas, update policy, limits and placement.
    pub deploy: Deploy,
    /// DNS servers.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub dns: Vec<String>,
    /// The entrypoint, as a list.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub entrypoint: Option<Vec<String>>,
    /// The host-side env files: their paths, never their content.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub env_file: Option<Vec<EnvFileOut>>,
    /// Committed environment, secrets masked.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub environment: BTreeMap<String, String>,
    /// Ports reachable by other services.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub expose: Vec<String>,
    /// `/etc/hosts` entries, `HOST:IP`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub extra_hosts: Vec<String>,
    /// The health check; left out for the image's own.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub healthcheck: Option<Healthcheck>,
    /// The host name the container sees as its own.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
    /// The pinned image.
    pub image: String,
    /// An init process as PID 1, when set either way.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub init: Option<bool>,
    /// Labels of the container, besides berth's own.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// Log driver and options.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub logging: Option<crate::model::Logging>,
    /// Memory reservation, a size such as `256m`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mem_reservation: Option<String>,
    /// Networks joined: a list, or a map when there are aliases.
    pub networks: NetworksOut,
    /// The most processes the container may run.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pids_limit: Option<i64>,
    /// Published ports, long syntax.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub ports: Vec<Port>,
    /// Only written when true.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub read_only: Option<bool>,
    /// `no` for a job; left out for a service (berth restarts every replica).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub restart: Option<&'static str>,
    /// Secrets mounted.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub secrets: Vec<SecretUse>,
    /// `no-new-privileges:true`, when set.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub security_opt: Vec<String>,
    /// Size of `/dev/shm`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shm_size: Option<String>,
    /// Only written when true.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stdin_open: Option<bool>,
    /// Time between SIGTERM and SIGKILL.
    pub stop_grace_period: String,
    /// The signal that stops a replica.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stop_signal: Option<String>,
    /// tmpfs mounts, `PATH[:OPTIONS]`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tmpfs: Vec<String>,
    /// Only written when true.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tty: Option<bool>,
    /// Process limits.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub ulimits: BTreeMap<String, crate::model::Ulimit>,
    /// `user[:group]`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// Mounts, long syntax.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub volumes: Vec<Volume>,
    /// Where the command starts, in the container.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub working_dir: Option<String>,
    /// berth's rollout keys compose has no name for.
    #[serde(rename = "x-berth")]
    pub x_berth: ServiceBerth,
}

/// A service's networks.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub(crate) enum NetworksOut {
    /// Names only.
    List(Vec<String>),
    /// Names with their aliases.
    Map(BTreeMap<String, NetworkAttach>),
}

/// How a service joins one network.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct NetworkAttach {
    /// Further names of the service there.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub aliases: Vec<String>,
}

/// An env file: its path, or the long form when it may be missing.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub(crate) enum EnvFileOut {
    /// A file that must exist.
    Path(String),
    /// `{ path, required: false }`.
    Long {
        /// The path as written.
        path: String,
        /// Always false here.
        required: bool,
    },
}

/// A `depends_on` entry: berth waits for a service to be healthy, for a job to
/// complete.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct Dependency {
    /// `service_healthy` or `service_completed_successfully`.
    pub condition: &'static str,
    /// Always true.
    pub required: bool,
}

/// `deploy`: the rollout keys compose has names for; the rest is in `x-berth`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct Deploy {
    /// Placement constraints, when any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub placement: Option<PlacementOut>,
    /// Replicas per host.
    pub replicas: u32,
    /// Limits, when any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resources: Option<ResourcesOut>,
    /// How replicas are replaced.
    pub update_config: UpdateConfig,
}

/// `deploy.placement`: berth's placement as Swarm writes it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct PlacementOut {
    /// `node.hostname == HOST` and `node.labels.KEY == VALUE`.
    pub constraints: Vec<String>,
}

/// `deploy.resources`: limits only; a memory reservation is `mem_reservation`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct ResourcesOut {
    /// What the container may use at most.
    pub limits: Limits,
}

/// `deploy.resources.limits`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct Limits {
    /// CPU limit in cores.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpus: Option<f64>,
    /// A size such as `512m`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memory: Option<String>,
}

/// `deploy.update_config`: the update policy's keys compose has names for.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct UpdateConfig {
    /// The pause between batches, when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delay: Option<String>,
    /// `rollback` or `pause`.
    pub failure_action: OnFailure,
    /// How long a new replica must stay healthy.
    pub monitor: String,
    /// `start-first` or `stop-first`.
    pub order: UpdateOrder,
    /// Replicas replaced at a time.
    pub parallelism: u32,
}

/// `healthcheck`: the test and its timing, or `disable` alone.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct Healthcheck {
    /// Set when health checking is switched off.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub disable: Option<bool>,
    /// Time between checks.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub interval: Option<String>,
    /// Failures that make a replica unhealthy.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retries: Option<u32>,
    /// Grace after start.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub start_period: Option<String>,
    /// `["CMD", …]` or `["CMD-SHELL", "…"]`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub test: Option<Vec<String>>,
    /// Time one check may take.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timeout: Option<String>,
}

/// A published port, long syntax.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct Port {
    /// The host address bound, when not every one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host_ip: Option<String>,
    /// `tcp` or `udp`.
    pub protocol: Protocol,
    /// The host port, a string as compose writes it.
    pub published: String,
    /// The container port.
    pub target: u16,
}

/// A mount, long syntax.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct Volume {
    /// Only written when true.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub read_only: Option<bool>,
    /// A volume name, `./path` in the repository, or an absolute host path.
    pub source: String,
    /// The path in the container.
    pub target: String,
    /// `volume` or `bind`.
    #[serde(rename = "type")]
    pub kind: &'static str,
}

/// A service's `x-berth`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct ServiceBerth {
    /// The host that goes first.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub canary: Option<String>,
    /// How long a new replica may take to become healthy.
    pub deadline: String,
    /// At most this many hosts replace replicas at once.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_hosts: Option<u32>,
    /// A job's migration keys.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub migration: Option<JobBerth>,
}

/// A job's `x-berth.migration`; the services it gates wait for it in their
/// `depends_on`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct JobBerth {
    /// The only host that runs it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub run_on: Option<String>,
    /// Killed after this long.
    pub timeout: String,
}

/// The compose service of `s`, each string through `masking`; repository mounts are
/// written relative to the directory `dir`.
pub(super) fn service(s: &ServiceSpec, dir: &str, masking: &Masking) -> Service {
    let show = |v: &str| literal(&(masking.redact)(v));
    let o = &s.options;
    let shown = |v: &Option<String>| v.as_deref().map(show);
    Service {
        cap_drop: o.cap_drop.clone(),
        security_opt: if o.no_new_privileges {
            vec!["no-new-privileges:true".to_string()]
        } else {
            Vec::new()
        },
        dns: o.dns.iter().map(|d| show(d)).collect(),
        entrypoint: o
            .entrypoint
            .as_ref()
            .map(|e| e.iter().map(|w| show(w)).collect()),
        extra_hosts: o.extra_hosts.iter().map(|h| show(h)).collect(),
        hostname: shown(&o.hostname),
        init: o.init,
        labels: o.labels.iter().map(|(k, v)| (show(k), show(v))).collect(),
        logging: o.logging.as_ref().map(|l| Logging {
            driver: show(&l.driver),
            options: l.options.iter().map(|(k, v)| (show(k), show(v))).collect(),
        }),
        mem_reservation: o.mem_reservation.map(format_size),
        pids_limit: o.pids_limit,
        read_only: o.read_only.then_some(true),
        shm_size: o.shm_size.map(format_size),
        stdin_open: o.stdin_open.then_some(true),
        stop_signal: shown(&o.stop_signal),
        tmpfs: o
            .tmpfs
            .iter()
            .map(|t| match t.options.as_str() {
                "" => show(&t.target),
                opts => format!("{}:{}", show(&t.target), show(opts)),
            })
            .collect(),
        tty: o.tty.then_some(true),
        ulimits: o.ulimits.clone(),
        user: shown(&o.user),
        working_dir: shown(&o.working_dir),
        command: s
            .command
            .as_ref()
            .map(|c| c.iter().map(|w| show(w)).collect()),
        depends_on: s
            .depends_on
            .iter()
            .map(|d| {
                (
                    d.clone(),
                    Dependency {
                        condition: "service_healthy",
                        required: true,
                    },
                )
            })
            .collect(),
        deploy: deploy(s, &show),
        env_file: env_file(&s.env_files, &show),
        environment: s
            .env
            .iter()
            .map(|(k, v)| {
                let shown = if (masking.secret_name)(k) {
                    MASK.to_string()
                } else {
                    show(v)
                };
                (k.clone(), shown)
            })
            .collect(),
        expose: s.expose.iter().map(u16::to_string).collect(),
        healthcheck: healthcheck(&s.health, &show),
        image: show(&s.image.to_string()),
        networks: networks(s),
        ports: s
            .ports
            .iter()
            .map(|p| Port {
                host_ip: p.host_ip.clone(),
                protocol: p.protocol,
                published: p.host_port.to_string(),
                target: p.container_port,
            })
            .collect(),
        stop_grace_period: format_duration(s.stop_grace),
        secrets: s
            .volumes
            .iter()
            .filter_map(|m| match &m.source {
                MountSource::Secret { name, .. } => Some(SecretUse {
                    source: name.clone(),
                    target: show(&m.target),
                }),
                _ => None,
            })
            .collect(),
        volumes: volumes(&s.volumes, dir, &show),
        x_berth: ServiceBerth {
            canary: s.update.canary.as_deref().map(show),
            deadline: format_duration(s.update.deadline),
            max_hosts: s.update.max_hosts,
            migration: None,
        },
        restart: None,
    }
}

/// `healthcheck`: left out for the image's own check.
fn healthcheck(health: &Health, show: &dyn Fn(&str) -> String) -> Option<Healthcheck> {
    match health {
        Health::Image => None,
        Health::Disabled => Some(Healthcheck {
            disable: Some(true),
            interval: None,
            retries: None,
            start_period: None,
            test: None,
            timeout: None,
        }),
        Health::Check(h) => Some(Healthcheck {
            disable: None,
            interval: Some(format_duration(h.interval)),
            retries: Some(h.retries),
            start_period: Some(format_duration(h.start_period)),
            test: Some(h.test.iter().map(|t| show(t)).collect()),
            timeout: Some(format_duration(h.timeout)),
        }),
    }
}

/// `deploy`: replicas, the update policy, the limits and the placement as constraints.
fn deploy(s: &ServiceSpec, show: &dyn Fn(&str) -> String) -> Deploy {
    let mut constraints: Vec<String> = s
        .placement
        .hosts
        .iter()
        .map(|h| format!("node.hostname == {}", show(h)))
        .collect();
    constraints.extend(
        s.placement
            .labels
            .iter()
            .map(|(k, v)| format!("node.labels.{} == {}", show(k), show(v))),
    );
    let resources = (s.resources != Resources::default()).then(|| ResourcesOut {
        limits: Limits {
            cpus: s.resources.cpus,
            memory: s.resources.memory.map(format_size),
        },
    });
    Deploy {
        placement: (!constraints.is_empty()).then_some(PlacementOut { constraints }),
        replicas: s.replicas,
        resources,
        update_config: UpdateConfig {
            delay: (!s.update.delay.is_zero()).then(|| format_duration(s.update.delay)),
            failure_action: s.update.on_failure,
            monitor: format_duration(s.update.monitor),
            order: s.update.order,
            parallelism: s.update.parallelism,
        },
    }
}

/// `env_file`: the short form for a file that must exist, the long one otherwise.
fn env_file(files: &[EnvFileRef], show: &dyn Fn(&str) -> String) -> Option<Vec<EnvFileOut>> {
    (!files.is_empty()).then(|| {
        files
            .iter()
            .map(|f| {
                let path = show(&f.path.to_string_lossy());
                if f.required {
                    EnvFileOut::Path(path)
                } else {
                    EnvFileOut::Long {
                        path,
                        required: false,
                    }
                }
            })
            .collect()
    })
}

/// `networks`: a list, or a mapping when the service has aliases on any of them.
fn networks(s: &ServiceSpec) -> NetworksOut {
    if s.options.aliases.is_empty() {
        return NetworksOut::List(s.networks.clone());
    }
    NetworksOut::Map(
        s.networks
            .iter()
            .map(|n| {
                let aliases = s.options.aliases.get(n).cloned().unwrap_or_default();
                (n.clone(), NetworkAttach { aliases })
            })
            .collect(),
    )
}

/// `volumes` in the long syntax, secrets apart (they are written under `secrets`).
fn volumes(mounts: &[Mount], dir: &str, show: &dyn Fn(&str) -> String) -> Vec<Volume> {
    mounts
        .iter()
        .filter(|m| !matches!(m.source, MountSource::Secret { .. }))
        .map(|m| {
            let (kind, source) = match &m.source {
                MountSource::Volume(v) => ("volume", v.clone()),
                MountSource::RepoFile(f) => ("bind", show(&relative(dir, &f.path))),
                MountSource::RepoDir(d) => ("bind", show(&relative(dir, &d.path))),
                MountSource::HostPath(p) => ("bind", show(&p.to_string_lossy())),
                MountSource::HostData(rel) => ("bind", show(&format!("./{rel}"))),
                MountSource::Secret { .. } => unreachable!("filtered above"),
            };
            Volume {
                read_only: m.read_only.then_some(true),
                source,
                target: show(&m.target),
                kind,
            }
        })
        .collect()
}
