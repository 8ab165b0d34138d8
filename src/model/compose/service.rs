//! One compose service mapped into a [`ServiceSpec`]. Every key is looked up in
//! [`super::keys`]: mapped, refused, ignored with a warning, or reported as not
//! supported yet. Values are checked with format v1's typed readers, so a duration or a
//! port means the same in both formats.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use serde_yaml::{Mapping, Value};

use super::super::diagnostic::nearest;
use super::super::image::ImageRef;
use super::super::load::{kind, Ctx};
use super::super::location::KeyPath;
use super::super::spec::*;
use super::super::validate::{
    default_update, describe, duration, integer, mount, parse_port, resources, scalar, string,
    string_list, valid_name, MAX_REPLICAS,
};
use super::keys;
use super::options;

/// What a service may refer to: the project's networks, volumes and services.
pub struct Scope<'a> {
    /// Compose network name → the name in the spec (an external network's own name).
    pub networks: &'a BTreeMap<String, String>,
    /// Compose volume name → the name in the spec.
    pub volumes: &'a BTreeMap<String, String>,
    /// The spec's volumes.
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
pub const DEFAULT_NETWORK: &str = "default";

/// A service's keys, sorted by what happens to them.
#[derive(Default)]
struct Keys<'m> {
    mapped: BTreeMap<&'static str, &'m Value>,
    berth: Option<&'m Value>,
}

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

    let image = match get("image") {
        None => {
            let msg = if map.contains_key("build") {
                "`image` is missing: berth deploys images: build in CI and pin the tag (e.g. `image: ghcr.io/owner/app:sha-3f2c1e9`)"
            } else {
                "`image` is missing; add a pinned image such as `ghcr.io/owner/app:sha-3f2c1e9`"
            };
            ctx.key_error(file, path, msg);
            None
        }
        Some(v) => image(ctx, file, &p("image"), v),
    };

    let job = scope.jobs.contains(name);
    let deploy = match get("deploy") {
        None => Some(Deploy::default()),
        Some(v) => self::deploy(ctx, file, &p("deploy"), v, job),
    };

    let replicas = match (get("scale"), deploy.as_ref().and_then(|d| d.replicas)) {
        (Some(v), from_deploy) => {
            integer(ctx, file, &p("scale"), v, 0, MAX_REPLICAS).and_then(|n| match from_deploy {
                Some(d) if d != n as u32 => {
                    ctx.error(
                        file,
                        &p("scale"),
                        format!("`scale: {n}` and `deploy.replicas: {d}` disagree; keep one"),
                    );
                    None
                }
                _ => Some(n as u32),
            })
        }
        (None, from_deploy) => Some(from_deploy.unwrap_or(1)),
    };

    let command = match get("command") {
        None => Some(None),
        Some(v) => command(ctx, file, &p("command"), v).map(Some),
    };

    let env = match get("environment") {
        None => Some(BTreeMap::new()),
        Some(v) => environment(ctx, file, &p("environment"), v),
    };

    let env_files = match get("env_file") {
        None => Some(Vec::new()),
        Some(v) => env_file(ctx, file, &p("env_file"), v, name),
    };

    let ports = match get("ports") {
        None => Some(Vec::new()),
        Some(v) => ports(ctx, file, &p("ports"), v),
    };

    let expose = match get("expose") {
        None => Some(Vec::new()),
        Some(v) => expose(ctx, file, &p("expose"), v),
    };

    let networks = match get("networks") {
        None => Some((
            vec![scope
                .networks
                .get(DEFAULT_NETWORK)
                .cloned()
                .unwrap_or_else(|| DEFAULT_NETWORK.to_string())],
            BTreeMap::new(),
        )),
        Some(v) => networks(ctx, file, &p("networks"), v, scope),
    };
    let (networks, aliases) = match networks {
        Some((n, a)) => (Some(n), a),
        None => (None, BTreeMap::new()),
    };

    let volumes = match get("volumes") {
        None => Some((Vec::new(), Vec::new())),
        Some(v) => volumes(ctx, file, &p("volumes"), v, scope),
    };

    let health = match get("healthcheck") {
        None => Some(Health::Image),
        Some(v) => healthcheck(ctx, file, &p("healthcheck"), v),
    };
    if get("healthcheck").is_none() && replicas.unwrap_or(1) > 0 && !job {
        ctx.warning(file, path, "no `healthcheck`; berth uses the image's HEALTHCHECK, and a replica of an image without one counts healthy after `deploy.update_config.monitor` of running");
    }

    let short_limits = short_limits(ctx, file, path, get("mem_limit"), get("cpus"));
    let resources = match (short_limits, deploy.as_ref().map(|d| &d.resources)) {
        (Some(short), Some(Some(long))) => {
            if short != Resources::default() && *long != Resources::default() {
                ctx.key_error(
                    file,
                    &p("deploy"),
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
    };

    let stop_grace = match get("stop_grace_period") {
        None => Some(Duration::from_secs(10)),
        Some(v) => duration(
            ctx,
            file,
            &p("stop_grace_period"),
            v,
            Duration::ZERO,
            Duration::from_secs(3600),
        ),
    };

    if let Some(v) = get("restart") {
        restart(ctx, file, &p("restart"), v, job);
    }

    let depends_on = match get("depends_on") {
        None => Some(Vec::new()),
        Some(v) => depends_on(ctx, file, &p("depends_on"), v, name, scope),
    };

    let publishes = ports.as_ref().is_some_and(|p| !p.is_empty());
    let update = deploy
        .as_ref()
        .and_then(|d| update(ctx, file, path, d.update.as_ref(), keys.berth, publishes));
    let placement = deploy.as_ref().and_then(|d| d.placement.clone());

    if let (Some(ports), Some(n)) = (&ports, replicas) {
        if n > 1 && !ports.is_empty() {
            ctx.error(file, &p("ports"), format!("`{name}` publishes host port {} and has {n} replicas, which would all bind it; use 1 replica, or publish through the proxy", ports[0].host_port));
            ok = false;
        }
    }
    if let (Some(u), Some(pl)) = (&update, &placement) {
        if let Some(c) = &u.canary {
            if !pl.hosts.is_empty() && !pl.hosts.contains(c) {
                ctx.error(file, &p("x-berth").key("canary"), format!("canary host `{c}` is not among the `node.hostname` constraints, so it never runs `{name}` and the other hosts would wait for it forever; name one of {}", pl.hosts.join(", ")));
                ok = false;
            }
        }
    }

    let options = options::compile(ctx, file, path, &get);
    let options = match (options, &volumes, deploy.as_ref()) {
        (Some(o), Some((mounts, volume_tmpfs)), Some(d)) => merge_options(
            ctx,
            file,
            path,
            o,
            mounts,
            volume_tmpfs,
            d,
            resources.as_ref(),
        ),
        _ => None,
    };
    let mut volumes = volumes.map(|(mounts, _)| mounts);
    for section in ["secrets", "configs"] {
        let Some(v) = get(section) else { continue };
        match (
            super::files::service(ctx, file, &p(section), v, section, scope.files),
            &mut volumes,
        ) {
            (Some(more), Some(mounts)) => {
                for m in more {
                    if mounts.iter().any(|o| o.target == m.target) {
                        ctx.error(
                            file,
                            &p(section),
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
    // With secrets or configs, one order whatever the key that asked for a mount, so a
    // rendered file (configs become binds) reads back the same; Docker mounts by depth.
    if let (Some(v), true) = (
        &mut volumes,
        get("secrets").is_some() || get("configs").is_some(),
    ) {
        v.sort_by(|a, b| a.target.cmp(&b.target));
    }
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

/// Joins what `deploy` and `volumes` say about the container options to the option
/// keys: `deploy.resources.limits.pids`, `deploy.resources.reservations.memory` and
/// `type: tmpfs` volumes; checks the reservation against the limit and that no path is
/// mounted twice.
#[allow(clippy::too_many_arguments)]
fn merge_options(
    ctx: &mut Ctx,
    file: usize,
    path: &KeyPath,
    mut o: ContainerOptions,
    mounts: &[Mount],
    volume_tmpfs: &[Tmpfs],
    d: &Deploy,
    resources: Option<&Resources>,
) -> Option<ContainerOptions> {
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

/// Sorts the keys of a service by [`keys`]: reports refused, ignored, not-yet and
/// unknown keys, and returns the mapped ones.
fn sort_keys<'m>(
    ctx: &mut Ctx,
    file: usize,
    path: &KeyPath,
    map: &'m Mapping,
    ok: &mut bool,
) -> Keys<'m> {
    let mut out = Keys::default();
    for (k, v) in map {
        let Some(key) = k.as_str() else {
            ctx.key_error(
                file,
                path,
                format!("keys must be strings, found {}", kind(k)),
            );
            *ok = false;
            continue;
        };
        let kp = || path.key(key);
        if key == "x-berth" {
            out.berth = Some(v);
        } else if key.starts_with("x-") {
            // Extension fields hold anchors and other tools' settings.
        } else if let Some(name) = keys::supported(key) {
            out.mapped.insert(name, v);
        } else if let Some(reason) = keys::lookup(keys::REFUSED, key) {
            if let Some(msg) = refused(key, v, reason) {
                ctx.key_error(file, &kp(), msg);
                *ok = false;
            }
        } else if let Some(reason) = keys::lookup(keys::IGNORED, key) {
            if key != "profiles" {
                ctx.warning(file, &kp(), format!("`{key}` is ignored: {reason}"));
            }
        } else if keys::NOT_YET.contains(&key) {
            ctx.key_error(file, &kp(), keys::not_yet(key));
            *ok = false;
        } else {
            let known = keys::all_service_keys();
            let hint = nearest(key, &known)
                .map(|n| format!("; did you mean `{n}`?"))
                .unwrap_or_default();
            ctx.key_error(
                file,
                &kp(),
                format!("unknown key `{key}` in a compose service{hint}"),
            );
            *ok = false;
        }
    }
    out
}

/// The message for a refused key, or `None` when its value asks for nothing
/// (`privileged: false`, `cap_add: []`).
fn refused(key: &str, v: &Value, reason: &str) -> Option<String> {
    let harmless = match v {
        Value::Null | Value::Bool(false) => true,
        Value::Sequence(s) => s.is_empty(),
        Value::Mapping(m) => m.is_empty(),
        _ => false,
    };
    if harmless {
        return None;
    }
    let namespace = matches!(
        key,
        "network_mode" | "pid" | "ipc" | "userns_mode" | "uts" | "cgroup"
    );
    if namespace && v.as_str() != Some("host") {
        return Some(keys::not_yet(key));
    }
    Some(format!(
        "`{key}` is not allowed: it {reason}; berth lets whoever pushes to the desired state run containers, not own the host"
    ))
}

/// Checks the keys of a nested mapping: `supported` are returned, `ignored` warn,
/// anything else is an error (not supported yet, or unknown).
pub(super) fn nested<'m>(
    ctx: &mut Ctx,
    file: usize,
    path: &KeyPath,
    map: &'m Mapping,
    supported: &[&str],
    not_yet: &[&str],
    ignored: &[(&str, &str)],
) -> Option<BTreeMap<&'m str, &'m Value>> {
    let mut out = BTreeMap::new();
    let mut good = true;
    for (k, v) in map {
        let Some(key) = k.as_str() else {
            ctx.key_error(
                file,
                path,
                format!("keys must be strings, found {}", kind(k)),
            );
            good = false;
            continue;
        };
        if supported.contains(&key) {
            out.insert(key, v);
            continue;
        }
        let kp = path.key(key);
        if key.starts_with("x-") {
        } else if let Some((_, why)) = ignored.iter().find(|(n, _)| *n == key) {
            ctx.warning(file, &kp, format!("`{key}` is ignored: {why}"));
        } else if not_yet.contains(&key) {
            ctx.key_error(file, &kp, keys::not_yet(&kp.to_string()));
            good = false;
        } else {
            let all: Vec<&str> = supported.iter().chain(not_yet).copied().collect();
            let hint = nearest(key, &all)
                .map(|n| format!("; did you mean `{n}`?"))
                .unwrap_or_default();
            ctx.key_error(file, &kp, format!("unknown key `{key}`{hint}"));
            good = false;
        }
    }
    good.then_some(out)
}

pub(super) fn mapping<'v>(
    ctx: &mut Ctx,
    file: usize,
    path: &KeyPath,
    v: &'v Value,
    what: &str,
) -> Option<&'v Mapping> {
    match v {
        Value::Mapping(m) => Some(m),
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

fn image(ctx: &mut Ctx, file: usize, path: &KeyPath, v: &Value) -> Option<ImageRef> {
    let s = string(ctx, file, path, v, "ghcr.io/owner/app:sha-3f2c1e9")?;
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

/// One entry of a compose "mapping or list of `KEY=VALUE`" key (`environment`,
/// `labels`): where it was written, its name, and its value (`None` when the name stands
/// alone: `KEY:` in a mapping, `KEY` in a list).
pub(super) struct KeyValue {
    pub path: KeyPath,
    pub key: String,
    pub value: Option<String>,
    /// Written as a mapping key (a diagnostic points at the key), not a list item.
    pub at_key: bool,
}

impl KeyValue {
    /// Reports `msg` at the entry.
    pub fn report(&self, ctx: &mut Ctx, file: usize, msg: String) {
        if self.at_key {
            ctx.key_error(file, &self.path, msg)
        } else {
            ctx.error(file, &self.path, msg)
        }
    }
}

/// Reads `v`, the key `key` (its entries called `noun`, its list items `form`), as a
/// mapping or a list of `form`. Returns the entries and whether every one was well formed;
/// `None` when `v` is neither form.
pub(super) fn key_values(
    ctx: &mut Ctx,
    file: usize,
    path: &KeyPath,
    v: &Value,
    (key, noun, form): (&str, &str, &str),
) -> Option<(Vec<KeyValue>, bool)> {
    let mut entries = Vec::new();
    let mut good = true;
    match v {
        Value::Mapping(m) => {
            for (k, val) in m {
                let Some(name) = scalar(k) else {
                    ctx.key_error(
                        file,
                        path,
                        format!("{noun} names must be strings; found {}", kind(k)),
                    );
                    good = false;
                    continue;
                };
                let kp = path.key(&name);
                let value = match val {
                    Value::Null => None,
                    other => match scalar(other) {
                        Some(s) => Some(s),
                        None => {
                            ctx.error(
                                file,
                                &kp,
                                format!(
                                    "{noun} `{name}` must be a string, number or boolean; found {}",
                                    kind(other)
                                ),
                            );
                            good = false;
                            continue;
                        }
                    },
                };
                entries.push(KeyValue {
                    path: kp,
                    key: name,
                    value,
                    at_key: true,
                });
            }
        }
        Value::Sequence(items) => {
            for (i, item) in items.iter().enumerate() {
                let ip = path.index(i);
                let Some(text) = scalar(item) else {
                    ctx.error(
                        file,
                        &ip,
                        format!(
                            "each item of `{key}` must be `{form}`; found {}",
                            kind(item)
                        ),
                    );
                    good = false;
                    continue;
                };
                let (name, value) = match text.split_once('=') {
                    Some((k, val)) => (k.to_string(), Some(val.to_string())),
                    None => (text, None),
                };
                entries.push(KeyValue {
                    path: ip,
                    key: name,
                    value,
                    at_key: false,
                });
            }
        }
        other => {
            ctx.error(
                file,
                path,
                format!(
                    "`{key}` must be a mapping or a list of `{form}`; found {}",
                    kind(other)
                ),
            );
            return None;
        }
    }
    Some((entries, good))
}

/// `environment`: a map, or a list of `K=V`. A name without a value would pass berth's
/// own environment through, which berth never does.
fn environment(
    ctx: &mut Ctx,
    file: usize,
    path: &KeyPath,
    v: &Value,
) -> Option<BTreeMap<String, String>> {
    let pass_through = |k: &str| {
        format!("`{k}` has no value, which in compose passes the variable through from the environment of whoever runs it; berth never reads its own environment: write `{k}=value` here, or put it in the host's env_file")
    };
    let (entries, mut good) = key_values(
        ctx,
        file,
        path,
        v,
        ("environment", "environment", "NAME=value"),
    )?;
    let mut out = BTreeMap::new();
    for entry in entries {
        let key = &entry.key;
        if key.is_empty() || key.contains(['\0', ' ']) {
            entry.report(ctx, file, format!("environment name `{key}` is invalid"));
            good = false;
            continue;
        }
        match &entry.value {
            None => {
                entry.report(ctx, file, pass_through(key));
                good = false;
            }
            Some(val) => {
                if out.insert(key.clone(), val.clone()).is_some() {
                    entry.report(
                        ctx,
                        file,
                        format!("environment `{key}` is set twice; keep one"),
                    );
                    good = false;
                }
            }
        }
    }
    good.then_some(out)
}

/// `env_file`: host-side files, as a string, a list, or long forms with `required`.
/// An absolute path must lie in the env directory (checked when it is read); a relative
/// one is taken inside it, never from the repository: secrets do not live there.
fn env_file(
    ctx: &mut Ctx,
    file: usize,
    path: &KeyPath,
    v: &Value,
    service: &str,
) -> Option<Vec<EnvFileRef>> {
    let items: Vec<(KeyPath, &Value)> = match v {
        Value::Sequence(items) => items
            .iter()
            .enumerate()
            .map(|(i, v)| (path.index(i), v))
            .collect(),
        other => vec![(path.clone(), other)],
    };
    let mut out = Vec::new();
    let mut good = true;
    for (ip, item) in items {
        let (text, required) = match item {
            Value::String(s) => (Some(s.clone()), true),
            Value::Mapping(m) => {
                match nested(ctx, file, &ip, m, &["path", "required"], &["format"], &[]) {
                    None => (None, true),
                    Some(long) => {
                        let required = match long.get("required") {
                            None => Some(true),
                            Some(Value::Bool(b)) => Some(*b),
                            Some(other) => {
                                ctx.error(
                                    file,
                                    &ip.key("required"),
                                    format!("expected `true` or `false`; found {}", kind(other)),
                                );
                                None
                            }
                        };
                        let text = match long.get("path") {
                            Some(p) => string(ctx, file, &ip.key("path"), p, ".env.prod"),
                            None => {
                                ctx.key_error(file, &ip, "`path` is missing");
                                None
                            }
                        };
                        match required {
                            Some(r) => (text, r),
                            None => (None, true),
                        }
                    }
                }
            }
            other => {
                ctx.error(
                    file,
                    &ip,
                    format!(
                        "`env_file` must be a path or a list of paths; found {}",
                        kind(other)
                    ),
                );
                (None, true)
            }
        };
        let Some(text) = text else {
            good = false;
            continue;
        };
        let normal = match super::files::env_dir_path(&text) {
            Ok(p) => p,
            Err(super::files::EnvDirPathError::Escapes) => {
                ctx.error(file, &ip, format!("env_file `{text}` leads out of the env directory; berth reads env files from the host's env directory (`/etc/berth/<project>/`, or --env-dir): name a file there, e.g. `{service}.env`"));
                good = false;
                continue;
            }
            Err(super::files::EnvDirPathError::Empty) => {
                ctx.error(file, &ip, "`env_file` names no file");
                good = false;
                continue;
            }
        };
        out.push(EnvFileRef {
            path: normal,
            required,
        });
    }
    good.then_some(out)
}

/// `ports`: `[ip:]host:container[/proto]` strings, or the long form.
fn ports(ctx: &mut Ctx, file: usize, path: &KeyPath, v: &Value) -> Option<Vec<PortMapping>> {
    let Value::Sequence(items) = v else {
        ctx.error(
            file,
            path,
            format!(
                "`ports` must be a list such as [\"80:80\"]; found {}",
                kind(v)
            ),
        );
        return None;
    };
    let mut out = Vec::new();
    let mut good = true;
    for (i, item) in items.iter().enumerate() {
        let ip = path.index(i);
        let text = match item {
            Value::Mapping(m) => nested(
                ctx,
                file,
                &ip,
                m,
                &["target", "published", "host_ip", "protocol", "mode", "name", "app_protocol"],
                &[],
                &[],
            )
            .and_then(|long| {
                let target = long.get("target").and_then(|v| scalar(v));
                let published = long.get("published").and_then(|v| scalar(v));
                let (Some(target), Some(published)) = (target, published) else {
                    ctx.error(file, &ip, "a published port needs `target` and `published`; berth publishes fixed host ports");
                    return None;
                };
                let host_ip = long.get("host_ip").and_then(|v| scalar(v)).map(|h| if h.contains(':') { format!("[{h}]:") } else { format!("{h}:") }).unwrap_or_default();
                let proto = long.get("protocol").and_then(|v| scalar(v)).map(|p| format!("/{p}")).unwrap_or_default();
                Some(format!("{host_ip}{published}:{target}{proto}"))
            }),
            other => scalar(other),
        };
        let Some(text) = text else {
            good = false;
            if !matches!(item, Value::Mapping(_)) {
                ctx.error(
                    file,
                    &ip,
                    format!(
                        "each port must be a string such as \"80:80\" or a mapping; found {}",
                        kind(item)
                    ),
                );
            }
            continue;
        };
        let body = text.split('/').next().unwrap_or_default();
        let msg = if !body.contains(':') {
            Some(format!("port `{text}` names only the container port; berth publishes fixed host ports: write `HOST:CONTAINER` (e.g. `8080:{body}`), or use `expose` for other services"))
        } else if body.rsplit(':').take(2).any(|p| p.contains('-')) {
            Some(format!(
                "port ranges (`{text}`) are not supported yet; list each port"
            ))
        } else {
            None
        };
        if let Some(msg) = msg {
            ctx.error(file, &ip, msg);
            good = false;
            continue;
        }
        match parse_port(&text) {
            Ok(m) => out.push(m),
            Err(e) => {
                ctx.error(file, &ip, e);
                good = false;
            }
        }
    }
    good.then_some(out)
}

fn expose(ctx: &mut Ctx, file: usize, path: &KeyPath, v: &Value) -> Option<Vec<u16>> {
    let Value::Sequence(items) = v else {
        ctx.error(
            file,
            path,
            format!(
                "`expose` must be a list of ports such as [8000]; found {}",
                kind(v)
            ),
        );
        return None;
    };
    let mut out = Vec::new();
    let mut good = true;
    for (i, item) in items.iter().enumerate() {
        let text = scalar(item).unwrap_or_default();
        match text.trim_end_matches("/tcp").parse::<u16>() {
            Ok(port) if port > 0 => out.push(port),
            _ => {
                ctx.error(
                    file,
                    &path.index(i),
                    format!(
                        "expected a port number from 1 to 65535; found {}",
                        describe(item)
                    ),
                );
                good = false;
            }
        }
    }
    good.then_some(out)
}

/// `networks`: a list of names, or a map of names to nothing or to `aliases`. Returns
/// the networks (their names in the spec) and the aliases by network.
fn networks(
    ctx: &mut Ctx,
    file: usize,
    path: &KeyPath,
    v: &Value,
    scope: &Scope,
) -> Option<(Vec<String>, Aliases)> {
    let mut extra: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let names: Vec<(KeyPath, String)> = match v {
        Value::Sequence(_) => string_list(ctx, file, path, v, "`networks`", "[backend]")?
            .into_iter()
            .enumerate()
            .map(|(i, n)| (path.index(i), n))
            .collect(),
        Value::Mapping(m) => {
            let mut out = Vec::new();
            let mut good = true;
            for (k, opts) in m {
                let Some(n) = k.as_str() else { continue };
                let np = path.key(n);
                if let Value::Mapping(o) = opts {
                    match nested(
                        ctx,
                        file,
                        &np,
                        o,
                        &["aliases"],
                        &[
                            "ipv4_address",
                            "ipv6_address",
                            "link_local_ips",
                            "mac_address",
                            "driver_opts",
                            "priority",
                            "gw_priority",
                            "interface_name",
                        ],
                        &[],
                    ) {
                        Some(o) => match o.get("aliases") {
                            None | Some(Value::Null) => {}
                            Some(a) => match aliases(ctx, file, &np.key("aliases"), a) {
                                Some(a) if !a.is_empty() => {
                                    extra.insert(n.to_string(), a);
                                }
                                Some(_) => {}
                                None => good = false,
                            },
                        },
                        None => good = false,
                    }
                } else if !opts.is_null() {
                    ctx.error(
                        file,
                        &np,
                        format!("network options must be a mapping; found {}", kind(opts)),
                    );
                    good = false;
                }
                out.push((np, n.to_string()));
            }
            if !good {
                return None;
            }
            out
        }
        other => {
            ctx.error(
                file,
                path,
                format!(
                    "`networks` must be a list or a mapping; found {}",
                    kind(other)
                ),
            );
            return None;
        }
    };
    let mut out = Vec::new();
    let mut good = true;
    for (np, n) in names {
        match scope.networks.get(&n) {
            Some(spec_name) => out.push(spec_name.clone()),
            None if n == DEFAULT_NETWORK => out.push(n),
            None => {
                let known: Vec<&str> = scope.networks.keys().map(String::as_str).collect();
                let hint = nearest(&n, &known)
                    .map(|k| format!("; did you mean `{k}`?"))
                    .unwrap_or_else(|| "; declare it under the top-level `networks:`".to_string());
                ctx.error(file, &np, format!("network `{n}` is not declared{hint}"));
                good = false;
            }
        }
    }
    if out.is_empty() && good {
        ctx.error(file, path, "`networks` is empty; a service joins at least one network (leave it out for `default`)");
        good = false;
    }
    let aliases = extra
        .into_iter()
        .map(|(n, a)| (scope.networks.get(&n).cloned().unwrap_or(n), a))
        .collect();
    good.then_some((out, aliases))
}

/// Aliases by network.
type Aliases = BTreeMap<String, Vec<String>>;

/// The most aliases a service may have on one network.
const MAX_ALIASES: usize = 32;

/// A network's `aliases`: DNS labels without dots, since a dotted name would answer for
/// a real host name (`api.example.com`) to every container on the network.
fn aliases(ctx: &mut Ctx, file: usize, path: &KeyPath, v: &Value) -> Option<Vec<String>> {
    let list = string_list(ctx, file, path, v, "`aliases`", "[db, database]")?;
    let mut good = true;
    if list.len() > MAX_ALIASES {
        ctx.error(
            file,
            path,
            format!("{} aliases; at most {MAX_ALIASES} per network", list.len()),
        );
        return None;
    }
    for (i, a) in list.iter().enumerate() {
        let label = !a.is_empty()
            && a.len() <= 63
            && a.chars().next().is_some_and(|c| c.is_ascii_alphanumeric())
            && a.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
        if !label {
            let why = if a.contains('.') {
                "a name with a dot would answer for a real host name to every container on the network"
            } else {
                "use lowercase letters, digits, `-` or `_`, at most 63"
            };
            ctx.error(
                file,
                &path.index(i),
                format!("alias `{a}` is not supported: {why}"),
            );
            good = false;
        }
    }
    good.then_some(list)
}

/// `volumes`: short syntax `SOURCE:TARGET[:MODE]` or the long form with `type: volume`
/// or `type: bind`. Sources are named volumes of the project, repository files (`./…`)
/// and host paths the host allows, checked as in format v1.
fn volumes(
    ctx: &mut Ctx,
    file: usize,
    path: &KeyPath,
    v: &Value,
    scope: &Scope,
) -> Option<(Vec<Mount>, Vec<Tmpfs>)> {
    let Value::Sequence(items) = v else {
        ctx.error(
            file,
            path,
            format!(
                "`volumes` must be a list such as [\"data:/var/lib/data\"]; found {}",
                kind(v)
            ),
        );
        return None;
    };
    let mut out: Vec<Mount> = Vec::new();
    let mut tmpfs: Vec<Tmpfs> = Vec::new();
    let mut good = true;
    for (i, item) in items.iter().enumerate() {
        let ip = path.index(i);
        if let Value::Mapping(m) = item {
            if m.get("type").and_then(Value::as_str) == Some("tmpfs") {
                match tmpfs_volume(ctx, file, &ip, m) {
                    Some(t) if tmpfs.iter().any(|o| o.target == t.target) => {
                        ctx.error(
                            file,
                            &ip,
                            format!(
                                "`{}` is mounted twice; each target takes one mount",
                                t.target
                            ),
                        );
                        good = false;
                    }
                    Some(t) => tmpfs.push(t),
                    None => good = false,
                }
                continue;
            }
        }
        let parts = match item {
            Value::String(s) => short_volume(ctx, file, &ip, s),
            Value::Mapping(m) => long_volume(ctx, file, &ip, m),
            other => {
                ctx.error(file, &ip, format!("each volume must be a string such as \"data:/data\" or a mapping; found {}", kind(other)));
                None
            }
        };
        let Some((source, target, read_only)) = parts else {
            good = false;
            continue;
        };
        if source.starts_with('.') {
            match host_data(ctx, file, &ip, &source) {
                Err(()) => {
                    good = false;
                    continue;
                }
                Ok(Some(rel)) => {
                    if out.iter().any(|o| o.target == target) {
                        ctx.error(
                            file,
                            &ip,
                            format!("`{target}` is mounted twice; each target takes one mount"),
                        );
                        good = false;
                    }
                    if !target.starts_with('/') {
                        ctx.error(
                            file,
                            &ip,
                            format!(
                                "mount target `{target}` must be an absolute path in the container"
                            ),
                        );
                        good = false;
                    }
                    out.push(Mount {
                        source: MountSource::HostData(rel),
                        target,
                        read_only,
                    });
                    continue;
                }
                Ok(None) => {}
            }
        }
        let named = !(source.starts_with('/') || source.starts_with('.'));
        let source = if named {
            scope.volumes.get(&source).cloned().unwrap_or(source)
        } else {
            source
        };
        let spec = format!("{source}:{target}{}", if read_only { ":ro" } else { "" });
        match mount(ctx, file, &ip, &spec, scope.volume_specs) {
            Some(m) => {
                if out.iter().any(|o| o.target == m.target) {
                    ctx.error(
                        file,
                        &ip,
                        format!(
                            "`{}` is mounted twice; each target takes one mount",
                            m.target
                        ),
                    );
                    good = false;
                }
                out.push(m);
            }
            None => good = false,
        }
    }
    good.then_some((out, tmpfs))
}

/// A relative bind source that is not in the repository is the project's host data:
/// `Ok(Some(path))` relative to the compose file's directory. `Ok(None)` when the
/// repository holds it (a repository file or directory); `Err` when reported.
fn host_data(
    ctx: &mut Ctx,
    file: usize,
    path: &KeyPath,
    source: &str,
) -> Result<Option<String>, ()> {
    let dir = ctx.files[file].dir.clone();
    let Some(rel) = super::super::tree::join_inside(&dir, source) else {
        // Leaves the repository: reported by the mount reader.
        return Ok(None);
    };
    let in_repo = matches!(ctx.tree.list_dir(&rel), Ok(Some(_)))
        || !matches!(ctx.tree.read_limited(&rel, 0), Ok(None));
    if in_repo {
        return Ok(None);
    }
    let below = if dir.is_empty() {
        Some(rel.as_str())
    } else {
        rel.strip_prefix(&dir).and_then(|r| r.strip_prefix('/'))
    };
    match below {
        Some(r) if !r.is_empty() => Ok(Some(r.to_string())),
        _ => {
            ctx.error(file, path, format!("`{source}` is not in the repository, so it would be host data, which must lie below the compose file's directory (e.g. `./data`); commit it, or bind a path below"));
            Err(())
        }
    }
}

/// A long-form volume of `type: tmpfs`: `target`, `read_only` and `tmpfs.size`/`mode`.
fn tmpfs_volume(ctx: &mut Ctx, file: usize, path: &KeyPath, m: &Mapping) -> Option<Tmpfs> {
    let long = nested(
        ctx,
        file,
        path,
        m,
        &["type", "target", "read_only", "tmpfs"],
        &[],
        &[("consistency", "a Docker Desktop setting")],
    )?;
    let Some(target) = long.get("target").and_then(|v| scalar(v)) else {
        ctx.key_error(file, path, "a tmpfs mount needs `target`");
        return None;
    };
    let mut opts = Vec::new();
    match long.get("read_only") {
        None | Some(Value::Bool(false)) => {}
        Some(Value::Bool(true)) => opts.push("ro".to_string()),
        Some(other) => {
            ctx.error(
                file,
                &path.key("read_only"),
                format!("expected `true` or `false`; found {}", kind(other)),
            );
            return None;
        }
    }
    if let Some(t) = long.get("tmpfs") {
        let tp = path.key("tmpfs");
        let tm = mapping(ctx, file, &tp, t, "`tmpfs`")?;
        let t = nested(ctx, file, &tp, tm, &["size", "mode"], &[], &[])?;
        if let Some(s) = t.get("size") {
            opts.push(format!(
                "size={}",
                options::size(ctx, file, &tp.key("size"), s, 1)?
            ));
        }
        if let Some(mode) = t.get("mode") {
            // YAML reads `1777` as decimal and `0o1777` as octal: compose takes the
            // number as the mode's value, so write it back in octal.
            match mode.as_u64().filter(|n| *n <= 0o7777) {
                Some(n) => opts.push(format!("mode={n:o}")),
                None => {
                    ctx.error(
                        file,
                        &tp.key("mode"),
                        format!(
                            "expected a file mode such as `0o1777`; found {}",
                            describe(mode)
                        ),
                    );
                    return None;
                }
            }
        }
    }
    match options::tmpfs_mount(&target, &opts.join(",")) {
        Ok(t) => Some(t),
        Err(e) => {
            ctx.error(file, &path.key("target"), e);
            None
        }
    }
}

fn short_volume(
    ctx: &mut Ctx,
    file: usize,
    path: &KeyPath,
    s: &str,
) -> Option<(String, String, bool)> {
    let parts: Vec<&str> = s.split(':').collect();
    let (source, target, mode) = match parts.as_slice() {
        [_] => {
            ctx.error(
                file,
                path,
                format!(
                    "anonymous volumes (`{s}`) are not supported yet; name the volume (`data:{s}`)"
                ),
            );
            return None;
        }
        [s, t] => (*s, *t, ""),
        [s, t, m] => (*s, *t, *m),
        _ => {
            ctx.error(
                file,
                path,
                format!("volume `{s}` must be `SOURCE:TARGET[:MODE]`"),
            );
            return None;
        }
    };
    let mut read_only = false;
    for m in mode.split(',').filter(|m| !m.is_empty()) {
        match m {
            "ro" => read_only = true,
            "rw" => {}
            "z" | "Z" => ctx.warning(
                file,
                path,
                format!("mode `{m}` is ignored: berth does not relabel for SELinux"),
            ),
            "cached" | "delegated" | "consistent" => {}
            other => {
                ctx.error(
                    file,
                    path,
                    format!(
                        "volume mode `{other}` in `{s}` is not supported yet; use `ro` or `rw`"
                    ),
                );
                return None;
            }
        }
    }
    Some((source.to_string(), target.to_string(), read_only))
}

fn long_volume(
    ctx: &mut Ctx,
    file: usize,
    path: &KeyPath,
    m: &Mapping,
) -> Option<(String, String, bool)> {
    let long = nested(
        ctx,
        file,
        path,
        m,
        &["type", "source", "target", "read_only"],
        &["bind", "volume", "image"],
        &[("consistency", "a Docker Desktop setting")],
    )?;
    let ty = match long.get("type") {
        Some(v) => string(ctx, file, &path.key("type"), v, "volume")?,
        None => {
            ctx.key_error(file, path, "`type` is missing; use `volume` or `bind`");
            return None;
        }
    };
    let source = long.get("source").and_then(|v| scalar(v));
    let target = long.get("target").and_then(|v| scalar(v));
    let read_only = match long.get("read_only") {
        None => false,
        Some(Value::Bool(b)) => *b,
        Some(other) => {
            ctx.error(
                file,
                &path.key("read_only"),
                format!("expected `true` or `false`; found {}", kind(other)),
            );
            return None;
        }
    };
    let (Some(source), Some(target)) = (source, target) else {
        ctx.key_error(
            file,
            path,
            "a mount needs `source` and `target` (anonymous volumes are not supported yet)",
        );
        return None;
    };
    let is_path = source.starts_with('/') || source.starts_with('.');
    match ty.as_str() {
        "volume" if is_path => {
            ctx.error(
                file,
                &path.key("source"),
                format!("`{source}` is a path; use `type: bind` for it"),
            );
            None
        }
        "bind" if !is_path => {
            ctx.error(file, &path.key("source"), format!("a bind mount's source must be a path (`./file` in the repository or an absolute host path); found `{source}`"));
            None
        }
        "volume" | "bind" => Some((source, target, read_only)),
        other => {
            ctx.error(
                file,
                &path.key("type"),
                format!(
                    "mount type `{other}` is not supported yet; use `volume`, `bind` or `tmpfs`"
                ),
            );
            None
        }
    }
}

/// `healthcheck`, with Docker's defaults for what is left out.
fn healthcheck(ctx: &mut Ctx, file: usize, path: &KeyPath, v: &Value) -> Option<Health> {
    let m = mapping(ctx, file, path, v, "`healthcheck`")?;
    let h = nested(
        ctx,
        file,
        path,
        m,
        &[
            "test",
            "interval",
            "timeout",
            "retries",
            "start_period",
            "disable",
        ],
        &["start_interval"],
        &[],
    )?;
    if let Some(d) = h.get("disable") {
        match d {
            Value::Bool(true) => return Some(Health::Disabled),
            Value::Bool(false) => {}
            other => {
                ctx.error(
                    file,
                    &path.key("disable"),
                    format!("expected `true` or `false`; found {}", kind(other)),
                );
                return None;
            }
        }
    }
    let Some(test) = h.get("test") else {
        ctx.key_error(file, path, "a `healthcheck` without `test` (changing only the image's timing) is not supported yet; give the `test`");
        return None;
    };
    let tp = path.key("test");
    let test = match test {
        Value::String(s) => Some(vec!["CMD-SHELL".to_string(), s.clone()]),
        other => string_list(
            ctx,
            file,
            &tp,
            other,
            "`healthcheck.test`",
            "[\"CMD\", \"curl\", \"-f\", \"http://localhost/health\"]",
        ),
    }?;
    match test.first().map(String::as_str) {
        Some("NONE") => return Some(Health::Disabled),
        Some("CMD") | Some("CMD-SHELL") if test.len() >= 2 => {}
        _ => {
            ctx.error(file, &tp, "`healthcheck.test` must be a string, or a list starting with \"CMD\" or \"CMD-SHELL\" followed by the command, or [\"NONE\"]");
            return None;
        }
    }
    let ms = Duration::from_millis;
    let secs = Duration::from_secs;
    let mut timing = |key: &str, default: Duration, min: Duration| match h.get(key) {
        None => Some(default),
        Some(v) => duration(ctx, file, &path.key(key), v, min, secs(3600)),
    };
    let interval = timing("interval", secs(30), ms(100));
    let timeout = timing("timeout", secs(30), ms(100));
    let start_period = timing("start_period", Duration::ZERO, Duration::ZERO);
    let retries = match h.get("retries") {
        None => Some(3),
        Some(v) => integer(ctx, file, &path.key("retries"), v, 1, 100),
    };
    Some(Health::Check(HealthCheck {
        test,
        interval: interval?,
        timeout: timeout?,
        retries: retries? as u32,
        start_period: start_period?,
    }))
}

/// `mem_limit` and `cpus`, the short forms of `deploy.resources.limits`.
fn short_limits(
    ctx: &mut Ctx,
    file: usize,
    path: &KeyPath,
    mem: Option<&Value>,
    cpus: Option<&Value>,
) -> Option<Resources> {
    let mut good = true;
    let mut out = Resources::default();
    for (key, v) in [("mem_limit", mem), ("cpus", cpus)] {
        let Some(v) = v else { continue };
        let limit_key = if key == "mem_limit" { "memory" } else { "cpus" };
        let mut one = Mapping::new();
        one.insert(Value::from(limit_key), v.clone());
        // The reader names `<path>.memory`; the index then points at the service, so
        // read under the key itself and re-point its messages.
        let before = ctx.diags.len();
        let r = resources(ctx, file, &path.key(key).key("\u{0}"), &Value::Mapping(one));
        for d in &mut ctx.diags[before..] {
            d.path = path.key(key).to_string();
        }
        match r {
            Some(r) => {
                out.memory = out.memory.or(r.memory);
                out.cpus = out.cpus.or(r.cpus);
            }
            None => good = false,
        }
    }
    good.then_some(out)
}

/// `restart`: a long-running service is restarted whatever it says (`always`,
/// `unless-stopped`); a job runs until it succeeds once (`no`, `on-failure[:N]`).
fn restart(ctx: &mut Ctx, file: usize, path: &KeyPath, v: &Value, job: bool) {
    let text = v.as_str().unwrap_or_default();
    let once = text == "no" || on_failure(text);
    match v.as_str() {
        Some("always") | Some("unless-stopped") if !job => {}
        Some(_) if once && job => {}
        Some(p) if job && (p == "always" || p == "unless-stopped") => ctx.error(file, path, format!("`restart: {p}` would run this job again after it succeeded; a job runs to completion once per image: use `no` or `on-failure`")),
        Some(p) if once => ctx.error(file, path, format!("`restart: {p}` is for a one-shot job, and nothing waits for this service to complete: make the services that need it depend on it with `condition: service_completed_successfully`, or give it `x-berth: {{ migration: {{ gates: [...] }} }}`; a long-running service is restarted whenever it exits (`always`)")),
        _ => ctx.error(file, path, format!("unknown restart policy {}; use {}", describe(v), if job { "`no` or `on-failure`" } else { "`always` or `unless-stopped`" })),
    }
}

/// `on-failure` or `on-failure:N`.
fn on_failure(text: &str) -> bool {
    match text.strip_prefix("on-failure") {
        Some("") => true,
        Some(n) => n
            .strip_prefix(':')
            .is_some_and(|n| n.parse::<u32>().is_ok()),
        None => false,
    }
}

fn depends_on(
    ctx: &mut Ctx,
    file: usize,
    path: &KeyPath,
    v: &Value,
    name: &str,
    scope: &Scope,
) -> Option<Vec<String>> {
    let mut names: Vec<(KeyPath, String)> = Vec::new();
    let mut good = true;
    match v {
        Value::Sequence(_) => {
            for (i, d) in string_list(ctx, file, path, v, "`depends_on`", "[api, web]")?
                .into_iter()
                .enumerate()
            {
                names.push((path.index(i), d));
            }
        }
        Value::Mapping(m) => {
            for (k, cond) in m {
                let Some(d) = k.as_str() else { continue };
                let dp = path.key(d);
                let Some(c) = mapping(ctx, file, &dp, cond, "a dependency") else {
                    good = false;
                    continue;
                };
                let Some(c) = nested(
                    ctx,
                    file,
                    &dp,
                    c,
                    &["condition", "required"],
                    &[],
                    &[(
                        "restart",
                        "berth replaces dependants only when their own spec changes",
                    )],
                ) else {
                    good = false;
                    continue;
                };
                if let Some(r) = c.get("required") {
                    if **r != Value::Bool(true) {
                        ctx.error(
                            file,
                            &dp.key("required"),
                            "optional dependencies (`required: false`) are not supported yet",
                        );
                        good = false;
                    }
                }
                match c.get("condition").and_then(|v| v.as_str()) {
                    None | Some("service_started") | Some("service_healthy") => {}
                    Some("service_completed_successfully") if scope.jobs.contains(name) => {
                        ctx.error(file, &dp.key("condition"), format!("job `{name}` waits for another job, `{d}`; jobs waiting for jobs are not supported yet: make the services they gate depend on both"));
                        good = false;
                        continue;
                    }
                    // The job (found by the project) gates this service; not a
                    // service dependency.
                    Some("service_completed_successfully") if scope.jobs.contains(d) => continue,
                    Some("service_completed_successfully") => {}
                    Some(other) => {
                        ctx.error(file, &dp.key("condition"), format!("unknown condition `{other}`; use `service_started`, `service_healthy` or `service_completed_successfully`"));
                        good = false;
                    }
                }
                names.push((dp, d.to_string()));
            }
        }
        other => {
            ctx.error(
                file,
                path,
                format!(
                    "`depends_on` must be a list or a mapping; found {}",
                    kind(other)
                ),
            );
            return None;
        }
    }
    let mut out = Vec::new();
    for (dp, d) in names {
        if d == name {
            ctx.error(
                file,
                &dp,
                format!("service `{name}` depends on itself; remove it from `depends_on`"),
            );
            good = false;
        } else if scope.left_out.contains(&d) {
            ctx.error(file, &dp, format!("`depends_on` names `{d}`, which has `profiles` and is left out; remove the dependency or the profiles"));
            good = false;
        } else if scope.jobs.contains(&d) {
            ctx.error(file, &dp, format!("`{d}` is a job (it runs to completion, it is never healthy); wait for it with `{d}: {{ condition: service_completed_successfully }}`"));
            good = false;
        } else if !scope.services.contains(&d) {
            let known: Vec<&str> = scope.services.iter().map(String::as_str).collect();
            let hint = nearest(&d, &known)
                .map(|k| format!("; did you mean `{k}`?"))
                .unwrap_or_default();
            ctx.error(
                file,
                &dp,
                format!("`depends_on` names `{d}`, which is not a service{hint}"),
            );
            good = false;
        } else {
            out.push(d);
        }
    }
    good.then_some(out)
}

/// What `deploy:` says.
struct Deploy {
    replicas: Option<u32>,
    /// `None` after an error.
    resources: Option<Resources>,
    update: Option<(KeyPath, Mapping)>,
    placement: Option<Placement>,
    /// `resources.limits.pids`.
    pids: Option<i64>,
    /// `resources.reservations.memory`.
    reservation: Option<u64>,
}

impl Default for Deploy {
    fn default() -> Self {
        Self {
            replicas: None,
            resources: Some(Resources::default()),
            update: None,
            placement: Some(Placement::default()),
            pids: None,
            reservation: None,
        }
    }
}

fn deploy(ctx: &mut Ctx, file: usize, path: &KeyPath, v: &Value, job: bool) -> Option<Deploy> {
    let m = mapping(ctx, file, path, v, "`deploy`")?;
    let d = nested(
        ctx,
        file,
        path,
        m,
        &[
            "replicas",
            "update_config",
            "resources",
            "placement",
            "mode",
            "restart_policy",
        ],
        &["labels", "rollback_config"],
        &[(
            "endpoint_mode",
            "Swarm's load balancing; services are reached by name on their networks",
        )],
    )?;
    let mut good = true;
    if let Some(mode) = d.get("mode") {
        match mode.as_str() {
            Some("replicated") => {}
            Some("replicated-job") | Some("global-job") => {
                ctx.error(file, &path.key("mode"), format!("`mode: {}` (Swarm's jobs) is not supported; a job in berth is a service that others wait for with `condition: service_completed_successfully`, or that has `x-berth.migration`: it runs once per image before them", mode.as_str().unwrap_or_default()));
                good = false;
            }
            _ => {
                ctx.error(file, &path.key("mode"), format!("deploy mode {} is not supported yet; berth runs `replicas` on every host the placement admits", describe(mode)));
                good = false;
            }
        }
    }
    if let Some(rp) = d.get("restart_policy") {
        let rpp = path.key("restart_policy");
        if let Some(r) = mapping(ctx, file, &rpp, rp, "`restart_policy`").and_then(|r| {
            nested(
                ctx,
                file,
                &rpp,
                r,
                &["condition"],
                &["delay", "max_attempts", "window"],
                &[],
            )
        }) {
            match (r.get("condition").and_then(|c| c.as_str()), job) {
                (None | Some("any"), false) | (Some("none" | "on-failure"), true) => {}
                (None | Some("any"), true) => {
                    ctx.error(file, &rpp.key("condition"), "`condition: any` would run this job again after it succeeded; a job runs to completion once per image: use `none` or `on-failure`");
                    good = false;
                }
                (Some(c @ ("none" | "on-failure")), false) => {
                    ctx.error(file, &rpp.key("condition"), format!("`condition: {c}` is for a one-shot job, and nothing waits for this service to complete: make the services that need it depend on it with `condition: service_completed_successfully`; a long-running service is restarted whenever it exits (`any`)"));
                    good = false;
                }
                (Some(c), _) => {
                    ctx.error(
                        file,
                        &rpp.key("condition"),
                        format!(
                            "unknown restart condition `{c}`; use `any`, `on-failure` or `none`"
                        ),
                    );
                    good = false;
                }
            }
        } else {
            good = false;
        }
    }
    let replicas = match d.get("replicas") {
        None => None,
        Some(v) => match integer(ctx, file, &path.key("replicas"), v, 0, MAX_REPLICAS) {
            Some(n) => Some(n as u32),
            None => {
                good = false;
                None
            }
        },
    };
    let mut pids = None;
    let mut reservation = None;
    let resources = match d.get("resources") {
        None => Some(Resources::default()),
        Some(v) => {
            let rp = path.key("resources");
            let r = mapping(ctx, file, &rp, v, "`resources`")
                .and_then(|r| nested(ctx, file, &rp, r, &["limits", "reservations"], &[], &[]));
            if let Some(res) = r.as_ref().and_then(|r| r.get("reservations")) {
                let sp = rp.key("reservations");
                let kept = mapping(ctx, file, &sp, res, "`reservations`").and_then(|m| {
                    nested(
                        ctx,
                        file,
                        &sp,
                        m,
                        &["memory"],
                        &["cpus", "devices", "generic_resources"],
                        &[],
                    )
                });
                match kept {
                    Some(k) => {
                        if let Some(m) = k.get("memory") {
                            reservation = options::size(ctx, file, &sp.key("memory"), m, 6 << 20);
                            good &= reservation.is_some();
                        }
                    }
                    None => good = false,
                }
            }
            r.and_then(|r| match r.get("limits") {
                None => Some(Resources::default()),
                Some(l) => {
                    let lp = rp.key("limits");
                    let l = mapping(ctx, file, &lp, l, "`limits`")?;
                    let kept = nested(
                        ctx,
                        file,
                        &lp,
                        l,
                        &["memory", "cpus", "pids"],
                        &["devices"],
                        &[],
                    )?;
                    let mut limits = Mapping::new();
                    for (k, v) in kept {
                        if k == "pids" {
                            pids = options::pids(ctx, file, &lp.key("pids"), v);
                            good &= pids.is_some();
                        } else {
                            limits.insert(Value::from(k), v.clone());
                        }
                    }
                    resources(ctx, file, &lp, &Value::Mapping(limits))
                }
            })
        }
    };
    let update = match d.get("update_config") {
        None => None,
        Some(v) => {
            let up = path.key("update_config");
            match mapping(ctx, file, &up, v, "`update_config`") {
                Some(m) => Some((up, m.clone())),
                None => {
                    good = false;
                    None
                }
            }
        }
    };
    let placement = match d.get("placement") {
        None => Some(Placement::default()),
        Some(v) => placement(ctx, file, &path.key("placement"), v),
    };
    if !good {
        return None;
    }
    Some(Deploy {
        replicas,
        resources,
        update,
        placement,
        pids,
        reservation,
    })
}

/// `deploy.placement.constraints`: `node.hostname == X` and `node.labels.K == V`.
fn placement(ctx: &mut Ctx, file: usize, path: &KeyPath, v: &Value) -> Option<Placement> {
    let m = mapping(ctx, file, path, v, "`placement`")?;
    let p = nested(
        ctx,
        file,
        path,
        m,
        &["constraints"],
        &["preferences", "max_replicas_per_node"],
        &[],
    )?;
    let mut out = Placement::default();
    let Some(c) = p.get("constraints") else {
        return Some(out);
    };
    let cp = path.key("constraints");
    let list = string_list(
        ctx,
        file,
        &cp,
        c,
        "`constraints`",
        "[\"node.hostname == web-1\"]",
    )?;
    let mut good = true;
    for (i, text) in list.iter().enumerate() {
        let parsed = text.split_once("==").map(|(l, r)| (l.trim(), r.trim()));
        match parsed {
            Some(("node.hostname", host)) if !host.is_empty() => out.hosts.push(host.to_string()),
            Some((l, value))
                if l.starts_with("node.labels.") && l.len() > 12 && !value.is_empty() =>
            {
                out.labels
                    .insert(l["node.labels.".len()..].to_string(), value.to_string());
            }
            _ => {
                ctx.error(file, &cp.index(i), format!("constraint `{text}` is not supported yet; berth reads `node.hostname == HOST` and `node.labels.KEY == VALUE`"));
                good = false;
            }
        }
    }
    if out.hosts.len() > 1 {
        // Swarm ANDs constraints: two host names can never both hold.
        ctx.error(
            file,
            &cp,
            "two `node.hostname ==` constraints can never both hold; keep one",
        );
        good = false;
    }
    good.then_some(out)
}

/// `deploy.update_config` and `x-berth` into berth's update policy.
fn update(
    ctx: &mut Ctx,
    file: usize,
    path: &KeyPath,
    cfg: Option<&(KeyPath, Mapping)>,
    berth: Option<&Value>,
    publishes: bool,
) -> Option<UpdatePolicy> {
    let mut u = default_update(publishes);
    let secs = Duration::from_secs;
    let mut good = true;
    if let Some((up, m)) = cfg {
        let c = nested(
            ctx,
            file,
            up,
            m,
            &["parallelism", "delay", "order", "monitor", "failure_action"],
            &["max_failure_ratio"],
            &[],
        )?;
        if let Some(v) = c.get("parallelism") {
            match integer(ctx, file, &up.key("parallelism"), v, 0, 100) {
                Some(0) => {
                    ctx.error(file, &up.key("parallelism"), "`parallelism: 0` (all at once) is not supported; give the number of replicas replaced at a time");
                    good = false;
                }
                Some(n) => u.parallelism = n as u32,
                None => good = false,
            }
        }
        if let Some(v) = c.get("delay") {
            match duration(ctx, file, &up.key("delay"), v, Duration::ZERO, secs(3600)) {
                Some(d) => u.delay = d,
                None => good = false,
            }
        }
        if let Some(v) = c.get("order") {
            match v.as_str() {
                Some("start-first") if publishes => {
                    ctx.error(file, &up.key("order"), "`start-first` cannot be used by a service that publishes host ports (two replicas cannot bind one port); use `stop-first` or publish through the proxy");
                    good = false;
                }
                Some("start-first") => u.order = UpdateOrder::StartFirst,
                Some("stop-first") => u.order = UpdateOrder::StopFirst,
                _ => {
                    ctx.error(
                        file,
                        &up.key("order"),
                        format!(
                            "unknown update order {}; use `start-first` or `stop-first`",
                            describe(v)
                        ),
                    );
                    good = false;
                }
            }
        }
        if let Some(v) = c.get("monitor") {
            match duration(ctx, file, &up.key("monitor"), v, Duration::ZERO, secs(3600)) {
                Some(d) => u.monitor = d,
                None => good = false,
            }
        }
        if let Some(v) = c.get("failure_action") {
            match v.as_str() {
                Some("rollback") => u.on_failure = OnFailure::Rollback,
                Some("pause") => u.on_failure = OnFailure::Pause,
                _ => {
                    ctx.error(
                        file,
                        &up.key("failure_action"),
                        format!(
                            "failure_action {} is not supported; use `rollback` or `pause`",
                            describe(v)
                        ),
                    );
                    good = false;
                }
            }
        }
    }
    if let Some(v) = berth {
        let bp = path.key("x-berth");
        let m = mapping(ctx, file, &bp, v, "`x-berth`")?;
        let b = nested(
            ctx,
            file,
            &bp,
            m,
            &["deadline", "max_hosts", "canary", "migration"],
            &[],
            &[],
        )?;
        if let Some(v) = b.get("deadline") {
            match duration(ctx, file, &bp.key("deadline"), v, secs(1), secs(24 * 3600)) {
                Some(d) => u.deadline = d,
                None => good = false,
            }
        }
        if let Some(v) = b.get("max_hosts") {
            match integer(ctx, file, &bp.key("max_hosts"), v, 1, 1000) {
                Some(n) => u.max_hosts = Some(n as u32),
                None => good = false,
            }
        }
        if let Some(v) = b.get("canary") {
            match string(ctx, file, &bp.key("canary"), v, "web-1") {
                Some(c) => u.canary = Some(c),
                None => good = false,
            }
        }
    }
    good.then_some(u)
}
