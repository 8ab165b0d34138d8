//! What a load answers: the validated spec with every diagnostic, or why the input could
//! not be read at all. Shared by both readers (format v1 in [`super::load`], compose in
//! [`super::compose`]).

use super::diagnostic::Diagnostics;
use super::spec::Spec;

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
