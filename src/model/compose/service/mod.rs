//! One compose service mapped into a [`ServiceSpec`]. Every key is looked up in
//! [`super::keys`]: mapped, refused, ignored with a warning, or reported as not
//! supported yet. Values are checked with format v1's typed readers, so a duration or a
//! port means the same in both formats.
//!
//! This file sorts the keys and puts the service together; each group of keys has its
//! reader: [`environment`], [`ports`], [`networks`], [`volumes`], [`healthcheck`],
//! [`deploy`] (with `restart` and the short resource limits), [`update`] and
//! [`depends`]. The option keys are [`super::options`]'.

mod depends;
mod deploy;
mod environment;
mod healthcheck;
mod networks;
mod ports;
mod sort;
mod update;
mod volumes;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use serde_yaml::Value;

use super::super::context::{kind, Ctx};
use super::super::image::ImageRef;
use super::super::location::KeyPath;
use super::super::spec::*;
use super::super::validate::service::{check_canary, check_published_replicas};
use super::super::validate::{
    duration, integer, pinned_image, string_list, valid_name, MAX_REPLICAS,
};
use super::options;
use deploy::Deploy;
use networks::Aliases;
use sort::sort_keys;

/// What a service may refer to: the project's networks, volumes and services.
pub(crate) struct Scope<'a> {
    /// Compose network name → the name in the spec (an external network's own name).
    pub networks: &'a BTreeMap<String, String>,
    /// Compose volume name → the name in the spec.
    pub volumes: &'a BTreeMap<String, String>,
    /// The spec's volumes, by their name in the spec.
    pub volume_specs: &'a BTreeMap<String, VolumeSpec>,
    /// Services that are deployed.
    pub services: &'a BTreeSet<String>,
    /// Services left out because they have `profiles`.
    pub left_out: &'a BTreeSet<String>,
    /// The top-level `secrets` and `configs`.
    pub files: &'a super::files::Files,
    /// Jobs: services others wait for with `service_completed_successfully`, or that
    /// carry `x-berth.migration`; they run to completion instead of being kept up.
    pub jobs: &'a BTreeSet<String>,
}

/// The network a service joins when it names none, as in compose.
pub(crate) const DEFAULT_NETWORK: &str = "default";

/// Maps the service `name` written at `path`; `None` when it has errors (all reported).
pub(crate) fn compile(
    ctx: &mut Ctx,
    file: usize,
    name: &str,
    path: &KeyPath,
    def: &Value,
    scope: &Scope,
) -> Option<ServiceSpec> {
    let mut ok = true;
    if !valid_name(name, 31, &['_']) {
        ctx.key_error(file, path, format!("service name `{name}` is not supported; use a lowercase letter then up to 30 lowercase letters, digits, `-` or `_` (it becomes a container name and a network alias)"));
        ok = false;
    }
    let map = match def {
        Value::Mapping(m) => m,
        other => {
            ctx.error(
                file,
                path,
                format!("a service must be a mapping; found {}", kind(other)),
            );
            return None;
        }
    };
    let keys = sort_keys(ctx, file, path, map, &mut ok);
    let get = |k: &str| keys.mapped.get(k).copied();
    let p = |k: &str| path.key(k);

    let image = image(ctx, file, path, get("image"), map.contains_key("build"));
    let job = scope.jobs.contains(name);
    let deploy = get("deploy").map_or(Some(Deploy::default()), |v| {
        deploy::deploy(ctx, file, &p("deploy"), v, job)
    });
    let replicas = replicas(ctx, file, path, get("scale"), deploy.as_ref());
    let command = get("command").map_or(Some(None), |v| {
        command(ctx, file, &p("command"), v).map(Some)
    });
    let env = get("environment").map_or(Some(BTreeMap::new()), |v| {
        environment::environment(ctx, file, &p("environment"), v)
    });
    let env_files = get("env_file").map_or(Some(Vec::new()), |v| {
        environment::env_file(ctx, file, &p("env_file"), v, name)
    });
    let ports = get("ports").map_or(Some(Vec::new()), |v| {
        ports::ports(ctx, file, &p("ports"), v)
    });
    let expose = get("expose").map_or(Some(Vec::new()), |v| {
        ports::expose(ctx, file, &p("expose"), v)
    });
    let (networks, aliases) = service_networks(ctx, file, path, get("networks"), scope);
    let volumes = get("volumes").map_or(Some((Vec::new(), Vec::new())), |v| {
        volumes::volumes(ctx, file, &p("volumes"), v, scope)
    });
    let runs = replicas.unwrap_or(1) > 0 && !job;
    let health = health(ctx, file, path, get("healthcheck"), runs);
    let resources = resources(
        ctx,
        file,
        path,
        (get("mem_limit"), get("cpus")),
        deploy.as_ref(),
    );
    let stop_grace = stop_grace(ctx, file, path, get("stop_grace_period"));
    if let Some(v) = get("restart") {
        deploy::restart(ctx, file, &p("restart"), v, job);
    }
    let depends_on = get("depends_on").map_or(Some(Vec::new()), |v| {
        depends::depends_on(ctx, file, &p("depends_on"), v, name, scope)
    });

    let publishes = ports.as_ref().is_some_and(|p| !p.is_empty());
    let update = deploy
        .as_ref()
        .and_then(|d| update::update(ctx, file, path, d.update.as_ref(), keys.berth, publishes));
    let placement = deploy.as_ref().and_then(|d| d.placement.clone());
    ok &= check_published_replicas(
        ctx,
        file,
        &path.key("ports"),
        name,
        ports.as_deref(),
        replicas,
    );
    ok &= check_canary(
        ctx,
        file,
        &path.key("x-berth").key("canary"),
        "among the `node.hostname` constraints",
        name,
        update.as_ref(),
        placement.as_ref(),
    );

    let options = options::compile(ctx, file, path, &get);
    let options = merge_options(
        ctx,
        file,
        path,
        options,
        volumes.as_ref(),
        deploy.as_ref(),
        resources.as_ref(),
    );
    let mut volumes = volumes.map(|(mounts, _)| mounts);
    let files = [("secrets", get("secrets")), ("configs", get("configs"))];
    ok &= file_mounts(ctx, file, path, files, scope, volumes.as_mut());
    let options = options.map(|o| ContainerOptions { aliases, ..o });

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
        volumes: volumes?,
        health: health?,
        resources: resources?,
        stop_grace: stop_grace?,
        update: update?,
        depends_on: depends_on?,
        placement: placement?,
        options: options?,
    })
}

/// `image`, which must be pinned. Without one, a service that only has `build` is told
/// that berth deploys images built elsewhere.
fn image(
    ctx: &mut Ctx,
    file: usize,
    path: &KeyPath,
    v: Option<&Value>,
    builds: bool,
) -> Option<ImageRef> {
    let Some(v) = v else {
        let msg = if builds {
            "`image` is missing: berth deploys images: build in CI and pin the tag (e.g. `image: ghcr.io/owner/app:sha-3f2c1e9`)"
        } else {
            "`image` is missing; add a pinned image such as `ghcr.io/owner/app:sha-3f2c1e9`"
        };
        ctx.key_error(file, path, msg);
        return None;
    };
    pinned_image(
        ctx,
        file,
        &path.key("image"),
        v,
        "ghcr.io/owner/app:sha-3f2c1e9",
    )
}

/// `healthcheck`. Without one, a service that `runs` replicas (a job is not kept up)
/// is warned that the image's own check decides.
fn health(
    ctx: &mut Ctx,
    file: usize,
    path: &KeyPath,
    v: Option<&Value>,
    runs: bool,
) -> Option<Health> {
    let Some(v) = v else {
        if runs {
            ctx.warning(file, path, "no `healthcheck`; berth uses the image's HEALTHCHECK, and a replica of an image without one counts healthy after `deploy.update_config.monitor` of running");
        }
        return Some(Health::Image);
    };
    healthcheck::healthcheck(ctx, file, &path.key("healthcheck"), v)
}

/// `stop_grace_period`: up to an hour between SIGTERM and SIGKILL, 10s when left out.
fn stop_grace(ctx: &mut Ctx, file: usize, path: &KeyPath, v: Option<&Value>) -> Option<Duration> {
    let Some(v) = v else {
        return Some(Duration::from_secs(10));
    };
    duration(
        ctx,
        file,
        &path.key("stop_grace_period"),
        v,
        Duration::ZERO,
        Duration::from_secs(3600),
    )
}

/// The replicas: `scale` or `deploy.replicas`, which must agree when both are given;
/// one when neither is.
fn replicas(
    ctx: &mut Ctx,
    file: usize,
    path: &KeyPath,
    scale: Option<&Value>,
    deploy: Option<&Deploy>,
) -> Option<u32> {
    let from_deploy = deploy.and_then(|d| d.replicas);
    let Some(v) = scale else {
        return Some(from_deploy.unwrap_or(1));
    };
    let at = path.key("scale");
    let n = integer(ctx, file, &at, v, 0, MAX_REPLICAS)?;
    match from_deploy {
        Some(d) if d != n as u32 => {
            ctx.error(
                file,
                &at,
                format!("`scale: {n}` and `deploy.replicas: {d}` disagree; keep one"),
            );
            None
        }
        _ => Some(n as u32),
    }
}

/// The networks joined (`default` when none is named) and the aliases on each; the
/// networks are `None` after an error.
fn service_networks(
    ctx: &mut Ctx,
    file: usize,
    path: &KeyPath,
    v: Option<&Value>,
    scope: &Scope,
) -> (Option<Vec<String>>, Aliases) {
    let read = match v {
        None => Some((
            vec![scope
                .networks
                .get(DEFAULT_NETWORK)
                .cloned()
                .unwrap_or_else(|| DEFAULT_NETWORK.to_string())],
            BTreeMap::new(),
        )),
        Some(v) => networks::networks(ctx, file, &path.key("networks"), v, scope),
    };
    match read {
        Some((n, a)) => (Some(n), a),
        None => (None, BTreeMap::new()),
    }
}

/// The limits: `mem_limit`/`cpus` or `deploy.resources.limits`, not both.
fn resources(
    ctx: &mut Ctx,
    file: usize,
    path: &KeyPath,
    (mem_limit, cpus): (Option<&Value>, Option<&Value>),
    deploy: Option<&Deploy>,
) -> Option<Resources> {
    let short = deploy::short_limits(ctx, file, path, mem_limit, cpus);
    match (short, deploy.map(|d| &d.resources)) {
        (Some(short), Some(Some(long))) => {
            if short != Resources::default() && *long != Resources::default() {
                ctx.key_error(
                    file,
                    &path.key("deploy"),
                    "`mem_limit`/`cpus` and `deploy.resources.limits` are both set; keep one",
                );
                None
            } else if short != Resources::default() {
                Some(short)
            } else {
                Some(long.clone())
            }
        }
        _ => None,
    }
}

/// Adds the files that `sections` (`secrets` and `configs`, when written) mount to the
/// service's `volumes` (when those read), no target twice; false on an error. With either key, the mounts are sorted
/// by target, so a rendered file (configs become binds) reads back the same; Docker
/// mounts by depth.
fn file_mounts(
    ctx: &mut Ctx,
    file: usize,
    path: &KeyPath,
    sections: [(&str, Option<&Value>); 2],
    scope: &Scope,
    mut volumes: Option<&mut Vec<Mount>>,
) -> bool {
    let mut ok = true;
    for (section, v) in sections {
        let Some(v) = v else { continue };
        let at = path.key(section);
        match (
            super::files::service(ctx, file, &at, v, section, scope.files),
            volumes.as_deref_mut(),
        ) {
            (Some(more), Some(mounts)) => {
                for m in more {
                    if mounts.iter().any(|o| o.target == m.target) {
                        ctx.error(
                            file,
                            &at,
                            format!(
                                "`{}` is mounted twice; each target takes one mount",
                                m.target
                            ),
                        );
                        ok = false;
                    }
                    mounts.push(m);
                }
            }
            (None, _) => ok = false,
            _ => {}
        }
    }
    if let (Some(v), true) = (volumes, sections.iter().any(|(_, v)| v.is_some())) {
        v.sort_by(|a, b| a.target.cmp(&b.target));
    }
    ok
}

/// Joins what `deploy` and `volumes` say about the container options to the option
/// keys: `deploy.resources.limits.pids`, `deploy.resources.reservations.memory` and
/// `type: tmpfs` volumes; checks the reservation against the limit and that no path is
/// mounted twice. `None` when any of them had an error, or has one with the others.
fn merge_options(
    ctx: &mut Ctx,
    file: usize,
    path: &KeyPath,
    options: Option<ContainerOptions>,
    volumes: Option<&(Vec<Mount>, Vec<Tmpfs>)>,
    deploy: Option<&Deploy>,
    resources: Option<&Resources>,
) -> Option<ContainerOptions> {
    let (Some(mut o), Some((mounts, volume_tmpfs)), Some(d)) = (options, volumes, deploy) else {
        return None;
    };
    let mut good = true;
    let limits = path.key("deploy").key("resources");
    match (o.pids_limit, d.pids) {
        (Some(a), Some(b)) if a != b => {
            ctx.key_error(
                file,
                &path.key("pids_limit"),
                format!(
                    "`pids_limit: {a}` and `deploy.resources.limits.pids: {b}` disagree; keep one"
                ),
            );
            good = false;
        }
        (None, Some(b)) => o.pids_limit = Some(b),
        _ => {}
    }
    match (o.mem_reservation, d.reservation) {
        (Some(a), Some(b)) if a != b => {
            ctx.key_error(
                file,
                &path.key("mem_reservation"),
                "`mem_reservation` and `deploy.resources.reservations.memory` disagree; keep one",
            );
            good = false;
        }
        (None, Some(b)) => o.mem_reservation = Some(b),
        _ => {}
    }
    if let (Some(r), Some(m)) = (o.mem_reservation, resources.and_then(|r| r.memory)) {
        if r > m {
            let at = if d.reservation.is_some() {
                limits.key("reservations").key("memory")
            } else {
                path.key("mem_reservation")
            };
            ctx.error(file, &at, "the memory reservation is above the memory limit; Docker refuses it: lower the reservation");
            good = false;
        }
    }
    let from_key = o.tmpfs.len();
    o.tmpfs.extend(volume_tmpfs.iter().cloned());
    let mut seen: BTreeSet<&str> = mounts.iter().map(|m| m.target.as_str()).collect();
    for (i, t) in o.tmpfs.iter().enumerate() {
        if !seen.insert(t.target.as_str()) {
            let at = path.key(if i < from_key { "tmpfs" } else { "volumes" });
            ctx.key_error(
                file,
                &at,
                format!(
                    "`{}` is mounted twice (tmpfs and another mount); each target takes one mount",
                    t.target
                ),
            );
            good = false;
        }
    }
    good.then_some(o)
}

/// `command`: a list, or a string split into words as a POSIX shell would (no
/// expansion), as compose does.
fn command(ctx: &mut Ctx, file: usize, path: &KeyPath, v: &Value) -> Option<Vec<String>> {
    let words = match v {
        Value::String(s) => match shell_words::split(s) {
            Ok(w) => Some(w),
            Err(_) => {
                ctx.error(
                    file,
                    path,
                    format!("`command` `{s}` has an unclosed quote; close it or write the command as a list"),
                );
                None
            }
        },
        other => string_list(
            ctx,
            file,
            path,
            other,
            "`command`",
            "[\"uvicorn\", \"app:app\"]",
        ),
    }?;
    if words.is_empty() {
        ctx.error(
            file,
            path,
            "`command` is empty; leave it out to use the image's command",
        );
        return None;
    }
    Some(words)
}
