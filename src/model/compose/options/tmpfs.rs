//! `tmpfs`: in-memory mounts, from the key of that name or a `type: tmpfs` volume.

use serde_yaml::Value;

use super::super::super::context::Ctx;
use super::super::super::location::KeyPath;
use super::super::super::spec::Tmpfs;
use super::super::super::units::parse_size;
use super::super::super::validate::string_list;

/// `tmpfs`: a path or a list of paths, each `PATH[:OPTIONS]`.
pub(super) fn tmpfs_key(
    ctx: &mut Ctx,
    file: usize,
    path: &KeyPath,
    v: &Value,
) -> Option<Vec<Tmpfs>> {
    let items: Vec<(KeyPath, String)> = match v {
        Value::String(s) => vec![(path.clone(), s.clone())],
        other => string_list(ctx, file, path, other, "`tmpfs`", "[\"/tmp\"]")?
            .into_iter()
            .enumerate()
            .map(|(i, s)| (path.index(i), s))
            .collect(),
    };
    let mut out: Vec<Tmpfs> = Vec::new();
    let mut good = true;
    for (ip, text) in items {
        let (target, opts) = text.split_once(':').unwrap_or((&text, ""));
        match tmpfs_mount(target, opts) {
            Ok(t) => out.push(t),
            Err(e) => {
                ctx.error(file, &ip, e);
                good = false;
            }
        }
    }
    good.then_some(out)
}

/// Checks a tmpfs target and its options (`size=64m,mode=1777,noexec`) and writes the
/// options as Docker takes them, sizes in bytes.
pub(in super::super) fn tmpfs_mount(target: &str, opts: &str) -> Result<Tmpfs, String> {
    if !target.starts_with('/') || target.contains(['\0', ',']) {
        return Err(format!(
            "tmpfs target `{target}` must be an absolute path in the container, such as `/tmp`"
        ));
    }
    let mut out = Vec::new();
    for o in opts.split(',').filter(|o| !o.is_empty()) {
        let (k, val) = o.split_once('=').unwrap_or((o, ""));
        let ok = match k {
            "size" => match parse_size(val) {
                Ok(n) if n > 0 => {
                    out.push(format!("size={n}"));
                    continue;
                }
                _ => false,
            },
            "mode" => val.len() <= 4 && u32::from_str_radix(val, 8).is_ok(),
            "uid" | "gid" | "nr_inodes" => val.parse::<u64>().is_ok(),
            "ro" | "rw" | "exec" | "noexec" | "nosuid" | "nodev" => val.is_empty(),
            _ => {
                return Err(format!("tmpfs option `{o}` is not supported; use `size`, `mode`, `uid`, `gid`, `nr_inodes`, `ro`, `rw`, `exec`, `noexec`, `nosuid` or `nodev`"));
            }
        };
        if !ok {
            return Err(format!(
                "tmpfs option `{o}` has an invalid value (e.g. `size=64m`, `mode=1777`)"
            ));
        }
        out.push(o.to_string());
    }
    Ok(Tmpfs {
        target: target.to_string(),
        options: out.join(","),
    })
}
