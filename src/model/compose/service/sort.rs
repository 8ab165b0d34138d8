//! A service's keys sorted by the table of [`super::super::keys`]: the mapped ones kept,
//! refused, ignored, not-yet and unknown ones reported.

use std::collections::BTreeMap;

use serde_yaml::{Mapping, Value};

use super::super::super::context::{kind, Ctx};
use super::super::super::diagnostic::nearest;
use super::super::super::location::KeyPath;
use super::super::keys;

/// A service's keys, sorted by what happens to them.
#[derive(Default)]
pub(super) struct Keys<'m> {
    /// The keys berth maps, by their name in [`keys::SUPPORTED`].
    pub mapped: BTreeMap<&'static str, &'m Value>,
    /// `x-berth`, berth's own keys.
    pub berth: Option<&'m Value>,
}

/// Sorts the keys of a service by [`keys`]: reports refused, ignored, not-yet and
/// unknown keys, and returns the mapped ones.
pub(super) fn sort_keys<'m>(
    ctx: &mut Ctx,
    file: usize,
    path: &KeyPath,
    map: &'m Mapping,
    ok: &mut bool,
) -> Keys<'m> {
    let mut out = Keys::default();
    for (k, v) in map {
        let Some(key) = k.as_str() else {
            ctx.key_error(
                file,
                path,
                format!("keys must be strings, found {}", kind(k)),
            );
            *ok = false;
            continue;
        };
        let kp = || path.key(key);
        if key == "x-berth" {
            out.berth = Some(v);
        } else if key.starts_with("x-") {
            // Extension fields hold anchors and other tools' settings.
        } else if let Some(name) = keys::supported(key) {
            out.mapped.insert(name, v);
        } else if let Some(reason) = keys::lookup(keys::REFUSED, key) {
            if let Some(msg) = refused(key, v, reason) {
                ctx.key_error(file, &kp(), msg);
                *ok = false;
            }
        } else if let Some(reason) = keys::lookup(keys::IGNORED, key) {
            if key != "profiles" {
                ctx.warning(file, &kp(), format!("`{key}` is ignored: {reason}"));
            }
        } else if keys::NOT_YET.contains(&key) {
            ctx.key_error(file, &kp(), keys::not_yet(key));
            *ok = false;
        } else {
            let known = keys::all_service_keys();
            let hint = nearest(key, &known)
                .map(|n| format!("; did you mean `{n}`?"))
                .unwrap_or_default();
            ctx.key_error(
                file,
                &kp(),
                format!("unknown key `{key}` in a compose service{hint}"),
            );
            *ok = false;
        }
    }
    out
}

/// The message for a refused key, or `None` when its value asks for nothing
/// (`privileged: false`, `cap_add: []`).
fn refused(key: &str, v: &Value, reason: &str) -> Option<String> {
    let harmless = match v {
        Value::Null | Value::Bool(false) => true,
        Value::Sequence(s) => s.is_empty(),
        Value::Mapping(m) => m.is_empty(),
        _ => false,
    };
    if harmless {
        return None;
    }
    let namespace = matches!(
        key,
        "network_mode" | "pid" | "ipc" | "userns_mode" | "uts" | "cgroup"
    );
    if namespace && v.as_str() != Some("host") {
        return Some(keys::not_yet(key));
    }
    Some(format!(
        "`{key}` is not allowed: it {reason}; berth lets whoever pushes to the desired state run containers, not own the host"
    ))
}
