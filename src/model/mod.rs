//! The desired state: raw serde types, validation, the validated [`Spec`], diagnostics.
//! No tokio and no I/O beyond reading the files handed to it.

pub(crate) mod compose;
mod context;
pub mod diagnostic;
pub mod host_path;
pub mod image;
pub mod limits;
pub mod load;
mod load_options;
pub mod location;
mod outcome;
mod parse;
pub(crate) mod raw;
pub(crate) mod repo_mount;
pub mod spec;
pub mod tree;
pub(crate) mod units;
mod validate;

pub use diagnostic::{Diagnostic, Diagnostics, Severity};
pub use host_path::AllowedHostPath;
pub use image::ImageRef;
pub use load::{
    load_path, load_path_with, load_paths_with, load_tree, load_tree_files, load_tree_with,
    repo_dir, HostDotEnv, HostEnv, LoadError, LoadOptions, Loaded,
};
pub use spec::*;
pub use tree::{FsTree, Limited, MemTree, RepoTree};

#[cfg(test)]
mod tests;

#[cfg(test)]
mod hostile_tests;
