//! Faults of the host under the agent: its Docker engine restarted (with live restore
//! on and off) while idle, in a migration and in a rolling update; its state dir and its
//! clone on a full disk; and the agent itself run as a container, stopped and started
//! again. Short by default (as CI runs it); `BERTH_RELIABILITY=long` runs more rounds.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use crate::agent::{api_images, expect, http, http_unix, Agent, Repo};
use crate::support::{agent_image, images, wait_until, Engine, Project, Tmpfs};
use crate::{berth, TempDir};

fn rounds() -> usize {
    if std::env::var("BERTH_RELIABILITY").as_deref() == Ok("long") {
        5
    } else {
        1
    }
}

const WAIT: Duration = Duration::from_secs(60);
const POLL: Duration = Duration::from_millis(100);

/// api ×2 on `image`, gated by a migration that appends the image's `/version` to a
/// host file (so runs are counted outside the engine), and taking a few seconds so
/// that a fault can land in it.
fn stack(project: &str, image: &str, shared: &Path, migration: &str) -> String {
    format!(
        "project: {project}
services:
  api:
    image: {image}
    replicas: 2
    volumes: [\"{shared}:/shared\"]
    stop_grace: 2s
    update: {{ monitor: 1s, deadline: 30s, parallelism: 2 }}
migrations:
  {migration}:
    from: api
    command: [\"sh\", \"-c\", \"sleep 1; cat /version >> /shared/runs\"]
",
        shared = shared.display()
    )
}

/// What one agent on one engine of its own works with.
struct Host {
    engine: Engine,
    project: String,
    repo: Repo,
    state: TempDir,
    shared: TempDir,
}

impl Host {
    fn new(name: &str) -> Host {
        let _ = images();
        Host {
            engine: Engine::start(name),
            project: Project::unique_name(name),
            repo: Repo::new(),
            state: TempDir::default(),
            shared: TempDir::default(),
        }
    }

    /// Commits the stack on `image`; a new `migration` name runs again on every image.
    fn commit(&self, image: &str, migration: &str, message: &str) -> String {
        self.repo.commit(
            &stack(&self.project, image, self.shared.path(), migration),
            message,
        )
    }

    fn agent(&self, extra: &[&str]) -> Agent {
        let shared = format!("{}:rw", self.shared.path().display());
        let mut args = vec!["--allow-host-path", &shared];
        args.extend(extra);
        Agent::start_with_env(
            &self.repo.path().display().to_string(),
            self.state.path(),
            &args,
            &[("DOCKER_HOST", &self.engine.host())],
        )
    }

    /// Every container of the project: `name image state`, sorted.
    fn containers(&self) -> Vec<String> {
        let out = self.engine.docker_stdout([
            "ps",
            "-a",
            "--filter",
            &format!("label=berth.project={}", self.project),
            "--format",
            "{{.Names}} {{.Label \"berth.image\"}} {{.State}}",
        ]);
        let mut v: Vec<String> = out.lines().map(str::to_string).collect();
        v.sort();
        v
    }

    /// Container IDs by name.
    fn ids(&self) -> BTreeMap<String, String> {
        self.engine
            .docker_stdout([
                "ps",
                "-a",
                "--filter",
                &format!("label=berth.project={}", self.project),
                "--format",
                "{{.Names}} {{.ID}}",
            ])
            .lines()
            .filter_map(|l| l.split_once(' '))
            .map(|(n, i)| (n.to_string(), i.to_string()))
            .collect()
    }

    /// Exactly the two replicas on `image`, running, and nothing else of the project.
    fn want(&self, image: &str) -> Vec<String> {
        (1..=2)
            .map(|i| format!("{}-api-{i} {image} running", self.project))
            .collect()
    }

    /// Waits until the project is exactly the two replicas on `image`, and the
    /// agent's reconciles up to now have finished.
    fn wait_converged(&self, agent: &Agent, image: &str) {
        assert!(
            wait_until(WAIT, POLL, || self.containers() == self.want(image)),
            "{:?} != {:?}\n{}",
            self.containers(),
            self.want(image),
            agent.log()
        );
        agent.settle();
        assert_eq!(self.containers(), self.want(image), "{}", agent.log());
    }

    /// Lines the migration appended.
    fn runs(&self) -> Vec<String> {
        std::fs::read_to_string(self.shared.path().join("runs"))
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    }

    /// A container of the project whose name contains `part` runs.
    fn running(&self, part: &str) -> bool {
        self.containers()
            .iter()
            .any(|c| c.contains(part) && c.ends_with(" running"))
    }
}

/// The agent says, by all three of its means, that the engine does not answer.
fn reports_engine_down(agent: &Agent) -> bool {
    let healthz = http(agent.port, "GET", "/healthz", &[], b"");
    matches!(&healthz, Some((503, body)) if body.starts_with("the Docker engine does not answer"))
        && !agent.status()["engine_down"].is_null()
        && gauge(agent, "berth_engine_up") == Some(0.0)
}

/// ... and that it answers again.
fn reports_engine_up(agent: &Agent) -> bool {
    matches!(
        http(agent.port, "GET", "/healthz", &[], b""),
        Some((200, _))
    ) && agent.status()["engine_down"].is_null()
        && gauge(agent, "berth_engine_up") == Some(1.0)
}

/// The value of a gauge of `/metrics` without labels beyond the host's.
fn gauge(agent: &Agent, name: &str) -> Option<f64> {
    let (_, text) = http(agent.port, "GET", "/metrics", &[], b"")?;
    text.lines()
        .find(|l| l.starts_with(&format!("{name}{{")) || l.starts_with(&format!("{name} ")))
        .and_then(|l| l.split_whitespace().last()?.parse().ok())
}

/// Stops the engine, waits until the agent reports it down, and starts it again.
fn restart_engine(h: &Host, agent: &Agent, live_restore: bool) {
    h.engine.set_live_restore(live_restore);
    h.engine.stop();
    assert!(
        wait_until(WAIT, POLL, || reports_engine_down(agent)),
        "the agent did not report the engine down\n{}",
        agent.log()
    );
    h.engine.start_again();
}

/// The engine's dockerd restarted while the agent is idle, in the middle of a
/// migration and in the middle of a rolling update: each time the agent says the
/// engine is down, then converges once, exactly.
fn engine_restarts(live_restore: bool) {
    let h = Host::new(if live_restore {
        "restart-lr"
    } else {
        "restart"
    });
    let img = images();
    let versions = [&img.app_v1, &img.app_v2, &img.app_v3];
    h.commit(&img.app_v1, "m0", "v1");
    // One attempt per target: an engine that went away must not use it up.
    let agent = h.agent(&["--max-attempts", "1"]);
    h.wait_converged(&agent, &img.app_v1);
    let mut image = 0;
    let mut migrated = vec!["app:v1".to_string()];
    for round in 0..rounds() {
        // Idle: what runs is left alone, the very same containers.
        let before = h.ids();
        restart_engine(&h, &agent, live_restore);
        assert!(
            wait_until(WAIT, POLL, || reports_engine_up(&agent)),
            "{}",
            agent.log()
        );
        h.wait_converged(&agent, versions[image]);
        assert_eq!(h.ids(), before, "an idle restart replaced containers");

        // In a migration, then in a rolling update.
        for part in ["-migrate-", "-next"] {
            image = (image + 1) % versions.len();
            let from = agent.log().len();
            h.commit(versions[image], &format!("m{round}"), part);
            assert!(
                wait_until(WAIT, Duration::from_millis(20), || h.running(part)),
                "no {part} container ran\n{}",
                agent.log()
            );
            restart_engine(&h, &agent, live_restore);
            h.wait_converged(&agent, versions[image]);
            assert!(
                wait_until(WAIT, POLL, || reports_engine_up(&agent)),
                "{}",
                agent.log()
            );
            let log = agent.log();
            assert!(
                !log[from..].contains("service failed for good"),
                "the engine's restart was held against the release:\n{log}"
            );
            migrated.push(format!("app:v{}", image + 1));
            assert_eq!(h.runs(), migrated, "{log}");
        }
    }
    assert_eq!(agent.status()["failed_targets"], serde_json::json!([]));
}

#[test]
fn engine_restarts_with_live_restore_keep_containers_and_converge_once() {
    engine_restarts(true);
}

#[test]
fn engine_restarts_without_live_restore_bring_everything_back_once() {
    engine_restarts(false);
}

/// The replicas of `api` on the machine's engine are exactly `n` on `image`.
fn api_on(p: &Project, image: &str, n: u32) -> bool {
    wait_until(WAIT, POLL, || api_images(p) == expect(p, image, n))
}

#[test]
fn a_full_state_dir_fails_the_ledger_write_cleanly_and_recovers() {
    let p = Project::new("statefull");
    let img = images();
    // The state dir on a small file system of its own; its clone on another, so that
    // the fetch still works when the ledger cannot grow.
    let state = Tmpfs::mount("8m");
    let _repos = Tmpfs::mount_at(&state.path().join("repos"), "8m");
    let outside = TempDir::default();
    let shared = outside.path().join("shared");
    std::fs::create_dir_all(&shared).unwrap();
    let repo = Repo::new();
    repo.commit(&stack(p.name(), &img.app_v1, &shared, "migrate"), "v1");
    let allow = format!("{}:rw", shared.display());
    let agent = Agent::start_logged(
        &repo.path().display().to_string(),
        state.path(),
        &outside.path().join("agent.log"),
        &["--allow-host-path", &allow],
        &[],
    );
    assert!(api_on(&p, &img.app_v1, 2), "{}", agent.log());
    agent.settle();
    let runs = || std::fs::read_to_string(shared.join("runs")).unwrap_or_default();
    assert_eq!(runs(), "app:v1\n");

    state.fill();
    assert!(state.is_full());
    let from = agent.log().len();
    repo.commit(&stack(p.name(), &img.app_v2, &shared, "migrate"), "v2");
    // The ledger cannot record: the step fails, said so, and nothing moves.
    assert!(
        wait_until(WAIT, POLL, || {
            agent.status()["services"]["api"]["last_error"]
                .as_str()
                .is_some_and(|e| e.contains("full") || e.contains("No space left"))
        }),
        "{}",
        agent.log()
    );
    assert_eq!(api_images(&p), expect(&p, &img.app_v1, 2));
    assert!(!agent.log()[from..].contains("panicked"), "{}", agent.log());

    state.free();
    assert!(api_on(&p, &img.app_v2, 2), "{}", agent.log());
    agent.settle();
    // Each image migrated once; what was recorded before the disk filled is all there.
    assert_eq!(runs(), "app:v1\napp:v2\n", "{}", agent.log());
    let h = berth([
        "history",
        "--state-dir",
        &state.path().display().to_string(),
        "--output",
        "json",
    ]);
    assert_eq!(h.code, 0, "{h:?}");
    let deploys: serde_json::Value = serde_json::from_str(&h.stdout).unwrap();
    let text = deploys.to_string();
    assert!(text.contains("app:v1") && text.contains("app:v2"), "{text}");
}

/// One replica of api on `image`, replaced as soon as its successor is healthy.
fn quick_stack(project: &str, image: &str) -> String {
    format!("project: {project}\nservices:\n  api:\n    image: {image}\n    stop_grace: 2s\n    update: {{ monitor: 0s, deadline: 30s }}\n")
}

#[test]
fn a_full_clone_dir_keeps_the_last_good_commit_and_fetches_once_freed() {
    let p = Project::new("clonefull");
    let img = images();
    let state = TempDir::default();
    let repos = Tmpfs::mount_at(&state.path().join("repos"), "2m");
    let repo = Repo::new();
    repo.commit(&quick_stack(p.name(), &img.app_v1), "v1");
    let url = format!("file://{}", repo.path().display());
    let agent = Agent::start(&url, state.path(), &["--interval", "1s"]);
    assert!(api_on(&p, &img.app_v1, 1), "{}", agent.log());

    repos.fill();
    repo.commit(&quick_stack(p.name(), &img.app_v2), "v2");
    assert!(
        wait_until(WAIT, POLL, || {
            matches!(http(agent.port, "GET", "/healthz", &[], b""),
                Some((503, body)) if body.contains("fetches in a row failed"))
        }),
        "{}",
        agent.log()
    );
    assert_eq!(api_images(&p), expect(&p, &img.app_v1, 1));

    repos.free();
    assert!(api_on(&p, &img.app_v2, 1), "{}", agent.log());
    assert!(
        wait_until(WAIT, POLL, || matches!(
            http(agent.port, "GET", "/healthz", &[], b""),
            Some((200, _))
        )),
        "{}",
        agent.log()
    );
    // The clone took no harm: the next commit is fetched and applied too.
    let sha = repo.commit(&quick_stack(p.name(), &img.app_v3), "v3");
    assert!(api_on(&p, &img.app_v3, 1), "{}", agent.log());
    assert_eq!(agent.status()["applied_commit"]["sha"], sha.as_str());
}

/// api ×2 on `image`, each slot's step lasting a few seconds (start, health, monitor).
fn sidecar_stack(project: &str, image: &str) -> String {
    format!(
        "project: {project}\nservices:\n  api:\n    image: {image}\n    replicas: 2\n    stop_grace: 2s\n    update: {{ monitor: 1s, deadline: 30s }}\n"
    )
}

#[test]
fn the_agent_as_a_container_converges_stops_gracefully_and_picks_up_again() {
    let h = Host::new("sidecar");
    let img = images();
    let image = agent_image(&h.engine);
    h.repo.commit(&sidecar_stack(&h.project, &img.app_v1), "v1");
    let state = h.state.path().display().to_string();
    let repo = h.repo.path().display().to_string();
    let name = format!("{}-berth-agent", h.project);
    // As examples/deploy/compose.yaml runs it: the engine's socket, the state dir at
    // its own path, the repository (a local one, watched) at its own path.
    let socket = h.engine.dir().join("docker.sock");
    h.engine.docker_stdout([
        "run",
        "-d",
        "--name",
        &name,
        "-v",
        &format!("{}:/var/run/docker.sock", socket.display()),
        "-v",
        &format!("{state}:{state}"),
        "-v",
        &format!("{repo}:{repo}:ro"),
        "-e",
        "RUST_LOG=info",
        &image,
        "--log-format",
        "text",
        "agent",
        "--repo",
        &repo,
        "--state-dir",
        &state,
        "--drain",
        "200ms",
    ]);
    let logs = || {
        let out = h.engine.docker(["logs", &name]);
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr)
    };
    let status = || {
        http_unix(&h.state.path().join("control.sock"), "GET", "/status", b"")
            .and_then(|(_, body)| serde_json::from_str::<serde_json::Value>(&body).ok())
    };
    let converged = |image: &str, summary: &str| {
        wait_until(WAIT, POLL, || {
            h.containers() == h.want(image)
                && status().is_some_and(|s| {
                    s["applied_commit"]["summary"] == summary
                        && s["services"]["api"]["healthy"] == 2
                })
        })
    };
    assert!(
        converged(&img.app_v1, "v1"),
        "{:?}\n{}",
        h.containers(),
        logs()
    );

    // Stopped in the middle of a rolling update, with docker's own default grace.
    h.repo.commit(&sidecar_stack(&h.project, &img.app_v2), "v2");
    assert!(
        wait_until(WAIT, Duration::from_millis(20), || h.running("-next")),
        "{}",
        logs()
    );
    h.engine.docker_stdout(["stop", &name]);
    let exit = h
        .engine
        .docker_stdout(["inspect", "-f", "{{.State.ExitCode}}", &name]);
    assert_eq!(
        exit,
        "0",
        "not a clean stop (137 is docker's SIGKILL)\n{}",
        logs()
    );
    assert!(logs().contains("agent stopped"), "{}", logs());
    // The step in flight finished: no replacement left half-way, both slots serve.
    let left = h.containers();
    assert!(
        !left.iter().any(|c| c.contains("-next")),
        "{left:?}\n{}",
        logs()
    );
    let serving = left.iter().filter(|c| c.ends_with(" running")).count();
    assert!(serving >= 2, "{left:?}");

    // Started again, it picks up where it stopped.
    h.engine.docker_stdout(["start", &name]);
    assert!(
        converged(&img.app_v2, "v2"),
        "{:?}\n{}",
        h.containers(),
        logs()
    );
}
