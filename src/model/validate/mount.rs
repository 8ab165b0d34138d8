//! Mounts: `SOURCE:TARGET[:ro]`, where the source is a declared volume, a repository
//! file or directory (`./…`, read from the commit), or a host path the host allows.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde_yaml::Value;

use super::super::context::Ctx;
use super::super::location::KeyPath;
use super::super::spec::{Mount, MountSource, VolumeSpec};
use super::super::tree::join_inside;
use super::scalars::string_list;

/// A service's `volumes`: each mount read by [`mount`], no target mounted twice.
pub(super) fn mounts(
    ctx: &mut Ctx,
    file: usize,
    path: &KeyPath,
    v: &Value,
    volumes: &BTreeMap<String, VolumeSpec>,
) -> Option<Vec<Mount>> {
    let list = string_list(ctx, file, path, v, "`volumes`", "[\"data:/var/lib/data\"]")?;
    let mut out: Vec<Mount> = Vec::new();
    let mut good = true;
    for (i, spec) in list.iter().enumerate() {
        let p = path.index(i);
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
}

/// One mount, `spec` written at `path`. A repository source is read here; a host path
/// is checked against what the host allows (on this machine too when the load options
/// say so).
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
        repo_source(ctx, file, path, source)?
    } else if source.starts_with('/') {
        host_source(ctx, file, path, source, read_only)?
    } else {
        volume_source(ctx, file, path, source, volumes)?
    };
    Some(Mount {
        source,
        target: target.to_string(),
        read_only,
    })
}

/// A source relative to the file's directory: the repository file or directory there.
fn repo_source(ctx: &mut Ctx, file: usize, path: &KeyPath, source: &str) -> Option<MountSource> {
    let dir = ctx.files[file].dir.clone();
    let Some(rel) = join_inside(&dir, source) else {
        ctx.error(
            file,
            path,
            format!("`{source}` leads outside the repository; mount files from inside it"),
        );
        return None;
    };
    super::super::repo_mount::read(ctx, file, path, source, &rel)
}

/// An absolute source: a host path, which the host must allow.
fn host_source(
    ctx: &mut Ctx,
    file: usize,
    path: &KeyPath,
    source: &str,
    read_only: bool,
) -> Option<MountSource> {
    let host = PathBuf::from(source);
    let allowed = &ctx.opts.allow_host_paths;
    let checked = if ctx.opts.check_on_host {
        super::super::host_path::check_on_host(&host, read_only, allowed).map(drop)
    } else {
        super::super::host_path::check_spelling(&host, read_only, allowed)
    };
    if let Err(e) = checked {
        ctx.error(file, path, e);
        return None;
    }
    Some(MountSource::HostPath(host))
}

/// Any other source: a volume declared under `volumes:`.
fn volume_source(
    ctx: &mut Ctx,
    file: usize,
    path: &KeyPath,
    source: &str,
    volumes: &BTreeMap<String, VolumeSpec>,
) -> Option<MountSource> {
    if volumes.contains_key(source) {
        return Some(MountSource::Volume(source.to_string()));
    }
    let known: Vec<&str> = if ctx.is_full() {
        Vec::new()
    } else {
        volumes.keys().map(String::as_str).collect()
    };
    let hint = super::super::diagnostic::nearest(source, &known)
        .map(|k| format!("did you mean `{k}`?"))
        .unwrap_or_else(|| {
            "declare it under `volumes:`, or write `./` before a repository file".to_string()
        });
    ctx.error(
        file,
        path,
        format!("volume `{source}` is not declared; {hint}"),
    );
    None
}
