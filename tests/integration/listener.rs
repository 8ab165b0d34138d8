//! The agent's listener: state-changing routes need the webhook secret's HMAC over TCP
//! and nothing over the control socket, which only the agent's user can open; and URLs
//! with credentials never show in the agent's logs, `/status` or `berth status`.
//!
//! The state-changing routes are `POST /hooks/git` and `POST /control/reconcile`; each
//! is covered over both transports.

use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::agent::{converges_to, free_port, http, http_unix, stack, Agent, Repo};
use crate::support::{images, wait_until, Project};
use crate::{berth, TempDir};

const SECRET: &str = "listener-test-secret-5d1c";

fn socket_of(state: &Path) -> PathBuf {
    state.join("control.sock")
}

fn sign(body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

fn counter(agent: &Agent, name: &str, labels: &[(&str, &str)]) -> f64 {
    agent.counter(name, labels)
}

fn control_triggers(agent: &Agent) -> f64 {
    counter(
        agent,
        "berth_reconcile_triggers_total",
        &[("trigger", "control")],
    )
}

/// Waits until the agent has taken exactly `n` control triggers into reconciles (the
/// channel is in order: a request refused before the one that brings the count to `n`
/// would have been counted first).
fn wait_control_triggers(agent: &Agent, n: f64) {
    assert!(
        wait_until(Duration::from_secs(20), Duration::from_millis(100), || {
            control_triggers(agent) >= n
        }),
        "control triggers {} < {n}\n{}",
        control_triggers(agent),
        agent.log()
    );
    assert_eq!(control_triggers(agent), n, "{}", agent.log());
}

/// An agent following a one-replica stack, converged.
fn converged_agent(p: &Project, repo: &Repo, state: &Path, extra: &[&str]) -> Agent {
    let img = images();
    repo.commit(&stack(p.name(), &img.app_v1, 1), "first");
    let agent = repo.agent(state, extra);
    assert!(converges_to(p, &img.app_v1, 1), "{}", agent.log());
    agent
}

#[test]
fn control_over_tcp_needs_the_hmac_and_the_socket_needs_none() {
    let p = Project::new("ctl-hmac");
    let repo = Repo::new();
    let state = TempDir::default();
    let secret_file = state.path().join("webhook-secret");
    std::fs::write(&secret_file, format!("{SECRET}\n")).unwrap();
    let agent = converged_agent(
        &p,
        &repo,
        state.path(),
        &[
            "--webhook-secret-file",
            &secret_file.display().to_string(),
            "--interval",
            "1h",
            "--resync",
            "1h",
        ],
    );
    let socket = socket_of(state.path());
    assert_eq!(agent.control_socket(), socket);

    // The socket: mode 0600, owned by the agent's user.
    let meta = std::fs::metadata(&socket).unwrap();
    assert!(meta.file_type().is_socket());
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);

    // TCP, no signature, then a wrong one: refused, and nothing reaches the loop.
    let (code, body) = http(agent.port, "POST", "/control/reconcile", &[], b"").unwrap();
    assert_eq!(code, 403, "{body}");
    assert!(body.contains("X-Hub-Signature-256"), "{body}");
    assert!(
        body.contains(&socket.display().to_string()),
        "names the control socket: {body}"
    );
    let forged = sign(b"another body");
    let (code, _) = http(
        agent.port,
        "POST",
        "/control/reconcile",
        &[("X-Hub-Signature-256", &forged)],
        b"{}",
    )
    .unwrap();
    assert_eq!(code, 403);
    // The webhook over TCP without a signature: refused as before.
    let (code, _) = http(agent.port, "POST", "/hooks/git", &[], b"{}").unwrap();
    assert_eq!(code, 401);
    let refused = |outcome: &str, route: &str| {
        counter(
            &agent,
            "berth_control_requests_total",
            &[("route", route), ("transport", "tcp"), ("outcome", outcome)],
        )
    };
    assert_eq!(refused("refused-bad-signature", "/control/reconcile"), 2.0);
    assert_eq!(refused("refused-bad-signature", "/hooks/git"), 1.0);

    // Over the socket: accepted without a signature. The loop takes exactly this one
    // control trigger: the refused requests, sent before it, never reached it.
    let (code, body) = http_unix(&socket, "POST", "/control/reconcile", b"").unwrap();
    assert_eq!(code, 202, "{body}");
    wait_control_triggers(&agent, 1.0);

    // TCP with the HMAC of the body: accepted.
    let body = br#"{"why":"operator"}"#;
    let signature = sign(body);
    let (code, answer) = http(
        agent.port,
        "POST",
        "/control/reconcile",
        &[("X-Hub-Signature-256", &signature)],
        body,
    )
    .unwrap();
    assert_eq!(code, 202, "{answer}");
    wait_control_triggers(&agent, 2.0);

    // The webhook over the socket needs no signature either.
    let webhooks = || {
        counter(
            &agent,
            "berth_reconcile_triggers_total",
            &[("trigger", "webhook")],
        )
    };
    let before = webhooks();
    let (code, _) = http_unix(&socket, "POST", "/hooks/git", b"").unwrap();
    assert_eq!(code, 202);
    assert!(
        wait_until(Duration::from_secs(20), Duration::from_millis(100), || {
            webhooks() > before
        }),
        "{}",
        agent.log()
    );
    // Read-only routes answer on the socket too.
    let (code, status) = http_unix(&socket, "GET", "/status", b"").unwrap();
    assert_eq!(code, 200);
    assert!(
        status.contains(p.name()) || status.contains("\"services\""),
        "{status}"
    );
}

#[test]
fn without_a_webhook_secret_tcp_control_is_refused_and_berth_pause_uses_the_socket() {
    let p = Project::new("ctl-nosecret");
    let repo = Repo::new();
    let state = TempDir::default();
    let agent = converged_agent(&p, &repo, state.path(), &["--interval", "1h"]);
    let socket = socket_of(state.path());

    let (code, body) = http(agent.port, "POST", "/control/reconcile", &[], b"").unwrap();
    assert_eq!(code, 403, "{body}");
    assert!(body.contains("--webhook-secret-file"), "says how: {body}");
    assert!(body.contains(&socket.display().to_string()), "{body}");
    // A signature means nothing without a secret.
    let (code, _) = http(
        agent.port,
        "POST",
        "/control/reconcile",
        &[("X-Hub-Signature-256", &sign(b""))],
        b"",
    )
    .unwrap();
    assert_eq!(code, 403);
    let (code, _) = http(agent.port, "POST", "/hooks/git", &[], b"").unwrap();
    assert_eq!(code, 404);
    assert_eq!(
        counter(
            &agent,
            "berth_control_requests_total",
            &[("transport", "tcp"), ("outcome", "refused-no-secret")],
        ),
        3.0
    );

    // `berth pause` reaches the agent through the socket: the pause shows in status
    // only once a reconcile took it in.
    let r = berth([
        "pause",
        "api",
        "--state-dir",
        &state.path().display().to_string(),
    ]);
    assert_eq!(
        (r.code, r.stdout.as_str(), r.stderr.as_str()),
        (0, "paused service api; the agent reconciles now\n", "")
    );
    wait_control_triggers(&agent, 1.0);
    assert!(
        wait_until(Duration::from_secs(20), Duration::from_millis(100), || {
            agent.status()["services"]["api"]["paused"] == true
        }),
        "{}",
        agent.log()
    );
    let r = berth([
        "resume",
        "api",
        "--state-dir",
        &state.path().display().to_string(),
    ]);
    assert_eq!(r.stdout, "resumed service api; the agent reconciles now\n");
    wait_control_triggers(&agent, 2.0);
}

#[test]
fn the_socket_is_replaced_at_start_and_removed_at_stop() {
    let p = Project::new("ctl-restart");
    let repo = Repo::new();
    let state = TempDir::default();
    // A socket left behind by an agent that was killed.
    let socket = socket_of(state.path());
    std::fs::create_dir_all(state.path()).unwrap();
    drop(std::os::unix::net::UnixListener::bind(&socket).unwrap());
    assert!(socket.exists());
    let mut agent = converged_agent(&p, &repo, state.path(), &["--interval", "1h"]);
    let (code, _) = http_unix(&socket, "POST", "/control/reconcile", b"").unwrap();
    assert_eq!(code, 202);
    agent.signal("TERM");
    assert_eq!(
        agent.wait_exit(Duration::from_secs(30)),
        Some(0),
        "{}",
        agent.log()
    );
    assert!(!socket.exists(), "{}", agent.log());
}

#[test]
fn credentials_in_urls_never_show_in_logs_status_or_berth_status() {
    const REPO_SECRET: &str = "hunter2-repo-1b7e";
    const NOTIFY_SECRET: &str = "hunter3-notify-44d0";
    const HMAC_SECRET: &str = "hunter4-hmac-secret-91c3";
    // Nothing listens on the remote's port: every fetch fails, and git's error is
    // reported in the log, /status and berth status.
    let closed = free_port();
    let repo_url = format!("http://berth:{REPO_SECRET}@127.0.0.1:{closed}/desired.git");
    let notify_url = format!(
        "http://127.0.0.1:{}/hook?token={NOTIFY_SECRET}&channel=ops",
        free_port()
    );
    let state = TempDir::default();
    let slack_url = format!(
        "slack=http://127.0.0.1:{}/services/T/B/{NOTIFY_SECRET}",
        free_port()
    );
    let secrets = TempDir::default();
    let secret_file = secrets.path().join("notify-secret");
    std::fs::write(&secret_file, format!("{HMAC_SECRET}\n")).unwrap();
    let agent = Agent::start(
        &repo_url,
        state.path(),
        &[
            "--interval",
            "1s",
            "--notify-url",
            &notify_url,
            "--notify-url",
            &slack_url,
            "--notify-secret-file",
            &secret_file.display().to_string(),
        ],
    );
    assert!(
        wait_until(Duration::from_secs(30), Duration::from_millis(200), || {
            agent.status()["fetch_failures"].as_u64().unwrap_or(0) >= 2
        }),
        "{}",
        agent.log()
    );
    let masked = format!("http://berth:***@127.0.0.1:{closed}/desired.git");
    let status = agent.status();
    assert_eq!(status["repo"], masked.as_str());
    let error = status["last_error"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(
        error.starts_with(&format!("fetch {masked} (main): ")),
        "{error}"
    );

    let listen = format!("127.0.0.1:{}", agent.port);
    let human = berth(["status", "--listen", &listen]);
    let json = berth(["status", "--listen", &listen, "--output", "json"]);
    assert_eq!((human.code, json.code), (0, 0), "{human:?}\n{json:?}");
    assert!(human.stdout.contains(&masked), "{}", human.stdout);
    let (_, metrics) = http(agent.port, "GET", "/metrics", &[], b"").unwrap();
    let (_, healthz) = http(agent.port, "GET", "/healthz", &[], b"").unwrap();

    let log = agent.log();
    assert!(
        log.contains("agent started") && log.contains(&masked),
        "the start is logged with the masked URL:\n{log}"
    );
    for (what, text) in [
        ("log", log.as_str()),
        ("/status", &status.to_string()),
        ("/metrics", &metrics),
        ("/healthz", &healthz),
        ("berth status", &human.stdout),
        ("berth status (stderr)", &human.stderr),
        ("berth status --output json", &json.stdout),
    ] {
        for secret in [REPO_SECRET, NOTIFY_SECRET, HMAC_SECRET] {
            assert!(!text.contains(secret), "{secret} in {what}:\n{text}");
        }
    }
}

#[test]
fn refused_urls_are_quoted_without_their_credentials() {
    let repo = Repo::new();
    let state = TempDir::default();
    let r = berth([
        "agent",
        "--repo",
        &repo.path().display().to_string(),
        "--state-dir",
        &state.path().display().to_string(),
        "--notify-url",
        "https://hooks:pw-notify-0e1f@hooks.example/T?token=tok-notify-0e1f",
    ]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(
        r.stderr.contains(
            "--notify-url https://hooks.example/…: credentials in notification URLs are not supported"
        ),
        "{r:?}"
    );
    assert!(!r.stderr.contains("0e1f"), "{r:?}");

    // A mistyped format stops the start, naming the formats; the URL's token stays out.
    let r = berth([
        "agent",
        "--repo",
        &repo.path().display().to_string(),
        "--state-dir",
        &state.path().display().to_string(),
        "--notify-url",
        "teems=https://hooks.example/workflows/tok-notify-5b6c",
    ]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(
        r.stderr.contains(
            "error: --notify-url teems=https://hooks.example/…: unknown notification format `teems` before `=`; write one of json, slack (or mattermost), discord, teams, ntfy"
        ),
        "{r:?}"
    );
    assert!(!r.stderr.contains("5b6c"), "{r:?}");

    let r = berth([
        "history",
        "--state-dir",
        &state.path().display().to_string(),
        "--coordination",
        "mysql://root:pw-ledger-9a2b@db.example/berth",
    ]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(
        r.stderr
            .contains("\"mysql://root:***@db.example/berth\": use `local` or a postgres:// URL"),
        "{r:?}"
    );
    assert!(!r.stderr.contains("9a2b"), "{r:?}");
}

/// Signed pushes from GitLab, Gitea, Forgejo and Bitbucket (Cloud and Server) reach the
/// running agent: a push to another branch is answered 202 and wakes nothing, a push to
/// the watched one fetches, a wrong proof is a 401. The loop's channel is in order, so
/// a count of exactly one more webhook trigger after each push to `main` shows that the
/// ignored and refused ones before it sent nothing.
#[test]
fn webhooks_from_every_host_fetch_the_watched_branch_only() {
    let p = Project::new("hooks-hosts");
    let repo = Repo::new();
    let state = TempDir::default();
    let secret_file = state.path().join("webhook-secret");
    std::fs::write(&secret_file, format!("{SECRET}\n")).unwrap();
    let agent = converged_agent(
        &p,
        &repo,
        state.path(),
        &[
            "--webhook-secret-file",
            &secret_file.display().to_string(),
            "--interval",
            "1h",
            "--resync",
            "1h",
        ],
    );
    let webhooks = || {
        counter(
            &agent,
            "berth_reconcile_triggers_total",
            &[("trigger", "webhook")],
        )
    };
    let hmac_hex = |body: &[u8]| sign(body).trim_start_matches("sha256=").to_string();
    type Proof = Box<dyn Fn(&[u8]) -> (&'static str, String)>;
    type Host = (
        &'static str,
        (&'static str, &'static str),
        Proof,
        fn(&str) -> String,
    );
    let hosts: Vec<Host> = vec![
        (
            "gitlab",
            ("X-Gitlab-Event", "Push Hook"),
            Box::new(|_| ("X-Gitlab-Token", SECRET.to_string())),
            |b| format!(r#"{{"object_kind":"push","ref":"refs/heads/{b}"}}"#),
        ),
        (
            "gitea",
            ("X-Gitea-Event", "push"),
            Box::new(move |body| ("X-Gitea-Signature", hmac_hex(body))),
            |b| format!(r#"{{"ref":"refs/heads/{b}"}}"#),
        ),
        (
            "forgejo",
            ("X-Forgejo-Event", "push"),
            Box::new(move |body| ("X-Forgejo-Signature", hmac_hex(body))),
            |b| format!(r#"{{"ref":"refs/heads/{b}"}}"#),
        ),
        (
            "bitbucket-cloud",
            ("X-Event-Key", "repo:push"),
            Box::new(|body| ("X-Hub-Signature", sign(body))),
            |b| format!(r#"{{"push":{{"changes":[{{"new":{{"type":"branch","name":"{b}"}}}}]}}}}"#),
        ),
        (
            "bitbucket-server",
            ("X-Event-Key", "repo:refs_changed"),
            Box::new(|body| ("X-Hub-Signature", sign(body))),
            |b| {
                format!(
                    r#"{{"changes":[{{"ref":{{"displayId":"{b}","type":"BRANCH"}},"refId":"refs/heads/{b}"}}]}}"#
                )
            },
        ),
    ];
    for (name, event, proof, payload) in &hosts {
        let before = webhooks();
        let other = payload("feature").into_bytes();
        let (h, v) = proof(&other);
        let (code, body) =
            http(agent.port, "POST", "/hooks/git", &[*event, (h, &v)], &other).unwrap();
        assert_eq!(code, 202, "{name}: {body}");
        assert!(body.starts_with("ignored"), "{name}: {body}");
        let main = payload("main").into_bytes();
        let (code, _) = http(
            agent.port,
            "POST",
            "/hooks/git",
            &[*event, (proof(&main).0, "wrong")],
            &main,
        )
        .unwrap();
        assert_eq!(code, 401, "{name}");
        let (h, v) = proof(&main);
        let (code, body) =
            http(agent.port, "POST", "/hooks/git", &[*event, (h, &v)], &main).unwrap();
        assert_eq!((code, body.as_str()), (202, "fetching\n"), "{name}");
        assert!(
            wait_until(Duration::from_secs(20), Duration::from_millis(100), || {
                webhooks() > before
            }),
            "{name}: {}",
            agent.log()
        );
        assert_eq!(webhooks(), before + 1.0, "{name}: {}", agent.log());
    }
    assert!(!agent.log().contains(SECRET), "the secret is never logged");
}

#[test]
fn commit_status_flags_are_checked_at_start_and_never_quote_the_token() {
    let repo = Repo::new();
    let state = TempDir::default();
    let token = state.path().join("status-token");
    std::fs::create_dir_all(state.path()).unwrap();
    std::fs::write(&token, "ghp-flag-test-7c41\n").unwrap();
    let run = |repo_arg: &str, extra: &[&str]| {
        let mut args = vec![
            "agent".to_string(),
            "--repo".into(),
            repo_arg.into(),
            "--state-dir".into(),
            state.path().display().to_string(),
        ];
        args.extend(extra.iter().map(|s| s.to_string()));
        berth(args)
    };
    let token_arg = token.display().to_string();
    let mut runs = Vec::new();
    let r = run(
        &repo.path().display().to_string(),
        &[
            "--git-status",
            "github",
            "--git-status-token-file",
            &token_arg,
        ],
    );
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("the repository is local"), "{r:?}");
    runs.push(r);
    let r = run(
        "https://git.example/acme/deploy.git",
        &[
            "--git-status",
            "auto",
            "--git-status-token-file",
            &token_arg,
        ],
    );
    assert_eq!(r.code, 2, "{r:?}");
    assert!(
        r.stderr.contains("give --git-status github|gitlab|gitea"),
        "{r:?}"
    );
    runs.push(r);
    let r = run(
        "https://github.com/acme/deploy.git",
        &["--git-status-token-file", &token_arg],
    );
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("need --git-status"), "{r:?}");
    runs.push(r);
    for r in &runs {
        assert!(
            !r.stderr.contains("7c41") && !r.stdout.contains("7c41"),
            "{r:?}"
        );
    }
}
