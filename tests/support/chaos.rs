//! Faults beyond a killed process: a small file system that fills up, and the berth
//! binary as an image, for running the agent as a container beside what it manages.
//! (Restarting an engine's dockerd is [`super::Engine::restart`].)

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::Engine;

/// A tmpfs of a fixed size, unmounted when dropped (and its mount point removed when
/// this made it). Needs root.
pub struct Tmpfs {
    path: PathBuf,
    _made: Option<tempfile::TempDir>,
}

impl Tmpfs {
    /// Mounts a tmpfs of `size` (as `mount -o size=` takes it: `4m`) on a new directory.
    pub fn mount(size: &str) -> Tmpfs {
        let dir = tempfile::Builder::new()
            .prefix("berth-tmpfs-")
            .tempdir()
            .expect("create mount point");
        let mut t = Self::mount_at(dir.path(), size);
        t._made = Some(dir);
        t
    }

    /// Mounts a tmpfs of `size` at `dir` (made when missing), for a directory a program
    /// keeps inside another one (`<state-dir>/repos`).
    pub fn mount_at(dir: &Path, size: &str) -> Tmpfs {
        fs::create_dir_all(dir).expect("create mount point");
        let out = Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0755"),
                "tmpfs",
            ])
            .arg(dir)
            .stdin(Stdio::null())
            .output()
            .expect("run mount");
        assert!(
            out.status.success(),
            "mount a tmpfs on {} (needs root): {}",
            dir.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        Tmpfs {
            path: dir.to_path_buf(),
            _made: None,
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn filler(&self) -> PathBuf {
        self.path.join(".filler")
    }

    /// Fills the file system up to its last byte with one file (kept until
    /// [`Tmpfs::free`]); returns how many bytes that took.
    pub fn fill(&self) -> u64 {
        let mut f = OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.filler())
            .expect("open filler");
        let chunk = vec![0u8; 64 << 10];
        let mut written = 0u64;
        // Whole chunks, then single bytes: the last block fills too.
        for size in [chunk.len(), 4096, 1] {
            while let Ok(n) = f.write(&chunk[..size]) {
                if n == 0 {
                    break;
                }
                written += n as u64;
            }
        }
        written
    }

    /// Removes the file [`Tmpfs::fill`] wrote.
    pub fn free(&self) {
        fs::remove_file(self.filler()).expect("remove filler");
    }

    /// Whether a write of one more byte fails with "no space left on device".
    pub fn is_full(&self) -> bool {
        let probe = self.path.join(".probe");
        let full = match fs::write(&probe, b"x") {
            Ok(()) => false,
            Err(e) => e.raw_os_error() == Some(libc::ENOSPC),
        };
        let _ = fs::remove_file(&probe);
        full
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount")
            .arg("-l")
            .arg(&self.path)
            .stdin(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

/// The berth binary of this build as an image on `engine` (`berth-test/agent:TAG`,
/// TAG from the binary's size and modification time): the binary, the shared
/// libraries `ldd` names and the loader, at their own paths, plus `/tmp`; entrypoint
/// `/berth` (SIGTERM, docker's default stop signal, is what the agent handles). Built
/// with `docker import`, as the demo builds its images.
pub fn agent_image(engine: &Engine) -> String {
    let exe = Path::new(env!("CARGO_BIN_EXE_berth"));
    let meta = fs::metadata(exe).expect("berth binary");
    let stamp = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map(|d| d.as_secs())
        .unwrap_or_default();
    let reference = format!("berth-test/agent:{}-{stamp}", meta.len());
    if engine.docker_ok(["image", "inspect", &reference]) {
        return reference;
    }
    let work = tempfile::Builder::new()
        .prefix("berth-test-agent-")
        .tempdir()
        .expect("create image directory");
    let root = work.path().join("rootfs");
    let ldd = Command::new("ldd").arg(exe).output().expect("run ldd");
    let mut files: Vec<(PathBuf, PathBuf)> = vec![(exe.to_path_buf(), root.join("berth"))];
    for word in String::from_utf8_lossy(&ldd.stdout).split_whitespace() {
        if word.starts_with('/') {
            files.push((word.into(), root.join(word.trim_start_matches('/'))));
        }
    }
    for (from, to) in &files {
        fs::create_dir_all(to.parent().expect("file has a parent")).expect("create lib dir");
        fs::copy(from, to).unwrap_or_else(|e| panic!("copy {}: {e}", from.display()));
    }
    // A test build carries hundreds of MB of debug information the image does not need.
    let stripped = Command::new("strip")
        .arg("--strip-debug")
        .arg(root.join("berth"))
        .status()
        .is_ok_and(|s| s.success());
    assert!(stripped, "strip --strip-debug of the berth binary failed");
    let tmp = root.join("tmp");
    fs::create_dir_all(&tmp).expect("create /tmp");
    fs::set_permissions(&tmp, fs::Permissions::from_mode(0o1777)).expect("chmod /tmp");
    let tar = work.path().join("rootfs.tar");
    let ok = Command::new("tar")
        .args(["--numeric-owner", "--owner=0", "--group=0", "-C"])
        .arg(&root)
        .arg("-cf")
        .arg(&tar)
        .arg(".")
        .status()
        .expect("run tar")
        .success();
    assert!(ok, "tar of the agent's root filesystem failed");
    engine.docker_stdout([
        "import",
        "--change",
        r#"ENTRYPOINT ["/berth"]"#,
        &tar.display().to_string(),
        &reference,
    ]);
    reference
}
