//! The git host and the repository's path on it, from the remote URL the agent follows:
//! `https://host/owner/repo.git`, `ssh://git@host:2222/owner/repo.git` or the scp-like
//! `git@host:owner/repo.git`.

/// Where a repository lives on its host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Remote {
    /// The host name, without credentials or port.
    pub host: String,
    /// The path on the host, without slashes around it or `.git`: `owner/repo`, or
    /// `group/subgroup/repo` on GitLab.
    pub path: String,
}

/// Why a remote names no repository on a git host.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum RemoteError {
    /// A local path or `file://` URL.
    #[error("the repository is local; a commit status needs a remote on a git host (https://host/owner/repo.git or git@host:owner/repo.git)")]
    Local,
    /// No owner and repository in the path.
    #[error("the remote's path {0:?} names no owner/repository")]
    Path(String),
}

impl Remote {
    /// Reads a remote URL. Credentials in it are dropped, never kept.
    pub(crate) fn parse(url: &str) -> Result<Remote, RemoteError> {
        let url = url.trim();
        let (authority, path) = if let Some((scheme, rest)) = url.split_once("://") {
            if scheme.eq_ignore_ascii_case("file") {
                return Err(RemoteError::Local);
            }
            let end = rest.find('/').unwrap_or(rest.len());
            (&rest[..end], &rest[end..])
        } else if let Some((authority, path)) = url.split_once(':') {
            // scp-like `user@host:path`; a local path has no colon before its first slash.
            if authority.contains('/') || authority.is_empty() {
                return Err(RemoteError::Local);
            }
            (authority, path)
        } else {
            return Err(RemoteError::Local);
        };
        // `user:password@host:port` → `host`.
        let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
        let host = match host_port.strip_prefix('[') {
            Some(v6) => v6.split(']').next().unwrap_or_default(),
            None => host_port.split(':').next().unwrap_or_default(),
        };
        if host.is_empty() {
            return Err(RemoteError::Local);
        }
        let path = path.trim_matches('/');
        let path = path
            .strip_suffix(".git")
            .unwrap_or(path)
            .trim_end_matches('/');
        let segments: Vec<&str> = path.split('/').collect();
        if segments.len() < 2
            || segments
                .iter()
                .any(|s| s.is_empty() || *s == "." || *s == "..")
        {
            return Err(RemoteError::Path(path.to_string()));
        }
        Ok(Remote {
            host: host.to_ascii_lowercase(),
            path: path.to_string(),
        })
    }

    /// `owner` and `repo`, for the hosts whose paths have exactly two parts.
    pub(crate) fn owner_repo(&self) -> Option<(&str, &str)> {
        let (owner, repo) = self.path.split_once('/')?;
        (!repo.contains('/')).then_some((owner, repo))
    }
}
