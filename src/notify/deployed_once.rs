//! Announcing a deploy once per commit and service.

use std::collections::{HashSet, VecDeque};

/// How many (commit, service) pairs are remembered: far more than one commit's
/// services, yet bounded on an agent that runs for months.
pub(super) const DEPLOYED_ONCE_CAPACITY: usize = 10_000;

/// Deduplicates `Deployed` events: once per (commit, service), since every reconcile
/// re-confirms a converged service and would otherwise announce it again.
#[derive(Debug, Default)]
pub(crate) struct DeployedOnce {
    pub(super) seen: HashSet<(String, String)>,
    order: VecDeque<(String, String)>,
}

impl DeployedOnce {
    /// Nothing seen yet.
    pub(crate) fn new() -> Self {
        Self::default()
    }

    /// True the first time a (commit, service) pair is seen, false after. The oldest
    /// pairs are forgotten past a bound, long after their commit was superseded.
    pub(crate) fn first_time(&mut self, commit: &str, service: &str) -> bool {
        let key = (commit.to_string(), service.to_string());
        if self.seen.contains(&key) {
            return false;
        }
        if self.order.len() >= DEPLOYED_ONCE_CAPACITY {
            if let Some(oldest) = self.order.pop_front() {
                self.seen.remove(&oldest);
            }
        }
        self.seen.insert(key.clone());
        self.order.push_back(key);
        true
    }
}
