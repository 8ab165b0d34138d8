//! Mounts whose source is in the repository: a file (`./Caddyfile`) or a whole directory
//! (`./static`), read from the commit when the desired state is loaded. The content is
//! what is mounted, never the checkout: a later commit cannot change what a running
//! container sees, and nothing outside the repository is reachable.

use std::sync::Arc;

use super::context::Ctx;
use super::location::KeyPath;
use super::spec::{MountSource, RepoDir, RepoFile};
use super::tree::Limited;

/// The largest repository file berth mounts into a container.
pub(crate) const MAX_MOUNTED_FILE_BYTES: usize = 4 << 20;
/// The most files one mounted repository directory may hold.
pub(crate) const MAX_DIR_FILES: usize = 1000;
/// The most bytes one mounted repository directory may hold, all files together.
pub(crate) const MAX_DIR_BYTES: usize = 32 << 20;
/// How deep directories may nest below a mounted one.
const MAX_DIR_DEPTH: usize = 16;

/// Reads the repository path `rel` (written `source` in the file) as a mount source: a
/// file, or a directory with everything below it. Reports and returns `None` when it is
/// missing, too large, or leads outside the repository.
pub(crate) fn read(
    ctx: &mut Ctx,
    file: usize,
    path: &KeyPath,
    source: &str,
    rel: &str,
) -> Option<MountSource> {
    let listed = match ctx.tree.list_dir(rel) {
        Ok(l) => l,
        Err(e) => {
            ctx.error(file, path, e);
            return None;
        }
    };
    if listed.is_some() {
        let mut dir = RepoDir {
            path: rel.to_string(),
            files: Vec::new(),
        };
        let mut bytes = 0;
        return match walk(ctx, rel, "", 0, &mut dir.files, &mut bytes) {
            Ok(()) => Some(MountSource::RepoDir(dir)),
            Err(e) => {
                ctx.error(file, path, format!("`{source}`: {e}"));
                None
            }
        };
    }
    match ctx.tree.read_limited(rel, MAX_MOUNTED_FILE_BYTES) {
        Ok(Some(Limited::TooLarge)) => {
            ctx.error(
                file,
                path,
                format!(
                    "`{source}` is larger than {} MiB; mount large data from a volume",
                    MAX_MOUNTED_FILE_BYTES >> 20
                ),
            );
            None
        }
        Ok(Some(Limited::Bytes(bytes))) => Some(MountSource::RepoFile(RepoFile {
            path: rel.to_string(),
            content: bytes.into(),
        })),
        Ok(None) => {
            ctx.error(file, path, format!("`{source}` does not exist in the repository (looked for `{rel}`); commit it or fix the path"));
            None
        }
        Err(e) => {
            ctx.error(file, path, e);
            None
        }
    }
}

/// Reads every file below `root/sub` into `out` (paths relative to `root`), within the
/// limits on count, size and depth.
fn walk(
    ctx: &Ctx,
    root: &str,
    sub: &str,
    depth: usize,
    out: &mut Vec<(String, Arc<[u8]>)>,
    bytes: &mut usize,
) -> Result<(), String> {
    if depth > MAX_DIR_DEPTH {
        return Err(format!(
            "directories nest deeper than {MAX_DIR_DEPTH} levels; mount large trees from a volume"
        ));
    }
    let here = if sub.is_empty() {
        root.to_string()
    } else {
        format!("{root}/{sub}")
    };
    let names = ctx.tree.list_dir(&here)?.unwrap_or_default();
    for name in names {
        // A crafted git tree may hold any entry name: only plain names are written out.
        if name.is_empty() || name == "." || name == ".." || name.contains(['/', '\\', '\0']) {
            return Err(format!(
                "holds an entry named {name:?}, which cannot be written as a file"
            ));
        }
        let rel = if sub.is_empty() {
            name.clone()
        } else {
            format!("{sub}/{name}")
        };
        let full = format!("{root}/{rel}");
        if ctx.tree.list_dir(&full)?.is_some() {
            walk(ctx, root, &rel, depth + 1, out, bytes)?;
            continue;
        }
        if out.len() >= MAX_DIR_FILES {
            return Err(format!(
                "holds more than {MAX_DIR_FILES} files; mount large trees from a volume"
            ));
        }
        let left = MAX_DIR_BYTES - *bytes;
        match ctx.tree.read_limited(&full, left.min(MAX_MOUNTED_FILE_BYTES))? {
            Some(Limited::Bytes(b)) => {
                *bytes += b.len();
                out.push((rel, b.into()));
            }
            Some(Limited::TooLarge) => {
                return Err(format!(
                    "`{rel}` takes it over {} MiB (at most {} MiB per file, {} MiB in all); mount large data from a volume",
                    MAX_DIR_BYTES >> 20,
                    MAX_MOUNTED_FILE_BYTES >> 20,
                    MAX_DIR_BYTES >> 20
                ))
            }
            // Listed but gone: a dangling symlink, or a file replaced since the listing.
            None => return Err(format!("`{rel}` cannot be read (a dangling symlink?)")),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::model::{load_tree, MemTree, MountSource};

    fn load(files: &[(&str, &[u8])]) -> crate::model::Loaded {
        let tree = files
            .iter()
            .fold(MemTree::new(), |t, (p, b)| t.with(p, b.to_vec()));
        load_tree(&tree, "stack/compose.yaml").unwrap()
    }

    const STACK: &str = "name: shop
services:
  web:
    image: ghcr.io/o/web:1
    volumes: [\"./static:/srv/static\"]
";

    #[test]
    fn a_directory_is_mounted_with_everything_below_it() {
        let l = load(&[
            ("stack/compose.yaml", STACK.as_bytes()),
            ("stack/static/index.html", b"<h1>hi</h1>"),
            ("stack/static/css/site.css", b"body{}"),
        ]);
        let spec = l.spec.unwrap_or_else(|| panic!("{}", l.diagnostics));
        let MountSource::RepoDir(d) = &spec.services["web"].volumes[0].source else {
            panic!("{:?}", spec.services["web"].volumes);
        };
        assert_eq!(d.path, "stack/static");
        let files: Vec<(&str, &[u8])> = d.files.iter().map(|(p, b)| (p.as_str(), &b[..])).collect();
        assert_eq!(
            files,
            [
                ("css/site.css", &b"body{}"[..]),
                ("index.html", &b"<h1>hi</h1>"[..])
            ]
        );
    }

    #[test]
    fn a_directory_over_the_limits_is_refused_with_its_place() {
        let big = vec![b'x'; super::MAX_MOUNTED_FILE_BYTES];
        let mut files: Vec<(String, Vec<u8>)> = vec![("stack/compose.yaml".into(), STACK.into())];
        for i in 0..9 {
            files.push((format!("stack/static/{i}.bin"), big.clone()));
        }
        let refs: Vec<(&str, &[u8])> = files.iter().map(|(p, b)| (p.as_str(), &b[..])).collect();
        let l = load(&refs);
        assert!(l.spec.is_none());
        let text = l.diagnostics.to_string();
        assert!(
            text.contains("stack/compose.yaml:5:15: error: services.web.volumes[0]: `./static`: `8.bin` takes it over 32 MiB"),
            "{text}"
        );
    }
}
