//! Several compose files merged in order, as `docker compose -f a.yml -f b.yml` merges
//! them, by the Compose Specification's merge rules:
//!
//! - mappings are merged key by key, recursively; other values are replaced by the later
//!   file's;
//! - sequences are appended, except `command`, `entrypoint` and `healthcheck.test`,
//!   which are replaced, and the sequences whose items are unique by a key, where an
//!   item of the later file replaces the earlier item with its key (merged with it when
//!   both are mappings): `ports` by ip, target, published port and protocol, `volumes`,
//!   `secrets`, `configs` and `devices` by target, `env_file` by path, `expose`, `dns`,
//!   `dns_opt`, `dns_search`, `cap_add`, `cap_drop`, `tmpfs`, `profiles` and `links` by
//!   value, and `environment`, `labels`, `annotations`, `sysctls`, `build.args`,
//!   `build.labels`, `deploy.labels` by the name before `=`;
//! - `environment`, `labels`, `annotations`, `sysctls`, `extra_hosts`, `depends_on` and
//!   a service's `networks` may be a list in one file and a mapping in another: they are
//!   merged as mappings, by name;
//! - `logging` with another `driver` replaces the earlier `logging`;
//! - an empty value (`services:` alone) leaves an earlier mapping or sequence as it is;
//! - `!reset` removes the value (whatever it is written with), `!override` replaces it
//!   without merging.
//!
//! Each file is interpolated before the merge, as compose does. Every value keeps where
//! it was written: [`Origins`] maps each key path of the merged document to the file
//! and key path it came from, so a diagnostic points at the file that wrote the value.

use std::collections::HashMap;

use serde_yaml::{Mapping, Value};

use super::super::location::KeyPath;

/// Where each key path of a merged document was written: its file and its key path
/// there.
#[derive(Debug, Default)]
pub(crate) struct Origins(HashMap<KeyPath, (usize, KeyPath)>);

impl Origins {
    /// The file and key path of `path`, or of the nearest enclosing path known, with the
    /// rest of `path` below it.
    pub(crate) fn resolve(&self, path: &KeyPath) -> Option<(usize, KeyPath)> {
        let mut cur = Some(path.clone());
        while let Some(p) = cur {
            if let Some((file, at)) = self.0.get(&p) {
                return Some((*file, path.rebase(&p, at)));
            }
            cur = p.parent();
        }
        None
    }

    /// The merged key paths of the values written at any of `written` (file, key path).
    pub(crate) fn merged_paths(&self, written: &[(usize, KeyPath)]) -> Vec<KeyPath> {
        if written.is_empty() {
            return Vec::new();
        }
        let wanted: std::collections::HashSet<(usize, &KeyPath)> =
            written.iter().map(|(f, p)| (*f, p)).collect();
        self.0
            .iter()
            .filter(|(_, (f, p))| wanted.contains(&(*f, p)))
            .map(|(m, _)| m.clone())
            .collect()
    }
}

/// A value of one file with where it was written.
#[derive(Debug, Clone)]
struct Node {
    file: usize,
    path: KeyPath,
    /// Written `!override`: replaces the earlier value rather than merging with it.
    replace: bool,
    kind: Kind,
}

#[derive(Debug, Clone)]
enum Kind {
    Map(Vec<(Value, Node)>),
    Seq(Vec<Node>),
    Leaf(Value),
    /// Written `!reset`: removes the earlier value.
    Reset,
}

/// Merges the documents (file index, top-level value) in order into one, with where
/// each of its values was written.
pub(crate) fn merge(docs: Vec<(usize, Value)>) -> (Value, Origins) {
    let mut merged: Option<Node> = None;
    for (file, doc) in docs {
        let node = node(file, KeyPath::root(), doc);
        merged = Some(match merged {
            None => untagged(node),
            Some(base) => merge_node(base, node, "").unwrap_or_else(|| Node {
                file,
                path: KeyPath::root(),
                replace: false,
                kind: Kind::Map(Vec::new()),
            }),
        });
    }
    let mut origins = Origins::default();
    let value = match merged {
        Some(n) => value(n, KeyPath::root(), &mut origins),
        None => Value::Mapping(Mapping::new()),
    };
    (value, origins)
}

/// True when `v` holds a `!reset` or `!override` tag at any depth.
pub(crate) fn has_tags(v: &Value) -> bool {
    let mut stack = vec![v];
    while let Some(v) = stack.pop() {
        match v {
            Value::Tagged(t) if t.tag == "reset" || t.tag == "override" => return true,
            Value::Tagged(t) => stack.push(&t.value),
            Value::Mapping(m) => stack.extend(m.values()),
            Value::Sequence(items) => stack.extend(items),
            _ => {}
        }
    }
    false
}

/// The text a key contributes to a key path, as the location index writes it.
fn key_text(k: &Value) -> Option<String> {
    match k {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn node(file: usize, path: KeyPath, v: Value) -> Node {
    let (replace, v) = match v {
        Value::Tagged(t) if t.tag == "reset" => {
            return Node {
                file,
                path,
                replace: true,
                kind: Kind::Reset,
            }
        }
        Value::Tagged(t) if t.tag == "override" => (true, t.value),
        v => (false, v),
    };
    let kind = match v {
        Value::Mapping(m) => Kind::Map(
            m.into_iter()
                .map(|(k, v)| {
                    let p = match key_text(&k) {
                        Some(t) => path.key(&t),
                        None => path.clone(),
                    };
                    (k, node(file, p, v))
                })
                .collect(),
        ),
        Value::Sequence(items) => Kind::Seq(
            items
                .into_iter()
                .enumerate()
                .map(|(i, v)| node(file, path.index(i), v))
                .collect(),
        ),
        v => Kind::Leaf(v),
    };
    Node {
        file,
        path,
        replace,
        kind,
    }
}

/// The plain value of a node, recording where each of its values was written.
fn value(n: Node, path: KeyPath, origins: &mut Origins) -> Value {
    origins.0.insert(path.clone(), (n.file, n.path));
    match n.kind {
        Kind::Leaf(v) => v,
        Kind::Reset => Value::Null,
        Kind::Seq(items) => Value::Sequence(
            items
                .into_iter()
                .enumerate()
                .map(|(i, item)| value(item, path.index(i), origins))
                .collect(),
        ),
        Kind::Map(entries) => {
            let mut m = Mapping::new();
            for (k, v) in entries {
                if matches!(v.kind, Kind::Reset) {
                    continue;
                }
                let p = match key_text(&k) {
                    Some(t) => path.key(&t),
                    None => path.clone(),
                };
                let v = value(v, p, origins);
                m.insert(k, v);
            }
            Value::Mapping(m)
        }
    }
}

/// The pattern of a key below `parent`: names of services, of top-level objects and of
/// a service's networks and ulimits are `*`.
fn child_pattern(parent: &str, key: &str) -> String {
    let wild = matches!(
        parent,
        "services" | "volumes" | "networks" | "secrets" | "configs" | "services.*.ulimits"
    ) || parent == "services.*.networks";
    match (parent.is_empty(), wild) {
        (true, _) => key.to_string(),
        (false, true) => format!("{parent}.*"),
        (false, false) => format!("{parent}.{key}"),
    }
}

/// How the items of a sequence are told apart.
#[derive(Clone, Copy)]
enum Unique {
    /// Every item is kept.
    None,
    /// By the whole value.
    Value,
    /// By the name before `=`.
    KeyValue,
    Port,
    /// By target; the default target of a short form is below this directory.
    Target(&'static str),
    Device,
    EnvFile,
}

fn unique_rule(pattern: &str) -> Unique {
    let field = pattern.strip_prefix("services.*.").unwrap_or("");
    match field {
        "ports" => Unique::Port,
        "volumes" => Unique::Target(""),
        "secrets" => Unique::Target("/run/secrets"),
        "configs" => Unique::Target(""),
        "devices" => Unique::Device,
        "env_file" => Unique::EnvFile,
        "expose" | "dns" | "dns_opt" | "dns_search" | "cap_add" | "cap_drop" | "tmpfs"
        | "profiles" | "links" | "extra_hosts" | "networks.*.aliases" => Unique::Value,
        "environment" | "labels" | "annotations" | "sysctls" | "build.args" | "build.labels"
        | "deploy.labels" => Unique::KeyValue,
        _ => Unique::None,
    }
}

/// How a list item becomes a mapping entry.
type Entry = fn(&str) -> (String, Value);

/// Fields that may be a list in one file and a mapping in another, merged as mappings;
/// with how a list item becomes an entry.
fn list_or_map(pattern: &str) -> Option<Entry> {
    let field = pattern.strip_prefix("services.*.")?;
    match field {
        "environment" | "labels" | "annotations" | "sysctls" | "build.args" | "build.labels"
        | "deploy.labels" => Some(|s| match s.split_once('=') {
            Some((k, v)) => (k.to_string(), Value::String(v.to_string())),
            None => (s.to_string(), Value::Null),
        }),
        "extra_hosts" => Some(|s| match s.split_once('=').or_else(|| s.split_once(':')) {
            Some((k, v)) => (k.to_string(), Value::String(v.to_string())),
            None => (s.to_string(), Value::Null),
        }),
        "networks" => Some(|s| (s.to_string(), Value::Null)),
        "depends_on" => Some(|s| {
            let mut m = Mapping::new();
            m.insert(
                Value::String("condition".into()),
                Value::String("service_started".into()),
            );
            (s.to_string(), Value::Mapping(m))
        }),
        _ => None,
    }
}

/// `over` merged onto `base`; `None` when `over` resets the value.
fn merge_node(base: Node, over: Node, pattern: &str) -> Option<Node> {
    if matches!(over.kind, Kind::Reset) {
        return None;
    }
    if over.replace {
        return Some(Node {
            replace: false,
            ..over
        });
    }
    // An empty key (`services:` with nothing under it) adds nothing.
    if matches!(over.kind, Kind::Leaf(Value::Null))
        && matches!(base.kind, Kind::Map(_) | Kind::Seq(_))
    {
        return Some(base);
    }
    let field = pattern.strip_prefix("services.*.").unwrap_or("");
    if matches!(field, "command" | "entrypoint" | "healthcheck.test") {
        return Some(over);
    }
    if field == "logging" && driver(&base) != driver(&over) && driver(&over).is_some() {
        return Some(over);
    }
    let (base, over) = match (&base.kind, &over.kind) {
        (Kind::Map(_), Kind::Seq(_)) | (Kind::Seq(_), Kind::Map(_)) => match list_or_map(pattern) {
            Some(entry) => (as_map(base, entry), as_map(over, entry)),
            None => return Some(over),
        },
        _ => (base, over),
    };
    match (base.kind, over.kind) {
        (Kind::Map(mut entries), Kind::Map(more)) => {
            let mut at: HashMap<Value, usize> = entries
                .iter()
                .enumerate()
                .map(|(i, (k, _))| (k.clone(), i))
                .collect();
            let mut removed = Vec::new();
            for (k, v) in more {
                match at.get(&k) {
                    Some(&i) => {
                        let p = key_text(&k)
                            .map(|t| child_pattern(pattern, &t))
                            .unwrap_or_default();
                        let (key, old) =
                            std::mem::replace(&mut entries[i], (Value::Null, placeholder()));
                        match merge_node(old, v, &p) {
                            Some(n) => entries[i] = (key, n),
                            None => removed.push(i),
                        }
                    }
                    None => {
                        // A key only the later file writes, reset there: nothing to remove.
                        if matches!(v.kind, Kind::Reset) {
                            continue;
                        }
                        at.insert(k.clone(), entries.len());
                        entries.push((k, untagged(v)));
                    }
                }
            }
            removed.sort_unstable();
            for i in removed.into_iter().rev() {
                entries.remove(i);
            }
            Some(Node {
                kind: Kind::Map(entries),
                ..base
            })
        }
        (Kind::Seq(mut items), Kind::Seq(more)) => {
            let rule = unique_rule(pattern);
            // Each key's item, so that a merge costs one look-up per item.
            let mut at: HashMap<String, usize> = HashMap::new();
            if !matches!(rule, Unique::None) {
                for (i, item) in items.iter().enumerate() {
                    if let Some(k) = item_key(item, rule) {
                        at.insert(k, i);
                    }
                }
            }
            for item in more {
                let item = untagged(item);
                if matches!(item.kind, Kind::Reset) {
                    continue;
                }
                let key = item_key(&item, rule);
                match key.as_ref().and_then(|k| at.get(k)) {
                    Some(&i) => {
                        let old = std::mem::replace(&mut items[i], placeholder());
                        items[i] = match (&old.kind, &item.kind) {
                            (Kind::Map(_), Kind::Map(_)) => {
                                merge_node(old, item, &format!("{pattern}[]"))
                                    .unwrap_or_else(placeholder)
                            }
                            _ => item,
                        };
                    }
                    None => {
                        if let Some(k) = key {
                            at.insert(k, items.len());
                        }
                        items.push(item);
                    }
                }
            }
            Some(Node {
                kind: Kind::Seq(items),
                ..base
            })
        }
        (_, kind) => Some(Node {
            file: over.file,
            path: over.path,
            replace: false,
            kind,
        }),
    }
}

/// What stands in a slot while its value is merged.
fn placeholder() -> Node {
    Node {
        file: 0,
        path: KeyPath::root(),
        replace: false,
        kind: Kind::Leaf(Value::Null),
    }
}

/// A node of a later file with no earlier value: its own tags say nothing more.
fn untagged(mut n: Node) -> Node {
    n.replace = false;
    n.kind = match n.kind {
        Kind::Map(entries) => Kind::Map(
            entries
                .into_iter()
                .filter(|(_, v)| !matches!(v.kind, Kind::Reset))
                .map(|(k, v)| (k, untagged(v)))
                .collect(),
        ),
        Kind::Seq(items) => Kind::Seq(
            items
                .into_iter()
                .filter(|v| !matches!(v.kind, Kind::Reset))
                .map(untagged)
                .collect(),
        ),
        k => k,
    };
    n
}

fn driver(n: &Node) -> Option<String> {
    let Kind::Map(entries) = &n.kind else {
        return None;
    };
    entries
        .iter()
        .find_map(|(k, v)| match (&v.kind, k.as_str()) {
            (Kind::Leaf(Value::String(d)), Some("driver")) => Some(d.clone()),
            _ => None,
        })
}

/// A list node as a mapping node, each item an entry made by `entry`; a mapping as is.
fn as_map(n: Node, entry: Entry) -> Node {
    let Kind::Seq(items) = n.kind else {
        return n;
    };
    let entries = items
        .into_iter()
        .filter_map(|item| {
            let text = match &item.kind {
                Kind::Leaf(Value::String(s)) => s.clone(),
                Kind::Leaf(Value::Number(x)) => x.to_string(),
                _ => return None,
            };
            let (k, v) = entry(&text);
            Some((
                Value::String(k),
                Node {
                    kind: node(item.file, item.path.clone(), v).kind,
                    ..item
                },
            ))
        })
        .collect();
    Node {
        kind: Kind::Map(entries),
        ..n
    }
}

/// The text of a scalar, or of a mapping's scalar field.
fn scalar(n: &Node) -> Option<String> {
    match &n.kind {
        Kind::Leaf(Value::String(s)) => Some(s.clone()),
        Kind::Leaf(Value::Number(x)) => Some(x.to_string()),
        Kind::Leaf(Value::Bool(b)) => Some(b.to_string()),
        _ => None,
    }
}

fn field(n: &Node, name: &str) -> Option<String> {
    let Kind::Map(entries) = &n.kind else {
        return None;
    };
    entries
        .iter()
        .find(|(k, _)| k.as_str() == Some(name))
        .and_then(|(_, v)| scalar(v))
}

/// The key that makes an item unique under `rule`, `None` when every such item is kept.
fn item_key(n: &Node, rule: Unique) -> Option<String> {
    match rule {
        Unique::None => None,
        Unique::Value => scalar(n),
        Unique::KeyValue => scalar(n).map(|s| s.split('=').next().unwrap_or("").to_string()),
        Unique::EnvFile => scalar(n).or_else(|| field(n, "path")),
        Unique::Port => match scalar(n) {
            Some(s) => Some(port_key(&s)),
            None => Some(format!(
                "{}|{}|{}|{}",
                field(n, "host_ip").unwrap_or_default(),
                field(n, "published").unwrap_or_default(),
                field(n, "target").unwrap_or_default(),
                field(n, "protocol").unwrap_or_else(|| "tcp".into()),
            )),
        },
        Unique::Target(dir) => match scalar(n) {
            Some(s) if dir.is_empty() && matches!(n.kind, Kind::Leaf(_)) => {
                // `volumes`: `source:target[:mode]` or `target`; `configs`: a name.
                let parts: Vec<&str> = s.split(':').collect();
                Some(match parts.as_slice() {
                    [one] if s.starts_with('/') => one.to_string(),
                    [one] => format!("/{one}"),
                    [_, target, ..] => target.to_string(),
                    [] => s,
                })
            }
            Some(s) => Some(format!("{dir}/{s}")),
            None => field(n, "target").or_else(|| {
                let source = field(n, "source")?;
                Some(if dir.is_empty() && source.starts_with('/') {
                    source
                } else {
                    format!("{dir}/{source}")
                })
            }),
        },
        Unique::Device => match scalar(n) {
            Some(s) => {
                let parts: Vec<&str> = s.split(':').collect();
                Some(parts.get(1).unwrap_or(&parts[0]).to_string())
            }
            None => field(n, "target"),
        },
    }
}

/// `ip|published|target|protocol` of a short-syntax port.
fn port_key(s: &str) -> String {
    let (body, protocol) = s.rsplit_once('/').unwrap_or((s, "tcp"));
    let mut parts = body.rsplitn(3, ':');
    let target = parts.next().unwrap_or_default();
    let published = parts.next().unwrap_or_default();
    let ip = parts.next().unwrap_or_default();
    format!("{ip}|{published}|{target}|{protocol}")
}
