//! [`Engine`] over bollard. bollard's models are converted to berth's types here and
//! nowhere else; a managed container whose labels cannot be read is an error.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use async_trait::async_trait;
use bollard::errors::Error as BollardError;
use bollard::models::{
    ContainerCreateBody, ContainerSummary, ContainerSummaryStateEnum, EndpointIpamConfig,
    EndpointSettings, HealthConfig as DockerHealth, HealthStatusEnum, HostConfig,
    HostConfigLogConfig, Ipam, NetworkCreateRequest, NetworkDisconnectRequest, NetworkingConfig,
    PortBinding, ResourcesUlimits, RestartPolicy, RestartPolicyNameEnum, VolumeCreateRequest,
};
use bollard::query_parameters::{
    CreateContainerOptionsBuilder, CreateImageOptionsBuilder, KillContainerOptionsBuilder,
    ListContainersOptionsBuilder, ListNetworksOptionsBuilder, ListVolumesOptionsBuilder,
    LogsOptionsBuilder, RemoveContainerOptionsBuilder, RenameContainerOptionsBuilder,
    StopContainerOptionsBuilder,
};
use bollard::Docker;
use futures_util::StreamExt;

use super::labels;
use super::*;

/// The Docker engine, reached through `DOCKER_HOST` or the local socket, with the API
/// version negotiated down to what the engine speaks (20.10 speaks 1.41).
#[derive(Clone)]
pub struct DockerEngine {
    docker: Docker,
    /// IPAM hands out the lowest free address of a network, so a disconnect and connect
    /// that nothing else of ours interleaves with gets its address back. Endpoint
    /// changes hold this exclusively; a container start, which takes addresses too,
    /// holds it shared, so starts still run side by side.
    endpoints: std::sync::Arc<tokio::sync::RwLock<()>>,
}

impl DockerEngine {
    /// Connects and negotiates the API version.
    pub async fn connect() -> Result<Self, RuntimeError> {
        let docker = Docker::connect_with_defaults().map_err(|e| {
            RuntimeError::Docker(format!(
                "cannot reach the Docker engine: {e}; is dockerd running and DOCKER_HOST right?"
            ))
        })?;
        let docker = docker.negotiate_version().await.map_err(|e| {
            RuntimeError::Docker(format!(
                "cannot reach the Docker engine: {e}; is dockerd running and DOCKER_HOST right?"
            ))
        })?;
        Ok(Self {
            docker,
            endpoints: Default::default(),
        })
    }

    /// The underlying client, for what only the demo needs (image import).
    pub fn client(&self) -> &Docker {
        &self.docker
    }

    /// A stream that yields once for every die, destroy or health change of a
    /// berth-managed container.
    pub fn events_of_managed(
        &self,
    ) -> impl futures_util::Stream<Item = Result<(), RuntimeError>> + '_ {
        let filters = HashMap::from([
            ("type".to_string(), vec!["container".to_string()]),
            ("label".to_string(), vec![labels::PROJECT.to_string()]),
            (
                "event".to_string(),
                vec![
                    "die".to_string(),
                    "destroy".to_string(),
                    "health_status".to_string(),
                ],
            ),
        ]);
        let opts = bollard::query_parameters::EventsOptionsBuilder::new()
            .filters(&filters)
            .build();
        self.docker
            .events(Some(opts))
            .map(|e| e.map(|_| ()).map_err(err))
    }
}

pub(super) fn err(e: BollardError) -> RuntimeError {
    match e {
        BollardError::DockerResponseServerError {
            status_code: 404,
            message,
        } => RuntimeError::NotFound(message),
        BollardError::DockerResponseServerError {
            status_code: 409,
            message,
        } => RuntimeError::Conflict(message),
        BollardError::DockerResponseServerError { message, .. } => RuntimeError::Docker(message),
        other => RuntimeError::Docker(other.to_string()),
    }
}

fn project_filter(project: &str) -> HashMap<String, Vec<String>> {
    HashMap::from([(
        "label".to_string(),
        vec![format!("{}={project}", labels::PROJECT)],
    )])
}

/// Reads the health out of a list entry's status text ("Up 3 seconds (healthy)"): API
/// 1.41 has no health field in the list answer, and one list call must be enough.
fn health_from_status(status: &str) -> HealthState {
    if status.contains("(healthy)") {
        HealthState::Healthy
    } else if status.contains("(unhealthy)") {
        HealthState::Unhealthy
    } else if status.contains("(health: starting)") {
        HealthState::Starting
    } else {
        HealthState::None
    }
}

/// "Exited (137) 3 seconds ago" → 137.
fn exit_code_from_status(status: &str) -> Option<i64> {
    let rest = status.strip_prefix("Exited (")?;
    rest.split(')').next()?.parse().ok()
}

/// Converts one list entry; fails on missing or malformed berth labels.
pub(crate) fn convert_summary(c: ContainerSummary) -> Result<ObservedContainer, RuntimeError> {
    let id = c.id.unwrap_or_default();
    let fail = |reason: String| RuntimeError::Conversion {
        id: id.clone(),
        reason,
    };
    let labels = c.labels.unwrap_or_default();
    let get = |k: &str| labels.get(k).cloned();
    let migration_role = match get(labels::ROLE).as_deref() {
        Some("replica") | None => false,
        Some("migration") => true,
        Some(other) => return Err(fail(format!("unknown {} `{other}`", labels::ROLE))),
    };
    let project = get(labels::PROJECT).unwrap_or_default();
    let service =
        get(labels::SERVICE).ok_or_else(|| fail(format!("no {} label", labels::SERVICE)))?;
    let slot = match (migration_role, get(labels::SLOT)) {
        (true, _) => 0,
        (false, Some(s)) => s
            .parse()
            .map_err(|_| fail(format!("{} `{s}` is not a number", labels::SLOT)))?,
        (false, None) => return Err(fail(format!("no {} label", labels::SLOT))),
    };
    let spec_hash = get(labels::SPEC).ok_or_else(|| fail(format!("no {} label", labels::SPEC)))?;
    let name = c
        .names
        .and_then(|n| n.into_iter().next())
        .map(|n| n.trim_start_matches('/').to_string())
        .ok_or_else(|| fail("no name".into()))?;
    // Labels cannot change after creation, so whether a container serves its slot or
    // stands beside it (a replacement, or the previous replica kept for rollback) is
    // told by its name, which berth renames as a rollout proceeds.
    let role = if migration_role {
        Role::Migration
    } else if name == replica_name(&project, &service, slot) {
        Role::Replica
    } else {
        Role::Candidate
    };
    let status = c.status.unwrap_or_default();
    let state = match c.state {
        Some(ContainerSummaryStateEnum::CREATED) => RunState::Created,
        Some(ContainerSummaryStateEnum::RUNNING) => RunState::Running,
        Some(ContainerSummaryStateEnum::PAUSED) => RunState::Paused,
        Some(ContainerSummaryStateEnum::RESTARTING) => RunState::Restarting,
        Some(ContainerSummaryStateEnum::EXITED) => RunState::Exited(exit_code_from_status(&status)),
        Some(ContainerSummaryStateEnum::REMOVING) => RunState::Removing,
        Some(ContainerSummaryStateEnum::DEAD) => RunState::Dead,
        other => return Err(fail(format!("unknown state {other:?}"))),
    };
    Ok(ObservedContainer {
        id: id.clone(),
        name,
        service,
        slot,
        role,
        spec_hash,
        parts: get(labels::PARTS),
        commit: get(labels::COMMIT),
        image: get(labels::IMAGE).or(c.image).unwrap_or_default(),
        migration: get(labels::MIGRATION),
        state,
        health: health_from_status(&status),
        created: c.created.unwrap_or_default(),
    })
}

/// The steady-state name of a replica: `<project>-<service>-<slot>`.
pub fn replica_name(project: &str, service: &str, slot: u32) -> String {
    format!("{project}-{service}-{slot}")
}

fn nanos(d: Duration) -> i64 {
    d.as_nanos().min(i64::MAX as u128) as i64
}

/// Builds the engine's create body from berth's container spec.
pub(crate) fn create_body(spec: &ContainerSpec) -> ContainerCreateBody {
    let mut port_bindings: HashMap<String, Option<Vec<PortBinding>>> = HashMap::new();
    let mut exposed: Vec<String> = spec.expose.iter().map(|p| format!("{p}/tcp")).collect();
    for p in &spec.ports {
        let key = format!("{}/{}", p.container_port, p.protocol);
        if !exposed.contains(&key) {
            exposed.push(key.clone());
        }
        port_bindings
            .entry(key)
            .or_insert_with(|| Some(Vec::new()))
            .get_or_insert_with(Vec::new)
            .push(PortBinding {
                host_ip: p.host_ip.clone(),
                host_port: Some(p.host_port.to_string()),
            });
    }
    let binds: Vec<String> = spec
        .mounts
        .iter()
        .map(|m| {
            format!(
                "{}:{}:{}",
                m.source,
                m.target,
                if m.read_only { "ro" } else { "rw" }
            )
        })
        .collect();
    // The first network is joined at create time; the engine of API 1.41 takes one
    // endpoint here, the others are connected before start.
    let networking_config = spec
        .networks
        .first()
        .map(|(net, aliases)| NetworkingConfig {
            endpoints_config: Some(HashMap::from([(
                net.clone(),
                EndpointSettings {
                    aliases: Some(aliases.clone()),
                    ..Default::default()
                },
            )])),
        });
    let healthcheck = spec.health.as_ref().map(|h| DockerHealth {
        test: Some(h.test.clone()),
        interval: Some(nanos(h.interval)),
        timeout: Some(nanos(h.timeout)),
        retries: Some(h.retries as i64),
        start_period: Some(nanos(h.start_period)),
        start_interval: None,
    });
    let (log_driver, log_options) = match &spec.log {
        Some((driver, options)) => (driver.clone(), options.clone().into_iter().collect()),
        None => (
            "json-file".to_string(),
            HashMap::from([
                ("max-size".into(), "10m".into()),
                ("max-file".into(), "3".into()),
            ]),
        ),
    };
    let tmpfs: HashMap<String, String> = spec.tmpfs.iter().cloned().collect();
    let ulimits: Vec<ResourcesUlimits> = spec
        .ulimits
        .iter()
        .map(|(name, soft, hard)| ResourcesUlimits {
            name: Some(name.clone()),
            soft: Some(*soft),
            hard: Some(*hard),
        })
        .collect();
    // `[""]` is how the engine is told to clear the image's entrypoint.
    let entrypoint = spec.entrypoint.as_ref().map(|e| {
        if e.is_empty() {
            vec![String::new()]
        } else {
            e.clone()
        }
    });
    let some_vec = |v: &Vec<String>| (!v.is_empty()).then(|| v.clone());
    ContainerCreateBody {
        image: Some(spec.image.clone()),
        cmd: spec.command.clone(),
        entrypoint,
        user: spec.user.clone(),
        working_dir: spec.working_dir.clone(),
        hostname: spec.hostname.clone(),
        stop_signal: spec.stop_signal.clone(),
        tty: spec.tty.then_some(true),
        open_stdin: spec.stdin_open.then_some(true),
        env: Some(spec.env.clone()),
        labels: Some(spec.labels.clone().into_iter().collect()),
        exposed_ports: (!exposed.is_empty()).then_some(exposed),
        healthcheck,
        stop_timeout: Some(spec.stop_grace.as_secs() as i64),
        host_config: Some(HostConfig {
            memory: spec.memory.map(|m| m as i64),
            nano_cpus: spec.cpus.map(|c| (c * 1e9) as i64),
            binds: (!binds.is_empty()).then_some(binds),
            port_bindings: (!port_bindings.is_empty()).then_some(port_bindings),
            restart_policy: Some(RestartPolicy {
                name: Some(if spec.restart {
                    RestartPolicyNameEnum::UNLESS_STOPPED
                } else {
                    RestartPolicyNameEnum::NO
                }),
                maximum_retry_count: None,
            }),
            log_config: Some(HostConfigLogConfig {
                typ: Some(log_driver),
                config: (!log_options.is_empty()).then_some(log_options),
            }),
            network_mode: spec.networks.first().map(|(n, _)| n.clone()),
            init: Some(spec.init),
            readonly_rootfs: spec.read_only.then_some(true),
            tmpfs: (!tmpfs.is_empty()).then_some(tmpfs),
            extra_hosts: some_vec(&spec.extra_hosts),
            dns: some_vec(&spec.dns),
            ulimits: (!ulimits.is_empty()).then_some(ulimits),
            shm_size: spec.shm_size.map(|n| n as i64),
            pids_limit: spec.pids_limit,
            cap_drop: some_vec(&spec.cap_drop),
            security_opt: some_vec(&spec.security_opt),
            memory_reservation: spec.memory_reservation.map(|n| n as i64),
            ..Default::default()
        }),
        networking_config,
        ..Default::default()
    }
}

impl DockerEngine {
    async fn disconnect_now(&self, network: &str, id: &str) -> Result<(), RuntimeError> {
        let req = NetworkDisconnectRequest {
            container: id.to_string(),
            force: Some(true),
        };
        self.docker
            .disconnect_network(network, req)
            .await
            .map_err(err)
    }

    async fn connect_now(
        &self,
        network: &str,
        id: &str,
        aliases: Vec<String>,
    ) -> Result<(), RuntimeError> {
        self.connect_with(network, id, aliases, None).await
    }

    async fn connect_with(
        &self,
        network: &str,
        id: &str,
        aliases: Vec<String>,
        address: Option<String>,
    ) -> Result<(), RuntimeError> {
        let req = bollard::models::NetworkConnectRequest {
            container: id.to_string(),
            endpoint_config: Some(EndpointSettings {
                aliases: Some(aliases),
                ipam_config: address.map(|a| EndpointIpamConfig {
                    ipv4_address: Some(a),
                    ..Default::default()
                }),
                ..Default::default()
            }),
        };
        self.docker.connect_network(network, req).await.map_err(err)
    }

    /// The container's IPv4 address on `network`, `None` while it is not running.
    async fn address(&self, id: &str, network: &str) -> Result<Option<String>, RuntimeError> {
        let c = self.docker.inspect_container(id, None).await.map_err(err)?;
        Ok(c.network_settings
            .and_then(|n| n.networks)
            .and_then(|mut n| n.remove(network))
            .and_then(|e| e.ip_address)
            .filter(|a| !a.is_empty()))
    }
}

#[async_trait]
impl Engine for DockerEngine {
    async fn list_project(&self, project: &str) -> Result<Vec<ObservedContainer>, RuntimeError> {
        let opts = ListContainersOptionsBuilder::new()
            .all(true)
            .filters(&project_filter(project))
            .build();
        let list = self.docker.list_containers(Some(opts)).await.map_err(err)?;
        list.into_iter().map(convert_summary).collect()
    }

    async fn list_managed(&self) -> Result<Vec<(String, ObservedContainer)>, RuntimeError> {
        let filters = HashMap::from([("label".to_string(), vec![labels::PROJECT.to_string()])]);
        let opts = ListContainersOptionsBuilder::new()
            .all(true)
            .filters(&filters)
            .build();
        let list = self.docker.list_containers(Some(opts)).await.map_err(err)?;
        list.into_iter()
            .map(|c| {
                let project = c
                    .labels
                    .as_ref()
                    .and_then(|l| l.get(labels::PROJECT).cloned())
                    .unwrap_or_default();
                convert_summary(c).map(|o| (project, o))
            })
            .collect()
    }

    async fn inspect(&self, id: &str) -> Result<ContainerDetails, RuntimeError> {
        let c = self.docker.inspect_container(id, None).await.map_err(err)?;
        let state = c.state.unwrap_or_default();
        let run = if state.running == Some(true) {
            if state.restarting == Some(true) {
                RunState::Restarting
            } else if state.paused == Some(true) {
                RunState::Paused
            } else {
                RunState::Running
            }
        } else if state.dead == Some(true) {
            RunState::Dead
        } else if state
            .started_at
            .as_deref()
            .is_none_or(|s| s.starts_with("0001-"))
        {
            RunState::Created
        } else {
            RunState::Exited(state.exit_code)
        };
        let health = match state.health.as_ref().and_then(|h| h.status) {
            Some(HealthStatusEnum::HEALTHY) => HealthState::Healthy,
            Some(HealthStatusEnum::UNHEALTHY) => HealthState::Unhealthy,
            Some(HealthStatusEnum::STARTING) => HealthState::Starting,
            _ => HealthState::None,
        };
        let health_log = state
            .health
            .as_ref()
            .and_then(|h| h.log.as_ref())
            .and_then(|l| l.last())
            .and_then(|r| r.output.clone())
            .map(|s| s.trim().to_string());
        let has_healthcheck = c
            .config
            .as_ref()
            .and_then(|cfg| cfg.healthcheck.as_ref())
            .and_then(|h| h.test.as_ref())
            .is_some_and(|t| !t.is_empty() && t[0] != "NONE");
        let networks = c
            .network_settings
            .and_then(|n| n.networks)
            .map(|n| {
                n.into_iter()
                    .map(|(network, e)| Endpoint {
                        network,
                        aliases: e.aliases.unwrap_or_default(),
                        address: e.ip_address.filter(|a| !a.is_empty()),
                    })
                    .collect()
            })
            .unwrap_or_default();
        let restart_count = c.restart_count.unwrap_or_default();
        Ok(ContainerDetails {
            restart_count,
            last_exit_code: state.exit_code.filter(|_| {
                restart_count > 0 || matches!(run, RunState::Exited(_) | RunState::Restarting)
            }),
            state: run,
            health,
            health_log,
            has_healthcheck,
            started_at: state.started_at,
            finished_at: state.finished_at.filter(|f| !f.starts_with("0001-")),
            networks,
        })
    }

    async fn has_image(&self, image: &str) -> Result<bool, RuntimeError> {
        match self.docker.inspect_image(image).await {
            Ok(_) => Ok(true),
            Err(e) => match err(e) {
                RuntimeError::NotFound(_) => Ok(false),
                other => Err(other),
            },
        }
    }

    async fn pull(&self, image: &str, auth: Option<RegistryAuth>) -> Result<(), RuntimeError> {
        let opts = CreateImageOptionsBuilder::new().from_image(image).build();
        let creds = auth.map(|a| bollard::auth::DockerCredentials {
            username: Some(a.username),
            password: Some(a.password),
            serveraddress: Some(a.server),
            ..Default::default()
        });
        let mut stream = self.docker.create_image(Some(opts), None, creds);
        while let Some(item) = stream.next().await {
            match item {
                Ok(info) => {
                    if let Some(e) = info.error_detail.and_then(|d| d.message) {
                        return Err(RuntimeError::Pull {
                            image: image.into(),
                            message: e,
                        });
                    }
                }
                Err(e) => {
                    let message = match e {
                        BollardError::DockerResponseServerError { message, .. } => message,
                        BollardError::DockerStreamError { error } => error,
                        other => other.to_string(),
                    };
                    return Err(RuntimeError::Pull {
                        image: image.into(),
                        message,
                    });
                }
            }
        }
        Ok(())
    }

    async fn image_digest(&self, image: &str) -> Result<String, RuntimeError> {
        let i = self.docker.inspect_image(image).await.map_err(err)?;
        let repository = crate::model::ImageRef::parse(image)
            .map(|r| r.repository)
            .unwrap_or_default();
        let from_repo = i
            .repo_digests
            .unwrap_or_default()
            .into_iter()
            .find_map(|d| {
                let (repo, digest) = d.split_once('@')?;
                (repo == repository).then(|| digest.to_string())
            });
        from_repo
            .or(i.id)
            .ok_or_else(|| RuntimeError::Docker(format!("image {image} has no ID")))
    }

    async fn create(&self, spec: &ContainerSpec) -> Result<String, RuntimeError> {
        let opts = CreateContainerOptionsBuilder::new()
            .name(&spec.name)
            .build();
        let created = self
            .docker
            .create_container(Some(opts), create_body(spec))
            .await
            .map_err(err)?;
        for (net, aliases) in spec.networks.iter().skip(1) {
            if let Err(e) = self.connect(net, &created.id, aliases.clone()).await {
                let _ = self.remove(&created.id).await;
                return Err(e);
            }
        }
        Ok(created.id)
    }

    async fn start(&self, id: &str) -> Result<(), RuntimeError> {
        let _turn = self.endpoints.read().await;
        self.docker.start_container(id, None).await.map_err(err)
    }

    async fn stop(&self, id: &str, grace: Duration) -> Result<(), RuntimeError> {
        let opts = StopContainerOptionsBuilder::new()
            .t(grace.as_secs().min(i32::MAX as u64) as i32)
            .build();
        match self.docker.stop_container(id, Some(opts)).await {
            Ok(()) => Ok(()),
            // 304: already stopped.
            Err(BollardError::DockerResponseServerError {
                status_code: 304, ..
            }) => Ok(()),
            Err(e) => Err(err(e)),
        }
    }

    async fn kill(&self, id: &str) -> Result<(), RuntimeError> {
        let opts = KillContainerOptionsBuilder::new().signal("SIGKILL").build();
        match self.docker.kill_container(id, Some(opts)).await {
            Ok(()) => Ok(()),
            Err(BollardError::DockerResponseServerError {
                status_code: 409, ..
            }) => Ok(()),
            Err(e) => Err(err(e)),
        }
    }

    async fn remove(&self, id: &str) -> Result<(), RuntimeError> {
        let opts = RemoveContainerOptionsBuilder::new().force(true).build();
        match self
            .docker
            .remove_container(id, Some(opts))
            .await
            .map_err(err)
        {
            Ok(()) => Ok(()),
            Err(RuntimeError::NotFound(_)) => Ok(()),
            Err(e) => Err(e),
        }
    }

    async fn rename(&self, id: &str, name: &str) -> Result<(), RuntimeError> {
        let opts = RenameContainerOptionsBuilder::new().name(name).build();
        self.docker.rename_container(id, opts).await.map_err(err)
    }

    async fn disconnect(&self, network: &str, id: &str) -> Result<(), RuntimeError> {
        let _turn = self.endpoints.write().await;
        self.disconnect_now(network, id).await
    }

    async fn connect(
        &self,
        network: &str,
        id: &str,
        aliases: Vec<String>,
    ) -> Result<(), RuntimeError> {
        let _turn = self.endpoints.write().await;
        self.connect_now(network, id, aliases).await
    }

    async fn reconnect(
        &self,
        network: &str,
        id: &str,
        aliases: Vec<String>,
    ) -> Result<Option<String>, RuntimeError> {
        let _turn = self.endpoints.write().await;
        let before = self.address(id, network).await?;
        self.disconnect_now(network, id).await?;
        // The address asked for again: Docker grants it on a network with a subnet of
        // its own (berth creates its networks so) and refuses it elsewhere, where the
        // lowest free address, most often the same, is what comes back.
        let kept = match &before {
            Some(address) => self
                .connect_with(network, id, aliases.clone(), Some(address.clone()))
                .await
                .inspect_err(|e| tracing::debug!(network, error = %e, "address not kept"))
                .is_ok(),
            None => false,
        };
        if !kept {
            self.connect_now(network, id, aliases).await?;
        }
        self.address(id, network).await
    }

    async fn network_exists(&self, name: &str) -> Result<bool, RuntimeError> {
        match self.docker.inspect_network(name, None).await.map_err(err) {
            Ok(_) => Ok(true),
            Err(RuntimeError::NotFound(_)) => Ok(false),
            Err(e) => Err(e),
        }
    }

    async fn volume_exists(&self, name: &str) -> Result<bool, RuntimeError> {
        match self.docker.inspect_volume(name).await.map_err(err) {
            Ok(_) => Ok(true),
            Err(RuntimeError::NotFound(_)) => Ok(false),
            Err(e) => Err(e),
        }
    }

    async fn list_networks(&self, project: &str) -> Result<Vec<ObservedObject>, RuntimeError> {
        let opts = ListNetworksOptionsBuilder::new()
            .filters(&project_filter(project))
            .build();
        let nets = self.docker.list_networks(Some(opts)).await.map_err(err)?;
        Ok(nets
            .into_iter()
            .map(|n| ObservedObject {
                id: n.id.unwrap_or_default(),
                name: n.name.unwrap_or_default(),
                project: project.to_string(),
            })
            .collect())
    }

    async fn create_network(
        &self,
        name: &str,
        labels: BTreeMap<String, String>,
    ) -> Result<(), RuntimeError> {
        let req = NetworkCreateRequest {
            name: name.to_string(),
            driver: Some("bridge".into()),
            labels: Some(labels.into_iter().collect()),
            ..Default::default()
        };
        // Docker keeps an address across a reconnect only on a network whose subnet was
        // given at its creation. A probe network (labelled like the real one, so a
        // leftover is pruned as unwanted) learns which subnet Docker would choose; the
        // network is then made once, with that subnet. Should that fail (another
        // network took the subnet meanwhile), it is made as before, and reconnects
        // keep addresses only mostly.
        let probe = format!("{name}-subnet-{}-{}", std::process::id(), fastrand::u32(..));
        let chosen = match self
            .docker
            .create_network(NetworkCreateRequest {
                name: probe.clone(),
                ..req.clone()
            })
            .await
        {
            Ok(_) => {
                let config = self
                    .docker
                    .inspect_network(&probe, None)
                    .await
                    .ok()
                    .and_then(|n| n.ipam)
                    .and_then(|i| i.config)
                    .filter(|c| !c.is_empty() && c.iter().all(|c| c.subnet.is_some()));
                if let Err(e) = self.docker.remove_network(&probe).await {
                    tracing::debug!(network = %probe, error = %e, "probe network not removed; pruned later");
                }
                config
            }
            Err(e) => {
                tracing::debug!(network = %probe, error = %e, "no probe network");
                None
            }
        };
        if let Some(config) = chosen {
            let pinned = NetworkCreateRequest {
                ipam: Some(Ipam {
                    config: Some(config),
                    ..Default::default()
                }),
                ..req.clone()
            };
            match self.docker.create_network(pinned).await {
                Ok(_) => return Ok(()),
                Err(e) => {
                    tracing::warn!(network = %name, error = %e, "network created without a fixed subnet; a replica's address may change when it joins or leaves its alias")
                }
            }
        }
        self.docker.create_network(req).await.map_err(err)?;
        Ok(())
    }

    async fn remove_network(&self, name: &str) -> Result<(), RuntimeError> {
        self.docker.remove_network(name).await.map_err(err)
    }

    async fn list_volumes(&self, project: &str) -> Result<Vec<ObservedObject>, RuntimeError> {
        let opts = ListVolumesOptionsBuilder::new()
            .filters(&project_filter(project))
            .build();
        let vols = self.docker.list_volumes(Some(opts)).await.map_err(err)?;
        Ok(vols
            .volumes
            .unwrap_or_default()
            .into_iter()
            .map(|v| ObservedObject {
                id: v.name.clone(),
                name: v.name,
                project: project.to_string(),
            })
            .collect())
    }

    async fn create_volume(
        &self,
        name: &str,
        labels: BTreeMap<String, String>,
    ) -> Result<(), RuntimeError> {
        let req = VolumeCreateRequest {
            name: Some(name.to_string()),
            labels: Some(labels.into_iter().collect()),
            ..Default::default()
        };
        self.docker
            .create_volume(req)
            .await
            .map_err(err)
            .map(|_| ())
    }

    async fn logs_tail(&self, id: &str, lines: usize) -> Result<String, RuntimeError> {
        let tail = lines.to_string();
        let opts = LogsOptionsBuilder::new()
            .stdout(true)
            .stderr(true)
            .tail(&tail)
            .build();
        let mut stream = self.docker.logs(id, Some(opts));
        let mut out = String::new();
        while let Some(item) = stream.next().await {
            let chunk = item.map_err(err)?;
            out.push_str(&String::from_utf8_lossy(&chunk.into_bytes()));
        }
        Ok(out)
    }

    async fn wait(&self, id: &str) -> Result<i64, RuntimeError> {
        let mut stream = self.docker.wait_container(id, None);
        match stream.next().await {
            Some(Ok(r)) => Ok(r.status_code),
            Some(Err(BollardError::DockerContainerWaitError { code, .. })) => Ok(code),
            Some(Err(e)) => Err(err(e)),
            None => Err(RuntimeError::Docker(format!(
                "wait for {id} ended without a status"
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_text_gives_health_and_exit_code() {
        assert_eq!(
            health_from_status("Up 3 seconds (healthy)"),
            HealthState::Healthy
        );
        assert_eq!(
            health_from_status("Up 1 second (health: starting)"),
            HealthState::Starting
        );
        assert_eq!(
            health_from_status("Up 9 seconds (unhealthy)"),
            HealthState::Unhealthy
        );
        assert_eq!(health_from_status("Up 2 hours"), HealthState::None);
        assert_eq!(
            exit_code_from_status("Exited (137) 3 seconds ago"),
            Some(137)
        );
        assert_eq!(exit_code_from_status("Up 2 hours"), None);
    }

    #[test]
    fn a_managed_container_without_labels_is_an_error() {
        let c = ContainerSummary {
            id: Some("abc".into()),
            names: Some(vec!["/shop-api-1".into()]),
            labels: Some(HashMap::from([(labels::PROJECT.into(), "shop".into())])),
            state: Some(ContainerSummaryStateEnum::RUNNING),
            ..Default::default()
        };
        let e = convert_summary(c).unwrap_err();
        assert_eq!(
            e.to_string(),
            "container abc has unreadable berth labels: no berth.service label"
        );
    }

    #[test]
    fn summaries_convert() {
        let c = ContainerSummary {
            id: Some("abc".into()),
            names: Some(vec!["/shop-api-2".into()]),
            labels: Some(HashMap::from([
                (labels::PROJECT.into(), "shop".into()),
                (labels::SERVICE.into(), "api".into()),
                (labels::SLOT.into(), "2".into()),
                (labels::SPEC.into(), "0123".into()),
                (labels::IMAGE.into(), "app:v1".into()),
            ])),
            state: Some(ContainerSummaryStateEnum::EXITED),
            status: Some("Exited (1) 2 seconds ago".into()),
            ..Default::default()
        };
        let o = convert_summary(c).unwrap();
        assert_eq!(
            (o.name.as_str(), o.slot, o.role),
            ("shop-api-2", 2, Role::Replica)
        );
        assert_eq!(o.state, RunState::Exited(Some(1)));
    }
}
