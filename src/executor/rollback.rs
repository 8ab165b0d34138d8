//! Putting a replacement back: each moved slot returns to the replica it had, which
//! starts again and passes its gate before the new one leaves. Every engine error on
//! the way is kept: a slot that could not be put back is reported as such, and what a
//! slot put back left behind (a name, a replica not removed) is reported for the next
//! run to tidy.

use super::error::{Rollback, StepError};
use super::rollout::{Moved, Rollout};
use crate::model::UpdateOrder;

impl Rollout<'_> {
    /// Puts the previous replicas back, newest move first.
    pub(super) async fn roll_back(&self, moved: Vec<Moved>) -> Rollback {
        let mut report = Rollback::default();
        for m in moved.into_iter().rev() {
            let stable = self.stable(m.slot);
            tracing::warn!(project = self.project, service = self.service(), slot = m.slot, action = "rollback", container = %stable);
            let restored = match self.desired.spec.update.order {
                UpdateOrder::StartFirst => match self.rejoin(&m.prev_id).await {
                    Ok(()) => {
                        let next = format!("{stable}-next");
                        self.rename_kept(&m.new_id, &next, &mut report).await;
                        self.rename_kept(&m.prev_id, &stable, &mut report).await;
                        self.retire_and_remove(&m.new_id, &next, &mut report).await;
                        Ok(())
                    }
                    // The new replica keeps serving in its slot: better than none.
                    Err(e) => {
                        if let Err(gone) = self.engine.remove(&m.prev_id).await {
                            report
                                .leftovers
                                .push(StepError::engine(format!("remove {stable}-prev"))(gone));
                        }
                        Err(e)
                    }
                },
                UpdateOrder::StopFirst => {
                    let next = format!("{stable}-next");
                    self.rename_kept(&m.new_id, &next, &mut report).await;
                    self.retire_and_remove(&m.new_id, &next, &mut report).await;
                    self.rename_kept(&m.prev_id, &stable, &mut report).await;
                    self.rejoin(&m.prev_id).await
                }
            };
            match restored {
                Ok(()) => report.restored.push(stable),
                Err(e) => {
                    // The reason may quote the replica's output: the caller logs it masked.
                    tracing::error!(
                        service = self.service(),
                        slot = m.slot,
                        "slot not rolled back"
                    );
                    report.failed.push((stable, e));
                }
            }
        }
        report
    }

    /// Renames a container, keeping the error for the report.
    async fn rename_kept(&self, id: &str, name: &str, report: &mut Rollback) {
        if let Err(e) = self.engine.rename(id, name).await {
            report
                .leftovers
                .push(StepError::engine(format!("rename to {name}"))(e));
        }
    }

    /// Retires and removes the replica rolled back from, keeping what failed.
    async fn retire_and_remove(&self, id: &str, name: &str, report: &mut Rollback) {
        if let Err(e) = self
            .drain()
            .retire(&[id], self.desired.spec.stop_grace)
            .await
        {
            report.leftovers.push(e);
        }
        if let Err(e) = self.engine.remove(id).await {
            report
                .leftovers
                .push(StepError::engine(format!("remove {name}"))(e));
        }
    }

    /// Puts a stop-first slot's old replica back after `failure`; the error says
    /// whether it came back.
    pub(super) async fn restore_stopped(
        &self,
        id: &str,
        stable: &str,
        failure: StepError,
    ) -> StepError {
        self.drain().rename_or_log(id, stable).await;
        StepError::OldRestarted {
            failure: Box::new(failure),
            restart: self.rejoin(id).await.err().map(Box::new),
        }
    }

    /// Starts a previous replica again, lets it pass its gate and puts it back into the
    /// alias; says what went wrong when it does not come back.
    async fn rejoin(&self, id: &str) -> Result<(), StepError> {
        self.drain().leave(id, false).await;
        self.engine
            .start(id)
            .await
            .map_err(StepError::engine("previous replica not started again"))?;
        self.gate()
            .pass(self.engine, id)
            .await
            .map_err(StepError::gate("previous replica"))?;
        self.join(id, id).await
    }
}
