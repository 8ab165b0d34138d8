//! Incident freezes: `berth pause [SERVICE]` and `berth resume [SERVICE]` write
//! `<state-dir>/paused.json`; the agent reads it at every reconcile. A paused service is
//! neither updated nor healed.

use std::collections::BTreeSet;
use std::path::Path;

use serde::{Deserialize, Serialize};

/// What is paused.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct PauseState {
    /// Every service.
    #[serde(default)]
    pub all: bool,
    /// These services.
    #[serde(default)]
    pub services: BTreeSet<String>,
}

impl PauseState {
    fn path(state_dir: &Path) -> std::path::PathBuf {
        state_dir.join("paused.json")
    }

    /// Reads the state; nothing is paused when the file is missing or unreadable.
    pub(crate) fn load(state_dir: &Path) -> Self {
        std::fs::read(Self::path(state_dir))
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default()
    }

    /// Writes the state atomically.
    pub(crate) fn save(&self, state_dir: &Path) -> std::io::Result<()> {
        std::fs::create_dir_all(state_dir)?;
        let tmp = state_dir.join("paused.json.tmp");
        std::fs::write(
            &tmp,
            serde_json::to_vec_pretty(self).map_err(std::io::Error::other)?,
        )?;
        std::fs::rename(tmp, Self::path(state_dir))
    }

    /// True when the service is paused, alone or with everything.
    pub(crate) fn is_paused(&self, service: &str) -> bool {
        self.all || self.services.contains(service)
    }

    /// Pauses one service, or everything.
    pub(crate) fn pause(&mut self, service: Option<&str>) {
        match service {
            Some(s) => {
                self.services.insert(s.to_string());
            }
            None => self.all = true,
        }
    }

    /// Resumes one service, or everything (which also clears single pauses).
    pub(crate) fn resume(&mut self, service: Option<&str>) {
        match service {
            Some(s) => {
                self.services.remove(s);
            }
            None => *self = Self::default(),
        }
    }
}
