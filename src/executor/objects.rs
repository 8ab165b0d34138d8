//! The networks and volumes a project needs, and the repository files its services
//! mount: created when missing, refused when somebody else's, pruned when no longer
//! named.

use std::collections::{BTreeMap, BTreeSet};

use super::{container, ApplyError, Executor};
use crate::plan::Desired;
use crate::runtime::{ObservedObject, RuntimeError};

/// What kind of object, and where the desired state declares it.
#[derive(Debug, Clone, Copy)]
enum Kind {
    Network,
    Volume,
}

impl Kind {
    fn word(self) -> &'static str {
        match self {
            Kind::Network => "network",
            Kind::Volume => "volume",
        }
    }

    fn section(self) -> &'static str {
        match self {
            Kind::Network => "networks",
            Kind::Volume => "volumes",
        }
    }
}

/// One network or volume of the desired state, and what is known of it.
struct Declared<'a> {
    kind: Kind,
    project: &'a str,
    /// Its name in the desired state.
    name: &'a str,
    /// Its name in Docker.
    full: &'a str,
    external: bool,
    /// berth's label is on it.
    labelled: bool,
    /// The host's operator handed it over (`berth adopt`).
    adopted: bool,
}

impl Executor {
    /// Creates missing networks and volumes, and writes mounted repository files.
    pub(super) async fn ensure_objects(&self, desired: &Desired) -> Result<(), ApplyError> {
        let project = &desired.spec.project;
        let labels = container::project_labels(project);
        let names = crate::plan::desired::ObjectNames::of(&desired.spec);
        let adopted =
            super::adopted::Adopted::read(&self.opts.state_dir, project).map_err(|e| {
                ApplyError::StateDir {
                    path: super::adopted::Adopted::path(&self.opts.state_dir)
                        .display()
                        .to_string(),
                    error: e,
                }
            })?;
        let listed = self.engine.list_networks(project).await?;
        self.remove_twins(&listed).await;
        let nets: BTreeSet<String> = listed.into_iter().map(|n| n.name).collect();
        for (name, n) in &desired.spec.networks {
            let full = names.network(name);
            let declared = Declared {
                kind: Kind::Network,
                project,
                name,
                full: &full,
                external: n.external,
                labelled: nets.contains(&full),
                adopted: adopted.networks.contains(&full),
            };
            if self.owned(&declared).await? {
                tracing::info!(project, network = %full, action = "create-network");
                match self.engine.create_network(&full, labels.clone()).await {
                    Ok(()) | Err(RuntimeError::Conflict(_)) => {}
                    Err(e) => return Err(e.into()),
                }
            }
        }
        let vols: BTreeSet<String> = self
            .engine
            .list_volumes(project)
            .await?
            .into_iter()
            .map(|n| n.name)
            .collect();
        for (name, v) in &desired.spec.volumes {
            let full = names.volume(name);
            let declared = Declared {
                kind: Kind::Volume,
                project,
                name,
                full: &full,
                external: v.external,
                labelled: vols.contains(&full),
                adopted: adopted.volumes.contains(&full),
            };
            if self.owned(&declared).await? {
                tracing::info!(project, volume = %full, action = "create-volume");
                self.engine.create_volume(&full, labels.clone()).await?;
            }
        }
        for s in desired.services.values().chain(desired.jobs.values()) {
            for m in &s.spec.volumes {
                match &m.source {
                    crate::model::MountSource::RepoFile(f) => {
                        write_repo_file(&self.opts.state_dir, &f.content)?
                    }
                    crate::model::MountSource::RepoDir(d) => {
                        write_repo_dir(&self.opts.state_dir, d)?
                    }
                    crate::model::MountSource::HostData(rel) => {
                        container::host_data(&self.opts.state_dir, project, rel, true).map_err(
                            |error| ApplyError::StateDir {
                                path: container::data_root(&self.opts.state_dir, project)
                                    .join(rel)
                                    .display()
                                    .to_string(),
                                error: std::io::Error::other(error),
                            },
                        )?;
                    }
                    _ => {}
                }
            }
        }
        Ok(())
    }

    /// Docker lets two networks share a name; a create that an `apply` killed mid-way
    /// left to the daemon can finish after the next `apply` made the network too, and
    /// then every container start on it fails as ambiguous. The twins of a name are
    /// removed until one is left (one in use stays).
    async fn remove_twins(&self, listed: &[ObservedObject]) {
        let mut by_name: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
        for n in listed {
            by_name.entry(&n.name).or_default().push(&n.id);
        }
        for (name, ids) in by_name.into_iter().filter(|(_, ids)| ids.len() > 1) {
            let mut left = ids.len();
            for id in ids {
                if left == 1 {
                    break;
                }
                match self.engine.remove_network(id).await {
                    Ok(()) => {
                        left -= 1;
                        tracing::warn!(network = %name, id, action = "remove-network", "a second network of the same name removed");
                    }
                    Err(e) => {
                        tracing::debug!(network = %name, id, error = %e, "twin network in use")
                    }
                }
            }
        }
    }

    /// Removes project networks the desired state no longer names; a network still in
    /// use stays until the next run.
    pub(super) async fn prune_networks(&self, desired: &Desired) {
        let project = &desired.spec.project;
        let Ok(nets) = self.engine.list_networks(project).await else {
            return;
        };
        let wanted: BTreeSet<String> = desired
            .spec
            .networks
            .keys()
            .map(|n| container::object_name(project, n))
            .collect();
        for n in nets.into_iter().filter(|n| !wanted.contains(&n.name)) {
            if let Err(e) = self.engine.remove_network(&n.name).await {
                tracing::debug!(network = %n.name, error = %e, "network not removed yet");
            } else {
                tracing::info!(project = %project, network = %n.name, action = "remove-network");
            }
        }
    }

    /// Whether berth must create a declared network or volume: not when it is berth's
    /// already or `external` (which must exist); an error when it exists without
    /// berth's label, since it is somebody else's (compose names its objects the same
    /// way), unless the host's operator handed it over.
    async fn owned(&self, o: &Declared<'_>) -> Result<bool, ApplyError> {
        if o.labelled && !o.external {
            return Ok(false);
        }
        let exists = match o.kind {
            Kind::Network => self.engine.network_exists(o.full).await?,
            Kind::Volume => self.engine.volume_exists(o.full).await?,
        };
        let (kind, full, section, name, project) =
            (o.kind.word(), o.full, o.kind.section(), o.name, o.project);
        if o.external {
            return if exists {
                Ok(false)
            } else {
                Err(ApplyError::Ownership(format!(
                    "external {kind} `{full}` does not exist; create it (`docker {kind} create {full}`), or drop `{section}.{name}.external` to let berth make `{project}_{name}`"
                )))
            };
        }
        if exists && o.adopted {
            // Handed over by the host's operator (`berth adopt`): used as it is, and,
            // having no berth label, never changed or removed.
            return Ok(false);
        }
        if exists {
            return Err(ApplyError::Ownership(format!(
                "{kind} `{full}` exists but berth did not create it (it has no berth.project={project} label); declare `{section}.{name}: {{ external: true }}` under its own name to use an object made elsewhere, or remove it; if docker compose made it, the host's operator hands it over with `berth adopt --project {project} --state-dir {}` and this desired state's --file or --repo (README: \"Switching from docker compose\")",
                self.opts.state_dir.display()
            )));
        }
        Ok(true)
    }
}

fn write_repo_file(state_dir: &std::path::Path, content: &[u8]) -> Result<(), ApplyError> {
    let path = container::repo_file_path(state_dir, content);
    if path.exists() {
        return Ok(());
    }
    let fail = |error| ApplyError::StateDir {
        path: path.display().to_string(),
        error,
    };
    let dir = state_dir.join("files");
    std::fs::create_dir_all(&dir).map_err(fail)?;
    // Written aside and renamed, so a container never mounts half a file.
    let tmp = dir.join(format!(".tmp-{}", std::process::id()));
    std::fs::write(&tmp, content).map_err(fail)?;
    std::fs::rename(&tmp, &path).map_err(fail)?;
    Ok(())
}

/// Writes a repository directory under the state dir, once per content: into a
/// directory aside, renamed into place whole.
fn write_repo_dir(
    state_dir: &std::path::Path,
    dir: &crate::model::RepoDir,
) -> Result<(), ApplyError> {
    let path = container::repo_dir_path(state_dir, dir);
    if path.exists() {
        return Ok(());
    }
    let fail = |error| ApplyError::StateDir {
        path: path.display().to_string(),
        error,
    };
    // What an earlier run killed mid-way left aside is written again.
    let tmp = state_dir
        .join("files")
        .join(format!(".tmp-dir-{}", std::process::id()));
    match std::fs::remove_dir_all(&tmp) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(fail(e)),
        _ => {}
    }
    std::fs::create_dir_all(&tmp).map_err(fail)?;
    for (rel, content) in &dir.files {
        // The loader only takes names read from the tree, joined below the directory.
        let file = tmp.join(rel);
        if let Some(p) = file.parent() {
            std::fs::create_dir_all(p).map_err(fail)?;
        }
        std::fs::write(&file, content).map_err(fail)?;
    }
    std::fs::rename(&tmp, &path).map_err(fail)?;
    Ok(())
}
