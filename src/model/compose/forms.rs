//! The forms compose writes values in, read once for every key: a nested mapping whose
//! keys are sorted into supported, ignored and not-yet, a value that must be a mapping,
//! and the "mapping or list of `KEY=VALUE`" of `environment` and `labels`.

use std::collections::BTreeMap;

use serde_yaml::{Mapping, Value};

use super::super::context::{kind, Ctx};
use super::super::diagnostic::nearest;
use super::super::location::KeyPath;
use super::super::validate::scalar;
use super::keys;

/// Checks the keys of a nested mapping: `supported` are returned, `ignored` warn,
/// anything else is an error (not supported yet, or unknown).
pub(super) fn nested<'m>(
    ctx: &mut Ctx,
    file: usize,
    path: &KeyPath,
    map: &'m Mapping,
    supported: &[&str],
    not_yet: &[&str],
    ignored: &[(&str, &str)],
) -> Option<BTreeMap<&'m str, &'m Value>> {
    let mut out = BTreeMap::new();
    let mut good = true;
    for (k, v) in map {
        let Some(key) = k.as_str() else {
            ctx.key_error(
                file,
                path,
                format!("keys must be strings, found {}", kind(k)),
            );
            good = false;
            continue;
        };
        if supported.contains(&key) {
            out.insert(key, v);
            continue;
        }
        let kp = path.key(key);
        if key.starts_with("x-") {
        } else if let Some((_, why)) = ignored.iter().find(|(n, _)| *n == key) {
            ctx.warning(file, &kp, format!("`{key}` is ignored: {why}"));
        } else if not_yet.contains(&key) {
            ctx.key_error(file, &kp, keys::not_yet(&kp.to_string()));
            good = false;
        } else {
            let all: Vec<&str> = supported.iter().chain(not_yet).copied().collect();
            let hint = nearest(key, &all)
                .map(|n| format!("; did you mean `{n}`?"))
                .unwrap_or_default();
            ctx.key_error(file, &kp, format!("unknown key `{key}`{hint}"));
            good = false;
        }
    }
    good.then_some(out)
}

/// `v` as a mapping; anything else is reported, `what` naming the value (`` `deploy` ``).
pub(super) fn mapping<'v>(
    ctx: &mut Ctx,
    file: usize,
    path: &KeyPath,
    v: &'v Value,
    what: &str,
) -> Option<&'v Mapping> {
    match v {
        Value::Mapping(m) => Some(m),
        other => {
            ctx.error(
                file,
                path,
                format!("{what} must be a mapping; found {}", kind(other)),
            );
            None
        }
    }
}

/// One entry of a compose "mapping or list of `KEY=VALUE`" key (`environment`,
/// `labels`): where it was written, its name, and its value (`None` when the name stands
/// alone: `KEY:` in a mapping, `KEY` in a list).
pub(super) struct KeyValue {
    pub path: KeyPath,
    pub key: String,
    pub value: Option<String>,
    /// Written as a mapping key (a diagnostic points at the key), not a list item.
    pub at_key: bool,
}

impl KeyValue {
    /// Reports `msg` at the entry: at its key in a mapping, at the item in a list.
    pub(super) fn report(&self, ctx: &mut Ctx, file: usize, msg: String) {
        if self.at_key {
            ctx.key_error(file, &self.path, msg)
        } else {
            ctx.error(file, &self.path, msg)
        }
    }
}

/// Reads `v`, the key `key` (its entries called `noun`, its list items `form`), as a
/// mapping or a list of `form`. Returns the entries and whether every one was well formed;
/// `None` when `v` is neither form.
pub(super) fn key_values(
    ctx: &mut Ctx,
    file: usize,
    path: &KeyPath,
    v: &Value,
    (key, noun, form): (&str, &str, &str),
) -> Option<(Vec<KeyValue>, bool)> {
    let mut entries = Vec::new();
    let mut good = true;
    match v {
        Value::Mapping(m) => {
            for (k, val) in m {
                let Some(name) = scalar(k) else {
                    ctx.key_error(
                        file,
                        path,
                        format!("{noun} names must be strings; found {}", kind(k)),
                    );
                    good = false;
                    continue;
                };
                let kp = path.key(&name);
                let value = match val {
                    Value::Null => None,
                    other => match scalar(other) {
                        Some(s) => Some(s),
                        None => {
                            ctx.error(
                                file,
                                &kp,
                                format!(
                                    "{noun} `{name}` must be a string, number or boolean; found {}",
                                    kind(other)
                                ),
                            );
                            good = false;
                            continue;
                        }
                    },
                };
                entries.push(KeyValue {
                    path: kp,
                    key: name,
                    value,
                    at_key: true,
                });
            }
        }
        Value::Sequence(items) => {
            for (i, item) in items.iter().enumerate() {
                let ip = path.index(i);
                let Some(text) = scalar(item) else {
                    ctx.error(
                        file,
                        &ip,
                        format!(
                            "each item of `{key}` must be `{form}`; found {}",
                            kind(item)
                        ),
                    );
                    good = false;
                    continue;
                };
                let (name, value) = match text.split_once('=') {
                    Some((k, val)) => (k.to_string(), Some(val.to_string())),
                    None => (text, None),
                };
                entries.push(KeyValue {
                    path: ip,
                    key: name,
                    value,
                    at_key: false,
                });
            }
        }
        other => {
            ctx.error(
                file,
                path,
                format!(
                    "`{key}` must be a mapping or a list of `{form}`; found {}",
                    kind(other)
                ),
            );
            return None;
        }
    }
    Some((entries, good))
}
