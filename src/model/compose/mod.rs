//! Compose files: the Compose Specification's `compose.yaml` compiled into the same
//! validated [`Spec`](super::Spec) as format v1.
//!
//! [`detect`] decides whether a desired-state path is a compose file, [`project`] reads
//! the top level (name, sections; `objects` the volumes and networks), [`service`] maps
//! each service (`options` its container options, [`files`] its secrets and configs),
//! [`job`] makes the services others wait to complete into migrations, and [`keys`]
//! is the table of what happens to every service key; `forms` reads the shapes compose
//! writes values in. [`interpolate`] expands `${VAR}` from the host's and the committed
//! `.env`, [`variables`] applies it to the files, and [`merge`] merges several files into
//! one. [`render`] writes a validated spec back as a compose file.

pub(crate) mod detect;
pub(crate) mod files;
mod forms;
pub(crate) mod interpolate;
pub(crate) mod job;
pub(crate) mod keys;
pub(crate) mod merge;
mod objects;
mod options;
pub(crate) mod project;
pub(crate) mod render;
pub(crate) mod service;
pub(crate) mod variables;
pub(crate) mod yaml;

#[cfg(test)]
mod interpolation_tests;
#[cfg(test)]
mod job_tests;
#[cfg(test)]
mod merge_tests;
#[cfg(test)]
mod options_tests;
#[cfg(test)]
mod tests;

use super::load_options::LoadOptions;
use super::outcome::{LoadError, Loaded};
use super::tree::RepoTree;

/// Loads `config` as a compose project when [`detect::compose_file`] says it is one;
/// `None` leaves it to format v1.
pub(crate) fn load_if_compose(
    tree: &dyn RepoTree,
    config: &str,
    opts: &LoadOptions,
) -> Result<Option<Loaded>, LoadError> {
    match detect::compose_file(tree, config)? {
        None => Ok(None),
        Some(found) => Ok(Some(project::load(tree, vec![found], opts))),
    }
}

/// Loads several compose files as one project, merged in order. Each must be a compose
/// file (or a directory holding one): format v1 takes one path.
pub(crate) fn load_files(
    tree: &dyn RepoTree,
    configs: &[String],
    opts: &LoadOptions,
) -> Result<Loaded, LoadError> {
    if configs.len() > super::limits::MAX_FILES {
        return Err(LoadError::Io(format!(
            "{} files named; a project reads at most {}",
            configs.len(),
            super::limits::MAX_FILES
        )));
    }
    let mut found = Vec::new();
    for config in configs {
        match detect::compose_file(tree, config)? {
            Some(f) => found.push(f),
            None => {
                return Err(LoadError::Io(format!(
                    "{}: not a compose file; format v1 (berth.yaml) is read from one path alone, while several paths are compose files merged in order",
                    tree.display(config)
                )))
            }
        }
    }
    // A file one directory leaves unread is read when it is named too.
    let named: Vec<String> = found.iter().map(|f| f.path.clone()).collect();
    for f in &mut found {
        f.skipped
            .retain(|(p, _, error)| *error || !named.contains(p));
    }
    Ok(project::load(tree, found, opts))
}
