//! Taking replicas out of traffic: out of the service's alias, a pause for requests in
//! flight (`--drain`), then the stop signal with the service's grace, and removal.

use std::collections::HashMap;
use std::time::Duration;

use futures_util::future::join_all;

use super::error::StepError;
use super::ApplyOptions;
use crate::plan::Step;
use crate::runtime::{Engine, ObservedContainer, RunState};

/// The grace of a service that left the desired state (its own is no longer known).
pub(super) const DEFAULT_GRACE: Duration = Duration::from_secs(10);

/// Retires the replicas of one service.
pub(super) struct Drain<'a> {
    pub engine: &'a dyn Engine,
    pub opts: &'a ApplyOptions,
    pub project: &'a str,
    pub service: &'a str,
    /// Between SIGTERM and SIGKILL.
    pub grace: Duration,
}

pub(super) fn ms(d: Duration) -> u64 {
    d.as_millis() as u64
}

impl Drain<'_> {
    /// Carries out the removals among `steps` (all a service that left the desired
    /// state has).
    pub(super) async fn remove_all(
        &self,
        steps: &[Step],
        by_name: &HashMap<&str, &ObservedContainer>,
    ) -> Result<(), StepError> {
        for step in steps {
            if let Step::Remove { container, .. } = step {
                let c = by_name
                    .get(container.as_str())
                    .ok_or_else(|| StepError::Vanished(container.clone()))?;
                self.remove(c).await?;
            }
        }
        Ok(())
    }

    /// Takes a replica out of the service's alias on every network, keeping it attached
    /// (same address, when the engine hands it back) so that requests in flight and its
    /// own connections go on while it drains and stops. Failures are logged: a replica
    /// that could not leave is stopped all the same.
    ///
    /// With `in_alias` false, it leaves every network's aliases: what a stopped replica
    /// does before it starts again (it joins after its gate), which also forgets the
    /// address it last held, since a newer replica may hold that by now.
    pub(super) async fn leave(&self, id: &str, in_alias: bool) {
        let started = tokio::time::Instant::now();
        let attached = match self.engine.inspect(id).await {
            Ok(d) => d.networks,
            Err(e) => {
                tracing::debug!(container = %id, error = %e, "not inspected before leaving its alias");
                return;
            }
        };
        for e in attached
            .iter()
            .filter(|e| !in_alias || e.aliases.iter().any(|a| a == self.service))
        {
            match self.engine.reconnect(&e.network, id, Vec::new()).await {
                Ok(now) => log_moved(id, &e.network, e.address.as_deref(), now.as_deref()),
                Err(err) => {
                    tracing::warn!(network = %e.network, container = %id, error = %err, "replica did not leave its alias")
                }
            }
        }
        tracing::debug!(project = self.project, service = self.service, action = "leave", container = %id, duration_ms = ms(started.elapsed()));
    }

    /// Retires running replicas: they leave the alias together, drain for `--drain`,
    /// then get their stop signal with `grace`, together.
    pub(super) async fn retire(&self, ids: &[&str], grace: Duration) -> Result<(), StepError> {
        join_all(ids.iter().map(|id| self.leave(id, true))).await;
        tokio::time::sleep(self.opts.drain).await;
        let stops = join_all(ids.iter().map(|id| async move {
            self.engine
                .stop(id, grace)
                .await
                .map_err(StepError::engine(format!("stop {id}")))
        }))
        .await;
        stops.into_iter().find_map(Result::err).map_or(Ok(()), Err)
    }

    /// Takes a container out of its alias, lets requests drain, stops it with its
    /// grace and removes it.
    pub(super) async fn remove(&self, c: &ObservedContainer) -> Result<(), StepError> {
        tracing::info!(project = self.project, service = %c.service, action = "remove", container = %c.name);
        if c.state == RunState::Running {
            self.leave(&c.id, true).await;
            tokio::time::sleep(self.opts.drain).await;
            self.engine
                .stop(&c.id, self.grace)
                .await
                .map_err(StepError::engine(format!("stop {}", c.name)))?;
        }
        self.engine
            .remove(&c.id)
            .await
            .map_err(StepError::engine(format!("remove {}", c.name)))
    }

    /// Removes a container whose removal the next run may as well do: logged, not
    /// reported.
    pub(super) async fn remove_or_log(&self, id: &str) {
        if let Err(e) = self.engine.remove(id).await {
            tracing::warn!(service = self.service, container = %id, error = %e, "container not removed; the next run removes it");
        }
    }

    /// A rename the next run's plan repairs if it fails: logged, not reported.
    pub(super) async fn rename_or_log(&self, id: &str, name: &str) {
        if let Err(e) = self.engine.rename(id, name).await {
            tracing::warn!(service = self.service, container = %id, to = %name, error = %e, "rename failed; the next run repairs the slot");
        }
    }
}

/// Logs an endpoint whose address changed across a reconnect: connections through the
/// old address did not survive it.
pub(super) fn log_moved(container: &str, network: &str, before: Option<&str>, after: Option<&str>) {
    if before.is_some() && before != after {
        tracing::info!(container = %container, network = %network, before = ?before, after = ?after, action = "address-changed", "the engine gave another address; connections through the old one were cut");
    }
}
