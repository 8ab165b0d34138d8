//! Loading the desired state: files → YAML → raw types (phase one), then the rules of
//! [`super::validate`] (phase two). Every problem of the input is collected before the
//! answer is given.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use serde_yaml::{Mapping, Value};

use super::diagnostic::{excerpt, nearest, shown, Diagnostic, Diagnostics, Location, Severity};
use super::limits::{Budget, MAX_DIAGNOSTICS, MAX_FILES, MAX_LINE_BYTES, MAX_TOTAL_YAML_BYTES};
use super::location::{KeyPath, LocationIndex};
use super::raw::KnownKeys;
use super::spec::Spec;
use super::tree::{parent_dir, FsTree, Limited, RepoTree};

pub use super::limits::MAX_YAML_BYTES;

/// The file name read when a directory holds it and nothing else is named.
pub const DEFAULT_FILE: &str = "berth.yaml";

/// The outcome of a load: a spec when there were no errors, and every diagnostic.
#[derive(Debug)]
pub struct Loaded {
    /// The validated spec, `None` when any error was found.
    pub spec: Option<Spec>,
    /// Errors and warnings, sorted by file and position.
    pub diagnostics: Diagnostics,
}

/// The input could not be read at all (as opposed to being invalid).
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// Nothing exists at the given path.
    #[error("{0}: no such file or directory")]
    NotFound(String),
    /// A directory without any `*.yaml` file.
    #[error("{0}: no *.yaml file in this directory; create berth.yaml or name a file")]
    NoYaml(String),
    /// Reading failed.
    #[error("{0}")]
    Io(String),
}

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

/// A named entry (`services.api`, …) with the file that defined it.
pub(crate) struct Entry {
    pub file: usize,
    pub value: Value,
}

/// Which position of a path a diagnostic points at.
#[derive(Clone, Copy)]
pub(crate) enum At {
    Key,
    Value,
}

/// What the host allows a desired state to ask for. Whoever can push to the desired
/// state may run containers on the host, not own it.
#[derive(Debug, Clone, Default)]
pub struct LoadOptions {
    /// Host path prefixes that bind mounts may use; none by default. Runtime sockets
    /// (the Docker socket, containerd's, …) are refused unless named exactly.
    pub allow_host_paths: Vec<super::AllowedHostPath>,
    /// Whether host paths are also checked on this machine's file system (real path, no
    /// symlink below the allowed prefix): for a host about to use them, not for
    /// `berth validate` on a workstation.
    pub check_on_host: bool,
    /// Where a compose project's host `.env` comes from, once its name is known; `None`
    /// (as for `berth validate`) reads none, so its variables are unset.
    pub host_env: Option<HostEnv>,
    /// A compose project's name when its files have no top-level `name:` (`--project`);
    /// without either it is the directory's name.
    pub project: Option<String>,
}

/// The host's `.env` of a compose project, as read by the host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostDotEnv {
    /// The file, as shown in diagnostics.
    pub path: String,
    /// Its text.
    pub text: String,
}

/// Reads the host's `.env` of the project it is given: `Ok(None)` when the host has
/// none. The model decides when it is needed; the caller decides where it lives and how
/// it is read, so the model does no host I/O of its own.
#[derive(Clone)]
pub struct HostEnv(Arc<HostEnvFn>);

type HostEnvFn = dyn Fn(&str) -> Result<Option<HostDotEnv>, String> + Send + Sync;

impl HostEnv {
    /// A reader from a function of the project name.
    pub fn new(
        read: impl Fn(&str) -> Result<Option<HostDotEnv>, String> + Send + Sync + 'static,
    ) -> Self {
        Self(Arc::new(read))
    }

    /// The host's `.env` of `project`.
    pub fn read(&self, project: &str) -> Result<Option<HostDotEnv>, String> {
        (self.0)(project)
    }
}

impl std::fmt::Debug for HostEnv {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("HostEnv(..)")
    }
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
    pub fn new<'t>(tree: &'t dyn RepoTree, opts: &'t LoadOptions) -> Ctx<'t> {
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
    pub fn has_errors(&self) -> bool {
        self.hidden.errors > 0 || self.diags.iter().any(Diagnostic::is_error)
    }

    /// True once [`MAX_DIAGNOSTICS`] are kept: further ones are only counted, so a caller
    /// may skip working out an expensive hint.
    pub fn is_full(&self) -> bool {
        self.diags.len() >= MAX_DIAGNOSTICS
    }

    pub fn push(&mut self, sev: Severity, file: usize, path: &KeyPath, at: At, msg: String) {
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
    pub fn push_at(
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
    pub fn record(
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

    pub fn error(&mut self, file: usize, path: &KeyPath, msg: impl Into<String>) {
        self.push(Severity::Error, file, path, At::Value, msg.into());
    }

    pub fn key_error(&mut self, file: usize, path: &KeyPath, msg: impl Into<String>) {
        self.push(Severity::Error, file, path, At::Key, msg.into());
    }

    pub fn warning(&mut self, file: usize, path: &KeyPath, msg: impl Into<String>) {
        self.push(Severity::Warning, file, path, At::Key, msg.into());
    }

    /// Reports keys of `map` that `known` does not list (with the nearest valid one)
    /// and returns the map without them, so the rest can still be checked.
    pub fn known_only(
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
    pub fn all_known(
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

/// Loads the desired state at `path` on disk: a file, or a directory of `*.yaml` files.
/// Repository-relative mounts may reach up to the enclosing git work tree (or the
/// directory itself when there is none).
pub fn load_path(path: &Path) -> Result<Loaded, LoadError> {
    load_path_with(path, &LoadOptions::default())
}

/// [`load_path`] with the host's options.
pub fn load_path_with(path: &Path, opts: &LoadOptions) -> Result<Loaded, LoadError> {
    let (tree, config) = open_path(path)?;
    load_tree_with(&tree, &config, opts)
}

/// Loads the compose files at `paths` on disk, merged in order (`docker compose -f a
/// -f b`); one path is [`load_path_with`]. The first file's directory is the project's,
/// and every file must lie in the same repository.
pub fn load_paths_with(
    paths: &[std::path::PathBuf],
    opts: &LoadOptions,
) -> Result<Loaded, LoadError> {
    let [first, rest @ ..] = paths else {
        return Err(LoadError::Io("no desired state given".to_string()));
    };
    let (tree, config) = open_path(first)?;
    let mut configs = vec![config];
    for p in rest {
        configs.push(tree_path(&tree, p)?);
    }
    load_tree_files(&tree, &configs, opts)
}

/// The path of `path` on disk inside `tree`'s repository (or, outside any git work
/// tree, below the first file's directory).
fn tree_path(tree: &FsTree, path: &Path) -> Result<String, LoadError> {
    let canonical = path.canonicalize().map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => LoadError::NotFound(path.display().to_string()),
        _ => LoadError::Io(format!("{}: {e}", path.display())),
    })?;
    let inside = canonical
        .strip_prefix(tree.canonical_root())
        .map_err(|_| {
            LoadError::Io(format!(
                "{}: not in {}, the repository of the first file; the files of one project live in one repository",
                path.display(),
                tree.canonical_root().display()
            ))
        })?;
    Ok(inside.to_string_lossy().replace('\\', "/"))
}

/// The repository-relative directory of the desired state at `path` on disk, as
/// [`load_path`] reads it: where relative mounts start.
pub fn repo_dir(path: &Path) -> Result<String, LoadError> {
    let (_, config) = open_path(path)?;
    Ok(if std::fs::metadata(path).is_ok_and(|m| m.is_dir()) {
        config
    } else {
        parent_dir(&config).to_string()
    })
}

/// True when the desired state at `path` on disk is read as a compose file (see
/// [`super::compose::detect`]), false for format v1.
pub fn is_compose_path(path: &Path) -> Result<bool, LoadError> {
    let (tree, config) = open_path(path)?;
    Ok(super::compose::detect::compose_file(&tree, &config)?.is_some())
}

/// The tree holding `path` and the repository-relative path of the desired state in it.
fn open_path(path: &Path) -> Result<(FsTree, String), LoadError> {
    let meta = std::fs::metadata(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => LoadError::NotFound(path.display().to_string()),
        _ => LoadError::Io(format!("{}: {e}", path.display())),
    })?;
    let (dir, file) = if meta.is_dir() {
        (path.to_path_buf(), None)
    } else {
        let parent = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => Path::new(".").to_path_buf(),
        };
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .ok_or_else(|| LoadError::Io(format!("{}: not a file name", path.display())))?;
        (parent, Some(name.to_string()))
    };
    let canonical = dir
        .canonicalize()
        .map_err(|e| LoadError::Io(format!("{}: {e}", dir.display())))?;
    // The repository root is the enclosing work tree, so `../shared/file` works as it
    // does from a commit; `sub` is the config directory below it.
    let root = canonical
        .ancestors()
        .find(|a| a.join(".git").exists())
        .unwrap_or(&canonical)
        .to_path_buf();
    let sub = canonical
        .strip_prefix(&root)
        .unwrap_or(Path::new(""))
        .to_string_lossy()
        .replace('\\', "/");
    let tree = FsTree::new(&root, &sub, &dir).map_err(|e| LoadError::Io(e.to_string()))?;
    let config = match file {
        Some(f) if sub.is_empty() => f,
        Some(f) => format!("{sub}/{f}"),
        None => sub,
    };
    Ok((tree, config))
}

/// Loads the desired state from a repository tree; `config` is the repository-relative
/// file or directory holding it (`""` for the root).
pub fn load_tree(tree: &dyn RepoTree, config: &str) -> Result<Loaded, LoadError> {
    load_tree_with(tree, config, &LoadOptions::default())
}

/// Loads the compose files `configs` of a repository tree, merged in order; one config
/// is [`load_tree_with`], and format v1 takes only one.
pub fn load_tree_files(
    tree: &dyn RepoTree,
    configs: &[String],
    opts: &LoadOptions,
) -> Result<Loaded, LoadError> {
    match configs {
        [] => Err(LoadError::Io("no desired state given".to_string())),
        [one] => load_tree_with(tree, one, opts),
        several => super::compose::load_files(tree, several, opts),
    }
}

/// [`load_tree`] with the host's options.
pub fn load_tree_with(
    tree: &dyn RepoTree,
    config: &str,
    opts: &LoadOptions,
) -> Result<Loaded, LoadError> {
    if let Some(loaded) = super::compose::load_if_compose(tree, config, opts)? {
        return Ok(loaded);
    }
    let files = match tree.list_dir(config).map_err(LoadError::Io)? {
        Some(names) => {
            let yaml: Vec<String> = names
                .into_iter()
                // Hidden files (`.yamllint.yaml`, editor leftovers) are not desired state.
                .filter(|n| !n.starts_with('.') && (n.ends_with(".yaml") || n.ends_with(".yml")))
                .map(|n| {
                    if config.is_empty() {
                        n
                    } else {
                        format!("{config}/{n}")
                    }
                })
                .collect();
            if yaml.is_empty() {
                return Err(LoadError::NoYaml(tree.display(config)));
            }
            yaml
        }
        None => vec![config.to_string()],
    };
    let mut ctx = Ctx::new(tree, opts);
    let mut docs = Vec::new();
    let mut total = 0usize;
    for (i, path) in files.iter().enumerate() {
        if i == MAX_FILES {
            refuse_file(&mut ctx, path, format!("the desired state holds more than {MAX_FILES} *.yaml files; merge some of them"));
            break;
        }
        let read = tree
            .read_limited(path, MAX_YAML_BYTES)
            .map_err(LoadError::Io)?
            .ok_or_else(|| LoadError::NotFound(tree.display(path)))?;
        let Limited::Bytes(bytes) = read else {
            refuse_file(
                &mut ctx,
                path,
                format!(
                    "the file is larger than {} KiB; split it or trim it",
                    MAX_YAML_BYTES >> 10
                ),
            );
            continue;
        };
        total = total.saturating_add(bytes.len());
        if total > MAX_TOTAL_YAML_BYTES {
            refuse_file(
                &mut ctx,
                path,
                format!(
                    "the desired state's files hold more than {} MiB together; trim them",
                    MAX_TOTAL_YAML_BYTES >> 20
                ),
            );
            break;
        }
        if let Some(doc) = parse_file(&mut ctx, path, bytes, false) {
            docs.push(doc);
        }
    }
    let merged = merge(&mut ctx, docs);
    let spec = super::validate::validate(&mut ctx, merged);
    let spec = if ctx.has_errors() { None } else { spec };
    let diagnostics = ctx.finish();
    Ok(Loaded { spec, diagnostics })
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

/// Reports a file that is not read because a limit of the whole load is reached.
fn refuse_file(ctx: &mut Ctx, path: &str, message: String) {
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

/// The merged top level of every file.
pub(crate) struct Merged {
    pub project: Option<(usize, Value)>,
    pub networks: BTreeMap<String, Entry>,
    pub volumes: BTreeMap<String, Entry>,
    pub services: BTreeMap<String, Entry>,
    pub migrations: BTreeMap<String, Entry>,
}

fn merge(ctx: &mut Ctx, docs: Vec<(usize, Mapping)>) -> Merged {
    let keys = KnownKeys::get();
    let mut merged = Merged {
        project: None,
        networks: BTreeMap::new(),
        volumes: BTreeMap::new(),
        services: BTreeMap::new(),
        migrations: BTreeMap::new(),
    };
    for (file, map) in docs {
        let root = KeyPath::root();
        let map = ctx.known_only(file, &root, map, &keys.document);
        for (k, v) in map {
            let key = k.as_str().unwrap_or_default().to_string();
            let path = root.key(&key);
            if key == "project" {
                match &merged.project {
                    Some((other, prev)) if *prev != v => {
                        let first = ctx.files[*other].name.clone();
                        ctx.key_error(file, &path, format!("`project` is set again, differently from {first}; set it in one file"));
                    }
                    Some(_) => {}
                    None => merged.project = Some((file, v)),
                }
                continue;
            }
            let section = match key.as_str() {
                "networks" => &mut merged.networks,
                "volumes" => &mut merged.volumes,
                "services" => &mut merged.services,
                _ => &mut merged.migrations,
            };
            let entries = match v {
                Value::Mapping(m) => m,
                Value::Null => continue,
                other => {
                    ctx.error(
                        file,
                        &path,
                        format!(
                            "`{key}` must be a mapping of names to definitions; found {}",
                            kind(&other)
                        ),
                    );
                    continue;
                }
            };
            for (name, def) in entries {
                let Some(name) = name.as_str().map(str::to_string) else {
                    ctx.key_error(
                        file,
                        &path,
                        format!("names in `{key}` must be strings, found {}", kind(&name)),
                    );
                    continue;
                };
                if let Some(prev) = section.get(&name) {
                    let first = ctx.files[prev.file].name.clone();
                    ctx.key_error(
                        file,
                        &path.key(&name),
                        format!(
                            "`{key}.{name}` is already defined in {first}; a name is defined once"
                        ),
                    );
                    continue;
                }
                section.insert(name, Entry { file, value: def });
            }
        }
    }
    merged
}
