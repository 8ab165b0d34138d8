//! Top-level `volumes` and `networks`: which compose features berth supports for them,
//! and the name each gets in the spec.

use std::collections::BTreeMap;

use serde_yaml::{Mapping, Value};

use super::super::context::{kind, Ctx};
use super::super::diagnostic::nearest;
use super::super::location::KeyPath;
use super::super::validate::valid_name;
use super::keys;

/// Top-level `volumes` or `networks` (`what`): the map from each compose name to its
/// name in the spec (an external object's own `name:` when given), and the spec's
/// objects with their `external` flag.
pub(super) fn objects(
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
    let keys = Keys::of(what);
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
        let mut good = check_keys(ctx, file, &p, &m, &keys, what, key);
        if let Some(d) = m.get("driver") {
            if d.as_str() != Some(keys.driver) {
                ctx.error(
                    file,
                    &p.key("driver"),
                    format!("only the `{}` driver is supported yet", keys.driver),
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
        let spec_name = spec_name(ctx, file, &p, what, key, external, own);
        let Some(spec_name) = spec_name.filter(|_| good) else {
            continue;
        };
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

/// What berth reads of a volume or a network.
struct Keys {
    supported: &'static [&'static str],
    /// Compose keys berth may support one day; reported as such.
    not_yet: &'static [&'static str],
    /// The only driver supported.
    driver: &'static str,
}

impl Keys {
    /// The keys of a volume (`what` is `"volumes"`) or a network.
    fn of(what: &str) -> Keys {
        if what == "volumes" {
            Keys {
                supported: &["external", "name", "driver"],
                not_yet: &["driver_opts", "labels"],
                driver: "local",
            }
        } else {
            Keys {
                supported: &["external", "name", "driver"],
                not_yet: &[
                    "driver_opts",
                    "labels",
                    "ipam",
                    "internal",
                    "attachable",
                    "enable_ipv4",
                    "enable_ipv6",
                ],
                driver: "bridge",
            }
        }
    }
}

/// Reports the keys of the object `key` (its definition `m`, written at `p`) that berth
/// does not read; true when there are none. Extension fields (`x-…`) are left alone.
fn check_keys(
    ctx: &mut Ctx,
    file: usize,
    p: &KeyPath,
    m: &Mapping,
    keys: &Keys,
    what: &str,
    key: &str,
) -> bool {
    let mut good = true;
    for (sk, _) in m {
        let Some(s) = sk.as_str() else { continue };
        if keys.supported.contains(&s) || s.starts_with("x-") {
            continue;
        }
        let msg = if keys.not_yet.contains(&s) {
            keys::not_yet(&format!("{what}.{key}.{s}"))
        } else {
            let all: Vec<&str> = keys.supported.iter().chain(keys.not_yet).copied().collect();
            let hint = nearest(s, &all)
                .map(|n| format!("; did you mean `{n}`?"))
                .unwrap_or_default();
            format!("unknown key `{s}`{hint}")
        };
        ctx.key_error(file, &p.key(s), msg);
        good = false;
    }
    good
}

/// The object's name in the spec: an external object's own `name` (a Docker object
/// name), else its compose name, which berth prefixes with the project's. `None` when
/// it is not supported (reported).
fn spec_name(
    ctx: &mut Ctx,
    file: usize,
    p: &KeyPath,
    what: &str,
    key: &str,
    external: bool,
    own: Option<String>,
) -> Option<String> {
    match (external, own) {
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
                return None;
            }
            Some(own)
        }
        (false, Some(own)) if own != key => {
            ctx.error(file, &p.key("name"), format!("a `name` for a {} berth creates is not supported yet; berth names it `<project>_{key}`", &what[..what.len() - 1]));
            None
        }
        _ => {
            if !valid_name(key, 63, &['_']) {
                ctx.key_error(file, p, format!("name `{key}` is not supported; use a lowercase letter then lowercase letters, digits, `-` or `_`"));
                return None;
            }
            Some(key.to_string())
        }
    }
}
