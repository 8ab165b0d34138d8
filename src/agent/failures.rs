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
    attempts: u32,
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

    /// Counts a failure; returns the wait before the next attempt, or `None` when the
    /// target has used up its attempts.
    pub(crate) fn record_failure(
        &mut self,
        service: &str,
        hash: &str,
        policy: &RetryPolicy,
        now: Instant,
    ) -> Option<Duration> {
        let t = self.targets.entry(service.to_string()).or_insert(Target {
            hash: hash.to_string(),
            attempts: 0,
            next: None,
        });
        if t.hash != hash {
            *t = Target {
                hash: hash.to_string(),
                attempts: 0,
                next: None,
            };
        }
        t.attempts += 1;
        let delay = policy.schedule().nth(t.attempts as usize - 1);
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
