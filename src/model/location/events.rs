//! A document's parser events checked against the limits, read on another thread when
//! the document is large: the parser and the checks run a bounded number of events
//! ahead of the reader that builds the value, and stop when that reader stops.

use std::sync::mpsc::{sync_channel, SyncSender};

use yaml_rust2::parser::{Event, Parser};
use yaml_rust2::scanner::{Marker, ScanError};

use super::super::limits::too_deep;
use super::track::Tracker;
use super::{Budget, SyntaxError};

/// An event within the limits, or where and why the document is refused.
pub(super) type Checked = Result<Event, SyntaxError>;

/// Documents smaller than this are parsed on the reader's thread: a thread costs more
/// than it saves.
const MIN_PIPED_BYTES: usize = 64 << 10;

/// Events per batch handed over, and batches queued at most.
const BATCH: usize = 1024;
const QUEUE: usize = 16;

/// The checks every event of a document passes before it is read: one document, the
/// input limits (drawn from the load's budget), and the key paths' bytes.
pub(super) struct Checker<'b> {
    budget: &'b mut Budget,
    documents: usize,
    /// The key paths followed.
    pub paths: Tracker,
}

impl<'b> Checker<'b> {
    pub(super) fn new(budget: &'b mut Budget) -> Self {
        Self {
            budget,
            documents: 0,
            paths: Tracker::default(),
        }
    }

    /// The parser's next step checked; `None` at the end of the stream.
    fn check(&mut self, next: Result<(Event, Marker), ScanError>) -> Option<Checked> {
        let (ev, mark) = match next {
            Ok(step) => step,
            Err(e) => {
                return Some(Err(SyntaxError {
                    line: e.marker().line(),
                    col: e.marker().col() + 1,
                    message: match e.info() {
                        // The scanner's own cap on `[`/`{` levels (255), met while it
                        // looks ahead of the events counted here.
                        "recursion limit exceeded" => too_deep(self.budget.limits.depth),
                        info => format!("invalid YAML: {info}"),
                    },
                }));
            }
        };
        if ev == Event::StreamEnd {
            return None;
        }
        let at = |message: String| SyntaxError {
            line: mark.line(),
            col: mark.col() + 1,
            message,
        };
        if ev == Event::DocumentStart {
            self.documents += 1;
            if self.documents > 1 {
                return Some(Err(at("the file holds a second YAML document (after `---`); berth reads one per file, so put it in a file of its own".to_string())));
            }
        }
        if let Err(e) = self.budget.check(&ev) {
            return Some(Err(at(e)));
        }
        self.paths.on_event(&ev);
        if self.paths.path_bytes > self.budget.limits.path_bytes {
            return Some(Err(at(format!(
                "the key paths of this document add up to more than {} MiB; shorten its keys or nest less",
                self.budget.limits.path_bytes >> 20
            ))));
        }
        Some(Ok(ev))
    }
}

/// Whether `text` is worth parsing on another thread.
pub(super) fn piped(text: &str) -> bool {
    text.len() >= MIN_PIPED_BYTES && std::thread::available_parallelism().map_or(1, |n| n.get()) > 1
}

/// Runs `read` over the checked events of `text`, each asked for in turn, until it
/// stops: `None` is the end of the document, and nothing follows an error. With
/// `piped`, the parser runs on another thread.
pub(super) fn with_events<R>(
    text: &str,
    piped: bool,
    checker: &mut Checker,
    read: impl FnOnce(&mut dyn FnMut() -> Option<Checked>) -> R,
) -> R {
    if !piped {
        let mut parser = Parser::new_from_str(text);
        return read(&mut || checker.check(parser.next_token()));
    }
    std::thread::scope(|s| {
        let (to, from) = sync_channel::<Vec<Checked>>(QUEUE);
        s.spawn(move || parse(text, checker, &to));
        let mut batch = Vec::new().into_iter();
        // Returning drops `from`, so a parser ahead of a reader that stopped early
        // stops at its next batch.
        read(&mut || loop {
            if let Some(next) = batch.next() {
                return Some(next);
            }
            batch = from.recv().ok()?.into_iter();
        })
    })
}

/// Parses and checks `text` into batches of events sent to `to`, until the document's
/// end, an error, or the reader has gone.
fn parse(text: &str, checker: &mut Checker, to: &SyncSender<Vec<Checked>>) {
    let mut parser = Parser::new_from_str(text);
    loop {
        let mut batch = Vec::with_capacity(BATCH);
        let mut last = false;
        while !last && batch.len() < BATCH {
            match checker.check(parser.next_token()) {
                Some(Ok(ev)) => batch.push(Ok(ev)),
                Some(Err(e)) => {
                    batch.push(Err(e));
                    last = true;
                }
                None => last = true,
            }
        }
        if to.send(batch).is_err() || last {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::{Budget, Limits, LocationIndex};

    /// A large document and its variants: merges, a syntax error near the end, a
    /// duplicate key, a second document, and limits met part-way.
    fn documents() -> Vec<(String, Limits)> {
        let mut big = String::new();
        for i in 0..3000 {
            big.push_str(&format!(
                "k{i}: &a{i} {{x: {i}, y: [a, \"b\"]}}\nm{i}: {{<<: *a{i}, z: 1}}\n"
            ));
        }
        let few_nodes = Limits {
            nodes: 5000,
            ..Limits::default()
        };
        let short_paths = Limits {
            path_bytes: 40_000,
            ..Limits::default()
        };
        vec![
            (big.clone(), Limits::default()),
            (format!("{big}bad: [1, 2\n"), Limits::default()),
            (format!("{big}k7: 1\n"), Limits::default()),
            (format!("{big}---\nb: 1\n"), Limits::default()),
            (big.clone(), few_nodes),
            (big, short_paths),
        ]
    }

    /// The parser on another thread reads what it reads on the reader's own.
    #[test]
    fn a_piped_read_is_the_same_read() {
        for (doc, limits) in documents() {
            let read = |piped| {
                let mut budget = Budget::new(limits);
                let r = LocationIndex::read_piped(&doc, &mut budget, true, true, piped);
                (r, budget.nodes())
            };
            match (read(false), read(true)) {
                ((Ok(one), n1), (Ok(two), n2)) => {
                    assert_eq!(one.value, two.value);
                    assert_eq!(one.merged, two.merged);
                    assert_eq!(one.index.duplicates, two.index.duplicates);
                    assert_eq!(n1, n2);
                }
                ((Err(one), _), (Err(two), _)) => {
                    assert_eq!((one.line, one.col), (two.line, two.col));
                    assert_eq!(one.message, two.message);
                }
                (one, two) => panic!("{:?} / {:?}", one.0.err(), two.0.err()),
            }
        }
    }
}
