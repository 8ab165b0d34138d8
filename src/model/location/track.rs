//! What a read needs of a document's key paths while it runs, without writing them
//! out: the bytes they add up to (which the limits bound) and whether a key may be
//! written twice. The positions themselves are read when first asked for.

use std::hash::BuildHasher;

use foldhash::fast::FixedState;
use foldhash::HashSet;
use yaml_rust2::parser::Event;

/// A collection open at this point of the document, with the length of its path.
enum Frame {
    Map {
        len: usize,
        /// This mapping's number in the document.
        id: u64,
        /// The length of the next value's path, once its key is read.
        pending: Option<usize>,
        /// Depth of a complex (non-scalar) key being skipped.
        complex: usize,
    },
    Seq {
        len: usize,
        next: usize,
    },
}

/// Follows the events as the location index does, counting its path bytes exactly.
///
/// A path names one node when no key is empty or holds `.` or `[` and no key is a
/// collection or an alias: then a key path is written twice only by a key written twice
/// in one mapping, which is looked for by hash. Anything else sets `suspect`, and the
/// positions are read at once to find the duplicates for sure.
#[derive(Default)]
pub(super) struct Tracker {
    stack: Vec<Frame>,
    /// Bytes of every key path so far.
    pub path_bytes: usize,
    /// Hashes of (mapping, key) seen.
    keys: HashSet<u64>,
    maps: u64,
    /// A key may be written twice.
    pub suspect: bool,
}

/// The length of the path of key `key` below a path of `parent` bytes.
fn key_len(parent: usize, key: usize) -> usize {
    if parent == 0 {
        key
    } else {
        parent + 1 + key
    }
}

/// The length of `[i]`.
fn index_len(i: usize) -> usize {
    let mut digits = 1;
    let mut n = i / 10;
    while n > 0 {
        digits += 1;
        n /= 10;
    }
    digits + 2
}

impl Tracker {
    /// The length of the path of the node that starts now; `None` when the node is a
    /// mapping key or is not indexed.
    fn next_value(&mut self) -> Option<usize> {
        let len = match self.stack.last_mut() {
            None => 0,
            Some(Frame::Seq { len, next }) => {
                let l = *len + index_len(*next);
                *next += 1;
                l
            }
            Some(Frame::Map {
                pending, complex, ..
            }) => {
                if *complex > 0 {
                    return None;
                }
                pending.take()?
            }
        };
        self.path_bytes += len;
        Some(len)
    }

    pub(super) fn on_event(&mut self, ev: &Event) {
        if let Some(Frame::Map {
            len,
            id,
            pending,
            complex,
        }) = self.stack.last_mut()
        {
            if pending.is_none() && *complex == 0 {
                match ev {
                    Event::Scalar(s, ..) => {
                        let l = key_len(*len, s.len());
                        self.path_bytes += l;
                        *pending = Some(l);
                        if s.is_empty() || s.contains(['.', '[']) {
                            self.suspect = true;
                        } else {
                            let h = FixedState::default().hash_one((*id, s.as_str()));
                            if !self.keys.insert(h) {
                                self.suspect = true;
                            }
                        }
                        return;
                    }
                    Event::MappingStart(..) | Event::SequenceStart(..) => {
                        *complex = 1;
                        self.suspect = true;
                        return;
                    }
                    Event::MappingEnd => {
                        self.stack.pop();
                        return;
                    }
                    Event::Alias(_) => self.suspect = true,
                    _ => {}
                }
            } else if *complex > 0 {
                match ev {
                    Event::MappingStart(..) | Event::SequenceStart(..) => *complex += 1,
                    Event::MappingEnd | Event::SequenceEnd => {
                        *complex -= 1;
                        if *complex == 0 {
                            *pending = Some(key_len(*len, 1));
                        }
                    }
                    _ => {}
                }
                return;
            }
        }
        match ev {
            Event::Scalar(..) | Event::Alias(_) => {
                self.next_value();
            }
            Event::MappingStart(..) => {
                let len = self.next_value().unwrap_or_default();
                self.maps += 1;
                self.stack.push(Frame::Map {
                    len,
                    id: self.maps,
                    pending: None,
                    complex: 0,
                });
            }
            Event::SequenceStart(..) => {
                let len = self.next_value().unwrap_or_default();
                self.stack.push(Frame::Seq { len, next: 0 });
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
    use super::super::{Budget, LocationIndex};

    /// The tracker's count of path bytes is the index's, and a duplicate it does not
    /// suspect is none.
    #[test]
    fn the_tracker_counts_what_the_index_holds() {
        for doc in [
            "a: 1\nb: [1, {c: 2, d: [3, 4]}]\n",
            "a: {b: 1}\n\"a.b\": 2\n",
            "a: [x]\n\"a[0]\": 1\n",
            "\"\": 1\n\"\": 2\n",
            "? [a]\n: 1\nb: 2\n",
            "a: &x 1\n*x : 2\nb: 3\n",
            "a: 1\na: 2\n",
            "s:\n  - {k: 1}\n  - {k: 1}\n",
        ] {
            let mut budget = Budget::default();
            let read = LocationIndex::read_within(doc, &mut budget, false).unwrap();
            let mut tracker = super::Tracker::default();
            let mut parser = yaml_rust2::parser::Parser::new_from_str(doc);
            loop {
                let (ev, _) = parser.next_token().unwrap();
                if ev == yaml_rust2::Event::StreamEnd {
                    break;
                }
                tracker.on_event(&ev);
            }
            let full = super::super::Receiver::read(doc);
            assert_eq!(tracker.path_bytes, full.path_bytes, "{doc}");
            assert_eq!(
                read.index.duplicates.len(),
                full.index.duplicates.len(),
                "{doc}"
            );
            if !tracker.suspect {
                assert!(full.index.duplicates.is_empty(), "{doc}");
            }
        }
    }
}
