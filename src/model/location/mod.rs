//! Where each key and value of a YAML document sits, so that errors found after
//! deserialization can still name `file:line:col`.

use foldhash::HashMap;

mod value;

use super::limits::too_deep;
pub use super::limits::{Budget, Limits};
use value::Builder;

use serde_yaml::Value;
use yaml_rust2::parser::{Event, Parser};
use yaml_rust2::scanner::Marker;

/// A key path inside one document, rendered as `services.api.ports[1]`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct KeyPath(String);

impl KeyPath {
    /// The document root.
    pub fn root() -> Self {
        Self::default()
    }

    /// The path of a mapping key below this one.
    pub fn key(&self, key: &str) -> Self {
        if self.0.is_empty() {
            return Self(key.to_string());
        }
        let mut path = String::with_capacity(self.0.len() + 1 + key.len());
        path.push_str(&self.0);
        path.push('.');
        path.push_str(key);
        Self(path)
    }

    /// The path of a sequence item below this one.
    pub fn index(&self, i: usize) -> Self {
        use std::fmt::Write;
        let mut path = String::with_capacity(self.0.len() + 6);
        path.push_str(&self.0);
        let _ = write!(path, "[{i}]");
        Self(path)
    }

    /// The path one level up, or `None` at the root.
    pub fn parent(&self) -> Option<Self> {
        if self.0.is_empty() {
            return None;
        }
        let cut = self.0.rfind(['.', '[']).unwrap_or(0);
        Some(Self(self.0[..cut].to_string()))
    }

    /// This path with its prefix `from` replaced by `to`: where the same value sits in
    /// another document. `from` must be this path or an enclosing one.
    pub fn rebase(&self, from: &KeyPath, to: &KeyPath) -> KeyPath {
        let rest = self.0.strip_prefix(from.0.as_str()).unwrap_or_default();
        match (to.0.is_empty(), rest.strip_prefix('.')) {
            (true, Some(r)) => Self(r.to_string()),
            (false, None) if from.0.is_empty() && !rest.is_empty() && !rest.starts_with('[') => {
                Self(format!("{}.{rest}", to.0))
            }
            _ => Self(format!("{}{rest}", to.0)),
        }
    }

    /// The rendered path.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for KeyPath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// 1-based (line, column) of the key and of the value at each path of a document.
#[derive(Debug, Default)]
pub struct LocationIndex {
    /// Each path once: where its key is written and where its value starts.
    at: HashMap<KeyPath, Spot>,
    /// Keys written twice in one mapping: the path, the second position, the first line.
    pub duplicates: Vec<(KeyPath, (usize, usize), usize)>,
}

/// Where the key and the value of one path are written; `(0, 0)` when not (yet) seen.
#[derive(Debug, Clone, Copy, Default)]
struct Spot {
    key: (usize, usize),
    value: (usize, usize),
}

const UNSEEN: (usize, usize) = (0, 0);

/// A document read once: its value (merge keys not yet applied) and where each of its
/// nodes is written.
#[derive(Debug)]
pub struct Read {
    /// The positions.
    pub index: LocationIndex,
    /// The value, as `serde_yaml` reads it; `None` when the document uses something the
    /// one-pass reader leaves to `serde_yaml` (tags, keys that are collections, keys equal
    /// as values but written differently, integers beyond 64 bits, aliases repeated
    /// beyond `serde_yaml`'s own bound), which then reads the text again.
    pub value: Option<Value>,
    /// True when `value` came with every `<<` merge key resolved as it was built (see
    /// [`LocationIndex::read_merging`]); false when merges are left to the caller.
    pub merged: bool,
}

/// The position of a YAML syntax error.
#[derive(Debug)]
pub struct SyntaxError {
    /// 1-based line.
    pub line: usize,
    /// 1-based column.
    pub col: usize,
    /// The scanner's description.
    pub message: String,
}

impl LocationIndex {
    /// Indexes a document within the default [`Limits`]; fails with a position on a
    /// syntax error or on the first limit the document exceeds.
    pub fn build(text: &str) -> Result<Self, SyntaxError> {
        Self::build_within(text, &mut Budget::default())
    }

    /// Indexes a document, drawing its nodes from `budget` (shared by every file of one
    /// load). The parser is driven one event at a time, never recursively, and stops at
    /// the first limit exceeded, so no input costs more than the limits allow.
    pub fn build_within(text: &str, budget: &mut Budget) -> Result<Self, SyntaxError> {
        Self::read_within(text, budget, false).map(|read| read.index)
    }

    /// As [`LocationIndex::build_within`], building the document's value in the same pass
    /// when `values` is set.
    pub fn read_within(text: &str, budget: &mut Budget, values: bool) -> Result<Read, SyntaxError> {
        Self::read(text, budget, values, false)
    }

    /// As [`LocationIndex::read_within`] building the value, with every `<<` merge key
    /// resolved as its mapping ends, at any depth, including merged mappings that merge
    /// others themselves: an anchored mapping is complete before any alias copies it.
    /// Keys written in a mapping win over merged ones, and in `<<: [*a, *b]` the earlier
    /// mapping wins. A `<<` that names no mapping (nor a list of mappings) is left where
    /// it is and [`Read::merged`] is false, for the caller's own merge pass to report.
    pub fn read_merging(text: &str, budget: &mut Budget) -> Result<Read, SyntaxError> {
        Self::read(text, budget, true, true)
    }

    fn read(
        text: &str,
        budget: &mut Budget,
        values: bool,
        merge: bool,
    ) -> Result<Read, SyntaxError> {
        let mut recv = Receiver::default();
        // About one node per line as compose files are written: sized once, not grown
        // through a dozen rehashes (a line holds at least one byte, so this is bounded by
        // the file's own size).
        recv.index
            .at
            .reserve(text.bytes().filter(|b| *b == b'\n').count());
        let mut builder = values.then(|| Builder::new(merge));
        let mut parser = Parser::new_from_str(text);
        let depth = budget.limits.depth;
        let mut documents = 0;
        loop {
            let (ev, mark) = parser.next_token().map_err(|e| SyntaxError {
                line: e.marker().line(),
                col: e.marker().col() + 1,
                message: match e.info() {
                    // The scanner's own cap on `[`/`{` levels (255), met while it looks
                    // ahead of the events counted here.
                    "recursion limit exceeded" => too_deep(depth),
                    info => format!("invalid YAML: {info}"),
                },
            })?;
            if ev == Event::StreamEnd {
                break;
            }
            let at = |message: String| SyntaxError {
                line: mark.line(),
                col: mark.col() + 1,
                message,
            };
            if ev == Event::DocumentStart {
                documents += 1;
                if documents > 1 {
                    return Err(at("the file holds a second YAML document (after `---`); berth reads one per file, so put it in a file of its own".to_string()));
                }
            }
            budget.check(&ev).map_err(at)?;
            recv.on_event(&ev, mark);
            if recv.path_bytes > budget.limits.path_bytes {
                return Err(at(format!(
                    "the key paths of this document add up to more than {} MiB; shorten its keys or nest less",
                    budget.limits.path_bytes >> 20
                )));
            }
            if let Some(b) = &mut builder {
                b.on_event(ev);
            }
        }
        let merged = builder.as_ref().is_some_and(|b| b.merge && !b.unmerged);
        let value = builder.and_then(Builder::finish);
        Ok(Read {
            index: recv.index,
            merged: merged && value.is_some(),
            value,
        })
    }

    /// Where the key at `path` is written, or the nearest enclosing one.
    pub fn key(&self, path: &KeyPath) -> (usize, usize) {
        self.find(path, true)
    }

    /// Where the value at `path` is written, or the nearest enclosing one.
    pub fn value(&self, path: &KeyPath) -> (usize, usize) {
        self.find(path, false)
    }

    fn find(&self, path: &KeyPath, key_first: bool) -> (usize, usize) {
        let mut p = Some(path.clone());
        while let Some(cur) = p {
            if cur.as_str().is_empty() {
                break;
            }
            if let Some(spot) = self.at.get(&cur) {
                let (first, second) = if key_first {
                    (spot.key, spot.value)
                } else {
                    (spot.value, spot.key)
                };
                if first != UNSEEN {
                    return first;
                }
                if second != UNSEEN {
                    return second;
                }
            }
            p = cur.parent();
        }
        (1, 1)
    }
}

enum Frame {
    Map {
        path: KeyPath,
        /// The path of the next value, and where its key is written when that key is
        /// not indexed yet (the entry is made with the value, the path moved into it).
        pending_key: Option<(KeyPath, Option<(usize, usize)>)>,
        /// Depth of a complex (non-scalar) key being skipped.
        complex_key: usize,
    },
    Seq {
        path: KeyPath,
        next: usize,
    },
}

#[derive(Default)]
struct Receiver {
    index: LocationIndex,
    stack: Vec<Frame>,
    /// Bytes of every key path recorded so far.
    path_bytes: usize,
}

impl Receiver {
    /// The path of the node that starts now, recording its position; `None` when the
    /// node is a mapping key (recorded by the caller) or, once recorded, a `scalar`.
    fn next_value_path(&mut self, pos: (usize, usize), scalar: bool) -> Option<KeyPath> {
        let (path, key) = match self.stack.last_mut() {
            None => (KeyPath::root(), None),
            Some(Frame::Seq { path, next }) => {
                let p = path.index(*next);
                *next += 1;
                (p, None)
            }
            Some(Frame::Map {
                pending_key,
                complex_key,
                ..
            }) => {
                if *complex_key > 0 {
                    return None;
                }
                pending_key.take()?
            }
        };
        self.path_bytes += path.as_str().len();
        if let Some(spot) = self.index.at.get_mut(&path) {
            if spot.value == UNSEEN {
                spot.value = pos;
            }
            return Some(path);
        }
        let spot = Spot {
            key: key.unwrap_or(UNSEEN),
            value: pos,
        };
        // A scalar's path is needed no more: moved into the index, not copied.
        if scalar {
            self.index.at.insert(path, spot);
            return None;
        }
        self.index.at.insert(path.clone(), spot);
        Some(path)
    }
}

impl Receiver {
    fn on_event(&mut self, ev: &Event, mark: Marker) {
        let pos = (mark.line(), mark.col() + 1);
        // A scalar in key position names the next value.
        if let Some(Frame::Map {
            path,
            pending_key,
            complex_key,
        }) = self.stack.last_mut()
        {
            if pending_key.is_none() && *complex_key == 0 {
                match ev {
                    Event::Scalar(s, ..) => {
                        let key = path.key(s);
                        self.path_bytes += key.as_str().len();
                        let mut unindexed = None;
                        match self.index.at.get_mut(&key) {
                            None => unindexed = Some(pos),
                            Some(spot) if spot.key == UNSEEN => spot.key = pos,
                            Some(spot) => {
                                self.index.duplicates.push((key.clone(), pos, spot.key.0));
                            }
                        }
                        *pending_key = Some((key, unindexed));
                        return;
                    }
                    Event::MappingStart(..) | Event::SequenceStart(..) => {
                        *complex_key = 1;
                        return;
                    }
                    Event::MappingEnd => {
                        self.stack.pop();
                        return;
                    }
                    _ => {}
                }
            } else if *complex_key > 0 {
                match ev {
                    Event::MappingStart(..) | Event::SequenceStart(..) => *complex_key += 1,
                    Event::MappingEnd | Event::SequenceEnd => {
                        *complex_key -= 1;
                        if *complex_key == 0 {
                            // The value of a complex key is not indexed.
                            *pending_key = Some((path.key("?"), None));
                        }
                    }
                    _ => {}
                }
                return;
            }
        }
        match ev {
            Event::Scalar(..) | Event::Alias(_) => {
                self.next_value_path(pos, true);
            }
            Event::MappingStart(..) => {
                let path = self.next_value_path(pos, false).unwrap_or_default();
                self.stack.push(Frame::Map {
                    path,
                    pending_key: None,
                    complex_key: 0,
                });
            }
            Event::SequenceStart(..) => {
                let path = self.next_value_path(pos, false).unwrap_or_default();
                self.stack.push(Frame::Seq { path, next: 0 });
            }
            Event::MappingEnd | Event::SequenceEnd => {
                self.stack.pop();
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOC: &str = "\
project: shop
services:
  api:
    image: &app repo/api:sha-1
    ports: [\"80:80\", \"443:443\"]
    update:
      order: start-first
  worker:
    image: *app
";

    #[test]
    fn keys_and_values_are_located() {
        let idx = LocationIndex::build(DOC).unwrap();
        let api = KeyPath::root().key("services").key("api");
        assert_eq!(idx.key(&api.key("image")), (4, 5));
        assert_eq!(idx.value(&api.key("image")), (4, 17));
        assert_eq!(idx.value(&api.key("ports").index(1)), (5, 22));
        assert_eq!(idx.key(&api.key("update").key("order")), (7, 7));
        let worker = KeyPath::root().key("services").key("worker");
        assert_eq!(idx.value(&worker.key("image")), (9, 12));
    }

    #[test]
    fn unknown_paths_fall_back_to_the_nearest_parent() {
        let idx = LocationIndex::build(DOC).unwrap();
        let p = KeyPath::root()
            .key("services")
            .key("api")
            .key("nope")
            .key("deeper");
        assert_eq!(idx.key(&p), (3, 3));
    }

    #[test]
    fn a_second_document_is_refused_where_it_starts() {
        let err = LocationIndex::build("a: 1\n---\na: 2\n").unwrap_err();
        assert_eq!((err.line, err.col), (2, 1));
        assert!(
            err.message.contains("second YAML document"),
            "{}",
            err.message
        );
    }

    #[test]
    fn syntax_errors_carry_a_position() {
        let err = LocationIndex::build("a: [1, 2\nb: 3\n").unwrap_err();
        assert!(err.line >= 1);
        assert!(!err.message.is_empty());
    }

    /// The value read in the same pass as the positions, or `None` when it is left to
    /// serde_yaml; when read, it is serde_yaml's.
    fn one_pass(text: &str) -> Option<Value> {
        LocationIndex::read_within(text, &mut Budget::default(), true)
            .unwrap()
            .value
    }

    #[test]
    fn the_one_pass_value_is_serde_yamls() {
        let scalars = [
            "",
            "~",
            "null",
            "Null",
            "NULL",
            "nULL",
            "true",
            "True",
            "TRUE",
            "tRUE",
            "false",
            "no",
            "yes",
            "on",
            "0",
            "-0",
            "+1",
            "007",
            "-007",
            "+007",
            "0x1F",
            "0o17",
            "0b101",
            "-0x1F",
            "-0o17",
            "-0b11",
            "0x",
            "+-1",
            "1_000",
            "1e3",
            "1.5",
            ".5",
            "5.",
            "-.inf",
            ".inf",
            "+.inf",
            ".NaN",
            "nan",
            "inf",
            "infinity",
            "1e400",
            "18446744073709551615",
            "-9223372036854775808",
            "0.0",
            "1:2",
            "8000/tcp",
            "5s",
            "256m",
            "0.5",
            "s1",
            "${TAG:-x}",
            "a b",
            "2001:db8::1",
            "12:30:00",
            "1.2.3",
        ];
        for s in scalars {
            for written in [s.to_string(), format!("'{s}'"), format!("\"{s}\"")] {
                let doc = format!("k: {written}\nl: [{written}]\nm: {{{written}: {written}}}\n");
                // A few (`[1:2]`) are refused in flow style by one parser or the other.
                if let (Ok(want), Ok(_)) = (
                    serde_yaml::from_str::<Value>(&doc),
                    LocationIndex::build(&doc),
                ) {
                    assert_eq!(one_pass(&doc), Some(want), "{doc}");
                }
                let block = format!("k: {written}\n");
                let want: Value = serde_yaml::from_str(&block).unwrap();
                assert_eq!(one_pass(&block), Some(want), "{block}");
            }
        }
        let docs = [
            DOC,
            "",
            "# only a comment\n",
            "a:\n  - &x {b: 1, c: [1, 2]}\n  - *x\n  - <<: *x\n    d: |\n      text\n      more\n    e: >-\n      folded\n      text\n",
            "? a\n: 1\n",
            "a: &s str\nb: *s\n",
            "[1, 2]\n",
            "plain\n",
            "--- \na: 1\n...\n",
        ];
        for doc in docs {
            let want: Value = serde_yaml::from_str(doc).unwrap();
            assert_eq!(one_pass(doc), Some(want), "{doc}");
        }
        for dir in [
            "desired",
            "examples",
            "tests/compose",
            "tests/hostile/seeds",
        ] {
            let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(dir);
            let mut todo = vec![root];
            while let Some(d) = todo.pop() {
                for e in std::fs::read_dir(&d).unwrap() {
                    let p = e.unwrap().path();
                    if p.is_dir() {
                        todo.push(p);
                        continue;
                    }
                    if !p.extension().is_some_and(|x| x == "yaml" || x == "yml") {
                        continue;
                    }
                    let Ok(text) = std::fs::read_to_string(&p) else {
                        continue;
                    };
                    let Ok(read) = LocationIndex::read_within(&text, &mut Budget::default(), true)
                    else {
                        continue;
                    };
                    if let Some(v) = read.value {
                        let want: Value = serde_yaml::from_str(&text).unwrap();
                        assert_eq!(v, want, "{}", p.display());
                    }
                }
            }
        }
    }

    /// Merges resolved while the value is built give what serde_yaml's reading, its
    /// `apply_merge` and the compose merge pass give, for nested and listed merges.
    #[test]
    fn merges_resolved_in_the_one_pass_are_the_two_passes_merges() {
        for doc in [
            "a: &a {x: 1, y: 2}\nb: &b {<<: *a, y: 3, z: 4}\nc: {<<: *b, w: 5}\n",
            "a: &a {x: 1}\nb: &b {x: 2, y: 2}\nc: {<<: [*a, *b], q: [{<<: *a, k: 1}]}\n",
            "d: &d\n  deploy: {replicas: 2}\n  env: &e {A: 1}\ns:\n  t:\n    <<: *d\n    env: {<<: *e, B: 2}\n",
            "a: {<<: {x: 1, <<: {y: 2}}, x: 0}\n",
            "a: 1\n",
        ] {
            let read = LocationIndex::read_merging(doc, &mut Budget::default()).unwrap();
            assert!(read.merged, "{doc}");
            let mut want: Value = serde_yaml::from_str(doc).unwrap();
            want.apply_merge().unwrap();
            crate::model::compose::yaml::resolve_merges(&mut want).unwrap();
            assert_eq!(read.value, Some(want), "{doc}");
        }
        // A `<<` naming no mapping is left for the caller's merge pass to report.
        for doc in ["a: {<<: 1}\n", "a: &a {x: 1}\nb: {<<: [*a, 2]}\n"] {
            let read = LocationIndex::read_merging(doc, &mut Budget::default()).unwrap();
            assert!(!read.merged, "{doc}");
        }
    }

    #[test]
    fn what_the_one_pass_leaves_to_serde_yaml() {
        for doc in [
            "a: !!str 1\n",
            "a: !custom {b: 1}\n",
            "? [a]\n: 1\n",
            "0x1: a\n1: b\n",
            "a: 340282366920938463463374607431768211455\n",
        ] {
            assert_eq!(one_pass(doc), None, "{doc}");
        }
    }
}
