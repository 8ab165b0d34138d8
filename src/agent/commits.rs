//! The desired state from the repository: fetch, verify, load, validate; a head that
//! fails any of these is refused and the last good commit stays.

use super::reconcile::Loop;
use crate::plan::Desired;
use crate::source::{CommitInfo, SourceError};

/// Why a new head is not applied, before its desired state is even looked at.
#[derive(Debug, thiserror::Error)]
enum Refusal {
    /// The repository could not be read at that commit.
    #[error(transparent)]
    Source(#[from] SourceError),
    /// Signatures are required and this one is missing or not allowed.
    #[error("commit {commit} refused: {check}; only commits signed by an allowed key are applied")]
    Unsigned {
        /// The commit, short.
        commit: String,
        /// What the signature check found.
        check: String,
    },
    /// An older signed commit pushed back over a newer one.
    #[error("commit {commit} refused: it does not descend from {last}, the last signed commit applied (a rewind or force-push); push a new signed commit on top of it (`git revert` makes one)")]
    Rewind {
        /// The commit, short.
        commit: String,
        /// The last signed commit applied, short.
        last: String,
    },
}

/// How far back along the branch's first parents the agent looks for a valid commit
/// when the head is refused and it has no later good one.
const FALL_BACK_DEPTH: usize = 100;

/// How long one fall-back may spend examining commits. Each commit is examined at most
/// once until the host's inputs are read again (see [`Loop::refused`]), so a walk cut
/// short goes on past the commits it refused at the next head.
const FALL_BACK_BUDGET: std::time::Duration = std::time::Duration::from_secs(10);

/// A commit that passed every check, ready to become the last good one.
type Accepted = (CommitInfo, Desired);

/// A commit that did not: what is known of it, and why.
type Refused = (Option<CommitInfo>, String);

impl Loop {
    /// Fetches the branch; a new head is verified and validated, and becomes the last
    /// good commit only when it passes. A refused head leaves the newest valid commit
    /// before it (first parents, back to the last good one): an agent that started,
    /// or missed commits, while the head was invalid converges what the others do.
    pub(super) async fn refresh_desired(&mut self) {
        let source = self.config.source.clone();
        let fetched = tokio::task::spawn_blocking(move || source.fetch()).await;
        let oid = match fetched {
            Ok(Ok(oid)) => oid,
            Ok(Err(e)) => {
                self.metrics.git_fetch_errors.inc();
                tracing::warn!(error = %e, "fetch failed; keeping the last good commit");
                self.status.write().await.fetch_failed(e.to_string());
                return;
            }
            Err(e) => {
                tracing::error!(error = %e, "fetch task failed");
                return;
            }
        };
        self.status.write().await.fetch_ok();
        let sha = oid.to_string();
        if self.last_seen.as_deref() == Some(sha.as_str()) {
            return;
        }
        self.last_seen = Some(sha.clone());
        match self.examine(oid, true).await {
            Ok((info, desired)) => self.accept(info, desired, true).await,
            Err((info, message)) => {
                self.remember_refused(oid);
                self.refuse_commit(&sha, info.as_ref(), message).await;
                self.fall_back(oid).await;
            }
        }
    }

    /// Remembers a refused commit, so that a fall-back does not load it again. Bounded:
    /// a walk adds at most [`FALL_BACK_DEPTH`], and a resync clears the set.
    fn remember_refused(&mut self, oid: git2::Oid) {
        if self.refused.len() >= 8 * FALL_BACK_DEPTH {
            self.refused.clear();
        }
        self.refused.insert(oid);
    }

    /// After the head `head` was refused: the newest valid commit among its first
    /// parents becomes the last good one, unless the last good one comes first.
    async fn fall_back(&mut self, head: git2::Oid) {
        let keep = self.last_good.as_ref().map(|(i, _)| i.sha.clone());
        let source = self.config.source.clone();
        let parents =
            tokio::task::spawn_blocking(move || source.first_parents(head, FALL_BACK_DEPTH)).await;
        let parents = match parents {
            Ok(Ok(p)) => p,
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "the commits before the head could not be read; keeping the last good commit");
                return;
            }
            Err(_) => return,
        };
        let started = std::time::Instant::now();
        for oid in parents {
            if keep.as_deref() == Some(oid.to_string().as_str()) {
                return;
            }
            if self.refused.contains(&oid) {
                continue;
            }
            if started.elapsed() > FALL_BACK_BUDGET {
                tracing::warn!(head = %&head.to_string()[..12], budget_s = FALL_BACK_BUDGET.as_secs(), "the head is refused and no valid commit before it was found within the budget; keeping the last good commit");
                return;
            }
            match self.examine(oid, false).await {
                Ok((info, desired)) => {
                    tracing::warn!(commit = %info.short(), head = %&head.to_string()[..12], action = "fall-back", "the head is refused; converging the newest valid commit before it");
                    self.accept(info, desired, false).await;
                    return;
                }
                Err(_) => self.remember_refused(oid),
            }
        }
    }

    /// Verifies, loads and validates the desired state at `oid`. Refusals of the head
    /// are logged as errors; those of the commits before it, looked at when the head is
    /// refused, at debug level.
    async fn examine(&mut self, oid: git2::Oid, head: bool) -> Result<Accepted, Refused> {
        self.metrics.commits_examined.inc();
        let sha = oid.to_string();
        let refused = |info: Option<CommitInfo>, message: String| -> Refused {
            if head {
                tracing::error!(commit = %sha, "commit not applied: {message}; keeping the last good commit");
            } else {
                tracing::debug!(commit = %sha, "{message}");
            }
            (info, message)
        };
        let source = self.config.source.clone();
        let load = self.config.load.clone();
        let signers = self.config.allowed_signers.clone();
        let signed_head = signed_head_file(&self.config.state_dir);
        let outcome = tokio::task::spawn_blocking(
            move || -> Result<(CommitInfo, crate::model::Loaded), Refusal> {
                let info = source.commit_info(oid)?;
                if let Some(allowed) = &signers {
                    let check = source.verify(oid, allowed)?;
                    if !check.is_valid() {
                        return Err(Refusal::Unsigned {
                            commit: info.short().to_string(),
                            check: check.to_string(),
                        });
                    }
                    // Signed history moves forward only: an older signed commit pushed back
                    // (a downgrade by force-push) is refused.
                    let last = std::fs::read_to_string(&signed_head)
                        .ok()
                        .and_then(|s| git2::Oid::from_str(s.trim()).ok());
                    if let Some(last) = last {
                        if !source.descends_from(oid, last).unwrap_or(false) {
                            return Err(Refusal::Rewind {
                                commit: info.short().to_string(),
                                last: last.to_string()[..12].to_string(),
                            });
                        }
                    }
                }
                let loaded = source.load(oid, &load)?;
                Ok((info, loaded))
            },
        )
        .await;
        let (info, loaded) = match outcome {
            Ok(Ok(x)) => x,
            Ok(Err(e)) => return Err(refused(None, e.to_string())),
            // A load that panicked is a refused commit like any other.
            Err(e) => {
                return Err(refused(
                    None,
                    format!("commit {sha} could not be loaded: {e}"),
                ))
            }
        };
        let pin = self.pinned_project();
        match (loaded.spec, pin) {
            (Some(spec), Some((pinned, by_flag))) if pinned != spec.project => {
                let message = if by_flag {
                    format!(
                        "commit {} names project `{}`; this agent manages only `{pinned}` (--project)",
                        info.short(),
                        spec.project,
                    )
                } else {
                    format!(
                        "commit {} names project `{}`; this state dir belongs to `{pinned}` (recorded in {} at its first commit); to move it to `{}`, start the agent with `--project {}`",
                        info.short(),
                        spec.project,
                        project_file(&self.config.state_dir).display(),
                        spec.project,
                        spec.project,
                    )
                };
                Err(refused(Some(info), message))
            }
            (Some(spec), _) => {
                if head {
                    for w in loaded.diagnostics.warnings() {
                        tracing::warn!(commit = %info.short(), "{}", w.headline());
                    }
                }
                // Env files are read here: off the runtime's threads.
                let host = self.config.host.clone();
                match tokio::task::spawn_blocking(move || Desired::resolve_for(spec, &host)).await {
                    Ok(d) => Ok((info, d)),
                    Err(e) => {
                        let message = format!("commit {} could not be resolved: {e}", info.short());
                        Err(refused(Some(info), message))
                    }
                }
            }
            (None, _) => {
                let errors: Vec<String> =
                    loaded.diagnostics.errors().map(|d| d.headline()).collect();
                let message = format!("commit {} is invalid: {}", info.short(), errors.join("; "));
                Err(refused(Some(info), message))
            }
        }
    }

    /// `info` becomes the last good commit. The head's own acceptance also clears the
    /// error shown; a commit fallen back to leaves the head's refusal in status.
    async fn accept(&mut self, info: CommitInfo, desired: Desired, head: bool) {
        let project = &desired.spec.project;
        if recorded_project(&self.config.state_dir).as_ref() != Some(project) {
            let file = project_file(&self.config.state_dir);
            if let Err(e) = std::fs::write(&file, project) {
                tracing::warn!(file = %file.display(), error = %e, "project not recorded; a commit naming another project is refused only with --project");
            }
        }
        // A commit message is the pusher's text: a URL with a password in it is masked.
        let summary = crate::urls::redact_urls_in(&info.summary);
        tracing::info!(commit = %info.short(), summary = %summary, action = "new-commit", "desired state loaded");
        if self.config.allowed_signers.is_some() {
            let file = signed_head_file(&self.config.state_dir);
            if let Err(e) = std::fs::write(&file, &info.sha) {
                tracing::warn!(file = %file.display(), error = %e, "last signed commit not recorded; a rewind past it is refused only while the agent runs");
            }
        }
        if head {
            self.status.write().await.valid_commit(&info);
        } else {
            self.status.write().await.applied_commit = Some(info.clone());
        }
        self.failures.clear_all();
        self.last_good = Some((info, desired));
    }

    /// The only project this agent may manage, and whether `--project` said so: the
    /// flag, else the project its state dir recorded at its first accepted commit (so a
    /// commit cannot make the agent manage, and prune, another project on the host).
    fn pinned_project(&self) -> Option<(String, bool)> {
        if let Some(p) = &self.config.project {
            return Some((p.clone(), true));
        }
        recorded_project(&self.config.state_dir).map(|p| (p, false))
    }

    /// A head that cannot be applied (unreadable, unsigned, invalid): counted,
    /// notified and shown in status; the last good commit stays.
    async fn refuse_commit(
        &mut self,
        sha: &str,
        info: Option<&crate::source::CommitInfo>,
        message: String,
    ) {
        self.metrics.invalid_commits.inc();
        let project = self
            .last_good
            .as_ref()
            .map(|(_, d)| d.spec.project.clone())
            .unwrap_or_default();
        let ev = crate::notify::Event {
            commit_summary: info.map(|i| i.summary.clone()),
            commit_author: info.map(|i| i.author.clone()),
            ..self.event(
                crate::notify::EventKind::InvalidCommit,
                &project,
                None,
                Some(sha),
                None,
                message.clone(),
            )
        };
        self.config.notifier.send(ev);
        self.config.commit_status.failed(sha, &message);
        self.status.write().await.invalid_commit(sha, message);
    }
}

/// Where the agent records the last signed commit it accepted, so that a rewind is
/// refused across restarts too.
/// Where the agent records the project its state dir belongs to.
fn project_file(state_dir: &std::path::Path) -> std::path::PathBuf {
    state_dir.join("project")
}

fn recorded_project(state_dir: &std::path::Path) -> Option<String> {
    std::fs::read_to_string(project_file(state_dir))
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
}

fn signed_head_file(state_dir: &std::path::Path) -> std::path::PathBuf {
    state_dir.join("signed-head")
}
