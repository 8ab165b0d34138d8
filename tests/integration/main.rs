//! One integration binary: the real `berth` executable against the real Docker engine,
//! a loopback registry and images the harness builds itself.

#[path = "../support/mod.rs"]
mod support;

mod agent;
mod apply;
mod browser;
mod chaos_engine;
mod chaos_fleet;
mod compose;
mod compose_options;
mod demo;
mod fleet;
mod harness;
mod jobs;
mod listener;
mod migrate;
mod ops;
mod page;
mod plan;
mod reference;
mod registry_auth;
mod release;
mod reliability;
mod secrets;
mod soak;
mod ssh;
mod switch;
mod traffic;
mod trust;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

/// What one run of the binary gave.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

/// Runs `berth` with the given arguments.
pub fn berth<I, S>(args: I) -> Run
where
    I: IntoIterator<Item = S>,
    S: AsRef<std::ffi::OsStr>,
{
    let out = Command::new(env!("CARGO_BIN_EXE_berth"))
        .args(args)
        .env("RUST_LOG", "info")
        .output()
        .expect("berth runs");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Starts `berth` in the background.
pub fn spawn_berth(args: &[&str]) -> Child {
    Command::new(env!("CARGO_BIN_EXE_berth"))
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("berth starts")
}

/// A desired-state directory, a state dir and an env dir (`--env-dir`) for one test.
#[derive(Default)]
pub struct Stack {
    pub dir: TempDir,
    pub state: TempDir,
    pub env: TempDir,
}

/// A temporary directory removed when dropped.
pub struct TempDir(tempfile::TempDir);

impl Default for TempDir {
    fn default() -> Self {
        Self(tempfile::tempdir().unwrap())
    }
}

impl TempDir {
    pub fn path(&self) -> &Path {
        self.0.path()
    }
}

impl Stack {
    pub fn new() -> Self {
        Self::default()
    }

    /// Writes `berth.yaml`.
    pub fn write(&self, yaml: &str) -> &Self {
        std::fs::write(self.dir.path().join("berth.yaml"), yaml).unwrap();
        self
    }

    /// Writes a repository file next to `berth.yaml`.
    pub fn file(&self, rel: &str, content: &str) -> &Self {
        let p = self.dir.path().join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, content).unwrap();
        self
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn state_path(&self) -> PathBuf {
        self.state.path().to_path_buf()
    }

    /// The arguments of `berth apply` for this stack, with short drain.
    pub fn apply_args(&self) -> Vec<String> {
        vec![
            "apply".into(),
            "--file".into(),
            self.path().display().to_string(),
            "--state-dir".into(),
            self.state_path().display().to_string(),
            "--drain".into(),
            "300ms".into(),
            "--env-dir".into(),
            self.env.path().display().to_string(),
        ]
    }

    pub fn apply(&self) -> Run {
        berth(self.apply_args())
    }

    pub fn plan(&self) -> Run {
        berth([
            "plan",
            "--file",
            &self.path().display().to_string(),
            "--env-dir",
            &self.env.path().display().to_string(),
        ])
    }
}
