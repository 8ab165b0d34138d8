//! Which desired-state paths are compose files.
//!
//! The rule, in order:
//! 1. A directory holding one of [`STANDARD_NAMES`] is a compose project; the first name
//!    in that order is read (as `docker compose` does) and the others are reported.
//!    `compose.override.yaml` and friends are not read from a directory: an override is
//!    read only when it is the file named. Without a standard name, a directory
//!    holding a file named for an environment, `docker-compose.<env>.yml` or
//!    `compose.<env>.yaml` (`docker-compose.prod.yml`), is a compose project when it
//!    holds exactly one such file and no `berth.yaml`; several are an error.
//! 2. A file with one of the standard names, or named `*.override.yml|yaml`, is a compose
//!    file.
//! 3. Any other `*.yml|*.yaml` file except `berth.yaml` is a compose file when its top
//!    level, as written (block style, keys at column 0), has `services:` and no
//!    `project:`. Everything else is format v1.
//!
//! The peek in rule 3 is a line scan, not a YAML parse, so that hostile input meets
//! the bounded parser of [`super::super::load`] first.

use super::super::limits::MAX_YAML_BYTES;
use super::super::outcome::{LoadError, DEFAULT_FILE};
use super::super::tree::{Limited, RepoTree};

/// The file names `docker compose` looks for, in its order of preference.
pub(crate) const STANDARD_NAMES: &[&str] = &[
    "compose.yaml",
    "compose.yml",
    "docker-compose.yaml",
    "docker-compose.yml",
];

/// Override files `docker compose` reads beside a standard file; berth does not.
pub(crate) const OVERRIDE_NAMES: &[&str] = &[
    "compose.override.yaml",
    "compose.override.yml",
    "docker-compose.override.yaml",
    "docker-compose.override.yml",
];

/// A compose file found at a desired-state path.
#[derive(Debug)]
pub(crate) struct Found {
    /// Repository-relative path of the file read.
    pub path: String,
    /// Its bytes.
    pub bytes: Vec<u8>,
    /// Other files in the directory that berth does not read, with why, and whether
    /// that is an error (an ambiguous directory) rather than a warning.
    pub skipped: Vec<(String, &'static str, bool)>,
}

/// The compose file at `config`, or `None` when `config` is format v1.
pub(crate) fn compose_file(tree: &dyn RepoTree, config: &str) -> Result<Option<Found>, LoadError> {
    let join = |name: &str| {
        if config.is_empty() {
            name.to_string()
        } else {
            format!("{config}/{name}")
        }
    };
    if let Some(names) = tree.list_dir(config).map_err(LoadError::Io)? {
        let mut skipped = Vec::new();
        let standard = STANDARD_NAMES
            .iter()
            .find(|n| names.iter().any(|m| m == *n))
            .map(|n| n.to_string());
        let first = match standard {
            Some(first) => first,
            None => {
                let mut envs = names.iter().filter(|n| for_environment(n));
                match (envs.next(), names.iter().any(|n| n == DEFAULT_FILE)) {
                    (Some(one), false) => {
                        for other in envs {
                            skipped.push((join(other), "several compose files named for an environment; name the one to use", true));
                        }
                        one.clone()
                    }
                    _ => return Ok(None),
                }
            }
        };
        let first = first.as_str();
        for n in &names {
            if STANDARD_NAMES.contains(&n.as_str()) && n != first {
                skipped.push((
                    join(n),
                    "only one compose file is read; name it to use it",
                    false,
                ));
            } else if OVERRIDE_NAMES.contains(&n.as_str()) {
                skipped.push((
                    join(n),
                    "override files are not read from a directory; name one to use it",
                    false,
                ));
            } else if n == DEFAULT_FILE {
                skipped.push((
                    join(n),
                    "a directory holds either format v1 or a compose file; name the file to use",
                    true,
                ));
            }
        }
        let path = join(first);
        let bytes = match read(tree, &path)? {
            Some(bytes) => bytes,
            None => {
                skipped.push((path.clone(), TOO_LARGE, true));
                Vec::new()
            }
        };
        return Ok(Some(Found {
            path,
            bytes,
            skipped,
        }));
    }
    let name = config.rsplit('/').next().unwrap_or(config);
    let named = STANDARD_NAMES.contains(&name) || OVERRIDE_NAMES.contains(&name);
    let yaml = name.ends_with(".yaml") || name.ends_with(".yml");
    if !yaml || name == DEFAULT_FILE || name == "berth.yml" {
        return Ok(None);
    }
    match read(tree, config)? {
        Some(bytes) if named || looks_like_compose(&bytes) => Ok(Some(Found {
            path: config.to_string(),
            bytes,
            skipped: Vec::new(),
        })),
        // Too large to look at: a compose name is refused here, any other name by
        // format v1's reader, which says the same.
        None if named => Ok(Some(Found {
            path: config.to_string(),
            bytes: Vec::new(),
            skipped: vec![(config.to_string(), TOO_LARGE, true)],
        })),
        _ => Ok(None),
    }
}

/// Why a compose file past [`MAX_YAML_BYTES`] is not read.
/// `docker-compose.<env>.yml|yaml` or `compose.<env>.yml|yaml`, not an override.
fn for_environment(name: &str) -> bool {
    let Some(rest) = name
        .strip_prefix("docker-compose.")
        .or_else(|| name.strip_prefix("compose."))
    else {
        return false;
    };
    let Some(env) = rest
        .strip_suffix(".yml")
        .or_else(|| rest.strip_suffix(".yaml"))
    else {
        return false;
    };
    !env.is_empty() && env != "override" && !env.contains('.')
}

const TOO_LARGE: &str = "the file is larger than 1024 KiB; split it or trim it";

/// The file's bytes; `None` when it is larger than [`MAX_YAML_BYTES`], which is then
/// not read whole.
fn read(tree: &dyn RepoTree, path: &str) -> Result<Option<Vec<u8>>, LoadError> {
    match tree
        .read_limited(path, MAX_YAML_BYTES)
        .map_err(LoadError::Io)?
        .ok_or_else(|| LoadError::NotFound(tree.display(path)))?
    {
        Limited::Bytes(bytes) => Ok(Some(bytes)),
        Limited::TooLarge => Ok(None),
    }
}

/// True when the top-level keys written at column 0 include `services` and not
/// `project`.
pub(crate) fn looks_like_compose(bytes: &[u8]) -> bool {
    let text = String::from_utf8_lossy(bytes);
    let mut services = false;
    for line in text.lines() {
        let key = line
            .split(':')
            .next()
            .unwrap_or_default()
            .trim_end()
            .trim_matches(['"', '\'']);
        if line.starts_with([' ', '\t', '#', '-']) || !line.contains(':') {
            continue;
        }
        match key {
            "project" => return false,
            "services" => services = true,
            _ => {}
        }
    }
    services
}
