//! What goes wrong while a service's steps are carried out, as values: the caller
//! matches on them (a shutdown is not a failure), and renders them, masked, for reports.

use super::container::SpecError;
use super::gate::GateFailure;
use crate::runtime::RuntimeError;

/// Why one step of a service's rollout failed.
#[derive(Debug, thiserror::Error)]
pub(super) enum StepError {
    /// berth is stopping: nothing new starts; the slots moved so far stay moved.
    #[error("berth is stopping; the rest of this rollout continues on its next start")]
    Shutdown,
    /// A container the plan named is gone (removed by hand meanwhile).
    #[error("container {0} vanished")]
    Vanished(String),
    /// A container name berth needs is held by a container it does not manage.
    #[error("container name {0} is taken by a container berth does not manage (or of another project); rename or remove it")]
    Conflict(String),
    /// The replica's container spec could not be built on this host.
    #[error(transparent)]
    Spec(#[from] SpecError),
    /// An engine call failed.
    #[error("{doing}: {source}")]
    Engine {
        /// What berth was doing (`start shop-api-1-next`).
        doing: String,
        /// What the engine said.
        source: RuntimeError,
    },
    /// A replica did not pass its health gate.
    #[error("{replica} {failure}")]
    Gate {
        /// Which replica (`new replica shop-api-1-next`).
        replica: String,
        /// How it failed.
        #[source]
        failure: GateFailure,
    },
    /// A start-first slot failed before its old replica was touched.
    #[error("{0}; the old replica kept serving")]
    OldKeptServing(Box<StepError>),
    /// A stop-first slot failed after its old replica stopped; it was started again, or
    /// did not come back.
    #[error("{failure}; {}", restarted_or(.restart))]
    OldRestarted {
        /// Why the slot failed.
        failure: Box<StepError>,
        /// Why the old replica did not come back, when it did not.
        restart: Option<Box<StepError>>,
    },
}

fn restarted_or(restart: &Option<Box<StepError>>) -> String {
    match restart {
        None => "the old replica was restarted".into(),
        Some(e) => format!("the old replica did not come back: {e}"),
    }
}

impl StepError {
    /// The error of an engine call made while `doing` something.
    pub(crate) fn engine(doing: impl Into<String>) -> impl FnOnce(RuntimeError) -> StepError {
        let doing = doing.into();
        move |source| StepError::Engine { doing, source }
    }

    /// The error of a `replica` that did not pass its gate.
    pub(crate) fn gate(replica: impl Into<String>) -> impl FnOnce(GateFailure) -> StepError {
        let replica = replica.into();
        move |failure| StepError::Gate { replica, failure }
    }

    /// True when berth stopping cut the rollout short: not a failure, never rolled back.
    pub(crate) fn is_shutdown(&self) -> bool {
        matches!(self, StepError::Shutdown)
    }
}

/// What a rollback did, slot by slot.
#[derive(Debug, Default)]
pub(super) struct Rollback {
    /// Slots back on their previous replica, by name.
    pub restored: Vec<String>,
    /// Slots that could not be put back (they keep their new replica), and why.
    pub failed: Vec<(String, StepError)>,
    /// Steps that failed once a slot was back (a rename, stopping or removing the new
    /// replica): what serves is right, and the next run tidies up.
    pub leftovers: Vec<StepError>,
}

impl Rollback {
    /// True when every slot is back on its previous replica.
    pub(super) fn complete(&self) -> bool {
        self.failed.is_empty()
    }

    /// What to add to the failure's message: nothing for a clean rollback, else which
    /// slots could not be put back, which were, and what is left for the next run.
    pub(super) fn describe(&self) -> Option<String> {
        let mut parts = Vec::new();
        if !self.failed.is_empty() {
            let failed: Vec<String> = self
                .failed
                .iter()
                .map(|(slot, e)| format!("{slot}: {e}"))
                .collect();
            parts.push(format!("rolling back failed: {}", failed.join("; ")));
            if !self.restored.is_empty() {
                parts.push(format!("rolled back: {}", self.restored.join(", ")));
            }
        }
        if !self.leftovers.is_empty() {
            let left: Vec<String> = self.leftovers.iter().map(ToString::to_string).collect();
            parts.push(format!("left for the next run: {}", left.join("; ")));
        }
        (!parts.is_empty()).then(|| parts.join("; "))
    }
}

/// Why a service's steps stopped short: the error, and, for a replacement rolled back,
/// what the rollback did.
#[derive(Debug)]
pub(super) struct StepFailure {
    /// What failed, unmasked (the caller masks it).
    pub error: StepError,
    /// `Some` when the replacement was rolled back (`on_failure: rollback`).
    pub rollback: Option<Rollback>,
}

impl From<StepError> for StepFailure {
    fn from(error: StepError) -> Self {
        Self {
            error,
            rollback: None,
        }
    }
}
