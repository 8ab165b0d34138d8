//! Compose interpolation applied to a compose file: where the variables come from, how
//! every string value is expanded and reported, and how values are typed afterwards.
//!
//! - Variables come from the host's `.env` (read through
//!   [`LoadOptions::host_env`](super::super::load::LoadOptions::host_env) for the
//!   project, highest precedence, secret), then the committed `.env` beside the compose
//!   file, then an expression's own default. Never from the process environment.
//! - Every string value is interpolated, at any depth, keys never; the top-level `name`
//!   is not, since the host's `.env` is found by the project name: a `$` in it is an
//!   error.
//! - An unset variable without a default becomes `""` with a warning at its position,
//!   except in a service's `image`, where it is an error. A malformed expression or a
//!   `${VAR:?message}` on an unset variable is an error.
//! - After interpolation, a string where the Compose Specification's schema wants a whole
//!   number or a boolean (the paths of [`CASTS`], as compose-go types them) becomes one
//!   when it reads as one, whether written quoted or produced by a variable; otherwise it
//!   stays a string, and the typed reader says what was expected.
//! - Values that read the host's `.env` are returned as secrets (the whole value and
//!   the variable values), and masked in the diagnostics.

use std::borrow::Cow;

use serde_yaml::{Number, Value};

use super::super::context::{Ctx, SourceFile};
use super::super::diagnostic::Severity;
use super::super::location::{KeyPath, LocationIndex};
use super::super::tree::{join_inside, parent_dir};
use super::interpolate::dotenv::{DotEnv, DotEnvError, Parsed};
use super::interpolate::{interpolate, Lookup};
use super::yaml;

/// The committed `.env`'s name, beside the compose file.
pub(crate) const DOTENV: &str = ".env";

/// Secrets shorter than this are not masked in diagnostics, as in berth's output
/// (`crate::executor::redact`): masking every `1` would hide more than it protects.
const MIN_MASKED_LEN: usize = 4;

/// What a value turns into after interpolation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cast {
    Int,
    Bool,
}

/// The paths whose values compose types after interpolation and berth reads typed: `*`
/// is any key, `[]` any item of a list. From compose-go's `interpolateTypeCastMapping`,
/// plus berth's own `x-berth.max_hosts`.
const CASTS: &[(&[&str], Cast)] = &[
    (&["services", "*", "scale"], Cast::Int),
    (&["services", "*", "deploy", "replicas"], Cast::Int),
    (
        &["services", "*", "deploy", "update_config", "parallelism"],
        Cast::Int,
    ),
    (
        &["services", "*", "deploy", "rollback_config", "parallelism"],
        Cast::Int,
    ),
    (
        &["services", "*", "deploy", "restart_policy", "max_attempts"],
        Cast::Int,
    ),
    (
        &[
            "services",
            "*",
            "deploy",
            "placement",
            "max_replicas_per_node",
        ],
        Cast::Int,
    ),
    (&["services", "*", "healthcheck", "retries"], Cast::Int),
    (&["services", "*", "pids_limit"], Cast::Int),
    (
        &["services", "*", "deploy", "resources", "limits", "pids"],
        Cast::Int,
    ),
    (&["services", "*", "ulimits", "*"], Cast::Int),
    (&["services", "*", "ulimits", "*", "soft"], Cast::Int),
    (&["services", "*", "ulimits", "*", "hard"], Cast::Int),
    (&["services", "*", "healthcheck", "disable"], Cast::Bool),
    (&["services", "*", "ports", "[]", "target"], Cast::Int),
    (&["services", "*", "volumes", "[]", "read_only"], Cast::Bool),
    (
        &["services", "*", "volumes", "[]", "volume", "nocopy"],
        Cast::Bool,
    ),
    (&["services", "*", "env_file", "[]", "required"], Cast::Bool),
    (
        &["services", "*", "depends_on", "*", "required"],
        Cast::Bool,
    ),
    (&["services", "*", "depends_on", "*", "restart"], Cast::Bool),
    (&["services", "*", "init"], Cast::Bool),
    (&["services", "*", "privileged"], Cast::Bool),
    (&["services", "*", "read_only"], Cast::Bool),
    (&["services", "*", "stdin_open"], Cast::Bool),
    (&["services", "*", "tty"], Cast::Bool),
    (&["services", "*", "oom_kill_disable"], Cast::Bool),
    (&["services", "*", "x-berth", "max_hosts"], Cast::Int),
    (&["networks", "*", "external"], Cast::Bool),
    (&["networks", "*", "internal"], Cast::Bool),
    (&["networks", "*", "attachable"], Cast::Bool),
    (&["networks", "*", "enable_ipv6"], Cast::Bool),
    (&["volumes", "*", "external"], Cast::Bool),
];

/// What interpolation may add to one compose file's values, all together.
const MAX_TEXT_BYTES: u64 = crate::model::limits::MAX_TEXT_BYTES;

/// Unset variables and errors kept for diagnostics; the load shows at most
/// [`crate::model::limits::MAX_DIAGNOSTICS`].
const MAX_FOUND: usize = 2 * crate::model::limits::MAX_DIAGNOSTICS;

/// Interpolates every string value of `docs` (the project's compose files, the first
/// at `path`; the project is `project` when known) and types the values of [`CASTS`].
/// Returns the secrets (values that read the host's `.env`, and the host values they
/// read) and the paths of the values whose interpolation failed with an error.
pub(crate) fn expand(
    ctx: &mut Ctx,
    docs: &mut [(usize, Value)],
    project: Option<&str>,
    path: &str,
) -> (Vec<String>, Vec<(usize, KeyPath)>) {
    let Some(first) = docs.first().map(|(f, _)| *f) else {
        return (Vec::new(), Vec::new());
    };
    let committed = read_committed(ctx, first, path);
    let host = project.and_then(|p| read_host(ctx, first, p));
    let lookup = Lookup::new(host.as_ref(), committed.as_ref());
    let mut secrets = Vec::new();
    let mut failed = Vec::new();
    // What interpolation may add to the files as a whole: each value is capped by the
    // engine, but a file of many references to one long variable is not.
    let mut budget = MAX_TEXT_BYTES;
    for (file, doc) in docs.iter_mut() {
        for p in expand_doc(ctx, *file, doc, &lookup, &mut budget, &mut secrets) {
            failed.push((*file, p));
        }
    }
    secrets.retain(|s| !s.is_empty());
    secrets.sort();
    secrets.dedup();
    (secrets, failed)
}

/// Interpolates one file of the project with the project's variables; returns the
/// paths whose interpolation failed.
fn expand_doc(
    ctx: &mut Ctx,
    file: usize,
    doc: &mut Value,
    lookup: &Lookup,
    budget: &mut u64,
    secrets: &mut Vec<String>,
) -> Vec<KeyPath> {
    let host_read = ctx.opts.host_env.is_some();
    let mut found = Vec::new();
    let mut failed = Vec::new();
    let mut over_budget = None;
    yaml::visit_strings(doc, &KeyPath::root(), &mut |kp, segments, value| {
        if segments == ["name"] {
            return;
        }
        let Value::String(text) = value else { return };
        if text.contains('$') {
            if over_budget.is_some() {
                return;
            }
            match interpolate(text, lookup) {
                Ok(done) if done.value.len() as u64 > *budget => {
                    over_budget = Some(kp());
                }
                Ok(done) => {
                    *budget -= done.value.len() as u64;
                    let image = matches!(segments, [s, _, i] if s == "services" && i == "image");
                    // Diagnostics beyond the cap are not shown: keep no more, but
                    // always one for an image, whose unset variable is an error.
                    let room = if image {
                        1
                    } else {
                        MAX_FOUND.saturating_sub(found.len())
                    };
                    for u in done.unset.iter().take(room) {
                        found.push(Found::Unset {
                            path: kp(),
                            text: text.clone(),
                            offset: u.offset,
                            name: u.name.clone(),
                            image,
                        });
                    }
                    if done.used_secret {
                        secrets.push(done.value.clone());
                        secrets.extend(done.secrets);
                    }
                    *text = done.value;
                }
                Err(_) if found.len() >= MAX_FOUND => failed.push(kp()),
                Err(e) => {
                    found.push(Found::Error {
                        path: kp(),
                        text: text.clone(),
                        offset: e.offset,
                        message: e.message,
                    });
                    return;
                }
            }
        }
        cast(segments, value);
    });
    for f in found {
        match f {
            Found::Unset {
                path,
                text,
                offset,
                name,
                image,
            } => {
                let pos = position(ctx, file, &path, &text, offset);
                if image {
                    failed.push(path.clone());
                }
                let (severity, msg) = if image {
                    (Severity::Error, format!("`{name}` is not set and has no default, so the image reference is incomplete; set it in the committed .env or the host's, or write `${{{name}:-default}}`"))
                } else if host_read {
                    (Severity::Warning, format!("`{name}` is not set in the host's .env nor the committed .env and has no default; it is replaced by an empty string"))
                } else {
                    (Severity::Warning, format!("`{name}` is not set in the committed .env and has no default; it is replaced by an empty string unless the host's .env sets it (not read here)"))
                };
                ctx.push_at(severity, file, &path, pos, msg);
            }
            Found::Error {
                path,
                text,
                offset,
                message,
            } => {
                let pos = position(ctx, file, &path, &text, offset);
                ctx.push_at(Severity::Error, file, &path, pos, message);
                failed.push(path);
            }
        }
    }
    if let Some(path) = over_budget {
        ctx.error(
            file,
            &path,
            format!(
                "interpolation makes the file's values larger than {} MiB; shorten the variables of the .env files or use them less often",
                MAX_TEXT_BYTES >> 20
            ),
        );
        failed.push(path);
    }
    failed
}

/// A finding of the walk, reported once the walk is over.
enum Found {
    Unset {
        path: KeyPath,
        text: String,
        offset: usize,
        name: String,
        image: bool,
    },
    Error {
        path: KeyPath,
        text: String,
        offset: usize,
        message: String,
    },
}

/// Masks `secrets` in the messages of the diagnostics from `from` on.
pub(crate) fn mask(ctx: &mut Ctx, from: usize, secrets: &[String]) {
    let mut masked: Vec<&String> = secrets
        .iter()
        .filter(|s| s.len() >= MIN_MASKED_LEN)
        .collect();
    masked.sort_by_key(|s| std::cmp::Reverse(s.len()));
    for d in &mut ctx.diags[from..] {
        for s in &masked {
            if d.message.contains(s.as_str()) {
                d.message = d.message.replace(s.as_str(), "***");
            }
        }
    }
}

/// The value at `schema` typed as compose types it, when it reads as that type.
fn cast(segments: &[Cow<str>], value: &mut Value) {
    let Value::String(text) = value else { return };
    // Most strings read as neither: leave them before matching their path.
    let int = text.parse::<i64>().ok();
    let boolean = ["true", "false"]
        .iter()
        .position(|b| text.eq_ignore_ascii_case(b))
        .map(|i| i == 0);
    if int.is_none() && boolean.is_none() {
        return;
    }
    let Some((_, to)) = CASTS.iter().find(|(pattern, _)| {
        pattern.len() == segments.len()
            && pattern
                .iter()
                .zip(segments)
                .all(|(p, s)| *p == "*" || p == s)
    }) else {
        return;
    };
    let typed = match to {
        Cast::Int => int.map(|n| Value::Number(Number::from(n))),
        Cast::Bool => boolean.map(Value::Bool),
    };
    if let Some(typed) = typed {
        *value = typed;
    }
}

/// Where byte `offset` of the scalar `text` at `path` is written: the scalar's own
/// position plus the offset, when the scalar is written on one line as it reads (plain,
/// or quoted without escapes); else the scalar's position.
fn position(ctx: &Ctx, file: usize, path: &KeyPath, text: &str, offset: usize) -> (usize, usize) {
    let f = &ctx.files[file];
    let (line, col) = f.index.value(path);
    let Some(source) = f.text.lines().nth(line.saturating_sub(1)) else {
        return (line, col);
    };
    let rest: String = source.chars().skip(col.saturating_sub(1)).collect();
    let quoted = rest.starts_with('"') || rest.starts_with('\'');
    let body = if quoted { &rest[1..] } else { &rest[..] };
    if text.contains('\n') || !body.starts_with(text) || !text.is_char_boundary(offset) {
        return (line, col);
    }
    (
        line,
        col + usize::from(quoted) + text[..offset].chars().count(),
    )
}

/// The committed `.env` beside the compose file `path`, if there is one.
fn read_committed(ctx: &mut Ctx, file: usize, path: &str) -> Option<DotEnv> {
    let env_path = join_inside(parent_dir(path), DOTENV)?;
    let limit = super::interpolate::dotenv::MAX_DOTENV_BYTES;
    let bytes = match ctx.tree.read_limited(&env_path, limit) {
        Ok(Some(crate::model::tree::Limited::Bytes(b))) => b,
        Ok(Some(crate::model::tree::Limited::TooLarge)) => {
            ctx.error(
                file,
                &KeyPath::root(),
                format!(
                    "the committed .env is larger than {} KiB; keep only variables in it",
                    limit >> 10
                ),
            );
            return None;
        }
        Ok(None) => return None,
        Err(e) => {
            ctx.error(
                file,
                &KeyPath::root(),
                format!("the committed .env cannot be read: {e}"),
            );
            return None;
        }
    };
    let name = ctx.tree.display(&env_path);
    let Ok(text) = String::from_utf8(bytes) else {
        let f = add_file(ctx, name, String::new());
        ctx.push_at(
            Severity::Error,
            f,
            &KeyPath::root(),
            (1, 1),
            "the file is not UTF-8 text; save it as UTF-8".to_string(),
        );
        return None;
    };
    let parsed = DotEnv::parse(&text);
    let f = add_file(ctx, name, text);
    report(ctx, f, parsed)
}

/// The host's `.env` of `project`, when the host reads one and has it. Its lines are
/// never quoted in diagnostics.
fn read_host(ctx: &mut Ctx, file: usize, project: &str) -> Option<DotEnv> {
    let reader = ctx.opts.host_env.clone()?;
    match reader.read(project) {
        Ok(None) => None,
        Ok(Some(host)) => {
            let parsed = DotEnv::parse(&host.text);
            let f = add_file(ctx, host.path, String::new());
            report(ctx, f, parsed)
        }
        Err(e) => {
            ctx.error(
                file,
                &KeyPath::root(),
                format!("the host's .env cannot be read: {e}"),
            );
            None
        }
    }
}

/// Registers a `.env` file for diagnostics; `text` is quoted in them.
fn add_file(ctx: &mut Ctx, name: String, text: String) -> usize {
    ctx.files.push(SourceFile {
        name,
        dir: String::new(),
        text,
        index: LocationIndex::default(),
        merged: false,
    });
    ctx.files.len() - 1
}

/// Reports a parsed `.env`'s warnings or its error, and returns its variables.
fn report(ctx: &mut Ctx, f: usize, parsed: Result<Parsed, DotEnvError>) -> Option<DotEnv> {
    match parsed {
        Ok(p) => {
            for w in p.warnings {
                ctx.push_at(
                    Severity::Warning,
                    f,
                    &KeyPath::root(),
                    (w.line, w.col),
                    w.message,
                );
            }
            Some(p.env)
        }
        Err(e) => {
            ctx.push_at(
                Severity::Error,
                f,
                &KeyPath::root(),
                (e.line, e.col),
                e.message,
            );
            None
        }
    }
}
