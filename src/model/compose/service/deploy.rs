//! `deploy`: replicas, restart policy, resources and placement; with them `restart`,
//! `mem_limit` and `cpus`, the keys outside `deploy` that say the same.

use serde_yaml::{Mapping, Value};

use super::super::super::context::Ctx;
use super::super::super::location::KeyPath;
use super::super::super::spec::{Placement, Resources};
use super::super::super::validate::{describe, integer, resources, string_list, MAX_REPLICAS};
use super::super::forms::{mapping, nested};
use super::super::options;

/// What `deploy:` says; [`Default`] is what a service without it gets.
pub(super) struct Deploy {
    /// `replicas`, when given (`scale` may say it instead).
    pub replicas: Option<u32>,
    /// `resources.limits`; `None` after an error.
    pub resources: Option<Resources>,
    /// `update_config` with where it was written, read once `x-berth` is known too.
    pub update: Option<(KeyPath, Mapping)>,
    /// The hosts that run the service; `None` after an error.
    pub placement: Option<Placement>,
    /// `resources.limits.pids`.
    pub pids: Option<i64>,
    /// `resources.reservations.memory`.
    pub reservation: Option<u64>,
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

/// Reads `deploy`; a `job` runs to completion, so its restart policy is checked the
/// other way round.
pub(super) fn deploy(
    ctx: &mut Ctx,
    file: usize,
    path: &KeyPath,
    v: &Value,
    job: bool,
) -> Option<Deploy> {
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
    let mut out = Deploy::default();
    if let Some(mode) = d.get("mode") {
        good &= check_mode(ctx, file, &path.key("mode"), mode);
    }
    if let Some(rp) = d.get("restart_policy") {
        good &= restart_policy(ctx, file, &path.key("restart_policy"), rp, job);
    }
    if let Some(v) = d.get("replicas") {
        out.replicas =
            integer(ctx, file, &path.key("replicas"), v, 0, MAX_REPLICAS).map(|n| n as u32);
        good &= out.replicas.is_some();
    }
    if let Some(v) = d.get("resources") {
        good &= deploy_resources(ctx, file, &path.key("resources"), v, &mut out);
    }
    if let Some(v) = d.get("update_config") {
        let up = path.key("update_config");
        match mapping(ctx, file, &up, v, "`update_config`") {
            Some(m) => out.update = Some((up, m.clone())),
            None => good = false,
        }
    }
    if let Some(v) = d.get("placement") {
        out.placement = placement(ctx, file, &path.key("placement"), v);
    }
    good.then_some(out)
}

/// `deploy.mode`: only `replicated`, what berth does anyway.
fn check_mode(ctx: &mut Ctx, file: usize, path: &KeyPath, mode: &Value) -> bool {
    match mode.as_str() {
        Some("replicated") => true,
        Some("replicated-job") | Some("global-job") => {
            ctx.error(file, path, format!("`mode: {}` (Swarm's jobs) is not supported; a job in berth is a service that others wait for with `condition: service_completed_successfully`, or that has `x-berth.migration`: it runs once per image before them", mode.as_str().unwrap_or_default()));
            false
        }
        _ => {
            ctx.error(file, path, format!("deploy mode {} is not supported yet; berth runs `replicas` on every host the placement admits", describe(mode)));
            false
        }
    }
}

/// `deploy.restart_policy.condition`: `any` for a long-running service, `none` or
/// `on-failure` for a job.
fn restart_policy(ctx: &mut Ctx, file: usize, path: &KeyPath, v: &Value, job: bool) -> bool {
    let Some(r) = mapping(ctx, file, path, v, "`restart_policy`").and_then(|r| {
        nested(
            ctx,
            file,
            path,
            r,
            &["condition"],
            &["delay", "max_attempts", "window"],
            &[],
        )
    }) else {
        return false;
    };
    let at = path.key("condition");
    match (r.get("condition").and_then(|c| c.as_str()), job) {
        (None | Some("any"), false) | (Some("none" | "on-failure"), true) => true,
        (None | Some("any"), true) => {
            ctx.error(file, &at, "`condition: any` would run this job again after it succeeded; a job runs to completion once per image: use `none` or `on-failure`");
            false
        }
        (Some(c @ ("none" | "on-failure")), false) => {
            ctx.error(file, &at, format!("`condition: {c}` is for a one-shot job, and nothing waits for this service to complete: make the services that need it depend on it with `condition: service_completed_successfully`; a long-running service is restarted whenever it exits (`any`)"));
            false
        }
        (Some(c), _) => {
            ctx.error(
                file,
                &at,
                format!("unknown restart condition `{c}`; use `any`, `on-failure` or `none`"),
            );
            false
        }
    }
}

/// `deploy.resources` written at `path` into `out`: `reservations.memory` and the
/// `limits`. False when the reservations or the pids limit have an error; an error in
/// the other limits leaves `out.resources` empty instead.
fn deploy_resources(
    ctx: &mut Ctx,
    file: usize,
    path: &KeyPath,
    v: &Value,
    out: &mut Deploy,
) -> bool {
    let mut good = true;
    let r = mapping(ctx, file, path, v, "`resources`")
        .and_then(|r| nested(ctx, file, path, r, &["limits", "reservations"], &[], &[]));
    if let Some(res) = r.as_ref().and_then(|r| r.get("reservations")) {
        let sp = path.key("reservations");
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
                    out.reservation = options::size(ctx, file, &sp.key("memory"), m, 6 << 20);
                    good &= out.reservation.is_some();
                }
            }
            None => good = false,
        }
    }
    out.resources = match r.as_ref().map(|r| r.get("limits")) {
        None => None,
        Some(None) => Some(Resources::default()),
        Some(Some(l)) => {
            let (limits, pids_ok) = limits(ctx, file, &path.key("limits"), l, &mut out.pids);
            good &= pids_ok;
            limits
        }
    };
    good
}

/// `deploy.resources.limits`: memory and CPUs read as format v1 reads them, the pids
/// limit into `pids` (false when it has an error).
fn limits(
    ctx: &mut Ctx,
    file: usize,
    path: &KeyPath,
    v: &Value,
    pids: &mut Option<i64>,
) -> (Option<Resources>, bool) {
    let Some(l) = mapping(ctx, file, path, v, "`limits`") else {
        return (None, true);
    };
    let Some(kept) = nested(
        ctx,
        file,
        path,
        l,
        &["memory", "cpus", "pids"],
        &["devices"],
        &[],
    ) else {
        return (None, true);
    };
    let mut good = true;
    let mut limits = Mapping::new();
    for (k, v) in kept {
        if k == "pids" {
            *pids = options::pids(ctx, file, &path.key("pids"), v);
            good &= pids.is_some();
        } else {
            limits.insert(Value::from(k), v.clone());
        }
    }
    (resources(ctx, file, path, &Value::Mapping(limits)), good)
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

/// `mem_limit` and `cpus`, the short forms of `deploy.resources.limits`.
pub(super) fn short_limits(
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
pub(super) fn restart(ctx: &mut Ctx, file: usize, path: &KeyPath, v: &Value, job: bool) {
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
