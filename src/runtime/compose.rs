//! What docker compose made on this host, found by its labels: the only view berth has
//! of objects it did not create, read for `berth adopt` and nothing else.

use std::collections::HashMap;

use bollard::query_parameters::{
    ListContainersOptionsBuilder, ListNetworksOptionsBuilder, ListVolumesOptionsBuilder,
};

use super::docker::err;
use super::{DockerEngine, RuntimeError};

/// The labels docker compose (v1 and v2) puts on what it creates.
pub mod labels {
    /// The compose project an object belongs to.
    pub const PROJECT: &str = "com.docker.compose.project";
    /// The service a container runs.
    pub const SERVICE: &str = "com.docker.compose.service";
    /// The short name of a volume in its compose file.
    pub const VOLUME: &str = "com.docker.compose.volume";
    /// The short name of a network in its compose file.
    pub const NETWORK: &str = "com.docker.compose.network";
    /// `True` on a container of `docker compose run`.
    pub const ONEOFF: &str = "com.docker.compose.oneoff";
}

/// A container of a compose project.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ComposeContainer {
    /// Docker's ID.
    pub id: String,
    /// Its name, e.g. `shop_api_1`.
    pub name: String,
    /// Its compose service.
    pub service: String,
    /// Running (or restarting, or paused) rather than stopped.
    pub running: bool,
    /// Made by `docker compose run`.
    pub oneoff: bool,
    /// The networks it is attached to, by Docker name.
    pub networks: Vec<String>,
    /// It publishes at least one port on the host.
    pub publishes: bool,
}

/// A volume or network of a compose project.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ComposeObject {
    /// Its Docker name, e.g. `shop_data`.
    pub name: String,
    /// Its short name in the compose file (`com.docker.compose.volume`/`.network`).
    pub short: String,
    /// It also carries berth's `berth.project` label (berth made it).
    pub berth: bool,
}

/// Everything of one compose project.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ComposeProject {
    /// Its containers, by name.
    pub containers: Vec<ComposeContainer>,
    /// Its named volumes, by name.
    pub volumes: Vec<ComposeObject>,
    /// Its networks, by name.
    pub networks: Vec<ComposeObject>,
}

fn filter(project: &str) -> HashMap<String, Vec<String>> {
    HashMap::from([(
        "label".to_string(),
        vec![format!("{}={project}", labels::PROJECT)],
    )])
}

fn object(name: String, labels: &HashMap<String, String>, key: &str) -> ComposeObject {
    ComposeObject {
        short: labels.get(key).cloned().unwrap_or_else(|| name.clone()),
        berth: labels.contains_key(super::labels::PROJECT),
        name,
    }
}

impl DockerEngine {
    /// The containers, volumes and networks labelled `com.docker.compose.project=NAME`.
    pub async fn compose_project(&self, project: &str) -> Result<ComposeProject, RuntimeError> {
        let docker = self.client();
        let opts = ListContainersOptionsBuilder::new()
            .all(true)
            .filters(&filter(project))
            .build();
        let mut containers: Vec<ComposeContainer> = docker
            .list_containers(Some(opts))
            .await
            .map_err(err)?
            .into_iter()
            .map(|c| {
                let l = c.labels.unwrap_or_default();
                let name = c
                    .names
                    .unwrap_or_default()
                    .first()
                    .map(|n| n.trim_start_matches('/').to_string())
                    .unwrap_or_default();
                let state = c.state.map(|s| s.to_string()).unwrap_or_default();
                let mut networks: Vec<String> = c
                    .network_settings
                    .and_then(|n| n.networks)
                    .map(|n| n.into_keys().collect())
                    .unwrap_or_default();
                networks.sort();
                ComposeContainer {
                    id: c.id.unwrap_or_default(),
                    service: l.get(labels::SERVICE).cloned().unwrap_or_default(),
                    running: matches!(state.as_str(), "running" | "restarting" | "paused"),
                    oneoff: l
                        .get(labels::ONEOFF)
                        .is_some_and(|v| v.eq_ignore_ascii_case("true")),
                    networks,
                    publishes: c
                        .ports
                        .unwrap_or_default()
                        .iter()
                        .any(|p| p.public_port.is_some()),
                    name,
                }
            })
            .collect();
        containers.sort_by(|a, b| a.name.cmp(&b.name));
        let opts = ListVolumesOptionsBuilder::new()
            .filters(&filter(project))
            .build();
        let mut volumes: Vec<ComposeObject> = docker
            .list_volumes(Some(opts))
            .await
            .map_err(err)?
            .volumes
            .unwrap_or_default()
            .into_iter()
            .map(|v| object(v.name, &v.labels, labels::VOLUME))
            .collect();
        volumes.sort_by(|a, b| a.name.cmp(&b.name));
        let opts = ListNetworksOptionsBuilder::new()
            .filters(&filter(project))
            .build();
        let mut networks: Vec<ComposeObject> = docker
            .list_networks(Some(opts))
            .await
            .map_err(err)?
            .into_iter()
            .map(|n| {
                object(
                    n.name.unwrap_or_default(),
                    &n.labels.unwrap_or_default(),
                    labels::NETWORK,
                )
            })
            .collect();
        networks.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(ComposeProject {
            containers,
            volumes,
            networks,
        })
    }
}
