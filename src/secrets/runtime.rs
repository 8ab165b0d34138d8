//! Decrypted secret files on the host: written only below berth's runtime directory
//! (`--runtime-dir`, `/run/berth` by default), which must be a tmpfs, so that no
//! plaintext ever reaches a disk, the state directory or a backup. Each file is named by
//! a digest of its service, owner and content, mode 0400, in a directory of mode 0700,
//! and bind-mounted read-only into the container; a reboot forgets them all, and the
//! agent writes them again before it starts a container.

use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// The default runtime directory.
pub(crate) const DEFAULT_RUNTIME_DIR: &str = "/run/berth";

/// `statfs` magic numbers of memory-backed file systems.
const TMPFS_MAGIC: i64 = 0x0102_1994;
const RAMFS_MAGIC: i64 = 0x8584_58f6;

/// True when `dir` lies on a tmpfs (or ramfs).
pub(crate) fn on_tmpfs(dir: &Path) -> bool {
    use std::os::unix::ffi::OsStrExt;
    let Ok(c) = std::ffi::CString::new(dir.as_os_str().as_bytes()) else {
        return false;
    };
    let mut st: libc::statfs = unsafe { std::mem::zeroed() };
    // SAFETY: `c` is a valid NUL-terminated path and `st` a writable statfs.
    if unsafe { libc::statfs(c.as_ptr(), &mut st) } != 0 {
        return false;
    }
    let kind = st.f_type as i64;
    kind == TMPFS_MAGIC || kind == RAMFS_MAGIC
}

/// The directory of a project's decrypted files.
pub(crate) fn project_dir(runtime_dir: &Path, project: &str) -> PathBuf {
    runtime_dir.join("secrets").join(project)
}

/// Makes `dir` (mode 0700) and each missing parent, refusing a symlink in its place.
fn private_dir(dir: &Path) -> Result<(), String> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| format!("{}: {e}", dir.display()))?;
    let meta = dir
        .symlink_metadata()
        .map_err(|e| format!("{}: {e}", dir.display()))?;
    if !meta.is_dir() {
        return Err(format!("{} is not a directory", dir.display()));
    }
    if meta.permissions().mode() & 0o077 != 0 {
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
            .map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    Ok(())
}

/// One decrypted secret file of a service's container.
pub(crate) struct Decrypted<'a> {
    /// The project.
    pub project: &'a str,
    /// The service whose containers mount it.
    pub service: &'a str,
    /// The secret's name.
    pub name: &'a str,
    /// Its content.
    pub plain: &'a [u8],
    /// The container's user (uid, gid); root when `None`.
    pub owner: Option<(u32, u32)>,
}

impl Decrypted<'_> {
    /// Where [`Decrypted::write_in`] writes it: named by a digest of the service, the
    /// secret's name, its content and its owner.
    pub(crate) fn path_in(&self, runtime_dir: &Path) -> PathBuf {
        use sha2::{Digest, Sha256};
        let (uid, gid) = self.owner.unwrap_or((0, 0));
        let mut h = Sha256::new();
        for part in [self.service.as_bytes(), self.name.as_bytes(), self.plain] {
            h.update((part.len() as u64).to_le_bytes());
            h.update(part);
        }
        h.update(uid.to_le_bytes());
        h.update(gid.to_le_bytes());
        project_dir(runtime_dir, self.project).join(hex::encode(&h.finalize()[..16]))
    }

    /// Writes it under `runtime_dir` and returns its path. An existing file of the same
    /// digest is reused. Fails closed when the runtime directory is not a tmpfs: a
    /// decrypted secret never goes to a disk.
    pub(crate) fn write_in(&self, runtime_dir: &Path) -> Result<PathBuf, String> {
        let (name, plain, owner) = (self.name, self.plain, self.owner);
        let refuse = |why: String| format!("secret `{name}`: {why}");
        private_dir(runtime_dir).map_err(refuse)?;
        if !on_tmpfs(runtime_dir) {
            return Err(refuse(format!(
                "the runtime directory {} is not a tmpfs, and decrypted secrets are written only to memory; mount one there (`mount -t tmpfs -o mode=700 tmpfs {}`) or point --runtime-dir at one",
                runtime_dir.display(),
                runtime_dir.display()
            )));
        }
        let dir = project_dir(runtime_dir, self.project);
        private_dir(&dir).map_err(refuse)?;
        let (uid, gid) = owner.unwrap_or((0, 0));
        let path = self.path_in(runtime_dir);
        let digest = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        if let Ok(meta) = path.symlink_metadata() {
            if meta.is_file() && meta.len() == plain.len() as u64 && meta.uid() == uid {
                return Ok(path);
            }
            std::fs::remove_file(&path).map_err(|e| refuse(format!("{}: {e}", path.display())))?;
        }
        let tmp = dir.join(format!(".{digest}.{}", std::process::id()));
        let _ = std::fs::remove_file(&tmp);
        let write = || -> std::io::Result<()> {
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o400)
                .custom_flags(libc::O_NOFOLLOW)
                .open(&tmp)?;
            f.write_all(plain)?;
            if owner.is_some() {
                std::os::unix::fs::fchown(&f, Some(uid), Some(gid))?;
            }
            std::fs::rename(&tmp, &path)
        };
        write().map_err(|e| {
            let _ = std::fs::remove_file(&tmp);
            refuse(format!("{}: {e}", path.display()))
        })?;
        Ok(path)
    }
}

/// Removes the decrypted files of `project` that are not in `keep`: a rotated secret's
/// old plaintext does not outlive the rollout that replaced it.
pub(crate) fn prune(runtime_dir: &Path, project: &str, keep: &[PathBuf]) {
    let dir = project_dir(runtime_dir, project);
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return;
    };
    for e in entries.flatten() {
        let path = e.path();
        if !keep.contains(&path) {
            if let Err(err) = std::fs::remove_file(&path) {
                tracing::debug!(path = %path.display(), error = %err, "decrypted secret not removed");
            }
        }
    }
}
