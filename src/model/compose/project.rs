//! The top level of a compose file: the project name, `volumes`, `networks`, and the
//! services, compiled into a [`Spec`] with format v1's cross-service rules (host ports,
//! dependency cycles).

use std::collections::{BTreeMap, BTreeSet};

use serde_yaml::{Mapping, Value};

use super::super::context::{kind, Ctx, SourceFile};
use super::super::diagnostic::{nearest, Diagnostic, Location, Severity};
use super::super::limits::MAX_TOTAL_YAML_BYTES;
use super::super::load_options::LoadOptions;
use super::super::location::KeyPath;
use super::super::outcome::Loaded;
use super::super::parse::parse_file;
use super::super::spec::*;
use super::super::tree::{parent_dir, RepoTree};
use super::super::validate::{check_cycles, check_ports, valid_name};
use super::super::validate::{Entry, Merged};
use super::detect::Found;
use super::files::Files;
use super::objects::objects;
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

/// The top-level sections a compose file may hold.
const SECTIONS: [&str; 5] = ["services", "volumes", "networks", "secrets", "configs"];

/// The services of the project by what becomes of them.
#[derive(Default)]
struct Kinds {
    /// Kept up: replicas with a rolling update.
    deployed: BTreeSet<String>,
    /// Left out for their `profiles`.
    left_out: BTreeSet<String>,
    /// Run to completion once per image before the services they gate.
    jobs: BTreeSet<String>,
}

/// [`compile`] with its bookkeeping in `expanded`: every file prepared, named and
/// interpolated, merged into one document, and its sections compiled.
fn compile_expanded(
    ctx: &mut Ctx,
    docs: Vec<(usize, Mapping)>,
    path: &str,
    expanded: &mut Expanded,
) -> Option<Spec> {
    let root = KeyPath::root();
    let first = docs.first().map(|(f, _)| *f)?;
    let several = docs.len() > 1;
    let mut prepared = prepare(ctx, docs)?;
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
    let (file, doc) = merge_files(ctx, prepared, first, failed, expanded)?;
    let Value::Mapping(map) = doc else {
        return None;
    };
    let sections = sections(ctx, file, map);

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
    let waited_for = job::waited_for(defs);
    let kinds = kinds(ctx, file, defs, &waited_for);
    if kinds.deployed.is_empty() {
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

    let scope = Scope {
        networks: &network_names,
        volumes: &volume_names,
        volume_specs: &volumes,
        services: &kinds.deployed,
        left_out: &kinds.left_out,
        files: &files,
        jobs: &kinds.jobs,
    };
    let (mut services, entries) = services(ctx, file, defs, &scope);
    let migrations = jobs(ctx, file, defs, &scope, &waited_for, &services);
    inherit_job_waits(&migrations, &mut services);
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

/// Each file's document with its merge keys resolved and its extension fields (`x-…`)
/// dropped; `None` when a merge key names no mapping (reported).
fn prepare(ctx: &mut Ctx, docs: Vec<(usize, Mapping)>) -> Option<Vec<(usize, Value)>> {
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
            ctx.error(file, &KeyPath::root(), e);
            return None;
        }
        if let Value::Mapping(map) = &mut doc {
            yaml::drop_extensions(map);
        }
        prepared.push((file, doc));
    }
    Some(prepared)
}

/// The project's one document: the files merged in order into a file of their own
/// (whose diagnostics point where each value was written), or the one file as it is.
/// `failed` are the values whose interpolation failed, as written; their paths in the
/// document go to `expanded`.
fn merge_files(
    ctx: &mut Ctx,
    mut prepared: Vec<(usize, Value)>,
    first: usize,
    failed: Vec<(usize, KeyPath)>,
    expanded: &mut Expanded,
) -> Option<(usize, Value)> {
    // `!reset` and `!override` in one file alone: the file is its own merge.
    let tagged = prepared.iter().any(|(_, d)| super::merge::has_tags(d));
    if prepared.len() < 2 && !tagged {
        expanded.failed = failed.into_iter().map(|(_, p)| p).collect();
        return prepared.pop();
    }
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
    Some((merged, doc))
}

/// The top-level sections of the document by name; every other key is reported
/// (`version` with a warning, as compose does).
fn sections(ctx: &mut Ctx, file: usize, map: Mapping) -> BTreeMap<&'static str, Mapping> {
    let root = KeyPath::root();
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
                    let section = SECTIONS
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
    sections
}

/// Sorts the services of `defs` into jobs, services left out for their `profiles`, and
/// services deployed. `waited_for` holds the jobs others wait for, with their
/// dependants.
fn kinds(
    ctx: &mut Ctx,
    file: usize,
    defs: &Mapping,
    waited_for: &BTreeMap<String, Vec<String>>,
) -> Kinds {
    let services = KeyPath::root().key("services");
    let mut out = Kinds::default();
    for (k, def) in defs {
        let Some(n) = k.as_str() else {
            ctx.key_error(
                file,
                &services,
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
            out.jobs.insert(n.to_string());
        } else if profiled {
            ctx.warning(file, &services.key(n).key("profiles"), format!("service `{n}` has `profiles` and is left out, as compose does when no profile is active"));
            out.left_out.insert(n.to_string());
        } else {
            out.deployed.insert(n.to_string());
        }
    }
    out
}

/// The deployed services of `defs` that compile, and an entry (its file) for every
/// deployed one, as the cross-service checks take them.
fn services(
    ctx: &mut Ctx,
    file: usize,
    defs: &Mapping,
    scope: &Scope,
) -> (BTreeMap<String, ServiceSpec>, BTreeMap<String, Entry>) {
    // Compiled in file order and sorted once: a service is large, and inserting each into
    // the map would move its neighbours again and again.
    let mut services = Vec::with_capacity(scope.services.len());
    let mut entries = BTreeMap::new();
    for (k, def) in defs {
        let Some(n) = k.as_str() else { continue };
        if !scope.services.contains(n) {
            continue;
        }
        let sp = KeyPath::root().key("services").key(n);
        entries.insert(
            n.to_string(),
            Entry {
                file,
                value: Value::Null,
            },
        );
        if let Some(svc) = service::compile(ctx, file, n, &sp, def, scope) {
            services.push((n.to_string(), svc));
        }
    }
    (services.into_iter().collect(), entries)
}

/// The jobs of `defs` as migrations, each with its own container compiled as a
/// service is.
fn jobs(
    ctx: &mut Ctx,
    file: usize,
    defs: &Mapping,
    scope: &Scope,
    waited_for: &BTreeMap<String, Vec<String>>,
    services: &BTreeMap<String, ServiceSpec>,
) -> BTreeMap<String, MigrationSpec> {
    let mut migrations = BTreeMap::new();
    for (k, def) in defs {
        let Some(n) = k.as_str().filter(|n| scope.jobs.contains(*n)) else {
            continue;
        };
        let sp = KeyPath::root().key("services").key(n);
        let container = service::compile(ctx, file, n, &sp, def, scope);
        let dependants = waited_for.get(n).map(Vec::as_slice).unwrap_or_default();
        if let Some(m) = job::compile(
            ctx,
            file,
            n,
            &sp,
            def,
            container,
            dependants,
            services,
            scope.services,
        ) {
            migrations.insert(n.to_string(), m);
        }
    }
    migrations
}

/// A service gated by a job also waits for what the job waits for.
fn inherit_job_waits(
    migrations: &BTreeMap<String, MigrationSpec>,
    services: &mut BTreeMap<String, ServiceSpec>,
) {
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
pub(crate) fn normalise(dir: &str) -> String {
    let lower: String = dir
        .to_lowercase()
        .chars()
        .filter(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '_' || *c == '-')
        .collect();
    lower.trim_start_matches(['_', '-']).to_string()
}
