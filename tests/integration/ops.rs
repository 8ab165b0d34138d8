//! What operators see: /metrics, /status, /healthz, notifications, and the secret that
//! must appear nowhere.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use crate::agent::{http, Agent, Repo};
use crate::support::{docker_stdout, images, wait_until, Project};
use crate::{berth, Stack, TempDir};

fn stack(project: &str, image: &str, env_file: &std::path::Path) -> String {
    format!(
        "project: {project}
volumes:
  data: {{}}
services:
  api:
    image: {image}
    replicas: 2
    env: {{ API_TOKEN: tok-committed-9c1e, MODE: plain }}
    env_file: {}
    volumes: [\"data:/data\"]
    stop_grace: 2s
    update: {{ monitor: 0s, deadline: 20s }}
migrations:
  migrate:
    from: api
    command: [\"sh\", \"-c\", \"echo connecting to $DATABASE_URL with $API_TOKEN; exit 4\"]
    timeout: 30s
",
        env_file.display()
    )
}

/// A tiny HTTP server recording POST bodies; answers 500 to the first `fail_first`.
pub struct Sink {
    pub port: u16,
    bodies: Arc<Mutex<Vec<String>>>,
}

impl Sink {
    pub fn start(fail_first: usize) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let bodies = Arc::new(Mutex::new(Vec::new()));
        let seen = bodies.clone();
        thread::spawn(move || {
            let mut count = 0;
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut len = 0;
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                        break;
                    }
                    if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                        len = v.trim().parse().unwrap_or(0);
                    }
                }
                let mut body = vec![0; len];
                let _ = reader.read_exact(&mut body);
                count += 1;
                let status = if count <= fail_first {
                    "500 Internal Server Error"
                } else {
                    "200 OK"
                };
                if count > fail_first {
                    seen.lock()
                        .unwrap()
                        .push(String::from_utf8_lossy(&body).into_owned());
                }
                let _ = write!(
                    stream,
                    "HTTP/1.1 {status}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                );
            }
        });
        Self { port, bodies }
    }

    pub fn events(&self) -> Vec<serde_json::Value> {
        self.bodies
            .lock()
            .unwrap()
            .iter()
            .filter_map(|b| serde_json::from_str(b).ok())
            .collect()
    }
}

#[test]
fn metrics_status_healthz_notifications_and_no_secret_anywhere() {
    let p = Project::new("ops");
    let img = images();
    let s = Stack::new();
    let env_file = s.env.path().join("api.env");
    std::fs::write(
        &env_file,
        "DATABASE_URL=postgres://app:hunter2-envfile-7f3a@db/app\n",
    )
    .unwrap();
    let repo = Repo::new();
    // The first deploy runs the migration, which fails and prints both secrets.
    repo.commit(&stack(p.name(), &img.app_v1, &env_file), "first");
    let live = Sink::start(1);
    let dead = format!("http://127.0.0.1:{}/dead", crate::agent::free_port());
    let state = TempDir::default();
    let agent = repo.agent(
        state.path(),
        &[
            "--notify-url",
            &dead,
            "--notify-url",
            &format!("http://127.0.0.1:{}/hook", live.port),
            "--max-attempts",
            "1",
            "--env-dir",
            &s.env.path().display().to_string(),
        ],
    );
    assert!(
        wait_until(Duration::from_secs(30), Duration::from_millis(200), || [
            "failed", "held"
        ]
        .iter()
        .any(|o| agent.status()["services"]["api"]["last_outcome"] == *o)),
        "{}",
        agent.log()
    );
    // Fix the migration: the deploy goes through, and the live endpoint hears of it
    // although a dead one comes first and the first delivery gets a 500.
    let fixed = stack(p.name(), &img.app_v1, &env_file).replace("exit 4", "exit 0");
    let sha = repo.commit(&fixed, "fix migration");
    assert!(
        wait_until(Duration::from_secs(40), Duration::from_millis(200), || live
            .events()
            .iter()
            .any(|e| e["kind"] == "deployed" && e["commit"] == sha.as_str())),
        "{:?}\n{}",
        live.events(),
        agent.log()
    );
    let deployed = live
        .events()
        .into_iter()
        .find(|e| e["kind"] == "deployed")
        .unwrap();
    assert_eq!(
        (deployed["project"].as_str(), deployed["service"].as_str()),
        (Some(p.name()), Some("api"))
    );
    assert!(
        live.events().iter().any(|e| e["kind"] == "failed"),
        "{:?}",
        live.events()
    );

    // /metrics, parsed as Prometheus text.
    let (code, text) = http(agent.port, "GET", "/metrics", &[], b"").unwrap();
    assert_eq!(code, 200);
    let lines = text
        .lines()
        .filter(|l| *l != "# EOF")
        .map(|l| Ok(l.to_string()));
    let scrape = prometheus_parse::Scrape::parse(lines).unwrap();
    let names: std::collections::BTreeSet<&str> =
        scrape.samples.iter().map(|s| s.metric.as_str()).collect();
    for series in [
        "berth_reconcile_duration_seconds",
        "berth_reconciles_total",
        "berth_deploys_total",
        "berth_migration_runs_total",
        "berth_applied_commit_info",
        "berth_desired_replicas",
        "berth_running_replicas",
        "berth_healthy_replicas",
        "berth_failed_targets",
        "berth_git_fetch_errors_total",
    ] {
        assert!(names.contains(series), "{series} missing from {names:?}");
    }
    let healthy = scrape
        .samples
        .iter()
        .find(|s| s.metric == "berth_healthy_replicas" && s.labels.get("service") == Some("api"))
        .unwrap();
    assert!(
        matches!(healthy.value, prometheus_parse::Value::Gauge(v) if v == 2.0),
        "{healthy:?}"
    );
    let commit = scrape
        .samples
        .iter()
        .find(|s| s.metric == "berth_applied_commit_info")
        .unwrap();
    assert_eq!(commit.labels.get("commit"), Some(sha.as_str()));

    // /status.
    let status = agent.status();
    assert_eq!(status["applied_commit"]["sha"], sha.as_str());
    let api = &status["services"]["api"];
    assert_eq!(
        (
            api["desired"].as_u64(),
            api["running"].as_u64(),
            api["healthy"].as_u64()
        ),
        (Some(2), Some(2), Some(2))
    );
    assert_eq!(api["desired_image"], img.app_v1.as_str());
    assert_eq!(api["running_images"][&img.app_v1], 2);
    assert_eq!(api["paused"], false);
    assert_eq!(api["last_deploy"]["outcome"], "converged");
    assert_eq!(
        http(agent.port, "GET", "/healthz", &[], b"").unwrap(),
        (200, "ok\n".to_string())
    );

    // Every channel, searched for both secrets.
    let listen = format!("127.0.0.1:{}", agent.port);
    let sd = state.path().display().to_string();
    let mut outputs = vec![agent.log(), text, status.to_string()];
    for args in [
        vec!["status", "--listen", listen.as_str()],
        vec!["status", "--listen", listen.as_str(), "--output", "json"],
        vec!["history", "--state-dir", sd.as_str()],
        vec!["history", "--state-dir", sd.as_str(), "--output", "json"],
    ] {
        let r = berth(&args);
        assert_eq!(r.code, 0, "{args:?}: {r:?}");
        outputs.push(r.stdout);
        outputs.push(r.stderr);
    }
    s.write(&stack(p.name(), &img.app_v2, &env_file));
    for r in [
        s.plan(),
        berth([
            "plan",
            "--file",
            &s.path().display().to_string(),
            "--output",
            "json",
            "--env-dir",
            &s.env.path().display().to_string(),
        ]),
        berth(["validate", &s.path().display().to_string()]),
    ] {
        outputs.push(r.stdout);
        outputs.push(r.stderr);
    }
    outputs.extend(live.bodies.lock().unwrap().iter().cloned());
    for c in docker_stdout([
        "ps",
        "-aq",
        "--filter",
        &format!("label=berth.project={}", p.name()),
    ])
    .lines()
    {
        outputs.push(docker_stdout([
            "inspect",
            "-f",
            "{{json .Config.Labels}}",
            c,
        ]));
    }
    let history = berth(["history", "--state-dir", &sd, "--output", "json"]).stdout;
    assert!(
        history.contains("connecting to *** with ***"),
        "the migration's output is kept, masked: {history}"
    );
    for out in &outputs {
        for secret in ["hunter2-envfile-7f3a", "tok-committed-9c1e"] {
            assert!(!out.contains(secret), "{secret} leaked in:\n{out}");
        }
    }
}

#[test]
fn a_gone_remote_keeps_the_last_good_and_reports_stale() {
    let p = Project::new("stale");
    let img = images();
    let repo = Repo::new();
    repo.commit(
        &format!(
            "project: {}\nservices:\n  api:\n    image: {}\n    update: {{ monitor: 0s }}\n",
            p.name(),
            img.app_v1
        ),
        "first",
    );
    let state = TempDir::default();
    let url = format!("file://{}", repo.path().display());
    let agent = Agent::start(&url, state.path(), &["--interval", "300ms"]);
    assert!(
        wait_until(
            Duration::from_secs(30),
            Duration::from_millis(100),
            || http(agent.port, "GET", "/healthz", &[], b"").map(|r| r.0) == Some(200)
        ),
        "{}",
        agent.log()
    );
    let moved = repo.path().with_extension("gone");
    std::fs::rename(repo.path(), &moved).unwrap();
    assert!(
        wait_until(
            Duration::from_secs(20),
            Duration::from_millis(100),
            || http(agent.port, "GET", "/healthz", &[], b"").map(|r| r.0) == Some(503)
        ),
        "{}",
        agent.log()
    );
    let (_, why) = http(agent.port, "GET", "/healthz", &[], b"").unwrap();
    assert!(
        why.contains("fetches in a row failed; converging the last good commit"),
        "{why}"
    );
    assert_eq!(
        docker_stdout([
            "ps",
            "-q",
            "--filter",
            &format!("label=berth.project={}", p.name())
        ])
        .lines()
        .count(),
        1
    );
    std::fs::rename(&moved, repo.path()).unwrap();
    assert!(
        wait_until(
            Duration::from_secs(20),
            Duration::from_millis(100),
            || http(agent.port, "GET", "/healthz", &[], b"").map(|r| r.0) == Some(200)
        ),
        "{}",
        agent.log()
    );
}
