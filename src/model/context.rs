//! The context of one load: the files read, the diagnostics found with their positions
//! (bounded), the repository tree and the host's options. Loading fills it in phase
//! one; the rules of [`super::validate`] and the compose reader report through it.

use serde_yaml::{Mapping, Value};

use super::diagnostic::{excerpt, nearest, shown, Diagnostic, Diagnostics, Location, Severity};
use super::limits::{Budget, MAX_DIAGNOSTICS};
use super::load_options::LoadOptions;
use super::location::{KeyPath, LocationIndex};
use super::tree::RepoTree;

/// One source file of the desired state.
pub(crate) struct SourceFile {
    pub name: String,
    /// Repository-relative directory of the file; relative mounts start here.
    pub dir: String,
    pub text: String,
    pub index: LocationIndex,
    /// Every `<<` merge key of the file's value is resolved (read with
    /// [`LocationIndex::read_merging`]).
    pub merged: bool,
}

/// Which position of a path a diagnostic points at.
#[derive(Clone, Copy)]
pub(crate) enum At {
    Key,
    Value,
}

/// Collects diagnostics with their locations.
pub(crate) struct Ctx<'t> {
    pub files: Vec<SourceFile>,
    pub diags: Vec<Diagnostic>,
    pub tree: &'t dyn RepoTree,
    pub opts: &'t LoadOptions,
    /// What the files read so far have cost against the limits.
    pub budget: Budget,
    /// Diagnostics past [`MAX_DIAGNOSTICS`], counted but not kept.
    pub hidden: Hidden,
    /// Several compose files merged into one document: its file index, and where each
    /// of its values was written, which a diagnostic on it points at.
    pub merged: Option<(usize, super::compose::merge::Origins)>,
}

/// The diagnostics a load found beyond those it reports.
#[derive(Default)]
pub(crate) struct Hidden {
    errors: usize,
    warnings: usize,
    first: Option<Location>,
}

impl Ctx<'_> {
    /// A context for reading the files of `tree`.
    pub(crate) fn new<'t>(tree: &'t dyn RepoTree, opts: &'t LoadOptions) -> Ctx<'t> {
        Ctx {
            files: Vec::new(),
            diags: Vec::new(),
            tree,
            opts,
            budget: Budget::default(),
            hidden: Hidden::default(),
            merged: None,
        }
    }

    /// True when any error was found, reported or not.
    pub(crate) fn has_errors(&self) -> bool {
        self.hidden.errors > 0 || self.diags.iter().any(Diagnostic::is_error)
    }

    /// True once [`MAX_DIAGNOSTICS`] are kept: further ones are only counted, so a caller
    /// may skip working out an expensive hint.
    pub(crate) fn is_full(&self) -> bool {
        self.diags.len() >= MAX_DIAGNOSTICS
    }

    pub(crate) fn push(&mut self, sev: Severity, file: usize, path: &KeyPath, at: At, msg: String) {
        let (written, at_path) = match &self.merged {
            Some((merged, origins)) if *merged == file => origins
                .resolve(path)
                .unwrap_or_else(|| (file, path.clone())),
            _ => (file, path.clone()),
        };
        let index = &self.files[written].index;
        let pos = match at {
            At::Key => index.key(&at_path),
            At::Value => index.value(&at_path),
        };
        self.record(sev, written, pos, path.to_string(), msg);
    }

    /// A diagnostic at an explicit position of `file`.
    pub(crate) fn push_at(
        &mut self,
        sev: Severity,
        file: usize,
        path: &KeyPath,
        pos: (usize, usize),
        msg: String,
    ) {
        self.record(sev, file, pos, path.to_string(), msg);
    }

    /// Keeps a diagnostic at `pos` (1-based line and column) of `file`, quoting a bounded
    /// excerpt of its line; past [`MAX_DIAGNOSTICS`] it is only counted.
    pub(crate) fn record(
        &mut self,
        severity: Severity,
        file: usize,
        (line, col): (usize, usize),
        path: String,
        message: String,
    ) {
        let f = &self.files[file];
        let location = Location {
            file: f.name.clone(),
            line,
            col,
        };
        if self.is_full() {
            match severity {
                Severity::Error => self.hidden.errors += 1,
                Severity::Warning => self.hidden.warnings += 1,
            }
            self.hidden.first.get_or_insert(location);
            return;
        }
        let message = bounded(message);
        let source = f
            .text
            .lines()
            .nth(line.saturating_sub(1))
            .map(|l| excerpt(l, col));
        self.diags.push(Diagnostic {
            severity,
            location,
            path,
            message,
            source_col: source.as_ref().map_or(col, |s| s.1),
            source_line: source.map(|s| s.0),
        });
    }

    /// The diagnostics of the load, sorted, with one last line counting those not kept.
    pub(crate) fn finish(self) -> Diagnostics {
        let mut diagnostics = Diagnostics(self.diags);
        diagnostics.sort();
        let Hidden {
            errors,
            warnings,
            first,
        } = self.hidden;
        if let Some(location) = first {
            let count = |n: usize, word: &str| match n {
                0 => None,
                1 => Some(format!("1 more {word}")),
                n => Some(format!("{n} more {word}s")),
            };
            let what: Vec<String> = [count(errors, "error"), count(warnings, "warning")]
                .into_iter()
                .flatten()
                .collect();
            diagnostics.0.push(Diagnostic {
                severity: if errors > 0 {
                    Severity::Error
                } else {
                    Severity::Warning
                },
                location,
                path: String::new(),
                message: format!(
                    "… and {} not shown (the first here); fix the ones above and validate again",
                    what.join(" and ")
                ),
                source_line: None,
                source_col: 0,
            });
        }
        diagnostics
    }

    pub(crate) fn error(&mut self, file: usize, path: &KeyPath, msg: impl Into<String>) {
        self.push(Severity::Error, file, path, At::Value, msg.into());
    }

    pub(crate) fn key_error(&mut self, file: usize, path: &KeyPath, msg: impl Into<String>) {
        self.push(Severity::Error, file, path, At::Key, msg.into());
    }

    pub(crate) fn warning(&mut self, file: usize, path: &KeyPath, msg: impl Into<String>) {
        self.push(Severity::Warning, file, path, At::Key, msg.into());
    }

    /// Reports keys of `map` that `known` does not list (with the nearest valid one)
    /// and returns the map without them, so the rest can still be checked.
    pub(crate) fn known_only(
        &mut self,
        file: usize,
        path: &KeyPath,
        mut map: Mapping,
        known: &[&str],
    ) -> Mapping {
        if !self.all_known(file, path, &map, known) {
            map.retain(|k, _| is_known(k, known));
        }
        map
    }

    /// Reports the keys of `map` that `known` does not list (with the nearest valid
    /// one); true when there are none.
    pub(crate) fn all_known(
        &mut self,
        file: usize,
        path: &KeyPath,
        map: &Mapping,
        known: &[&str],
    ) -> bool {
        let mut all = true;
        for k in map.keys() {
            let Some(name) = k.as_str() else {
                all = false;
                self.key_error(
                    file,
                    path,
                    format!("keys must be strings, found {}", kind(k)),
                );
                continue;
            };
            if known.contains(&name) {
                continue;
            }
            all = false;
            if self.is_full() {
                self.key_error(file, &path.key(name), String::new());
                continue;
            }
            let msg = match nearest(name, known) {
                Some(n) => format!("unknown key `{}`; did you mean `{n}`?", shown(name)),
                None if known.is_empty() => {
                    format!(
                        "unknown key `{}`; this mapping takes no keys, write `{{}}`",
                        shown(name)
                    )
                }
                None => format!(
                    "unknown key `{}`; valid keys: {}",
                    shown(name),
                    known
                        .iter()
                        .map(|k| format!("`{k}`"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            };
            self.key_error(file, &path.key(name), msg);
        }
        all
    }
}

/// Whether `key` is a string that `known` lists.
pub(crate) fn is_known(key: &Value, known: &[&str]) -> bool {
    key.as_str().is_some_and(|name| known.contains(&name))
}

/// A YAML value's kind, for "expected X, found Y" messages.
pub(crate) fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "nothing (null)",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Sequence(_) => "a list",
        Value::Mapping(_) => "a mapping",
        Value::Tagged(_) => "a tagged value",
    }
}

/// A message of at most 512 characters: a longer one (it quotes a long value) keeps its
/// start and its end, where the advice is.
fn bounded(message: String) -> String {
    const HEAD: usize = 256;
    const TAIL: usize = 255;
    let len = message.chars().count();
    if len <= HEAD + TAIL + 1 {
        return message;
    }
    let head: String = message.chars().take(HEAD).collect();
    let tail: String = message.chars().skip(len - TAIL).collect();
    format!("{head}…{tail}")
}
