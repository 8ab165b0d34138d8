//! The faults the chaos injects, each with the moment it ends: agents killed with
//! SIGKILL and started again, replicas crashed, the registry stopped, an engine
//! restarted, PostgreSQL stopped and started again or failed over to a new server
//! holding a restored backup.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use super::model::SERVICES;
use super::watch::{replicas, HostState, Watch, RECOVERY};
use crate::agent::Agent;
use crate::fleet::{logs, Fleet};
use crate::support::{crash_container, ChaosRng, Registry};

pub(super) struct Chaos<'a> {
    f: &'a Fleet,
    registry: &'a Registry,
    agents: Vec<Option<Agent>>,
    agent_back: Vec<Option<Instant>>,
    engine_back: Vec<Option<Instant>>,
    registry_back: Option<Instant>,
    /// When PostgreSQL returns, and whether as a failover.
    pg_back: Option<(Instant, bool)>,
    /// Faults and commits so far, by kind.
    pub counts: BTreeMap<String, u32>,
    /// Where every agent's log is kept: `h<host>.<start>.log`, one per start.
    pub log_dir: PathBuf,
    starts: Vec<u32>,
}

impl<'a> Chaos<'a> {
    pub(super) fn new(f: &'a Fleet, registry: &'a Registry, log_dir: PathBuf) -> Chaos<'a> {
        let n = f.engines.len();
        std::fs::create_dir_all(&log_dir).expect("the soak's log directory");
        Chaos {
            f,
            registry,
            agents: (0..n).map(|_| None).collect(),
            agent_back: vec![None; n],
            engine_back: vec![None; n],
            registry_back: None,
            pg_back: None,
            counts: BTreeMap::new(),
            log_dir,
            starts: vec![0; n],
        }
    }

    /// Starts the agent of host `h`, logging to a file of its own.
    fn start_agent(&mut self, h: usize) {
        self.starts[h - 1] += 1;
        let log = self
            .log_dir
            .join(format!("h{h}.{}.log", self.starts[h - 1]));
        self.agents[h - 1] = Some(self.f.agent_logged(h, &[], &log));
    }

    /// Counts a fault or commit of `kind`, and logs it with the time, to read beside
    /// the agents' logs.
    pub(super) fn count(&mut self, kind: &str, detail: &str) {
        eprintln!("{} chaos: {kind} {detail}", crate::soak::now());
        *self.counts.entry(kind.to_string()).or_default() += 1;
    }

    pub(super) fn start_agents(&mut self) {
        for h in 1..=self.agents.len() {
            if self.agents[h - 1].is_none() {
                self.start_agent(h);
            }
            self.agent_back[h - 1] = None;
        }
    }

    /// Ends the faults whose time has come.
    pub(super) fn recover_due(&mut self, watch: &Watch) {
        self.recover(watch, Instant::now());
    }

    /// Ends every fault.
    pub(super) fn recover_all(&mut self, watch: &Watch) {
        let far = Instant::now() + Duration::from_secs(24 * 3600);
        self.recover(watch, far);
    }

    /// Does what the agent's supervisor does (systemd's `Restart=always`,
    /// `RestartSec=5s`, as README sets it up): an agent that exited, e.g. because its
    /// engine did not answer when it started, is started again 5 s later.
    pub(super) fn supervise(&mut self) {
        for h in 1..=self.agents.len() {
            if self.agents[h - 1].as_mut().is_some_and(Agent::exited) {
                self.agents[h - 1] = None;
                self.agent_back[h - 1] = Some(Instant::now() + Duration::from_secs(5));
                self.count("agent exited, supervisor restarts it", &format!("h{h}"));
            }
        }
    }

    fn recover(&mut self, watch: &Watch, now: Instant) {
        self.supervise();
        for h in 1..=self.agents.len() {
            if self.engine_back[h - 1].is_some_and(|t| t <= now) {
                self.engine_back[h - 1] = None;
                self.f.engines[h - 1].start_again();
                eprintln!("{} chaos: engine h{h} back", crate::soak::now());
                watch.set(h, HostState::Recovering(Instant::now() + RECOVERY));
            }
            if self.agent_back[h - 1].is_some_and(|t| t <= now) {
                self.agent_back[h - 1] = None;
                self.start_agent(h);
                eprintln!(
                    "{} chaos: agent h{h} back (log h{h}.{}.log)",
                    crate::soak::now(),
                    self.starts[h - 1]
                );
            }
        }
        if self.registry_back.is_some_and(|t| t <= now) {
            self.registry_back = None;
            self.registry.start();
            eprintln!("{} chaos: registry back", crate::soak::now());
        }
        if let Some((t, failover)) = self.pg_back {
            if t <= now {
                self.pg_back = None;
                if failover {
                    self.f.pg.fail_over();
                } else {
                    self.f.pg.start_again();
                }
                eprintln!("{} chaos: postgres back", crate::soak::now());
            }
        }
    }

    /// Kills the agent of a random host (SIGKILL); it starts again 1 to 10 s later.
    pub(super) fn kill_agent(&mut self, rng: &mut ChaosRng) {
        let h = 1 + rng.below(self.agents.len() as u64) as usize;
        if self.agents[h - 1].take().is_some() {
            self.agent_back[h - 1] =
                Some(Instant::now() + rng.between(Duration::from_secs(1), Duration::from_secs(10)));
            self.count("agent killed", &format!("h{h}"));
        }
    }

    /// Crashes (SIGKILL of its process) a replica of a random service on a random
    /// host, when that service has replicas to spare there: at least two, all
    /// healthy, as many as the last valid commit wants (so no scale-down is under
    /// way that would take another one).
    pub(super) fn crash_replica(
        &mut self,
        rng: &mut ChaosRng,
        watch: &Watch,
        want: &super::Desired,
    ) {
        let h = 1 + rng.below(self.agents.len() as u64) as usize;
        let service = SERVICES[rng.below(SERVICES.len() as u64) as usize];
        if watch.state(h) != HostState::Checked {
            return;
        }
        let Some(all) = replicas(self.f, h) else {
            return;
        };
        let mine: Vec<_> = all.iter().filter(|r| r.service == service).collect();
        let spare = mine.len() >= 2
            && mine.len() as u32 == want.replicas(service)
            && mine.iter().all(|r| r.healthy);
        if !spare {
            return;
        }
        let victim = mine[rng.below(mine.len() as u64) as usize];
        if crash_container(&self.f.engines[h - 1], &victim.id) {
            self.count("replica crashed", &format!("{service} on h{h}"));
        }
    }

    /// Stops the registry for 2 to 20 s.
    pub(super) fn stop_registry(&mut self, rng: &mut ChaosRng) {
        if self.registry_back.is_none() {
            self.registry.stop();
            self.registry_back =
                Some(Instant::now() + rng.between(Duration::from_secs(2), Duration::from_secs(20)));
            self.count("registry stopped", "");
        }
    }

    /// Restarts the engine of a random host (one at a time): it is away 1 to 5 s
    /// after it stopped, and its containers stop and start with it.
    pub(super) fn restart_engine(&mut self, rng: &mut ChaosRng, watch: &Watch) {
        if self.engine_back.iter().any(Option::is_some) {
            return;
        }
        let h = 1 + rng.below(self.agents.len() as u64) as usize;
        watch.set(h, HostState::Down);
        self.f.engines[h - 1].stop();
        self.engine_back[h - 1] =
            Some(Instant::now() + rng.between(Duration::from_secs(1), Duration::from_secs(5)));
        self.count("engine restarted", &format!("h{h}"));
    }

    /// Stops PostgreSQL for 2 to 15 s; it comes back as it was, or as a new server
    /// holding a restored backup (`failover`).
    pub(super) fn stop_postgres(&mut self, rng: &mut ChaosRng, failover: bool) {
        if self.pg_back.is_none() {
            self.f.pg.stop();
            self.pg_back = Some((
                Instant::now() + rng.between(Duration::from_secs(2), Duration::from_secs(15)),
                failover,
            ));
            let kind = if failover {
                "postgres failed over"
            } else {
                "postgres stopped"
            };
            self.count(kind, "");
        }
    }

    /// `applied_commit` of every agent.
    pub(super) fn applied(&self) -> Vec<String> {
        self.agents
            .iter()
            .map(|a| {
                a.as_ref().map_or(String::new(), |a| {
                    a.status()["applied_commit"]["sha"]
                        .as_str()
                        .unwrap_or_default()
                        .to_string()
                })
            })
            .collect()
    }

    /// The logs of the agents running now.
    pub(super) fn logs(&self) -> String {
        let running: Vec<&Agent> = self.agents.iter().flatten().collect();
        logs(&running)
    }
}
