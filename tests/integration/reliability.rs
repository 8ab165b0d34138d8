//! The reliability suite. Short by default (as CI runs it); `BERTH_RELIABILITY=long`
//! runs more rounds.

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use crate::agent::{api_images, Agent, Repo};
use crate::migrate::runs;
use crate::support::{docker_ok, docker_stdout, images, wait_until, Project, Registry};
use crate::TempDir;

fn long() -> bool {
    std::env::var("BERTH_RELIABILITY").as_deref() == Ok("long")
}

/// A small deterministic generator; the seed is printed so a failure can be replayed.
struct Rng(u64);

impl Rng {
    fn new() -> Self {
        let seed = std::env::var("BERTH_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap()
                    .as_nanos() as u64
            });
        eprintln!("reliability seed: BERTH_SEED={seed}");
        Self(seed)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % n
    }
}

/// Every container of the project: `name image-label`.
fn all_containers(p: &Project) -> Vec<String> {
    let out = docker_stdout([
        "ps",
        "-a",
        "--filter",
        &format!("label=berth.project={}", p.name()),
        "--format",
        "{{.Names}} {{.Label \"berth.image\"}} {{.State}}",
    ]);
    let mut v: Vec<String> = out.lines().map(str::to_string).collect();
    v.sort();
    v
}

fn migrated_stack(project: &str, image: &str, replicas: u32, worker: u32) -> String {
    format!(
        "project: {project}
volumes:
  data: {{}}
services:
  api:
    image: &app {image}
    replicas: {replicas}
    volumes: [\"data:/data\"]
    stop_grace: 2s
    update: {{ monitor: 0s, deadline: 20s }}
  worker:
    image: *app
    replicas: {worker}
    stop_grace: 2s
    update: {{ monitor: 0s, deadline: 20s }}
migrations:
  migrate:
    from: api
    command: [\"sh\", \"-c\", \"sleep 1; cat /version >> /data/runs\"]
"
    )
}

#[test]
fn kill_9_of_the_agent_at_random_points_then_exact_convergence() {
    let p = Project::new("chaos");
    let img = images();
    let mut rng = Rng::new();
    let repo = Repo::new();
    let state = TempDir::default();
    let (mut image, mut replicas, mut workers) = (&img.app_v1, 2u32, 1u32);
    repo.commit(&migrated_stack(p.name(), image, replicas, workers), "start");
    let rounds = if long() { 100 } else { 20 };
    for round in 0..rounds {
        // A rollout, a scale change, or both, with a migration whenever the image moves.
        match rng.below(3) {
            0 => {
                image = if image == &img.app_v1 {
                    &img.app_v2
                } else {
                    &img.app_v1
                }
            }
            1 => replicas = 1 + rng.below(3) as u32,
            _ => {
                image = if image == &img.app_v1 {
                    &img.app_v2
                } else {
                    &img.app_v1
                };
                workers = 1 + rng.below(2) as u32;
            }
        }
        repo.commit(
            &migrated_stack(p.name(), image, replicas, workers),
            &format!("round {round}"),
        );
        let agent = repo.agent(state.path(), &[]);
        thread::sleep(Duration::from_millis(200 + rng.below(3000)));
        drop(agent); // SIGKILL
    }
    let agent = repo.agent(state.path(), &[]);
    let mut want: Vec<String> = (1..=replicas)
        .map(|i| format!("{}-api-{i} {image} running", p.name()))
        .chain((1..=workers).map(|i| format!("{}-worker-{i} {image} running", p.name())))
        .collect();
    want.sort();
    assert!(
        wait_until(
            Duration::from_secs(90),
            Duration::from_millis(200),
            || all_containers(&p) == want
        ),
        "{:?} != {want:?}\n{}",
        all_containers(&p),
        agent.log()
    );
    // No migration ran twice for one image.
    let r = runs(&p);
    let distinct: BTreeSet<&String> = r.iter().collect();
    assert_eq!(distinct.len(), r.len(), "a migration ran twice: {r:?}");
    assert!(
        r.contains(&if image == &img.app_v1 {
            "app:v1".to_string()
        } else {
            "app:v2".to_string()
        }),
        "{r:?}"
    );
}

/// A proxy in front of the Docker socket that can be cut off and restored.
struct SocketProxy {
    path: PathBuf,
    up: Arc<AtomicBool>,
}

impl SocketProxy {
    fn start(dir: &Path) -> Self {
        let path = dir.join("docker.sock");
        let listener = UnixListener::bind(&path).unwrap();
        let up = Arc::new(AtomicBool::new(true));
        let flag = up.clone();
        thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { continue };
                if !flag.load(Ordering::SeqCst) {
                    drop(client);
                    continue;
                }
                let Ok(engine) = UnixStream::connect("/var/run/docker.sock") else {
                    continue;
                };
                let flag = flag.clone();
                pipe(client, engine, flag);
            }
        });
        Self { path, up }
    }

    fn set(&self, up: bool) {
        self.up.store(up, Ordering::SeqCst);
    }
}

/// Copies both ways until either side closes or the proxy is cut.
fn pipe(a: UnixStream, b: UnixStream, up: Arc<AtomicBool>) {
    for (mut from, mut to) in [(a.try_clone().unwrap(), b.try_clone().unwrap()), (b, a)] {
        let up = up.clone();
        thread::spawn(move || {
            let _ = from.set_read_timeout(Some(Duration::from_millis(200)));
            let mut buf = [0u8; 16384];
            loop {
                if !up.load(Ordering::SeqCst) {
                    let _ = to.shutdown(std::net::Shutdown::Both);
                    return;
                }
                match from.read(&mut buf) {
                    Ok(0) => {
                        let _ = to.shutdown(std::net::Shutdown::Write);
                        return;
                    }
                    Ok(n) => {
                        if to.write_all(&buf[..n]).is_err() {
                            return;
                        }
                    }
                    Err(e)
                        if matches!(
                            e.kind(),
                            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                        ) => {}
                    Err(_) => return,
                }
            }
        });
    }
}

fn stack(project: &str, image: &str, replicas: u32) -> String {
    format!("project: {project}\nservices:\n  api:\n    image: {image}\n    replicas: {replicas}\n    stop_grace: 2s\n    update: {{ monitor: 0s, deadline: 20s }}\n")
}

#[test]
fn the_agent_rides_out_an_unreachable_docker_socket() {
    let p = Project::new("sockcut");
    let img = images();
    let dir = TempDir::default();
    let proxy = SocketProxy::start(dir.path());
    let repo = Repo::new();
    repo.commit(&stack(p.name(), &img.app_v1, 2), "first");
    let state = TempDir::default();
    let agent = Agent::start_with_env(
        &repo.path().display().to_string(),
        state.path(),
        &[],
        &[("DOCKER_HOST", &format!("unix://{}", proxy.path.display()))],
    );
    let want = |image: &str| {
        (1..=2)
            .map(|i| format!("{}-api-{i} {image}", p.name()))
            .collect::<Vec<_>>()
    };
    assert!(
        wait_until(
            Duration::from_secs(30),
            Duration::from_millis(200),
            || api_images(&p) == want(&img.app_v1)
        ),
        "{}",
        agent.log()
    );
    proxy.set(false);
    repo.commit(
        &stack(p.name(), &img.app_v2, 2),
        "bump while the engine is away",
    );
    assert!(
        wait_until(Duration::from_secs(20), Duration::from_millis(200), || {
            agent.log().contains("reconcile failed")
        }),
        "{}",
        agent.log()
    );
    assert_eq!(api_images(&p), want(&img.app_v1));
    proxy.set(true);
    assert!(
        wait_until(
            Duration::from_secs(60),
            Duration::from_millis(200),
            || api_images(&p) == want(&img.app_v2)
        ),
        "{}",
        agent.log()
    );
}

/// Times of the log lines containing `needle`.
fn times(log: &str, needle: &str) -> Vec<f64> {
    log.lines()
        .filter(|l| l.contains(needle))
        .filter_map(|l| l.split_whitespace().next())
        .filter_map(|ts| {
            time::OffsetDateTime::parse(ts, &time::format_description::well_known::Rfc3339).ok()
        })
        .map(|t| t.unix_timestamp_nanos() as f64 / 1e9)
        .collect()
}

#[test]
fn registry_down_during_a_bump_backs_off_and_converges_when_it_returns() {
    let p = Project::new("regdown");
    let img = images();
    let reg = Registry::new();
    let v1 = reg.push_copy(&img.app_v1, &format!("{}/app", p.name()), "v1");
    let v2 = reg.push_copy(&img.app_v2, &format!("{}/app", p.name()), "v2");
    docker_ok(["rmi", &v2]);
    let repo = Repo::new();
    repo.commit(&stack(p.name(), &v1, 2), "first");
    let state = TempDir::default();
    let agent = repo.agent(state.path(), &["--max-attempts", "6"]);
    assert!(
        wait_until(
            Duration::from_secs(30),
            Duration::from_millis(200),
            || api_images(&p).len() == 2
        ),
        "{}",
        agent.log()
    );
    reg.stop();
    let started = Instant::now();
    repo.commit(&stack(p.name(), &v2, 2), "bump");
    // Three failed attempts (t, t+1 s, t+3 s), then the registry comes back.
    assert!(
        wait_until(
            Duration::from_secs(20),
            Duration::from_millis(100),
            || times(&agent.log(), "backing off").len() >= 3
        ),
        "{}",
        agent.log()
    );
    assert_eq!(
        api_images(&p),
        (1..=2)
            .map(|i| format!("{}-api-{i} {v1}", p.name()))
            .collect::<Vec<_>>()
    );
    reg.start();
    assert!(
        wait_until(
            Duration::from_secs(30),
            Duration::from_millis(200),
            || api_images(&p)
                == (1..=2)
                    .map(|i| format!("{}-api-{i} {v2}", p.name()))
                    .collect::<Vec<_>>()
        ),
        "{}",
        agent.log()
    );
    let t = times(&agent.log(), "backing off");
    let gaps: Vec<f64> = t.windows(2).map(|w| w[1] - w[0]).collect();
    // The waits double from 1 s (±10 % jitter), plus the time of each attempt.
    assert!(gaps[0] >= 0.85 && gaps[0] < 3.0, "{gaps:?}");
    assert!(gaps[1] >= 1.75 && gaps[1] < 5.0, "{gaps:?}");
    assert!(started.elapsed() < Duration::from_secs(60));
    drop(agent);
    docker_ok(["rmi", &v1]);
    docker_ok(["rmi", &v2]);
}

#[test]
fn an_unhealthy_release_follows_the_backoff_and_stops_after_max_attempts() {
    let p = Project::new("nohot");
    let img = images();
    let repo = Repo::new();
    repo.commit(&stack(p.name(), &img.app_v1, 1), "first");
    let state = TempDir::default();
    let agent = repo.agent(state.path(), &["--max-attempts", "3"]);
    assert!(
        wait_until(
            Duration::from_secs(30),
            Duration::from_millis(200),
            || api_images(&p).len() == 1
        ),
        "{}",
        agent.log()
    );
    repo.commit(&stack(p.name(), &img.app_unhealthy, 1), "bad release");
    assert!(
        wait_until(
            Duration::from_secs(60),
            Duration::from_millis(200),
            || agent.status()["failed_targets"][0]["given_up"] == true
        ),
        "{}",
        agent.log()
    );
    // No more attempts after giving up, also not on the next reconcile (the exact
    // schedule, over an hour, is a unit test of the agent on a paused clock).
    agent.settle();
    let log = agent.log();
    let attempts = times(&log, "action=\"gate-failed\"");
    assert_eq!(attempts.len(), 3, "{log}");
    let gaps: Vec<f64> = attempts.windows(2).map(|w| w[1] - w[0]).collect();
    // Each gap: the backoff (1 s, then 2 s, ±10 %) plus one gate (start and ~2 s to unhealthy).
    assert!(gaps[0] >= 0.9 + 1.5 && gaps[0] < 8.0, "{gaps:?}");
    assert!(gaps[1] >= 1.8 + 1.5 && gaps[1] < 10.0, "{gaps:?}");
    // The delays the agent chose: 1 s, then 2 s, each within the ±10 % jitter.
    let delays: Vec<u64> = log
        .lines()
        .filter(|l| l.contains("backing off"))
        .filter_map(|l| {
            l.split("retry_in_ms=")
                .nth(1)?
                .split_whitespace()
                .next()?
                .parse()
                .ok()
        })
        .collect();
    assert_eq!(delays.len(), 2, "{log}");
    assert!(
        (900..=1100).contains(&delays[0]) && (1800..=2200).contains(&delays[1]),
        "{delays:?}"
    );
    assert_eq!(
        api_images(&p),
        [format!("{}-api-1 {}", p.name(), img.app_v1)]
    );
}

#[test]
fn thirty_bad_commits_are_each_refused_and_nothing_is_touched() {
    let p = Project::new("corpus");
    let img = images();
    let repo = Repo::new();
    let good = stack(p.name(), &img.app_v1, 1);
    repo.commit(&good, "good");
    let state = TempDir::default();
    let agent = repo.agent(state.path(), &[]);
    assert!(
        wait_until(
            Duration::from_secs(30),
            Duration::from_millis(200),
            || api_images(&p).len() == 1
        ),
        "{}",
        agent.log()
    );
    let before = docker_stdout([
        "ps",
        "-q",
        "--filter",
        &format!("label=berth.project={}", p.name()),
    ]);
    let n = p.name();
    let v1 = &img.app_v1;
    let big = format!("{good}# {}\n", "x".repeat(1 << 20));
    let corpus: Vec<(String, &str)> = vec![
        (format!("project: {n}\nservices: [oops"), "invalid YAML"),
        ("project: [a, b]\nservices: {}\n".to_string(), "`project` must be a string"),
        (format!("project: {n}\nservices:\n  api:\n    image: {v1}\n    replicas: many\n"), "expected a whole number"),
        (format!("project: {n}\nservices:\n  api:\n    image: {v1}\n    replica: 2\n"), "did you mean `replicas`?"),
        (format!("project: {n}\nservices:\n  api:\n    image: {v1}\n    depends_on: [web]\n  web:\n    image: {v1}\n    depends_on: [api]\n"), "forms a cycle"),
        (format!("project: {n}\nservices:\n  a:\n    image: {v1}\n    ports: [\"8088:80\"]\n  b:\n    image: {v1}\n    ports: [\"8088:80\"]\n"), "already published by service `a`"),
        (format!("project: {n}\nservices:\n  api:\n    image: {v1}\n    volumes: [\"../../etc/passwd:/x\"]\n"), "leads outside the repository"),
        (format!("project: {n}\nservices:\n  api:\n    image: {v1}\n    env_file: relative/api.env\n"), "must be an absolute path"),
        (big, "larger than 1024 KiB"),
        (format!("project: {n}\nservices:\n  api:\n    image: caddy\n"), "is not pinned"),
        (format!("project: {n}\nservices:\n  api:\n    image: caddy:latest\n"), "is not pinned"),
        (format!("project: {n}\nservices:\n  api:\n    image: {v1}\n  api:\n    image: {v1}\n"), "written twice"),
        (format!("project: {n}\nservices:\n  api:\n    image: {v1}\n    depends_on: [nope]\n"), "which is not a service"),
        (format!("project: {n}\nservices:\n  api:\n    image: {v1}\nmigrations:\n  m:\n    from: nope\n    command: [x]\n"), "`nope` is not a service"),
        (format!("project: {n}\nservices:\n  api:\n    image: {v1}\nmigrations:\n  m:\n    from: api\n    command: [x]\n    gates: [ghost]\n"), "`ghost` is not a service"),
        (format!("project: {n}\nservices:\n  api:\n    image: {v1}\n    ports: [\"80:80\"]\n    update: {{ order: start-first }}\n"), "cannot be used by a service that publishes host ports"),
        (format!("project: {n}\nservices:\n  api:\n    image: {v1}\n    stop_grace: 10\n"), "has no unit"),
        (format!("project: {n}\nservices:\n  api:\n    image: {v1}\n    update: {{ deadline: 100h }}\n"), "out of range"),
        (format!("project: {n}\nservices:\n  api:\n    image: {v1}\n    resources: {{ memory: 1k }}\n"), "memory limit is out of range"),
        (format!("project: {n}\nservices:\n  api:\n    image: {v1}\n    resources: {{ cpus: 0 }}\n"), "cpus is out of range"),
        (format!("project: {n}\nservices:\n  api:\n    image: {v1}\n    update: {{ parallelism: 0 }}\n"), "out of range"),
        (format!("project: {n}\nservices:\n  api:\n    image: {v1}\n    volumes: [\"/etc:/host-etc\"]\n"), "outside the host paths this host allows"),
        (format!("project: {n}\nservices:\n  api:\n    image: {v1}\n    volumes: [\"/var/run/docker.sock:/var/run/docker.sock\"]\n"), "is a runtime socket that hands the host to the container"),
        (format!("project: {n}\nservices:\n  api:\n    image: {v1}\n    volumes: [\"ghost:/data\"]\n"), "volume `ghost` is not declared"),
        (format!("project: {n}\nservices:\n  api:\n    image: {v1}\n    networks: [nowhere]\n"), "network `nowhere` is not declared"),
        (format!("project: {n}\nservices:\n  api:\n    image: {v1}\n    command: uvicorn app\n"), "write it as a list"),
        (format!("project: {n}\nservices:\n  api:\n    image: {v1}\n    health: {{ test: [curl] }}\n"), "must start with \"CMD\""),
        (format!("project: {n}\nservices:\n  Api:\n    image: {v1}\n"), "service name `Api` is invalid"),
        ("services:\n  api:\n    image: x/api:v1\n".to_string(), "`project` is missing"),
        (format!("project: {n}\nservices:\n  api:\n    image: {v1}\n    update: {{ order: sideways }}\n"), "unknown update order"),
        (format!("project: {n}\nservices:\n  api:\n    image: {v1}\n    ports: [\"80:80/sctp\"]\n"), "unknown protocol"),
        (format!("project: {n}\nservices:\n  api:\n    image: {v1}\n    env: {{ \"1BAD\": x }}\n"), "env name `1BAD` is invalid"),
    ];
    assert!(corpus.len() >= 30);
    for (yaml, expected) in &corpus {
        let sha = repo.commit(yaml, "bad");
        assert!(
            wait_until(Duration::from_secs(20), Duration::from_millis(50), || agent
                .status()["head"]
                == sha.as_str()),
            "{expected}: {}",
            agent.log()
        );
        let error = agent.status()["last_error"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        assert!(
            error.contains(&sha[..12]) && error.contains(expected),
            "wanted `{expected}` in: {error}"
        );
        assert_eq!(agent.status()["applied_commit"]["summary"], "good");
    }
    assert_eq!(
        docker_stdout([
            "ps",
            "-q",
            "--filter",
            &format!("label=berth.project={}", p.name())
        ]),
        before
    );
}
