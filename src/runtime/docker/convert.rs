//! bollard's models to berth's types and back, here and nowhere else: a list entry to
//! an observed container (an error when its labels cannot be read), a container spec
//! to a create body.

use std::collections::HashMap;
use std::time::Duration;

use bollard::models::{
    ContainerCreateBody, ContainerSummary, ContainerSummaryStateEnum, EndpointSettings,
    HealthConfig as DockerHealth, HostConfig, HostConfigLogConfig, NetworkingConfig, PortBinding,
    ResourcesUlimits, RestartPolicy, RestartPolicyNameEnum,
};

use crate::runtime::labels;
use crate::runtime::*;

pub(super) fn project_filter(project: &str) -> HashMap<String, Vec<String>> {
    HashMap::from([(
        "label".to_string(),
        vec![format!("{}={project}", labels::PROJECT)],
    )])
}

/// Reads the health out of a list entry's status text ("Up 3 seconds (healthy)"): API
/// 1.41 has no health field in the list answer, and one list call must be enough.
pub(super) fn health_from_status(status: &str) -> HealthState {
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
pub(super) fn exit_code_from_status(status: &str) -> Option<i64> {
    let rest = status.strip_prefix("Exited (")?;
    rest.split(')').next()?.parse().ok()
}

/// Converts one list entry; fails on missing or malformed berth labels.
pub(in crate::runtime) fn convert_summary(
    c: ContainerSummary,
) -> Result<ObservedContainer, RuntimeError> {
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

pub(super) fn nanos(d: Duration) -> i64 {
    d.as_nanos().min(i64::MAX as u128) as i64
}

/// Builds the engine's create body from berth's container spec.
pub(super) fn create_body(spec: &ContainerSpec) -> ContainerCreateBody {
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
