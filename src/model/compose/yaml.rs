//! YAML as compose files write it: merge keys resolved fully, and the seam where
//! interpolation applies to every scalar string before anything is typed.

use std::borrow::Cow;

use serde_yaml::{Mapping, Value};

use super::super::location::KeyPath;

/// Resolves every `<<` merge key, at any depth, including merges whose merged-in
/// mappings carry a `<<` of their own (`x-b: &b {<<: *a, …}` then `<<: *b`).
///
/// serde_yaml's `apply_merge` (which the loader has already run) copies a merged
/// mapping's own `<<` key into the target without resolving it; this finishes the job.
/// Keys written in the mapping win over merged ones, and in `<<: [*a, *b]` the earlier
/// mapping wins, as the YAML merge-key rules say.
pub(crate) fn resolve_merges(value: &mut Value) -> Result<(), String> {
    let mut stack = vec![value];
    while let Some(node) = stack.pop() {
        match node {
            Value::Mapping(map) => {
                if let Some(merge) = map.remove("<<") {
                    merge_into(map, merge)?;
                }
                stack.extend(map.values_mut());
            }
            Value::Sequence(items) => stack.extend(items),
            Value::Tagged(tagged) => stack.push(&mut tagged.value),
            _ => {}
        }
    }
    Ok(())
}

fn merge_into(map: &mut Mapping, merge: Value) -> Result<(), String> {
    let sources = match merge {
        Value::Mapping(m) => vec![m],
        Value::Sequence(items) => items
            .into_iter()
            .map(|item| match item {
                Value::Mapping(m) => Ok(m),
                _ => Err("each item of a `<<` merge list must be a mapping (an alias such as `*defaults`)".to_string()),
            })
            .collect::<Result<_, _>>()?,
        _ => return Err("a `<<` merge key must name a mapping or a list of mappings".to_string()),
    };
    for source in sources {
        // A merged-in mapping is complete with its own merges before it is merged.
        let mut source = Value::Mapping(source);
        resolve_merges(&mut source)?;
        if let Value::Mapping(source) = source {
            for (k, v) in source {
                if !map.contains_key(&k) {
                    map.insert(k, v);
                }
            }
        }
    }
    Ok(())
}

/// Drops `x-*` extension keys of a mapping: they exist to hold anchors and tool
/// settings, and are never part of the stack. Returns the dropped names.
pub(crate) fn drop_extensions(map: &mut Mapping) -> Vec<String> {
    let names: Vec<String> = map
        .keys()
        .filter_map(Value::as_str)
        .filter(|k| k.starts_with("x-"))
        .map(str::to_string)
        .collect();
    for n in &names {
        map.remove(n.as_str());
    }
    names
}

/// THE INTERPOLATION SEAM: visits every scalar string of the file (values, never keys)
/// after merge keys are resolved and before any value is typed, with the path's
/// segments (mapping keys, `[]` for a sequence item) and its key path, built only when
/// the visitor asks for it (most strings need none). The visitor may replace the value:
/// [`super::variables`] interpolates it, then types it where the Compose
/// Specification's schema wants a number or a boolean (`retries: $N`).
pub(crate) fn visit_strings(value: &mut Value, path: &KeyPath, visit: &mut Visitor) {
    walk(value, path, &mut Vec::new(), &mut Vec::new(), visit);
}

/// What [`visit_strings`] calls for each string: with its key path (built on demand),
/// the path's segments, and the value.
pub(crate) type Visitor<'v> = dyn FnMut(&dyn Fn() -> KeyPath, &[Cow<str>], &mut Value) + 'v;

/// The key path of `segments` below `base`; `indexes` holds the item number of each
/// `[]` segment.
fn key_path(base: &KeyPath, segments: &[Cow<str>], indexes: &[Option<usize>]) -> KeyPath {
    segments
        .iter()
        .zip(indexes)
        .fold(base.clone(), |p, (s, i)| match i {
            Some(i) => p.index(*i),
            None => p.key(s),
        })
}

fn walk<'a>(
    value: &'a mut Value,
    base: &KeyPath,
    segments: &mut Vec<Cow<'a, str>>,
    indexes: &mut Vec<Option<usize>>,
    visit: &mut Visitor,
) {
    match value {
        Value::String(_) => {
            let (s, i) = (&*segments, &*indexes);
            visit(&|| key_path(base, s, i), s, value)
        }
        Value::Mapping(map) => {
            for (k, v) in map.iter_mut() {
                let key = match k {
                    Value::String(s) => Cow::Borrowed(s.as_str()),
                    Value::Number(n) => Cow::Owned(n.to_string()),
                    Value::Bool(b) => Cow::Owned(b.to_string()),
                    _ => continue,
                };
                segments.push(key);
                indexes.push(None);
                walk(v, base, segments, indexes, visit);
                segments.pop();
                indexes.pop();
            }
        }
        Value::Sequence(items) => {
            for (i, v) in items.iter_mut().enumerate() {
                segments.push(Cow::Borrowed("[]"));
                indexes.push(Some(i));
                walk(v, base, segments, indexes, visit);
                segments.pop();
                indexes.pop();
            }
        }
        Value::Tagged(tagged) => walk(&mut tagged.value, base, segments, indexes, visit),
        _ => {}
    }
}
