//! `migrations`: one-shot commands run with a service's image and environment before
//! the services they gate are replaced.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use serde_yaml::Value;

use super::super::context::Ctx;
use super::super::location::KeyPath;
use super::super::raw::{KnownKeys, RawMigration};
use super::super::spec::{MigrationSpec, ServiceSpec};
use super::scalars::{duration, string, string_list};
use super::Entry;
use super::{raw, valid_name};

/// The migration `name` defined by `entry` at `path`; `services` are those that
/// validated, `all_services` every name under `services:`.
pub(super) fn migration(
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
    let from = from(ctx, file, path, raw.from.as_ref(), all_services);
    let command = command(ctx, file, path, raw.command.as_ref());
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
        Some(v) => gates(ctx, file, &path.key("gates"), v, all_services),
        None => from.as_ref().map(|f| same_image(f, services)),
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

/// `from`: the service whose image and environment the migration runs with.
fn from(
    ctx: &mut Ctx,
    file: usize,
    path: &KeyPath,
    v: Option<&Value>,
    all_services: &BTreeSet<&str>,
) -> Option<String> {
    let Some(v) = v else {
        ctx.key_error(file, path, "`from` is missing; name the service whose image and environment the migration runs with");
        return None;
    };
    let p = path.key("from");
    string(ctx, file, &p, v, "api").filter(|s| service_ref(ctx, file, &p, s, all_services))
}

/// `command`: what the migration runs, a non-empty list.
fn command(ctx: &mut Ctx, file: usize, path: &KeyPath, v: Option<&Value>) -> Option<Vec<String>> {
    let Some(v) = v else {
        ctx.key_error(
            file,
            path,
            "`command` is missing; e.g. [\"alembic\", \"upgrade\", \"head\"]",
        );
        return None;
    };
    string_list(
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
    })
}

/// `gates`: the services that wait for the migration, each a service of the project.
fn gates(
    ctx: &mut Ctx,
    file: usize,
    path: &KeyPath,
    v: &Value,
    all_services: &BTreeSet<&str>,
) -> Option<Vec<String>> {
    string_list(ctx, file, path, v, "`gates`", "[api, worker]").filter(|list| {
        let mut good = true;
        for (i, g) in list.iter().enumerate() {
            good &= service_ref(ctx, file, &path.index(i), g, all_services);
        }
        good
    })
}

/// The gates when none are written: every service that runs the same image as `from`
/// (`from` alone when it did not validate).
fn same_image(from: &str, services: &BTreeMap<String, ServiceSpec>) -> Vec<String> {
    match services.get(from) {
        Some(src) => services
            .values()
            .filter(|s| s.image == src.image)
            .map(|s| s.name.clone())
            .collect(),
        None => vec![from.to_string()],
    }
}

/// True when `s` names a service; otherwise reports it, with the nearest name.
fn service_ref(
    ctx: &mut Ctx,
    file: usize,
    p: &KeyPath,
    s: &str,
    all_services: &BTreeSet<&str>,
) -> bool {
    if all_services.contains(s) {
        return true;
    }
    let hint = if ctx.is_full() {
        String::new()
    } else {
        let known: Vec<&str> = all_services.iter().copied().collect();
        super::super::diagnostic::nearest(s, &known)
            .map(|k| format!("; did you mean `{k}`?"))
            .unwrap_or_default()
    };
    ctx.error(file, p, format!("`{s}` is not a service{hint}"));
    false
}
