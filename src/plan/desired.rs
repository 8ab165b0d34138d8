//! A service's desired container, normalized and hashed: what must be true of every
//! replica, with host-side inputs (env file contents) read in.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

pub use super::change::{describe_change, image_change, short};
use crate::model::{ContainerOptions, Health, MigrationSpec, MountSource, ServiceSpec, Spec};

/// Bumped when the meaning of the hash changes, so old containers are replaced once.
const HASH_VERSION: &str = "1";

/// What is known of a service's env file on this host.
#[derive(Debug, Clone, PartialEq)]
pub enum EnvFile {
    /// The service has none.
    None,
    /// Read and parsed: `KEY=VALUE` pairs in file order.
    Loaded(Vec<(String, String)>),
    /// It could not be read; the service cannot be started until it can.
    Unreadable(String),
}

/// One hash per part of the container spec. The spec hash is the hash of these, and the
/// parts are kept in a label so a plan can say what changed without inspecting
/// containers. Values never appear here, only their hashes.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SpecParts {
    /// The image reference (not secret, shown in plans).
    pub image: String,
    /// Hash of the command.
    pub command: String,
    /// Hash of each committed env value, by name.
    pub env: BTreeMap<String, String>,
    /// Hash of the env file's content, when there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env_file: Option<String>,
    /// Hash of each env file's own content (decrypted, for an age file), by its path as
    /// written: so a plan names the file that changed. Left out of the spec hash, which
    /// `env_file` covers already (a key moved between files changes no container).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub env_files: BTreeMap<String, String>,
    /// Hash of each mounted repository file's content, by repository path.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub files: BTreeMap<String, String>,
    /// Hash of networks, mounts, ports and exposed ports.
    pub wiring: String,
    /// Hash of the health check.
    pub health: String,
    /// Hash of resources and stop grace.
    pub limits: String,
    /// Hash of each container option that is set, by its compose key (`user`,
    /// `tmpfs`, …). Empty, and then left out, for a service that sets none, so the
    /// hash of such a service is what it was before options existed.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub options: BTreeMap<String, String>,
    /// Hash of each of the service's own labels, by label name.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
}

/// The Docker names of a project's networks and volumes: `<project>_<name>` for those
/// berth makes, the name itself for `external` ones.
#[derive(Debug, Clone, Default)]
pub struct ObjectNames {
    project: String,
    external_networks: std::collections::BTreeSet<String>,
    external_volumes: std::collections::BTreeSet<String>,
}

impl ObjectNames {
    /// The names of `spec`'s objects.
    pub fn of(spec: &Spec) -> Self {
        Self {
            project: spec.project.clone(),
            external_networks: spec
                .networks
                .iter()
                .filter(|(_, n)| n.external)
                .map(|(k, _)| k.clone())
                .collect(),
            external_volumes: spec
                .volumes
                .iter()
                .filter(|(_, v)| v.external)
                .map(|(k, _)| k.clone())
                .collect(),
        }
    }

    /// The Docker name of network `name`.
    pub fn network(&self, name: &str) -> String {
        if self.external_networks.contains(name) {
            name.to_string()
        } else {
            format!("{}_{name}", self.project)
        }
    }

    /// The Docker name of volume `name`.
    pub fn volume(&self, name: &str) -> String {
        if self.external_volumes.contains(name) {
            name.to_string()
        } else {
            format!("{}_{name}", self.project)
        }
    }
}

/// A service of the desired state with its hash, ready to be compared with what runs.
#[derive(Debug, Clone)]
pub struct DesiredService {
    /// The validated spec.
    pub spec: ServiceSpec,
    /// Its env file on this host.
    pub env_file: EnvFile,
    /// Per-part hashes.
    pub parts: SpecParts,
    /// The spec hash: changes exactly when replicas must be recreated.
    pub hash: String,
    /// The Docker names of its networks, in the order of `spec.networks`.
    pub networks: Vec<String>,
    /// The Docker names of the named volumes it mounts, by short name.
    pub volumes: BTreeMap<String, String>,
    /// Its compose secrets on this host, by name: what to mount, or why it cannot be
    /// (never the content).
    pub secret_files: BTreeMap<String, Result<SecretFile, String>>,
}

/// A compose secret as found on this host.
#[derive(Clone, PartialEq, Eq)]
pub enum SecretFile {
    /// A file of the env directory: its real path, mounted as it is.
    Host(std::path::PathBuf),
    /// An age file of the repository, decrypted in memory: written to the runtime
    /// directory's tmpfs right before a container that mounts it is created.
    Decrypted(Arc<[u8]>),
}

impl std::fmt::Debug for SecretFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Host(p) => write!(f, "Host({})", p.display()),
            // Never the content.
            Self::Decrypted(plain) => write!(f, "Decrypted({} bytes)", plain.len()),
        }
    }
}

/// The desired state of a project, resolved against this host.
#[derive(Debug, Clone)]
pub struct Desired {
    /// The validated spec.
    pub spec: Spec,
    /// Services by name.
    pub services: BTreeMap<String, DesiredService>,
    /// The containers of compose jobs, by migration name.
    pub jobs: BTreeMap<String, DesiredService>,
}

pub(super) fn digest(parts: &[&[u8]]) -> String {
    let mut h = Sha256::new();
    for p in parts {
        h.update((p.len() as u64).to_le_bytes());
        h.update(p);
    }
    hex::encode(&h.finalize()[..8])
}

/// The spec hash of a service's parts.
fn spec_hash(parts: &SpecParts) -> String {
    let json = if parts.env_files.is_empty() {
        serde_json::to_vec(parts)
    } else {
        serde_json::to_vec(&SpecParts {
            env_files: BTreeMap::new(),
            ..parts.clone()
        })
    };
    digest(&[HASH_VERSION.as_bytes(), &json.expect("serializes")])
}

fn digest_json<T: Serialize>(v: &T) -> String {
    digest(&[&serde_json::to_vec(v).expect("plain data serializes")])
}

impl DesiredService {
    /// The aliases a replica that takes traffic holds on the network Docker names
    /// `full`: the service's name, then the service's own aliases there.
    pub fn aliases_on(&self, full: &str) -> Vec<String> {
        let mut out = vec![self.spec.name.clone()];
        let short = self
            .networks
            .iter()
            .position(|n| n == full)
            .and_then(|i| self.spec.networks.get(i));
        if let Some(extra) = short.and_then(|s| self.spec.options.aliases.get(s)) {
            out.extend(extra.iter().cloned());
        }
        out
    }

    /// Normalizes and hashes a service.
    pub fn new(spec: ServiceSpec, env_file: EnvFile, names: &ObjectNames) -> Self {
        let env = spec
            .env
            .iter()
            .map(|(k, v)| (k.clone(), digest(&[k.as_bytes(), v.as_bytes()])))
            .collect();
        let env_file_hash = match &env_file {
            EnvFile::None => None,
            EnvFile::Loaded(kvs) => {
                let flat: Vec<String> = kvs.iter().map(|(k, v)| format!("{k}={v}")).collect();
                Some(digest_json(&flat))
            }
            EnvFile::Unreadable(_) => Some("unreadable".to_string()),
        };
        let mut files = BTreeMap::new();
        let mut mounts = Vec::new();
        for m in &spec.volumes {
            let source = match &m.source {
                // An external volume is another object than a managed one of its name.
                MountSource::Volume(v) if names.external_volumes.contains(v) => {
                    format!("external-volume:{v}")
                }
                MountSource::Volume(v) => format!("volume:{v}"),
                MountSource::HostPath(p) => format!("host:{}", p.display()),
                MountSource::HostData(rel) => format!("data:./{rel}"),
                MountSource::Secret { name, .. } => format!("secret:{name}"),
                MountSource::RepoFile(f) => {
                    let h = digest(&[&f.content]);
                    files.insert(f.path.clone(), h);
                    // The content is its own part, so a changed file is named as such.
                    format!("file:{}", f.path)
                }
                MountSource::RepoDir(d) => {
                    files.insert(format!("{}/", d.path), d.digest()[..16].to_string());
                    format!("dir:{}", d.path)
                }
            };
            mounts.push((source, &m.target, m.read_only));
        }
        let networks: Vec<String> = spec
            .networks
            .iter()
            .map(|n| {
                if names.external_networks.contains(n) {
                    format!("external:{n}")
                } else {
                    n.clone()
                }
            })
            .collect();
        let wiring = digest_json(&(&networks, &spec.name, &mounts, &spec.ports, &spec.expose));
        let health = match &spec.health {
            Health::Image => "image".to_string(),
            Health::Disabled => "none".to_string(),
            Health::Check(c) => digest_json(&(
                &c.test,
                c.interval.as_millis() as u64,
                c.timeout.as_millis() as u64,
                c.retries,
                c.start_period.as_millis() as u64,
            )),
        };
        let limits = digest_json(&(
            spec.resources.memory,
            spec.resources.cpus.map(|c| (c * 1000.0).round() as u64),
            spec.stop_grace.as_millis() as u64,
        ));
        let (options, labels) = option_parts(&spec.options);
        let parts = SpecParts {
            options,
            labels,
            image: spec.image.full.clone(),
            command: digest_json(&spec.command),
            env,
            env_file: env_file_hash,
            env_files: BTreeMap::new(),
            files,
            wiring,
            health,
            limits,
        };
        let hash = spec_hash(&parts);
        let volumes = spec
            .volumes
            .iter()
            .filter_map(|m| match &m.source {
                MountSource::Volume(v) => Some((v.clone(), names.volume(v))),
                _ => None,
            })
            .collect();
        Self {
            networks: spec.networks.iter().map(|n| names.network(n)).collect(),
            volumes,
            spec,
            env_file,
            parts,
            hash,
            secret_files: BTreeMap::new(),
        }
    }

    /// Finds its compose secrets in `env_dir` under the rules of env files, and
    /// decrypts those of the repository with `keys`; a secret's content is part of the
    /// hash (as a digest), so a changed secret replaces the replicas as a changed env file
    /// does.
    pub fn resolve_secrets(&mut self, env_dir: &Path, keys: &crate::secrets::HostKeys) {
        let before = self.secret_files.len();
        for m in &self.spec.volumes {
            let MountSource::Secret { name, path, sealed } = &m.source else {
                continue;
            };
            let found = match sealed {
                Some(data) => keys
                    .decrypt(&format!("secret {}", path.display()), data)
                    .map(|plain| {
                        let d = digest(&[&plain]);
                        (SecretFile::Decrypted(plain.into()), d)
                    }),
                None => Self::host_secret(path, env_dir, keys),
            };
            // A repository file is named by its path, a host one by its name.
            let key = match sealed {
                Some(_) => format!("secret:{}", path.display()),
                None => format!("secret:{name}"),
            };
            let shown = match &found {
                Ok((_, d)) => d.clone(),
                Err(_) => "unreadable".to_string(),
            };
            self.parts.files.insert(key, shown);
            self.secret_files
                .insert(name.clone(), found.map(|(file, _)| file));
        }
        if self.secret_files.len() != before {
            self.hash = spec_hash(&self.parts);
        }
    }

    /// A secret of the env directory, with its digest; an age file there is decrypted.
    fn host_secret(
        path: &Path,
        env_dir: &Path,
        keys: &crate::secrets::HostKeys,
    ) -> Result<(SecretFile, String), String> {
        let full = if path.is_absolute() {
            path.to_path_buf()
        } else {
            env_dir.join(path)
        };
        let bytes = super::env_file::read_bytes(&full, env_dir)
            .map_err(|e| e.replacen("env_file", "secret", 1))?;
        if crate::secrets::is_sealed(&full) {
            let plain = keys.decrypt(&format!("secret {}", full.display()), &bytes)?;
            let d = digest(&[&plain]);
            return Ok((SecretFile::Decrypted(plain.into()), d));
        }
        let real = full
            .canonicalize()
            .map_err(|e| format!("secret {}: {e}", full.display()))?;
        Ok((SecretFile::Host(real), digest(&[&bytes])))
    }

    /// The parts label value.
    pub fn parts_label(&self) -> String {
        serde_json::to_string(&self.parts).expect("serializes")
    }
}

/// The hashes of the options a service sets (those at their default are left out) and
/// of its labels.
fn option_parts(o: &ContainerOptions) -> (BTreeMap<String, String>, BTreeMap<String, String>) {
    let mut out = BTreeMap::new();
    let mut put = |key: &str, set: bool, hash: String| {
        if set {
            out.insert(key.to_string(), hash);
        }
    };
    put(
        "entrypoint",
        o.entrypoint.is_some(),
        digest_json(&o.entrypoint),
    );
    put("user", o.user.is_some(), digest_json(&o.user));
    put(
        "working_dir",
        o.working_dir.is_some(),
        digest_json(&o.working_dir),
    );
    put("hostname", o.hostname.is_some(), digest_json(&o.hostname));
    put("read_only", o.read_only, digest_json(&o.read_only));
    put("init", o.init.is_some(), digest_json(&o.init));
    put(
        "stop_signal",
        o.stop_signal.is_some(),
        digest_json(&o.stop_signal),
    );
    put("tmpfs", !o.tmpfs.is_empty(), digest_json(&o.tmpfs));
    put(
        "extra_hosts",
        !o.extra_hosts.is_empty(),
        digest_json(&o.extra_hosts),
    );
    put("dns", !o.dns.is_empty(), digest_json(&o.dns));
    put("logging", o.logging.is_some(), digest_json(&o.logging));
    put("ulimits", !o.ulimits.is_empty(), digest_json(&o.ulimits));
    put("shm_size", o.shm_size.is_some(), digest_json(&o.shm_size));
    put(
        "pids_limit",
        o.pids_limit.is_some(),
        digest_json(&o.pids_limit),
    );
    put("cap_drop", !o.cap_drop.is_empty(), digest_json(&o.cap_drop));
    put(
        "security_opt",
        o.no_new_privileges,
        digest_json(&o.no_new_privileges),
    );
    put(
        "mem_reservation",
        o.mem_reservation.is_some(),
        digest_json(&o.mem_reservation),
    );
    put("tty", o.tty, digest_json(&o.tty));
    put("stdin_open", o.stdin_open, digest_json(&o.stdin_open));
    put("aliases", !o.aliases.is_empty(), digest_json(&o.aliases));
    let labels = o
        .labels
        .iter()
        .map(|(k, v)| (k.clone(), digest(&[k.as_bytes(), v.as_bytes()])))
        .collect();
    (out, labels)
}

/// The host a desired state is resolved for: its name and labels decide placement.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Host {
    /// The host's name (`--host`, default the machine's hostname).
    pub name: String,
    /// Its labels (`--host-label KEY=VALUE`).
    pub labels: BTreeMap<String, String>,
    /// Where its env files live (`--env-dir`, with `<project>` filled in); `None` for
    /// `/etc/berth/<project>/`.
    pub env_dir: Option<std::path::PathBuf>,
    /// The identities it decrypts age files with (`--age-identity`).
    #[serde(skip)]
    pub keys: crate::secrets::HostKeys,
}

impl Desired {
    /// Resolves a spec for `host`: only the services placed on it (and the migrations of
    /// those), each env file read once. A service placed elsewhere is, for this host,
    /// not desired, so what runs of it here is pruned.
    pub fn resolve_for(mut spec: Spec, host: &Host) -> Self {
        spec.services
            .retain(|_, s| s.placement.admits(&host.name, &host.labels));
        let placed: std::collections::BTreeSet<String> = spec.services.keys().cloned().collect();
        spec.migrations.retain(|_, m| placed.contains(&m.from));
        for m in spec.migrations.values_mut() {
            m.gates.retain(|g| placed.contains(g));
        }
        let dir = super::env_file::env_dir(host.env_dir.as_deref(), &spec.project);
        Self::resolve_with(spec, &dir, &host.keys)
    }

    /// The container a migration runs with: a compose job's own, else its `from`
    /// service's.
    pub fn migration_container(&self, m: &MigrationSpec) -> Option<&DesiredService> {
        if m.job.is_some() {
            self.jobs.get(&m.name)
        } else {
            self.services.get(&m.from)
        }
    }

    /// Resolves a spec with every service, reading each env file once from `env_dir`.
    pub fn resolve(spec: Spec, env_dir: &Path) -> Self {
        Self::resolve_with(spec, env_dir, &crate::secrets::HostKeys::default())
    }

    /// As [`Desired::resolve`], decrypting age files with `keys`.
    pub fn resolve_with(spec: Spec, env_dir: &Path, keys: &crate::secrets::HostKeys) -> Self {
        type Read = (EnvFile, BTreeMap<String, String>);
        let mut cache: BTreeMap<Vec<crate::model::EnvFileRef>, Read> = BTreeMap::new();
        let names = ObjectNames::of(&spec);
        let mut resolve_one = |s: &ServiceSpec| {
            let (env_file, digests) = cache
                .entry(s.env_files.clone())
                .or_insert_with(|| super::env_file::read_with(&s.env_files, env_dir, keys))
                .clone();
            let mut d = DesiredService::new(s.clone(), env_file, &names);
            // Left out of the hash: no new hash to compute.
            d.parts.env_files = digests;
            d.resolve_secrets(env_dir, keys);
            d
        };
        let services = spec
            .services
            .values()
            .map(|s| (s.name.clone(), resolve_one(s)))
            .collect();
        let jobs = spec
            .migrations
            .values()
            .filter_map(|m| m.job.as_ref().map(|j| (m.name.clone(), resolve_one(j))))
            .collect();
        Self {
            spec,
            services,
            jobs,
        }
    }
}
