//! Commit → first action of the agent, for a watched local repository and for the
//! webhook. `cargo bench --bench latency [-- ROUNDS]` (default 10). The agent's own log
//! timestamps mark its actions; the commit (or the webhook request) is timed here on the
//! same clock.

#[path = "../tests/support/mod.rs"]
mod support;

use std::path::Path;
use std::process::{Child, Command};
use std::time::{Duration, SystemTime};

use support::{images, wait_until, Project};

fn git(dir: &Path, args: &[&str]) {
    let ok = Command::new("git")
        .args([
            "-c",
            "user.name=Bench",
            "-c",
            "user.email=bench@example.com",
            "-c",
            "commit.gpgsign=false",
        ])
        .args(args)
        .current_dir(dir)
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .status()
        .unwrap()
        .success();
    assert!(ok);
}

fn stack(project: &str, image: &str) -> String {
    format!("project: {project}\nservices:\n  api:\n    image: {image}\n    stop_grace: 1s\n    update: {{ monitor: 0s }}\n")
}

fn commit(dir: &Path, yaml: &str) -> SystemTime {
    std::fs::write(dir.join("berth.yaml"), yaml).unwrap();
    git(dir, &["add", "-A"]);
    git(dir, &["commit", "-q", "-m", "bump"]);
    SystemTime::now()
}

fn agent(repo: &str, state: &Path, port: u16, extra: &[&str]) -> Child {
    let log = std::fs::File::create(state.join("agent.log")).unwrap();
    Command::new(env!("CARGO_BIN_EXE_berth"))
        .args([
            "agent",
            "--repo",
            repo,
            "--state-dir",
            state.to_str().unwrap(),
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--drain",
            "0s",
        ])
        .args(extra)
        .env("RUST_LOG", "info")
        .env("NO_COLOR", "1")
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .unwrap()
}

/// Timestamps of log lines containing `needle`, in order.
fn stamps(state: &Path, needle: &str) -> Vec<SystemTime> {
    let log = std::fs::read_to_string(state.join("agent.log")).unwrap_or_default();
    log.lines()
        .filter(|l| l.contains(needle))
        .filter_map(|l| l.split_whitespace().next())
        .filter_map(|ts| {
            time::OffsetDateTime::parse(ts, &time::format_description::well_known::Rfc3339).ok()
        })
        .map(|t| SystemTime::UNIX_EPOCH + Duration::from_nanos(t.unix_timestamp_nanos() as u64))
        .collect()
}

fn ms(later: SystemTime, earlier: SystemTime) -> f64 {
    later
        .duration_since(earlier)
        .map(|d| d.as_secs_f64() * 1000.0)
        .unwrap_or(0.0)
}

fn summary(name: &str, mut v: Vec<f64>) {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    println!(
        "{name:<44} median {:>7.1} ms  min {:>7.1} ms  max {:>7.1} ms  (n={})",
        v[v.len() / 2],
        v[0],
        v[v.len() - 1],
        v.len()
    );
}

fn post_webhook(port: u16, secret: &[u8]) {
    use hmac::{Hmac, Mac};
    use std::io::{Read, Write};
    let body = br#"{"ref":"refs/heads/main"}"#;
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret).unwrap();
    mac.update(body);
    let sig = hex::encode(mac.finalize().into_bytes());
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(s, "POST /hooks/git HTTP/1.1\r\nHost: x\r\nConnection: close\r\nX-Hub-Signature-256: sha256={sig}\r\nContent-Length: {}\r\n\r\n", body.len()).unwrap();
    s.write_all(body).unwrap();
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    assert!(out.starts_with("HTTP/1.1 202"), "{out}");
}

fn run(kind: &str, rounds: usize) -> (Vec<f64>, Vec<f64>) {
    let img = images();
    let p = Project::new(kind);
    let repo = tempfile::tempdir().unwrap();
    let state = tempfile::tempdir().unwrap();
    git(repo.path(), &["init", "-q", "-b", "main"]);
    commit(repo.path(), &stack(p.name(), &img.app_v1));
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let secret = state.path().join("secret");
    std::fs::write(&secret, "bench-secret").unwrap();
    let mut child = if kind == "watch" {
        agent(&repo.path().display().to_string(), state.path(), port, &[])
    } else {
        let url = format!("file://{}", repo.path().display());
        agent(
            &url,
            state.path(),
            port,
            &[
                "--interval",
                "1h",
                "--webhook-secret-file",
                secret.to_str().unwrap(),
            ],
        )
    };
    let (mut first, mut docker) = (Vec::new(), Vec::new());
    assert!(wait_until(
        Duration::from_secs(60),
        Duration::from_millis(50),
        || !stamps(state.path(), "reconcile finished").is_empty()
    ));
    for round in 0..rounds {
        let image = if round % 2 == 0 {
            &img.app_v2
        } else {
            &img.app_v1
        };
        let seen = stamps(state.path(), "new-commit").len();
        let started = stamps(state.path(), "action=\"create\"").len();
        let mut t0 = commit(repo.path(), &stack(p.name(), image));
        if kind == "webhook" {
            t0 = SystemTime::now();
            post_webhook(port, b"bench-secret");
        }
        assert!(wait_until(
            Duration::from_secs(30),
            Duration::from_millis(20),
            || stamps(state.path(), "action=\"create\"").len() > started
        ));
        first.push(ms(stamps(state.path(), "new-commit")[seen], t0));
        docker.push(ms(stamps(state.path(), "action=\"create\"")[started], t0));
        std::thread::sleep(Duration::from_millis(1500));
    }
    let _ = child.kill();
    let _ = child.wait();
    (first, docker)
}

fn main() {
    let rounds: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(10);
    let (w1, w2) = run("watch", rounds);
    let (h1, h2) = run("webhook", rounds);
    println!("commit -> first action, {rounds} rounds");
    summary("watched local repo: new commit loaded", w1);
    summary("watched local repo: first container created", w2);
    summary("webhook: new commit loaded", h1);
    summary("webhook: first container created", h2);
}
