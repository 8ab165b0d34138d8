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

/// Who holds the lock, as its holder wrote it: `PID ROLE`. `None` while the holder has
/// taken the lock but not yet written its name (the file is empty for that moment).
fn holder(file: &mut File) -> Option<(String, String)> {
    let mut text = String::new();
    let _ = file.rewind();
    let _ = file.read_to_string(&mut text);
    let mut words = text.split_whitespace();
    let pid = words.next()?.to_string();
    // A lock written before roles were recorded is an agent's.
    let role = words.next().unwrap_or("agent").to_string();
    Some((pid, role))
}

/// How long a holder may leave its name unwritten before it is reported as unknown.
const UNNAMED_HOLDER_GRACE: Duration = Duration::from_secs(2);

impl StateLock {
    /// [`StateLock::acquire`] on a blocking thread, for async callers: the wait sleeps
    /// between tries.
    pub async fn acquire_async(
        state_dir: std::path::PathBuf,
        role: &'static str,
        wait: Duration,
    ) -> Result<Self, String> {
        tokio::task::spawn_blocking(move || Self::acquire(&state_dir, role, wait))
            .await
            .map_err(|e| e.to_string())?
    }

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
                    let named = holder(&mut file);
                    if named.is_none() && started.elapsed() < UNNAMED_HOLDER_GRACE.min(wait) {
                        // Taken a moment ago; its holder is writing its name.
                        std::thread::sleep(Duration::from_millis(10));
                        continue;
                    }
                    let (pid, held_by) = named.unwrap_or_else(|| ("?".into(), "process".into()));
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The holder takes the lock, then writes its name: a second berth that looks in
    /// between reads an empty file and must not take it for an agent's.
    #[test]
    fn a_holder_that_has_not_written_its_name_yet_is_not_taken_for_an_agent() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("agent.lock");
        let held = File::create(&path).unwrap();
        held.lock().unwrap();
        let writer = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(20));
            let mut held = held;
            write!(held, "4242 apply").unwrap();
            std::thread::sleep(Duration::from_millis(100));
            drop(held);
        });
        let lock = StateLock::acquire(dir.path(), "agent", Duration::from_secs(30));
        writer.join().unwrap();
        assert!(lock.is_ok(), "{:?}", lock.err());
        let mut text = String::new();
        File::open(&path)
            .unwrap()
            .read_to_string(&mut text)
            .unwrap();
        assert_eq!(text, format!("{} agent", std::process::id()));
    }
}
