//! YAML as compose files write it: merge keys resolved fully, and the seam where
//! interpolation applies to every scalar string before anything is typed.

use serde_yaml::{Mapping, Value};

/// Resolves every `<<` merge key, at any depth, including merges whose merged-in
/// mappings carry a `<<` of their own (`x-b: &b {<<: *a, …}` then `<<: *b`).
///
/// serde_yaml's `apply_merge` (which the loader has already run) copies a merged
/// mapping's own `<<` key into the target without resolving it; this finishes the job.
/// Keys written in the mapping win over merged ones, and in `<<: [*a, *b]` the earlier
/// mapping wins, as the YAML merge-key rules say.
pub fn resolve_merges(value: &mut Value) -> Result<(), String> {
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
pub fn drop_extensions(map: &mut Mapping) -> Vec<String> {
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

/// THE INTERPOLATION SEAM: applied to every scalar string of the file (values, never
/// keys) after merge keys are resolved and before any value is typed. It is the
/// identity for now, so `${VAR}`, `$VAR` and `$$` reach the typed readers as written;
/// compose's interpolation (`super::interpolate`) plugs in here, and typed readers must
/// then also accept numbers and booleans that arrive as strings (`retries: $N`).
pub fn interpolate_strings(value: &mut Value, expand: &dyn Fn(&str) -> String) {
    match value {
        Value::String(s) => *s = expand(s),
        Value::Mapping(map) => map
            .values_mut()
            .for_each(|v| interpolate_strings(v, expand)),
        Value::Sequence(items) => items
            .iter_mut()
            .for_each(|v| interpolate_strings(v, expand)),
        Value::Tagged(tagged) => interpolate_strings(&mut tagged.value, expand),
        _ => {}
    }
}

/// The expansion used today: none.
pub fn no_interpolation(s: &str) -> String {
    s.to_string()
}
