//! A fleet through its coordination store going away (stopped, and failed over to a new
//! server holding a restored backup) during each kind of fleet wait, and agents killed
//! during each of them; and the failures the chaos of `soak` found, each under its name.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use crate::agent::{api_images, stack as one_host_stack, Agent};
use crate::fleet::{logs, stack, wait_started, Fleet};
use crate::support::{images, wait_until, Project};
use crate::TempDir;

const CONVERGE: Duration = Duration::from_secs(120);
const SOON: Duration = Duration::from_secs(30);
const POLL: Duration = Duration::from_millis(200);

/// Waits until every agent reports `degraded`.
fn wait_degraded(agents: &[&Agent]) {
    for a in agents {
        assert!(
            wait_until(SOON, POLL, || a.status()["degraded"].is_string()),
            "not degraded:\n{}",
            a.log()
        );
    }
}

/// Asks every agent for a reconcile now, rather than at the end of its coordination
/// backoff (up to 30 s): the tests of `fleet` show the agents come back by themselves.
fn nudge(agents: &[&Agent]) {
    for a in agents {
        a.post_control("/control/reconcile");
    }
}

/// Waits until no agent reports `degraded`.
fn wait_not_degraded(agents: &[&Agent]) {
    for a in agents {
        assert!(
            wait_until(SOON, POLL, || a.status()["degraded"].is_null()),
            "still degraded:\n{}",
            a.log()
        );
    }
}

/// Waits until `a` says api waits for the fleet, for a reason containing `why`.
fn wait_waiting(a: &Agent, why: &str) {
    let waiting = || {
        let st = a.status();
        st["services"]["api"]["last_outcome"] == "waiting"
            && st["services"]["api"]["last_error"]
                .as_str()
                .is_some_and(|e| e.contains(why))
    };
    assert!(
        wait_until(Duration::from_secs(60), POLL, waiting),
        "api is not waiting for {why:?}: {}\n{}",
        a.status()["services"]["api"],
        a.log()
    );
}

/// The migration's ledger rows of the fleet's project: `status host attempts`.
fn ledger_runs(f: &Fleet) -> String {
    f.sql(&format!(
        "SELECT status || ' ' || host || ' ' || attempts FROM berth.migrations WHERE project = '{}' ORDER BY started_at",
        f.project
    ))
}

/// Hosts replacing api (more containers than its one replica), sampled every 100 ms
/// while `during` runs; returns the most seen at once.
fn most_replacing_at_once(f: &Fleet, hosts: &[usize], during: impl FnOnce()) -> usize {
    let stop = AtomicBool::new(false);
    let most = Mutex::new(0);
    std::thread::scope(|s| {
        s.spawn(|| {
            while !stop.load(Ordering::SeqCst) {
                let n = hosts
                    .iter()
                    .filter(|&&h| f.containers(h, "api") > 1)
                    .count();
                let mut m = most.lock().unwrap();
                *m = (*m).max(n);
                drop(m);
                std::thread::sleep(Duration::from_millis(100));
            }
        });
        during();
        stop.store(true, Ordering::SeqCst);
    });
    most.into_inner().unwrap()
}

#[test]
fn postgres_away_during_a_claimed_migration_and_failed_over_runs_it_once() {
    let f = Fleet::new(3, "pgclaim");
    let im = images();
    f.repo
        .commit(&stack(&f, &im.app_v1, "", 6), "v1, a slow migration");
    let agents: Vec<Agent> = (1..=3).map(|i| f.agent(i, &[])).collect();
    let all: Vec<&Agent> = agents.iter().collect();
    let (host, _) = wait_started(&f, &all);
    // PostgreSQL goes while the migration runs on `host`; the others wait for it.
    f.pg.stop();
    wait_degraded(&all);
    // The run ends while nothing can be recorded; it is written once, by its host.
    assert!(
        wait_until(Duration::from_secs(60), POLL, || f.runs() == ["app:v1"]),
        "{:?}\n{}",
        f.runs(),
        logs(&all)
    );
    for a in &all {
        a.settle();
    }
    for h in 1..=3 {
        assert!(
            f.running(h, "api").is_empty(),
            "h{h} moved api without the ledger"
        );
    }
    // A new server, restored from a backup of what the old one had committed.
    f.pg.fail_over();
    nudge(&all);
    assert!(
        f.wait_converged(&[1, 2, 3], "api", &im.app_v1, CONVERGE),
        "{}",
        logs(&all)
    );
    wait_not_degraded(&all);
    assert_eq!(f.runs(), ["app:v1"], "{}", logs(&all));
    assert_eq!(ledger_runs(&f), format!("succeeded {host} 1"));
}

#[test]
fn postgres_away_during_a_canary_wait_and_a_max_hosts_rollout_then_back() {
    let f = Fleet::new(3, "pgwait");
    let im = images();
    f.repo.commit(&stack(&f, &im.app_v1, "", 0), "v1");
    let agents: Vec<Agent> = (1..=3).map(|i| f.agent(i, &[])).collect();
    let all: Vec<&Agent> = agents.iter().collect();
    assert!(
        f.wait_converged(&[1, 2, 3], "api", &im.app_v1, CONVERGE),
        "{}",
        logs(&all)
    );

    // A canary wait: h2 is stopped, so h1 and h3 wait for it; then PostgreSQL goes.
    drop(agents);
    let mut agents: Vec<Option<Agent>> = vec![Some(f.agent(1, &[])), None, Some(f.agent(3, &[]))];
    f.repo
        .commit(&stack(&f, &im.app_v2, ", canary: h2", 0), "v2, canary h2");
    wait_waiting(agents[0].as_ref().unwrap(), "canary host h2");
    f.pg.stop();
    agents[1] = Some(f.agent(2, &[]));
    let all: Vec<&Agent> = agents.iter().flatten().collect();
    wait_degraded(&all);
    for a in &all {
        a.settle();
    }
    for h in 1..=3 {
        assert_eq!(
            f.running(h, "api"),
            std::slice::from_ref(&im.app_v1),
            "h{h}"
        );
    }
    f.pg.start_again();
    nudge(&all);
    assert!(
        f.wait_converged(&[1, 2, 3], "api", &im.app_v2, CONVERGE),
        "{}",
        logs(&all)
    );
    wait_not_degraded(&all);

    // A max_hosts rollout: PostgreSQL stops while a host holds the lease, and comes
    // back as a failover. README's bound: a host that loses PostgreSQL mid-replacement
    // finishes, so one more host than max_hosts may replace at once; never more.
    let most = most_replacing_at_once(&f, &[1, 2, 3], || {
        f.repo.commit(
            &stack(&f, &im.app_v3, ", max_hosts: 1", 0),
            "v3, max_hosts 1",
        );
        assert!(
            wait_until(Duration::from_secs(60), Duration::from_millis(50), || f
                .sql(&format!(
                    "SELECT count(*) FROM berth.leases WHERE project = '{}'",
                    f.project
                ))
                == "1"),
            "no lease taken:\n{}",
            logs(&all)
        );
        f.pg.stop();
        wait_degraded(&all);
        f.pg.fail_over();
        nudge(&all);
        assert!(
            f.wait_converged(&[1, 2, 3], "api", &im.app_v3, CONVERGE),
            "{}",
            logs(&all)
        );
    });
    assert!(most <= 2, "{most} hosts replaced at once with max_hosts 1");
    wait_not_degraded(&all);
    // Each image's migration once, through both outages.
    assert_eq!(f.runs(), ["app:v1", "app:v2", "app:v3"], "{}", logs(&all));
    let ledger = ledger_runs(&f);
    assert_eq!(ledger.lines().count(), 3, "{ledger}");
    assert!(
        ledger
            .lines()
            .all(|l| l.starts_with("succeeded ") && l.ends_with(" 1")),
        "{ledger}"
    );
}

#[test]
fn an_agent_started_on_an_invalid_head_converges_the_newest_valid_commit_before_it() {
    let p = Project::new("fallback");
    let img = images();
    let repo = crate::agent::Repo::new();
    let state = TempDir::default();
    repo.commit(&one_host_stack(p.name(), &img.app_v1, 1), "v1");
    let good = repo.commit(
        &one_host_stack(p.name(), &img.app_v2, 2),
        "v2, two replicas",
    );
    let bad = repo.commit("project: [unclosed\n", "broken");
    let agent = repo.agent(state.path(), &[]);
    let want = |image: &str, n: u32| -> Vec<String> {
        (1..=n)
            .map(|i| format!("{}-api-{i} {image}", p.name()))
            .collect()
    };
    assert!(
        wait_until(CONVERGE, POLL, || api_images(&p) == want(&img.app_v2, 2)),
        "{:?}\n{}",
        api_images(&p),
        agent.log()
    );
    let st = agent.status();
    assert_eq!(st["applied_commit"]["sha"], good.as_str());
    assert_eq!(st["head"], bad.as_str());
    assert!(
        st["last_error"].as_str().unwrap().contains("is invalid"),
        "{st}"
    );

    // A running agent that sees only the newest of several commits (one ref update):
    // the newest valid among them, not the one it had.
    repo.git(&["checkout", "-q", "-b", "side"]);
    let good2 = repo.commit(&one_host_stack(p.name(), &img.app_v1, 1), "v1 again");
    repo.commit("project: [unclosed again\n", "broken again");
    repo.git(&["checkout", "-q", "main"]);
    repo.git(&["merge", "-q", "--ff-only", "side"]);
    assert!(
        wait_until(CONVERGE, POLL, || api_images(&p) == want(&img.app_v1, 1)),
        "{:?}\n{}",
        api_images(&p),
        agent.log()
    );
    assert_eq!(agent.status()["applied_commit"]["sha"], good2.as_str());
}

/// The agents of a fleet by host (1-based), any of them killed and started again.
struct Agents<'a> {
    f: &'a Fleet,
    by_host: Vec<Option<Agent>>,
}

impl<'a> Agents<'a> {
    fn new(f: &'a Fleet, hosts: &[usize]) -> Agents<'a> {
        let mut a = Agents {
            f,
            by_host: (0..f.engines.len()).map(|_| None).collect(),
        };
        for &h in hosts {
            a.start(h);
        }
        a
    }

    fn start(&mut self, h: usize) {
        self.by_host[h - 1] = Some(self.f.agent(h, &[]));
    }

    /// SIGKILL.
    fn kill(&mut self, h: usize) {
        self.by_host[h - 1] = None;
    }

    fn get(&self, h: usize) -> &Agent {
        self.by_host[h - 1].as_ref().expect("agent runs")
    }

    fn logs(&self) -> String {
        logs(&self.by_host.iter().flatten().collect::<Vec<_>>())
    }
}

/// Rows of the fleet's lease table for its project, of `host` only if given.
fn lease_rows(f: &Fleet, host: Option<usize>) -> String {
    let of_host = host.map_or(String::new(), |h| format!(" AND host = 'h{h}'"));
    f.sql(&format!(
        "SELECT count(*) FROM berth.leases WHERE project = '{}'{of_host}",
        f.project
    ))
}

/// The host holding api's rollout lease, once one does.
fn lease_holder(f: &Fleet) -> Option<usize> {
    let q = format!(
        "SELECT host FROM berth.leases WHERE project = '{}' AND service = 'api'",
        f.project
    );
    let mut found = None;
    wait_until(Duration::from_secs(60), Duration::from_millis(50), || {
        found = f.sql(&q).strip_prefix('h').and_then(|h| h.parse().ok());
        found.is_some()
    });
    found
}

#[test]
fn an_agent_killed_during_each_fleet_wait_comes_back_and_finishes_within_max_hosts() {
    let f = Fleet::new(3, "killwait");
    let im = images();
    // Another host's migration: h1 runs it, h2 waits for its result and is killed.
    f.repo
        .commit(&stack(&f, &im.app_v1, "", 4), "v1, a slow migration");
    let mut agents = Agents::new(&f, &[1]);
    let (host, _) = wait_started(&f, &[agents.get(1)]);
    assert_eq!(host, "h1");
    agents.start(2);
    agents.start(3);
    wait_waiting(agents.get(2), "result of migration migrate on host h1");
    agents.kill(2);
    agents.start(2);
    assert!(
        f.wait_converged(&[1, 2, 3], "api", &im.app_v1, CONVERGE),
        "{}",
        agents.logs()
    );
    assert_eq!(f.runs(), ["app:v1"]);

    // A canary wait: h3 (the canary) is away, h1 waits for it and is killed.
    agents.kill(3);
    f.repo
        .commit(&stack(&f, &im.app_v2, ", canary: h3", 0), "v2, canary h3");
    wait_waiting(agents.get(1), "canary host h3");
    agents.kill(1);
    agents.start(1);
    agents.start(3);
    assert!(
        f.wait_converged(&[1, 2, 3], "api", &im.app_v2, CONVERGE),
        "{}",
        agents.logs()
    );

    // A lease wait, max_hosts 1: the holder is killed mid-replacement, a host waiting
    // for the lease is killed too; both come back. The holder takes its own lease
    // again, so max_hosts holds throughout (README: only a lease that lapses, 30 s
    // after its holder's last renewal, lets another host in).
    let most = most_replacing_at_once(&f, &[1, 2, 3], || {
        f.repo.commit(
            &stack(&f, &im.app_v3, ", max_hosts: 1", 0),
            "v3, max_hosts 1",
        );
        let holder = lease_holder(&f).expect("a host takes the lease");
        agents.kill(holder);
        let waiter = if holder == 1 { 2 } else { 1 };
        wait_waiting(agents.get(waiter), &format!("held by h{holder}"));
        agents.kill(waiter);
        agents.start(waiter);
        agents.start(holder);
        assert!(
            f.wait_converged(&[1, 2, 3], "api", &im.app_v3, CONVERGE),
            "{}",
            agents.logs()
        );
    });
    assert!(most <= 1, "{most} hosts replaced at once with max_hosts 1");
    assert_eq!(
        f.runs(),
        ["app:v1", "app:v2", "app:v3"],
        "{}",
        agents.logs()
    );
    assert_eq!(lease_rows(&f, None), "0");
}

#[test]
fn a_rollout_lease_whose_holder_never_comes_back_lapses_and_the_others_go_on() {
    let mut f = Fleet::new(2, "leaselapse");
    // Long enough that the other host asks while the lease lives, short for a test.
    f.lease_ttl = "10s";
    let im = images();
    f.repo.commit(&stack(&f, &im.app_v1, "", 0), "v1");
    let mut agents = Agents::new(&f, &[1, 2]);
    assert!(
        f.wait_converged(&[1, 2], "api", &im.app_v1, CONVERGE),
        "{}",
        agents.logs()
    );

    // max_hosts 1: the host that takes the lease is killed mid-rollout and stays away.
    f.repo.commit(
        &stack(&f, &im.app_v2, ", max_hosts: 1", 0),
        "v2, max_hosts 1",
    );
    let holder = lease_holder(&f).expect("a host takes the lease");
    agents.kill(holder);
    let other = 3 - holder;
    // The other host is refused while the lease lives, and rolls out once it lapses,
    // without the holder coming back.
    assert!(
        f.wait_converged(&[other], "api", &im.app_v2, CONVERGE),
        "{}",
        agents.get(other).log()
    );
    let log = agents.get(other).log();
    assert!(
        log.contains(&format!("holders=h{holder} action=\"lease-wait\"")),
        "h{other} never waited for h{holder}'s lease:\n{log}"
    );
    assert_eq!(
        lease_rows(&f, Some(holder)),
        "0",
        "the dead holder's lease lapsed"
    );

    // The holder comes back and finishes its own rollout: one replica, no -next/-prev.
    agents.start(holder);
    assert!(
        f.wait_converged(&[1, 2], "api", &im.app_v2, CONVERGE),
        "{}",
        agents.logs()
    );
    for h in [1, 2] {
        assert!(
            wait_until(SOON, POLL, || f.containers(h, "api") == 1),
            "h{h} keeps {} api containers\n{}",
            f.containers(h, "api"),
            agents.logs()
        );
    }
    assert_eq!(f.runs(), ["app:v1", "app:v2"], "{}", agents.logs());
    assert!(
        wait_until(SOON, POLL, || lease_rows(&f, None) == "0"),
        "a lease is left"
    );
}
