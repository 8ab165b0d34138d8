//! One berth at a time per state dir: `berth agent` and `berth apply` take the same
//! exclusive lock on `<state-dir>/agent.lock`, released by the kernel when the process
//! ends however it ends. Two of them at once would race for container names, the
//! ledger and the git clone.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Why the state dir could not be locked.
#[derive(Debug, thiserror::Error)]
pub(crate) enum LockError {
    /// An agent runs on the state dir already: a second one never waits.
    #[error("another berth agent (pid {pid}) already runs with state dir {}; one agent per state dir", state_dir.display())]
    AgentRunning {
        /// The running agent.
        pid: String,
        /// The state dir.
        state_dir: PathBuf,
    },
    /// Another berth held the lock for longer than this one would wait.
    #[error("berth {held_by} (pid {pid}) still holds {} after {wait:?}; one berth at a time works on a state dir (--lock-timeout)", path.display())]
    TimedOut {
        /// What the holder is (`agent`, `apply`, `adopt`).
        held_by: String,
        /// Its process.
        pid: String,
        /// The lock file.
        path: PathBuf,
        /// How long this one waited.
        wait: Duration,
    },
    /// The state dir could not be made.
    #[error("state dir {}: {error}", path.display())]
    StateDir {
        /// The state dir.
        path: PathBuf,
        /// Why.
        error: std::io::Error,
    },
    /// The lock file could not be used.
    #[error("{}: {error}", path.display())]
    Io {
        /// The lock file.
        path: PathBuf,
        /// Why.
        error: std::io::Error,
    },
    /// The blocking task that waits for the lock died.
    #[error("waiting for the state-dir lock: {0}")]
    Task(#[from] tokio::task::JoinError),
}

/// The held lock; dropping it releases it.
pub(crate) struct StateLock {
    _file: File,
}

/// Who holds the lock, as its holder wrote it: `PID ROLE`. `None` while the holder has
/// taken the lock but not yet written its name (the file is empty or holds only the pid
/// for that moment); the pid alone once `settled`, as a lock written before roles were
/// recorded, is an agent's.
fn holder(file: &mut File, settled: bool) -> Option<(String, String)> {
    let mut text = String::new();
    file.rewind().ok()?;
    file.read_to_string(&mut text).ok()?;
    let mut words = text.split_whitespace();
    let pid = words.next()?.to_string();
    let role = match words.next() {
        Some(role) => role.to_string(),
        None if settled => "agent".to_string(),
        None => return None,
    };
    Some((pid, role))
}

/// How long a holder may leave its name unwritten before it is reported as unknown.
const UNNAMED_HOLDER_GRACE: Duration = Duration::from_secs(2);

impl StateLock {
    /// [`StateLock::acquire`] on a blocking thread, for async callers: the wait sleeps
    /// between tries.
    pub(crate) async fn acquire_async(
        state_dir: std::path::PathBuf,
        role: &'static str,
        wait: Duration,
    ) -> Result<Self, LockError> {
        tokio::task::spawn_blocking(move || Self::acquire(&state_dir, role, wait)).await?
    }

    /// Takes the lock for `role` (`agent` or `apply`). A second agent beside an agent
    /// fails at once; otherwise the lock is awaited for up to `wait`, with one message
    /// on stderr saying who holds it.
    pub(crate) fn acquire(state_dir: &Path, role: &str, wait: Duration) -> Result<Self, LockError> {
        std::fs::create_dir_all(state_dir).map_err(|error| LockError::StateDir {
            path: state_dir.to_path_buf(),
            error,
        })?;
        let path = state_dir.join("agent.lock");
        let io = |error| LockError::Io {
            path: path.clone(),
            error,
        };
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(io)?;
        let started = Instant::now();
        let mut said = false;
        loop {
            match file.try_lock() {
                Ok(()) => break,
                Err(TryLockError::WouldBlock) => {
                    let settled = started.elapsed() >= UNNAMED_HOLDER_GRACE.min(wait);
                    let named = holder(&mut file, settled);
                    if named.is_none() && !settled {
                        // Taken a moment ago; its holder is writing its name.
                        std::thread::sleep(Duration::from_millis(10));
                        continue;
                    }
                    let (pid, held_by) = named.unwrap_or_else(|| ("?".into(), "process".into()));
                    if role == "agent" && held_by == "agent" {
                        return Err(LockError::AgentRunning {
                            pid,
                            state_dir: state_dir.to_path_buf(),
                        });
                    }
                    if started.elapsed() >= wait {
                        return Err(LockError::TimedOut {
                            held_by,
                            pid,
                            path,
                            wait,
                        });
                    }
                    if !said {
                        eprintln!(
                            "waiting for berth {held_by} (pid {pid}), which holds {}",
                            path.display()
                        );
                        said = true;
                    }
                    std::thread::sleep(Duration::from_millis(100));
                }
                Err(TryLockError::Error(e)) => return Err(io(e)),
            }
        }
        file.set_len(0).map_err(io)?;
        file.rewind().map_err(io)?;
        // One write of the whole name: a waiter never reads the pid without the role.
        if let Err(e) = file.write_all(format!("{} {role}", std::process::id()).as_bytes()) {
            // Held all the same; another berth waiting for it names no holder.
            tracing::warn!(path = %path.display(), error = %e, "state-dir lock holder not recorded");
        }
        Ok(Self { _file: file })
    }
}
