//! `berth agent`: follows a branch of a real git repository made by the test.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::Duration;

use crate::support::{docker_ok, docker_stdout, images, wait_until, Project, Registry};
use crate::{berth, TempDir};

/// A git repository on disk with a `berth.yaml`.
pub struct Repo {
    dir: TempDir,
}

impl Repo {
    pub fn new() -> Self {
        let r = Self {
            dir: TempDir::default(),
        };
        r.git(&["init", "-q", "-b", "main"]);
        r
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn git(&self, args: &[&str]) -> String {
        let out = Command::new("git")
            .args([
                "-c",
                "user.name=Test",
                "-c",
                "user.email=test@example.com",
                "-c",
                "commit.gpgsign=false",
            ])
            .args(args)
            .current_dir(self.path())
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "git {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// An agent following this repository (watched on disk), with its state in `state`.
    pub fn agent(&self, state: &Path, extra: &[&str]) -> Agent {
        Agent::start(&self.path().display().to_string(), state, extra)
    }

    /// Writes berth.yaml and commits it; returns the commit SHA.
    pub fn commit(&self, yaml: &str, message: &str) -> String {
        std::fs::write(self.path().join("berth.yaml"), yaml).unwrap();
        self.git(&["add", "-A"]);
        self.git(&["commit", "-q", "--allow-empty", "-m", message]);
        self.git(&["rev-parse", "HEAD"])
    }
}

/// A running agent, killed when dropped.
pub struct Agent {
    child: Child,
    pub port: u16,
    log: PathBuf,
    state: PathBuf,
}

impl Agent {
    pub fn start(repo: &str, state: &Path, extra: &[&str]) -> Self {
        Self::start_with_env(repo, state, extra, &[])
    }

    pub fn start_with_env(repo: &str, state: &Path, extra: &[&str], env: &[(&str, &str)]) -> Self {
        Self::start_logged(repo, state, &state.join("agent.log"), extra, env)
    }

    /// [`Agent::start_with_env`] with its log at `log` (outside a state dir that may fill up).
    pub fn start_logged(
        repo: &str,
        state: &Path,
        log: &Path,
        extra: &[&str],
        env: &[(&str, &str)],
    ) -> Self {
        let port = free_port();
        let log = log.to_path_buf();
        std::fs::create_dir_all(state).unwrap();
        let file = std::fs::File::create(&log).unwrap();
        let mut args = vec![
            "--log-format".to_string(),
            "text".into(),
            "agent".into(),
            "--repo".into(),
            repo.into(),
            "--state-dir".into(),
            state.display().to_string(),
            "--listen".into(),
            format!("127.0.0.1:{port}"),
            "--drain".into(),
            "200ms".into(),
            "--backoff-initial".into(),
            "1s".into(),
        ];
        args.extend(extra.iter().map(|s| s.to_string()));
        let child = Command::new(env!("CARGO_BIN_EXE_berth"))
            .args(&args)
            .env("RUST_LOG", "info")
            .envs(env.iter().copied())
            .stdout(file.try_clone().unwrap())
            .stderr(file)
            .spawn()
            .unwrap();
        Self {
            child,
            port,
            log,
            state: state.to_path_buf(),
        }
    }

    /// The agent's control socket, `<state-dir>/control.sock`.
    pub fn control_socket(&self) -> PathBuf {
        self.state.join("control.sock")
    }

    /// `POST path` over the control socket, which needs no signature.
    pub fn post_control(&self, path: &str) -> Option<(u16, String)> {
        http_unix(&self.control_socket(), "POST", path, b"")
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The value of a counter of `/metrics`, summed over the series whose labels
    /// include all of `labels`; 0 when there is none yet.
    pub fn counter(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        let (code, text) = http(self.port, "GET", "/metrics", &[], b"").unwrap();
        assert_eq!(code, 200);
        let lines = text
            .lines()
            .filter(|l| *l != "# EOF")
            .map(|l| Ok(l.to_string()));
        let scrape = prometheus_parse::Scrape::parse(lines).unwrap();
        scrape
            .samples
            .iter()
            .filter(|s| s.metric == name)
            .filter(|s| labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
            .map(|s| match s.value {
                prometheus_parse::Value::Counter(v) | prometheus_parse::Value::Untyped(v) => v,
                ref other => panic!("{name} is not a counter: {other:?}"),
            })
            .sum()
    }

    /// How many triggers of this kind (`docker-event`, `control`, `webhook`, …) the
    /// agent has taken into a reconcile.
    pub fn triggers(&self, trigger: &str) -> f64 {
        self.counter("berth_reconcile_triggers_total", &[("trigger", trigger)])
    }

    /// Waits until at least `n` triggers of this kind have been taken into a reconcile.
    pub fn wait_triggers(&self, trigger: &str, n: f64) {
        assert!(
            crate::support::wait_until(Duration::from_secs(30), Duration::from_millis(50), || {
                self.triggers(trigger) >= n
            }),
            "{} {trigger} triggers, not {n}\n{}",
            self.triggers(trigger),
            self.log()
        );
    }

    /// Waits until every reconcile the agent has begun has finished: the agent takes
    /// triggers in order, one reconcile at a time, so once the reconcile of a control
    /// request sent now has begun, those before it are done (and what they would have
    /// changed, they changed).
    pub fn settle(&self) {
        let before = self.triggers("control");
        let (code, answer) = self.post_control("/control/reconcile").unwrap();
        assert_eq!(code, 202, "{answer}");
        self.wait_triggers("control", before + 1.0);
    }

    /// `/status`, waiting for the listener while the agent starts.
    pub fn status(&self) -> serde_json::Value {
        for _ in 0..100 {
            if let Some((200, body)) = http(self.port, "GET", "/status", &[], b"") {
                return serde_json::from_str(&body).unwrap();
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("no /status from the agent:\n{}", self.log());
    }

    pub fn signal(&self, sig: &str) {
        let ok = Command::new("kill")
            .args(["-s", sig, &self.child.id().to_string()])
            .status()
            .unwrap()
            .success();
        assert!(ok);
    }

    /// Whether the process has exited (without waiting).
    pub fn exited(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(Some(_)))
    }

    /// Waits for the process to exit and returns its exit code.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<i32> {
        let deadline = std::time::Instant::now() + timeout;
        while std::time::Instant::now() < deadline {
            if let Some(s) = self.child.try_wait().unwrap() {
                return s.code();
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        None
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A bare HTTP/1.1 request on loopback: (status, body).
pub fn http(
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Option<(u16, String)> {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).ok()?;
    s.write_all(body).ok()?;
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).ok()?;
    let text = String::from_utf8_lossy(&buf).into_owned();
    let code = text.split_whitespace().nth(1)?.parse().ok()?;
    let body = text
        .split_once("\r\n\r\n")
        .map(|x| x.1.to_string())
        .unwrap_or_default();
    Some((code, body))
}

/// A bare HTTP/1.1 request over a unix socket: (status, body).
pub fn http_unix(socket: &Path, method: &str, path: &str, body: &[u8]) -> Option<(u16, String)> {
    let mut s = std::os::unix::net::UnixStream::connect(socket).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .ok()?;
    s.write_all(body).ok()?;
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).ok()?;
    let text = String::from_utf8_lossy(&buf).into_owned();
    let code = text.split_whitespace().nth(1)?.parse().ok()?;
    let body = text
        .split_once("\r\n\r\n")
        .map(|x| x.1.to_string())
        .unwrap_or_default();
    Some((code, body))
}

pub fn stack(project: &str, image: &str, replicas: u32) -> String {
    format!(
        "project: {project}\nservices:\n  api:\n    image: {image}\n    replicas: {replicas}\n    stop_grace: 2s\n    update: {{ monitor: 1s, deadline: 20s }}\n"
    )
}

/// `name image` of the running replicas of `api`, sorted.
pub fn api_images(p: &Project) -> Vec<String> {
    let out = docker_stdout([
        "ps",
        "--filter",
        &format!("label=berth.project={}", p.name()),
        "--filter",
        "label=berth.service=api",
        "--format",
        "{{.Names}} {{.Label \"berth.image\"}}",
    ]);
    let mut v: Vec<String> = out.lines().map(str::to_string).collect();
    v.sort();
    v
}

pub fn expect(p: &Project, image: &str, n: u32) -> Vec<String> {
    (1..=n)
        .map(|i| format!("{}-api-{i} {image}", p.name()))
        .collect()
}

pub fn converges_to(p: &Project, image: &str, n: u32) -> bool {
    wait_until(Duration::from_secs(60), Duration::from_millis(200), || {
        api_images(p) == expect(p, image, n)
    })
}

#[test]
fn a_watched_local_repository_is_followed_commit_by_commit() {
    let p = Project::new("watch");
    let img = images();
    let repo = Repo::new();
    repo.commit(&stack(p.name(), &img.app_v1, 2), "first");
    let state = TempDir::default();
    let agent = repo.agent(state.path(), &["--interval", "1h"]);
    assert!(converges_to(&p, &img.app_v1, 2), "{}", agent.log());
    let sha = repo.commit(&stack(p.name(), &img.app_v2, 2), "bump");
    assert!(converges_to(&p, &img.app_v2, 2), "{}", agent.log());
    assert!(wait_until(
        Duration::from_secs(10),
        Duration::from_millis(100),
        || agent.status()["applied_commit"]["sha"] == sha.as_str()
    ));
    let labels = docker_stdout([
        "inspect",
        "-f",
        "{{index .Config.Labels \"berth.commit\"}}",
        &format!("{}-api-1", p.name()),
    ]);
    assert_eq!(labels, sha);
}

#[test]
fn a_polled_file_remote_and_an_invalid_commit_that_keeps_the_last_good() {
    let p = Project::new("poll");
    let img = images();
    let repo = Repo::new();
    repo.commit(&stack(p.name(), &img.app_v1, 1), "first");
    let state = TempDir::default();
    let url = format!("file://{}", repo.path().display());
    let agent = Agent::start(&url, state.path(), &["--interval", "1s"]);
    assert!(converges_to(&p, &img.app_v1, 1), "{}", agent.log());

    let bad = repo.commit(
        &stack(p.name(), &img.app_v2, 1).replace("replicas:", "replica:"),
        "typo",
    );
    assert!(
        wait_until(
            Duration::from_secs(20),
            Duration::from_millis(200),
            || agent.status()["head"] == bad.as_str()
        ),
        "{}",
        agent.log()
    );
    let status = agent.status();
    let error = status["last_error"].as_str().unwrap();
    assert!(
        error.starts_with(&format!("commit {} is invalid: berth.yaml@{}:5:5: error: services.api.replica: unknown key `replica`; did you mean `replicas`?", &bad[..12], &bad[..12])),
        "{error}"
    );
    assert_ne!(status["applied_commit"]["sha"], bad.as_str());
    assert_eq!(api_images(&p), expect(&p, &img.app_v1, 1));

    let fixed = repo.commit(&stack(p.name(), &img.app_v2, 1), "fix");
    assert!(converges_to(&p, &img.app_v2, 1), "{}", agent.log());
    assert!(wait_until(
        Duration::from_secs(10),
        Duration::from_millis(100),
        || agent.status()["applied_commit"]["sha"] == fixed.as_str()
    ));
    assert!(agent.status()["last_error"].is_null());
}

#[test]
fn a_revert_rolls_back_without_the_registry() {
    let p = Project::new("revert");
    let img = images();
    let reg = Registry::new();
    let v1 = reg.push_copy(&img.app_v1, &format!("{}/app", p.name()), "v1");
    let v2 = reg.push_copy(&img.app_v2, &format!("{}/app", p.name()), "v2");
    docker_ok(["rmi", &v1]);
    docker_ok(["rmi", &v2]);
    let repo = Repo::new();
    repo.commit(&stack(p.name(), &v1, 2), "first");
    let state = TempDir::default();
    let agent = repo.agent(state.path(), &[]);
    assert!(converges_to(&p, &v1, 2), "{}", agent.log());
    repo.commit(&stack(p.name(), &v2, 2), "bump");
    assert!(converges_to(&p, &v2, 2), "{}", agent.log());
    reg.stop();
    repo.git(&["revert", "--no-edit", "HEAD"]);
    assert!(converges_to(&p, &v1, 2), "{}", agent.log());
    drop(agent);
    docker_ok(["rmi", &v1]);
    docker_ok(["rmi", &v2]);
}

fn sign(secret: &[u8], body: &[u8]) -> String {
    use hmac::{Hmac, Mac};
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret).unwrap();
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

#[test]
fn the_webhook_needs_a_good_signature_and_triggers_a_fetch() {
    let p = Project::new("hook");
    let img = images();
    let repo = Repo::new();
    repo.commit(&stack(p.name(), &img.app_v1, 1), "first");
    let state = TempDir::default();
    let secret = state.path().join("secret");
    std::fs::write(&secret, "s3cr3t-hook\n").unwrap();
    let url = format!("file://{}", repo.path().display());
    let agent = Agent::start(
        &url,
        &state.path().join("agent"),
        &[
            "--interval",
            "1h",
            "--webhook-secret-file",
            &secret.display().to_string(),
        ],
    );
    assert!(converges_to(&p, &img.app_v1, 1), "{}", agent.log());
    repo.commit(&stack(p.name(), &img.app_v2, 1), "bump");
    let body = br#"{"ref":"refs/heads/main"}"#;
    assert_eq!(
        http(agent.port, "POST", "/hooks/git", &[], body).unwrap().0,
        401
    );
    assert_eq!(
        http(
            agent.port,
            "POST",
            "/hooks/git",
            &[("X-Hub-Signature-256", &sign(b"wrong", body))],
            body
        )
        .unwrap()
        .0,
        401
    );
    // The refusals went in before the control request that settles the agent: had
    // they woken it, their triggers would have been taken in first.
    agent.settle();
    assert_eq!(agent.triggers("webhook"), 0.0, "{}", agent.log());
    assert_eq!(
        api_images(&p),
        expect(&p, &img.app_v1, 1),
        "a refused webhook must not trigger anything"
    );
    let (code, _) = http(
        agent.port,
        "POST",
        "/hooks/git",
        &[("X-Hub-Signature-256", &sign(b"s3cr3t-hook", body))],
        body,
    )
    .unwrap();
    assert_eq!(code, 202);
    assert!(converges_to(&p, &img.app_v2, 1), "{}", agent.log());
    let big = vec![b'x'; 2 << 20];
    let (code, _) = http(
        agent.port,
        "POST",
        "/hooks/git",
        &[("X-Hub-Signature-256", &sign(b"s3cr3t-hook", &big))],
        &big,
    )
    .unwrap_or((413, String::new()));
    assert_eq!(code, 413);
}

#[test]
fn one_agent_per_state_dir() {
    let p = Project::new("lock");
    let img = images();
    let repo = Repo::new();
    repo.commit(&stack(p.name(), &img.app_v1, 1), "first");
    let state = TempDir::default();
    let _first = repo.agent(state.path(), &[]);
    assert!(converges_to(&p, &img.app_v1, 1));
    let r = berth([
        "agent",
        "--repo",
        &repo.path().display().to_string(),
        "--state-dir",
        &state.path().display().to_string(),
        "--listen",
        &format!("127.0.0.1:{}", free_port()),
    ]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(
        r.stderr.contains("error: another berth agent (pid "),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr.contains(&format!(
            "already runs with state dir {}; one agent per state dir",
            state.path().display()
        )),
        "{}",
        r.stderr
    );
}

#[test]
fn sigterm_mid_rollout_keeps_the_healthy_count_and_a_restart_completes_it() {
    let p = Project::new("sigterm");
    let img = images();
    let repo = Repo::new();
    repo.commit(&stack(p.name(), &img.app_v1, 3), "first");
    let state = TempDir::default();
    let mut agent = repo.agent(state.path(), &[]);
    assert!(converges_to(&p, &img.app_v1, 3), "{}", agent.log());
    repo.commit(&stack(p.name(), &img.app_v2, 3), "bump");
    // Wait until the first replacement has started, then ask the agent to stop.
    assert!(
        wait_until(Duration::from_secs(30), Duration::from_millis(50), || agent
            .log()
            .contains("action=\"replaced\"")),
        "{}",
        agent.log()
    );
    agent.signal("TERM");
    assert_eq!(
        agent.wait_exit(Duration::from_secs(30)),
        Some(0),
        "{}",
        agent.log()
    );
    let healthy = docker_stdout([
        "ps",
        "--filter",
        &format!("label=berth.project={}", p.name()),
        "--filter",
        "health=healthy",
        "-q",
    ])
    .lines()
    .count();
    assert!(
        healthy >= 3,
        "only {healthy} healthy replicas after SIGTERM"
    );
    let images_now = api_images(&p);
    assert!(
        images_now.iter().any(|l| l.ends_with(&img.app_v1)),
        "the rollout should have stopped midway: {images_now:?}"
    );
    let agent = repo.agent(state.path(), &[]);
    assert!(converges_to(&p, &img.app_v2, 3), "{}", agent.log());
}

#[test]
fn pause_holds_a_service_and_resume_lets_it_go_on() {
    let p = Project::new("pause");
    let img = images();
    let repo = Repo::new();
    repo.commit(&stack(p.name(), &img.app_v1, 1), "first");
    let state = TempDir::default();
    let agent = repo.agent(state.path(), &[]);
    assert!(converges_to(&p, &img.app_v1, 1), "{}", agent.log());
    let r = berth([
        "pause",
        "api",
        "--state-dir",
        &state.path().display().to_string(),
    ]);
    assert_eq!(
        (r.code, r.stdout.as_str()),
        (0, "paused service api; the agent reconciles now\n")
    );
    repo.commit(&stack(p.name(), &img.app_v2, 1), "bump");
    // A paused service is not healed either: the removal wakes the agent, and the
    // reconcile that sees the replica gone (status says so) leaves it gone.
    docker_ok(["rm", "-f", &format!("{}-api-1", p.name())]);
    assert!(
        wait_until(Duration::from_secs(30), Duration::from_millis(100), || {
            let st = agent.status();
            st["services"]["api"]["running"] == 0 && st["services"]["api"]["paused"] == true
        }),
        "{}",
        agent.log()
    );
    assert!(api_images(&p).is_empty(), "{:?}", api_images(&p));
    assert_eq!(agent.status()["services"]["api"]["paused"], true);
    let r = berth([
        "resume",
        "api",
        "--state-dir",
        &state.path().display().to_string(),
    ]);
    assert_eq!(r.code, 0);
    assert!(converges_to(&p, &img.app_v2, 1), "{}", agent.log());
}

#[test]
fn a_host_path_outside_the_allowance_is_an_invalid_commit() {
    let p = Project::new("hostpath");
    let img = images();
    let repo = Repo::new();
    repo.commit(&stack(p.name(), &img.app_v1, 1), "first");
    let state = TempDir::default();
    let agent = repo.agent(state.path(), &["--allow-host-path", "/srv/berth-data"]);
    assert!(converges_to(&p, &img.app_v1, 1), "{}", agent.log());
    let yaml = stack(p.name(), &img.app_v2, 1) + "    volumes: [\"/etc:/host-etc:ro\"]\n";
    let bad = repo.commit(&yaml, "grab /etc");
    assert!(
        wait_until(
            Duration::from_secs(20),
            Duration::from_millis(200),
            || agent.status()["head"] == bad.as_str()
        ),
        "{}",
        agent.log()
    );
    let error = agent.status()["last_error"].as_str().unwrap().to_string();
    assert!(error.contains("services.api.volumes[0]: host path `/etc` is outside the host paths this host allows (allowed: /srv/berth-data)"), "{error}");
    assert_eq!(api_images(&p), expect(&p, &img.app_v1, 1));
}

pub fn keygen(dir: &Path, name: &str) -> (PathBuf, String) {
    let key = dir.join(name);
    let ok = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", name, "-f"])
        .arg(&key)
        .status()
        .unwrap()
        .success();
    assert!(ok);
    let public = std::fs::read_to_string(key.with_extension("pub")).unwrap();
    (key, public.trim().to_string())
}

impl Repo {
    /// Commits signed with an SSH key (git's ssh signing).
    pub fn commit_signed(&self, yaml: &str, message: &str, key: &Path) -> String {
        std::fs::write(self.path().join("berth.yaml"), yaml).unwrap();
        self.git(&["add", "-A"]);
        let key = key.display().to_string();
        self.git(&[
            "-c",
            "gpg.format=ssh",
            "-c",
            &format!("user.signingkey={key}"),
            "commit",
            "-q",
            "-S",
            "-m",
            message,
        ]);
        self.git(&["rev-parse", "HEAD"])
    }
}

#[test]
fn only_heads_signed_by_an_allowed_key_are_applied() {
    let p = Project::new("signed");
    let img = images();
    let keys = TempDir::default();
    let (alice, alice_pub) = keygen(keys.path(), "alice");
    let (mallory, _) = keygen(keys.path(), "mallory");
    let signers = keys.path().join("allowed_signers");
    std::fs::write(
        &signers,
        format!("alice@example.com namespaces=\"git\" {alice_pub}\n"),
    )
    .unwrap();
    let repo = Repo::new();
    repo.commit_signed(&stack(p.name(), &img.app_v1, 1), "first", &alice);
    let state = TempDir::default();
    let agent = repo.agent(
        state.path(),
        &["--verify-signatures", &signers.display().to_string()],
    );
    assert!(converges_to(&p, &img.app_v1, 1), "{}", agent.log());

    let unsigned = repo.commit(&stack(p.name(), &img.app_v2, 1), "unsigned bump");
    assert!(
        wait_until(
            Duration::from_secs(20),
            Duration::from_millis(100),
            || agent.status()["head"] == unsigned.as_str()
        ),
        "{}",
        agent.log()
    );
    assert_eq!(
        agent.status()["last_error"],
        format!(
            "commit {} refused: unsigned; only commits signed by an allowed key are applied",
            &unsigned[..12]
        )
        .as_str()
    );
    let forged = repo.commit_signed(&stack(p.name(), &img.app_v3, 1), "mallory's bump", &mallory);
    assert!(
        wait_until(
            Duration::from_secs(20),
            Duration::from_millis(100),
            || agent.status()["head"] == forged.as_str()
        ),
        "{}",
        agent.log()
    );
    let error = agent.status()["last_error"].as_str().unwrap().to_string();
    assert!(
        error.starts_with(&format!(
            "commit {} refused: signed by a key not in the allowed signers (SHA256:",
            &forged[..12]
        )),
        "{error}"
    );
    assert_eq!(api_images(&p), expect(&p, &img.app_v1, 1));

    repo.commit_signed(&stack(p.name(), &img.app_v2, 1), "signed bump", &alice);
    assert!(converges_to(&p, &img.app_v2, 1), "{}", agent.log());
    assert!(agent.status()["last_error"].is_null());
}
