//! A document's [`Value`] built from the parser's events in the same pass that indexes
//! positions, with `<<` merge keys resolved as each mapping ends.

use foldhash::HashMap;
use serde_yaml::{Mapping, Number, Value};
use yaml_rust2::parser::Event;
use yaml_rust2::scanner::TScalarStyle;

/// A collection being built.
enum Open {
    Map {
        map: Mapping,
        key: Option<Value>,
        anchor: usize,
        /// Alias jumps counted when it started.
        jumps: usize,
    },
    Seq {
        items: Vec<Value>,
        anchor: usize,
        jumps: usize,
    },
}

/// Builds a document's [`Value`] from the parser's events as `serde_yaml` would, giving
/// up (`failed`) on what it leaves to `serde_yaml`.
#[derive(Default)]
pub(super) struct Builder {
    stack: Vec<Open>,
    root: Option<Value>,
    /// Anchored values, and the alias jumps replaying each costs `serde_yaml`.
    anchors: HashMap<usize, (Value, usize)>,
    events: usize,
    jumps: usize,
    failed: bool,
    /// Resolve `<<` merge keys as each mapping ends.
    pub(super) merge: bool,
    /// A `<<` was left unresolved (it names no mapping).
    pub(super) unmerged: bool,
}

impl Builder {
    /// A builder that resolves `<<` merge keys as each mapping ends when `merge` is set.
    pub(super) fn new(merge: bool) -> Self {
        Self {
            merge,
            ..Self::default()
        }
    }

    pub(super) fn on_event(&mut self, ev: Event) {
        if self.failed {
            return;
        }
        self.events += 1;
        match ev {
            Event::Scalar(text, style, anchor, tag) => {
                if tag.is_some() {
                    self.failed = true;
                    return;
                }
                let Some(value) = scalar(text, style) else {
                    self.failed = true;
                    return;
                };
                if anchor != 0 {
                    self.anchors.insert(anchor, (value.clone(), 0));
                }
                self.add(value);
            }
            Event::MappingStart(_, Some(_)) | Event::SequenceStart(_, Some(_)) => {
                self.failed = true;
            }
            Event::MappingStart(anchor, None) => self.stack.push(Open::Map {
                map: Mapping::new(),
                key: None,
                anchor,
                jumps: self.jumps,
            }),
            Event::SequenceStart(anchor, None) => self.stack.push(Open::Seq {
                items: Vec::new(),
                anchor,
                jumps: self.jumps,
            }),
            Event::MappingEnd | Event::SequenceEnd => {
                let (value, anchor, jumps) = match self.stack.pop() {
                    Some(Open::Map {
                        map,
                        key,
                        anchor,
                        jumps,
                    }) => {
                        if key.is_some() {
                            self.failed = true;
                            return;
                        }
                        let mut map = map;
                        if self.merge && !merge_into(&mut map) {
                            self.unmerged = true;
                        }
                        (Value::Mapping(map), anchor, jumps)
                    }
                    Some(Open::Seq {
                        items,
                        anchor,
                        jumps,
                    }) => (Value::Sequence(items), anchor, jumps),
                    None => {
                        self.failed = true;
                        return;
                    }
                };
                if anchor != 0 {
                    self.anchors
                        .insert(anchor, (value.clone(), self.jumps - jumps));
                }
                self.add(value);
            }
            Event::Alias(id) => {
                let Some((value, jumps)) = self.anchors.get(&id) else {
                    self.failed = true;
                    return;
                };
                self.jumps += 1 + jumps;
                let value = value.clone();
                self.add(value);
            }
            _ => {}
        }
    }

    fn add(&mut self, value: Value) {
        match self.stack.last_mut() {
            None => {
                if self.root.is_some() {
                    self.failed = true;
                }
                self.root = Some(value);
            }
            Some(Open::Seq { items, .. }) => items.push(value),
            Some(Open::Map { map, key, .. }) => match key.take() {
                None => {
                    if matches!(value, Value::Mapping(_) | Value::Sequence(_)) {
                        self.failed = true;
                    }
                    *key = Some(value);
                }
                Some(k) => {
                    if map.insert(k, value).is_some() {
                        self.failed = true;
                    }
                }
            },
        }
    }

    pub(super) fn finish(self) -> Option<Value> {
        // serde_yaml refuses a document whose aliases it replays more than 100 times
        // its events; leave such a document to it, with a margin.
        if self.failed || !self.stack.is_empty() || self.jumps > self.events * 50 {
            return None;
        }
        Some(self.root.unwrap_or(Value::Null))
    }
}

/// Resolves the `<<` key of `map`, whose values are complete (their own merges
/// resolved): removed as `serde_yaml` removes it, then each merged mapping's keys that
/// `map` lacks added in order. False, leaving `<<` as written, when it names something
/// other than a mapping or a list of mappings.
fn merge_into(map: &mut Mapping) -> bool {
    let ok = match map.get("<<") {
        None => return true,
        Some(Value::Mapping(_)) => true,
        Some(Value::Sequence(items)) => items.iter().all(Value::is_mapping),
        Some(_) => false,
    };
    if !ok {
        return false;
    }
    let sources = match map.remove("<<") {
        Some(Value::Mapping(m)) => vec![m],
        Some(Value::Sequence(items)) => items
            .into_iter()
            .filter_map(|v| match v {
                Value::Mapping(m) => Some(m),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    };
    for source in sources {
        for (k, v) in source {
            if !map.contains_key(&k) {
                map.insert(k, v);
            }
        }
    }
    true
}

/// A scalar as `serde_yaml` reads it without a tag: quoted and block scalars are
/// strings; a plain one is null, a boolean, an integer, a float or a string, by the
/// rules of serde_yaml's `visit_untagged_scalar`. `None` for an integer beyond 64 bits.
fn scalar(text: String, style: TScalarStyle) -> Option<Value> {
    if style != TScalarStyle::Plain {
        return Some(Value::String(text));
    }
    let first = text.bytes().next();
    // Most plain scalars start with a letter that begins no keyword: a string.
    if let Some(b) = first {
        if b.is_ascii_alphabetic() && !matches!(b, b'n' | b'N' | b't' | b'T' | b'f' | b'F') {
            return Some(Value::String(text));
        }
    }
    match text.as_str() {
        "" | "~" | "null" | "Null" | "NULL" => return Some(Value::Null),
        "true" | "True" | "TRUE" => return Some(Value::Bool(true)),
        "false" | "False" | "FALSE" => return Some(Value::Bool(false)),
        _ => {}
    }
    if let Some(n) = unsigned_int(&text, u64::from_str_radix) {
        return Some(Value::Number(Number::from(n)));
    }
    if let Some(n) = negative_int(&text, i64::from_str_radix) {
        return Some(Value::Number(Number::from(n)));
    }
    if unsigned_int(&text, u128::from_str_radix).is_some()
        || negative_int(&text, i128::from_str_radix).is_some()
    {
        return None;
    }
    if !digits_but_not_number(&text) {
        if let Some(f) = float(&text) {
            return Some(Value::Number(Number::from(f)));
        }
    }
    Some(Value::String(text))
}

type Radix<T> = fn(&str, u32) -> Result<T, std::num::ParseIntError>;

/// serde_yaml's `parse_unsigned_int`.
fn unsigned_int<T>(scalar: &str, from_str_radix: Radix<T>) -> Option<T> {
    let unpositive = scalar.strip_prefix('+').unwrap_or(scalar);
    for (prefix, radix) in [("0x", 16), ("0o", 8), ("0b", 2)] {
        if let Some(rest) = unpositive.strip_prefix(prefix) {
            if rest.starts_with(['+', '-']) {
                return None;
            }
            if let Ok(int) = from_str_radix(rest, radix) {
                return Some(int);
            }
        }
    }
    if unpositive.starts_with(['+', '-']) || digits_but_not_number(scalar) {
        return None;
    }
    from_str_radix(unpositive, 10).ok()
}

/// serde_yaml's `parse_negative_int`.
fn negative_int<T>(scalar: &str, from_str_radix: Radix<T>) -> Option<T> {
    for (prefix, radix) in [("-0x", 16), ("-0o", 8), ("-0b", 2)] {
        if let Some(rest) = scalar.strip_prefix(prefix) {
            if let Ok(int) = from_str_radix(&format!("-{rest}"), radix) {
                return Some(int);
            }
        }
    }
    if digits_but_not_number(scalar) {
        return None;
    }
    from_str_radix(scalar, 10).ok()
}

/// serde_yaml's `parse_f64`.
fn float(scalar: &str) -> Option<f64> {
    let unpositive = match scalar.strip_prefix('+') {
        Some(u) if u.starts_with(['+', '-']) => return None,
        Some(u) => u,
        None => scalar,
    };
    if let ".inf" | ".Inf" | ".INF" = unpositive {
        return Some(f64::INFINITY);
    }
    if let "-.inf" | "-.Inf" | "-.INF" = scalar {
        return Some(f64::NEG_INFINITY);
    }
    if let ".nan" | ".NaN" | ".NAN" = scalar {
        return Some(f64::NAN.copysign(1.0));
    }
    unpositive.parse::<f64>().ok().filter(|f| f.is_finite())
}

/// serde_yaml's `digits_but_not_number`: leading zeros then digits are a string.
fn digits_but_not_number(scalar: &str) -> bool {
    let scalar = scalar.strip_prefix(['-', '+']).unwrap_or(scalar);
    scalar.len() > 1 && scalar.starts_with('0') && scalar[1..].bytes().all(|b| b.is_ascii_digit())
}
