//! A fleet: several Docker engines on this machine stand in for hosts, one agent per
//! engine, one repository, one loopback registry and a real PostgreSQL they coordinate
//! through.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::agent::{Agent, Repo};
use crate::support::{images, wait_until, Engine, Postgres, Project};
use crate::{berth, TempDir};

/// Engines, PostgreSQL, the repository and a host directory every engine mounts (the
/// migration appends to a file there, so runs are counted across hosts).
pub(crate) struct Fleet {
    pub(crate) engines: Vec<Engine>,
    pub(crate) pg: Postgres,
    pub(crate) url: String,
    pub(crate) repo: Repo,
    pub(crate) shared: TempDir,
    pub(crate) states: Vec<TempDir>,
    pub(crate) project: String,
    /// The agents' `--fleet-wait`.
    pub(crate) fleet_wait: &'static str,
    /// The agents' `--lease-ttl`.
    pub(crate) lease_ttl: &'static str,
}

impl Fleet {
    pub(crate) fn new(hosts: usize, prefix: &str) -> Fleet {
        let _ = images();
        let engines: Vec<Engine> = std::thread::scope(|s| {
            let started: Vec<_> = (1..=hosts)
                .map(|i| s.spawn(move || Engine::start(&format!("h{i}"))))
                .collect();
            started.into_iter().map(|h| h.join().unwrap()).collect()
        });
        // Least privilege, as README sets it up: a login role owning one schema in the
        // application's database, with no right to create anything else there.
        let pg = Postgres::start();
        pg.psql(
            "CREATE ROLE berth LOGIN PASSWORD 'fleet-secret' NOSUPERUSER NOCREATEDB NOCREATEROLE",
        );
        pg.psql("CREATE DATABASE app");
        pg.psql_db(
            "app",
            "REVOKE CREATE ON DATABASE app FROM PUBLIC; CREATE SCHEMA berth AUTHORIZATION berth",
        );
        let url = pg.url("berth", "fleet-secret", "app");
        Fleet {
            engines,
            pg,
            url,
            repo: Repo::new(),
            shared: TempDir::default(),
            states: (0..hosts).map(|_| TempDir::default()).collect(),
            project: Project::unique_name(prefix),
            fleet_wait: "3s",
            lease_ttl: "30s",
        }
    }

    /// Host `i` (1-based) is `h<i>` on engine `i`.
    pub(crate) fn agent(&self, i: usize, labels: &[&str]) -> Agent {
        let log = self.states[i - 1].path().join("agent.log");
        self.agent_logged(i, labels, &log)
    }

    /// [`Fleet::agent`] with its log at `log`, so that an agent started again does not
    /// overwrite the log of the one before.
    pub(crate) fn agent_logged(&self, i: usize, labels: &[&str], log: &Path) -> Agent {
        let host = format!("h{i}");
        let shared = format!("{}:rw", self.shared_path());
        let mut args = vec![
            "--host",
            &host,
            "--coordination",
            &self.url,
            "--allow-host-path",
            &shared,
            "--fleet-wait",
            self.fleet_wait,
            "--lease-ttl",
            self.lease_ttl,
        ];
        for l in labels {
            args.extend(["--host-label", l]);
        }
        let docker_host = self.engines[i - 1].host();
        Agent::start_logged(
            &self.repo.path().display().to_string(),
            self.states[i - 1].path(),
            log,
            &args,
            &[("DOCKER_HOST", &docker_host)],
        )
    }

    pub(crate) fn shared_path(&self) -> &str {
        self.shared.path().to_str().unwrap()
    }

    /// Images of the running containers of `service` on host `i`, sorted (candidates
    /// included).
    pub(crate) fn running(&self, i: usize, service: &str) -> Vec<String> {
        let out = self.engines[i - 1].docker_stdout([
            "ps",
            "--filter",
            &format!("label=berth.project={}", self.project),
            "--filter",
            &format!("label=berth.service={service}"),
            "--filter",
            "label=berth.role=replica",
            "--format",
            "{{.Image}}",
        ]);
        let mut v: Vec<String> = out.lines().map(str::to_string).collect();
        v.sort();
        v
    }

    /// Containers of `service` on host `i`, running or not.
    pub(crate) fn containers(&self, i: usize, service: &str) -> usize {
        self.engines[i - 1]
            .docker_stdout([
                "ps",
                "-a",
                "--filter",
                &format!("label=berth.project={}", self.project),
                "--filter",
                &format!("label=berth.service={service}"),
                "--format",
                "{{.Names}}",
            ])
            .lines()
            .count()
    }

    /// Lines the migration appended, across every host.
    pub(crate) fn runs(&self) -> Vec<String> {
        std::fs::read_to_string(self.shared.path().join("runs"))
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    }

    pub(crate) fn sql(&self, q: &str) -> String {
        self.pg.psql_db("app", q).trim().to_string()
    }

    /// Waits until every host in `hosts` runs exactly `replicas` of `service` on `image`.
    pub(crate) fn wait_converged(
        &self,
        hosts: &[usize],
        service: &str,
        image: &str,
        timeout: Duration,
    ) -> bool {
        wait_until(timeout, Duration::from_millis(200), || {
            hosts
                .iter()
                .all(|&i| self.running(i, service) == vec![image.to_string()])
        })
    }

    /// The first `berth migrations list` entry, as JSON.
    pub(crate) fn started_migrations(&self) -> Vec<serde_json::Value> {
        let r = berth([
            "migrations",
            "list",
            "--coordination",
            &self.url,
            "--output",
            "json",
        ]);
        assert_eq!(r.code, 0, "{}", r.stderr);
        serde_json::from_str(&r.stdout).unwrap()
    }
}

pub(crate) fn logs(agents: &[&Agent]) -> String {
    agents
        .iter()
        .enumerate()
        .map(|(i, a)| format!("--- agent h{} ---\n{}", i + 1, a.log()))
        .collect()
}

/// api on every host (gated by the migration), web on hosts labelled role=web, cron on
/// h3 only.
pub(crate) fn stack(f: &Fleet, image: &str, update: &str, sleep: u32) -> String {
    format!(
        "project: {p}
services:
  api:
    image: {image}
    volumes: [\"{shared}:/shared\"]
    stop_grace: 1s
    update: {{ monitor: 1s, deadline: 30s{update} }}
  web:
    image: {image}
    stop_grace: 1s
    update: {{ monitor: 0s, deadline: 30s }}
    placement: {{ labels: {{ role: web }} }}
  cron:
    image: {image}
    stop_grace: 1s
    update: {{ monitor: 0s, deadline: 30s }}
    placement: {{ hosts: [h3] }}
migrations:
  migrate:
    from: api
    command: [\"sh\", \"-c\", \"sleep {sleep}; cat /version >> /shared/runs\"]
    gates: [api]
    timeout: 2m
",
        p = f.project,
        shared = f.shared_path(),
    )
}

#[test]
fn three_hosts_run_each_migration_once_and_converge_with_placement() {
    let f = Fleet::new(3, "fleet");
    let im = images();
    f.repo.commit(&stack(&f, &im.app_v1, "", 1), "v1");
    let a1 = f.agent(1, &["role=web"]);
    let a2 = f.agent(2, &["role=web"]);
    let a3 = f.agent(3, &["role=db"]);
    let all = [&a1, &a2, &a3];
    assert!(
        f.wait_converged(&[1, 2, 3], "api", &im.app_v1, Duration::from_secs(90)),
        "v1 did not converge:\n{}",
        logs(&all)
    );
    // Placement: by label, web runs on h1 and h2 only; by name, cron on h3 only.
    assert!(f.wait_converged(&[1, 2], "web", &im.app_v1, Duration::from_secs(30)));
    assert!(f.wait_converged(&[3], "cron", &im.app_v1, Duration::from_secs(30)));
    assert!(f.running(3, "web").is_empty());
    assert!(f.running(1, "cron").is_empty() && f.running(2, "cron").is_empty());

    f.repo.commit(&stack(&f, &im.app_v2, "", 2), "v2");
    assert!(
        f.wait_converged(&[1, 2, 3], "api", &im.app_v2, Duration::from_secs(120)),
        "v2 did not converge:\n{}",
        logs(&all)
    );
    // Once per image across the fleet: one line for v1, one for v2.
    assert_eq!(f.runs(), ["app:v1", "app:v2"], "{}", logs(&all));
    let ledger = f.sql(&format!(
        "SELECT status || ' ' || attempts FROM berth.migrations WHERE project = '{}' ORDER BY started_at",
        f.project
    ));
    assert_eq!(ledger, "succeeded 1\nsucceeded 1");
    // Every host's deploys are in the one history, and status carries the host.
    let hosts = f.sql(&format!(
        "SELECT string_agg(DISTINCT host, ',' ORDER BY host) FROM berth.deploys WHERE project = '{}'",
        f.project
    ));
    assert_eq!(hosts, "h1,h2,h3");
    let st = a2.status();
    assert_eq!(st["host"]["name"], "h2");
    assert!(st["coordination"]
        .as_str()
        .unwrap()
        .starts_with("postgres://berth@127.0.0.1:"));
    assert!(!st.to_string().contains("fleet-secret"));
    let r = berth(["history", "--coordination", &f.url, "--project", &f.project]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    for h in ["on h1", "on h2", "on h3"] {
        assert!(
            r.stdout.contains(h),
            "{h} missing from history:\n{}",
            r.stdout
        );
    }
    // Moving the label moves the service: h2 loses web when it is no longer role=web.
    drop(a2);
    let _a2 = f.agent(2, &["role=db"]);
    assert!(
        wait_until(Duration::from_secs(60), Duration::from_millis(200), || f
            .running(2, "web")
            .is_empty()),
        "web was not pruned from h2"
    );
    assert_eq!(f.running(1, "web"), std::slice::from_ref(&im.app_v2));
}

/// Per host: replacing (more api containers than replicas), and running the new image.
type Sample = ([bool; 3], [bool; 3]);

#[test]
fn max_hosts_one_replaces_one_host_at_a_time_after_the_canary() {
    let f = Fleet::new(3, "stage");
    let im = images();
    let staged = ", max_hosts: 1, canary: h2";
    f.repo.commit(&stack(&f, &im.app_v1, staged, 0), "v1");
    let agents: Vec<Agent> = (1..=3).map(|i| f.agent(i, &[])).collect();
    let all: Vec<&Agent> = agents.iter().collect();
    assert!(
        f.wait_converged(&[1, 2, 3], "api", &im.app_v1, Duration::from_secs(90)),
        "v1 did not converge:\n{}",
        logs(&all)
    );

    // Sample every host throughout the release: a host replaces while it has more api
    // containers than replicas (the start-first candidate beside the old one).
    let stop = AtomicBool::new(false);
    let samples: Mutex<Vec<Sample>> = Mutex::default();
    let release = |image: &str, update: &str, name: &str| -> Duration {
        stop.store(false, Ordering::SeqCst);
        samples.lock().unwrap().clear();
        let started = Instant::now();
        f.repo.commit(&stack(&f, image, update, 0), name);
        std::thread::scope(|s| {
            s.spawn(|| {
                while !stop.load(Ordering::SeqCst) {
                    let replacing = [1, 2, 3].map(|i| f.containers(i, "api") > 1);
                    let moved = [1, 2, 3].map(|i| f.running(i, "api").iter().any(|x| x == image));
                    samples.lock().unwrap().push((replacing, moved));
                    std::thread::sleep(Duration::from_millis(100));
                }
            });
            let ok = f.wait_converged(&[1, 2, 3], "api", image, Duration::from_secs(180));
            stop.store(true, Ordering::SeqCst);
            assert!(ok, "{name} did not converge:\n{}", logs(&all));
        });
        started.elapsed()
    };

    let staged_time = release(&im.app_v2, staged, "v2 staged");
    let seen = samples.lock().unwrap().clone();
    assert!(seen.len() > 10, "too few samples: {}", seen.len());
    for (replacing, _) in &seen {
        assert!(
            replacing.iter().filter(|r| **r).count() <= 1,
            "two hosts replaced at once: {replacing:?}\n{}",
            logs(&all)
        );
    }
    // The canary moved first: every sample where another host runs v2 comes after h2
    // runs it.
    let first = |host: usize| seen.iter().position(|(_, moved)| moved[host - 1]);
    let canary = first(2).expect("h2 moved");
    for other in [1, 3] {
        let at = first(other).expect("host moved");
        assert!(at > canary, "h{other} moved before the canary h2");
    }
    // Leases are given back.
    assert_eq!(f.sql("SELECT count(*) FROM berth.leases"), "0");
    // Any host's status page shows the fleet: each host's release of api (v2 on all
    // three once each has recorded its deploy), the canary h2, no lease left.
    let v2 = im.app_v2.rsplit('/').next().unwrap().to_string();
    let api_cells = || -> Option<Vec<String>> {
        let (code, page) = crate::agent::http(agents[0].port, "GET", "/", &[], b"")?;
        assert_eq!(code, 200, "{page}");
        ["h1", "h2", "h3"]
            .iter()
            .map(|h| {
                let at = page.find(&format!("<td data-host=\"{h}\" data-service=\"api\">"))?;
                Some(page[at..at + page[at..].find("</td>")?].to_string())
            })
            .collect()
    };
    let shows_v2 = |cells: &[String]| {
        cells.iter().all(|c| {
            c.contains(&format!(
                "<code>{v2}</code> <span class=\"outcome converged\">"
            ))
        })
    };
    assert!(
        wait_until(Duration::from_secs(30), Duration::from_millis(200), || {
            api_cells().is_some_and(|c| shows_v2(&c))
        }),
        "the fleet matrix does not show v2 on every host: {:?}\n{}",
        api_cells(),
        logs(&all)
    );
    let cells = api_cells().unwrap();
    for (cell, host) in cells.iter().zip(["h1", "h2", "h3"]) {
        assert_eq!(cell.contains(">canary<"), host == "h2", "{host}: {cell}");
        assert!(!cell.contains("lease"), "{host}: {cell}");
    }

    // The same kind of release without staging (every host at once), and with
    // max_hosts 1 alone, for the record.
    let all_time = release(&im.app_v3, "", "v3 all at once");
    let one_time = release(&im.app_v2, ", max_hosts: 1", "v2 one host at a time");
    let seen = samples.lock().unwrap().clone();
    assert!(seen
        .iter()
        .all(|(replacing, _)| replacing.iter().filter(|r| **r).count() <= 1));
    eprintln!(
        "release of 3 hosts: max_hosts 1 {:.1}s, max_hosts 1 with canary {:.1}s, all at once {:.1}s ({:.2}x)",
        one_time.as_secs_f64(),
        staged_time.as_secs_f64(),
        all_time.as_secs_f64(),
        one_time.as_secs_f64() / all_time.as_secs_f64()
    );
}

/// Waits until the migration is recorded as started, and returns (host, digest).
pub(crate) fn wait_started(f: &Fleet, agents: &[&Agent]) -> (String, String) {
    let mut found = None;
    let ok = wait_until(Duration::from_secs(90), Duration::from_millis(200), || {
        found = f
            .started_migrations()
            .into_iter()
            .find(|m| m["project"] == f.project.as_str())
            .map(|m| {
                (
                    m["host"].as_str().unwrap().to_string(),
                    m["digest"].as_str().unwrap().to_string(),
                )
            });
        found.is_some()
    });
    assert!(ok, "no migration started:\n{}", logs(agents));
    found.unwrap()
}

#[test]
fn kill_9_of_the_host_running_a_migration_never_doubles_it() {
    let f = Fleet::new(3, "kill");
    let im = images();
    f.repo
        .commit(&stack(&f, &im.app_v1, "", 8), "v1 with a slow migration");
    // h1 alone first, so that it is the one that takes the migration.
    let mut a1 = f.agent(1, &[]);
    let (host, _) = wait_started(&f, &[&a1]);
    assert_eq!(host, "h1");
    // The start is on record before the container exists; kill once it runs.
    let running = || {
        !f.engines[0]
            .docker_stdout(["ps", "-q", "--filter", "label=berth.role=migration"])
            .is_empty()
    };
    assert!(
        wait_until(Duration::from_secs(30), Duration::from_millis(50), running),
        "{}",
        a1.log()
    );
    let a2 = f.agent(2, &[]);
    let a3 = f.agent(3, &[]);
    a1.signal("KILL");
    a1.wait_exit(Duration::from_secs(10));
    // The run goes on in its container on h1 and ends there; the others wait for its
    // result and run nothing themselves, however long h1's agent is away: each looks
    // again after the run ended (a retry of its wait), and that reconcile, settled,
    // ran nothing.
    let ended = || {
        !f.engines[0]
            .docker_stdout([
                "ps",
                "-aq",
                "--filter",
                "label=berth.role=migration",
                "--filter",
                "status=exited",
            ])
            .is_empty()
    };
    assert!(
        wait_until(Duration::from_secs(30), Duration::from_millis(100), ended),
        "{}",
        logs(&[&a1, &a2, &a3])
    );
    for a in [&a2, &a3] {
        let retries = a.triggers("retry");
        a.wait_triggers("retry", retries + 1.0);
        a.settle();
    }
    assert_eq!(f.runs(), ["app:v1"], "{}", logs(&[&a1, &a2, &a3]));
    assert!(f.running(2, "api").is_empty() && f.running(3, "api").is_empty());
    let st = a2.status();
    let started = st["started_migrations"].as_array().unwrap();
    assert_eq!(started.len(), 1, "{st}");
    assert_eq!(started[0]["host"], "h1");
    assert_eq!(
        f.sql(&format!(
            "SELECT status || ' ' || host FROM berth.migrations WHERE project = '{}'",
            f.project
        )),
        "started h1"
    );

    // h1's agent comes back, records the result, and the fleet converges.
    let a1 = f.agent(1, &[]);
    let all = [&a1, &a2, &a3];
    assert!(
        f.wait_converged(&[1, 2, 3], "api", &im.app_v1, Duration::from_secs(120)),
        "no convergence after h1 came back:\n{}",
        logs(&all)
    );
    assert_eq!(f.runs(), ["app:v1"]);
    assert_eq!(
        f.sql(&format!(
            "SELECT status || ' ' || host || ' ' || attempts FROM berth.migrations WHERE project = '{}'",
            f.project
        )),
        "succeeded h1 1"
    );
    // Status no longer shows it under way.
    assert!(wait_until(
        Duration::from_secs(15),
        Duration::from_millis(200),
        || a2.status()["started_migrations"]
            .as_array()
            .is_some_and(|m| m.is_empty())
    ));
}

#[test]
fn an_operator_resolves_a_migration_whose_host_never_returns() {
    let f = Fleet::new(2, "resolve");
    let im = images();
    f.repo.commit(
        &stack(&f, &im.app_v1, "", 300),
        "v1 with a hanging migration",
    );
    let mut a1 = f.agent(1, &[]);
    let (_, digest) = wait_started(&f, &[&a1]);
    // h1 is gone for good: its agent and its engine.
    a1.signal("KILL");
    a1.wait_exit(Duration::from_secs(10));
    f.engines[0].stop();
    let a2 = f.agent(2, &[]);
    // h2 waits, and says for what.
    assert!(
        wait_until(Duration::from_secs(30), Duration::from_millis(200), || {
            a2.status()["started_migrations"]
                .as_array()
                .is_some_and(|m| m.len() == 1 && m[0]["host"] == "h1")
        }),
        "{}",
        a2.log()
    );
    let human = berth(["status", "--listen", &format!("127.0.0.1:{}", a2.port)]);
    assert!(
        human.stdout.contains("migration migrate for sha256:")
            && human.stdout.contains("under way on h1 since"),
        "{}",
        human.stdout
    );
    // Every reconcile h2 has begun so far, finished, left api alone.
    a2.settle();
    assert!(f.running(2, "api").is_empty());

    let resolve = |outcome: &str| {
        berth([
            "migrations",
            "resolve",
            "migrate",
            "--image",
            &digest,
            "--as",
            outcome,
            "--coordination",
            &f.url,
        ])
    };
    let r = resolve("succeeded");
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.contains("recorded as succeeded"), "{}", r.stdout);
    assert!(
        f.wait_converged(&[2], "api", &im.app_v1, Duration::from_secs(60)),
        "h2 did not go on after the resolution:\n{}",
        a2.log()
    );
    assert!(
        f.runs().is_empty(),
        "the migration ran elsewhere: {:?}",
        f.runs()
    );
    // A success is final.
    let again = resolve("failed");
    assert_eq!(again.code, 1);
    assert!(
        again.stderr.contains("a success is final"),
        "{}",
        again.stderr
    );
}

#[test]
fn hosts_keep_serving_while_postgres_is_away_and_converge_when_it_returns() {
    let f = Fleet::new(2, "degraded");
    let im = images();
    f.repo.commit(&stack(&f, &im.app_v1, "", 0), "v1");
    let a1 = f.agent(1, &[]);
    let a2 = f.agent(2, &[]);
    let all = [&a1, &a2];
    assert!(
        f.wait_converged(&[1, 2], "api", &im.app_v1, Duration::from_secs(90)),
        "{}",
        logs(&all)
    );
    f.pg.stop();
    f.repo
        .commit(&stack(&f, &im.app_v2, "", 0), "v2 while PostgreSQL is away");
    for a in all {
        assert!(
            wait_until(Duration::from_secs(30), Duration::from_millis(200), || {
                a.status()["degraded"].is_string()
            }),
            "not degraded:\n{}",
            a.log()
        );
    }
    // Nothing changed meanwhile: v1 keeps serving, no migration started, also after
    // every reconcile each agent has begun so far.
    for a in all {
        a.settle();
    }
    for i in [1, 2] {
        assert_eq!(f.running(i, "api"), std::slice::from_ref(&im.app_v1));
    }
    assert_eq!(f.runs(), ["app:v1"]);
    let metrics = crate::agent::http(a1.port, "GET", "/metrics", &[], b"")
        .unwrap()
        .1;
    assert!(
        metrics.contains("berth_coordination_up{host=\"h1\"} 0"),
        "{metrics}"
    );

    f.pg.start_again();
    assert!(
        f.wait_converged(&[1, 2], "api", &im.app_v2, Duration::from_secs(120)),
        "no convergence after PostgreSQL returned:\n{}",
        logs(&all)
    );
    assert_eq!(f.runs(), ["app:v1", "app:v2"]);
    for a in all {
        assert!(wait_until(
            Duration::from_secs(10),
            Duration::from_millis(200),
            || a.status()["degraded"].is_null()
        ));
    }
}

/// Placement and `run_on` without PostgreSQL: the agent warns that migrations are once
/// per host, and a pinned migration runs on its host only.
#[test]
fn without_coordination_run_on_pins_a_migration_to_one_host() {
    let _ = images();
    let engines: Vec<Engine> = std::thread::scope(|s| {
        let h: Vec<_> = (1..=2)
            .map(|i| s.spawn(move || Engine::start(&format!("l{i}"))))
            .collect();
        h.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let shared = TempDir::default();
    let project = Project::unique_name("pinned");
    let repo = Repo::new();
    let im = images();
    repo.commit(
        &format!(
            "project: {project}
services:
  api:
    image: {}
    volumes: [\"{}:/shared\"]
    stop_grace: 1s
    update: {{ monitor: 0s, deadline: 30s }}
migrations:
  migrate:
    from: api
    command: [\"sh\", \"-c\", \"cat /version >> /shared/runs\"]
    run_on: l2
",
            im.app_v1,
            shared.path().display()
        ),
        "v1",
    );
    let states = [TempDir::default(), TempDir::default()];
    let agents: Vec<Agent> = (0..2)
        .map(|i| {
            Agent::start_with_env(
                &repo.path().display().to_string(),
                states[i].path(),
                &[
                    "--host",
                    &format!("l{}", i + 1),
                    "--allow-host-path",
                    &format!("{}:rw", shared.path().display()),
                ],
                &[("DOCKER_HOST", &engines[i].host())],
            )
        })
        .collect();
    let converged = |i: usize| {
        engines[i]
            .docker_stdout([
                "ps",
                "--filter",
                &format!("label=berth.project={project}"),
                "--format",
                "{{.Image}}",
            ])
            .trim()
            == im.app_v1
    };
    assert!(
        wait_until(Duration::from_secs(90), Duration::from_millis(200), || {
            converged(0) && converged(1)
        }),
        "{}{}",
        agents[0].log(),
        agents[1].log()
    );
    let runs = std::fs::read_to_string(shared.path().join("runs")).unwrap_or_default();
    assert_eq!(runs, "app:v1\n");
    assert!(agents[0]
        .log()
        .contains("migrations run once per host, not once per fleet"));
    let ledger_of = |dir: &Path| {
        let r = berth([
            "history",
            "--state-dir",
            dir.to_str().unwrap(),
            "--output",
            "json",
        ]);
        serde_json::from_str::<Vec<serde_json::Value>>(&r.stdout).unwrap_or_default()
    };
    let ran = || -> BTreeMap<usize, usize> {
        (0..2)
            .map(|i| {
                (
                    i,
                    ledger_of(states[i].path())
                        .iter()
                        .map(|d| d["migrations"].as_array().map_or(0, |m| m.len()))
                        .sum(),
                )
            })
            .collect()
    };
    // The deploy is recorded when the apply ends, a moment after the containers run.
    let mut ran_now = ran();
    wait_until(Duration::from_secs(20), Duration::from_millis(200), || {
        ran_now = ran();
        ran_now[&1] > 0
    });
    let ran = ran_now;
    assert_eq!(ran[&0], 0, "l1 ran the pinned migration");
    assert_eq!(ran[&1], 1, "l2 did not run its migration");
}

/// A canary host that is gone holds the release on the others, not a revert: the hosts
/// waiting for it take up a new commit at once.
#[test]
fn a_revert_gets_through_while_hosts_wait_for_a_dead_canary() {
    let mut f = Fleet::new(2, "canary");
    // Longer than the test: only a new commit cuts the wait short.
    f.fleet_wait = "10m";
    let im = images();
    f.repo.commit(&stack(&f, &im.app_v1, "", 0), "v1");
    let a1 = f.agent(1, &[]);
    let a2 = f.agent(2, &[]);
    assert!(
        f.wait_converged(&[1, 2], "api", &im.app_v1, Duration::from_secs(90)),
        "{}",
        logs(&[&a1, &a2])
    );
    drop(a2);
    f.repo
        .commit(&stack(&f, &im.app_v2, ", canary: h2", 0), "v2, canary h2");
    let waiting = |a: &Agent| {
        let st = a.status();
        st["services"]["api"]["last_outcome"] == "waiting"
            && st["services"]["api"]["last_error"]
                .as_str()
                .is_some_and(|e| e.contains("canary host h2"))
    };
    // h1 waits for the canary; an operator's nudge makes it report why.
    assert!(
        wait_until(Duration::from_secs(60), Duration::from_millis(500), || {
            a1.post_control("/control/reconcile");
            std::thread::sleep(Duration::from_millis(300));
            waiting(&a1)
        }),
        "{}",
        a1.log()
    );
    assert_eq!(f.running(1, "api"), std::slice::from_ref(&im.app_v1));
    let revert = f.repo.commit(&stack(&f, &im.app_v1, "", 0), "revert v2");
    assert!(
        wait_until(Duration::from_secs(5), Duration::from_millis(100), || {
            a1.status()["applied_commit"]["sha"] == revert.as_str()
        }),
        "the revert was not taken up while waiting for the canary:\n{}",
        a1.log()
    );
    assert_eq!(f.running(1, "api"), std::slice::from_ref(&im.app_v1));
    assert!(wait_until(
        Duration::from_secs(15),
        Duration::from_millis(200),
        || a1.status()["services"]["api"]["last_outcome"] == "in-sync"
    ));
}

/// A result recorded again (the leftover container of a run whose failure is on record)
/// never overwrites another host's claim under way, nor counts the run twice: it did,
/// and freed the claim, so two hosts ran one migration at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_result_recorded_again_does_not_overwrite_another_hosts_claim_on_postgres() {
    use berth::ledger::{
        now_rfc3339, Claim, Ledger, MigrationClaim, MigrationOutcome, MigrationRecord, PgLedger,
        PgTarget,
    };
    let pg = Postgres::start();
    pg.create_role_and_db("berth", "pw", "berth");
    let url = pg.url("berth", "pw", "berth");
    let ledger = PgLedger::new(PgTarget::parse(&url, None, &|_| None).unwrap()).unwrap();
    let claim = |host: &str| MigrationClaim {
        project: "shop".into(),
        migration: "migrate".into(),
        digest: "sha256:aaa".into(),
        image: "api:v1".into(),
        commit: None,
        host: host.into(),
        container: "shop-migrate-migrate-aaa".into(),
    };
    let result = |host: &str, outcome: MigrationOutcome| MigrationRecord {
        project: "shop".into(),
        migration: "migrate".into(),
        digest: "sha256:aaa".into(),
        image: "api:v1".into(),
        commit: None,
        started_at: now_rfc3339(),
        ended_at: now_rfc3339(),
        exit_code: if outcome == MigrationOutcome::Succeeded {
            0
        } else {
            143
        },
        duration_ms: 1000,
        outcome,
        output: String::new(),
        attempts: 0,
        host: Some(host.into()),
    };
    assert_eq!(
        ledger.claim_migration(&claim("h1")).await.unwrap(),
        Claim::Granted
    );
    ledger
        .record_migration(&result("h1", MigrationOutcome::Failed))
        .await
        .unwrap();
    assert_eq!(
        ledger.claim_migration(&claim("h2")).await.unwrap(),
        Claim::Granted
    );
    // h1 settles its leftover container: the failure again.
    ledger
        .record_migration(&result("h1", MigrationOutcome::Failed))
        .await
        .unwrap();
    let Claim::RunningElsewhere(s) = ledger.claim_migration(&claim("h1")).await.unwrap() else {
        panic!("h2's claim was overwritten");
    };
    assert_eq!(s.host, "h2");
    ledger
        .record_migration(&result("h2", MigrationOutcome::Succeeded))
        .await
        .unwrap();
    let done = ledger
        .migration("shop", "migrate", "sha256:aaa")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(done.outcome, MigrationOutcome::Succeeded);
    assert_eq!(done.host.as_deref(), Some("h2"));
    assert_eq!(done.attempts, 2, "h1's failure once, h2's success");
}

/// The ledger's fleet primitives against a real PostgreSQL, many hosts at once: one
/// claim wins, leases are counted and lapse.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn claims_are_exclusive_and_leases_lapse_on_postgres() {
    use berth::ledger::{Claim, LeaseAnswer, LeaseKey, Ledger, MigrationClaim, PgLedger, PgTarget};
    let pg = Postgres::start();
    pg.create_role_and_db("berth", "pw", "berth");
    let url = pg.url("berth", "pw", "berth");
    let open = || {
        let target = PgTarget::parse(&url, None, &|_| None).unwrap();
        std::sync::Arc::new(PgLedger::new(target).unwrap())
    };
    // Eight hosts, each with its own connection, claim the same migration at once.
    let claims = (1..=8).map(|i| {
        let ledger = open();
        tokio::spawn(async move {
            let claim = MigrationClaim {
                project: "shop".into(),
                migration: "migrate".into(),
                digest: "sha256:aaa".into(),
                image: "api:v1".into(),
                commit: None,
                host: format!("h{i}"),
                container: format!("shop-migrate-migrate-aaa-h{i}"),
            };
            (i, ledger.claim_migration(&claim).await.unwrap())
        })
    });
    let answers: Vec<(i32, Claim)> = futures_util::future::join_all(claims)
        .await
        .into_iter()
        .map(|r| r.unwrap())
        .collect();
    let granted: Vec<i32> = answers
        .iter()
        .filter(|(_, c)| *c == Claim::Granted)
        .map(|(i, _)| *i)
        .collect();
    assert_eq!(granted.len(), 1, "{answers:?}");
    let winner = format!("h{}", granted[0]);
    for (_, c) in &answers {
        if let Claim::RunningElsewhere(s) = c {
            assert_eq!(s.host, winner);
        }
    }

    // max_hosts 2: the third host is refused until a lease lapses.
    let ledger = open();
    let key = |h: &str| LeaseKey {
        project: "shop".into(),
        service: "api".into(),
        host: h.into(),
    };
    let ttl = Duration::from_millis(1500);
    assert_eq!(
        ledger.acquire_lease(&key("a"), 2, ttl).await.unwrap(),
        LeaseAnswer::Held
    );
    assert_eq!(
        ledger
            .acquire_lease(&key("b"), 2, Duration::from_secs(60))
            .await
            .unwrap(),
        LeaseAnswer::Held
    );
    assert_eq!(
        ledger.acquire_lease(&key("c"), 2, ttl).await.unwrap(),
        LeaseAnswer::Busy(vec!["a".into(), "b".into()])
    );
    // Renewing one's own lease is always granted.
    assert_eq!(
        ledger.acquire_lease(&key("a"), 2, ttl).await.unwrap(),
        LeaseAnswer::Held
    );
    // a dies without giving its lease back: c gets in once it lapses.
    tokio::time::sleep(Duration::from_millis(1700)).await;
    assert_eq!(
        ledger.acquire_lease(&key("c"), 2, ttl).await.unwrap(),
        LeaseAnswer::Held
    );
    ledger.release_lease(&key("b")).await.unwrap();
    ledger.release_lease(&key("c")).await.unwrap();
    assert_eq!(
        pg.psql_db("berth", "SELECT count(*) FROM berth.leases"),
        "0"
    );
}

/// The reference stack's form of a migration: a profiled `migrate` compose service with
/// `x-berth.migration`, on the API's image.
fn compose_stack(f: &Fleet, image: &str) -> String {
    format!(
        "name: {p}
services:
  api:
    image: {image}
    volumes: [\"{shared}:/shared\"]
    stop_grace_period: 1s
    deploy: {{ update_config: {{ monitor: 1s }} }}
    x-berth: {{ deadline: 30s }}
  migrate:
    image: {image}
    command: [\"sh\", \"-c\", \"sleep 1; cat /version >> /shared/runs\"]
    volumes: [\"{shared}:/shared\"]
    restart: \"no\"
    profiles: [migrate]
    x-berth:
      migration: {{ gates: [api], timeout: 2m }}
",
        p = f.project,
        shared = f.shared_path(),
    )
}

#[test]
fn a_compose_job_runs_once_per_image_across_the_fleet() {
    let f = Fleet::new(2, "fleetjob");
    let im = images();
    let commit = |text: String, message: &str| {
        std::fs::write(f.repo.path().join("compose.yaml"), text).unwrap();
        f.repo.git(&["add", "-A"]);
        f.repo.git(&["commit", "-q", "-m", message]);
    };
    commit(compose_stack(&f, &im.app_v1), "v1");
    let a1 = f.agent(1, &[]);
    let a2 = f.agent(2, &[]);
    let all = [&a1, &a2];
    assert!(
        f.wait_converged(&[1, 2], "api", &im.app_v1, Duration::from_secs(90)),
        "v1 did not converge:\n{}",
        logs(&all)
    );
    commit(compose_stack(&f, &im.app_v2), "v2");
    assert!(
        f.wait_converged(&[1, 2], "api", &im.app_v2, Duration::from_secs(120)),
        "v2 did not converge:\n{}",
        logs(&all)
    );
    // Once per image across both hosts, as format v1's migrations.
    assert_eq!(f.runs(), ["app:v1", "app:v2"], "{}", logs(&all));
    let ledger = f.sql(&format!(
        "SELECT migration || ' ' || status || ' ' || attempts FROM berth.migrations WHERE project = '{}' ORDER BY started_at",
        f.project
    ));
    assert_eq!(ledger, "migrate succeeded 1\nmigrate succeeded 1");
}
