//! One YAML file read into a value with the position of each node, within the input
//! limits, by both readers (format v1 in [`super::load`], compose in [`super::compose`]).

use serde_yaml::{Mapping, Value};

use super::context::{kind, Ctx, SourceFile};
use super::diagnostic::{shown, Severity};
use super::limits::MAX_LINE_BYTES;
use super::location::{KeyPath, LocationIndex};
use super::tree::parent_dir;

/// Reports a file that is not read because a limit of the whole load is reached.
pub(super) fn refuse_file(ctx: &mut Ctx, path: &str, message: String) {
    let file = ctx.files.len();
    ctx.files.push(SourceFile {
        name: ctx.tree.display(path),
        dir: parent_dir(path).to_string(),
        text: String::new(),
        index: LocationIndex::default(),
        merged: false,
    });
    ctx.record(Severity::Error, file, (1, 1), String::new(), message);
}

/// Reads one file into a top-level mapping, reporting syntax errors with their position.
/// The number (1-based) of the first line longer than [`MAX_LINE_BYTES`].
fn long_line(text: &str) -> Option<usize> {
    text.split('\n')
        .position(|l| l.len() > MAX_LINE_BYTES)
        .map(|i| i + 1)
}

/// Reads the YAML file at `path` into its top-level mapping, merge keys applied as
/// `serde_yaml` applies them; with `merge_all` (compose files), every `<<` is resolved
/// while the value is built when it can be, and the file says so
/// ([`SourceFile::merged`]).
pub(crate) fn parse_file(
    ctx: &mut Ctx,
    path: &str,
    bytes: Vec<u8>,
    merge_all: bool,
) -> Option<(usize, Mapping)> {
    let file = ctx.files.len();
    let name = ctx.tree.display(path);
    let mut read = None;
    let mut merged = false;
    let (text, index, problem) = match String::from_utf8(bytes) {
        Err(e) => {
            let pos = utf8_error_position(e.as_bytes(), e.utf8_error().valid_up_to());
            (
                String::new(),
                LocationIndex::default(),
                Some((
                    pos,
                    "the file is not UTF-8 text; save it as UTF-8".to_string(),
                )),
            )
        }
        Ok(text) => match long_line(&text) {
            Some(line) => (
                text,
                LocationIndex::default(),
                Some((
                    (line, MAX_LINE_BYTES + 1),
                    format!(
                        "line {line} is longer than {} KiB; write a long collection in block style, one entry a line",
                        MAX_LINE_BYTES >> 10
                    ),
                )),
            ),
            None => match if merge_all {
                LocationIndex::read_merging(&text, &mut ctx.budget)
            } else {
                LocationIndex::read_within(&text, &mut ctx.budget, true)
            } {
                Ok(r) => {
                    read = r.value;
                    merged = r.merged;
                    (text, r.index, None)
                }
                Err(e) => (
                    text,
                    LocationIndex::default(),
                    Some(((e.line, e.col), e.message)),
                ),
            },
        },
    };
    ctx.files.push(SourceFile {
        name,
        dir: parent_dir(path).to_string(),
        text,
        index,
        merged,
    });
    if let Some((pos, message)) = problem {
        ctx.record(Severity::Error, file, pos, String::new(), message);
        return None;
    }
    let duplicates = std::mem::take(&mut ctx.files[file].index.duplicates);
    if !duplicates.is_empty() {
        for (path, (line, col), first) in duplicates {
            let key = path.as_str().rsplit('.').next().unwrap_or_default();
            let msg = format!(
                "key `{}` is written twice in this mapping (first on line {first}); keep one",
                shown(key)
            );
            ctx.record(Severity::Error, file, (line, col), path.to_string(), msg);
        }
        return None;
    }
    // The value read in the same pass as the positions; serde_yaml reads the text
    // again only for what that pass leaves to it (tags, collections as keys, …).
    let parsed = match read {
        Some(value) => Ok(value),
        None => serde_yaml::from_str(&ctx.files[file].text),
    };
    let value: Value = match parsed {
        Ok(v) => v,
        Err(e) => {
            let pos = e
                .location()
                .map(|l| (l.line(), l.column()))
                .unwrap_or((1, 1));
            let msg = e.to_string();
            let msg = msg.split(" at line ").next().unwrap_or(&msg).to_string();
            ctx.record(
                Severity::Error,
                file,
                pos,
                String::new(),
                format!("invalid YAML: {msg}"),
            );
            return None;
        }
    };
    let mut value = value;
    if !merged && value.apply_merge().is_err() {
        ctx.error(
            file,
            &KeyPath::root(),
            "a `<<` merge key must name a mapping or a list of mappings",
        );
        return None;
    }
    match value {
        Value::Mapping(m) => Some((file, m)),
        Value::Null => {
            ctx.error(
                file,
                &KeyPath::root(),
                "the file is empty; it needs at least `project:` and `services:`",
            );
            None
        }
        other => {
            ctx.error(
                file,
                &KeyPath::root(),
                format!(
                    "the top level must be a mapping with `project`, `services`, …; found {}",
                    kind(&other)
                ),
            );
            None
        }
    }
}

/// The 1-based line and column of the first byte that is not UTF-8.
fn utf8_error_position(bytes: &[u8], valid_up_to: usize) -> (usize, usize) {
    let valid = &bytes[..valid_up_to];
    let line_start = valid.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
    let line = valid.iter().filter(|b| **b == b'\n').count() + 1;
    let col = String::from_utf8_lossy(&valid[line_start..])
        .chars()
        .count()
        + 1;
    (line, col)
}
