//! One release: make the commit, push it when asked, and on a rejected push move to
//! the remote's new tip and make the commit again there (the edit re-applied, never a
//! merge), a bounded number of times.

use git2::Oid;

use super::git::{Checkout, Pushed, PUSH_ATTEMPTS};

/// What a release did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Released {
    /// The commit made; `None` when there was nothing to change.
    pub commit: Option<Oid>,
    /// Whether it was pushed.
    pub pushed: bool,
    /// Pushes the remote rejected before one was taken.
    pub rejected: usize,
}

/// Runs `make` (which edits, commits and answers the commit, or `None` when the
/// desired state already says it), and pushes when `push`. `make` runs again on the
/// remote's tip after each rejected push.
pub(crate) fn release(
    checkout: &Checkout,
    push: bool,
    mut make: impl FnMut(&Checkout) -> Result<Option<Oid>, String>,
) -> Result<Released, String> {
    let upstream = match push {
        true => {
            let up = checkout.upstream()?;
            let unpushed = checkout.unpushed(&up)?;
            if unpushed > 0 {
                return Err(format!(
                    "{} has {unpushed} commit(s) not on {}; push or drop them first (a \
                     rejected push replays only the release)",
                    up.branch.trim_start_matches("refs/heads/"),
                    up.tracking.trim_start_matches("refs/remotes/")
                ));
            }
            Some(up)
        }
        false => None,
    };
    let mut rejected = 0;
    loop {
        let commit = make(checkout)?;
        let (Some(up), Some(_)) = (&upstream, commit) else {
            return Ok(Released {
                commit,
                pushed: false,
                rejected,
            });
        };
        match checkout.push(up)? {
            Pushed::Done => {
                return Ok(Released {
                    commit,
                    pushed: true,
                    rejected,
                })
            }
            Pushed::Rejected(words) => {
                rejected += 1;
                if rejected >= PUSH_ATTEMPTS {
                    return Err(format!(
                        "the push was rejected {rejected} times (the remote keeps moving); \
                         the last answer:\n{}",
                        words.trim_end()
                    ));
                }
                let tip = checkout.move_to_upstream(up)?;
                tracing::info!(%tip, attempt = rejected, "push rejected: replaying on the new tip");
                eprintln!(
                    "push rejected (the remote moved); replaying on {}",
                    &tip.to_string()[..12]
                );
            }
        }
    }
}
