//! Host-side rotation: the env directory of the project is watched (notify, debounced
//! as the repository's watch is), and a change there, or the periodic resync, reads the
//! last good commit's env files and secrets again. A service whose content changed gets
//! a new spec hash and rolls, health-gated, like any release; the others do not move.
//! The log names the files that changed, never a value.

use std::path::PathBuf;

use tokio::sync::mpsc;

use super::reconcile::Loop;
use super::Trigger;
use crate::plan::{describe_change, Desired};

/// The watch of one env directory; dropped, it stops.
pub(super) struct EnvWatch {
    dir: PathBuf,
    _watcher: notify::RecommendedWatcher,
}

impl Loop {
    /// Watches the env directory of the last good commit's project, when it is not
    /// watched yet (it may not exist: then it is looked for again next time).
    pub(super) fn watch_env_dir(&mut self) {
        let Some((_, desired)) = &self.last_good else {
            return;
        };
        let dir = crate::plan::env_file::env_dir(
            self.config.host.env_dir.as_deref(),
            &desired.spec.project,
        );
        if self.env_watch.as_ref().is_some_and(|w| w.dir == dir) {
            return;
        }
        self.env_watch = None;
        let (tx, mut rx) = mpsc::unbounded_channel();
        match crate::source::watch::watch(&dir, tx) {
            Ok(watcher) => {
                let triggers = self.triggers.clone();
                tokio::spawn(async move {
                    while rx.recv().await.is_some() {
                        if triggers.send(Trigger::EnvDir).is_err() {
                            return;
                        }
                    }
                });
                tracing::debug!(dir = %dir.display(), "watching the env directory");
                self.env_watch = Some(EnvWatch {
                    dir,
                    _watcher: watcher,
                });
            }
            Err(e) => {
                tracing::debug!(dir = %dir.display(), error = %e, "env directory not watched; read again at each resync");
            }
        }
    }

    /// Reads the env files and secrets of the last good commit again; the services whose
    /// content changed get their new spec (and roll in this reconcile).
    pub(super) async fn reread_env(&mut self) {
        // A commit refused for what the host holds may load now.
        self.refused.clear();
        let Some((info, desired)) = self.last_good.clone() else {
            return;
        };
        let host = self.config.host.clone();
        let spec = desired.spec.clone();
        let fresh =
            match tokio::task::spawn_blocking(move || Desired::resolve_for(spec, &host)).await {
                Ok(d) => d,
                Err(e) => {
                    tracing::error!(error = %e, "env files not read again");
                    return;
                }
            };
        let mut changed = false;
        let pairs = fresh
            .services
            .iter()
            .map(|(n, s)| (n, s, desired.services.get(n)))
            .chain(fresh.jobs.iter().map(|(n, s)| (n, s, desired.jobs.get(n))));
        for (name, new, old) in pairs {
            if let Some(old) = old.filter(|o| o.hash != new.hash) {
                changed = true;
                let reasons = describe_change(&old.parts, &new.parts).join(", ");
                tracing::info!(service = %name, reasons = %reasons, action = "env-changed", "host-side env files or secrets changed; rolling");
            }
        }
        if changed {
            self.last_good = Some((info, fresh));
        }
    }
}
