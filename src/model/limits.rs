//! What one load of the desired state may cost. Whoever can push to the repository writes
//! every byte berth parses, so each dimension of the input that drives time or memory has
//! a limit, checked event by event while the document is first read (before any tree of
//! values is built), and exceeding one is an ordinary diagnostic.

use std::collections::HashMap;

use yaml_rust2::parser::Event;

/// The largest desired-state file berth reads.
pub const MAX_YAML_BYTES: usize = 1 << 20;

/// The longest line of a desired-state file. The YAML scanner reads a flow collection on
/// one line (`{a: 1, b: 2, …}`) whole before it yields its first event, at about 55
/// bytes of memory per byte; real files keep lines short, and a long collection can be
/// written one entry a line.
pub const MAX_LINE_BYTES: usize = 64 << 10;

/// The most `*.yaml` files a desired-state directory may hold.
pub const MAX_FILES: usize = 256;

/// The most bytes all desired-state files of one load may hold together.
pub const MAX_TOTAL_YAML_BYTES: usize = 4 << 20;

/// How deeply collections may nest (aliases counted where they are used). berth's own
/// reference stack nests 5 deep; 64 leaves room and keeps every recursive walk of a
/// document (serde_yaml refuses 128, and dropping a value recurses) shallow.
pub const MAX_DEPTH: usize = 64;

/// The most nodes (keys, values and list items; an alias counts as the nodes it stands
/// for) that all files of one load may hold together.
pub const MAX_NODES: u64 = 100_000;

/// The most bytes of text (keys and scalar values; an alias counts as the text it stands
/// for) that all files of one load may hold together.
pub const MAX_TEXT_BYTES: u64 = 16 << 20;

/// The most bytes of key paths (`services.api.env.KEY`) one document may index.
pub const MAX_PATH_BYTES: usize = 4 << 20;

/// The most diagnostics one load reports; the rest are counted in one last line.
pub const MAX_DIAGNOSTICS: usize = 100;

/// The most characters of a source line quoted under a diagnostic.
pub const MAX_EXCERPT_CHARS: usize = 200;

/// The limits a document is read within.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// See [`MAX_DEPTH`].
    pub depth: usize,
    /// See [`MAX_NODES`].
    pub nodes: u64,
    /// See [`MAX_TEXT_BYTES`].
    pub text_bytes: u64,
    /// See [`MAX_PATH_BYTES`].
    pub path_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            depth: MAX_DEPTH,
            nodes: MAX_NODES,
            text_bytes: MAX_TEXT_BYTES,
            path_bytes: MAX_PATH_BYTES,
        }
    }
}

/// The size of an anchored node, so that each use of its alias is charged in full.
#[derive(Debug, Clone, Copy)]
struct Shape {
    nodes: u64,
    bytes: u64,
    /// Levels of collections inside it, itself included (0 for a scalar).
    height: usize,
}

/// A collection being read.
#[derive(Debug)]
struct Open {
    anchor: usize,
    /// Nodes counted before it started.
    start: u64,
    /// Text bytes counted before it started.
    start_bytes: u64,
    /// The deepest level reached inside it so far.
    deepest: usize,
}

/// Counts what the events of a load cost against its [`Limits`], across documents and
/// files: O(1) work per event and memory bounded by the nodes allowed.
#[derive(Debug, Default)]
pub struct Budget {
    /// The limits in force.
    pub limits: Limits,
    nodes: u64,
    bytes: u64,
    open: Vec<Open>,
    anchors: HashMap<usize, Shape>,
}

impl Budget {
    /// A budget with the given limits.
    pub fn new(limits: Limits) -> Self {
        Self {
            limits,
            ..Self::default()
        }
    }

    /// The nodes charged so far, aliases counted as the nodes they stand for.
    pub fn nodes(&self) -> u64 {
        self.nodes
    }

    /// Charges one parser event; the error says which limit it exceeds and what to do.
    pub fn check(&mut self, ev: &Event) -> Result<(), String> {
        match ev {
            Event::Scalar(text, _, anchor, _) => {
                let bytes = text.len() as u64;
                self.charge(1, bytes, false)?;
                if *anchor != 0 {
                    self.anchors.insert(
                        *anchor,
                        Shape {
                            nodes: 1,
                            bytes,
                            height: 0,
                        },
                    );
                }
            }
            Event::SequenceStart(anchor, _) | Event::MappingStart(anchor, _) => {
                self.charge(1, 0, false)?;
                let depth = self.open.len() + 1;
                self.reach(depth)?;
                self.open.push(Open {
                    anchor: *anchor,
                    start: self.nodes - 1,
                    start_bytes: self.bytes,
                    deepest: depth,
                });
            }
            Event::SequenceEnd | Event::MappingEnd => self.close(),
            Event::Alias(id) => {
                let Some(shape) = self.anchors.get(id).copied() else {
                    return Err(
                        "an alias is used inside the node its anchor names; YAML aliases cannot form a cycle"
                            .to_string(),
                    );
                };
                self.charge(shape.nodes, shape.bytes, true)?;
                self.reach(self.open.len() + shape.height)?;
            }
            Event::DocumentStart => self.anchors.clear(),
            _ => {}
        }
        Ok(())
    }

    fn charge(&mut self, nodes: u64, bytes: u64, alias: bool) -> Result<(), String> {
        self.nodes = self.nodes.saturating_add(nodes);
        self.bytes = self.bytes.saturating_add(bytes);
        if self.bytes > self.limits.text_bytes {
            return Err(if alias {
                format!(
                    "aliases expand the desired state to more than {} MiB of text; write the values out or use fewer aliases",
                    self.limits.text_bytes >> 20
                )
            } else {
                format!(
                    "the desired state holds more than {} MiB of text; trim it",
                    self.limits.text_bytes >> 20
                )
            });
        }
        if self.nodes <= self.limits.nodes {
            return Ok(());
        }
        Err(if alias {
            format!(
                "aliases expand the desired state to more than {} nodes; write the values out or use fewer aliases",
                self.limits.nodes
            )
        } else {
            format!(
                "the desired state has more than {} nodes (keys, values and list items); split it or trim it",
                self.limits.nodes
            )
        })
    }

    /// Records that a node reaches `depth` levels of collections.
    fn reach(&mut self, depth: usize) -> Result<(), String> {
        if depth > self.limits.depth {
            return Err(too_deep(self.limits.depth));
        }
        if let Some(parent) = self.open.last_mut() {
            parent.deepest = parent.deepest.max(depth);
        }
        Ok(())
    }

    fn close(&mut self) {
        let depth = self.open.len();
        let Some(done) = self.open.pop() else {
            return;
        };
        if done.anchor != 0 {
            let shape = Shape {
                nodes: self.nodes - done.start,
                bytes: self.bytes - done.start_bytes,
                height: done.deepest + 1 - depth,
            };
            self.anchors.insert(done.anchor, shape);
        }
        if let Some(parent) = self.open.last_mut() {
            parent.deepest = parent.deepest.max(done.deepest);
        }
    }
}

/// The message for a document nested deeper than `limit`.
pub(crate) fn too_deep(limit: usize) -> String {
    format!("the document nests deeper than {limit} levels; flatten it")
}
