//! `environment` and `env_file`: the committed variables of a service, and the host's
//! files holding the rest.

use std::collections::BTreeMap;

use serde_yaml::Value;

use super::super::super::context::{kind, Ctx};
use super::super::super::location::KeyPath;
use super::super::super::spec::EnvFileRef;
use super::super::super::validate::string;
use super::super::files::{env_dir_path, EnvDirPathError};
use super::super::forms::{key_values, nested};

/// `environment`: a map, or a list of `K=V`. A name without a value would pass berth's
/// own environment through, which berth never does.
pub(super) fn environment(
    ctx: &mut Ctx,
    file: usize,
    path: &KeyPath,
    v: &Value,
) -> Option<BTreeMap<String, String>> {
    let pass_through = |k: &str| {
        format!("`{k}` has no value, which in compose passes the variable through from the environment of whoever runs it; berth never reads its own environment: write `{k}=value` here, or put it in the host's env_file")
    };
    let (entries, mut good) = key_values(
        ctx,
        file,
        path,
        v,
        ("environment", "environment", "NAME=value"),
    )?;
    let mut out = BTreeMap::new();
    for entry in entries {
        let key = &entry.key;
        if key.is_empty() || key.contains(['\0', ' ']) {
            entry.report(ctx, file, format!("environment name `{key}` is invalid"));
            good = false;
            continue;
        }
        match &entry.value {
            None => {
                entry.report(ctx, file, pass_through(key));
                good = false;
            }
            Some(val) => {
                if out.insert(key.clone(), val.clone()).is_some() {
                    entry.report(
                        ctx,
                        file,
                        format!("environment `{key}` is set twice; keep one"),
                    );
                    good = false;
                }
            }
        }
    }
    good.then_some(out)
}

/// `env_file`: host-side files, as a string, a list, or long forms with `required`.
/// An absolute path must lie in the env directory (checked when it is read); a relative
/// one is taken inside it, never from the repository, except an age-encrypted file
/// (`secrets/api.env.age`), which is the repository's and decrypted on the host.
pub(super) fn env_file(
    ctx: &mut Ctx,
    file: usize,
    path: &KeyPath,
    v: &Value,
    service: &str,
) -> Option<Vec<EnvFileRef>> {
    let items: Vec<(KeyPath, &Value)> = match v {
        Value::Sequence(items) => items
            .iter()
            .enumerate()
            .map(|(i, v)| (path.index(i), v))
            .collect(),
        other => vec![(path.clone(), other)],
    };
    let mut out = Vec::new();
    let mut good = true;
    for (ip, item) in items {
        let (text, required) = match item {
            Value::String(s) => (Some(s.clone()), true),
            Value::Mapping(m) => {
                match nested(ctx, file, &ip, m, &["path", "required"], &["format"], &[]) {
                    None => (None, true),
                    Some(long) => {
                        let required = match long.get("required") {
                            None => Some(true),
                            Some(Value::Bool(b)) => Some(*b),
                            Some(other) => {
                                ctx.error(
                                    file,
                                    &ip.key("required"),
                                    format!("expected `true` or `false`; found {}", kind(other)),
                                );
                                None
                            }
                        };
                        let text = match long.get("path") {
                            Some(p) => string(ctx, file, &ip.key("path"), p, ".env.prod"),
                            None => {
                                ctx.key_error(file, &ip, "`path` is missing");
                                None
                            }
                        };
                        match required {
                            Some(r) => (text, r),
                            None => (None, true),
                        }
                    }
                }
            }
            other => {
                ctx.error(
                    file,
                    &ip,
                    format!(
                        "`env_file` must be a path or a list of paths; found {}",
                        kind(other)
                    ),
                );
                (None, true)
            }
        };
        let Some(text) = text else {
            good = false;
            continue;
        };
        if super::super::files::is_repo_sealed(&text) {
            match super::super::files::sealed_file(ctx, file, &ip, &text) {
                Some((rel, data)) => out.push(EnvFileRef {
                    path: rel.into(),
                    required: true,
                    sealed: Some(data),
                }),
                None => good = false,
            }
            continue;
        }
        let normal = match env_dir_path(&text) {
            Ok(p) => p,
            Err(EnvDirPathError::Escapes) => {
                ctx.error(file, &ip, format!("env_file `{text}` leads out of the env directory; berth reads env files from the host's env directory (`/etc/berth/<project>/`, or --env-dir): name a file there, e.g. `{service}.env`"));
                good = false;
                continue;
            }
            Err(EnvDirPathError::Empty) => {
                ctx.error(file, &ip, "`env_file` names no file");
                good = false;
                continue;
            }
        };
        out.push(EnvFileRef {
            path: normal,
            required,
            sealed: None,
        });
    }
    good.then_some(out)
}
