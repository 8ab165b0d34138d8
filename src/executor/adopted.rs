//! The record, in the state dir, of the objects an operator handed over with `berth
//! adopt`: the executor may touch them as if berth had created them.

use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// The file, in the state dir, that records what the operator handed over.
pub(crate) const RECORD: &str = "adopted.json";

/// The objects of one project handed over to berth by `berth adopt`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Adopted {
    /// Volumes, by Docker name.
    #[serde(default)]
    pub volumes: BTreeSet<String>,
    /// Networks, by Docker name.
    #[serde(default)]
    pub networks: BTreeSet<String>,
}

impl Adopted {
    /// Where the record of `state_dir` lives.
    pub(crate) fn path(state_dir: &Path) -> PathBuf {
        state_dir.join(RECORD)
    }

    fn read_all(state_dir: &Path) -> io::Result<BTreeMap<String, Adopted>> {
        let path = Self::path(state_dir);
        match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| {
                io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("{}: {e}; it is written by `berth adopt`", path.display()),
                )
            }),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(BTreeMap::new()),
            Err(e) => Err(e),
        }
    }

    /// What was handed over for `project` (nothing when no record exists).
    pub(crate) fn read(state_dir: &Path, project: &str) -> io::Result<Adopted> {
        Ok(Self::read_all(state_dir)?
            .remove(project)
            .unwrap_or_default())
    }

    /// Adds `self` to the record of `project`, keeping what was recorded before; the
    /// file is replaced atomically.
    pub(crate) fn record(&self, state_dir: &Path, project: &str) -> io::Result<()> {
        std::fs::create_dir_all(state_dir)?;
        let mut all = Self::read_all(state_dir)?;
        let entry = all.entry(project.to_string()).or_default();
        entry.volumes.extend(self.volumes.iter().cloned());
        entry.networks.extend(self.networks.iter().cloned());
        let path = Self::path(state_dir);
        let tmp = state_dir.join(format!(".{RECORD}.tmp"));
        let text = serde_json::to_vec_pretty(&all).expect("plain data serializes");
        std::fs::write(&tmp, text)?;
        std::fs::rename(&tmp, &path)
    }
}
