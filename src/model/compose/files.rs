//! `secrets` and `configs`: files mounted into a service. A secret is the host
//! operator's (a file in the project's env directory, never in the repository); a
//! config is the repository's (a committed file, or `content:` written inline).

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

use serde_yaml::{Mapping, Value};

use super::super::context::{kind, Ctx};
use super::super::diagnostic::nearest;
use super::super::location::KeyPath;
use super::super::spec::{Mount, MountSource};
use super::super::tree::join_inside;
use super::super::validate::{describe, string};
use super::forms::{mapping, nested};
use super::keys::not_yet as keys_not_yet;

/// A secret's file: on the host (relative to the env directory, or absolute), or, for an
/// age file of the repository, its repository path with the ciphertext.
pub(crate) type SecretFile = (PathBuf, Option<Arc<[u8]>>);

/// The top-level `secrets` and `configs`: what a service may mount.
#[derive(Debug, Default)]
pub(crate) struct Files {
    /// Secret name → its file on the host, relative to the env directory or absolute;
    /// or, for an age file of the repository, its repository path and ciphertext.
    pub secrets: BTreeMap<String, SecretFile>,
    /// Config name → the source it mounts.
    pub configs: BTreeMap<String, MountSource>,
}

/// Reads the top-level `secrets` (`section` is `"secrets"`) or `configs`.
pub(crate) fn top_level(
    ctx: &mut Ctx,
    file: usize,
    section: &str,
    defs: &Mapping,
    out: &mut Files,
) {
    for (k, def) in defs {
        let Some(name) = k.as_str() else { continue };
        let p = KeyPath::root().key(section).key(name);
        let Some(m) = mapping(ctx, file, &p, def, "a definition") else {
            continue;
        };
        let refused: &[(&str, &str)] = &[
            (
                "environment",
                "it reads the variable from the environment of whoever runs berth, which berth never does; put the value in a file in the host's env directory and use `file:`",
            ),
            ("external", "external secrets and configs belong to Swarm; use `file:`"),
        ];
        let (allowed, not_yet): (&[&str], &[&str]) = if section == "secrets" {
            (
                &["file", "name"],
                &["labels", "driver", "driver_opts", "template_driver"],
            )
        } else {
            (&["file", "content", "name"], &["labels", "template_driver"])
        };
        let mut refusal = false;
        for (key, why) in refused {
            if m.contains_key(*key) {
                ctx.key_error(
                    file,
                    &p.key(key),
                    format!("`{key}` is not supported: {why}"),
                );
                refusal = true;
            }
        }
        if refusal {
            continue;
        }
        let Some(d) = nested(ctx, file, &p, m, allowed, not_yet, &[]) else {
            continue;
        };
        if section == "secrets" {
            let Some(v) = d.get("file") else {
                ctx.key_error(file, &p, "a secret needs `file:`, a file in the host's env directory (`/etc/berth/<project>/`, or --env-dir)");
                continue;
            };
            let Some(text) = string(ctx, file, &p.key("file"), v, "./db_password.txt") else {
                continue;
            };
            if is_repo_sealed(&text) {
                if let Some((rel, data)) = sealed_file(ctx, file, &p.key("file"), &text) {
                    out.secrets
                        .insert(name.to_string(), (PathBuf::from(rel), Some(data)));
                }
                continue;
            }
            match env_dir_path(&text) {
                Ok(path) => {
                    out.secrets.insert(name.to_string(), (path, None));
                }
                Err(_) => ctx.error(file, &p.key("file"), format!("secret file `{text}` leads out of the env directory; secrets are read from the host's env directory (`/etc/berth/<project>/`, or --env-dir): name a file there")),
            }
            continue;
        }
        let source = match (d.get("file"), d.get("content")) {
            (Some(_), Some(_)) => {
                ctx.key_error(file, &p, "a config takes `file` or `content`, not both");
                None
            }
            (None, None) => {
                ctx.key_error(file, &p, "a config needs `file:`, a repository file");
                None
            }
            (Some(v), None) => string(ctx, file, &p.key("file"), v, "./app.ini").and_then(|text| {
                let dir = ctx.files[file].dir.clone();
                match join_inside(&dir, &text) {
                    Some(rel) => match super::super::repo_mount::read(ctx, file, &p.key("file"), &text, &rel)? {
                        f @ MountSource::RepoFile(_) => Some(f),
                        _ => {
                            ctx.error(file, &p.key("file"), format!("config `{text}` is a directory; a config is one file"));
                            None
                        }
                    },
                    None => {
                        ctx.error(file, &p.key("file"), format!("`{text}` leads outside the repository; configs are repository files"));
                        None
                    }
                }
            }),
            (None, Some(_)) => {
                ctx.key_error(file, &p.key("content"), keys_not_yet(&format!("configs.{name}.content")));
                None
            }
        };
        if let Some(s) = source {
            out.configs.insert(name.to_string(), s);
        }
    }
}

/// True for a file named in a commit that is an age file of the repository: a relative
/// path ending in `.age` (an absolute one is a host file, decrypted too).
pub(super) fn is_repo_sealed(text: &str) -> bool {
    let p = Path::new(text);
    !p.is_absolute() && crate::secrets::is_sealed(p)
}

/// Reads an age file of the repository (`text`, relative to the compose file's
/// directory): its repository path and ciphertext. Reports and returns `None` when it
/// leads outside the repository, is missing, a directory, or larger than
/// [`crate::secrets::MAX_SEALED_BYTES`].
pub(super) fn sealed_file(
    ctx: &mut Ctx,
    file: usize,
    path: &KeyPath,
    text: &str,
) -> Option<(String, Arc<[u8]>)> {
    let dir = ctx.files[file].dir.clone();
    let Some(rel) = join_inside(&dir, text) else {
        ctx.error(file, path, format!("`{text}` leads outside the repository; an encrypted file (`.age`) is a repository file"));
        return None;
    };
    match super::super::repo_mount::read(ctx, file, path, text, &rel)? {
        MountSource::RepoFile(f) if f.content.len() > crate::secrets::MAX_SEALED_BYTES => {
            ctx.error(file, path, format!("`{text}` is larger than {} KiB; encrypted files hold settings and keys, not data", crate::secrets::MAX_SEALED_BYTES >> 10));
            None
        }
        MountSource::RepoFile(f) => Some((f.path, f.content)),
        _ => {
            ctx.error(
                file,
                path,
                format!("`{text}` is a directory; an encrypted file (`.age`) is one file"),
            );
            None
        }
    }
}

/// Why a host file named in a commit cannot be looked up in the env directory.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum EnvDirPathError {
    /// A relative path with `..` (or a root) leads out of the directory.
    Escapes,
    /// Nothing but `.`.
    Empty,
}

/// A host file named in a commit (an env file, a secret file): absolute, or relative
/// inside the env directory, `.` dropped. Whether an absolute one lies in the directory
/// is judged when it is read.
pub(super) fn env_dir_path(text: &str) -> Result<PathBuf, EnvDirPathError> {
    let p = Path::new(text);
    if !p.is_absolute()
        && p.components()
            .any(|c| !matches!(c, Component::Normal(_) | Component::CurDir))
    {
        return Err(EnvDirPathError::Escapes);
    }
    let normal: PathBuf = p
        .components()
        .filter(|c| !matches!(c, Component::CurDir))
        .collect();
    if normal.as_os_str().is_empty() {
        return Err(EnvDirPathError::Empty);
    }
    Ok(normal)
}

/// A service's `secrets` (`section` `"secrets"`) or `configs`: names, or long forms with
/// `source` and `target`. Secrets mount at `/run/secrets/<name>`, configs at `/<name>`,
/// read-only, as compose mounts them.
pub(crate) fn service(
    ctx: &mut Ctx,
    file: usize,
    path: &KeyPath,
    v: &Value,
    section: &str,
    files: &Files,
) -> Option<Vec<Mount>> {
    let Value::Sequence(items) = v else {
        ctx.error(
            file,
            path,
            format!("`{section}` must be a list of names; found {}", kind(v)),
        );
        return None;
    };
    let mut out = Vec::new();
    let mut good = true;
    for (i, item) in items.iter().enumerate() {
        let ip = path.index(i);
        let (source, target) = match item {
            Value::String(s) => (s.clone(), None),
            Value::Mapping(m) => {
                let Some(d) = nested(
                    ctx,
                    file,
                    &ip,
                    m,
                    &["source", "target"],
                    &["uid", "gid", "mode"],
                    &[],
                ) else {
                    good = false;
                    continue;
                };
                let Some(source) = d.get("source").and_then(|v| v.as_str()) else {
                    ctx.key_error(file, &ip, "`source` is missing");
                    good = false;
                    continue;
                };
                let target = match d.get("target") {
                    None => None,
                    Some(Value::String(t)) => Some(t.clone()),
                    Some(other) => {
                        ctx.error(
                            file,
                            &ip.key("target"),
                            format!("expected a path; found {}", describe(other)),
                        );
                        good = false;
                        continue;
                    }
                };
                (source.to_string(), target)
            }
            other => {
                ctx.error(file, &ip, format!("expected a name; found {}", kind(other)));
                good = false;
                continue;
            }
        };
        let (known, mount_source): (Vec<&str>, Option<MountSource>) = if section == "secrets" {
            (
                files.secrets.keys().map(String::as_str).collect(),
                files
                    .secrets
                    .get(&source)
                    .map(|(p, sealed)| MountSource::Secret {
                        name: source.clone(),
                        path: p.clone(),
                        sealed: sealed.clone(),
                    }),
            )
        } else {
            (
                files.configs.keys().map(String::as_str).collect(),
                files.configs.get(&source).cloned(),
            )
        };
        let Some(mount_source) = mount_source else {
            let hint = nearest(&source, &known)
                .map(|k| format!("; did you mean `{k}`?"))
                .unwrap_or_else(|| format!("; declare it under the top-level `{section}:`"));
            ctx.error(
                file,
                &ip,
                format!(
                    "{} `{source}` is not declared{hint}",
                    &section[..section.len() - 1]
                ),
            );
            good = false;
            continue;
        };
        let target = match (section, target) {
            ("secrets", None) => format!("/run/secrets/{source}"),
            ("secrets", Some(t)) if !t.starts_with('/') => format!("/run/secrets/{t}"),
            (_, None) => format!("/{source}"),
            (_, Some(t)) => t,
        };
        let plain = Path::new(&target)
            .components()
            .all(|c| matches!(c, Component::RootDir | Component::Normal(_)));
        if !target.starts_with('/') || !plain || target == "/" {
            ctx.error(file, &ip, format!("target `{target}` must be an absolute path in the container, without `.` or `..`"));
            good = false;
            continue;
        }
        out.push(Mount {
            source: mount_source,
            target,
            read_only: true,
        });
    }
    good.then_some(out)
}
