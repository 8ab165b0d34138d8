//! Where the desired state comes from: git (a remote or a local path, read without a
//! checkout), the watch of a local repository, and commit signature checks.

pub mod git;
pub mod signature;
pub mod watch;

pub use git::{CommitInfo, GitAuth, GitSource, SourceError};
