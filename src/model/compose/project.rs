//! The top level of a compose file: the project name, `volumes`, `networks`, and the
//! services, compiled into a [`Spec`] with format v1's cross-service rules (host ports,
//! dependency cycles).

use std::collections::{BTreeMap, BTreeSet};

use serde_yaml::{Mapping, Value};

use super::super::diagnostic::{nearest, Diagnostic, Location, Severity};
use super::super::limits::MAX_TOTAL_YAML_BYTES;
use super::super::load::{kind, parse_file, Ctx, Entry, LoadOptions, Loaded, Merged, SourceFile};
use super::super::location::KeyPath;
use super::super::spec::*;
use super::super::tree::{parent_dir, RepoTree};
use super::super::validate::{check_cycles, check_ports, valid_name};
use super::detect::Found;
use super::files::Files;
use super::service::{self, Scope, DEFAULT_NETWORK};
use super::{job, keys, variables, yaml};

/// Reads and compiles the compose files `found`, merged in order when there are
/// several.
pub(crate) fn load(tree: &dyn RepoTree, found: Vec<Found>, opts: &LoadOptions) -> Loaded {
    let mut ctx = Ctx::new(tree, opts);
    let first = found.first().map(|f| f.path.clone()).unwrap_or_default();
    let mut docs = Vec::new();
    let mut total = 0usize;
    let mut unread = false;
    for f in found {
        for (path, why, is_error) in &f.skipped {
            ctx.diags.push(Diagnostic {
                severity: if *is_error {
                    Severity::Error
                } else {
                    Severity::Warning
                },
                location: Location {
                    file: tree.display(path),
                    line: 1,
                    col: 1,
                },
                path: String::new(),
                message: format!("not read: {why}"),
                source_line: None,
                source_col: 0,
            });
        }
        if f.skipped.iter().any(|(p, _, e)| *e && *p == f.path) {
            unread = true;
            continue;
        }
        total = total.saturating_add(f.bytes.len());
        if total > MAX_TOTAL_YAML_BYTES {
            ctx.diags.push(Diagnostic {
                severity: Severity::Error,
                location: Location {
                    file: tree.display(&f.path),
                    line: 1,
                    col: 1,
                },
                path: String::new(),
                message: format!(
                    "not read: the project's files hold more than {} MiB together; trim them",
                    MAX_TOTAL_YAML_BYTES >> 20
                ),
                source_line: None,
                source_col: 0,
            });
            unread = true;
            break;
        }
        match parse_file(&mut ctx, &f.path, f.bytes, true) {
            Some(doc) => docs.push(doc),
            None => unread = true,
        }
    }
    let spec = (!unread && !docs.is_empty())
        .then(|| compile(&mut ctx, docs, &first))
        .flatten();
    let diagnostics = ctx.finish();
    let spec = if diagnostics.has_errors() { None } else { spec };
    Loaded { spec, diagnostics }
}

fn compile(ctx: &mut Ctx, docs: Vec<(usize, Mapping)>, path: &str) -> Option<Spec> {
    let before = ctx.diags.len();
    let mut expanded = Expanded::default();
    let spec = compile_expanded(ctx, docs, path, &mut expanded);
    // A value whose interpolation failed is reported once, not again by its reader.
    let mut i = 0;
    ctx.diags.retain(|d| {
        i += 1;
        i <= expanded.mark || !expanded.failed.iter().any(|f| f.as_str() == d.path)
    });
    // A value from the host's `.env` that a reader quotes stays out of the diagnostics.
    variables::mask(ctx, before, &expanded.secrets);
    spec.map(|s| Spec {
        secrets: expanded.secrets,
        ..s
    })
}

/// What interpolation left for the rest of the load.
#[derive(Default)]
struct Expanded {
    /// Values read from the host's `.env`.
    secrets: Vec<String>,
    /// Paths of the values whose interpolation failed.
    failed: Vec<KeyPath>,
    /// How many diagnostics there were once interpolation was done.
    mark: usize,
}

fn compile_expanded(
    ctx: &mut Ctx,
    docs: Vec<(usize, Mapping)>,
    path: &str,
    expanded: &mut Expanded,
) -> Option<Spec> {
    let root = KeyPath::root();
    let first = docs.first().map(|(f, _)| *f)?;
    let several = docs.len() > 1;
    let mut prepared = Vec::new();
    for (file, map) in docs {
        let mut doc = Value::Mapping(map);
        // Read with its merges resolved, unless one names no mapping.
        let resolved = ctx.files[file].merged;
        if let Err(e) = if resolved {
            Ok(())
        } else {
            yaml::resolve_merges(&mut doc)
        } {
            ctx.error(file, &root, e);
            return None;
        }
        if let Value::Mapping(map) = &mut doc {
            yaml::drop_extensions(map);
        }
        prepared.push((file, doc));
    }
    // The name is read as written, the last file's winning: it says where the host's
    // `.env` is.
    let named = prepared.iter().rev().find_map(|(f, d)| {
        d.get("name")
            .filter(|n| !several || !is_reset(n))
            .map(|n| (*f, untag(n)))
    });
    let project = match &named {
        Some((f, n)) => project_name(ctx, *f, Some(n), path),
        None => project_name(ctx, first, None, path),
    };
    let failed;
    (expanded.secrets, failed) = variables::expand(ctx, &mut prepared, project.as_deref(), path);
    expanded.mark = ctx.diags.len();
    // `!reset` and `!override` in one file alone: the file is its own merge.
    let tagged = prepared.iter().any(|(_, d)| super::merge::has_tags(d));
    let (file, doc) = if several || tagged {
        let (doc, origins) = super::merge::merge(prepared);
        expanded.failed = origins.merged_paths(&failed);
        let merged = ctx.files.len();
        let (name, dir) = {
            let f = &ctx.files[first];
            (f.name.clone(), f.dir.clone())
        };
        ctx.files.push(SourceFile {
            name,
            dir,
            text: String::new(),
            index: Default::default(),
            merged: true,
        });
        ctx.merged = Some((merged, origins));
        (merged, doc)
    } else {
        expanded.failed = failed.into_iter().map(|(_, p)| p).collect();
        prepared.pop()?
    };
    let Value::Mapping(map) = doc else {
        return None;
    };

    let mut sections: BTreeMap<&str, Mapping> = BTreeMap::new();
    for (k, v) in map {
        let Some(key) = k.as_str() else {
            ctx.key_error(
                file,
                &root,
                format!("keys must be strings, found {}", kind(&k)),
            );
            continue;
        };
        let kp = root.key(key);
        match key {
            "version" => ctx.warning(file, &kp, "`version` is obsolete and ignored"),
            "name" => {}
            "services" | "volumes" | "networks" | "secrets" | "configs" => match v {
                Value::Mapping(m) => {
                    let section = ["services", "volumes", "networks", "secrets", "configs"]
                        .into_iter()
                        .find(|s| *s == key)
                        .expect("matched above");
                    sections.insert(section, m);
                }
                Value::Null => {}
                other => ctx.error(
                    file,
                    &kp,
                    format!(
                        "`{key}` must be a mapping of names to definitions; found {}",
                        kind(&other)
                    ),
                ),
            },
            k if keys::TOP_LEVEL_NOT_YET.contains(&k) => ctx.key_error(file, &kp, keys::not_yet(k)),
            k => {
                let known = [
                    "version", "name", "services", "volumes", "networks", "secrets", "configs",
                    "include", "models",
                ];
                let hint = nearest(k, &known)
                    .map(|n| format!("; did you mean `{n}`?"))
                    .unwrap_or_default();
                ctx.key_error(
                    file,
                    &kp,
                    format!("unknown top-level key `{k}` in a compose file{hint}"),
                );
            }
        }
    }

    let (volume_names, volumes) = objects(ctx, file, sections.get("volumes"), "volumes");
    let (mut network_names, mut networks) =
        objects(ctx, file, sections.get("networks"), "networks");
    let volumes: BTreeMap<String, VolumeSpec> = volumes
        .into_iter()
        .map(|(n, external)| (n, VolumeSpec { external }))
        .collect();

    let mut files = Files::default();
    for section in ["secrets", "configs"] {
        if let Some(defs) = sections.get(section) {
            super::files::top_level(ctx, file, section, defs, &mut files);
        }
    }

    let empty = Mapping::new();
    let defs = sections.get("services").unwrap_or(&empty);
    let mut deployed = BTreeSet::new();
    let mut left_out = BTreeSet::new();
    let mut jobs = BTreeSet::new();
    let waited_for = job::waited_for(defs);
    for (k, def) in defs {
        let Some(n) = k.as_str() else {
            ctx.key_error(
                file,
                &root.key("services"),
                format!("service names must be strings, found {}", kind(k)),
            );
            continue;
        };
        let profiled = def
            .get("profiles")
            .is_some_and(|p| !matches!(p, Value::Sequence(s) if s.is_empty()));
        if job::has_migration_key(def) || (!profiled && waited_for.contains_key(n)) {
            // A job; with `profiles` too when it names what it gates (the form of a
            // `migrate` service run by hand with `--profile`).
            jobs.insert(n.to_string());
        } else if profiled {
            ctx.warning(file, &root.key("services").key(n).key("profiles"), format!("service `{n}` has `profiles` and is left out, as compose does when no profile is active"));
            left_out.insert(n.to_string());
        } else {
            deployed.insert(n.to_string());
        }
    }
    if deployed.is_empty() {
        ctx.error(
            file,
            &root,
            "no service to deploy; define at least one under `services:` (without `profiles`)",
        );
    }
    // Compose's `default` network exists when a service uses it; declared or not.
    if !network_names.contains_key(DEFAULT_NETWORK) {
        network_names.insert(DEFAULT_NETWORK.to_string(), DEFAULT_NETWORK.to_string());
    }

    let mut services: BTreeMap<String, ServiceSpec>;
    let mut migrations = BTreeMap::new();
    let mut entries = BTreeMap::new();
    {
        // Compiled in file order and sorted once: a service is large, and inserting each
        // into the map would move its neighbours again and again.
        let mut compiled = Vec::with_capacity(deployed.len());
        let scope = Scope {
            networks: &network_names,
            volumes: &volume_names,
            volume_specs: &volumes,
            services: &deployed,
            left_out: &left_out,
            files: &files,
            jobs: &jobs,
        };
        for (k, def) in defs {
            let Some(n) = k.as_str() else { continue };
            if !deployed.contains(n) {
                continue;
            }
            let sp = root.key("services").key(n);
            entries.insert(
                n.to_string(),
                Entry {
                    file,
                    value: Value::Null,
                },
            );
            if let Some(svc) = service::compile(ctx, file, n, &sp, def, &scope) {
                compiled.push((n.to_string(), svc));
            }
        }
        services = compiled.into_iter().collect();
        for (k, def) in defs {
            let Some(n) = k.as_str().filter(|n| jobs.contains(*n)) else {
                continue;
            };
            let sp = root.key("services").key(n);
            let container = service::compile(ctx, file, n, &sp, def, &scope);
            let dependants = waited_for.get(n).map(Vec::as_slice).unwrap_or_default();
            if let Some(m) = job::compile(
                ctx, file, n, &sp, def, container, dependants, &services, &deployed,
            ) {
                migrations.insert(n.to_string(), m);
            }
        }
    }
    // A service gated by a job also waits for what the job waits for.
    for m in migrations.values() {
        let waits = m
            .job
            .as_ref()
            .map(|j| j.depends_on.clone())
            .unwrap_or_default();
        for g in &m.gates {
            if let Some(s) = services.get_mut(g) {
                for d in &waits {
                    if !s.depends_on.contains(d) {
                        s.depends_on.push(d.clone());
                    }
                }
            }
        }
    }
    let merged = Merged {
        project: None,
        networks: BTreeMap::new(),
        volumes: BTreeMap::new(),
        services: entries,
        migrations: BTreeMap::new(),
    };
    check_ports(ctx, &merged, &services);
    check_cycles(ctx, &merged, &services);

    let default_spec = network_names
        .get(DEFAULT_NETWORK)
        .cloned()
        .unwrap_or_default();
    if services
        .values()
        .any(|s| s.networks.contains(&default_spec))
        && !networks.contains_key(&default_spec)
    {
        networks.insert(default_spec, false);
    }
    Some(Spec {
        project: project?,
        secrets: Vec::new(),
        networks: networks
            .into_iter()
            .map(|(n, external)| (n, NetworkSpec { external }))
            .collect(),
        volumes,
        services,
        migrations,
    })
}

/// True for a value written `!reset`.
fn is_reset(v: &Value) -> bool {
    matches!(v, Value::Tagged(t) if t.tag == "reset")
}

/// A value without its `!override` tag.
fn untag(v: &Value) -> Value {
    match v {
        Value::Tagged(t) if t.tag == "override" => t.value.clone(),
        v => v.clone(),
    }
}

/// The project name: `name:`, else `--project`, else the name of the directory holding
/// the first file, made
/// lowercase and stripped to `[a-z0-9_-]` as compose does. At the repository root the
/// directory's name is not part of the commit, so `name:` is needed there.
fn project_name(ctx: &mut Ctx, file: usize, name: Option<&Value>, path: &str) -> Option<String> {
    let rule = "a lowercase letter then up to 30 lowercase letters, digits or `-`";
    match name {
        Some(Value::String(p)) if p.contains('$') => {
            ctx.error(file, &KeyPath::root().key("name"), format!("`name: {p}` must be written literally for berth: the project name says where the host's .env is (/etc/berth/<project>/.env), so it cannot come from a variable"));
            None
        }
        Some(Value::String(p)) => {
            if valid_name(p, 31, &[]) {
                Some(p.clone())
            } else {
                ctx.error(file, &KeyPath::root().key("name"), format!("project name `{p}` is not supported; berth needs {rule} (it prefixes every container, network and volume)"));
                None
            }
        }
        Some(other) => {
            ctx.error(
                file,
                &KeyPath::root().key("name"),
                format!(
                    "`name` must be a string such as `shop`; found {}",
                    kind(other)
                ),
            );
            None
        }
        None if ctx.opts.project.is_some() => {
            let p = ctx.opts.project.clone().unwrap_or_default();
            if valid_name(&p, 31, &[]) {
                Some(p)
            } else {
                ctx.error(file, &KeyPath::root(), format!("--project `{p}` is not supported; berth needs {rule} (it prefixes every container, network and volume)"));
                None
            }
        }
        None => {
            let dir = parent_dir(path);
            let Some(last) = dir.rsplit('/').next().filter(|d| !d.is_empty()) else {
                ctx.error(file, &KeyPath::root(), "`name` is missing; at the repository's root the project name cannot come from a directory: add e.g. `name: shop` (it prefixes every container, network and volume), or give `--project shop`");
                return None;
            };
            let normalised = normalise(last);
            if valid_name(&normalised, 31, &[]) {
                Some(normalised)
            } else {
                ctx.error(file, &KeyPath::root(), format!("the project name `{normalised}` taken from the directory `{dir}` is not supported; berth needs {rule}: add `name:` to the file or give `--project`"));
                None
            }
        }
    }
}

/// Compose's project-name normalisation: lowercase, only `[a-z0-9_-]`, no leading `_`
/// or `-`.
pub fn normalise(dir: &str) -> String {
    let lower: String = dir
        .to_lowercase()
        .chars()
        .filter(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '_' || *c == '-')
        .collect();
    lower.trim_start_matches(['_', '-']).to_string()
}

/// Top-level `volumes` or `networks`: the map from each compose name to its name in the
/// spec (an external object's own `name:` when given), and the spec's objects with their
/// `external` flag.
fn objects(
    ctx: &mut Ctx,
    file: usize,
    section: Option<&Mapping>,
    what: &str,
) -> (BTreeMap<String, String>, BTreeMap<String, bool>) {
    let mut names = BTreeMap::new();
    let mut out: BTreeMap<String, bool> = BTreeMap::new();
    let Some(section) = section else {
        return (names, out);
    };
    let (supported, not_yet, driver): (&[&str], &[&str], &str) = if what == "volumes" {
        (
            &["external", "name", "driver"],
            &["driver_opts", "labels"],
            "local",
        )
    } else {
        (
            &["external", "name", "driver"],
            &[
                "driver_opts",
                "labels",
                "ipam",
                "internal",
                "attachable",
                "enable_ipv4",
                "enable_ipv6",
            ],
            "bridge",
        )
    };
    for (k, def) in section {
        let Some(key) = k.as_str() else { continue };
        let p = KeyPath::root().key(what).key(key);
        let m = match def {
            Value::Null => Mapping::new(),
            Value::Mapping(m) => m.clone(),
            other => {
                ctx.error(
                    file,
                    &p,
                    format!("expected a mapping; found {}", kind(other)),
                );
                continue;
            }
        };
        let mut good = true;
        for (sk, _) in &m {
            let Some(s) = sk.as_str() else { continue };
            if supported.contains(&s) || s.starts_with("x-") {
                continue;
            }
            let msg = if not_yet.contains(&s) {
                keys::not_yet(&format!("{what}.{key}.{s}"))
            } else {
                let all: Vec<&str> = supported.iter().chain(not_yet).copied().collect();
                let hint = nearest(s, &all)
                    .map(|n| format!("; did you mean `{n}`?"))
                    .unwrap_or_default();
                format!("unknown key `{s}`{hint}")
            };
            ctx.key_error(file, &p.key(s), msg);
            good = false;
        }
        if let Some(d) = m.get("driver") {
            if d.as_str() != Some(driver) {
                ctx.error(
                    file,
                    &p.key("driver"),
                    format!("only the `{driver}` driver is supported yet"),
                );
                good = false;
            }
        }
        let external = match m.get("external") {
            None => false,
            Some(Value::Bool(b)) => *b,
            Some(other) => {
                ctx.error(
                    file,
                    &p.key("external"),
                    format!("expected `true` or `false`; found {}", kind(other)),
                );
                good = false;
                false
            }
        };
        let own = match m.get("name") {
            None => None,
            Some(Value::String(s)) => Some(s.clone()),
            Some(other) => {
                ctx.error(
                    file,
                    &p.key("name"),
                    format!("`name` must be a string; found {}", kind(other)),
                );
                good = false;
                None
            }
        };
        let spec_name = match (external, own) {
            (true, Some(own)) => {
                let docker_name = own
                    .chars()
                    .next()
                    .is_some_and(|c| c.is_ascii_alphanumeric())
                    && own
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
                if !docker_name {
                    ctx.error(
                        file,
                        &p.key("name"),
                        format!("`{own}` is not a valid Docker object name"),
                    );
                    good = false;
                }
                own
            }
            (false, Some(own)) if own != key => {
                ctx.error(file, &p.key("name"), format!("a `name` for a {} berth creates is not supported yet; berth names it `<project>_{key}`", &what[..what.len() - 1]));
                good = false;
                key.to_string()
            }
            _ => {
                if !valid_name(key, 63, &['_']) {
                    ctx.key_error(file, &p, format!("name `{key}` is not supported; use a lowercase letter then lowercase letters, digits, `-` or `_`"));
                    good = false;
                }
                key.to_string()
            }
        };
        if !good {
            continue;
        }
        if out.contains_key(&spec_name) {
            ctx.error(
                file,
                &p,
                format!("`{spec_name}` is named twice under `{what}`; keep one"),
            );
            continue;
        }
        out.insert(spec_name.clone(), external);
        names.insert(key.to_string(), spec_name);
    }
    (names, out)
}
