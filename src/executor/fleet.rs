//! Staged rollouts across the hosts of a fleet, through the shared ledger: with
//! `update.canary` that host goes first and the others wait until its replicas have been
//! healthy for `update.monitor`; with `update.max_hosts` at most that many hosts replace
//! a service's replicas at once, each holding a lease that lapses unless renewed, so a
//! host that dies mid-rollout holds the fleet up for one lease time at most.

use std::sync::Arc;
use std::time::Duration;

use sha2::{Digest, Sha256};
use tokio::time::Instant;

use super::ApplyControl;

use crate::ledger::{age_of, LeaseAnswer, LeaseKey, Ledger};
use crate::plan::DesiredService;

/// How long a lease lasts unless renewed, by default (`--lease-ttl`); it is renewed
/// every third of that.
pub(crate) const LEASE_TTL: Duration = Duration::from_secs(30);
/// The shortest lease `--lease-ttl` takes: renewed every second at most, a lease never
/// lapses between two renewals that a ledger round trip delays.
pub(crate) const LEASE_TTL_MIN: Duration = Duration::from_secs(3);
/// How often a waiting host looks again.
const POLL: Duration = Duration::from_millis(500);

/// What every host of the fleet runs for a service: its parts without the env file,
/// which is each host's own. Equal targets mean the same release.
pub(crate) fn fleet_target(d: &DesiredService) -> String {
    let mut parts = d.parts.clone();
    parts.env_file = None;
    let bytes = serde_json::to_vec(&parts).unwrap_or_default();
    hex::encode(&Sha256::digest(&bytes)[..12])
}

/// Why a host did not go ahead with a service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Hold {
    /// The fleet is not ready for this host yet (canary, leases) or the ledger did not
    /// answer; the service is tried again soon.
    Wait(String),
    /// berth is stopping.
    Shutdown,
    /// The desired state may have changed: it is looked at before waiting on.
    Superseded,
}

impl Hold {
    /// A pause cut short while waiting for `what`, as the caller reports it.
    pub(crate) fn explain(self, what: &str) -> Hold {
        match self {
            Hold::Superseded => Hold::Wait(format!(
                "{what}; looking at the desired state first, which may have changed"
            )),
            other => other,
        }
    }
}

/// The gate a host passes before it changes a service's replicas.
pub(crate) struct FleetGate<'a> {
    pub ledger: &'a Arc<dyn Ledger>,
    pub project: &'a str,
    pub host: &'a str,
    /// The longest wait before the service is reported as waiting and tried later.
    pub wait: Duration,
    /// How long a lease lasts unless renewed (renewed every third of it).
    pub lease_ttl: Duration,
    /// Ends the wait early (berth stopping, a new commit).
    pub control: &'a ApplyControl,
}

/// A host let through: the lease it holds, if the service limits hosts, and whether it
/// had to wait (then what runs may have changed meanwhile).
pub(crate) struct Admission {
    /// The lease, given back once the service is done.
    pub lease: Option<Lease>,
    /// True when the host waited for the canary or a lease.
    pub waited: bool,
}

/// A lease held while the host replaces a service's replicas; renewed in the
/// background, given back by [`Lease::release`] (or lapsing, should berth die).
pub(crate) struct Lease {
    key: LeaseKey,
    ledger: Arc<dyn Ledger>,
    renew: tokio::task::JoinHandle<()>,
}

impl Lease {
    /// Stops renewing and gives the lease back.
    pub(crate) async fn release(self) {
        self.renew.abort();
        if let Err(e) = self.ledger.release_lease(&self.key).await {
            tracing::warn!(service = %self.key.service, error = %e, "lease not given back; it lapses by itself");
        }
    }
}

impl FleetGate<'_> {
    /// Waits for the canary (unless this is it), then takes a lease when the service
    /// limits how many hosts replace at once.
    pub(crate) async fn admit(&self, d: &DesiredService) -> Result<Admission, Hold> {
        let service = &d.spec.name;
        let target = fleet_target(d);
        let until = Instant::now() + self.wait;
        let mut waited = false;
        if let Some(canary) = d.spec.update.canary.as_deref().filter(|c| *c != self.host) {
            let mut logged = false;
            loop {
                let since = self
                    .ledger
                    .converged_since(self.project, service, canary, &target)
                    .await
                    .map_err(|e| Hold::Wait(e.to_string()))?;
                let healthy_for = since.as_deref().and_then(age_of);
                let what = format!(
                    "waiting for canary host {canary} to run this release healthy for {:?}",
                    d.spec.update.monitor
                );
                match healthy_for {
                    Some(h) if h >= d.spec.update.monitor => break,
                    _ if Instant::now() >= until => return Err(Hold::Wait(what)),
                    _ => {}
                }
                if !logged {
                    tracing::info!(service = %service, canary, action = "canary-wait", "waiting for the canary host");
                    logged = true;
                }
                waited = true;
                pause(POLL, self.control)
                    .await
                    .map_err(|h| h.explain(&what))?;
            }
        }
        let Some(max) = d.spec.update.max_hosts else {
            return Ok(Admission {
                lease: None,
                waited,
            });
        };
        let key = LeaseKey {
            project: self.project.to_string(),
            service: service.clone(),
            host: self.host.to_string(),
        };
        let mut logged = false;
        loop {
            match self
                .ledger
                .acquire_lease(&key, max, self.lease_ttl)
                .await
                .map_err(|e| Hold::Wait(e.to_string()))?
            {
                LeaseAnswer::Held => break,
                LeaseAnswer::Busy(holders) => {
                    let what = format!(
                        "waiting for a rollout lease (max_hosts {max}; held by {})",
                        holders.join(", ")
                    );
                    if Instant::now() >= until {
                        return Err(Hold::Wait(what));
                    }
                    if !logged {
                        tracing::info!(service = %service, holders = %holders.join(","), action = "lease-wait", "waiting for a rollout lease");
                        logged = true;
                    }
                    waited = true;
                    pause(POLL, self.control)
                        .await
                        .map_err(|h| h.explain(&what))?;
                }
            }
        }
        tracing::info!(service = %service, action = "lease-taken");
        let ledger = self.ledger.clone();
        let renew_key = key.clone();
        let ttl = self.lease_ttl;
        let renew = tokio::spawn(async move {
            loop {
                tokio::time::sleep(ttl / 3).await;
                if let Err(e) = ledger.acquire_lease(&renew_key, max, ttl).await {
                    tracing::warn!(service = %renew_key.service, error = %e, "lease not renewed");
                }
            }
        });
        Ok(Admission {
            lease: Some(Lease {
                key,
                ledger: self.ledger.clone(),
                renew,
            }),
            waited,
        })
    }
}

/// Sleeps between two looks at the fleet, unless berth stops or the desired state may
/// have changed (then the caller reports waiting, and the new state is looked at first).
pub(crate) async fn pause(d: Duration, control: &ApplyControl) -> Result<(), Hold> {
    tokio::select! {
        _ = tokio::time::sleep(d) => Ok(()),
        _ = control.cancel.cancelled() => Err(Hold::Shutdown),
        _ = control.supersede.cancelled() => Err(Hold::Superseded),
    }
}
