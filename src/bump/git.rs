//! The git side of a release: the checkout's state, the commit (git2; `git commit -S`
//! when signing, so that git's own signing configuration applies: `gpg.format`,
//! `user.signingkey`, `gpg.program`, `gpg.ssh.program`), and the push, with `git`
//! itself so that the checkout's credentials apply (credential helpers, the
//! `http.extraheader` of CI checkouts, ssh-agent). A rejected push fetches, moves the
//! branch to the new tip and lets the caller replay its edit there.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use git2::{Oid, Repository, Status, StatusOptions};

use crate::urls::redact_urls_in;

/// How many times a rejected push is replayed and tried again.
pub(crate) const PUSH_ATTEMPTS: usize = 5;

/// A checkout of the desired-state repository.
pub(crate) struct Checkout {
    /// The repository.
    pub repo: Repository,
    /// Its work tree.
    pub root: PathBuf,
}

impl Checkout {
    /// The repository holding `start` (a file or directory inside its work tree).
    pub(crate) fn discover(start: &Path) -> Result<Self, String> {
        let repo = Repository::discover(start).map_err(|e| {
            format!(
                "{}: not inside a git checkout ({}); run berth bump in a clone of the \
                 desired-state repository",
                start.display(),
                e.message()
            )
        })?;
        let root = repo
            .workdir()
            .ok_or("the repository is bare; run berth bump in a checkout")?
            .canonicalize()
            .map_err(|e| e.to_string())?;
        Ok(Self { repo, root })
    }

    /// `path` (on disk) relative to the work tree, `/`-separated.
    pub(crate) fn relative(&self, path: &Path) -> Result<String, String> {
        let full = path
            .canonicalize()
            .map_err(|e| format!("{}: {e}", path.display()))?;
        let rel = full.strip_prefix(&self.root).map_err(|_| {
            format!(
                "{}: outside the checkout {}",
                path.display(),
                self.root.display()
            )
        })?;
        Ok(rel.to_string_lossy().replace('\\', "/"))
    }

    /// Refuses staged changes, and uncommitted changes to `paths`: a release commits
    /// exactly its own edit.
    pub(crate) fn require_clean(&self, paths: &[&str]) -> Result<(), String> {
        let mut opts = StatusOptions::new();
        opts.include_untracked(false);
        let statuses = self.repo.statuses(Some(&mut opts)).map_err(msg)?;
        let staged = Status::INDEX_NEW
            | Status::INDEX_MODIFIED
            | Status::INDEX_DELETED
            | Status::INDEX_RENAMED
            | Status::INDEX_TYPECHANGE;
        if let Some(s) = statuses.iter().find(|s| s.status().intersects(staged)) {
            return Err(format!(
                "staged changes ({}); commit or unstage them first",
                s.path().unwrap_or("?")
            ));
        }
        for path in paths {
            match self.repo.status_file(Path::new(path)) {
                Ok(s) if s.is_empty() => {}
                Ok(s) if s.contains(Status::WT_NEW) => {
                    return Err(format!(
                        "{path} is not committed; commit it first (the release must be \
                         what the hosts read)"
                    ))
                }
                Ok(s) if s.contains(Status::IGNORED) => {
                    return Err(format!(
                        "{path} is ignored by git, so the hosts never read it; commit it \
                         (remove it from .gitignore) or write the image literally"
                    ))
                }
                Ok(_) => {
                    return Err(format!(
                        "{path} has uncommitted changes; commit or stash them first"
                    ))
                }
                // Not there yet (a `.env` the bump creates).
                Err(e) if e.code() == git2::ErrorCode::NotFound => {}
                Err(e) => return Err(format!("{path}: {}", e.message())),
            }
        }
        Ok(())
    }

    /// Writes the files into the work tree and stages them.
    pub(crate) fn write(&self, files: &BTreeMap<String, Vec<u8>>) -> Result<(), String> {
        let mut index = self.repo.index().map_err(msg)?;
        for (path, bytes) in files {
            let full = self.inside(path)?;
            std::fs::write(&full, bytes).map_err(|e| format!("{}: {e}", full.display()))?;
            index.add_path(Path::new(path)).map_err(msg)?;
        }
        index.write().map_err(msg)
    }

    /// Where `path` is written: a regular file (or none yet) in a directory of the work
    /// tree. A symlink there is refused: the repository is not trusted, and a dangling
    /// `.env` link would otherwise have the bump write wherever it points.
    fn inside(&self, path: &str) -> Result<PathBuf, String> {
        let full = self.root.join(path);
        let refused = || format!("{path}: a symlink or outside the checkout; not written");
        let dir = full.parent().ok_or_else(refused)?;
        match dir.canonicalize() {
            Ok(d) if d.starts_with(&self.root) => {}
            _ => return Err(refused()),
        }
        match std::fs::symlink_metadata(&full) {
            Ok(m) if !m.file_type().is_file() => Err(refused()),
            Ok(_) => Ok(full),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(full),
            Err(e) => Err(format!("{path}: {e}")),
        }
    }

    /// Whether commits are signed: `--sign`, or git's `commit.gpgsign`.
    pub(crate) fn signs(&self, flag: bool) -> bool {
        flag || self
            .repo
            .config()
            .and_then(|c| c.get_bool("commit.gpgsign"))
            .unwrap_or(false)
    }

    /// Commits the index on top of HEAD with `message`; signed with `git commit -S`.
    pub(crate) fn commit(&self, message: &str, sign: bool) -> Result<Oid, String> {
        if sign {
            self.git(
                &["commit", "-q", "-S", "--cleanup=verbatim", "-F", "-"],
                Some(message),
            )?;
            return self.head();
        }
        let signature = self.repo.signature().map_err(|e| {
            format!(
                "no committer identity ({}); set git config user.name and user.email",
                e.message()
            )
        })?;
        let mut index = self.repo.index().map_err(msg)?;
        let tree = self
            .repo
            .find_tree(index.write_tree().map_err(msg)?)
            .map_err(msg)?;
        let parent = self
            .repo
            .head()
            .and_then(|h| h.peel_to_commit())
            .map_err(msg)?;
        self.repo
            .commit(
                Some("HEAD"),
                &signature,
                &signature,
                message,
                &tree,
                &[&parent],
            )
            .map_err(msg)
    }

    /// The commit HEAD points at.
    pub(crate) fn head(&self) -> Result<Oid, String> {
        self.repo
            .head()
            .and_then(|h| h.peel_to_commit())
            .map(|c| c.id())
            .map_err(msg)
    }

    /// The branch checked out and where it pushes.
    pub(crate) fn upstream(&self) -> Result<Upstream, String> {
        let head = self.repo.head().map_err(msg)?;
        let branch = head
            .name()
            .ok()
            .filter(|n| head.is_branch() && n.starts_with("refs/heads/"))
            .ok_or("HEAD is detached; check out the branch the hosts follow")?
            .to_string();
        let short = branch.trim_start_matches("refs/heads/");
        let config = self.repo.config().map_err(msg)?;
        let no_upstream = || {
            format!(
                "branch {short} has no upstream; set it with `git branch \
                 --set-upstream-to=origin/{short}`"
            )
        };
        let remote = config
            .get_string(&format!("branch.{short}.remote"))
            .map_err(|_| no_upstream())?;
        let merge = config
            .get_string(&format!("branch.{short}.merge"))
            .map_err(|_| no_upstream())?;
        let tracking = self
            .repo
            .branch_upstream_name(&branch)
            .ok()
            .and_then(|b| b.as_str().ok().map(str::to_string))
            .ok_or_else(no_upstream)?;
        Ok(Upstream {
            branch,
            remote,
            merge,
            tracking,
        })
    }

    /// Commits of HEAD that the upstream (as last fetched) lacks.
    pub(crate) fn unpushed(&self, up: &Upstream) -> Result<usize, String> {
        let Ok(theirs) = self.repo.refname_to_id(&up.tracking) else {
            return Ok(0);
        };
        let (ahead, _) = self
            .repo
            .graph_ahead_behind(self.head()?, theirs)
            .map_err(msg)?;
        Ok(ahead)
    }

    /// `git push`: done, or rejected because the remote moved (another push came first).
    pub(crate) fn push(&self, up: &Upstream) -> Result<Pushed, String> {
        let dest = format!("HEAD:{}", up.merge);
        let out = self.run(&["push", "--porcelain", &up.remote, &dest], None)?;
        if out.status.success() {
            return Ok(Pushed::Done);
        }
        let text = redact_urls_in(&format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ));
        let rejected = text.lines().any(|l| {
            l.starts_with('!')
                && (l.contains("fetch first")
                    || l.contains("non-fast-forward")
                    || l.contains("[rejected]"))
        });
        if rejected {
            Ok(Pushed::Rejected(text))
        } else {
            Err(format!(
                "git push {} {dest} failed (the commit stays in this checkout; push it with git once fixed):\n{}",
                up.remote,
                text.trim_end()
            ))
        }
    }

    /// Fetches the upstream and moves the branch (and the work tree) to its tip, leaving
    /// the rejected commit behind.
    pub(crate) fn move_to_upstream(&self, up: &Upstream) -> Result<Oid, String> {
        self.git(&["fetch", "-q", &up.remote], None)?;
        let tip = self.repo.refname_to_id(&up.tracking).map_err(|e| {
            format!(
                "{} after fetching {}: {}",
                up.tracking,
                up.remote,
                e.message()
            )
        })?;
        let object = self.repo.find_object(tip, None).map_err(msg)?;
        let mut checkout = git2::build::CheckoutBuilder::new();
        checkout.safe();
        self.repo
            .checkout_tree(&object, Some(&mut checkout))
            .map_err(|e| format!("checking out {tip}: {}", e.message()))?;
        self.repo
            .reference(
                &up.branch,
                tip,
                true,
                "berth: replay on the new upstream tip",
            )
            .map_err(msg)?;
        Ok(tip)
    }

    fn git(&self, args: &[&str], stdin: Option<&str>) -> Result<(), String> {
        let out = self.run(args, stdin)?;
        if out.status.success() {
            return Ok(());
        }
        Err(format!(
            "git {} failed: {}",
            args[0],
            redact_urls_in(String::from_utf8_lossy(&out.stderr).trim_end())
        ))
    }

    fn run(&self, args: &[&str], stdin: Option<&str>) -> Result<std::process::Output, String> {
        let mut child = Command::new("git")
            .arg("-C")
            .arg(&self.root)
            .args(args)
            .stdin(if stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot run git: {e}"))?;
        if let (Some(text), Some(mut pipe)) = (stdin, child.stdin.take()) {
            pipe.write_all(text.as_bytes())
                .map_err(|e| format!("git {}: {e}", args[0]))?;
        }
        child
            .wait_with_output()
            .map_err(|e| format!("git {}: {e}", args[0]))
    }
}

/// The branch checked out and its upstream.
#[derive(Debug, Clone)]
pub(crate) struct Upstream {
    /// `refs/heads/main`
    pub branch: String,
    /// `origin`
    pub remote: String,
    /// The remote's branch: `refs/heads/main`.
    pub merge: String,
    /// The remote-tracking ref: `refs/remotes/origin/main`.
    pub tracking: String,
}

/// How a push ended.
#[derive(Debug)]
pub(crate) enum Pushed {
    /// The remote took it.
    Done,
    /// The remote has commits this one lacks; git's words.
    Rejected(String),
}

fn msg(e: git2::Error) -> String {
    e.message().to_string()
}
