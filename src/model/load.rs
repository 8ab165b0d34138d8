//! Loading the desired state: files → YAML → raw types (phase one), then the rules of
//! [`super::validate`] (phase two). Every problem of the input is collected before the
//! answer is given.

use std::collections::BTreeMap;
use std::path::Path;

use serde_yaml::{Mapping, Value};

use super::context::{kind, Ctx};
use super::limits::{MAX_FILES, MAX_TOTAL_YAML_BYTES};
use super::location::KeyPath;
use super::raw::KnownKeys;
use super::tree::{parent_dir, FsTree, Limited, RepoTree};
use super::validate::{Entry, Merged};

pub use super::load_options::{HostDotEnv, HostEnv, LoadOptions};

pub use super::limits::MAX_YAML_BYTES;
pub use super::outcome::{LoadError, Loaded, DEFAULT_FILE};
use super::parse::{parse_file, refuse_file};

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
