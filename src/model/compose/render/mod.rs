//! A validated [`Spec`] written back as a compose file, the way `docker compose config`
//! prints a resolved project: every default filled in, every value interpolated, keys
//! sorted. A format v1 stack comes out in compose terms; what compose has no key for
//! goes under `x-berth`.
//!
//! Every string value is written with `$` doubled, so the file reads back through the
//! compose reader to the same spec instead of being interpolated again. What is shown
//! of secrets is up to the caller's [`Masking`].

//!
//! The project's keys are written here, a service's in [`service`].

mod service;

use std::collections::BTreeMap;

use serde::Serialize;

use super::super::spec::*;
use super::super::units::format_duration;

use service::service;
pub(crate) use service::{Dependency, JobBerth, Service};

/// What the caller hides: `redact` masks secret values wherever they appear in a
/// string, and an environment variable whose name `secret_name` accepts is shown as
/// [`MASK`] whatever its value.
pub(crate) struct Masking<'a> {
    /// Masks every known secret value inside a string.
    pub redact: &'a dyn Fn(&str) -> String,
    /// True for environment names whose values are secret.
    pub secret_name: &'a dyn Fn(&str) -> bool,
}

/// What a masked value is shown as.
pub(crate) const MASK: &str = "***";

/// A compose project. Fields are declared in alphabetical order, so that the
/// serialized keys are sorted.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct Project {
    /// The project's name, which prefixes every container, network and volume.
    pub name: String,
    /// Networks by their name in the spec.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub networks: BTreeMap<String, Object>,
    /// Secrets: each one's file in the host's env directory.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub secrets: BTreeMap<String, SecretDef>,
    /// Services by name.
    pub services: BTreeMap<String, Service>,
    /// Named volumes by their name in the spec.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub volumes: BTreeMap<String, Object>,
    /// What compose cannot say at the top level: format v1's migrations.
    #[serde(rename = "x-berth", skip_serializing_if = "Option::is_none")]
    pub x_berth: Option<ProjectBerth>,
}

/// A top-level secret.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct SecretDef {
    /// Its file, relative to the env directory or absolute.
    pub file: String,
}

/// A top-level network or volume.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub(crate) struct Object {
    /// Made outside berth; only written when true.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub external: Option<bool>,
    /// An external object's own name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

/// Top-level `x-berth`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct ProjectBerth {
    /// One-shot migrations by name.
    pub migrations: BTreeMap<String, Migration>,
}

/// A format v1 migration.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct Migration {
    /// The command run.
    pub command: Vec<String>,
    /// The service whose image and environment it runs with.
    pub from: String,
    /// Services that wait for it.
    pub gates: Vec<String>,
    /// The only host that runs it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub run_on: Option<String>,
    /// Killed after this long.
    pub timeout: String,
}

/// The compose project of `spec`, for a file written in the repository-relative
/// directory `dir` (repository files are mounted relative to it).
pub(crate) fn project(spec: &Spec, dir: &str, masking: &Masking) -> Project {
    let show = |s: &str| literal(&(masking.redact)(s));
    let objects = |external: &dyn Fn(&str) -> bool, names: Vec<&String>| {
        names
            .into_iter()
            .map(|n| {
                let object = if external(n) {
                    Object {
                        external: Some(true),
                        name: Some(show(n)),
                    }
                } else {
                    Object::default()
                };
                (n.clone(), object)
            })
            .collect::<BTreeMap<_, _>>()
    };
    let networks = objects(
        &|n| spec.networks[n].external,
        spec.networks.keys().collect(),
    );
    let volumes = objects(&|n| spec.volumes[n].external, spec.volumes.keys().collect());
    let mut services: BTreeMap<String, Service> = spec
        .services
        .iter()
        .map(|(name, s)| (name.clone(), service(s, dir, masking)))
        .collect();
    for (name, m) in &spec.migrations {
        let Some(job) = &m.job else { continue };
        let mut out = service(job, dir, masking);
        out.restart = Some("no");
        out.x_berth.migration = Some(JobBerth {
            run_on: m.run_on.as_deref().map(|h| literal(&(masking.redact)(h))),
            timeout: format_duration(m.timeout),
        });
        for g in &m.gates {
            if let Some(gated) = services.get_mut(g) {
                gated.depends_on.insert(
                    name.clone(),
                    Dependency {
                        condition: "service_completed_successfully",
                        required: true,
                    },
                );
            }
        }
        services.insert(name.clone(), out);
    }
    let v1: Vec<_> = spec
        .migrations
        .iter()
        .filter(|(_, m)| m.job.is_none())
        .collect();
    let x_berth = (!v1.is_empty()).then(|| ProjectBerth {
        migrations: v1
            .into_iter()
            .map(|(name, m)| {
                (
                    name.clone(),
                    Migration {
                        command: m.command.iter().map(|c| show(c)).collect(),
                        from: m.from.clone(),
                        gates: m.gates.clone(),
                        run_on: m.run_on.as_deref().map(show),
                        timeout: format_duration(m.timeout),
                    },
                )
            })
            .collect(),
    });
    let secrets = spec
        .services
        .values()
        .flat_map(|s| &s.volumes)
        .filter_map(|m| match &m.source {
            MountSource::Secret { name, path, .. } => Some((
                name.clone(),
                SecretDef {
                    file: literal(&path.to_string_lossy()),
                },
            )),
            _ => None,
        })
        .collect();
    Project {
        name: spec.project.clone(),
        networks,
        secrets,
        services,
        volumes,
        x_berth,
    }
}

/// `text` as a compose value that interpolates to itself: `$` doubled.
pub(crate) fn literal(text: &str) -> String {
    text.replace('$', "$$")
}

/// The repository path `path` as written in a file of the directory `dir`:
/// `./files/app.conf`, `../shared/app.conf`.
pub(crate) fn relative(dir: &str, path: &str) -> String {
    let dir: Vec<&str> = dir.split('/').filter(|p| !p.is_empty()).collect();
    let target: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
    let common = dir.iter().zip(&target).take_while(|(a, b)| a == b).count();
    let ups = dir.len() - common;
    let rest = target[common..].join("/");
    if ups == 0 {
        format!("./{rest}")
    } else {
        format!("{}{rest}", "../".repeat(ups))
    }
}

/// A size in bytes in the largest unit that holds it exactly (`512m`, `1g`).
pub(crate) fn format_size(bytes: u64) -> String {
    for (unit, shift) in [("t", 40), ("g", 30), ("m", 20), ("k", 10)] {
        if bytes != 0 && bytes.is_multiple_of(1 << shift) {
            return format!("{}{unit}", bytes >> shift);
        }
    }
    bytes.to_string()
}
