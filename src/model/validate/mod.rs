//! Phase two: the rules of desired-state format v1, turning raw entries into a [`Spec`].
//! Every rule reports through the context and carries on, so one pass finds every error.
//!
//! This file holds the top level (project, networks, volumes); [`service`] reads one
//! service with the readers of [`ports`], [`mount`], [`health`], [`resources`],
//! [`placement`], [`update`] and [`depends`]; [`migration`] reads one migration; and
//! [`scalars`] the single values every reader shares with the compose reader.

mod depends;
mod health;
mod migration;
mod mount;
mod placement;
mod ports;
mod resources;
mod scalars;
pub(super) mod service;
mod update;

use std::collections::{BTreeMap, BTreeSet};

use serde_yaml::Value;

use super::context::{is_known, kind, Ctx};
use super::location::KeyPath;
use super::raw::KnownKeys;
use super::spec::*;

pub(crate) use depends::check_cycles;
pub(crate) use mount::mount;
pub(crate) use ports::{check_ports, parse_port};
pub(crate) use resources::resources;
pub(crate) use scalars::{describe, duration, integer, scalar, string, string_list};
pub(crate) use service::pinned_image;
pub(crate) use update::default_update;

/// The merged top level of every file: what loading reads (phase one) and these rules
/// take.
pub(crate) struct Merged {
    /// `project`, with the file that set it.
    pub project: Option<(usize, Value)>,
    pub networks: BTreeMap<String, Entry>,
    pub volumes: BTreeMap<String, Entry>,
    pub services: BTreeMap<String, Entry>,
    pub migrations: BTreeMap<String, Entry>,
}

/// A named entry (`services.api`, …) with the file that defined it.
pub(crate) struct Entry {
    pub file: usize,
    pub value: Value,
}

/// The most replicas one service may ask for on one host.
pub(super) const MAX_REPLICAS: i64 = 1000;

/// The network every service joins when the file declares none.
const DEFAULT_NETWORK: &str = "default";

/// Rules for names: project, services and migrations become parts of container names
/// and network aliases.
pub(crate) fn valid_name(s: &str, max: usize, extra: &[char]) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_lowercase())
        && s.len() <= max
        && chars
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || extra.contains(&c))
}

/// Runs every rule; `None` only when the input is too broken to build a spec from.
pub(crate) fn validate(ctx: &mut Ctx, merged: Merged) -> Option<Spec> {
    let root = KeyPath::root();
    let project = project(ctx, merged.project.as_ref());

    let networks: BTreeMap<String, NetworkSpec> = named_objects(ctx, &merged.networks, "networks")
        .into_iter()
        .map(|(name, external)| (name, NetworkSpec { external }))
        .collect();
    let volumes: BTreeMap<String, VolumeSpec> = named_objects(ctx, &merged.volumes, "volumes")
        .into_iter()
        .map(|(name, external)| (name, VolumeSpec { external }))
        .collect();
    let network_names: Vec<String> = if networks.is_empty() {
        vec![DEFAULT_NETWORK.to_string()]
    } else {
        networks.keys().cloned().collect()
    };

    let all_services: BTreeSet<&str> = merged.services.keys().map(String::as_str).collect();
    let scope = service::Scope {
        networks: &network_names,
        volumes: &volumes,
        services: &all_services,
    };
    let mut services = BTreeMap::new();
    for (name, entry) in &merged.services {
        let path = root.key("services").key(name);
        if let Some(svc) = service::service(ctx, name, entry, &path, &scope) {
            services.insert(name.clone(), svc);
        }
    }
    if merged.services.is_empty() && merged.project.is_some() {
        let file = merged.project.as_ref().map(|p| p.0).unwrap_or(0);
        ctx.error(
            file,
            &root,
            "`services` is missing or empty; define at least one service",
        );
    }
    check_ports(ctx, &merged, &services);
    check_cycles(ctx, &merged, &services);

    let mut migrations = BTreeMap::new();
    for (name, entry) in &merged.migrations {
        let path = root.key("migrations").key(name);
        if let Some(m) = migration::migration(ctx, name, entry, &path, &services, &all_services) {
            migrations.insert(name.clone(), m);
        }
    }

    let networks = if networks.is_empty() {
        BTreeMap::from([(DEFAULT_NETWORK.to_string(), NetworkSpec::default())])
    } else {
        networks
    };
    Some(Spec {
        project: project?,
        networks,
        volumes,
        services,
        migrations,
        secrets: Vec::new(),
    })
}

/// `project`, with the file that set it. Its absence is reported only when nothing
/// else is wrong: a file that failed to parse does not also lack a project.
fn project(ctx: &mut Ctx, project: Option<&(usize, Value)>) -> Option<String> {
    let at = KeyPath::root().key("project");
    match project {
        None => {
            if !ctx.files.is_empty() && !ctx.has_errors() {
                ctx.error(0, &KeyPath::root(), "`project` is missing; add e.g. `project: shop` (it prefixes every container, network and volume)");
            }
            None
        }
        Some((file, Value::String(p))) => {
            if valid_name(p, 31, &[]) {
                Some(p.clone())
            } else {
                ctx.error(*file, &at, format!("project name `{p}` is invalid; use a lowercase letter then up to 30 lowercase letters, digits or `-` (e.g. `shop`)"));
                None
            }
        }
        Some((file, other)) => {
            let msg = format!(
                "`project` must be a string such as `shop`; found {}",
                kind(other)
            );
            ctx.error(*file, &at, msg);
            None
        }
    }
}

/// The networks or volumes of a section, each with its `external` flag.
fn named_objects(
    ctx: &mut Ctx,
    entries: &BTreeMap<String, Entry>,
    section: &str,
) -> BTreeMap<String, bool> {
    let keys = KnownKeys::get();
    let known = if section == "networks" {
        &keys.network
    } else {
        &keys.volume
    };
    let mut out = BTreeMap::new();
    for (name, entry) in entries {
        let path = KeyPath::root().key(section).key(name);
        if !valid_name(name, 63, &['_']) {
            ctx.key_error(entry.file, &path, format!("name `{name}` is invalid; use a lowercase letter then lowercase letters, digits, `-` or `_`"));
            continue;
        }
        let mut external = false;
        match &entry.value {
            Value::Null => {}
            Value::Mapping(m) => {
                ctx.all_known(entry.file, &path, m, known);
                match m.get("external") {
                    None => {}
                    Some(Value::Bool(b)) => external = *b,
                    Some(other) => {
                        ctx.error(
                            entry.file,
                            &path.key("external"),
                            format!("expected `true` or `false`; found {}", kind(other)),
                        );
                        continue;
                    }
                }
            }
            other => {
                ctx.error(
                    entry.file,
                    &path,
                    format!("expected `{{}}` (a mapping); found {}", kind(other)),
                );
                continue;
            }
        }
        out.insert(name.clone(), external);
    }
    out
}

/// Checks a section entry's keys and reads it as the raw type `T`.
fn raw<T: Default + serde::de::DeserializeOwned>(
    ctx: &mut Ctx,
    file: usize,
    path: &KeyPath,
    value: &Value,
    known: &[&str],
    what: &str,
) -> Option<T> {
    match value {
        Value::Mapping(m) => {
            // Every field is an optional YAML value, so this cannot fail on content.
            if ctx.all_known(file, path, m, known) {
                T::deserialize(value).ok()
            } else {
                let mut kept = m.clone();
                kept.retain(|k, _| is_known(k, known));
                serde_yaml::from_value(Value::Mapping(kept)).ok()
            }
        }
        Value::Null => Some(T::default()),
        other => {
            ctx.error(
                file,
                path,
                format!("{what} must be a mapping; found {}", kind(other)),
            );
            None
        }
    }
}
