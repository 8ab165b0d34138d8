//! Where the desired state's files are read from: a directory on disk, or (through the
//! same trait) a commit's tree.

use std::path::{Component, Path, PathBuf};

/// Read access to the files of one revision of a desired-state repository. Paths are
/// repository-relative, `/`-separated and normalized (no `.` or `..`).
pub trait RepoTree {
    /// How a path is shown in diagnostics.
    fn display(&self, path: &str) -> String;
    /// The bytes of a regular file, `Ok(None)` when nothing is at `path`, and an error
    /// for anything that is not a regular file inside the repository (a directory, a
    /// symlink leading out of it).
    fn read(&self, path: &str) -> Result<Option<Vec<u8>>, String>;
    /// As [`RepoTree::read`], for a file that may hold at most `max` bytes: a larger one
    /// is [`Limited::TooLarge`]. Implementations that can tell the size first never read
    /// more than `max + 1` bytes.
    fn read_limited(&self, path: &str, max: usize) -> Result<Option<Limited>, String> {
        Ok(self.read(path)?.map(|b| Limited::of(b, max)))
    }
    /// The names of the entries of a directory, sorted; `None` when `path` is not one.
    fn list_dir(&self, path: &str) -> Result<Option<Vec<String>>, String>;
}

/// A file read under a size limit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Limited {
    /// The whole file, within the limit.
    Bytes(Vec<u8>),
    /// The file is larger than the limit; it was not read whole.
    TooLarge,
}

impl Limited {
    /// `bytes` judged against `max`.
    pub fn of(bytes: Vec<u8>, max: usize) -> Self {
        if bytes.len() > max {
            Self::TooLarge
        } else {
            Self::Bytes(bytes)
        }
    }
}

/// Joins `rel` (as written in the desired state) onto the repository-relative directory
/// `base` and normalizes it; `None` when the result leaves the repository.
pub fn join_inside(base: &str, rel: &str) -> Option<String> {
    let mut parts: Vec<&str> = base.split('/').filter(|p| !p.is_empty()).collect();
    for comp in Path::new(rel).components() {
        match comp {
            Component::CurDir => {}
            Component::ParentDir => {
                parts.pop()?;
            }
            Component::Normal(p) => parts.push(p.to_str()?),
            Component::RootDir | Component::Prefix(_) => return None,
        }
    }
    Some(parts.join("/"))
}

/// The directory part of a repository-relative path.
pub fn parent_dir(path: &str) -> &str {
    path.rfind('/').map(|i| &path[..i]).unwrap_or("")
}

/// A repository on disk: the directory given and everything below it.
#[derive(Debug, Clone)]
pub struct FsTree {
    root: PathBuf,
    canonical_root: PathBuf,
    /// The repository-relative directory the operator named …
    sub: String,
    /// … and how the operator wrote it.
    shown_as: PathBuf,
}

impl FsTree {
    /// The repository's root, resolved.
    pub fn canonical_root(&self) -> &Path {
        &self.canonical_root
    }

    /// A tree rooted at `root`. Files under the repository-relative directory `sub` are
    /// named in diagnostics as `shown_as/<rest>`, the way the operator wrote the path;
    /// others by their full path.
    pub fn new(root: &Path, sub: &str, shown_as: &Path) -> std::io::Result<Self> {
        Ok(Self {
            root: root.to_path_buf(),
            canonical_root: root.canonicalize()?,
            sub: sub.to_string(),
            shown_as: shown_as.to_path_buf(),
        })
    }

    fn resolve(&self, path: &str) -> Result<Option<PathBuf>, String> {
        let full = self.root.join(path);
        match full.canonicalize() {
            Ok(c) if c.starts_with(&self.canonical_root) => Ok(Some(c)),
            Ok(_) => Err(format!("`{path}` leads outside the repository")),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(format!("cannot read `{path}`: {e}")),
        }
    }
}

impl RepoTree for FsTree {
    fn display(&self, path: &str) -> String {
        let inside = if self.sub.is_empty() {
            Some(path)
        } else {
            path.strip_prefix(&self.sub)
                .filter(|r| r.is_empty() || r.starts_with('/'))
        };
        let shown = match inside {
            Some(rest) if rest.trim_start_matches('/').is_empty() => self.shown_as.clone(),
            Some(rest) => self.shown_as.join(rest.trim_start_matches('/')),
            None => self.canonical_root.join(path),
        };
        shown.display().to_string()
    }

    fn read(&self, path: &str) -> Result<Option<Vec<u8>>, String> {
        let Some(full) = self.resolve(path)? else {
            return Ok(None);
        };
        if full.is_dir() {
            return Err(format!(
                "`{path}` is a directory; only files can be mounted"
            ));
        }
        std::fs::read(&full)
            .map(Some)
            .map_err(|e| format!("cannot read `{path}`: {e}"))
    }

    fn read_limited(&self, path: &str, max: usize) -> Result<Option<Limited>, String> {
        use std::io::Read;
        use std::os::unix::fs::OpenOptionsExt;
        let Some(full) = self.resolve(path)? else {
            return Ok(None);
        };
        // Non-blocking, so that a FIFO cannot hang the open; then only a regular file is
        // read, and no further than the limit (`/dev/zero` never ends).
        let file = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(&full)
            .map_err(|e| format!("cannot read `{path}`: {e}"))?;
        let meta = file
            .metadata()
            .map_err(|e| format!("cannot read `{path}`: {e}"))?;
        if !meta.is_file() {
            return Err(format!("`{path}` is not a regular file"));
        }
        if meta.len() > max as u64 {
            return Ok(Some(Limited::TooLarge));
        }
        let mut bytes = Vec::new();
        file.take(max as u64 + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| format!("cannot read `{path}`: {e}"))?;
        Ok(Some(Limited::of(bytes, max)))
    }

    fn list_dir(&self, path: &str) -> Result<Option<Vec<String>>, String> {
        let Some(full) = self.resolve(path)? else {
            return Ok(None);
        };
        if !full.is_dir() {
            return Ok(None);
        }
        let mut names = Vec::new();
        for entry in std::fs::read_dir(&full).map_err(|e| format!("cannot list `{path}`: {e}"))? {
            let entry = entry.map_err(|e| format!("cannot list `{path}`: {e}"))?;
            if let Some(name) = entry.file_name().to_str() {
                names.push(name.to_string());
            }
        }
        names.sort();
        Ok(Some(names))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn join_stays_inside() {
        assert_eq!(
            join_inside("desired", "./files/Caddyfile").as_deref(),
            Some("desired/files/Caddyfile")
        );
        assert_eq!(
            join_inside("desired", "../shared/x").as_deref(),
            Some("shared/x")
        );
        assert_eq!(join_inside("desired", "../../etc/passwd"), None);
        assert_eq!(join_inside("", "../x"), None);
    }
}

/// A repository held in memory: for tests, and for callers that already hold the files.
#[derive(Debug, Clone, Default)]
pub struct MemTree {
    files: std::collections::BTreeMap<String, Vec<u8>>,
}

impl MemTree {
    /// An empty tree.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a file at a repository-relative path.
    pub fn with(mut self, path: &str, content: impl Into<Vec<u8>>) -> Self {
        self.files.insert(path.to_string(), content.into());
        self
    }
}

impl RepoTree for MemTree {
    fn display(&self, path: &str) -> String {
        path.to_string()
    }

    fn read(&self, path: &str) -> Result<Option<Vec<u8>>, String> {
        if self.list_dir(path)?.is_some() {
            return Err(format!(
                "`{path}` is a directory; only files can be mounted"
            ));
        }
        Ok(self.files.get(path).cloned())
    }

    fn list_dir(&self, path: &str) -> Result<Option<Vec<String>>, String> {
        let prefix = if path.is_empty() {
            String::new()
        } else {
            format!("{path}/")
        };
        let names: std::collections::BTreeSet<String> = self
            .files
            .keys()
            .filter_map(|k| k.strip_prefix(&prefix))
            .map(|rest| rest.split('/').next().unwrap_or(rest).to_string())
            .collect();
        Ok((!names.is_empty()).then(|| names.into_iter().collect()))
    }
}
