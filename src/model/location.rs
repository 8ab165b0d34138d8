//! Where each key and value of a YAML document sits, so that errors found after
//! deserialization can still name `file:line:col`.

use std::collections::HashMap;

use super::limits::too_deep;
pub use super::limits::{Budget, Limits};

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
            Self(key.to_string())
        } else {
            Self(format!("{}.{key}", self.0))
        }
    }

    /// The path of a sequence item below this one.
    pub fn index(&self, i: usize) -> Self {
        Self(format!("{}[{i}]", self.0))
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
    keys: HashMap<KeyPath, (usize, usize)>,
    values: HashMap<KeyPath, (usize, usize)>,
    /// Keys written twice in one mapping: the path, the second position, the first line.
    pub duplicates: Vec<(KeyPath, (usize, usize), usize)>,
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
        let mut recv = Receiver::default();
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
            recv.on_event(ev, mark);
            if recv.path_bytes > budget.limits.path_bytes {
                return Err(at(format!(
                    "the key paths of this document add up to more than {} MiB; shorten its keys or nest less",
                    budget.limits.path_bytes >> 20
                )));
            }
        }
        Ok(recv.index)
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
            let hit = if key_first {
                self.keys.get(&cur).or_else(|| self.values.get(&cur))
            } else {
                self.values.get(&cur).or_else(|| self.keys.get(&cur))
            };
            if let Some(pos) = hit {
                return *pos;
            }
            p = cur.parent();
        }
        (1, 1)
    }
}

enum Frame {
    Map {
        path: KeyPath,
        pending_key: Option<KeyPath>,
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
    /// node is a mapping key (recorded by the caller).
    fn next_value_path(&mut self, pos: (usize, usize)) -> Option<KeyPath> {
        let path = match self.stack.last_mut() {
            None => KeyPath::root(),
            Some(Frame::Seq { path, next }) => {
                let p = path.index(*next);
                *next += 1;
                p
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
        self.index.values.entry(path.clone()).or_insert(pos);
        Some(path)
    }
}

impl Receiver {
    fn on_event(&mut self, ev: Event, mark: Marker) {
        let pos = (mark.line(), mark.col() + 1);
        // A scalar in key position names the next value.
        if let Some(Frame::Map {
            path,
            pending_key,
            complex_key,
        }) = self.stack.last_mut()
        {
            if pending_key.is_none() && *complex_key == 0 {
                match &ev {
                    Event::Scalar(s, ..) => {
                        let key = path.key(s);
                        self.path_bytes += key.as_str().len();
                        match self.index.keys.get(&key) {
                            Some(first) => self.index.duplicates.push((key.clone(), pos, first.0)),
                            None => {
                                self.index.keys.insert(key.clone(), pos);
                            }
                        }
                        *pending_key = Some(key);
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
                match &ev {
                    Event::MappingStart(..) | Event::SequenceStart(..) => *complex_key += 1,
                    Event::MappingEnd | Event::SequenceEnd => {
                        *complex_key -= 1;
                        if *complex_key == 0 {
                            // The value of a complex key is not indexed.
                            *pending_key = Some(path.key("?"));
                        }
                    }
                    _ => {}
                }
                return;
            }
        }
        match ev {
            Event::Scalar(..) | Event::Alias(_) => {
                self.next_value_path(pos);
            }
            Event::MappingStart(..) => {
                let path = self.next_value_path(pos).unwrap_or_default();
                self.stack.push(Frame::Map {
                    path,
                    pending_key: None,
                    complex_key: 0,
                });
            }
            Event::SequenceStart(..) => {
                let path = self.next_value_path(pos).unwrap_or_default();
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
}
