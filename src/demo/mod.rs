//! `berth demo`: a complete deploy story on this host, offline, in under a minute. It
//! builds tiny images from the berth binary itself (so it needs nothing but Docker),
//! makes a local desired-state repository from `examples/demo`, runs the agent, and
//! commits a bump, a broken release and two reverts, saying at each step what happened.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use tokio_util::sync::CancellationToken;

use crate::agent::AgentConfig;
use crate::executor::{ApplyOptions, RetryPolicy};
use crate::model::LoadOptions;
use crate::runtime::{DockerEngine, Engine, HealthState, Role};
use crate::source::{GitAuth, GitSource};

/// The project the demo deploys.
pub(crate) const PROJECT: &str = "berth-demo";
const STACK: &str = include_str!("../../examples/demo/compose.yaml");
const IMAGE: &str = "berth-demo/app";

/// Failures of the demo.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub(crate) struct DemoError(String);

fn fail(e: impl std::fmt::Display) -> DemoError {
    DemoError(e.to_string())
}

/// Options of the demo.
pub(crate) struct DemoOptions {
    /// Leave the stack running (and the images) instead of cleaning up.
    pub keep: bool,
}

/// Runs the demo; prints a few lines per step. Whatever happens, it cleans up after
/// itself unless asked to keep the stack.
pub(crate) async fn run(opts: DemoOptions) -> Result<(), DemoError> {
    let engine = DockerEngine::connect().await.map_err(fail)?;
    let keep = opts.keep;
    let result = run_steps(&engine, opts).await;
    if result.is_err() && !keep {
        cleanup(&engine).await;
    }
    result
}

async fn run_steps(engine: &DockerEngine, opts: DemoOptions) -> Result<(), DemoError> {
    let engine = engine.clone();
    let existing = engine.list_project(PROJECT).await.map_err(fail)?;
    if !existing.is_empty() {
        return Err(fail(format!(
            "a {PROJECT} stack is already running (from an earlier `berth demo --keep`); remove it with `docker rm -f $(docker ps -aq --filter label=berth.project={PROJECT})`"
        )));
    }
    let work = tempfile::Builder::new()
        .prefix("berth-demo-")
        .tempdir()
        .map_err(fail)?;
    let started = std::time::Instant::now();
    step(
        "1/6",
        "building demo images v1, v2 and a broken v3 from this berth binary",
    );
    build_images(&engine).await?;
    let repo = work.path().join("deploy");
    git_init(&repo)?;
    commit(&repo, STACK, "deploy v1")?;

    let cancel = CancellationToken::new();
    let port = free_port()?;
    let ledger = crate::ledger::SqliteLedger::open(&work.path().join("state").join("ledger.db"))
        .map_err(fail)?;
    let config = AgentConfig {
        project: None,
        ledger: std::sync::Arc::new(ledger),
        source: GitSource::new(
            &repo.display().to_string(),
            "main",
            "",
            &work.path().join("state"),
            GitAuth::default(),
        ),
        state_dir: work.path().join("state"),
        listen: ([127, 0, 0, 1], port).into(),
        interval: Duration::from_secs(3600),
        resync: Duration::from_secs(300),
        webhook_secret: None,
        allowed_signers: None,
        load: LoadOptions::default(),
        apply: ApplyOptions {
            state_dir: work.path().join("state"),
            drain: Duration::from_millis(300),
            retry: RetryPolicy {
                max_attempts: 1,
                ..RetryPolicy::default()
            },
            ..ApplyOptions::default()
        },
        retry: RetryPolicy {
            max_attempts: 1,
            ..RetryPolicy::default()
        },
        notifier: crate::notify::Notifier::disabled(),
        commit_status: crate::commit_status::CommitStatus::disabled(),
        host: crate::plan::Host {
            name: crate::host::hostname(),
            labels: Default::default(),
            env_dir: None,
            keys: Default::default(),
        },
    };
    let agent_cancel = cancel.clone();
    let agent_engine = std::sync::Arc::new(engine.clone());
    let agent =
        tokio::spawn(async move { crate::agent::run(config, agent_engine, agent_cancel).await });

    step(
        "2/6",
        &format!(
            "agent started, watching {} (commit \"deploy v1\")",
            repo.display()
        ),
    );
    wait_serving(&engine, &["v1", "v1"]).await?;
    show(&engine).await?;

    step(
        "3/6",
        "commit \"bump to v2\": a start-first rolling update, one replica at a time",
    );
    commit(&repo, &STACK.replace(":v1", ":v2"), "bump to v2")?;
    watch_rollout(&engine, &["v2", "v2"]).await?;

    step(
        "4/6",
        "commit \"release v3\" (its health check fails): refused by the health gate",
    );
    commit(&repo, &STACK.replace(":v1", ":v3"), "release v3")?;
    wait_failed(port).await?;
    show(&engine).await?;
    println!("      v3 never became healthy; its replica was removed and v2 kept serving");

    step(
        "5/6",
        "git revert of \"release v3\": back to the last good release, nothing to do",
    );
    git(&repo, &["revert", "--no-edit", "HEAD"])?;
    wait_serving(&engine, &["v2", "v2"]).await?;
    show(&engine).await?;

    step(
        "6/6",
        "git revert of \"bump to v2\": a rollback to v1, from the image already on the host",
    );
    git(&repo, &["revert", "--no-edit", "HEAD~2"])?;
    watch_rollout(&engine, &["v1", "v1"]).await?;

    cancel.cancel();
    let _ = agent.await;
    let _ = &engine;
    println!(
        "\ndone in {:.0}s: every step was a commit; berth did the rest.",
        started.elapsed().as_secs_f64()
    );
    if opts.keep {
        println!(
            "the stack keeps running (--keep): docker ps --filter label=berth.project={PROJECT}"
        );
        // The state dir holds nothing the running containers need.
        let _ = work.keep();
    } else {
        cleanup(&engine).await;
        println!("cleaned up: containers, network and images of the demo removed");
    }
    Ok(())
}

fn step(n: &str, text: &str) {
    println!("\n[{n}] {text}");
}

fn free_port() -> Result<u16, DemoError> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")
        .map_err(fail)?
        .local_addr()
        .map_err(fail)?
        .port())
}

fn git(repo: &Path, args: &[&str]) -> Result<(), DemoError> {
    let out = Command::new("git")
        .args([
            "-c",
            "user.name=berth demo",
            "-c",
            "user.email=demo@berth.invalid",
            "-c",
            "commit.gpgsign=false",
        ])
        .args(args)
        .current_dir(repo)
        .output()
        .map_err(|e| fail(format!("git: {e}; the demo needs the git command")))?;
    if !out.status.success() {
        return Err(fail(format!(
            "git {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(())
}

fn git_init(repo: &Path) -> Result<(), DemoError> {
    std::fs::create_dir_all(repo).map_err(fail)?;
    git(repo, &["init", "-q", "-b", "main"])
}

fn commit(repo: &Path, yaml: &str, message: &str) -> Result<(), DemoError> {
    std::fs::write(repo.join("compose.yaml"), yaml).map_err(fail)?;
    git(repo, &["add", "-A"])?;
    git(repo, &["commit", "-q", "-m", message])
}

/// The files of a root filesystem that runs this binary: the binary and the shared
/// libraries `ldd` names, at their own paths.
fn rootfs() -> Result<Vec<u8>, DemoError> {
    let exe = std::env::current_exe().map_err(fail)?;
    let mut files: Vec<(PathBuf, PathBuf)> = vec![(exe.clone(), PathBuf::from("berth"))];
    let ldd = Command::new("ldd")
        .arg(&exe)
        .output()
        .map_err(|e| fail(format!("ldd: {e}")))?;
    for line in String::from_utf8_lossy(&ldd.stdout).lines() {
        let path = line
            .split("=>")
            .nth(1)
            .unwrap_or(line)
            .split_whitespace()
            .next()
            .unwrap_or("");
        if path.starts_with('/') {
            files.push((
                PathBuf::from(path),
                PathBuf::from(path.trim_start_matches('/')),
            ));
        }
    }
    let mut builder = tar::Builder::new(Vec::new());
    builder.follow_symlinks(true);
    // The engine's importer does not take GNU sparse entries.
    builder.sparse(false);
    for (src, dst) in files {
        builder
            .append_path_with_name(&src, &dst)
            .map_err(|e| fail(format!("{}: {e}", src.display())))?;
    }
    // A /tmp for the server, nothing else.
    let mut header = tar::Header::new_gnu();
    header.set_entry_type(tar::EntryType::Directory);
    header.set_mode(0o1777);
    header.set_size(0);
    builder
        .append_data(&mut header, "tmp", std::io::empty())
        .map_err(fail)?;
    builder.into_inner().map_err(fail)
}

async fn build_images(engine: &DockerEngine) -> Result<(), DemoError> {
    let tar = rootfs()?;
    for (tag, broken) in [("v1", false), ("v2", false), ("v3", true)] {
        let mut cmd = format!(r#"CMD ["/berth", "demo-serve", "--version", "{tag}""#);
        if broken {
            cmd.push_str(r#", "--broken""#);
        }
        cmd.push(']');
        let opts = bollard::query_parameters::CreateImageOptionsBuilder::new()
            .from_src("-")
            .repo(IMAGE)
            .tag(tag)
            .changes(vec![cmd, "EXPOSE 8000".into()])
            .build();
        let body = bollard::body_full(tar.clone().into());
        let mut stream = engine.client().create_image(Some(opts), Some(body), None);
        while let Some(item) = stream.next().await {
            item.map_err(|e| fail(format!("docker import: {e}")))?;
        }
    }
    Ok(())
}

/// (name, version served, healthy) of each running replica and replacement, asking each
/// over the bridge network from the host.
async fn replicas(engine: &DockerEngine) -> Result<Vec<(String, String, bool)>, DemoError> {
    let mut out = Vec::new();
    for c in engine.list_project(PROJECT).await.map_err(fail)? {
        if c.role == Role::Migration || !c.is_up() {
            continue;
        }
        let ip = container_ip(engine, &c.id).await;
        let served = match ip {
            Some(ip) => http_get(&format!("{ip}:8000"), "/")
                .await
                .map(|r| r.1)
                .unwrap_or_else(|| "?".into()),
            None => "?".into(),
        };
        out.push((
            c.name,
            served.trim().to_string(),
            c.health == HealthState::Healthy,
        ));
    }
    out.sort();
    Ok(out)
}

async fn container_ip(engine: &DockerEngine, id: &str) -> Option<String> {
    let c = engine.client().inspect_container(id, None).await.ok()?;
    c.network_settings?
        .networks?
        .values()
        .find_map(|n| n.ip_address.clone().filter(|ip| !ip.is_empty()))
}

async fn show(engine: &DockerEngine) -> Result<(), DemoError> {
    let list = replicas(engine).await?;
    let parts: Vec<String> = list
        .iter()
        .map(|(name, v, healthy)| {
            format!(
                "{name} serves {v}{}",
                if *healthy { "" } else { " (not healthy yet)" }
            )
        })
        .collect();
    println!("      {}", parts.join(", "));
    Ok(())
}

async fn serving(engine: &DockerEngine) -> Result<Vec<String>, DemoError> {
    Ok(replicas(engine)
        .await?
        .into_iter()
        .filter(|r| r.2 && !r.0.ends_with("-next"))
        .map(|r| r.1)
        .collect())
}

async fn wait_serving(engine: &DockerEngine, want: &[&str]) -> Result<(), DemoError> {
    for _ in 0..300 {
        let now = serving(engine).await?;
        let names = replicas(engine).await?;
        if now == want && names.len() == want.len() && names.iter().all(|r| !r.0.ends_with("-next"))
        {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Err(fail(format!(
        "the stack did not reach {want:?} within 30 s"
    )))
}

/// Prints each change of what the replicas serve until `want` is reached.
async fn watch_rollout(engine: &DockerEngine, want: &[&str]) -> Result<(), DemoError> {
    let mut last: BTreeMap<String, String> = BTreeMap::new();
    for _ in 0..400 {
        let now: BTreeMap<String, String> = replicas(engine)
            .await?
            .into_iter()
            .map(|(name, v, healthy)| {
                let state = if name.ends_with("-prev") {
                    "leaving".to_string()
                } else if healthy {
                    v
                } else {
                    format!("{v}, starting")
                };
                (name, state)
            })
            .collect();
        if now != last && !now.is_empty() {
            let line: Vec<String> = now.iter().map(|(n, v)| format!("{n}: {v}")).collect();
            println!("      {}", line.join("  "));
            last = now.clone();
        }
        let done: Vec<&str> = now.values().map(String::as_str).collect();
        if done == want && now.keys().all(|n| !n.ends_with("-next")) {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Err(fail(format!(
        "the rollout did not reach {want:?} within 40 s"
    )))
}

/// Waits until the agent reports the app as failed.
async fn wait_failed(port: u16) -> Result<(), DemoError> {
    for _ in 0..400 {
        if let Some((_, body)) = http_get(&format!("127.0.0.1:{port}"), "/status").await {
            if let Ok(v) = serde_json::from_str::<serde_json::Value>(&body) {
                if let Some(err) = v["services"]["app"]["last_error"].as_str() {
                    if ["rolled-back", "failed", "held"]
                        .iter()
                        .any(|o| v["services"]["app"]["last_outcome"] == *o)
                    {
                        println!("      agent: {err}");
                        return Ok(());
                    }
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Err(fail("the broken release was not reported within 40 s"))
}

async fn cleanup(engine: &DockerEngine) {
    if let Ok(list) = engine.list_project(PROJECT).await {
        for c in list {
            let _ = engine.remove(&c.id).await;
        }
    }
    if let Ok(nets) = engine.list_networks(PROJECT).await {
        for n in nets {
            let _ = engine.remove_network(&n.name).await;
        }
    }
    for tag in ["v1", "v2", "v3"] {
        let _ = engine
            .client()
            .remove_image(
                &format!("{IMAGE}:{tag}"),
                None::<bollard::query_parameters::RemoveImageOptions>,
                None,
            )
            .await;
    }
}

/// The demo's HTTP service: `GET /` answers the version, `GET /health` 200 (or 500 when
/// broken). Exits on SIGTERM.
pub(crate) async fn serve(version: String, broken: bool) -> std::io::Result<()> {
    use axum::routing::get;
    let v = Arc::new(format!("{version}\n"));
    let app = axum::Router::new()
        .route("/", get(move || async move { v.as_str().to_string() }))
        .route(
            "/health",
            get(move || async move {
                if broken {
                    (axum::http::StatusCode::INTERNAL_SERVER_ERROR, "broken\n")
                } else {
                    (axum::http::StatusCode::OK, "ok\n")
                }
            }),
        );
    let listener = tokio::net::TcpListener::bind("0.0.0.0:8000").await?;
    let shutdown = async {
        if let Ok(mut term) =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        {
            term.recv().await;
        }
    };
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
}

/// A GET as the demo does it: quick to give up on a replica that is not there.
async fn http_get(addr: &str, path: &str) -> Option<(u16, String)> {
    use crate::http_client::{ClientOptions, HttpClient};
    let client = HttpClient::new(&ClientOptions {
        connect_timeout: Duration::from_millis(500),
        ..ClientOptions::tcp(Duration::from_secs(2))
    })
    .ok()?;
    let answer = client.get(&format!("http://{addr}{path}")).await.ok()?;
    Some((answer.status, answer.body))
}

/// The demo's health check: exit 0 when `GET /health` on port 8000 answers 200.
pub(crate) async fn probe() -> bool {
    http_get("127.0.0.1:8000", "/health").await.map(|r| r.0) == Some(200)
}
