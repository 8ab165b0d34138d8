//! Requests during rollouts: one project with a service per kind of rollout (start-first
//! one slot and two slots at a time, stop-first, scale down and up again) behind a Caddy
//! proxy configured like the reference Caddyfile, and clients that request every service
//! without pause, directly on its alias and through Caddy. Shared by the zero-downtime
//! test and the traffic benchmark.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use super::images::caddy_image;
use super::project::{ClientLoop, ClientReport, Project};
use super::{docker_stdout, images, wait_until};

/// The services, one per kind of rollout.
pub const KINDS: [&str; 4] = ["one", "two", "stop", "shrink"];

/// What each kind's service goes through.
pub const KIND_NAMES: [(&str, &str); 4] = [
    ("one", "start-first, 3 replicas, 1 at a time"),
    ("two", "start-first, 4 replicas, 2 at a time"),
    ("stop", "stop-first, 3 replicas"),
    ("shrink", "scale 4 → 2 → 4"),
];

/// The clients: (name, through Caddy, retries).
pub const CLIENTS: [(&str, bool, u32); 3] = [
    ("direct, one retry", false, 1),
    ("direct, no retry", false, 0),
    ("through Caddy, no retry", true, 0),
];

/// A project converged by one `berth` binary, with its clients.
pub struct Traffic {
    pub project: Project,
    bin: PathBuf,
    dir: tempfile::TempDir,
    state: tempfile::TempDir,
    clients: Vec<(&'static str, ClientLoop)>,
    /// `duration_ms` of every `join` logged so far.
    pub joins: Vec<u64>,
    /// Addresses the engine did not hand back across a reconnect.
    pub moved: usize,
}

impl Traffic {
    /// Converges the project at v1 with `bin` and starts the clients.
    pub fn start(name: &str, bin: &Path) -> Traffic {
        let mut t = Traffic {
            project: Project::new(name),
            bin: bin.to_path_buf(),
            dir: tempfile::tempdir().unwrap(),
            state: tempfile::tempdir().unwrap(),
            clients: Vec::new(),
            joins: Vec::new(),
            moved: 0,
        };
        std::fs::write(t.dir.path().join("Caddyfile"), caddyfile()).unwrap();
        t.write(&images().app_v1, 4);
        t.apply();
        let net = format!("{}_default", t.project.name());
        for (name, proxied, retries) in CLIENTS {
            let urls: Vec<(&str, String)> = KINDS
                .iter()
                .map(|k| {
                    let url = if proxied {
                        format!("http://proxy:8080/{k}/")
                    } else {
                        format!("http://{k}:8000/")
                    };
                    (*k, url)
                })
                .collect();
            let targets: Vec<(&str, &str)> = urls.iter().map(|(k, u)| (*k, u.as_str())).collect();
            let c = t.project.client_rounds(&net, &targets, retries);
            assert!(
                wait_until(Duration::from_secs(20), Duration::from_millis(100), || {
                    KINDS.iter().all(|k| c.report_of(k).ok > 0)
                }),
                "{name}: {:?}",
                KINDS.map(|k| c.report_of(k).lines)
            );
            t.clients.push((name, c));
        }
        t
    }

    fn write(&self, image: &str, shrink: u32) {
        std::fs::write(
            self.dir.path().join("berth.yaml"),
            stack(self.project.name(), image, shrink),
        )
        .unwrap();
    }

    /// Runs `berth apply` with its default flags; panics unless it converged.
    fn apply(&mut self) {
        let out = Command::new(&self.bin)
            .args(["--log-format", "json", "apply", "--file"])
            .arg(self.dir.path())
            .arg("--state-dir")
            .arg(self.state.path())
            .env("RUST_LOG", "info")
            .output()
            .unwrap();
        let (stdout, log) = (
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
        );
        assert!(out.status.success(), "{stdout}{log}");
        for v in log
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        {
            match v["action"].as_str() {
                Some("join") => self.joins.extend(v["duration_ms"].as_u64()),
                Some("address-changed") => self.moved += 1,
                _ => {}
            }
        }
    }

    /// Round `n` (from 1): odd rounds bump to v2 and scale `shrink` down to 2, even
    /// rounds go back to v1 and 4 replicas. Checks that every service converged.
    pub fn round(&mut self, n: usize) {
        let img = images();
        let (image, shrink) = if n % 2 == 1 {
            (&img.app_v2, 2)
        } else {
            (&img.app_v1, 4)
        };
        self.write(image, shrink);
        self.apply();
        let now = running(&self.project);
        for k in ["one", "two", "stop"] {
            assert_eq!(
                now[k].1.keys().collect::<Vec<_>>(),
                [image],
                "round {n}: {k}"
            );
        }
        assert_eq!(now["shrink"].0, shrink as usize, "round {n}");
    }

    /// Lets every client finish a few more rounds, stops them, and returns what each
    /// saw per kind.
    pub fn finish(&self) -> Vec<(&'static str, BTreeMap<&'static str, ClientReport>)> {
        for (_, c) in &self.clients {
            let before: usize = KINDS.iter().map(|k| c.report_of(k).ok).sum();
            assert!(wait_until(
                Duration::from_secs(10),
                Duration::from_millis(100),
                || KINDS.iter().map(|k| c.report_of(k).ok).sum::<usize>() > before + KINDS.len()
            ));
            c.stop_only();
        }
        self.clients
            .iter()
            .map(|(name, c)| (*name, KINDS.iter().map(|k| (*k, c.report_of(k))).collect()))
            .collect()
    }

    /// Caddy's error lines.
    pub fn proxy_errors(&self) -> Vec<String> {
        let out = super::docker(["logs", &format!("{}-proxy-1", self.project.name())]);
        String::from_utf8_lossy(&out.stderr)
            .lines()
            .filter(|l| l.contains("error"))
            .map(str::to_string)
            .collect()
    }
}

/// Failures per 1,000 requests.
pub fn per_thousand(r: &ClientReport) -> f64 {
    1000.0 * r.fail as f64 / (r.ok + r.fail).max(1) as f64
}

fn stack(project: &str, image: &str, shrink: u32) -> String {
    format!(
        "project: {project}
services:
  one:
    image: {image}
    replicas: 3
    update: {{ order: start-first, parallelism: 1, monitor: 1s }}
  two:
    image: {image}
    replicas: 4
    update: {{ order: start-first, parallelism: 2, monitor: 1s }}
  stop:
    image: {image}
    replicas: 3
    update: {{ order: stop-first, monitor: 1s }}
  shrink:
    image: {v1}
    replicas: {shrink}
    update: {{ monitor: 1s }}
  proxy:
    image: {caddy}
    volumes: [\"./Caddyfile:/etc/caddy/Caddyfile:ro\"]
    update: {{ monitor: 1s }}
",
        v1 = images().app_v1,
        caddy = caddy_image(),
    )
}

/// The options of the `api` route's `reverse_proxy` block of the reference Caddyfile
/// (`desired/Caddyfile`), so that what is proven is the configuration users copy.
fn reference_proxy_options() -> String {
    let reference =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("desired/Caddyfile"))
            .unwrap();
    let start = reference
        .find("reverse_proxy api:8000 {")
        .expect("the reference Caddyfile proxies api:8000");
    let block = &reference[start..];
    let (open, close) = (block.find('{').unwrap(), block.find('}').unwrap());
    block[open + 1..close].trim().to_string()
}

fn caddyfile() -> String {
    let options = reference_proxy_options().replace('\n', "\n\t");
    let routes: String = KINDS
        .iter()
        .map(|k| {
            format!("\thandle_path /{k}/* {{\n\t\treverse_proxy {k}:8000 {{\n\t\t\t{options}\n\t\t}}\n\t}}\n")
        })
        .collect();
    format!("{{\n\tauto_https off\n}}\n\n:8080 {{\n{routes}}}\n")
}

/// Per service: running replicas and their count by image.
fn running(p: &Project) -> BTreeMap<String, (usize, BTreeMap<String, usize>)> {
    let out = docker_stdout([
        "ps",
        "--filter",
        &format!("label=berth.project={}", p.name()),
        "--format",
        "{{.Label \"berth.service\"}} {{.Label \"berth.image\"}}",
    ]);
    let mut by: BTreeMap<String, (usize, BTreeMap<String, usize>)> = BTreeMap::new();
    for (service, image) in out.lines().filter_map(|l| l.split_once(' ')) {
        let e = by.entry(service.to_string()).or_default();
        e.0 += 1;
        *e.1.entry(image.to_string()).or_default() += 1;
    }
    by
}
