//! `berth bump` and `berth rollback`: a release as a commit to the desired-state
//! repository. The image's scalar (or the `.env` line of the variable it reads) is
//! edited at its bytes, the result checked with the loader, committed, and pushed with
//! a replay on a rejected push. The registry may be asked first whether the tag exists.

mod edit;
pub(crate) mod git;
pub(crate) mod registry;
mod release;
pub(crate) mod rollback;
mod site;

use std::collections::BTreeMap;

use crate::model::tree::{join_inside, parent_dir};
use crate::model::{load_tree_files, ImageRef, LoadOptions, RepoTree, Spec};

pub(crate) use edit::Target;
pub(crate) use release::{release, Released};

/// The committed `.env`'s name, beside the compose file (as the compose reader has it).
const DOTENV: &str = ".env";

/// A bump worked out, not yet written: the files' new contents and what moves.
#[derive(Debug, Clone)]
pub(crate) struct Change {
    /// Repository-relative path → new content.
    pub files: BTreeMap<String, Vec<u8>>,
    /// The service asked for.
    pub service: String,
    /// Every service whose image changes (the one asked for among them): name, old, new.
    pub moved: Vec<(String, ImageRef, ImageRef)>,
    /// Where the edit is: `deploy/compose.yaml:12` or `deploy/.env:3 (API_TAG)`.
    pub written_at: String,
}

impl Change {
    /// The image the service runs after the bump.
    pub(crate) fn new_image(&self) -> &ImageRef {
        &self.entry().2
    }

    /// The image the service runs before it.
    pub(crate) fn old_image(&self) -> &ImageRef {
        &self.entry().1
    }

    fn entry(&self) -> &(String, ImageRef, ImageRef) {
        self.moved
            .iter()
            .find(|(s, _, _)| *s == self.service)
            .expect("the service asked for moves")
    }

    /// The services that move with the one asked for.
    pub(crate) fn companions(&self) -> Vec<&str> {
        self.moved
            .iter()
            .map(|(s, _, _)| s.as_str())
            .filter(|s| *s != self.service)
            .collect()
    }

    /// The commit message: `bump api: sha-abc → sha-def`, the services that move
    /// together and where the edit is.
    pub(crate) fn message(&self, verb: &str) -> String {
        let names: Vec<&str> = std::iter::once(self.service.as_str())
            .chain(self.companions())
            .collect();
        let (old, new) = (self.old_image(), self.new_image());
        let mut msg = format!(
            "{verb} {}: {} → {}\n\n",
            names.join(", "),
            shown(old, new),
            shown(new, old)
        );
        for (s, o, n) in &self.moved {
            msg.push_str(&format!("{s}: {} → {}\n", o.full, n.full));
        }
        msg.push_str(&format!("Written at {}.\n", self.written_at));
        msg
    }
}

/// `image`'s tag when `other` has the same repository, else the whole reference.
fn shown(image: &ImageRef, other: &ImageRef) -> String {
    if image.repository != other.repository {
        return image.full.clone();
    }
    match (&image.tag, &image.digest) {
        (_, Some(d)) => format!("@{d}"),
        (Some(t), None) => t.clone(),
        (None, None) => "latest".into(),
    }
}

/// The desired state as `berth validate` reads it: the repository-relative config
/// paths, with the host's allowances for the check.
#[derive(Debug, Clone)]
pub(crate) struct Desired {
    /// The file(s) or directory, repository-relative; several are compose files merged.
    pub configs: Vec<String>,
    /// The loader's options (host paths allowed; no host `.env`).
    pub options: LoadOptions,
}

impl Desired {
    /// Loads it from `tree`; the spec or every diagnostic as the error.
    pub(crate) fn load(&self, tree: &dyn RepoTree) -> Result<Spec, String> {
        let loaded =
            load_tree_files(tree, &self.configs, &self.options).map_err(|e| e.to_string())?;
        loaded.spec.ok_or_else(|| {
            let errors: String = loaded
                .diagnostics
                .errors()
                .map(|d| format!("{}\n", d.render()))
                .collect();
            format!("{errors}the desired state is invalid")
        })
    }

    /// The YAML files that may set a service's image, in the order their settings win
    /// (a later file overrides an earlier one).
    fn yaml_files(&self, tree: &dyn RepoTree) -> Result<Vec<String>, String> {
        let mut files = Vec::new();
        for config in &self.configs {
            // A directory of a compose project: the one file the loader reads there.
            if let Some(found) = crate::model::compose::detect::compose_file(tree, config)
                .map_err(|e| e.to_string())?
                .filter(|f| f.path != *config)
            {
                files.push(found.path);
                continue;
            }
            match tree.list_dir(config)? {
                Some(names) => files.extend(
                    names
                        .into_iter()
                        .filter(|n| !n.starts_with('.'))
                        .filter(|n| n.ends_with(".yaml") || n.ends_with(".yml"))
                        .map(|n| join_inside(config, &n).unwrap_or(n)),
                ),
                None => files.push(config.clone()),
            }
        }
        Ok(files)
    }

    /// The directory of the committed `.env`: the first config's.
    fn project_dir(&self, tree: &dyn RepoTree) -> Result<String, String> {
        let first = self.configs.first().map(String::as_str).unwrap_or("");
        Ok(match tree.list_dir(first)? {
            Some(_) => first.to_string(),
            None => parent_dir(first).to_string(),
        })
    }
}

/// Works out the bump of `service` to `target` on `tree` and checks the result with the
/// loader: nothing is written. `None` when the service already runs that image.
pub(crate) fn prepare(
    tree: &dyn RepoTree,
    desired: &Desired,
    service: &str,
    target: &Target,
) -> Result<Option<Change>, String> {
    let before = desired
        .load(tree)
        .map_err(|e| format!("{e} before the bump; fix it first (berth validate)"))?;
    let Some(current) = before.services.get(service) else {
        let names: Vec<&str> = before.services.keys().map(String::as_str).collect();
        return Err(format!(
            "no service `{service}` in the desired state; its services: {}",
            names.join(", ")
        ));
    };
    let resolved = current.image.clone();
    let expected = target.applied_to(&resolved)?;
    if expected.full == resolved.full {
        return Ok(None);
    }
    let mut site = None;
    for file in desired.yaml_files(tree)? {
        let Some(bytes) = tree.read(&file)? else {
            continue;
        };
        let text = String::from_utf8(bytes).map_err(|_| format!("{file}: not UTF-8"))?;
        if let Some(found) = site::find_image(&text, service).map_err(|e| format!("{file}: {e}"))? {
            site = Some((file, text, found));
        }
    }
    let Some((file, text, found)) = site else {
        return Err(format!(
            "the image of `{service}` is not written under `services.{service}.image` in \
             {}; berth bump edits it there (not through extends or include)",
            desired.configs.join(", ")
        ));
    };
    let mut files = BTreeMap::new();
    let written =
        edit::classify(&found.value).map_err(|e| format!("{file}:{}: {e}", found.line))?;
    let written_at = match &written {
        edit::Written::Literal => {
            let value = edit::literal(&found.value, target)?;
            let mut out = text.clone();
            out.replace_range(found.span.clone(), &site::render(&value, found.quote));
            files.insert(file.clone(), out.into_bytes());
            format!("{file}:{}", found.line)
        }
        edit::Written::WholeVar(name) | edit::Written::TagVar(name) => {
            let value = edit::variable(&written, &resolved, target)?;
            let dotenv = join_inside(&desired.project_dir(tree)?, DOTENV).unwrap_or(DOTENV.into());
            let old = match tree.read(&dotenv)? {
                Some(b) => String::from_utf8(b).map_err(|_| format!("{dotenv}: not UTF-8"))?,
                None => String::new(),
            };
            let (out, line) = edit::set_dotenv(&old, name, &value);
            files.insert(dotenv.clone(), out.into_bytes());
            match line {
                Some(l) => format!("{dotenv}:{l} ({name}, read by {file}:{})", found.line),
                None => format!("{dotenv} ({name} added, read by {file}:{})", found.line),
            }
        }
    };
    let overlay = Overlay {
        base: tree,
        files: &files,
    };
    let after = desired
        .load(&overlay)
        .map_err(|e| format!("{e} after the bump, which was not written"))?;
    let now = &after
        .services
        .get(service)
        .ok_or_else(|| format!("`{service}` is gone after the edit; nothing was written"))?
        .image;
    if now.full != expected.full {
        return Err(format!(
            "after editing {written_at}, `{service}` would run `{}`, not `{}` (another file \
             or variable overrides it); nothing was written",
            now.full, expected.full
        ));
    }
    let moved = before
        .services
        .iter()
        .filter_map(|(name, old)| {
            let new = &after.services.get(name)?.image;
            (new.full != old.image.full).then(|| (name.clone(), old.image.clone(), new.clone()))
        })
        .collect::<Vec<_>>();
    if moved.is_empty() {
        return Err(format!("`{service}` already runs `{}`", expected.full));
    }
    Ok(Some(Change {
        files,
        service: service.to_string(),
        moved,
        written_at,
    }))
}

/// A tree with some files replaced: the desired state as it would be after an edit.
pub(crate) struct Overlay<'a> {
    /// The files as they are.
    pub base: &'a dyn RepoTree,
    /// Repository-relative path → new content.
    pub files: &'a BTreeMap<String, Vec<u8>>,
}

impl RepoTree for Overlay<'_> {
    fn display(&self, path: &str) -> String {
        self.base.display(path)
    }

    fn read(&self, path: &str) -> Result<Option<Vec<u8>>, String> {
        match self.files.get(path) {
            Some(b) => Ok(Some(b.clone())),
            None => self.base.read(path),
        }
    }

    fn list_dir(&self, path: &str) -> Result<Option<Vec<String>>, String> {
        let mut names = self.base.list_dir(path)?;
        for file in self.files.keys() {
            if parent_dir(file) == path {
                let name = file.rsplit('/').next().unwrap_or(file).to_string();
                let list = names.get_or_insert_with(Vec::new);
                if !list.contains(&name) {
                    list.push(name);
                    list.sort();
                }
            }
        }
        Ok(names)
    }
}

#[cfg(test)]
mod tests;
