//! One agent per state dir: an exclusive lock on `<state-dir>/agent.lock`, released
//! by the kernel when the process ends however it ends.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, Write};
use std::path::Path;

/// The held lock; dropping it releases it.
pub struct StateLock {
    _file: File,
}

impl StateLock {
    /// Takes the lock or says who holds it.
    pub fn acquire(state_dir: &Path) -> Result<Self, String> {
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
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let mut pid = String::new();
                let _ = file.read_to_string(&mut pid);
                return Err(format!(
                    "another berth agent (pid {}) already runs with state dir {}; one agent per state dir",
                    pid.trim(),
                    state_dir.display()
                ));
            }
            Err(TryLockError::Error(e)) => return Err(format!("{}: {e}", path.display())),
        }
        file.set_len(0).map_err(|e| e.to_string())?;
        file.rewind().map_err(|e| e.to_string())?;
        let _ = write!(file, "{}", std::process::id());
        Ok(Self { _file: file })
    }
}
