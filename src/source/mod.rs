//! Where the desired state comes from: git (a remote or a local path, read without a
//! checkout), ssh to reach it (known_hosts, keys, agents), the watch of a local
//! repository, and commit signature checks.

pub(crate) mod git;
pub(crate) mod signature;
pub(crate) mod ssh;
pub(crate) mod watch;

pub(crate) use git::{CommitInfo, GitAuth, GitSource, SourceError};
