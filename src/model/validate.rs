//! Phase two: the rules of desired-state format v1, turning raw entries into a [`Spec`].
//! Every rule reports through the context and carries on, so one pass finds every error.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::PathBuf;
use std::time::Duration;

use serde_yaml::Value;

use super::diagnostic::shown;
use super::image::ImageRef;
use super::load::{is_known, kind, Ctx, Entry, Merged};
use super::location::KeyPath;
use super::raw::{KnownKeys, RawHealth, RawMigration, RawResources, RawService, RawUpdate};
use super::spec::*;
use super::tree::join_inside;
use super::units::{format_duration, parse_duration, parse_size, UnitError};

/// The most replicas one service may ask for on one host.
pub const MAX_REPLICAS: i64 = 1000;

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
    let first_file = 0;
    let project = match &merged.project {
        None => {
            if !ctx.files.is_empty() && !ctx.has_errors() {
                ctx.error(first_file, &root, "`project` is missing; add e.g. `project: shop` (it prefixes every container, network and volume)");
            }
            None
        }
        Some((file, Value::String(p))) => {
            if valid_name(p, 31, &[]) {
                Some(p.clone())
            } else {
                ctx.error(*file, &root.key("project"), format!("project name `{p}` is invalid; use a lowercase letter then up to 30 lowercase letters, digits or `-` (e.g. `shop`)"));
                None
            }
        }
        Some((file, other)) => {
            let msg = format!(
                "`project` must be a string such as `shop`; found {}",
                kind(other)
            );
            ctx.error(*file, &root.key("project"), msg);
            None
        }
    };

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
    let mut services = BTreeMap::new();
    for (name, entry) in &merged.services {
        let path = root.key("services").key(name);
        if let Some(svc) = service(
            ctx,
            name,
            entry,
            &path,
            &network_names,
            &volumes,
            &all_services,
        ) {
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
        if let Some(m) = migration(ctx, name, entry, &path, &services, &all_services) {
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

pub(crate) fn string(
    ctx: &mut Ctx,
    file: usize,
    path: &KeyPath,
    v: &Value,
    example: &str,
) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        other => {
            ctx.error(
                file,
                path,
                format!(
                    "expected a string such as `{example}`; found {}",
                    kind(other)
                ),
            );
            None
        }
    }
}

/// A scalar rendered as a string (env values may be written as numbers or booleans).
pub(crate) fn scalar(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

pub(crate) fn integer(
    ctx: &mut Ctx,
    file: usize,
    path: &KeyPath,
    v: &Value,
    min: i64,
    max: i64,
) -> Option<i64> {
    let n = match v {
        Value::Number(n) => n.as_i64(),
        _ => None,
    };
    match n {
        Some(n) if (min..=max).contains(&n) => Some(n),
        Some(n) => {
            ctx.error(
                file,
                path,
                format!("{n} is out of range; use a whole number from {min} to {max}"),
            );
            None
        }
        None => {
            ctx.error(
                file,
                path,
                format!(
                    "expected a whole number from {min} to {max}; found {}",
                    describe(v)
                ),
            );
            None
        }
    }
}

pub(crate) fn describe(v: &Value) -> String {
    match v {
        Value::String(s) => format!("the string `{}`", shown(s)),
        Value::Number(n) => format!("the number {n}"),
        other => kind(other).to_string(),
    }
}

pub(crate) fn duration(
    ctx: &mut Ctx,
    file: usize,
    path: &KeyPath,
    v: &Value,
    min: Duration,
    max: Duration,
) -> Option<Duration> {
    let text = match v {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        other => {
            ctx.error(
                file,
                path,
                format!("expected a duration such as `10s`; found {}", kind(other)),
            );
            return None;
        }
    };
    match parse_duration(&text) {
        Ok(d) if d >= min && d <= max => Some(d),
        Ok(_) | Err(UnitError::TooLarge(_)) => {
            ctx.error(
                file,
                path,
                format!(
                    "duration `{}` is out of range; use {} to {}",
                    shown(&text),
                    format_duration(min),
                    format_duration(max)
                ),
            );
            None
        }
        Err(e) => {
            ctx.error(file, path, e.to_string());
            None
        }
    }
}

pub(crate) fn string_list(
    ctx: &mut Ctx,
    file: usize,
    path: &KeyPath,
    v: &Value,
    what: &str,
    example: &str,
) -> Option<Vec<String>> {
    let Value::Sequence(items) = v else {
        let hint = match v {
            Value::String(s) => format!("; write it as a list, e.g. {}", as_list(s)),
            _ => String::new(),
        };
        ctx.error(
            file,
            path,
            format!(
                "{what} must be a list such as {example}; found {}{hint}",
                kind(v)
            ),
        );
        return None;
    };
    let mut out = Vec::new();
    let mut ok = true;
    for (i, item) in items.iter().enumerate() {
        match scalar(item) {
            Some(s) => out.push(s),
            None => {
                ctx.error(
                    file,
                    &path.index(i),
                    format!("each item of {what} must be a string; found {}", kind(item)),
                );
                ok = false;
            }
        }
    }
    ok.then_some(out)
}

fn as_list(s: &str) -> String {
    let words: Vec<String> = s.split_whitespace().map(|w| format!("\"{w}\"")).collect();
    format!("[{}]", words.join(", "))
}

fn service(
    ctx: &mut Ctx,
    name: &str,
    entry: &Entry,
    path: &KeyPath,
    network_names: &[String],
    volumes: &BTreeMap<String, VolumeSpec>,
    all_services: &BTreeSet<&str>,
) -> Option<ServiceSpec> {
    let keys = KnownKeys::get();
    let file = entry.file;
    let mut ok = true;
    if !valid_name(name, 31, &[]) {
        ctx.key_error(file, path, format!("service name `{name}` is invalid; use a lowercase letter then up to 30 lowercase letters, digits or `-` (it becomes a container name and a network alias)"));
        ok = false;
    }
    let raw: RawService = raw(ctx, file, path, &entry.value, &keys.service, "a service")?;

    let image = match &raw.image {
        None => {
            ctx.key_error(file, path, "`image` is missing; add a pinned image such as `registry.example.com/app:sha-3f2c1e9`");
            None
        }
        Some(v) => string(ctx, file, &path.key("image"), v, "app:sha-3f2c1e9").and_then(|s| match ImageRef::parse(&s) {
            Ok(img) if img.is_pinned() => Some(img),
            Ok(img) => {
                let why = if img.tag.is_some() { "`latest` moves" } else { "no tag means `latest`, which moves" };
                ctx.error(file, &path.key("image"), format!("image `{s}` is not pinned ({why}); use an explicit tag such as `{}:sha-<git sha>` or a digest", img.repository));
                None
            }
            Err(e) => {
                ctx.error(file, &path.key("image"), e);
                None
            }
        }),
    };

    let replicas = match &raw.replicas {
        None => Some(1),
        Some(v) => integer(ctx, file, &path.key("replicas"), v, 0, MAX_REPLICAS).map(|n| n as u32),
    };

    let command = match &raw.command {
        None => Some(None),
        Some(v) => string_list(
            ctx,
            file,
            &path.key("command"),
            v,
            "`command`",
            "[\"uvicorn\", \"app:app\"]",
        )
        .and_then(|c| {
            if c.is_empty() {
                ctx.error(
                    file,
                    &path.key("command"),
                    "`command` is empty; leave it out to use the image's command",
                );
                None
            } else {
                Some(Some(c))
            }
        }),
    };

    let env = match &raw.env {
        None => Some(BTreeMap::new()),
        Some(v) => env_map(ctx, file, &path.key("env"), v),
    };

    let env_files = match &raw.env_file {
        None => Some(Vec::new()),
        Some(v) => string(ctx, file, &path.key("env_file"), v, "/etc/berth/shop/api.env").and_then(|s| {
            if s.starts_with('/') {
                Some(vec![EnvFileRef { path: PathBuf::from(s), required: true }])
            } else {
                ctx.error(file, &path.key("env_file"), format!("env_file `{s}` must be an absolute path on the host (e.g. `/etc/berth/<project>/{name}.env`); secrets do not live in the repository"));
                None
            }
        }),
    };

    let expose = match &raw.expose {
        None => Some(Vec::new()),
        Some(Value::Sequence(items)) => {
            let mut out = Vec::new();
            let mut good = true;
            for (i, item) in items.iter().enumerate() {
                let p = path.key("expose").index(i);
                let text = scalar(item).unwrap_or_default();
                match text.trim_end_matches("/tcp").parse::<u16>() {
                    Ok(port) if port > 0 => out.push(port),
                    _ => {
                        ctx.error(
                            file,
                            &p,
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
        Some(other) => {
            ctx.error(
                file,
                &path.key("expose"),
                format!(
                    "`expose` must be a list of ports such as [8000]; found {}",
                    kind(other)
                ),
            );
            None
        }
    };

    let ports = match &raw.ports {
        None => Some(Vec::new()),
        Some(v) => string_list(
            ctx,
            file,
            &path.key("ports"),
            v,
            "`ports`",
            "[\"80:80\", \"443:443/udp\"]",
        )
        .and_then(|list| {
            let mut out = Vec::new();
            let mut good = true;
            for (i, p) in list.iter().enumerate() {
                match parse_port(p) {
                    Ok(m) => out.push(m),
                    Err(e) => {
                        ctx.error(file, &path.key("ports").index(i), e);
                        good = false;
                    }
                }
            }
            good.then_some(out)
        }),
    };

    let networks = match &raw.networks {
        None => Some(network_names.to_vec()),
        Some(v) => string_list(ctx, file, &path.key("networks"), v, "`networks`", "[backend]").and_then(|list| {
            let mut good = true;
            for (i, n) in list.iter().enumerate() {
                if !network_names.contains(n) {
                    // Past the diagnostics kept, no hint is worked out: each costs a
                    // pass over every name.
                    let hint = if ctx.is_full() { String::new() } else {
                        let known: Vec<&str> = network_names.iter().map(String::as_str).collect();
                        super::diagnostic::nearest(n, &known).map(|k| format!("; did you mean `{k}`?")).unwrap_or_else(|| format!("; declare it under `networks:` (declared: {})", known.join(", ")))
                    };
                    ctx.error(file, &path.key("networks").index(i), format!("network `{}` is not declared{hint}", shown(n)));
                    good = false;
                }
            }
            if list.is_empty() {
                ctx.error(file, &path.key("networks"), "`networks` is empty; a service joins at least one network (leave it out for all)");
                good = false;
            }
            good.then_some(list)
        }),
    };

    let mounts = match &raw.volumes {
        None => Some(Vec::new()),
        Some(v) => string_list(
            ctx,
            file,
            &path.key("volumes"),
            v,
            "`volumes`",
            "[\"data:/var/lib/data\"]",
        )
        .and_then(|list| {
            let mut out: Vec<Mount> = Vec::new();
            let mut good = true;
            for (i, spec) in list.iter().enumerate() {
                let p = path.key("volumes").index(i);
                match mount(ctx, file, &p, spec, volumes) {
                    Some(m) => {
                        if out.iter().any(|o| o.target == m.target) {
                            ctx.error(
                                file,
                                &p,
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
            good.then_some(out)
        }),
    };

    let health = match &raw.health {
        None => Some(Health::Image),
        Some(v) => health(ctx, file, &path.key("health"), v),
    };
    if raw.health.is_none() && replicas.unwrap_or(1) > 0 {
        ctx.warning(file, path, "no `health` check; berth uses the image's HEALTHCHECK, and a replica of an image without one counts healthy after `update.monitor` of running");
    }

    let resources = match &raw.resources {
        None => Some(Resources::default()),
        Some(v) => resources(ctx, file, &path.key("resources"), v),
    };

    let stop_grace = match &raw.stop_grace {
        None => Some(Duration::from_secs(10)),
        Some(v) => duration(
            ctx,
            file,
            &path.key("stop_grace"),
            v,
            Duration::ZERO,
            Duration::from_secs(3600),
        ),
    };

    let publishes = ports.as_ref().is_some_and(|p| !p.is_empty());
    let update = match &raw.update {
        None => Some(default_update(publishes)),
        Some(v) => update(ctx, file, &path.key("update"), v, publishes),
    };

    let depends_on = match &raw.depends_on {
        None => Some(Vec::new()),
        Some(v) => string_list(
            ctx,
            file,
            &path.key("depends_on"),
            v,
            "`depends_on`",
            "[api, web]",
        )
        .and_then(|list| {
            let mut good = true;
            for (i, d) in list.iter().enumerate() {
                let p = path.key("depends_on").index(i);
                if d == name {
                    ctx.error(
                        file,
                        &p,
                        format!("service `{name}` depends on itself; remove it from `depends_on`"),
                    );
                    good = false;
                } else if !all_services.contains(d.as_str()) {
                    let hint = if ctx.is_full() {
                        String::new()
                    } else {
                        let known: Vec<&str> = all_services.iter().copied().collect();
                        super::diagnostic::nearest(d, &known)
                            .map(|k| format!("; did you mean `{k}`?"))
                            .unwrap_or_default()
                    };
                    ctx.error(
                        file,
                        &p,
                        format!("`depends_on` names `{d}`, which is not a service{hint}"),
                    );
                    good = false;
                }
            }
            good.then_some(list)
        }),
    };

    let placement = match &raw.placement {
        None => Some(Placement::default()),
        Some(v) => placement(ctx, file, &path.key("placement"), v),
    };

    if let (Some(ports), Some(n)) = (&ports, replicas) {
        if n > 1 && !ports.is_empty() {
            ctx.error(file, &path.key("replicas"), format!("`{name}` publishes host port {} and has {n} replicas, which would all bind it; use 1 replica, or publish through the proxy", ports[0].host_port));
            ok = false;
        }
    }

    if let (Some(u), Some(pl)) = (&update, &placement) {
        if let Some(c) = &u.canary {
            if !pl.hosts.is_empty() && !pl.hosts.contains(c) {
                ctx.error(file, &path.key("update").key("canary"), format!("canary host `{c}` is not in `placement.hosts`, so it never runs `{name}` and the other hosts would wait for it forever; name one of {}", pl.hosts.join(", ")));
                ok = false;
            }
        }
    }

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

/// Parses `[ip:]host:container[/proto]`.
pub(crate) fn parse_port(text: &str) -> Result<PortMapping, String> {
    let (body, protocol) = match text.rsplit_once('/') {
        Some((b, "tcp")) => (b, Protocol::Tcp),
        Some((b, "udp")) => (b, Protocol::Udp),
        Some((_, p)) => {
            return Err(format!(
                "port `{text}` has unknown protocol `{p}`; use `tcp` or `udp`"
            ))
        }
        None => (text, Protocol::Tcp),
    };
    let parts: Vec<&str> = body.rsplitn(3, ':').collect();
    let (host_ip, host, container) = match parts.as_slice() {
        [c, h] => (None, *h, *c),
        [c, h, ip] => (Some(ip.trim_matches(['[', ']']).to_string()), *h, *c),
        _ => return Err(format!("port `{text}` must be `HOST:CONTAINER` (e.g. `80:80`), optionally with an address (`127.0.0.1:8080:80`) and `/udp`")),
    };
    let num = |s: &str, what: &str| -> Result<u16, String> {
        match s.parse::<u16>() {
            Ok(n) if n > 0 => Ok(n),
            _ => Err(format!(
                "{what} port `{s}` in `{text}` must be a number from 1 to 65535"
            )),
        }
    };
    if let Some(ip) = &host_ip {
        if ip.parse::<std::net::IpAddr>().is_err() {
            return Err(format!(
                "host address `{ip}` in `{text}` is not an IP address"
            ));
        }
    }
    Ok(PortMapping {
        host_ip,
        host_port: num(host, "host")?,
        container_port: num(container, "container")?,
        protocol,
    })
}

pub(crate) fn mount(
    ctx: &mut Ctx,
    file: usize,
    path: &KeyPath,
    spec: &str,
    volumes: &BTreeMap<String, VolumeSpec>,
) -> Option<Mount> {
    let parts: Vec<&str> = spec.split(':').collect();
    let (source, target, mode) = match parts.as_slice() {
        [s, t] => (*s, *t, None),
        [s, t, m] => (*s, *t, Some(*m)),
        _ => {
            ctx.error(file, path, format!("mount `{spec}` must be `SOURCE:TARGET[:ro]`, e.g. `data:/var/lib/data` or `./files/app.conf:/etc/app.conf:ro`"));
            return None;
        }
    };
    let read_only = match mode {
        None | Some("rw") => false,
        Some("ro") => true,
        Some(m) => {
            ctx.error(
                file,
                path,
                format!("mount mode `{m}` in `{spec}` is unknown; use `ro` or `rw`"),
            );
            return None;
        }
    };
    if !target.starts_with('/') {
        ctx.error(
            file,
            path,
            format!("mount target `{target}` must be an absolute path in the container"),
        );
        return None;
    }
    let source = if source.starts_with("./") || source.starts_with("../") || source == "." {
        let dir = ctx.files[file].dir.clone();
        let Some(rel) = join_inside(&dir, source) else {
            ctx.error(
                file,
                path,
                format!("`{source}` leads outside the repository; mount files from inside it"),
            );
            return None;
        };
        super::repo_mount::read(ctx, file, path, source, &rel)?
    } else if source.starts_with('/') {
        let host = PathBuf::from(source);
        let allowed = &ctx.opts.allow_host_paths;
        let checked = if ctx.opts.check_on_host {
            super::host_path::check_on_host(&host, read_only, allowed).map(drop)
        } else {
            super::host_path::check_spelling(&host, read_only, allowed)
        };
        if let Err(e) = checked {
            ctx.error(file, path, e);
            return None;
        }
        MountSource::HostPath(host)
    } else if volumes.contains_key(source) {
        MountSource::Volume(source.to_string())
    } else {
        let known: Vec<&str> = if ctx.is_full() {
            Vec::new()
        } else {
            volumes.keys().map(String::as_str).collect()
        };
        let hint = super::diagnostic::nearest(source, &known)
            .map(|k| format!("did you mean `{k}`?"))
            .unwrap_or_else(|| {
                "declare it under `volumes:`, or write `./` before a repository file".to_string()
            });
        ctx.error(
            file,
            path,
            format!("volume `{source}` is not declared; {hint}"),
        );
        return None;
    };
    Some(Mount {
        source,
        target: target.to_string(),
        read_only,
    })
}

fn health(ctx: &mut Ctx, file: usize, path: &KeyPath, v: &Value) -> Option<Health> {
    let raw: RawHealth = raw(ctx, file, path, v, &KnownKeys::get().health, "`health`")?;
    let Some(test) = &raw.test else {
        ctx.key_error(file, path, "`health.test` is missing; e.g. [\"CMD\", \"wget\", \"-q\", \"-O-\", \"http://localhost:8000/health\"]");
        return None;
    };
    let test = match test {
        Value::String(s) => Some(vec!["CMD-SHELL".to_string(), s.clone()]),
        other => string_list(
            ctx,
            file,
            &path.key("test"),
            other,
            "`health.test`",
            "[\"CMD\", \"curl\", \"-f\", \"http://localhost/health\"]",
        ),
    };
    let test = test.and_then(|t| match t.first().map(String::as_str) {
        Some("NONE") if t.len() == 1 => Some(t),
        Some("CMD") | Some("CMD-SHELL") if t.len() >= 2 => Some(t),
        _ => {
            ctx.error(file, &path.key("test"), "`health.test` must start with \"CMD\" or \"CMD-SHELL\" followed by the command, or be [\"NONE\"]");
            None
        }
    });
    let ms = Duration::from_millis;
    let secs = Duration::from_secs;
    let interval = raw.interval.as_ref().map_or(Some(secs(5)), |v| {
        duration(ctx, file, &path.key("interval"), v, ms(100), secs(3600))
    });
    let timeout = raw.timeout.as_ref().map_or(Some(secs(3)), |v| {
        duration(ctx, file, &path.key("timeout"), v, ms(100), secs(3600))
    });
    let retries = raw.retries.as_ref().map_or(Some(3), |v| {
        integer(ctx, file, &path.key("retries"), v, 1, 100)
    });
    let start_period = raw.start_period.as_ref().map_or(Some(Duration::ZERO), |v| {
        duration(
            ctx,
            file,
            &path.key("start_period"),
            v,
            Duration::ZERO,
            secs(3600),
        )
    });
    let test = test?;
    if test[0] == "NONE" {
        return Some(Health::Disabled);
    }
    Some(Health::Check(HealthCheck {
        test,
        interval: interval?,
        timeout: timeout?,
        retries: retries? as u32,
        start_period: start_period?,
    }))
}

pub(crate) fn resources(
    ctx: &mut Ctx,
    file: usize,
    path: &KeyPath,
    v: &Value,
) -> Option<Resources> {
    let raw: RawResources = raw(
        ctx,
        file,
        path,
        v,
        &KnownKeys::get().resources,
        "`resources`",
    )?;
    let memory = match &raw.memory {
        None => Some(None),
        Some(v) => {
            let p = path.key("memory");
            match scalar(v).map(|s| parse_size(&s)) {
                Some(Ok(n)) if (6 << 20..=1 << 40).contains(&n) => Some(Some(n)),
                Some(Ok(_)) | Some(Err(UnitError::TooLarge(_))) => {
                    ctx.error(
                        file,
                        &p,
                        "memory limit is out of range; use 6m to 1t (Docker's minimum is 6m)",
                    );
                    None
                }
                Some(Err(e)) => {
                    ctx.error(file, &p, e.to_string());
                    None
                }
                None => {
                    ctx.error(
                        file,
                        &p,
                        format!("expected a size such as `512m`; found {}", kind(v)),
                    );
                    None
                }
            }
        }
    };
    let cpus = match &raw.cpus {
        None => Some(None),
        Some(v) => {
            let p = path.key("cpus");
            match scalar(v).and_then(|s| s.parse::<f64>().ok()) {
                Some(c) if (0.01..=1024.0).contains(&c) => Some(Some(c)),
                Some(_) => {
                    ctx.error(file, &p, "cpus is out of range; use 0.01 to 1024 (cores)");
                    None
                }
                None => {
                    ctx.error(
                        file,
                        &p,
                        format!(
                            "expected a number of cores such as 0.5; found {}",
                            describe(v)
                        ),
                    );
                    None
                }
            }
        }
    };
    Some(Resources {
        memory: memory?,
        cpus: cpus?,
    })
}

fn placement(ctx: &mut Ctx, file: usize, path: &KeyPath, v: &Value) -> Option<Placement> {
    let raw: super::raw::RawPlacement = raw(
        ctx,
        file,
        path,
        v,
        &KnownKeys::get().placement,
        "`placement`",
    )?;
    let hosts = match &raw.hosts {
        None => Some(Vec::new()),
        Some(v) => string_list(ctx, file, &path.key("hosts"), v, "`placement.hosts`", "[web-1, web-2]").filter(|h| {
            if h.is_empty() {
                ctx.error(file, &path.key("hosts"), "`placement.hosts` is empty, so no host would run the service; leave it out for every host, or set `replicas: 0`");
                false
            } else {
                true
            }
        }),
    };
    let labels = match &raw.labels {
        None => Some(BTreeMap::new()),
        Some(Value::Mapping(m)) => {
            let mut out = BTreeMap::new();
            let mut good = true;
            for (k, val) in m {
                match (k.as_str(), scalar(val)) {
                    (Some(k), Some(val)) => {
                        out.insert(k.to_string(), val);
                    }
                    _ => {
                        ctx.error(
                            file,
                            &path.key("labels"),
                            "`placement.labels` maps label names to values, e.g. { role: web }",
                        );
                        good = false;
                    }
                }
            }
            good.then_some(out)
        }
        Some(other) => {
            ctx.error(
                file,
                &path.key("labels"),
                format!(
                    "`placement.labels` must be a mapping such as {{ role: web }}; found {}",
                    kind(other)
                ),
            );
            None
        }
    };
    Some(Placement {
        hosts: hosts?,
        labels: labels?,
    })
}

pub(crate) fn default_update(publishes: bool) -> UpdatePolicy {
    UpdatePolicy {
        order: if publishes {
            UpdateOrder::StopFirst
        } else {
            UpdateOrder::StartFirst
        },
        parallelism: 1,
        delay: Duration::ZERO,
        monitor: Duration::from_secs(5),
        deadline: Duration::from_secs(120),
        on_failure: OnFailure::Rollback,
        max_hosts: None,
        canary: None,
    }
}

fn update(
    ctx: &mut Ctx,
    file: usize,
    path: &KeyPath,
    v: &Value,
    publishes: bool,
) -> Option<UpdatePolicy> {
    let raw: RawUpdate = raw(ctx, file, path, v, &KnownKeys::get().update, "`update`")?;
    let d = default_update(publishes);
    let secs = Duration::from_secs;
    let order = match &raw.order {
        None => Some(d.order),
        Some(v) => match scalar(v).as_deref() {
            Some("start-first") if publishes => {
                ctx.error(file, &path.key("order"), "`start-first` cannot be used by a service that publishes host ports (two replicas cannot bind one port); use `stop-first` or publish through the proxy");
                None
            }
            Some("start-first") => Some(UpdateOrder::StartFirst),
            Some("stop-first") => Some(UpdateOrder::StopFirst),
            _ => {
                let hint = scalar(v).and_then(|s| {
                    super::diagnostic::nearest(&s, &["start-first", "stop-first"])
                        .map(|n| format!("did you mean `{n}`? "))
                });
                ctx.error(
                    file,
                    &path.key("order"),
                    format!(
                        "unknown update order {}; {}use `start-first` or `stop-first`",
                        describe(v),
                        hint.unwrap_or_default()
                    ),
                );
                None
            }
        },
    };
    let parallelism = raw
        .parallelism
        .as_ref()
        .map_or(Some(d.parallelism as i64), |v| {
            integer(ctx, file, &path.key("parallelism"), v, 1, 100)
        });
    let monitor = raw.monitor.as_ref().map_or(Some(d.monitor), |v| {
        duration(
            ctx,
            file,
            &path.key("monitor"),
            v,
            Duration::ZERO,
            secs(3600),
        )
    });
    let deadline = raw.deadline.as_ref().map_or(Some(d.deadline), |v| {
        duration(
            ctx,
            file,
            &path.key("deadline"),
            v,
            secs(1),
            secs(24 * 3600),
        )
    });
    let on_failure = match &raw.on_failure {
        None => Some(d.on_failure),
        Some(v) => match scalar(v).as_deref() {
            Some("rollback") => Some(OnFailure::Rollback),
            Some("pause") => Some(OnFailure::Pause),
            _ => {
                ctx.error(
                    file,
                    &path.key("on_failure"),
                    format!(
                        "unknown on_failure {}; use `rollback` or `pause`",
                        describe(v)
                    ),
                );
                None
            }
        },
    };
    let max_hosts = match &raw.max_hosts {
        None => Some(None),
        Some(v) => integer(ctx, file, &path.key("max_hosts"), v, 1, 1000).map(|n| Some(n as u32)),
    };
    let canary = match &raw.canary {
        None => Some(None),
        Some(v) => string(ctx, file, &path.key("canary"), v, "web-1").map(Some),
    };
    Some(UpdatePolicy {
        order: order?,
        parallelism: parallelism? as u32,
        delay: Duration::ZERO,
        monitor: monitor?,
        deadline: deadline?,
        on_failure: on_failure?,
        max_hosts: max_hosts?,
        canary: canary?,
    })
}

/// Host ports must not collide across services: the same port and protocol on the
/// same address, or on any address when one side binds all of them.
pub(crate) fn check_ports(
    ctx: &mut Ctx,
    merged: &Merged,
    services: &BTreeMap<String, ServiceSpec>,
) {
    let mut seen: Vec<(&str, usize, &PortMapping)> = Vec::new();
    for (name, svc) in services {
        for (i, p) in svc.ports.iter().enumerate() {
            let clash = seen.iter().find(|(_, _, q)| {
                q.host_port == p.host_port
                    && q.protocol == p.protocol
                    && (q.host_ip.is_none() || p.host_ip.is_none() || q.host_ip == p.host_ip)
            });
            if let Some((other, _, _)) = clash {
                let file = merged.services[name].file;
                let msg = if *other == name.as_str() {
                    format!(
                        "host port {}/{} is published twice by `{name}`",
                        p.host_port,
                        p.protocol.as_str()
                    )
                } else {
                    format!("host port {}/{} is already published by service `{other}`; pick another host port", p.host_port, p.protocol.as_str())
                };
                ctx.error(
                    file,
                    &KeyPath::root()
                        .key("services")
                        .key(name)
                        .key("ports")
                        .index(i),
                    msg,
                );
            }
            seen.push((name, i, p));
        }
    }
}

/// `depends_on` must not form a cycle; each cycle is reported once.
pub(crate) fn check_cycles(
    ctx: &mut Ctx,
    merged: &Merged,
    services: &BTreeMap<String, ServiceSpec>,
) {
    let mut state: HashMap<&str, u8> = HashMap::new(); // 1 = on stack, 2 = done
    let mut reported: BTreeSet<Vec<String>> = BTreeSet::new();
    fn visit<'a>(
        n: &'a str,
        services: &'a BTreeMap<String, ServiceSpec>,
        state: &mut HashMap<&'a str, u8>,
        stack: &mut Vec<&'a str>,
        cycles: &mut Vec<Vec<String>>,
    ) {
        state.insert(n, 1);
        stack.push(n);
        if let Some(svc) = services.get(n) {
            for d in &svc.depends_on {
                match state.get(d.as_str()) {
                    Some(1) => {
                        let start = stack.iter().position(|s| s == d).unwrap_or(0);
                        cycles.push(stack[start..].iter().map(|s| s.to_string()).collect());
                    }
                    Some(_) => {}
                    None => visit(d, services, state, stack, cycles),
                }
            }
        }
        stack.pop();
        state.insert(n, 2);
    }
    let mut cycles = Vec::new();
    for name in services.keys() {
        if !state.contains_key(name.as_str()) {
            visit(name, services, &mut state, &mut Vec::new(), &mut cycles);
        }
    }
    for cycle in cycles {
        let mut key = cycle.clone();
        key.sort();
        if !reported.insert(key) {
            continue;
        }
        let first = &cycle[0];
        let mut shown = cycle.clone();
        shown.push(first.clone());
        let file = merged.services[first].file;
        ctx.key_error(
            file,
            &KeyPath::root().key("services").key(first).key("depends_on"),
            format!(
                "`depends_on` forms a cycle: {}; remove one of these dependencies",
                shown.join(" → ")
            ),
        );
    }
}

fn migration(
    ctx: &mut Ctx,
    name: &str,
    entry: &Entry,
    path: &KeyPath,
    services: &BTreeMap<String, ServiceSpec>,
    all_services: &BTreeSet<&str>,
) -> Option<MigrationSpec> {
    let file = entry.file;
    let mut ok = true;
    if !valid_name(name, 31, &[]) {
        ctx.key_error(file, path, format!("migration name `{name}` is invalid; use a lowercase letter then up to 30 lowercase letters, digits or `-`"));
        ok = false;
    }
    let raw: RawMigration = raw(
        ctx,
        file,
        path,
        &entry.value,
        &KnownKeys::get().migration,
        "a migration",
    )?;
    let known: Vec<&str> = all_services.iter().copied().collect();
    let service_ref = |ctx: &mut Ctx, p: &KeyPath, s: &str| -> bool {
        if all_services.contains(s) {
            return true;
        }
        let hint = if ctx.is_full() {
            String::new()
        } else {
            super::diagnostic::nearest(s, &known)
                .map(|k| format!("; did you mean `{k}`?"))
                .unwrap_or_default()
        };
        ctx.error(file, p, format!("`{s}` is not a service{hint}"));
        false
    };
    let from = match &raw.from {
        None => {
            ctx.key_error(file, path, "`from` is missing; name the service whose image and environment the migration runs with");
            None
        }
        Some(v) => string(ctx, file, &path.key("from"), v, "api")
            .filter(|s| service_ref(ctx, &path.key("from"), s)),
    };
    let command = match &raw.command {
        None => {
            ctx.key_error(
                file,
                path,
                "`command` is missing; e.g. [\"alembic\", \"upgrade\", \"head\"]",
            );
            None
        }
        Some(v) => string_list(
            ctx,
            file,
            &path.key("command"),
            v,
            "`command`",
            "[\"alembic\", \"upgrade\", \"head\"]",
        )
        .filter(|c| {
            if c.is_empty() {
                ctx.error(
                    file,
                    &path.key("command"),
                    "`command` is empty; say what the migration runs",
                );
                false
            } else {
                true
            }
        }),
    };
    let timeout = raw
        .timeout
        .as_ref()
        .map_or(Some(Duration::from_secs(600)), |v| {
            duration(
                ctx,
                file,
                &path.key("timeout"),
                v,
                Duration::from_secs(1),
                Duration::from_secs(24 * 3600),
            )
        });
    let gates = match &raw.gates {
        Some(v) => string_list(ctx, file, &path.key("gates"), v, "`gates`", "[api, worker]")
            .filter(|list| {
                let mut good = true;
                for (i, g) in list.iter().enumerate() {
                    good &= service_ref(ctx, &path.key("gates").index(i), g);
                }
                good
            }),
        // Every service that runs the same image as `from`.
        None => from.as_ref().map(|f| match services.get(f) {
            Some(src) => services
                .values()
                .filter(|s| s.image == src.image)
                .map(|s| s.name.clone())
                .collect(),
            None => vec![f.clone()],
        }),
    };
    let run_on = match &raw.run_on {
        None => Some(None),
        Some(v) => string(ctx, file, &path.key("run_on"), v, "db-host").map(Some),
    };
    if !ok {
        return None;
    }
    Some(MigrationSpec {
        name: name.to_string(),
        from: from?,
        command: command?,
        timeout: timeout?,
        gates: gates?,
        run_on: run_on?,
        job: None,
    })
}
