//! From a desired service to the container spec of one of its replicas.

use std::collections::BTreeMap;
use std::path::Path;

use crate::model::{Health, MountSource};
use crate::plan::{DesiredService, EnvFile};
use crate::runtime::{labels, BindMount, ContainerSpec, HealthConfig, PublishedPort};

/// The full name of a project network or volume: `<project>_<name>`.
pub fn object_name(project: &str, name: &str) -> String {
    format!("{project}_{name}")
}

/// The labels every object of a project carries.
pub fn project_labels(project: &str) -> BTreeMap<String, String> {
    BTreeMap::from([(labels::PROJECT.to_string(), project.to_string())])
}

/// Where a repository file's content is written on the host: by content hash, so a
/// changed file is a new path and a new spec.
pub fn repo_file_path(state_dir: &Path, content: &[u8]) -> std::path::PathBuf {
    use sha2::{Digest, Sha256};
    state_dir
        .join("files")
        .join(hex::encode(Sha256::digest(content)))
}

/// Builds a replica's container spec; fails (with a message naming no value) when the
/// env file could not be read.
pub fn replica_spec(
    project: &str,
    d: &DesiredService,
    slot: u32,
    name: &str,
    opts: &super::ApplyOptions,
) -> Result<ContainerSpec, String> {
    let (commit, state_dir) = (opts.commit.as_deref(), opts.state_dir.as_path());
    let s = &d.spec;
    let mut env: Vec<String> = match &d.env_file {
        EnvFile::None => Vec::new(),
        EnvFile::Loaded(kvs) => kvs.iter().map(|(k, v)| format!("{k}={v}")).collect(),
        EnvFile::Unreadable(why) => return Err(why.clone()),
    };
    // Committed env wins over the env file, as in compose.
    env.extend(s.env.iter().map(|(k, v)| format!("{k}={v}")));
    let mut lbls = project_labels(project);
    lbls.insert(labels::SERVICE.into(), s.name.clone());
    lbls.insert(labels::SLOT.into(), slot.to_string());
    lbls.insert(labels::SPEC.into(), d.hash.clone());
    lbls.insert(labels::PARTS.into(), d.parts_label());
    lbls.insert(labels::IMAGE.into(), s.image.full.clone());
    lbls.insert(labels::ROLE.into(), "replica".into());
    if let Some(c) = commit {
        lbls.insert(labels::COMMIT.into(), c.to_string());
    }
    if let Some(h) = &opts.host {
        lbls.insert(labels::HOST.into(), h.clone());
    }
    let mounts = s
        .volumes
        .iter()
        .map(|m| match &m.source {
            MountSource::Volume(v) => BindMount {
                source: d
                    .volumes
                    .get(v)
                    .cloned()
                    .unwrap_or_else(|| object_name(project, v)),
                target: m.target.clone(),
                read_only: m.read_only,
                volume: true,
            },
            MountSource::RepoFile(f) => BindMount {
                source: repo_file_path(state_dir, &f.content).display().to_string(),
                target: m.target.clone(),
                read_only: true,
                volume: false,
            },
            MountSource::HostPath(p) => BindMount {
                source: p.display().to_string(),
                target: m.target.clone(),
                read_only: m.read_only,
                volume: false,
            },
        })
        .collect();
    let health = match &s.health {
        Health::Image => None,
        Health::Disabled => Some(HealthConfig {
            test: vec!["NONE".into()],
            interval: Default::default(),
            timeout: Default::default(),
            retries: 0,
            start_period: Default::default(),
        }),
        Health::Check(c) => Some(HealthConfig {
            test: c.test.clone(),
            interval: c.interval,
            timeout: c.timeout,
            retries: c.retries,
            start_period: c.start_period,
        }),
    };
    Ok(ContainerSpec {
        name: name.to_string(),
        image: s.image.full.clone(),
        command: s.command.clone(),
        env,
        labels: lbls,
        // No alias yet: a replica joins its service's alias only once it has passed
        // its gate (see `rollout`).
        networks: d.networks.iter().map(|n| (n.clone(), Vec::new())).collect(),
        expose: s.expose.clone(),
        ports: s
            .ports
            .iter()
            .map(|p| PublishedPort {
                host_ip: p.host_ip.clone(),
                host_port: p.host_port,
                container_port: p.container_port,
                protocol: p.protocol.as_str(),
            })
            .collect(),
        mounts,
        health,
        memory: s.resources.memory,
        cpus: s.resources.cpus,
        stop_grace: s.stop_grace,
        restart: true,
    })
}
