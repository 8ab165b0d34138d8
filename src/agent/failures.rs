//! Failed targets: a (service, spec hash) that failed is retried on the backoff
//! schedule, and after the last attempt held until the desired state changes. No hot
//! loop, ever.

use std::collections::BTreeMap;
use std::time::Duration;

use tokio::time::Instant;

use crate::executor::RetryPolicy;
use crate::plan::Desired;
use crate::status::FailedTarget;

#[derive(Debug, Clone)]
struct Target {
    hash: String,
    /// Failures counted against `--max-attempts`.
    attempts: u32,
    /// Failures that were not the release's (the registry could not be reached): they
    /// lengthen the backoff, and never hold the target.
    waits: u32,
    next: Option<Instant>,
}

/// What the agent remembers of failures, by service.
#[derive(Debug, Default)]
pub(crate) struct FailedTargets {
    targets: BTreeMap<String, Target>,
}

impl FailedTargets {
    /// Forgets targets whose service now wants another spec (or is gone).
    pub(crate) fn forget_changed(&mut self, desired: &Desired) {
        self.targets
            .retain(|name, t| desired.services.get(name).is_some_and(|d| d.hash == t.hash));
    }

    /// Services to hold back now, with why.
    pub(crate) fn held(&self, desired: &Desired, now: Instant) -> Vec<(String, String)> {
        self.targets
            .iter()
            .filter(|(name, _)| desired.services.contains_key(*name))
            .filter_map(|(name, t)| match t.next {
                None => Some((
                    name.clone(),
                    format!(
                        "failed {} times; held until the desired state changes",
                        t.attempts
                    ),
                )),
                Some(at) if at > now => Some((
                    name.clone(),
                    format!("failed; next attempt in {:.0}s", (at - now).as_secs_f64()),
                )),
                Some(_) => None,
            })
            .collect()
    }

    /// Counts a failure (against `--max-attempts` when `counted`); returns the wait
    /// before the next attempt, or `None` when the target has used up its attempts. The
    /// wait grows with every failure, counted or not.
    pub(crate) fn record_failure(
        &mut self,
        service: &str,
        hash: &str,
        policy: &RetryPolicy,
        now: Instant,
        counted: bool,
    ) -> Option<Duration> {
        let fresh = || Target {
            hash: hash.to_string(),
            attempts: 0,
            waits: 0,
            next: None,
        };
        let t = self
            .targets
            .entry(service.to_string())
            .or_insert_with(fresh);
        if t.hash != hash {
            *t = fresh();
        }
        if counted {
            t.attempts += 1;
        } else {
            t.waits += 1;
        }
        let delay = if t.attempts >= policy.max_attempts.max(1) {
            None
        } else {
            policy
                .backoff()
                .delays()
                .nth((t.attempts + t.waits) as usize - 1)
        };
        t.next = delay.map(|d| now + d);
        delay
    }

    /// Forgets everything: a new commit is a new desired state, and each of its targets
    /// deserves a fresh set of attempts.
    pub(crate) fn clear_all(&mut self) {
        self.targets.clear();
    }

    /// Forgets a service that converged.
    pub(crate) fn clear(&mut self, service: &str) {
        self.targets.remove(service);
    }

    /// The targets for status.
    pub(crate) fn list(&self) -> Vec<FailedTarget> {
        self.targets
            .iter()
            .map(|(name, t)| FailedTarget {
                service: name.clone(),
                spec: t.hash.clone(),
                attempts: t.attempts,
                given_up: t.next.is_none(),
            })
            .collect()
    }
}
