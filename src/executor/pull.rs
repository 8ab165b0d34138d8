//! Images first: every image a plan needs is pulled, all at once, before anything
//! stops; a service whose image cannot be had is left as it runs.

use std::collections::{BTreeMap, HashMap};

use futures_util::future::join_all;
use tokio::sync::OnceCell;
use tokio::time::Instant;

use super::progress::{self, Event};
use super::{auth, ApplyError, Executor};
use crate::plan::{plan, Desired, Plan, Step};
use crate::runtime::RegistryAuth;

/// What looking up one registry's credentials gave.
type Credentials = Result<Option<RegistryAuth>, auth::AuthError>;

/// A service's image that could not be had.
#[derive(Debug, Clone)]
pub(crate) struct PullFailure {
    /// What went wrong, for the report.
    pub error: String,
    /// The registry could not be reached ([`crate::runtime::RuntimeError::registry_unreachable`]):
    /// not the release's failure.
    pub unreachable: bool,
}

impl PullFailure {
    fn new(error: String) -> Self {
        Self {
            error,
            unreachable: false,
        }
    }
}

impl Executor {
    /// Pulls what `apply` would pull first: the images of services to create or
    /// replace that this host does not have. By service, the pulls that failed.
    pub(crate) async fn pull(
        &self,
        desired: &Desired,
    ) -> Result<HashMap<String, PullFailure>, ApplyError> {
        let observed = self.engine.list_project(&desired.spec.project).await?;
        let the_plan = plan(desired, &observed);
        Ok(self.pull_images(desired, &the_plan).await)
    }

    /// Pulls, in parallel, every image a create or replace needs and the host lacks.
    /// Returns the error of each service whose image could not be had.
    pub(super) async fn pull_images(
        &self,
        desired: &Desired,
        the_plan: &Plan,
    ) -> HashMap<String, PullFailure> {
        let mut wanted: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for sp in the_plan.changes() {
            let needs = sp
                .steps
                .iter()
                .any(|s| matches!(s, Step::Create { .. } | Step::Replace { .. }));
            if let (true, Some(d)) = (needs, desired.services.get(&sp.service)) {
                wanted
                    .entry(d.spec.image.full.clone())
                    .or_default()
                    .push(sp.service.clone());
            }
        }
        // A compose job's image is needed by the services it gates.
        for m in desired.spec.migrations.values() {
            let Some(job) = desired.jobs.get(&m.name).filter(|_| m.job.is_some()) else {
                continue;
            };
            let gated: Vec<String> = m
                .gates
                .iter()
                .filter(|g| wanted.values().any(|s| s.contains(g)))
                .cloned()
                .collect();
            if !gated.is_empty() {
                let entry = wanted.entry(job.spec.image.full.clone()).or_default();
                for g in gated {
                    if !entry.contains(&g) {
                        entry.push(g);
                    }
                }
            }
        }
        // Credentials are looked up once per registry, and only for images to pull: a
        // credential helper may be slow or ask a cloud.
        let env = &self.opts.auth;
        let creds: HashMap<String, OnceCell<Credentials>> = wanted
            .keys()
            .filter_map(|image| auth::registry_key(image).ok())
            .map(|key| (key, OnceCell::new()))
            .collect();
        let (env, creds) = (&env, &creds);
        let pulls = wanted.into_iter().map(|(image, services)| async move {
            let refused = |e: auth::AuthError| {
                Some(PullFailure::new(format!(
                    "pull {image}: {e}; nothing of this service was stopped"
                )))
            };
            // The registry host is checked before the engine sees the reference.
            let key = match auth::registry_key(&image) {
                Ok(key) => key,
                Err(e) => return (services, refused(e)),
            };
            match self.engine.has_image(&image).await {
                Ok(true) => return (services, None),
                Ok(false) => {}
                Err(e) => return (services, Some(PullFailure::new(e.to_string()))),
            }
            let found = match creds.get(&key) {
                Some(cell) => cell
                    .get_or_init(|| auth::server_auth(env, &key))
                    .await
                    .clone(),
                None => auth::server_auth(env, &key).await,
            };
            let credentials = match found {
                Ok(c) => c,
                Err(e) => return (services, refused(e)),
            };
            let started = Instant::now();
            tracing::info!(image = %image, action = "pull");
            let sink = &self.opts.progress;
            progress::emit(sink, || Event::PullStarted {
                image: image.clone(),
            });
            let on_pull = |p: crate::runtime::PullStatus| {
                progress::emit(sink, || Event::PullProgress {
                    image: image.clone(),
                    layers_done: p.layers_done,
                    layers: p.layers,
                    bytes: p.bytes,
                    bytes_total: p.bytes_total,
                })
            };
            let result = match sink {
                Some(_) => {
                    self.engine
                        .pull_watched(&image, credentials, &on_pull)
                        .await
                }
                None => self.engine.pull(&image, credentials).await,
            };
            progress::emit(sink, || Event::PullDone {
                image: image.clone(),
                ok: result.is_ok(),
            });
            match result {
                Ok(()) => {
                    tracing::info!(image = %image, action = "pulled", duration_ms = started.elapsed().as_millis() as u64);
                    (services, None)
                }
                Err(e) => (
                    services,
                    Some(PullFailure {
                        error: format!("{e}; nothing of this service was stopped"),
                        unreachable: e.registry_unreachable(),
                    }),
                ),
            }
        });
        let mut errors = HashMap::new();
        for (services, err) in join_all(pulls).await {
            if let Some(e) = err {
                for s in services {
                    errors.insert(s, e.clone());
                }
            }
        }
        errors
    }
}
