//! `volumes`: named volumes, repository files, host paths, host data and tmpfs mounts
//! of a service.

use serde_yaml::{Mapping, Value};

use super::super::super::context::{kind, Ctx};
use super::super::super::location::KeyPath;
use super::super::super::spec::{Mount, MountSource, Tmpfs};
use super::super::super::validate::{describe, mount, scalar, string};
use super::super::forms::{mapping, nested};
use super::super::options;
use super::Scope;

/// `volumes`: short syntax `SOURCE:TARGET[:MODE]` or the long form with `type: volume`
/// or `type: bind`. Sources are named volumes of the project, repository files (`./…`)
/// and host paths the host allows, checked as in format v1.
pub(super) fn volumes(
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
    let Some(rel) = super::super::super::tree::join_inside(&dir, source) else {
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
