//! The desired state from git: a clone kept under the state dir, fetched on demand,
//! and read straight from a commit's tree, without a checkout. git2 blocks, so callers
//! run these functions on blocking threads.

use std::path::{Path, PathBuf};

use git2::{FetchOptions, Oid, Repository};
use sha2::{Digest, Sha256};

use super::ssh::{self, SshIdentity};

use crate::model::{load_tree_files, Limited, LoadError, LoadOptions, Loaded, RepoTree};

/// How berth authenticates to the remote.
#[derive(Clone, Default)]
pub(crate) struct GitAuth {
    /// A token for https remotes (GitHub: a fine-grained token with read access).
    pub token: Option<String>,
    /// Who berth is to ssh remotes: a key file (maybe with its passphrase) or an agent.
    pub ssh: SshIdentity,
    /// Known hosts for ssh remotes; without one, ssh remotes are refused.
    pub known_hosts: Option<PathBuf>,
}

impl std::fmt::Debug for GitAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GitAuth")
            .field("token", &self.token.as_ref().map(|_| crate::urls::MASK))
            .field("ssh", &self.ssh)
            .field("known_hosts", &self.known_hosts)
            .finish()
    }
}

/// Where the desired state lives.
#[derive(Clone)]
pub(crate) struct GitSource {
    /// The remote: a URL (`https://`, `ssh://`, `git@host:path`, `file://`) or a local
    /// path. It may carry credentials: print [`GitSource::display_url`] instead.
    pub url: String,
    /// The branch followed.
    pub branch: String,
    /// The directory (or file) of the desired state inside the repository.
    pub path: String,
    /// Further compose files of the project inside the repository, merged after `path`
    /// in order.
    pub more_paths: Vec<String>,
    /// The clone berth keeps.
    pub clone_dir: PathBuf,
    /// Credentials.
    pub auth: GitAuth,
}

/// A commit as berth reports it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub(crate) struct CommitInfo {
    /// The full SHA.
    pub sha: String,
    /// The first line of its message.
    pub summary: String,
    /// The author's name.
    pub author: String,
}

impl CommitInfo {
    /// The first 12 digits of the SHA.
    pub(crate) fn short(&self) -> &str {
        &self.sha[..self.sha.len().min(12)]
    }
}

/// Failures of the git source.
#[derive(Debug, thiserror::Error)]
pub(crate) enum SourceError {
    /// Fetching failed.
    #[error("fetch {url} ({branch}): {message}")]
    Fetch {
        /// The remote, credentials masked.
        url: String,
        /// The branch.
        branch: String,
        /// What git said.
        message: String,
    },
    /// The local clone could not be used.
    #[error("git: {0}")]
    Git(String),
    /// The desired state could not be read at that commit.
    #[error("commit {commit}: {error}")]
    Load {
        /// The commit.
        commit: String,
        /// Why.
        error: LoadError,
    },
}

impl From<git2::Error> for SourceError {
    fn from(e: git2::Error) -> Self {
        SourceError::Git(crate::urls::redact_urls_in(e.message()))
    }
}

impl std::fmt::Debug for GitSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GitSource")
            .field("url", &self.display_url())
            .field("branch", &self.branch)
            .field("path", &self.path)
            .field("more_paths", &self.more_paths)
            .field("clone_dir", &self.clone_dir)
            .field("auth", &self.auth)
            .finish()
    }
}

/// True when `url` names a local path rather than a URL.
pub(crate) fn is_local_path(url: &str) -> bool {
    !url.contains("://")
        && !url.contains('@')
        && (url.starts_with('/') || url.starts_with('.') || Path::new(url).exists())
}

impl GitSource {
    /// A source whose clone lives under `<state_dir>/repos/`, named after the URL.
    pub(crate) fn new(
        url: &str,
        branch: &str,
        path: &str,
        state_dir: &Path,
        auth: GitAuth,
    ) -> Self {
        let url = if is_local_path(url) {
            std::fs::canonicalize(url)
                .map(|p| p.display().to_string())
                .unwrap_or_else(|_| url.to_string())
        } else {
            url.to_string()
        };
        let id = hex::encode(&Sha256::digest(url.as_bytes())[..8]);
        Self {
            clone_dir: state_dir.join("repos").join(id),
            url,
            branch: branch.to_string(),
            path: path.trim_matches('/').to_string(),
            more_paths: Vec::new(),
            auth,
        }
    }

    /// The source with further compose files, merged after the first path in order.
    pub(crate) fn with_more_paths(mut self, paths: &[String]) -> Self {
        self.more_paths = paths
            .iter()
            .map(|p| p.trim_matches('/').to_string())
            .collect();
        self
    }

    /// The remote as berth prints it: credentials in the URL masked.
    pub(crate) fn display_url(&self) -> String {
        crate::urls::redact_url(&self.url)
    }

    /// The local working tree to watch for commits, when the source is a local path.
    pub(crate) fn watch_dir(&self) -> Option<PathBuf> {
        if !is_local_path(&self.url) {
            return None;
        }
        let p = PathBuf::from(&self.url);
        let git = p.join(".git");
        Some(if git.is_dir() { git } else { p })
    }

    fn repo(&self) -> Result<Repository, SourceError> {
        match Repository::open_bare(&self.clone_dir) {
            Ok(r) => Ok(r),
            Err(_) => {
                std::fs::create_dir_all(&self.clone_dir)
                    .map_err(|e| SourceError::Git(format!("{}: {e}", self.clone_dir.display())))?;
                Ok(Repository::init_bare(&self.clone_dir)?)
            }
        }
    }

    /// Fetches the branch and returns its head.
    pub(crate) fn fetch(&self) -> Result<Oid, SourceError> {
        let repo = self.repo()?;
        // git2 may quote the URL, credentials and all, in what it says.
        let fail = |message: String| SourceError::Fetch {
            url: self.display_url(),
            branch: self.branch.clone(),
            message: crate::urls::redact_urls_in(&message),
        };
        let mut remote = repo
            .remote_anonymous(&self.url)
            .map_err(|e| fail(e.message().to_string()))?;
        let refusal = ssh::Refusal::default();
        let callbacks = ssh::callbacks(
            ssh::Offer {
                token: self.auth.token.as_deref(),
                identity: &self.auth.ssh,
                known_hosts: self.auth.known_hosts.as_deref(),
            },
            &self.url,
            &refusal,
        );
        let mut opts = FetchOptions::new();
        opts.remote_callbacks(callbacks);
        let refspec = format!("+refs/heads/{0}:refs/remotes/origin/{0}", self.branch);
        let fetched = remote.fetch(&[&refspec], Some(&mut opts), None);
        drop(opts);
        if let Err(e) = fetched {
            // A callback's own reason says more than libgit2's summary of it.
            let message = refusal
                .take()
                .or_else(|| ssh::explain(&self.auth.ssh, e.message()))
                .unwrap_or_else(|| e.message().to_string());
            return Err(fail(message));
        }
        let reference = repo
            .find_reference(&format!("refs/remotes/origin/{}", self.branch))
            .map_err(|_| fail(format!("branch {} not found on the remote", self.branch)))?;
        let oid = reference
            .peel_to_commit()
            .map_err(|e| fail(e.message().to_string()))?
            .id();
        Ok(oid)
    }

    /// Describes a fetched commit.
    pub(crate) fn commit_info(&self, oid: Oid) -> Result<CommitInfo, SourceError> {
        let repo = self.repo()?;
        let c = repo.find_commit(oid)?;
        let author = c.author();
        let info = CommitInfo {
            sha: oid.to_string(),
            summary: c.summary().ok().flatten().unwrap_or_default().to_string(),
            author: author.name().ok().unwrap_or_default().to_string(),
        };
        Ok(info)
    }

    /// Loads and validates the desired state at a fetched commit.
    pub(crate) fn load(&self, oid: Oid, opts: &LoadOptions) -> Result<Loaded, SourceError> {
        let repo = self.repo()?;
        let commit = repo.find_commit(oid)?;
        let tree = commit.tree()?;
        let view = CommitTree {
            repo: &repo,
            tree,
            commit: oid.to_string(),
        };
        let mut paths = vec![self.path.clone()];
        paths.extend(self.more_paths.iter().cloned());
        load_tree_files(&view, &paths, opts).map_err(|error| SourceError::Load {
            commit: oid.to_string(),
            error,
        })
    }

    /// Up to `n` commits before `oid` along first parents, newest first.
    pub(crate) fn first_parents(&self, oid: Oid, n: usize) -> Result<Vec<Oid>, SourceError> {
        let repo = self.repo()?;
        let mut out = Vec::new();
        let mut commit = repo.find_commit(oid)?;
        while out.len() < n {
            let Ok(parent) = commit.parent(0) else {
                break;
            };
            out.push(parent.id());
            commit = parent;
        }
        Ok(out)
    }

    /// True when `new` is `old` or has it among its ancestors.
    pub(crate) fn descends_from(&self, new: Oid, old: Oid) -> Result<bool, SourceError> {
        let repo = self.repo()?;
        Ok(new == old
            || repo
                .graph_descendant_of(new, old)
                .map_err(|e| SourceError::Git(format!("is {new} a descendant of {old}: {e}")))?)
    }

    /// Checks the commit's signature against the allowed signers.
    pub(crate) fn verify(
        &self,
        oid: Oid,
        allowed: &super::signature::AllowedSigners,
    ) -> Result<super::signature::SignatureCheck, SourceError> {
        let repo = self.repo()?;
        Ok(super::signature::verify_commit(&repo, oid, allowed))
    }
}

/// A commit's tree as a [`RepoTree`].
struct CommitTree<'r> {
    repo: &'r Repository,
    tree: git2::Tree<'r>,
    commit: String,
}

impl RepoTree for CommitTree<'_> {
    fn display(&self, path: &str) -> String {
        format!(
            "{}@{}",
            if path.is_empty() { "." } else { path },
            &self.commit[..12.min(self.commit.len())]
        )
    }

    fn read(&self, path: &str) -> Result<Option<Vec<u8>>, String> {
        let entry = match self.tree.get_path(Path::new(path)) {
            Ok(e) => e,
            Err(_) => return Ok(None),
        };
        match entry.kind() {
            Some(git2::ObjectType::Blob) if entry.filemode() == 0o120000 => Err(format!(
                "`{path}` is a symlink; mount the file it points to"
            )),
            Some(git2::ObjectType::Blob) => {
                let blob = self
                    .repo
                    .find_blob(entry.id())
                    .map_err(|e| e.message().to_string())?;
                Ok(Some(blob.content().to_vec()))
            }
            Some(git2::ObjectType::Tree) => Err(format!(
                "`{path}` is a directory; only files can be mounted"
            )),
            _ => Err(format!("`{path}` is not a file")),
        }
    }

    fn read_limited(&self, path: &str, max: usize) -> Result<Option<Limited>, String> {
        // The object's header tells its size without inflating it: a blob past the
        // limit is never read into memory.
        if let Ok(entry) = self.tree.get_path(Path::new(path)) {
            if entry.kind() == Some(git2::ObjectType::Blob) && entry.filemode() != 0o120000 {
                let odb = self.repo.odb().map_err(|e| e.message().to_string())?;
                let (size, _) = odb
                    .read_header(entry.id())
                    .map_err(|e| e.message().to_string())?;
                if size > max {
                    return Ok(Some(Limited::TooLarge));
                }
            }
        }
        Ok(self.read(path)?.map(|b| Limited::of(b, max)))
    }

    fn list_dir(&self, path: &str) -> Result<Option<Vec<String>>, String> {
        let tree = if path.is_empty() {
            self.tree.clone()
        } else {
            let Ok(entry) = self.tree.get_path(Path::new(path)) else {
                return Ok(None);
            };
            if entry.kind() != Some(git2::ObjectType::Tree) {
                return Ok(None);
            }
            self.repo
                .find_tree(entry.id())
                .map_err(|e| e.message().to_string())?
        };
        let mut names: Vec<String> = tree
            .iter()
            .filter_map(|e| e.name().ok().map(str::to_string))
            .collect();
        names.sort();
        Ok(Some(names))
    }
}

#[cfg(test)]
mod tests;
