//! `--concurrency`: how many engine calls that make the engine work (creates, starts,
//! pulls, removes) are in flight at once. Only those calls hold a slot: a health gate,
//! a migration's run or a wait for the fleet holds none, so every independent service
//! of a dependency level moves at once, and a slow gate never holds up another service.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use futures_util::stream::BoxStream;
use tokio::sync::{Semaphore, SemaphorePermit};

use crate::runtime::{
    ContainerDetails, ContainerSpec, Engine, ObservedContainer, ObservedObject, OnPull,
    RegistryAuth, RuntimeError,
};

/// An engine whose working calls take turns, `limit` at a time.
pub(super) struct Bounded {
    inner: Arc<dyn Engine>,
    slots: Semaphore,
}

impl Bounded {
    pub(super) fn new(inner: Arc<dyn Engine>, limit: usize) -> Self {
        Self {
            inner,
            slots: Semaphore::new(limit.max(1)),
        }
    }

    async fn slot(&self) -> Result<SemaphorePermit<'_>, RuntimeError> {
        // The semaphore is never closed; an error here would be a bug, reported as such.
        self.slots
            .acquire()
            .await
            .map_err(|e| RuntimeError::Docker(format!("engine call slots: {e}")))
    }
}

#[async_trait]
impl Engine for Bounded {
    async fn list_managed(&self) -> Result<Vec<(String, ObservedContainer)>, RuntimeError> {
        self.inner.list_managed().await
    }

    async fn list_project(&self, project: &str) -> Result<Vec<ObservedContainer>, RuntimeError> {
        self.inner.list_project(project).await
    }

    async fn inspect(&self, id: &str) -> Result<ContainerDetails, RuntimeError> {
        self.inner.inspect(id).await
    }

    async fn has_image(&self, image: &str) -> Result<bool, RuntimeError> {
        self.inner.has_image(image).await
    }

    async fn pull(&self, image: &str, auth: Option<RegistryAuth>) -> Result<(), RuntimeError> {
        let _slot = self.slot().await?;
        self.inner.pull(image, auth).await
    }

    async fn pull_watched(
        &self,
        image: &str,
        auth: Option<RegistryAuth>,
        on: OnPull<'_>,
    ) -> Result<(), RuntimeError> {
        let _slot = self.slot().await?;
        self.inner.pull_watched(image, auth, on).await
    }

    async fn image_digest(&self, image: &str) -> Result<String, RuntimeError> {
        self.inner.image_digest(image).await
    }

    async fn create(&self, spec: &ContainerSpec) -> Result<String, RuntimeError> {
        let _slot = self.slot().await?;
        self.inner.create(spec).await
    }

    async fn start(&self, id: &str) -> Result<(), RuntimeError> {
        let _slot = self.slot().await?;
        self.inner.start(id).await
    }

    async fn stop(&self, id: &str, grace: Duration) -> Result<(), RuntimeError> {
        self.inner.stop(id, grace).await
    }

    async fn kill(&self, id: &str) -> Result<(), RuntimeError> {
        self.inner.kill(id).await
    }

    async fn remove(&self, id: &str) -> Result<(), RuntimeError> {
        let _slot = self.slot().await?;
        self.inner.remove(id).await
    }

    async fn rename(&self, id: &str, name: &str) -> Result<(), RuntimeError> {
        self.inner.rename(id, name).await
    }

    async fn disconnect(&self, network: &str, id: &str) -> Result<(), RuntimeError> {
        self.inner.disconnect(network, id).await
    }

    async fn connect(
        &self,
        network: &str,
        id: &str,
        aliases: Vec<String>,
    ) -> Result<(), RuntimeError> {
        self.inner.connect(network, id, aliases).await
    }

    async fn reconnect(
        &self,
        network: &str,
        id: &str,
        aliases: Vec<String>,
    ) -> Result<Option<String>, RuntimeError> {
        self.inner.reconnect(network, id, aliases).await
    }

    async fn network_exists(&self, name: &str) -> Result<bool, RuntimeError> {
        self.inner.network_exists(name).await
    }

    async fn volume_exists(&self, name: &str) -> Result<bool, RuntimeError> {
        self.inner.volume_exists(name).await
    }

    async fn list_networks(&self, project: &str) -> Result<Vec<ObservedObject>, RuntimeError> {
        self.inner.list_networks(project).await
    }

    async fn create_network(
        &self,
        name: &str,
        labels: BTreeMap<String, String>,
    ) -> Result<(), RuntimeError> {
        self.inner.create_network(name, labels).await
    }

    async fn remove_network(&self, name: &str) -> Result<(), RuntimeError> {
        self.inner.remove_network(name).await
    }

    async fn list_volumes(&self, project: &str) -> Result<Vec<ObservedObject>, RuntimeError> {
        self.inner.list_volumes(project).await
    }

    async fn create_volume(
        &self,
        name: &str,
        labels: BTreeMap<String, String>,
    ) -> Result<(), RuntimeError> {
        self.inner.create_volume(name, labels).await
    }

    async fn logs_tail(&self, id: &str, lines: usize) -> Result<String, RuntimeError> {
        self.inner.logs_tail(id, lines).await
    }

    async fn wait(&self, id: &str) -> Result<i64, RuntimeError> {
        self.inner.wait(id).await
    }

    fn events(&self) -> BoxStream<'_, Result<(), RuntimeError>> {
        self.inner.events()
    }

    async fn ping(&self) -> Result<(), RuntimeError> {
        self.inner.ping().await
    }
}
