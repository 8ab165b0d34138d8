//! [`Engine`] over the memory engine's host: each call is recorded, may be failed by
//! the test, and changes the host as dockerd would.

use std::collections::BTreeMap;
use std::time::Duration;

use async_trait::async_trait;
use futures_util::stream::BoxStream;
use tokio::sync::broadcast;
use tokio::time::Instant;

use super::script::Op;
use super::world::{digest_of, now_text, Container};
use super::MemoryEngine;
use crate::runtime::{
    labels, ContainerDetails, ContainerSpec, Endpoint, Engine, HealthState, ObservedContainer,
    ObservedObject, RegistryAuth, RunState, RuntimeError,
};

#[async_trait]
impl Engine for MemoryEngine {
    async fn list_managed(&self) -> Result<Vec<(String, ObservedContainer)>, RuntimeError> {
        self.call(Op::ListManaged, "*", None)?;
        let all = self.list(None)?;
        let w = self.world();
        Ok(all
            .into_iter()
            .map(|o| {
                let project = w
                    .containers
                    .get(&o.id)
                    .and_then(|c| c.spec.labels.get(labels::PROJECT).cloned())
                    .unwrap_or_default();
                (project, o)
            })
            .collect())
    }

    async fn list_project(&self, project: &str) -> Result<Vec<ObservedContainer>, RuntimeError> {
        self.call(Op::ListProject, project, None)?;
        self.list(Some(project))
    }

    async fn inspect(&self, id: &str) -> Result<ContainerDetails, RuntimeError> {
        self.call(Op::Inspect, id, None)?;
        let now = Instant::now();
        let mut w = self.world();
        let c = w.container(id)?;
        Ok(ContainerDetails {
            state: c.state,
            health: c.health(now),
            health_log: match c.health(now) {
                HealthState::Unhealthy => Some("check failed".into()),
                _ => None,
            },
            has_healthcheck: c.has_check(),
            started_at: c.started_at.clone(),
            finished_at: c.finished_at.clone(),
            networks: c.endpoints.clone(),
            restart_count: c.restart_count,
            last_exit_code: c.last_exit_code,
        })
    }

    async fn has_image(&self, image: &str) -> Result<bool, RuntimeError> {
        self.call(Op::HasImage, image, None)?;
        Ok(self.world().images.contains_key(image))
    }

    async fn pull(&self, image: &str, _auth: Option<RegistryAuth>) -> Result<(), RuntimeError> {
        self.call(Op::Pull, image, None)?;
        if self.world().registry_down {
            return Err(RuntimeError::Pull {
                image: image.to_string(),
                message: "Get \"http://127.0.0.1:5000/v2/\": dial tcp 127.0.0.1:5000: connect: connection refused".into(),
            });
        }
        let delay = self.world().pull_delays.get(image).copied();
        if let Some(delay) = delay {
            tokio::time::sleep(delay).await;
        }
        let mut w = self.world();
        let digest = w
            .digests
            .get(image)
            .cloned()
            .unwrap_or_else(|| digest_of(image));
        w.images.insert(image.to_string(), digest);
        Ok(())
    }

    async fn image_digest(&self, image: &str) -> Result<String, RuntimeError> {
        self.call(Op::ImageDigest, image, None)?;
        self.world()
            .images
            .get(image)
            .cloned()
            .ok_or_else(|| RuntimeError::NotFound(format!("No such image: {image}")))
    }

    async fn create(&self, spec: &ContainerSpec) -> Result<String, RuntimeError> {
        self.call(Op::Create, &spec.name, None)?;
        let mut w = self.world();
        if w.find(&spec.name).is_some() {
            drop(w);
            self.mark_failed();
            return Err(RuntimeError::Conflict(format!(
                "the container name \"/{}\" is already in use",
                spec.name
            )));
        }
        if !w.images.contains_key(&spec.image) {
            drop(w);
            self.mark_failed();
            return Err(RuntimeError::NotFound(format!(
                "No such image: {}",
                spec.image
            )));
        }
        w.next_id += 1;
        let id = format!("{:012x}", w.next_id);
        let behaviour = w.behaviour_for(spec);
        let created = w.next_id as i64;
        let endpoints = spec
            .networks
            .iter()
            .map(|(network, aliases)| Endpoint {
                network: network.clone(),
                aliases: aliases.clone(),
                address: None,
            })
            .collect();
        w.containers.insert(
            id.clone(),
            Container {
                id: id.clone(),
                spec: spec.clone(),
                name: spec.name.clone(),
                behaviour,
                state: RunState::Created,
                started: None,
                started_at: None,
                finished_at: None,
                restart_count: 0,
                last_exit_code: None,
                endpoints,
                run: 0,
                created,
            },
        );
        drop(w);
        self.touched();
        Ok(id)
    }

    async fn start(&self, id: &str) -> Result<(), RuntimeError> {
        self.call(Op::Start, id, None)?;
        let exit = {
            let mut w = self.world();
            let mut addresses: Vec<String> = Vec::new();
            let count = w.container(id)?.endpoints.len();
            for _ in 0..count {
                addresses.push(w.address());
            }
            let c = w.container(id)?;
            if c.is_up() {
                return Ok(());
            }
            c.state = RunState::Running;
            c.started = Some(Instant::now());
            c.started_at = Some(now_text());
            c.restart_count = 0;
            c.run += 1;
            for (e, a) in c.endpoints.iter_mut().zip(addresses) {
                if e.address.is_none() {
                    e.address = Some(a);
                }
            }
            c.behaviour
                .exit
                .map(|(after, code)| (c.id.clone(), c.run, after, code))
        };
        self.touched();
        if let Some((id, run, after, code)) = exit {
            self.schedule_exit(&id, run, after, code);
        }
        Ok(())
    }

    async fn stop(&self, id: &str, _grace: Duration) -> Result<(), RuntimeError> {
        self.call(Op::Stop, id, None)?;
        let died = {
            let mut w = self.world();
            let c = w.container(id)?;
            let was_up = c.is_up();
            if was_up {
                c.state = RunState::Exited(Some(0));
                c.last_exit_code = Some(0);
                c.started = None;
                c.finished_at = Some(now_text());
                c.run += 1;
                for e in &mut c.endpoints {
                    e.address = None;
                }
            }
            was_up
        };
        self.touched();
        if died {
            self.event();
        }
        Ok(())
    }

    async fn kill(&self, id: &str) -> Result<(), RuntimeError> {
        self.call(Op::Kill, id, None)?;
        let died = {
            let mut w = self.world();
            let c = w.container(id)?;
            let was_up = c.is_up();
            if was_up {
                c.state = RunState::Exited(Some(137));
                c.last_exit_code = Some(137);
                c.started = None;
                c.finished_at = Some(now_text());
                c.run += 1;
            }
            was_up
        };
        self.touched();
        if died {
            self.event();
        }
        Ok(())
    }

    async fn remove(&self, id: &str) -> Result<(), RuntimeError> {
        self.call(Op::Remove, id, None)?;
        let removed = {
            let mut w = self.world();
            match w.find(id) {
                Some(id) => w.containers.remove(&id).is_some(),
                // Docker's engine answers 404, which berth takes as done.
                None => false,
            }
        };
        if removed {
            self.touched();
            self.event();
        }
        Ok(())
    }

    async fn rename(&self, id: &str, name: &str) -> Result<(), RuntimeError> {
        self.call(Op::Rename, id, Some(name.to_string()))?;
        let mut w = self.world();
        let target = w
            .find(id)
            .ok_or_else(|| RuntimeError::NotFound(format!("No such container: {id}")))?;
        if let Some(other) = w.find(name).filter(|o| *o != target) {
            drop(w);
            self.mark_failed();
            return Err(RuntimeError::Conflict(format!(
                "the name {name} is taken by {other}"
            )));
        }
        w.container(&target)?.name = name.to_string();
        Ok(())
    }

    async fn disconnect(&self, network: &str, id: &str) -> Result<(), RuntimeError> {
        self.call(Op::Disconnect, id, Some(network.to_string()))?;
        let mut w = self.world();
        let c = w.container(id)?;
        let before = c.endpoints.len();
        c.endpoints.retain(|e| e.network != network);
        if c.endpoints.len() == before {
            return Err(RuntimeError::Docker(format!(
                "container {id} is not connected to network {network}"
            )));
        }
        Ok(())
    }

    async fn connect(
        &self,
        network: &str,
        id: &str,
        aliases: Vec<String>,
    ) -> Result<(), RuntimeError> {
        self.call(
            Op::Connect,
            id,
            Some(format!("{network} [{}]", aliases.join(","))),
        )?;
        let mut w = self.world();
        let address = w.address();
        let c = w.container(id)?;
        if c.endpoints.iter().any(|e| e.network == network) {
            return Err(RuntimeError::Docker(format!(
                "endpoint with name {} already exists in network {network}",
                c.name
            )));
        }
        let up = c.is_up();
        c.endpoints.push(Endpoint {
            network: network.to_string(),
            aliases,
            address: up.then_some(address),
        });
        Ok(())
    }

    async fn reconnect(
        &self,
        network: &str,
        id: &str,
        aliases: Vec<String>,
    ) -> Result<Option<String>, RuntimeError> {
        self.call(
            Op::Reconnect,
            id,
            Some(format!("{network} [{}]", aliases.join(","))),
        )?;
        let mut w = self.world();
        let c = w.container(id)?;
        let e = c
            .endpoints
            .iter_mut()
            .find(|e| e.network == network)
            .ok_or_else(|| {
                RuntimeError::Docker(format!(
                    "container {id} is not connected to network {network}"
                ))
            })?;
        // The address comes back the same, as the engine promises.
        e.aliases = aliases;
        Ok(e.address.clone())
    }

    async fn network_exists(&self, name: &str) -> Result<bool, RuntimeError> {
        self.call(Op::NetworkExists, name, None)?;
        Ok(self.world().networks.iter().any(|(n, _)| n.name == name))
    }

    async fn volume_exists(&self, name: &str) -> Result<bool, RuntimeError> {
        self.call(Op::VolumeExists, name, None)?;
        Ok(self.world().volumes.iter().any(|(v, _)| v.name == name))
    }

    async fn list_networks(&self, project: &str) -> Result<Vec<ObservedObject>, RuntimeError> {
        self.call(Op::ListNetworks, project, None)?;
        Ok(self
            .world()
            .networks
            .iter()
            .filter(|(_, l)| l.get(labels::PROJECT).is_some_and(|p| p == project))
            .map(|(n, _)| n.clone())
            .collect())
    }

    async fn create_network(
        &self,
        name: &str,
        labels: BTreeMap<String, String>,
    ) -> Result<(), RuntimeError> {
        self.call(Op::CreateNetwork, name, None)?;
        let mut w = self.world();
        w.next_id += 1;
        let object = ObservedObject {
            name: name.to_string(),
            id: format!("net{:09x}", w.next_id),
            project: labels.get(labels::PROJECT).cloned().unwrap_or_default(),
        };
        // Docker lets two networks share a name.
        w.networks.push((object, labels));
        Ok(())
    }

    async fn remove_network(&self, name: &str) -> Result<(), RuntimeError> {
        self.call(Op::RemoveNetwork, name, None)?;
        let mut w = self.world();
        let matching: Vec<usize> = w
            .networks
            .iter()
            .enumerate()
            .filter(|(_, (n, _))| n.id == name || n.name == name)
            .map(|(i, _)| i)
            .collect();
        let [i] = matching[..] else {
            return Err(if matching.is_empty() {
                RuntimeError::NotFound(format!("network {name} not found"))
            } else {
                RuntimeError::Docker(format!("network {name} is ambiguous"))
            });
        };
        let full = w.networks[i].0.name.clone();
        let in_use = w
            .containers
            .values()
            .any(|c| c.endpoints.iter().any(|e| e.network == full));
        if in_use {
            return Err(RuntimeError::Docker(format!(
                "network {full} has active endpoints"
            )));
        }
        w.networks.remove(i);
        Ok(())
    }

    async fn list_volumes(&self, project: &str) -> Result<Vec<ObservedObject>, RuntimeError> {
        self.call(Op::ListVolumes, project, None)?;
        Ok(self
            .world()
            .volumes
            .iter()
            .filter(|(_, l)| l.get(labels::PROJECT).is_some_and(|p| p == project))
            .map(|(v, _)| v.clone())
            .collect())
    }

    async fn create_volume(
        &self,
        name: &str,
        labels: BTreeMap<String, String>,
    ) -> Result<(), RuntimeError> {
        self.call(Op::CreateVolume, name, None)?;
        let mut w = self.world();
        if !w.volumes.iter().any(|(v, _)| v.name == name) {
            let object = ObservedObject {
                name: name.to_string(),
                id: name.to_string(),
                project: labels.get(labels::PROJECT).cloned().unwrap_or_default(),
            };
            w.volumes.push((object, labels));
        }
        Ok(())
    }

    async fn logs_tail(&self, id: &str, lines: usize) -> Result<String, RuntimeError> {
        self.call(Op::LogsTail, id, None)?;
        let mut w = self.world();
        let output = &w.container(id)?.behaviour.output;
        let all: Vec<&str> = output.lines().collect();
        let tail = &all[all.len().saturating_sub(lines)..];
        Ok(tail.iter().map(|l| format!("{l}\n")).collect())
    }

    async fn wait(&self, id: &str) -> Result<i64, RuntimeError> {
        self.call(Op::Wait, id, None)?;
        let mut changed = self.shared.changed.subscribe();
        loop {
            {
                let mut w = self.world();
                let c = w.container(id)?;
                if let RunState::Exited(code) = c.state {
                    return Ok(code.unwrap_or(-1));
                }
            }
            if changed.changed().await.is_err() {
                return Err(RuntimeError::Docker("engine gone".into()));
            }
        }
    }

    fn events(&self) -> BoxStream<'_, Result<(), RuntimeError>> {
        // Opening the stream cannot fail here; an injected failure breaks it at once.
        let opened = self.call(Op::Events, "*", None);
        let rx = self.shared.events.subscribe();
        let first = futures_util::stream::iter(opened.err().map(Err));
        let rest = futures_util::stream::unfold(rx, |mut rx| async move {
            match rx.recv().await {
                Ok(Ok(())) => Some((Ok(()), rx)),
                Ok(Err(e)) => Some((Err(RuntimeError::Docker(e)), rx)),
                // Some were missed: one wake-up says as much.
                Err(broadcast::error::RecvError::Lagged(_)) => Some((Ok(()), rx)),
                Err(broadcast::error::RecvError::Closed) => None,
            }
        });
        Box::pin(futures_util::StreamExt::chain(first, rest))
    }
}
