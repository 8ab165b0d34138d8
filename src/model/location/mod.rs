//! Where each key and value of a YAML document sits, so that errors found after
//! deserialization can still name `file:line:col`.

use std::sync::OnceLock;

use foldhash::HashMap;

mod events;
mod track;
mod value;

pub use super::limits::{Budget, Limits};
use events::Checker;
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
///
/// The positions are found when first asked for (most loads report nothing, and a
/// position is a path string per node): the read that checks the limits only tracks
/// the paths' lengths and whether a key may be written twice; the lookups take the
/// document's text and read it again once, the first time.
#[derive(Debug, Clone)]
pub struct LocationIndex {
    /// Each path once: where its key is written and where its value starts.
    at: OnceLock<Positions>,
    /// Keys written twice in one mapping: the path, the second position, the first line.
    pub duplicates: Vec<(KeyPath, (usize, usize), usize)>,
}

type Positions = HashMap<KeyPath, Spot>;

/// An index of no position (every lookup is `(1, 1)`), for a file not read.
impl Default for LocationIndex {
    fn default() -> Self {
        Self {
            at: OnceLock::from(Positions::default()),
            duplicates: Vec::new(),
        }
    }
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
        let index = Self::read_within(text, budget, false)?.index;
        index.positions(text);
        Ok(index)
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
        Self::read_piped(text, budget, values, merge, events::piped(text))
    }

    /// [`LocationIndex::read`], the parser on another thread when `piped`.
    fn read_piped(
        text: &str,
        budget: &mut Budget,
        values: bool,
        merge: bool,
        piped: bool,
    ) -> Result<Read, SyntaxError> {
        let mut checker = Checker::new(budget);
        let mut builder = values.then(|| Builder::new(merge));
        events::with_events(text, piped, &mut checker, |next| loop {
            match next() {
                None => return Ok(()),
                Some(Err(e)) => return Err(e),
                Some(Ok(ev)) => {
                    if let Some(b) = &mut builder {
                        b.on_event(ev);
                    }
                }
            }
        })?;
        let paths = checker.paths;
        let merged = builder.as_ref().is_some_and(|b| b.merge && !b.unmerged);
        let value = builder.and_then(Builder::finish);
        let mut index = LocationIndex {
            at: OnceLock::new(),
            duplicates: Vec::new(),
        };
        // A key that may be written twice: the positions, read now, say for sure.
        if paths.suspect {
            let recv = Receiver::read(text);
            index.duplicates = recv.index.duplicates;
            let _ = index.at.set(recv.index.at.into_inner().unwrap_or_default());
        }
        Ok(Read {
            index,
            merged: merged && value.is_some(),
            value,
        })
    }

    /// The positions of `text`, the document this index was read from; read the first
    /// time they are asked for.
    fn positions(&self, text: &str) -> &Positions {
        self.at.get_or_init(|| {
            Receiver::read(text)
                .index
                .at
                .into_inner()
                .unwrap_or_default()
        })
    }

    /// Where the key at `path` of `text` (the document this index was read from) is
    /// written, or the nearest enclosing one.
    pub fn key(&self, text: &str, path: &KeyPath) -> (usize, usize) {
        self.find(text, path, true)
    }

    /// Where the value at `path` of `text` (the document this index was read from)
    /// is written, or the nearest enclosing one.
    pub fn value(&self, text: &str, path: &KeyPath) -> (usize, usize) {
        self.find(text, path, false)
    }

    fn find(&self, text: &str, path: &KeyPath, key_first: bool) -> (usize, usize) {
        if path.as_str().is_empty() {
            return (1, 1);
        }
        let at = self.positions(text);
        let mut p = Some(path.clone());
        while let Some(cur) = p {
            if cur.as_str().is_empty() {
                break;
            }
            if let Some(spot) = at.get(&cur) {
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

/// Builds the positions of a document from its events.
struct Receiver {
    index: LocationIndex,
    stack: Vec<Frame>,
    /// Bytes of every key path recorded (as [`Tracker`] counts them).
    path_bytes: usize,
}

impl Receiver {
    /// The positions of `text`, which has been read within the limits once already: up
    /// to its first syntax error, should it have one.
    fn read(text: &str) -> Receiver {
        let mut recv = Receiver {
            index: LocationIndex {
                at: OnceLock::new(),
                duplicates: Vec::new(),
            },
            stack: Vec::new(),
            path_bytes: 0,
        };
        let mut at = Positions::default();
        // About one node per line as compose files are written: sized once, not grown
        // through a dozen rehashes (a line holds at least one byte, so this is bounded by
        // the file's own size).
        at.reserve(text.bytes().filter(|b| *b == b'\n').count());
        let _ = recv.index.at.set(at);
        let mut parser = Parser::new_from_str(text);
        while let Ok((ev, mark)) = parser.next_token() {
            if ev == Event::StreamEnd {
                break;
            }
            recv.on_event(&ev, mark);
        }
        recv
    }

    fn at(&mut self) -> &mut Positions {
        self.index
            .at
            .get_mut()
            .expect("set when the receiver is made")
    }
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
        if let Some(spot) = self.at().get_mut(&path) {
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
            self.at().insert(path, spot);
            return None;
        }
        self.at().insert(path.clone(), spot);
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
                        let at = self.index.at.get_mut().expect("set when made");
                        match at.get_mut(&key) {
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
mod tests;
