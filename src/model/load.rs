//! Loading the desired state: files → YAML → raw types (phase one), then the rules of
//! [`super::validate`] (phase two). Every problem of the input is collected before the
//! answer is given.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use serde_yaml::{Mapping, Value};

use super::diagnostic::{nearest, Diagnostic, Diagnostics, Location, Severity};
use super::location::{KeyPath, LocationIndex};
use super::raw::KnownKeys;
use super::spec::Spec;
use super::tree::{parent_dir, FsTree, RepoTree};

/// The largest desired-state file berth reads.
pub const MAX_YAML_BYTES: usize = 1 << 20;

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
}

impl Ctx<'_> {
    pub fn push(&mut self, sev: Severity, file: usize, path: &KeyPath, at: At, msg: String) {
        let index = &self.files[file].index;
        let pos = match at {
            At::Key => index.key(path),
            At::Value => index.value(path),
        };
        self.push_at(sev, file, path, pos, msg);
    }

    /// A diagnostic at an explicit position of `file`.
    pub fn push_at(
        &mut self,
        sev: Severity,
        file: usize,
        path: &KeyPath,
        (line, col): (usize, usize),
        msg: String,
    ) {
        let f = &self.files[file];
        self.diags.push(Diagnostic {
            severity: sev,
            location: Location {
                file: f.name.clone(),
                line,
                col,
            },
            path: path.to_string(),
            message: msg,
            source_line: f
                .text
                .lines()
                .nth(line.saturating_sub(1))
                .map(str::to_string),
        });
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
        map: &Mapping,
        known: &[&str],
    ) -> Mapping {
        let mut kept = Mapping::new();
        for (k, v) in map {
            let Some(name) = k.as_str() else {
                self.key_error(
                    file,
                    path,
                    format!("keys must be strings, found {}", kind(k)),
                );
                continue;
            };
            if known.contains(&name) {
                kept.insert(k.clone(), v.clone());
                continue;
            }
            let msg = match nearest(name, known) {
                Some(n) => format!("unknown key `{name}`; did you mean `{n}`?"),
                None if known.is_empty() => {
                    format!("unknown key `{name}`; this mapping takes no keys, write `{{}}`")
                }
                None => format!(
                    "unknown key `{name}`; valid keys: {}",
                    known
                        .iter()
                        .map(|k| format!("`{k}`"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            };
            self.key_error(file, &path.key(name), msg);
        }
        kept
    }
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
    load_tree_with(&tree, &config, opts)
}

/// Loads the desired state from a repository tree; `config` is the repository-relative
/// file or directory holding it (`""` for the root).
pub fn load_tree(tree: &dyn RepoTree, config: &str) -> Result<Loaded, LoadError> {
    load_tree_with(tree, config, &LoadOptions::default())
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
    let mut ctx = Ctx {
        files: Vec::new(),
        diags: Vec::new(),
        tree,
        opts,
    };
    let mut docs = Vec::new();
    for path in &files {
        let bytes = tree
            .read(path)
            .map_err(LoadError::Io)?
            .ok_or_else(|| LoadError::NotFound(tree.display(path)))?;
        if let Some(doc) = parse_file(&mut ctx, path, bytes) {
            docs.push(doc);
        }
    }
    let merged = merge(&mut ctx, docs);
    let spec = super::validate::validate(&mut ctx, merged);
    let mut diagnostics = Diagnostics(ctx.diags);
    diagnostics.sort();
    let spec = if diagnostics.has_errors() { None } else { spec };
    Ok(Loaded { spec, diagnostics })
}

/// Reads one file into a top-level mapping, reporting syntax errors with their position.
pub(crate) fn parse_file(ctx: &mut Ctx, path: &str, bytes: Vec<u8>) -> Option<(usize, Mapping)> {
    let file = ctx.files.len();
    let name = ctx.tree.display(path);
    let too_big = bytes.len() > MAX_YAML_BYTES;
    let text = String::from_utf8(bytes);
    let (text, index, problem) = match text {
        Err(_) => (
            String::new(),
            LocationIndex::default(),
            Some((
                1,
                1,
                "the file is not UTF-8 text; save it as UTF-8".to_string(),
            )),
        ),
        Ok(_) if too_big => (
            String::new(),
            LocationIndex::default(),
            Some((
                1,
                1,
                format!(
                    "the file is larger than {} KiB; split it or trim it",
                    MAX_YAML_BYTES >> 10
                ),
            )),
        ),
        Ok(text) => match LocationIndex::build(&text) {
            Ok(index) => (text, index, None),
            Err(e) => (
                text,
                LocationIndex::default(),
                Some((e.line, e.col, format!("invalid YAML: {}", e.message))),
            ),
        },
    };
    ctx.files.push(SourceFile {
        name: name.clone(),
        dir: parent_dir(path).to_string(),
        text,
        index,
    });
    if let Some((line, col, message)) = problem {
        ctx.diags.push(Diagnostic {
            severity: Severity::Error,
            location: Location {
                file: name,
                line,
                col,
            },
            path: String::new(),
            message,
            source_line: ctx.files[file]
                .text
                .lines()
                .nth(line.saturating_sub(1))
                .map(str::to_string),
        });
        return None;
    }
    let duplicates = std::mem::take(&mut ctx.files[file].index.duplicates);
    if !duplicates.is_empty() {
        for (path, (line, col), first) in duplicates {
            let key = path
                .as_str()
                .rsplit('.')
                .next()
                .unwrap_or_default()
                .to_string();
            let msg = format!(
                "key `{key}` is written twice in this mapping (first on line {first}); keep one"
            );
            ctx.diags.push(Diagnostic {
                severity: Severity::Error,
                location: Location {
                    file: name.clone(),
                    line,
                    col,
                },
                path: path.to_string(),
                message: msg,
                source_line: ctx.files[file]
                    .text
                    .lines()
                    .nth(line.saturating_sub(1))
                    .map(str::to_string),
            });
        }
        return None;
    }
    let value: Value = match serde_yaml::from_str(&ctx.files[file].text) {
        Ok(v) => v,
        Err(e) => {
            let (line, col) = e
                .location()
                .map(|l| (l.line(), l.column()))
                .unwrap_or((1, 1));
            let msg = e.to_string();
            let msg = msg.split(" at line ").next().unwrap_or(&msg).to_string();
            ctx.diags.push(Diagnostic {
                severity: Severity::Error,
                location: Location {
                    file: ctx.files[file].name.clone(),
                    line,
                    col,
                },
                path: String::new(),
                message: format!("invalid YAML: {msg}"),
                source_line: ctx.files[file]
                    .text
                    .lines()
                    .nth(line.saturating_sub(1))
                    .map(str::to_string),
            });
            return None;
        }
    };
    let mut value = value;
    if value.apply_merge().is_err() {
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
        let map = ctx.known_only(file, &root, &map, &keys.document);
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
