//! Compose jobs: a service that another waits for with `condition:
//! service_completed_successfully`, or that carries `x-berth.migration`, runs to
//! completion before the services it gates move, once per image digest, with every
//! guarantee of the migration ledger. It compiles into a [`MigrationSpec`] holding its
//! own container, checked by the same rules as a service.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use serde_yaml::{Mapping, Value};

use super::super::context::Ctx;
use super::super::diagnostic::nearest;
use super::super::location::KeyPath;
use super::super::spec::*;
use super::super::validate::{duration, string, string_list, valid_name};
use super::forms::{mapping, nested};

/// The condition that makes its target a job.
pub(crate) const COMPLETED: &str = "service_completed_successfully";

/// True when `def` carries `x-berth.migration`.
pub(crate) fn has_migration_key(def: &Value) -> bool {
    def.get("x-berth")
        .and_then(|b| b.get("migration"))
        .is_some()
}

/// The services each service waits for with [`COMPLETED`], as `job → dependants`, read
/// from the definitions as written (errors in them are reported by the service reader).
/// A service left out by its `profiles` waits for nothing.
pub(crate) fn waited_for(defs: &Mapping) -> BTreeMap<String, Vec<String>> {
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (k, def) in defs {
        let (Some(name), Some(Value::Mapping(deps))) = (k.as_str(), def.get("depends_on")) else {
            continue;
        };
        let profiled = def
            .get("profiles")
            .is_some_and(|p| !matches!(p, Value::Sequence(s) if s.is_empty()));
        if profiled && !has_migration_key(def) {
            continue;
        }
        for (d, cond) in deps {
            let completed = cond.get("condition").and_then(Value::as_str) == Some(COMPLETED);
            if let (Some(d), true) = (d.as_str(), completed) {
                out.entry(d.to_string()).or_default().push(name.to_string());
            }
        }
    }
    out
}

/// What `x-berth.migration` says.
struct Keys {
    gates: Vec<(KeyPath, String)>,
    timeout: Duration,
    run_on: Option<String>,
}

fn keys(ctx: &mut Ctx, file: usize, path: &KeyPath, def: &Value) -> Option<Keys> {
    let mut out = Keys {
        gates: Vec::new(),
        timeout: Duration::from_secs(600),
        run_on: None,
    };
    let Some(v) = def.get("x-berth").and_then(|b| b.get("migration")) else {
        return Some(out);
    };
    let mp = path.key("x-berth").key("migration");
    if v.is_null() {
        return Some(out);
    }
    let m = mapping(ctx, file, &mp, v, "`x-berth.migration`")?;
    let m = nested(ctx, file, &mp, m, &["gates", "timeout", "run_on"], &[], &[])?;
    let mut good = true;
    if let Some(g) = m.get("gates") {
        match string_list(ctx, file, &mp.key("gates"), g, "`gates`", "[api, worker]") {
            Some(list) => {
                out.gates = list
                    .into_iter()
                    .enumerate()
                    .map(|(i, g)| (mp.key("gates").index(i), g))
                    .collect()
            }
            None => good = false,
        }
    }
    if let Some(t) = m.get("timeout") {
        match duration(
            ctx,
            file,
            &mp.key("timeout"),
            t,
            Duration::from_secs(1),
            Duration::from_secs(24 * 3600),
        ) {
            Some(d) => out.timeout = d,
            None => good = false,
        }
    }
    if let Some(r) = m.get("run_on") {
        match string(ctx, file, &mp.key("run_on"), r, "db-host") {
            Some(h) => out.run_on = Some(h),
            None => good = false,
        }
    }
    good.then_some(out)
}

/// The job `name` written at `path`, whose container compiled to `job`, waited for by
/// `dependants`; `None` after an error (reported).
#[allow(clippy::too_many_arguments)]
pub(crate) fn compile(
    ctx: &mut Ctx,
    file: usize,
    name: &str,
    path: &KeyPath,
    def: &Value,
    job: Option<ServiceSpec>,
    dependants: &[String],
    services: &BTreeMap<String, ServiceSpec>,
    deployed: &BTreeSet<String>,
) -> Option<MigrationSpec> {
    let mut good = true;
    if !valid_name(name, 31, &[]) {
        ctx.key_error(file, path, format!("job name `{name}` is not supported; a job is a migration, named by a lowercase letter then up to 30 lowercase letters, digits or `-`"));
        good = false;
    }
    let keys = keys(ctx, file, path, def);
    let job = job?;
    if !job.ports.is_empty() {
        ctx.error(file, &path.key("ports"), format!("job `{name}` publishes host ports; a job runs to completion and is reached by nothing: remove `ports`"));
        good = false;
    }
    if job.replicas != 1 {
        let at = if def.get("scale").is_some() {
            path.key("scale")
        } else {
            path.key("deploy").key("replicas")
        };
        ctx.error(file, &at, format!("job `{name}` has {} replicas; a job runs once (once per image, fleet-wide with shared coordination): remove the replica count", job.replicas));
        good = false;
    }
    if job.placement != Placement::default() {
        ctx.error(file, &path.key("deploy").key("placement"), format!("job `{name}` has a placement; a job runs where the services it gates run (once per fleet with shared coordination): pin it to one host with `x-berth.migration.run_on`"));
        good = false;
    }
    if !matches!(job.health, Health::Image) {
        ctx.warning(file, &path.key("healthcheck"), format!("job `{name}` has a `healthcheck`, which is not used: a job succeeds when it exits with status 0"));
    }
    let keys = keys?;
    // The services it gates: those waiting for it, and those `gates` names.
    let mut gates: Vec<String> = dependants.to_vec();
    let known: Vec<&str> = deployed.iter().map(String::as_str).collect();
    for (gp, g) in &keys.gates {
        if !deployed.contains(g) {
            let hint = nearest(g, &known)
                .map(|k| format!("; did you mean `{k}`?"))
                .unwrap_or_default();
            ctx.error(
                file,
                gp,
                format!("`gates` names `{g}`, which is not a deployed service{hint}"),
            );
            good = false;
        } else if !gates.contains(g) {
            gates.push(g.clone());
        }
    }
    if gates.is_empty() {
        // As format v1: every service on the job's image.
        gates = services
            .values()
            .filter(|s| s.image == job.image)
            .map(|s| s.name.clone())
            .collect();
    }
    gates.sort();
    if gates.is_empty() && good {
        ctx.key_error(file, path, format!("job `{name}` gates no service: nothing waits for it with `condition: {COMPLETED}`, no service runs its image, and `x-berth.migration.gates` is not set; say which services wait for it"));
        good = false;
    }
    for d in &job.depends_on {
        if gates.contains(d) {
            ctx.error(
                file,
                &path.key("depends_on"),
                format!(
                    "job `{name}` waits for `{d}`, which waits for the job; remove one of the two"
                ),
            );
            good = false;
        }
    }
    if !good {
        return None;
    }
    // Placed with, and named after, a gated service on its image when there is one.
    let from = gates
        .iter()
        .find(|g| services.get(*g).is_some_and(|s| s.image == job.image))
        .unwrap_or(&gates[0])
        .clone();
    Some(MigrationSpec {
        name: name.to_string(),
        from,
        command: job.command.clone().unwrap_or_default(),
        timeout: keys.timeout,
        gates,
        run_on: keys.run_on,
        job: Some(Box::new(job)),
    })
}
