//! `services.<name>`: one service of format v1 read into a [`ServiceSpec`], key by key,
//! then checked as a whole (published ports against replicas, the canary against the
//! placement).

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::time::Duration;

use serde_yaml::Value;

use super::super::context::{kind, Ctx};
use super::super::diagnostic::shown;
use super::super::image::ImageRef;
use super::super::location::KeyPath;
use super::super::raw::{KnownKeys, RawService};
use super::super::spec::*;
use super::depends::depends_on;
use super::health::health;
use super::mount::mounts;
use super::placement::placement;
use super::ports::{expose, ports};
use super::resources::resources;
use super::scalars::{duration, integer, scalar, string, string_list};
use super::update::{default_update, update};
use super::Entry;
use super::{raw, valid_name, MAX_REPLICAS};

/// What a service may refer to: the project's networks, volumes and services.
pub(super) struct Scope<'a> {
    /// The networks a service may join; it joins all of them when it names none.
    pub networks: &'a [String],
    /// Declared volumes, which a mount may name.
    pub volumes: &'a BTreeMap<String, VolumeSpec>,
    /// Every name under `services:`, valid or not, which `depends_on` may name.
    pub services: &'a BTreeSet<&'a str>,
}

/// The service `name` defined by `entry` at `path`; `None` when it has errors (all
/// reported).
pub(super) fn service(
    ctx: &mut Ctx,
    name: &str,
    entry: &Entry,
    path: &KeyPath,
    scope: &Scope,
) -> Option<ServiceSpec> {
    let file = entry.file;
    let mut ok = true;
    if !valid_name(name, 31, &[]) {
        ctx.key_error(file, path, format!("service name `{name}` is invalid; use a lowercase letter then up to 30 lowercase letters, digits or `-` (it becomes a container name and a network alias)"));
        ok = false;
    }
    let keys = &KnownKeys::get().service;
    let raw: RawService = raw(ctx, file, path, &entry.value, keys, "a service")?;
    let p = |k: &str| path.key(k);

    let image = match &raw.image {
        None => {
            ctx.key_error(file, path, "`image` is missing; add a pinned image such as `registry.example.com/app:sha-3f2c1e9`");
            None
        }
        Some(v) => pinned_image(ctx, file, &p("image"), v, "app:sha-3f2c1e9"),
    };
    let replicas = raw.replicas.as_ref().map_or(Some(1), |v| {
        integer(ctx, file, &p("replicas"), v, 0, MAX_REPLICAS).map(|n| n as u32)
    });
    let command = raw.command.as_ref().map_or(Some(None), |v| {
        command(ctx, file, &p("command"), v).map(Some)
    });
    let env = raw
        .env
        .as_ref()
        .map_or(Some(BTreeMap::new()), |v| env_map(ctx, file, &p("env"), v));
    let env_files = raw.env_file.as_ref().map_or(Some(Vec::new()), |v| {
        env_file(ctx, file, &p("env_file"), v, name)
    });
    let expose = raw
        .expose
        .as_ref()
        .map_or(Some(Vec::new()), |v| expose(ctx, file, &p("expose"), v));
    let ports = raw
        .ports
        .as_ref()
        .map_or(Some(Vec::new()), |v| ports(ctx, file, &p("ports"), v));
    let networks = match &raw.networks {
        None => Some(scope.networks.to_vec()),
        Some(v) => networks(ctx, file, &p("networks"), v, scope.networks),
    };
    let mounts = raw.volumes.as_ref().map_or(Some(Vec::new()), |v| {
        mounts(ctx, file, &p("volumes"), v, scope.volumes)
    });
    let health = raw
        .health
        .as_ref()
        .map_or(Some(Health::Image), |v| health(ctx, file, &p("health"), v));
    if raw.health.is_none() && replicas.unwrap_or(1) > 0 {
        ctx.warning(file, path, "no `health` check; berth uses the image's HEALTHCHECK, and a replica of an image without one counts healthy after `update.monitor` of running");
    }
    let resources = raw
        .resources
        .as_ref()
        .map_or(Some(Resources::default()), |v| {
            resources(ctx, file, &p("resources"), v)
        });
    let stop_grace = raw
        .stop_grace
        .as_ref()
        .map_or(Some(Duration::from_secs(10)), |v| {
            duration(
                ctx,
                file,
                &p("stop_grace"),
                v,
                Duration::ZERO,
                Duration::from_secs(3600),
            )
        });
    let publishes = ports.as_ref().is_some_and(|p| !p.is_empty());
    let update = match &raw.update {
        None => Some(default_update(publishes)),
        Some(v) => update(ctx, file, &p("update"), v, publishes),
    };
    let depends_on = raw.depends_on.as_ref().map_or(Some(Vec::new()), |v| {
        depends_on(ctx, file, &p("depends_on"), v, name, scope.services)
    });
    let placement = raw
        .placement
        .as_ref()
        .map_or(Some(Placement::default()), |v| {
            placement(ctx, file, &p("placement"), v)
        });

    ok &= check_published_replicas(
        ctx,
        file,
        &path.key("replicas"),
        name,
        ports.as_deref(),
        replicas,
    );
    ok &= check_canary(
        ctx,
        file,
        &path.key("update").key("canary"),
        "in `placement.hosts`",
        name,
        update.as_ref(),
        placement.as_ref(),
    );
    if !ok {
        return None;
    }
    Some(ServiceSpec {
        name: name.to_string(),
        image: image?,
        replicas: replicas?,
        command: command?,
        env: env?,
        env_files: env_files?,
        expose: expose?,
        ports: ports?,
        networks: networks?,
        volumes: mounts?,
        health: health?,
        resources: resources?,
        stop_grace: stop_grace?,
        update: update?,
        depends_on: depends_on?,
        placement: placement?,
        options: ContainerOptions::default(),
    })
}

/// An image reference that is pinned: a tag other than `latest`, or a digest.
/// `example` is the form shown when the value is not a string.
pub(crate) fn pinned_image(
    ctx: &mut Ctx,
    file: usize,
    path: &KeyPath,
    v: &Value,
    example: &str,
) -> Option<ImageRef> {
    let s = string(ctx, file, path, v, example)?;
    match ImageRef::parse(&s) {
        Ok(img) if img.is_pinned() => Some(img),
        Ok(img) => {
            let why = if img.tag.is_some() {
                "`latest` moves"
            } else {
                "no tag means `latest`, which moves"
            };
            ctx.error(file, path, format!("image `{s}` is not pinned ({why}); use an explicit tag such as `{}:sha-<git sha>` or a digest", img.repository));
            None
        }
        Err(e) => {
            ctx.error(file, path, e);
            None
        }
    }
}

/// `command`: a non-empty list; left out, the image's own command runs.
fn command(ctx: &mut Ctx, file: usize, path: &KeyPath, v: &Value) -> Option<Vec<String>> {
    let c = string_list(
        ctx,
        file,
        path,
        v,
        "`command`",
        "[\"uvicorn\", \"app:app\"]",
    )?;
    if c.is_empty() {
        ctx.error(
            file,
            path,
            "`command` is empty; leave it out to use the image's command",
        );
        return None;
    }
    Some(c)
}

/// `env`: a mapping of variable names to scalar values.
fn env_map(
    ctx: &mut Ctx,
    file: usize,
    path: &KeyPath,
    v: &Value,
) -> Option<BTreeMap<String, String>> {
    let Value::Mapping(m) = v else {
        ctx.error(
            file,
            path,
            format!(
                "`env` must be a mapping such as {{ LOG_LEVEL: info }}; found {}",
                kind(v)
            ),
        );
        return None;
    };
    let mut out = BTreeMap::new();
    let mut good = true;
    for (k, val) in m {
        let Some(key) = k.as_str() else {
            ctx.key_error(
                file,
                path,
                format!("env names must be strings; found {}", kind(k)),
            );
            good = false;
            continue;
        };
        let p = path.key(key);
        let valid = key
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !valid {
            ctx.key_error(file, &p, format!("env name `{key}` is invalid; use letters, digits and `_`, not starting with a digit"));
            good = false;
            continue;
        }
        match scalar(val) {
            Some(s) => {
                out.insert(key.to_string(), s);
            }
            None => {
                ctx.error(file, &p, format!("env `{key}` must be a string, number or boolean; found {} (write \"\" for an empty value)", kind(val)));
                good = false;
            }
        }
    }
    good.then_some(out)
}

/// `env_file`: one absolute path on the host; secrets do not live in the repository.
fn env_file(
    ctx: &mut Ctx,
    file: usize,
    path: &KeyPath,
    v: &Value,
    service: &str,
) -> Option<Vec<EnvFileRef>> {
    let s = string(ctx, file, path, v, "/etc/berth/shop/api.env")?;
    if !s.starts_with('/') {
        ctx.error(file, path, format!("env_file `{s}` must be an absolute path on the host (e.g. `/etc/berth/<project>/{service}.env`); secrets do not live in the repository"));
        return None;
    }
    Some(vec![EnvFileRef {
        path: PathBuf::from(s),
        required: true,
        sealed: None,
    }])
}

/// `networks`: a non-empty list of declared networks.
fn networks(
    ctx: &mut Ctx,
    file: usize,
    path: &KeyPath,
    v: &Value,
    declared: &[String],
) -> Option<Vec<String>> {
    let list = string_list(ctx, file, path, v, "`networks`", "[backend]")?;
    let mut good = true;
    for (i, n) in list.iter().enumerate() {
        if !declared.contains(n) {
            // Past the diagnostics kept, no hint is worked out: each costs a pass over
            // every name.
            let hint = if ctx.is_full() {
                String::new()
            } else {
                let known: Vec<&str> = declared.iter().map(String::as_str).collect();
                super::super::diagnostic::nearest(n, &known)
                    .map(|k| format!("; did you mean `{k}`?"))
                    .unwrap_or_else(|| {
                        format!(
                            "; declare it under `networks:` (declared: {})",
                            known.join(", ")
                        )
                    })
            };
            ctx.error(
                file,
                &path.index(i),
                format!("network `{}` is not declared{hint}", shown(n)),
            );
            good = false;
        }
    }
    if list.is_empty() {
        ctx.error(
            file,
            path,
            "`networks` is empty; a service joins at least one network (leave it out for all)",
        );
        good = false;
    }
    good.then_some(list)
}

/// A service publishing host ports runs one replica: more would all bind the port. The
/// error is reported at `at`, the key that says the count in each format.
pub(crate) fn check_published_replicas(
    ctx: &mut Ctx,
    file: usize,
    at: &KeyPath,
    name: &str,
    ports: Option<&[PortMapping]>,
    replicas: Option<u32>,
) -> bool {
    let (Some(ports), Some(n)) = (ports, replicas) else {
        return true;
    };
    if n > 1 && !ports.is_empty() {
        ctx.error(file, at, format!("`{name}` publishes host port {} and has {n} replicas, which would all bind it; use 1 replica, or publish through the proxy", ports[0].host_port));
        return false;
    }
    true
}

/// The canary host must be one the placement admits, or the other hosts would wait for
/// it forever. `at` is the canary's key and `hosts` says where the admitted hosts are
/// written, in each format.
pub(crate) fn check_canary(
    ctx: &mut Ctx,
    file: usize,
    at: &KeyPath,
    hosts: &str,
    name: &str,
    update: Option<&UpdatePolicy>,
    placement: Option<&Placement>,
) -> bool {
    let (Some(u), Some(pl)) = (update, placement) else {
        return true;
    };
    if let Some(c) = &u.canary {
        if !pl.hosts.is_empty() && !pl.hosts.contains(c) {
            ctx.error(file, at, format!("canary host `{c}` is not {hosts}, so it never runs `{name}` and the other hosts would wait for it forever; name one of {}", pl.hosts.join(", ")));
            return false;
        }
    }
    true
}
