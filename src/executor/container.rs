//! From a desired service to the container spec of one of its replicas.

use std::collections::BTreeMap;
use std::path::Path;

use crate::model::host_path::check_on_host;
use crate::model::{Health, Logging, MountSource};
use crate::plan::{DesiredService, EnvFile, SecretFile};
use crate::runtime::{labels, BindMount, ContainerSpec, HealthConfig, PublishedPort};
use crate::secrets::runtime::Decrypted;

/// Why a replica's container spec could not be built. Never names a secret's value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum SpecError {
    /// The service's env file could not be read on this host.
    #[error("{0}")]
    EnvFile(String),
    /// A compose secret has no readable file on this host.
    #[error("{0}")]
    Secret(String),
    /// A host path (or the project's host data) is not allowed, or not usable, here.
    #[error("{0}")]
    HostPath(String),
}

/// The full name of a project network or volume: `<project>_<name>`.
pub(crate) fn object_name(project: &str, name: &str) -> String {
    format!("{project}_{name}")
}

/// The labels every object of a project carries.
pub(crate) fn project_labels(project: &str) -> BTreeMap<String, String> {
    BTreeMap::from([(labels::PROJECT.to_string(), project.to_string())])
}

/// Where a repository file's content is written on the host: by content hash, so a
/// changed file is a new path and a new spec.
pub(crate) fn repo_file_path(state_dir: &Path, content: &[u8]) -> std::path::PathBuf {
    use sha2::{Digest, Sha256};
    state_dir
        .join("files")
        .join(hex::encode(Sha256::digest(content)))
}

/// Where a repository directory is written on the host: by its content, like files.
pub(crate) fn repo_dir_path(state_dir: &Path, dir: &crate::model::RepoDir) -> std::path::PathBuf {
    state_dir
        .join("files")
        .join(format!("dir-{}", dir.digest()))
}

/// The directory that holds a project's host data.
pub(crate) fn data_root(state_dir: &Path, project: &str) -> std::path::PathBuf {
    state_dir.join("data").join(project)
}

/// The real path of the project's host data `rel`, checked as host paths are: no
/// component below the project's data directory may be a symlink (its containers write
/// there and could plant one). With `create`, what is missing is made (never removed).
pub(crate) fn host_data(
    state_dir: &Path,
    project: &str,
    rel: &str,
    create: bool,
) -> Result<std::path::PathBuf, SpecError> {
    use crate::model::{host_path::check_on_host, AllowedHostPath};
    let root = data_root(state_dir, project);
    let made =
        |dir: &Path, e: std::io::Error| SpecError::HostPath(format!("{}: {e}", dir.display()));
    if create {
        std::fs::create_dir_all(&root).map_err(|e| made(&root, e))?;
    }
    let path = root.join(rel);
    let allowed = [AllowedHostPath::writable(&root)];
    let real = check_on_host(&path, false, &allowed).map_err(SpecError::HostPath)?;
    if create && !real.exists() {
        std::fs::create_dir_all(&real).map_err(|e| made(&real, e))?;
        // Made since the check: checked again, so a symlink planted meanwhile is refused.
        return check_on_host(&path, false, &allowed).map_err(SpecError::HostPath);
    }
    Ok(real)
}

/// The owner of a decrypted secret file for a container whose `user:` is numeric
/// (`1000`, `1000:1000`), so that it can read the file (mode 0400); `None` (root) for
/// none or a name, which only the image resolves.
pub(crate) fn numeric_user(user: Option<&str>) -> Option<(u32, u32)> {
    let (u, g) = match user?.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (user?, None),
    };
    let uid: u32 = u.parse().ok()?;
    let gid = match g {
        Some(g) => g.parse().ok()?,
        None => uid,
    };
    Some((uid, gid))
}

/// Removes the decrypted secret files of `desired`'s project that none of its services
/// mounts any more: after a converged apply, a rotated secret's old plaintext goes.
pub(crate) fn prune_secrets(runtime_dir: &Path, desired: &crate::plan::Desired) {
    let project = &desired.spec.project;
    let keep: Vec<std::path::PathBuf> = desired
        .services
        .values()
        .chain(desired.jobs.values())
        .flat_map(|d| {
            d.secret_files.iter().filter_map(move |(name, f)| match f {
                Ok(SecretFile::Decrypted(plain)) => Some(
                    Decrypted {
                        project,
                        service: &d.spec.name,
                        name,
                        plain,
                        owner: numeric_user(d.spec.options.user.as_deref()),
                    }
                    .path_in(runtime_dir),
                ),
                _ => None,
            })
        })
        .collect();
    crate::secrets::runtime::prune(runtime_dir, project, &keep);
}

/// Builds a replica's container spec; fails (with a message naming no value) when the
/// env file could not be read or a host path is no longer allowed on this host.
pub(crate) fn replica_spec(
    project: &str,
    d: &DesiredService,
    slot: u32,
    name: &str,
    opts: &super::ApplyOptions,
) -> Result<ContainerSpec, SpecError> {
    let (commit, state_dir) = (opts.commit.as_deref(), opts.state_dir.as_path());
    let s = &d.spec;
    let mut env: Vec<String> = match &d.env_file {
        EnvFile::None => Vec::new(),
        // Committed env wins over the env files, as in compose: a key is given once.
        EnvFile::Loaded(kvs) => kvs
            .iter()
            .filter(|(k, _)| !s.env.contains_key(k))
            .map(|(k, v)| format!("{k}={v}"))
            .collect(),
        EnvFile::Unreadable(why) => return Err(SpecError::EnvFile(why.clone())),
    };
    env.extend(s.env.iter().map(|(k, v)| format!("{k}={v}")));
    let o = &s.options;
    // The service's own labels first: berth's, written after, always win (and the
    // model refuses `berth.` keys anyway).
    let mut lbls = o.labels.clone();
    lbls.extend(project_labels(project));
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
        .map(|m| -> Result<BindMount, SpecError> {
            Ok(match &m.source {
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
                // Shared by every replica and commit with the same files: never writable.
                MountSource::RepoDir(dir) => BindMount {
                    source: repo_dir_path(state_dir, dir).display().to_string(),
                    target: m.target.clone(),
                    read_only: true,
                    volume: false,
                },
                MountSource::Secret { name, .. } => BindMount {
                    source: match d.secret_files.get(name) {
                        Some(Ok(SecretFile::Host(real))) => real.display().to_string(),
                        // Written to the runtime directory's tmpfs now, by content: the
                        // replicas of one version share it, a rotated secret is a new file.
                        Some(Ok(SecretFile::Decrypted(plain))) => Decrypted {
                            project,
                            service: &s.name,
                            name,
                            plain,
                            owner: numeric_user(s.options.user.as_deref()),
                        }
                        .write_in(&opts.runtime_dir)
                        .map_err(SpecError::Secret)?
                        .display()
                        .to_string(),
                        Some(Err(why)) => return Err(SpecError::Secret(why.clone())),
                        None => {
                            return Err(SpecError::Secret(format!(
                                "secret `{name}` was not looked up"
                            )))
                        }
                    },
                    target: m.target.clone(),
                    read_only: true,
                    volume: false,
                },
                MountSource::HostData(rel) => BindMount {
                    source: host_data(state_dir, project, rel, false)?
                        .display()
                        .to_string(),
                    target: m.target.clone(),
                    read_only: m.read_only,
                    volume: false,
                },
                // Checked again right before the create, and mounted by its real path: what
                // a container planted below the prefix since the commit was loaded is
                // refused here.
                MountSource::HostPath(p) => BindMount {
                    source: check_on_host(p, m.read_only, &opts.allow_host_paths)
                        .map_err(SpecError::HostPath)?
                        .display()
                        .to_string(),
                    target: m.target.clone(),
                    read_only: m.read_only,
                    volume: false,
                },
            })
        })
        .collect::<Result<_, _>>()?;
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
        entrypoint: o.entrypoint.clone(),
        user: o.user.clone(),
        working_dir: o.working_dir.clone(),
        hostname: o.hostname.clone(),
        read_only: o.read_only,
        init: o.init.unwrap_or(true),
        stop_signal: o.stop_signal.clone(),
        tmpfs: o
            .tmpfs
            .iter()
            .map(|t| (t.target.clone(), t.options.clone()))
            .collect(),
        extra_hosts: o.extra_hosts.clone(),
        dns: o.dns.clone(),
        log: o.logging.as_ref().map(log_config),
        ulimits: o
            .ulimits
            .iter()
            .map(|(n, l)| (n.clone(), l.soft, l.hard))
            .collect(),
        shm_size: o.shm_size,
        pids_limit: o.pids_limit,
        cap_drop: o.cap_drop.clone(),
        security_opt: if o.no_new_privileges {
            vec!["no-new-privileges:true".to_string()]
        } else {
            Vec::new()
        },
        memory_reservation: o.mem_reservation,
        tty: o.tty,
        stdin_open: o.stdin_open,
    })
}

/// A service's log driver as the engine gets it: `json-file` keeps berth's rotation
/// (10 MiB × 3) unless the options set their own, so a driver named without options
/// cannot fill the host's disk with one container's output.
fn log_config(l: &Logging) -> (String, BTreeMap<String, String>) {
    let mut options = l.options.clone();
    if l.driver == "json-file" {
        options
            .entry("max-size".into())
            .or_insert_with(|| "10m".into());
        options
            .entry("max-file".into())
            .or_insert_with(|| "3".into());
    }
    (l.driver.clone(), options)
}
