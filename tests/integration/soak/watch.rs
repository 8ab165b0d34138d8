//! The invariants, checked continuously by polling the engines' containers, the
//! migration's own side effect and the ledger while the chaos goes on.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::model::{API_MAX_HOSTS, SERVICES};
use crate::fleet::Fleet;

/// How long a host whose engine came back has to be serving again.
pub(super) const RECOVERY: Duration = Duration::from_secs(120);

/// Whether a host's floor is checked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum HostState {
    Checked,
    /// Its engine is stopped (set before it stops).
    Down,
    /// Its engine is back; until this moment it may still be bringing replicas up.
    Recovering(Instant),
}

/// A replica container on one host, or its replacement.
pub(super) struct Replica {
    pub id: String,
    pub service: String,
    pub healthy: bool,
    /// In its slot (`<project>-<service>-<n>`), not a replacement beside it
    /// (`-next`, `-prev`).
    pub in_slot: bool,
}

/// What the chaos and the checker share.
pub(super) struct Watch {
    pub hosts: Mutex<Vec<HostState>>,
    pub violations: Mutex<Vec<String>>,
    pub stop: AtomicBool,
    pub samples: AtomicU64,
}

impl Watch {
    pub(super) fn new(hosts: usize) -> Watch {
        Watch {
            hosts: Mutex::new(vec![HostState::Checked; hosts]),
            violations: Mutex::default(),
            stop: AtomicBool::new(false),
            samples: AtomicU64::new(0),
        }
    }

    pub(super) fn set(&self, host: usize, state: HostState) {
        self.hosts.lock().unwrap()[host - 1] = state;
    }

    pub(super) fn state(&self, host: usize) -> HostState {
        self.hosts.lock().unwrap()[host - 1]
    }

    /// Records a violation, once: the checker sees a lasting one at every sample.
    pub(super) fn violation(&self, what: String) {
        let mut seen = self.violations.lock().unwrap();
        if !seen.contains(&what) {
            eprintln!("{} INVARIANT VIOLATED: {what}", super::now());
            seen.push(what);
        }
    }

    pub(super) fn violations(&self) -> Vec<String> {
        self.violations.lock().unwrap().clone()
    }

    /// Checks every invariant until [`Watch::stop`] is set.
    pub(super) fn run(&self, f: &Fleet) {
        while !self.stop.load(Ordering::SeqCst) {
            for host in 1..=f.engines.len() {
                self.check_floor(f, host);
            }
            self.check_migrations(f);
            self.check_leases(f);
            self.samples.fetch_add(1, Ordering::SeqCst);
            std::thread::sleep(Duration::from_millis(250));
        }
    }

    /// Each service has a healthy replica on each host (its floor), except on a host
    /// whose engine is away or has just come back.
    fn check_floor(&self, f: &Fleet, host: usize) {
        let state = self.state(host);
        if state == HostState::Down {
            return;
        }
        let Some(replicas) = replicas(f, host) else {
            return; // the engine did not answer: it is being stopped
        };
        // While the host comes back, only a healthy replica in its slot counts: a
        // replacement (`-next`) may be healthy without ever having joined the service's
        // alias (its rollout cut by the engine's stop), and then serves nothing. Once
        // back, a replacement counts too, as one joins before the replica it replaces
        // leaves.
        let short = |in_slot_only: bool| -> Vec<&str> {
            SERVICES
                .into_iter()
                .filter(|s| {
                    !replicas
                        .iter()
                        .any(|r| r.service == *s && r.healthy && (r.in_slot || !in_slot_only))
                })
                .collect()
        };
        match state {
            HostState::Recovering(_) if short(true).is_empty() => {
                self.set(host, HostState::Checked)
            }
            HostState::Recovering(until) if Instant::now() > until => {
                self.violation(format!(
                    "h{host}: no healthy {:?} in its slot {}s after its engine came back; containers: {}",
                    short(true),
                    RECOVERY.as_secs(),
                    listing(f, host)
                ));
                self.set(host, HostState::Checked);
            }
            // Read again: a stop of the engine may have begun meanwhile.
            HostState::Checked
                if !short(false).is_empty() && self.state(host) == HostState::Checked =>
            {
                self.violation(format!(
                    "h{host}: no healthy replica of {:?}; containers: {}",
                    short(false),
                    listing(f, host)
                ));
            }
            _ => {}
        }
    }

    /// Per release, at most one completed run of the migration (its side effect), and
    /// no run that the ledger did not record a claim for.
    fn check_migrations(&self, f: &Fleet) {
        // Files first: a claim is recorded before its run starts.
        let starts = count_lines(&f.shared.path().join("starts"));
        let runs = count_lines(&f.shared.path().join("runs"));
        for (version, n) in &runs {
            if *n > 1 {
                self.violation(format!("migration of {version} completed {n} times"));
            }
        }
        let Some(attempts) = ledger_attempts(f) else {
            return;
        };
        for (version, n) in &starts {
            let claimed = attempts.get(version).copied().unwrap_or(0);
            if *n > claimed {
                self.violation(format!(
                    "migration of {version} started {n} times, the ledger knows of {claimed} runs"
                ));
            }
        }
    }

    /// No more unexpired api leases than `max_hosts`.
    fn check_leases(&self, f: &Fleet) {
        let q = format!(
            "SELECT count(*) FROM berth.leases WHERE project = '{}' AND service = 'api' AND expires_at > now()",
            f.project
        );
        if let Ok(n) = f.pg.try_psql_as("postgres", "app", &q) {
            if n.parse::<u32>().unwrap_or(0) > API_MAX_HOSTS {
                self.violation(format!("{n} api leases held, max_hosts {API_MAX_HOSTS}"));
            }
        }
    }
}

/// The project's replica containers on `host`, running; `None` when the engine does
/// not answer.
pub(super) fn replicas(f: &Fleet, host: usize) -> Option<Vec<Replica>> {
    let out = f.engines[host - 1].docker([
        "ps",
        "--filter",
        &format!("label=berth.project={}", f.project),
        "--filter",
        "label=berth.role=replica",
        "--format",
        "{{.ID}} {{.Names}} {{.Label \"berth.service\"}} {{.Status}}",
    ]);
    if !out.status.success() {
        return None;
    }
    Some(
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| {
                let mut parts = l.splitn(4, ' ');
                let id = parts.next()?.to_string();
                let name = parts.next()?;
                let service = parts.next()?.to_string();
                let healthy = parts.next()?.contains("(healthy)");
                Some(Replica {
                    id,
                    service,
                    healthy,
                    in_slot: !(name.ends_with("-next") || name.ends_with("-prev")),
                })
            })
            .collect(),
    )
}

/// The project's containers on `host`, running or not, by name with their status: what
/// a violation is reported with.
fn listing(f: &Fleet, host: usize) -> String {
    let out = f.engines[host - 1].docker([
        "ps",
        "-a",
        "--filter",
        &format!("label=berth.project={}", f.project),
        "--format",
        "{{.Names}} ({{.Status}})",
    ]);
    let prefix = format!("{}-", f.project);
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| l.strip_prefix(&prefix).unwrap_or(l))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Lines of a file, counted by content.
pub(super) fn count_lines(path: &std::path::Path) -> BTreeMap<String, u32> {
    let mut counts = BTreeMap::new();
    for l in std::fs::read_to_string(path).unwrap_or_default().lines() {
        *counts.entry(l.trim().to_string()).or_default() += 1;
    }
    counts
}

/// Runs of the migration the ledger knows of, by release version (the tag of its
/// image): the results recorded (`attempts`) and the claim under way, if any. `None`
/// while PostgreSQL does not answer.
pub(super) fn ledger_attempts(f: &Fleet) -> Option<BTreeMap<String, u32>> {
    let q = format!(
        "SELECT image || ' ' || (attempts + CASE WHEN status = 'started' THEN 1 ELSE 0 END) FROM berth.migrations WHERE project = '{}'",
        f.project
    );
    let out = f.pg.try_psql_as("postgres", "app", &q).ok()?;
    Some(
        out.lines()
            .filter_map(|l| {
                let (image, n) = l.rsplit_once(' ')?;
                Some((image.rsplit(':').next()?.to_string(), n.parse().ok()?))
            })
            .collect(),
    )
}
