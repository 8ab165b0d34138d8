//! A validated [`Spec`] written back as a compose file, the way `docker compose config`
//! prints a resolved project: every default filled in, every value interpolated, keys
//! sorted. A format v1 stack comes out in compose terms; what compose has no key for
//! goes under `x-berth`.
//!
//! Every string value is written with `$` doubled, so the file reads back through the
//! compose reader to the same spec instead of being interpolated again. What is shown
//! of secrets is up to the caller's [`Masking`].

use std::collections::BTreeMap;

use serde::Serialize;

use super::super::spec::*;
use super::super::units::format_duration;

/// What the caller hides: `redact` masks secret values wherever they appear in a
/// string, and an environment variable whose name `secret_name` accepts is shown as
/// [`MASK`] whatever its value.
pub struct Masking<'a> {
    /// Masks every known secret value inside a string.
    pub redact: &'a dyn Fn(&str) -> String,
    /// True for environment names whose values are secret.
    pub secret_name: &'a dyn Fn(&str) -> bool,
}

/// What a masked value is shown as.
pub const MASK: &str = "***";

/// A compose project. Fields are declared in alphabetical order, so that the
/// serialized keys are sorted.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Project {
    /// The project name.
    pub name: String,
    /// Networks by their name in the spec.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub networks: BTreeMap<String, Object>,
    /// Services by name.
    pub services: BTreeMap<String, Service>,
    /// Named volumes by their name in the spec.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub volumes: BTreeMap<String, Object>,
    /// What compose cannot say at the top level: format v1's migrations.
    #[serde(rename = "x-berth", skip_serializing_if = "Option::is_none")]
    pub x_berth: Option<ProjectBerth>,
}

/// A top-level network or volume.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Object {
    /// Made outside berth; only written when true.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub external: Option<bool>,
    /// An external object's own name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

/// Top-level `x-berth`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ProjectBerth {
    /// One-shot migrations by name.
    pub migrations: BTreeMap<String, Migration>,
}

/// A format v1 migration.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Migration {
    /// The command run.
    pub command: Vec<String>,
    /// The service whose image and environment it runs with.
    pub from: String,
    /// Services that wait for it.
    pub gates: Vec<String>,
    /// The only host that runs it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub run_on: Option<String>,
    /// Killed after this long.
    pub timeout: String,
}

/// One compose service.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Service {
    /// Capabilities dropped.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub cap_drop: Vec<String>,
    /// `no-new-privileges:true`, when set.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub security_opt: Vec<String>,
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
    /// The container's hostname.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
    /// The pinned image.
    pub image: String,
    /// An init process as PID 1, when set either way.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub init: Option<bool>,
    /// Container labels.
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
    /// Most processes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pids_limit: Option<i64>,
    /// Published ports, long syntax.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub ports: Vec<Port>,
    /// Only written when true.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub read_only: Option<bool>,
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
    /// The working directory.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub working_dir: Option<String>,
    /// berth's rollout keys compose has no name for.
    #[serde(rename = "x-berth")]
    pub x_berth: ServiceBerth,
}

/// A `depends_on` entry: berth waits for the dependency to be healthy.
/// A service's networks.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum NetworksOut {
    /// Names only.
    List(Vec<String>),
    /// Names with their aliases.
    Map(BTreeMap<String, NetworkAttach>),
}

/// How a service joins one network.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NetworkAttach {
    /// Further names of the service there.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub aliases: Vec<String>,
}

/// An env file: its path, or the long form when it may be missing.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum EnvFileOut {
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

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Dependency {
    /// Always `service_healthy`.
    pub condition: &'static str,
    /// Always true.
    pub required: bool,
}

/// `deploy`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Deploy {
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

/// `deploy.placement`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PlacementOut {
    /// `node.hostname == HOST` and `node.labels.KEY == VALUE`.
    pub constraints: Vec<String>,
}

/// `deploy.resources`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ResourcesOut {
    /// `limits`.
    pub limits: Limits,
}

/// `deploy.resources.limits`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Limits {
    /// Cores.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpus: Option<f64>,
    /// A size such as `512m`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memory: Option<String>,
}

/// `deploy.update_config`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct UpdateConfig {
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

/// `healthcheck`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Healthcheck {
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
pub struct Port {
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
pub struct Volume {
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
pub struct ServiceBerth {
    /// The host that goes first.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub canary: Option<String>,
    /// How long a new replica may take to become healthy.
    pub deadline: String,
    /// At most this many hosts replace replicas at once.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_hosts: Option<u32>,
}

/// The compose project of `spec`, for a file written in the repository-relative
/// directory `dir` (repository files are mounted relative to it).
pub fn project(spec: &Spec, dir: &str, masking: &Masking) -> Project {
    let show = |s: &str| literal(&(masking.redact)(s));
    let objects = |external: &dyn Fn(&str) -> bool, names: Vec<&String>| {
        names
            .into_iter()
            .map(|n| {
                let object = if external(n) {
                    Object {
                        external: Some(true),
                        name: Some(show(n)),
                    }
                } else {
                    Object::default()
                };
                (n.clone(), object)
            })
            .collect::<BTreeMap<_, _>>()
    };
    let networks = objects(
        &|n| spec.networks[n].external,
        spec.networks.keys().collect(),
    );
    let volumes = objects(&|n| spec.volumes[n].external, spec.volumes.keys().collect());
    let services = spec
        .services
        .iter()
        .map(|(name, s)| (name.clone(), service(s, dir, masking)))
        .collect();
    let x_berth = (!spec.migrations.is_empty()).then(|| ProjectBerth {
        migrations: spec
            .migrations
            .iter()
            .map(|(name, m)| {
                (
                    name.clone(),
                    Migration {
                        command: m.command.iter().map(|c| show(c)).collect(),
                        from: m.from.clone(),
                        gates: m.gates.clone(),
                        run_on: m.run_on.as_deref().map(show),
                        timeout: format_duration(m.timeout),
                    },
                )
            })
            .collect(),
    });
    Project {
        name: spec.project.clone(),
        networks,
        services,
        volumes,
        x_berth,
    }
}

fn service(s: &ServiceSpec, dir: &str, masking: &Masking) -> Service {
    let show = |v: &str| literal(&(masking.redact)(v));
    let healthcheck = match &s.health {
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
    };
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
        logging: o.logging.as_ref().map(|l| crate::model::Logging {
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
        deploy: Deploy {
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
        },
        env_file: (!s.env_files.is_empty()).then(|| {
            s.env_files
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
        }),
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
        healthcheck,
        image: show(&s.image.to_string()),
        networks: if s.options.aliases.is_empty() {
            NetworksOut::List(s.networks.clone())
        } else {
            NetworksOut::Map(
                s.networks
                    .iter()
                    .map(|n| {
                        let aliases = s.options.aliases.get(n).cloned().unwrap_or_default();
                        (n.clone(), NetworkAttach { aliases })
                    })
                    .collect(),
            )
        },
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
        volumes: s
            .volumes
            .iter()
            .map(|m| {
                let (kind, source) = match &m.source {
                    MountSource::Volume(v) => ("volume", v.clone()),
                    MountSource::RepoFile(f) => ("bind", show(&relative(dir, &f.path))),
                    MountSource::RepoDir(d) => ("bind", show(&relative(dir, &d.path))),
                    MountSource::HostPath(p) => ("bind", show(&p.to_string_lossy())),
                    MountSource::HostData(rel) => ("bind", show(&format!("./{rel}"))),
                };
                Volume {
                    read_only: m.read_only.then_some(true),
                    source,
                    target: show(&m.target),
                    kind,
                }
            })
            .collect(),
        x_berth: ServiceBerth {
            canary: s.update.canary.as_deref().map(show),
            deadline: format_duration(s.update.deadline),
            max_hosts: s.update.max_hosts,
        },
    }
}

/// `text` as a compose value that interpolates to itself: `$` doubled.
pub fn literal(text: &str) -> String {
    text.replace('$', "$$")
}

/// The repository path `path` as written in a file of the directory `dir`:
/// `./files/app.conf`, `../shared/app.conf`.
pub fn relative(dir: &str, path: &str) -> String {
    let dir: Vec<&str> = dir.split('/').filter(|p| !p.is_empty()).collect();
    let target: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
    let common = dir.iter().zip(&target).take_while(|(a, b)| a == b).count();
    let ups = dir.len() - common;
    let rest = target[common..].join("/");
    if ups == 0 {
        format!("./{rest}")
    } else {
        format!("{}{rest}", "../".repeat(ups))
    }
}

/// A size in bytes in the largest unit that holds it exactly (`512m`, `1g`).
pub fn format_size(bytes: u64) -> String {
    for (unit, shift) in [("t", 40), ("g", 30), ("m", 20), ("k", 10)] {
        if bytes != 0 && bytes.is_multiple_of(1 << shift) {
            return format!("{}{unit}", bytes >> shift);
        }
    }
    bytes.to_string()
}
