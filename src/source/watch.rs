//! Watches a local repository for commits: notify reports several events per write, so
//! they are debounced into one trigger.

use std::path::Path;
use std::time::Duration;

use notify::{RecursiveMode, Watcher};
use tokio::sync::mpsc;

/// Quiet time after the last file event before a commit is assumed complete.
pub(crate) const DEBOUNCE: Duration = Duration::from_millis(40);

/// Starts watching `dir`; every burst of changes sends one `()` on `out`. The watcher
/// lives as long as the returned value.
pub(crate) fn watch(
    dir: &Path,
    out: mpsc::UnboundedSender<()>,
) -> notify::Result<notify::RecommendedWatcher> {
    let (raw_tx, mut raw_rx) = mpsc::unbounded_channel::<()>();
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        if let Ok(e) = event {
            // Reads and object writes do not move a branch; ref updates do.
            let relevant = e.paths.iter().any(|p| {
                let s = p.to_string_lossy();
                !s.contains("/objects/") && !s.ends_with(".lock")
            });
            if relevant && !matches!(e.kind, notify::EventKind::Access(_)) {
                let _ = raw_tx.send(());
            }
        }
    })?;
    watcher.watch(dir, RecursiveMode::Recursive)?;
    tokio::spawn(async move {
        while raw_rx.recv().await.is_some() {
            // Swallow the rest of the burst.
            loop {
                match tokio::time::timeout(DEBOUNCE, raw_rx.recv()).await {
                    Ok(Some(())) => continue,
                    Ok(None) => return,
                    Err(_) => break,
                }
            }
            if out.send(()).is_err() {
                return;
            }
        }
    });
    Ok(watcher)
}
