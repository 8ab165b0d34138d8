//! [`Engine`] over bollard: the calls here, bollard's models converted to berth's
//! types in `convert` and nowhere else (a managed container whose labels cannot be read
//! is an error), endpoints and pinned-subnet networks in `network`.

mod convert;
mod network;
mod pull_progress;

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use async_trait::async_trait;
use bollard::errors::Error as BollardError;
use bollard::models::{HealthStatusEnum, VolumeCreateRequest};
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

pub(in crate::runtime) use convert::convert_summary;
pub use convert::replica_name;
use convert::{create_body, project_filter};

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

#[async_trait]
impl Engine for DockerEngine {
    async fn ping(&self) -> Result<(), RuntimeError> {
        self.docker.ping().await.map(|_| ()).map_err(err)
    }

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
        self.pull_watched(image, auth, &|_| {}).await
    }

    async fn pull_watched(
        &self,
        image: &str,
        auth: Option<RegistryAuth>,
        on: OnPull<'_>,
    ) -> Result<(), RuntimeError> {
        let mut layers = pull_progress::Layers::default();
        let opts = CreateImageOptionsBuilder::new().from_image(image).build();
        let creds = auth.map(|a| bollard::auth::DockerCredentials {
            username: Some(a.username).filter(|u| !u.is_empty()),
            password: Some(a.password).filter(|p| !p.is_empty()),
            identitytoken: a.identity_token,
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
                    let detail = info.progress_detail.unwrap_or_default();
                    if let (Some(id), Some(status)) = (info.id.as_deref(), info.status.as_deref()) {
                        if layers.take(id, status, detail.current, detail.total) {
                            on(layers.status());
                        }
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
        self.create_network_pinned(name, labels).await
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

    fn events(&self) -> futures_util::stream::BoxStream<'_, Result<(), RuntimeError>> {
        Box::pin(self.events_of_managed())
    }
}

#[cfg(test)]
mod tests;
