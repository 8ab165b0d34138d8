//! Thin wrappers over the `docker` CLI.

use std::ffi::OsStr;
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;
use std::thread;
use std::time::{Duration, Instant};

use super::{owner_id, OWNER_LABEL};

fn render<I, S>(args: I) -> (Vec<std::ffi::OsString>, String)
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let args: Vec<_> = args.into_iter().map(|a| a.as_ref().to_owned()).collect();
    let shown = args
        .iter()
        .map(|a| a.to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join(" ");
    (args, shown)
}

/// Runs `docker ARGS`, panicking with its stderr when it fails.
pub fn docker<I, S>(args: I) -> Output
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let (args, shown) = render(args);
    let out = Command::new("docker")
        .args(&args)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run `docker {shown}`: {e}"));
    if !out.status.success() {
        panic!(
            "`docker {shown}` failed ({}):\n{}{}",
            out.status,
            String::from_utf8_lossy(&out.stderr),
            String::from_utf8_lossy(&out.stdout),
        );
    }
    out
}

/// Runs `docker ARGS` and returns its trimmed stdout, panicking on failure.
pub fn docker_stdout<I, S>(args: I) -> String
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    String::from_utf8_lossy(&docker(args).stdout)
        .trim()
        .to_string()
}

/// Runs `docker ARGS` quietly and tells whether it succeeded.
pub fn docker_ok<I, S>(args: I) -> bool
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    quietly(Command::new("docker").args(args))
}

/// Runs a command with no input or output and tells whether it succeeded.
pub(crate) fn quietly(cmd: &mut Command) -> bool {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Output of a command that may fail, without panicking.
pub(crate) fn docker_try<I, S>(args: I) -> Result<String, String>
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let (args, shown) = render(args);
    match Command::new("docker")
        .args(&args)
        .stdin(Stdio::null())
        .output()
    {
        Ok(out) if out.status.success() => Ok(String::from_utf8_lossy(&out.stdout).into_owned()),
        Ok(out) => Err(format!(
            "`docker {shown}` failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        )),
        Err(e) => Err(format!("cannot run `docker {shown}`: {e}")),
    }
}

/// Fails the calling test unless a Docker engine answers. Tests that need
/// Docker never skip: a missing engine is a failure, under CI and elsewhere.
pub fn require_docker() {
    static CHECK: OnceLock<Result<String, String>> = OnceLock::new();
    let check = CHECK.get_or_init(|| docker_try(["info", "--format", "{{.ServerVersion}}"]));
    if let Err(e) = check {
        if std::env::var("CI").as_deref() == Ok("true") {
            panic!("CI requires a running Docker engine for this test: {e}");
        }
        panic!(
            "this test needs a running Docker engine (and the `docker` CLI); \
             start dockerd or point DOCKER_HOST at one: {e}"
        );
    }
}

/// Polls `f` every `poll` until it returns true or `timeout` has passed.
/// Returns whether it succeeded; `f` is always tried at least once.
pub fn wait_until(timeout: Duration, poll: Duration, mut f: impl FnMut() -> bool) -> bool {
    wait_for(timeout, poll, || f().then_some(())).is_some()
}

/// Polls `f` every `poll` until it returns `Some` or `timeout` has passed.
pub fn wait_for<T>(
    timeout: Duration,
    poll: Duration,
    mut f: impl FnMut() -> Option<T>,
) -> Option<T> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if Instant::now() >= deadline {
            return None;
        }
        thread::sleep(poll);
    }
}

/// `docker inspect` of any object as JSON, or `None` when it does not exist.
pub fn inspect(object: &str) -> Option<serde_json::Value> {
    let out = docker_try(["inspect", "--", object]).ok()?;
    let mut v: serde_json::Value = serde_json::from_str(&out).ok()?;
    match v.as_array_mut() {
        Some(items) if !items.is_empty() => Some(items.swap_remove(0)),
        _ => None,
    }
}

fn container_field(name: &str, template: &str) -> Option<String> {
    let out = docker_try(["container", "inspect", "--format", template, name]).ok()?;
    let out = out.trim();
    (!out.is_empty()).then(|| out.to_string())
}

/// Health status (`starting`, `healthy`, `unhealthy`) of a container, or
/// `None` when it does not exist or has no health check.
pub fn container_health(name: &str) -> Option<String> {
    container_field(name, "{{if .State.Health}}{{.State.Health.Status}}{{end}}")
}

/// State (`created`, `running`, `exited`, ...) of a container, or `None`
/// when it does not exist.
pub fn container_status(name: &str) -> Option<String> {
    container_field(name, "{{.State.Status}}")
}

pub fn container_exists(name: &str) -> bool {
    container_status(name).is_some()
}

/// Waits for a container to report `healthy`.
pub fn wait_healthy(name: &str, timeout: Duration) -> bool {
    wait_until(timeout, Duration::from_millis(50), || {
        container_health(name).as_deref() == Some("healthy")
    })
}

/// Image ID (`sha256:...`) of a local image reference; panics when absent.
pub fn image_id(reference: &str) -> String {
    docker_stdout(["image", "inspect", "--format", "{{.Id}}", reference])
}

/// The `repository@sha256:...` digest a registry gave a local image, if it was
/// pushed to or pulled from that repository.
pub fn repo_digest(reference: &str) -> Option<String> {
    let repo = strip_tag(reference);
    let out = docker_try([
        "image",
        "inspect",
        "--format",
        "{{range .RepoDigests}}{{println .}}{{end}}",
        reference,
    ])
    .ok()?;
    out.lines()
        .find(|l| l.split_once('@').map(|(r, _)| r) == Some(repo))
        .map(str::to_string)
}

/// `host:port/path/name:tag` -> `host:port/path/name`.
pub(crate) fn strip_tag(reference: &str) -> &str {
    let reference = reference.split_once('@').map_or(reference, |(r, _)| r);
    match reference.rsplit_once(':') {
        Some((repo, tag)) if !tag.contains('/') => repo,
        _ => reference,
    }
}

/// Fetches `url` from inside a throwaway container attached to `network`, so
/// the request sees the network's DNS names. Returns the body.
pub fn http_get_via_container(network: &str, url: &str) -> Result<String, String> {
    http_get_named(None, network, url)
}

pub(crate) fn http_get_named(
    name: Option<&str>,
    network: &str,
    url: &str,
) -> Result<String, String> {
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    let image = &super::images().tool_v1;
    let owner = format!("{OWNER_LABEL}={}", owner_id());
    let mut args: Vec<String> = vec![
        "run".into(),
        "--rm".into(),
        "--network".into(),
        network.into(),
        "--label".into(),
        owner,
    ];
    if let Some(name) = name {
        args.push("--name".into());
        args.push(format!(
            "{name}-{}",
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
    }
    // busybox `wget -T` crashes in the static build; `timeout` bounds the wait.
    args.extend([image.as_str(), "timeout", "10", "wget", "-q", "-O-", url].map(String::from));
    docker_try(&args)
}
