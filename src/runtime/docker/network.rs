//! Endpoints and networks: connecting with an alias and an address, and making a
//! network whose subnet is pinned, so that a reconnect keeps a replica's address.

use std::collections::BTreeMap;

use bollard::models::{
    EndpointIpamConfig, EndpointSettings, Ipam, NetworkCreateRequest, NetworkDisconnectRequest,
};

use super::{err, DockerEngine};
use crate::runtime::RuntimeError;

impl DockerEngine {
    pub(super) async fn disconnect_now(&self, network: &str, id: &str) -> Result<(), RuntimeError> {
        let req = NetworkDisconnectRequest {
            container: id.to_string(),
            force: Some(true),
        };
        self.docker
            .disconnect_network(network, req)
            .await
            .map_err(err)
    }

    pub(super) async fn connect_now(
        &self,
        network: &str,
        id: &str,
        aliases: Vec<String>,
    ) -> Result<(), RuntimeError> {
        self.connect_with(network, id, aliases, None).await
    }

    pub(super) async fn connect_with(
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
    pub(super) async fn address(
        &self,
        id: &str,
        network: &str,
    ) -> Result<Option<String>, RuntimeError> {
        let c = self.docker.inspect_container(id, None).await.map_err(err)?;
        Ok(c.network_settings
            .and_then(|n| n.networks)
            .and_then(|mut n| n.remove(network))
            .and_then(|e| e.ip_address)
            .filter(|a| !a.is_empty()))
    }

    /// Creates a bridge network whose subnet is fixed at its creation, so that a
    /// replica keeps its address across a reconnect.
    pub(super) async fn create_network_pinned(
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
}
