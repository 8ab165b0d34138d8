//! What the host allows a load to do: [`LoadOptions`], and the reader of a compose
//! project's host `.env` it may carry.

use std::sync::Arc;

/// What the host allows a desired state to ask for. Whoever can push to the desired
/// state may run containers on the host, not own it.
#[derive(Debug, Clone, Default)]
pub struct LoadOptions {
    /// Host path prefixes that bind mounts may use; none by default. Runtime sockets
    /// (the Docker socket, containerd's, …) are refused unless named exactly.
    pub allow_host_paths: Vec<super::host_path::AllowedHostPath>,
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
