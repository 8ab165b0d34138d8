//! `berth rollback`: the last commit that changed a service's image, found by loading
//! the desired state at each commit of the branch's first-parent history, and its
//! undoing: `git revert` of it when that reverts cleanly and changes nothing but the
//! image, otherwise the previous image written as a bump writes it.

use std::collections::BTreeMap;
use std::path::Path;

use git2::{Oid, Repository};

use super::git::Checkout;
use super::{Desired, Overlay};
use crate::model::{ImageRef, RepoTree, Spec};

/// The most commits walked back looking for the change.
pub(crate) const MAX_WALK: usize = 10_000;

/// The commit that last changed a service's image.
#[derive(Debug, Clone)]
pub(crate) struct LastChange {
    /// The commit.
    pub commit: Oid,
    /// Its first parent: the image before it.
    pub parent: Oid,
    /// `Name <email>` of its author.
    pub author: String,
    /// Its author date, RFC 3339 in UTC.
    pub date: String,
    /// Its subject line.
    pub summary: String,
    /// The image before the commit …
    pub old: ImageRef,
    /// … and after it (what runs now).
    pub new: ImageRef,
}

/// A commit's tree as a [`RepoTree`].
pub(crate) struct CommitTree<'r> {
    repo: &'r Repository,
    tree: git2::Tree<'r>,
    shown: String,
}

impl<'r> CommitTree<'r> {
    /// The tree of commit (or tree) `oid`.
    pub(crate) fn new(repo: &'r Repository, oid: Oid) -> Result<Self, String> {
        let object = repo.find_object(oid, None).map_err(msg)?;
        let tree = object.peel_to_tree().map_err(msg)?;
        Ok(Self {
            repo,
            tree,
            shown: oid.to_string()[..12].to_string(),
        })
    }
}

impl RepoTree for CommitTree<'_> {
    fn display(&self, path: &str) -> String {
        format!("{path}@{}", self.shown)
    }

    fn read(&self, path: &str) -> Result<Option<Vec<u8>>, String> {
        let Ok(entry) = self.tree.get_path(Path::new(path)) else {
            return Ok(None);
        };
        match entry.kind() {
            Some(git2::ObjectType::Blob) if entry.filemode() == 0o120000 => {
                Err(format!("`{path}` is a symlink"))
            }
            Some(git2::ObjectType::Blob) => Ok(Some(
                self.repo
                    .find_blob(entry.id())
                    .map_err(msg)?
                    .content()
                    .to_vec(),
            )),
            _ => Err(format!("`{path}` is not a file")),
        }
    }

    fn list_dir(&self, path: &str) -> Result<Option<Vec<String>>, String> {
        let tree = if path.is_empty() {
            self.tree.clone()
        } else {
            match self.tree.get_path(Path::new(path)) {
                Ok(e) if e.kind() == Some(git2::ObjectType::Tree) => {
                    self.repo.find_tree(e.id()).map_err(msg)?
                }
                _ => return Ok(None),
            }
        };
        let mut names: Vec<String> = tree
            .iter()
            .filter_map(|e| e.name().ok().map(str::to_string))
            .collect();
        names.sort();
        Ok(Some(names))
    }
}

/// The desired state at a commit; `None` when it is invalid there (never deployed).
fn spec_at(repo: &Repository, desired: &Desired, oid: Oid) -> Result<Option<Spec>, String> {
    let tree = CommitTree::new(repo, oid)?;
    Ok(desired.load(&tree).ok())
}

/// Walks HEAD's first-parent history for the last commit that changed `service`'s image.
pub(crate) fn last_change(
    checkout: &Checkout,
    desired: &Desired,
    service: &str,
) -> Result<LastChange, String> {
    let repo = &checkout.repo;
    let head = checkout.head()?;
    let now = spec_at(repo, desired, head)?
        .ok_or("the desired state at HEAD is invalid; fix it first (berth validate)")?;
    let new = now
        .services
        .get(service)
        .ok_or_else(|| format!("no service `{service}` in the desired state at HEAD"))?
        .image
        .clone();
    let mut child = head;
    for _ in 0..MAX_WALK {
        let commit = repo.find_commit(child).map_err(msg)?;
        let Ok(parent) = commit.parent_id(0) else {
            return Err(format!(
                "no earlier image of `{service}`: it runs `{}` since the first commit",
                new.full
            ));
        };
        match spec_at(repo, desired, parent)? {
            None => {}
            Some(spec) => match spec.services.get(service) {
                None => {
                    return Err(format!(
                        "`{service}` first appears in commit {}; there is no earlier image \
                         to go back to",
                        short(child)
                    ))
                }
                Some(s) if s.image.full != new.full => {
                    let author = commit.author();
                    let date = time::OffsetDateTime::from_unix_timestamp(author.when().seconds())
                        .ok()
                        .and_then(|d| {
                            d.format(&time::format_description::well_known::Rfc3339)
                                .ok()
                        })
                        .unwrap_or_default();
                    return Ok(LastChange {
                        commit: child,
                        parent,
                        author: format!(
                            "{} <{}>",
                            author.name().unwrap_or("?"),
                            author.email().unwrap_or("?")
                        ),
                        date,
                        summary: commit.summary().ok().flatten().unwrap_or("").to_string(),
                        old: s.image.clone(),
                        new,
                    });
                }
                Some(_) => {}
            },
        }
        child = parent;
    }
    Err(format!(
        "no change of `{service}`'s image in the last {MAX_WALK} commits"
    ))
}

/// The files of `change.commit`'s revert applied to HEAD, when it reverts cleanly,
/// touches only desired-state files and changes nothing but the images it changed.
/// `None` otherwise: then the previous image is written as a bump would.
pub(crate) fn clean_revert(
    checkout: &Checkout,
    desired: &Desired,
    change: &LastChange,
) -> Result<Option<BTreeMap<String, Vec<u8>>>, String> {
    let repo = &checkout.repo;
    let commit = repo.find_commit(change.commit).map_err(msg)?;
    if commit.parent_count() != 1 {
        return Ok(None);
    }
    let head = repo.find_commit(checkout.head()?).map_err(msg)?;
    let mut index = repo.revert_commit(&commit, &head, 0, None).map_err(msg)?;
    if index.has_conflicts() {
        return Ok(None);
    }
    let reverted = index.write_tree_to(repo).map_err(msg)?;
    // What the revert changes against HEAD: every path must be a desired-state file.
    let base = CommitTree::new(repo, head.id())?;
    let allowed = desired.yaml_files(&base)?;
    let dotenv = super::join_inside(&desired.project_dir(&base)?, super::DOTENV);
    let diff = repo
        .diff_tree_to_tree(
            Some(&head.tree().map_err(msg)?),
            Some(&repo.find_tree(reverted).map_err(msg)?),
            None,
        )
        .map_err(msg)?;
    let mut files = BTreeMap::new();
    let after = CommitTree::new(repo, reverted)?;
    for delta in diff.deltas() {
        let Some(path) = delta.new_file().path().and_then(|p| p.to_str()) else {
            return Ok(None);
        };
        if !(allowed.iter().any(|a| a == path) || dotenv.as_deref() == Some(path)) {
            return Ok(None);
        }
        match after.read(path)? {
            Some(bytes) => files.insert(path.to_string(), bytes),
            None => return Ok(None),
        };
    }
    // The desired state after the revert: HEAD's, with only the images of `commit` back.
    let (Some(before), Some(at), Some(now)) = (
        spec_at(repo, desired, change.parent)?,
        spec_at(repo, desired, change.commit)?,
        spec_at(repo, desired, head.id())?,
    ) else {
        return Ok(None);
    };
    let mut expected = now.clone();
    for (name, svc) in &at.services {
        let Some(old) = before.services.get(name) else {
            continue;
        };
        if old.image != svc.image {
            if let Some(e) = expected.services.get_mut(name) {
                e.image = old.image.clone();
            }
        }
    }
    let overlay = Overlay {
        base: &base,
        files: &files,
    };
    match desired.load(&overlay) {
        Ok(spec) if spec == expected && spec != now => Ok(Some(files)),
        _ => Ok(None),
    }
}

/// The first 12 digits of a commit.
pub(crate) fn short(oid: Oid) -> String {
    oid.to_string()[..12].to_string()
}

fn msg(e: git2::Error) -> String {
    e.message().to_string()
}
