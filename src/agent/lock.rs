//! One berth at a time per state dir: `berth agent` and `berth apply` take the same
//! exclusive lock on `<state-dir>/agent.lock`, released by the kernel when the process
//! ends however it ends. Two of them at once would race for container names, the
//! ledger and the git clone.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, Write};
use std::path::Path;
use std::time::{Duration, Instant};

/// The held lock; dropping it releases it.
pub struct StateLock {
    _file: File,
}

/// Who holds the lock, as its holder wrote it: `PID ROLE`.
fn holder(file: &mut File) -> (String, String) {
    let mut text = String::new();
    let _ = file.rewind();
    let _ = file.read_to_string(&mut text);
    let mut words = text.split_whitespace();
    let pid = words.next().unwrap_or("?").to_string();
    // A lock written before roles were recorded is an agent's.
    let role = words.next().unwrap_or("agent").to_string();
    (pid, role)
}

impl StateLock {
    /// Takes the lock for `role` (`agent` or `apply`). A second agent beside an agent
    /// fails at once; otherwise the lock is awaited for up to `wait`, with one message
    /// on stderr saying who holds it.
    pub fn acquire(state_dir: &Path, role: &str, wait: Duration) -> Result<Self, String> {
        std::fs::create_dir_all(state_dir)
            .map_err(|e| format!("state dir {}: {e}", state_dir.display()))?;
        let path = state_dir.join("agent.lock");
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|e| format!("{}: {e}", path.display()))?;
        let started = Instant::now();
        let mut said = false;
        loop {
            match file.try_lock() {
                Ok(()) => break,
                Err(TryLockError::WouldBlock) => {
                    let (pid, held_by) = holder(&mut file);
                    if role == "agent" && held_by == "agent" {
                        return Err(format!(
                            "another berth agent (pid {pid}) already runs with state dir {}; one agent per state dir",
                            state_dir.display()
                        ));
                    }
                    if started.elapsed() >= wait {
                        return Err(format!(
                            "berth {held_by} (pid {pid}) still holds {} after {wait:?}; one berth at a time works on a state dir (--lock-timeout)",
                            path.display()
                        ));
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
                Err(TryLockError::Error(e)) => return Err(format!("{}: {e}", path.display())),
            }
        }
        file.set_len(0).map_err(|e| e.to_string())?;
        file.rewind().map_err(|e| e.to_string())?;
        let _ = write!(file, "{} {role}", std::process::id());
        Ok(Self { _file: file })
    }
}
