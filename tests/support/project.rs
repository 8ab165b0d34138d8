//! Per-test project names and the Docker objects that go with them.

use std::collections::hash_map::RandomState;
use std::collections::BTreeMap;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::docker::{docker, docker_ok, docker_try, http_get_named, require_docker, wait_until};
use super::{images, owner_id, OWNER_LABEL};

/// Label key berth puts on the objects of a project.
pub const PROJECT_LABEL: &str = "berth.project";

/// A project name unique to one test, and removal of every container,
/// network and volume of it when dropped (also when the test panics).
///
/// Removed: objects labelled `berth.project=NAME`, and containers, networks
/// and volumes whose name starts with `NAME-` or `NAME_`. Objects a test
/// makes by hand should use [`Project::child`] names rather than the berth
/// label, so berth does not take them for its own.
pub struct Project {
    name: String,
}

impl Project {
    /// A guard for a fresh project name (see [`Project::unique_name`]).
    pub fn new(prefix: &str) -> Project {
        require_docker();
        Project {
            name: Project::unique_name(prefix),
        }
    }

    /// A name matching `[a-z][a-z0-9-]{0,30}`: `t`, up to 12 letters and
    /// digits of `prefix`, `-`, then a suffix from the pid, a counter and
    /// random bits, so parallel tests and successive runs never collide.
    pub fn unique_name(prefix: &str) -> String {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let mut hasher = RandomState::new().build_hasher();
        hasher.write_usize(n);
        hasher.write_u128(
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or_default(),
        );
        let random = hasher.finish() & 0xf_ffff;
        let prefix: String = prefix
            .chars()
            .filter(|c| c.is_ascii_alphanumeric())
            .map(|c| c.to_ascii_lowercase())
            .take(12)
            .collect();
        let mut name = format!("t{prefix}-{:x}{n:x}{random:05x}", std::process::id());
        name.truncate(31);
        name
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// `berth.project=NAME`, for `--label` and `--filter label=`.
    pub fn label(&self) -> String {
        format!("{PROJECT_LABEL}={}", self.name)
    }

    /// `NAME-suffix`: a name for a hand-made object that this guard removes.
    pub fn child(&self, suffix: &str) -> String {
        format!("{}-{suffix}", self.name)
    }

    /// Creates a network `NAME-suffix` (not berth-labelled) and returns its name.
    pub fn create_network(&self, suffix: &str) -> String {
        let name = self.child(suffix);
        docker([
            "network",
            "create",
            "--label",
            &owner_label(),
            name.as_str(),
        ]);
        name
    }

    /// Creates a volume `NAME-suffix` (not berth-labelled) and returns its name.
    pub fn create_volume(&self, suffix: &str) -> String {
        let name = self.child(suffix);
        docker(["volume", "create", "--label", &owner_label(), name.as_str()]);
        name
    }

    /// Names of the containers labelled with this project, sorted.
    pub fn containers(&self) -> Vec<String> {
        let filter = format!("label={}", self.label());
        let out = docker_try([
            "ps",
            "-a",
            "--filter",
            filter.as_str(),
            "--format",
            "{{.Names}}",
        ])
        .unwrap_or_default();
        let mut names: Vec<String> = out.lines().map(str::to_string).collect();
        names.sort();
        names
    }

    /// [`super::http_get_via_container`] with a container named after the project.
    pub fn http_get(&self, network: &str, url: &str) -> Result<String, String> {
        http_get_named(Some(&self.child("get")), network, url)
    }

    /// A [`ClientLoop`] requesting `http://ALIAS:8000/` on `network`.
    pub fn client_loop(&self, network: &str, alias: &str) -> ClientLoop {
        self.client_loop_with_retries(network, alias, 0)
    }

    /// A [`ClientLoop`] over several labelled URLs (see [`ClientLoop::start_rounds`]).
    pub fn client_rounds(
        &self,
        network: &str,
        targets: &[(&str, &str)],
        retries: u32,
    ) -> ClientLoop {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let name = self.child(&format!(
            "rounds{}",
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        ClientLoop::start_rounds(&name, network, targets, retries)
    }

    /// A [`ClientLoop`] that, like a reverse proxy with a retry window, tries a
    /// request up to `retries` more times before counting it failed.
    pub fn client_loop_with_retries(&self, network: &str, alias: &str, retries: u32) -> ClientLoop {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let name = self.child(&format!(
            "client{}",
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        ClientLoop::start_with_retries(&name, network, &format!("http://{alias}:8000/"), retries)
    }

    /// Removes everything of the project now; dropping does the same.
    pub fn cleanup(&self) {
        let label = format!("label={}", self.label());
        let owned = |name: &str| {
            name.strip_prefix(self.name.as_str())
                .is_some_and(|rest| rest.starts_with('-') || rest.starts_with('_'))
        };

        let mut containers: Vec<String> =
            docker_try(["ps", "-aq", "--no-trunc", "--filter", label.as_str()])
                .unwrap_or_default()
                .split_whitespace()
                .map(str::to_string)
                .collect();
        let all = docker_try(["ps", "-a", "--no-trunc", "--format", "{{.ID}} {{.Names}}"])
            .unwrap_or_default();
        containers.extend(
            all.lines()
                .filter_map(|l| l.split_once(' '))
                .filter(|(_, name)| name.split(',').any(owned))
                .map(|(id, _)| id.to_string()),
        );
        containers.sort();
        containers.dedup();
        if !containers.is_empty() {
            let mut args = vec!["rm".to_string(), "-f".to_string(), "-v".to_string()];
            args.extend(containers);
            if let Err(e) = docker_try(&args) {
                eprintln!("cleanup of project {}: {e}", self.name);
            }
        }

        for kind in ["network", "volume"] {
            let mut names: Vec<String> = docker_try([kind, "ls", "-q", "--filter", label.as_str()])
                .unwrap_or_default()
                .split_whitespace()
                .map(str::to_string)
                .collect();
            let all = docker_try([kind, "ls", "--format", "{{.Name}}"]).unwrap_or_default();
            names.extend(all.lines().filter(|n| owned(n)).map(str::to_string));
            names.sort();
            names.dedup();
            if !names.is_empty() {
                let mut args = vec![kind.to_string(), "rm".to_string()];
                args.extend(names);
                if let Err(e) = docker_try(&args) {
                    eprintln!("cleanup of project {}: {e}", self.name);
                }
            }
        }
    }
}

impl Drop for Project {
    fn drop(&mut self) {
        self.cleanup();
    }
}

fn owner_label() -> String {
    format!("{OWNER_LABEL}={}", owner_id())
}

/// A container on a network that requests one URL every 50 ms and prints
/// `ok BODY` or `fail` per request, to count dropped requests during a
/// deployment. Removed when dropped.
pub struct ClientLoop {
    name: String,
    done: bool,
}

/// What a [`ClientLoop`] saw.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientReport {
    pub ok: usize,
    pub fail: usize,
    /// Successful responses by body (trailing newlines trimmed).
    pub bodies: BTreeMap<String, usize>,
    /// Every result line in order (`ok v1`, `fail`, ...).
    pub lines: Vec<String>,
}

impl ClientLoop {
    /// Starts the loop in a container called `name` on `network`.
    pub fn start(name: &str, network: &str, url: &str) -> ClientLoop {
        ClientLoop::start_with_retries(name, network, url, 0)
    }

    /// Starts the loop; each request is tried `1 + retries` times before it
    /// counts as failed.
    pub fn start_with_retries(name: &str, network: &str, url: &str, retries: u32) -> ClientLoop {
        ClientLoop::start_rounds(name, network, &[("", url)], retries)
    }

    /// Starts a loop that requests each `(label, url)` in turn, then sleeps 50 ms;
    /// each request is tried `1 + retries` times before it counts as failed. A
    /// labelled target's lines start with its label (see [`ClientLoop::report_of`]).
    pub fn start_rounds(
        name: &str,
        network: &str,
        targets: &[(&str, &str)],
        retries: u32,
    ) -> ClientLoop {
        // A request that hangs counts as failed after 2 s (`wget -T` crashes
        // in the static busybox, so `timeout` bounds it).
        let round: String = targets
            .iter()
            .map(|(label, url)| {
                let attempt = format!("b=$(timeout 2 wget -q -O- '{url}' 2>/dev/null)");
                let attempts = vec![attempt; 1 + retries as usize].join(" || ");
                let prefix = if label.is_empty() {
                    String::new()
                } else {
                    format!("{label} ")
                };
                format!(
                    "if {attempts}; then echo \"{prefix}ok $b\"; else echo \"{prefix}fail\"; fi; "
                )
            })
            .collect();
        let script = format!("trap 'exit 0' TERM; while :; do {round}usleep 50000; done");
        docker([
            "run",
            "-d",
            "--name",
            name,
            "--network",
            network,
            "--label",
            &owner_label(),
            &images().tool_v1,
            "sh",
            "-c",
            &script,
        ]);
        ClientLoop {
            name: name.to_string(),
            done: false,
        }
    }

    /// What the requests to the target labelled `label` saw so far.
    pub fn report_of(&self, label: &str) -> ClientReport {
        let out = docker(["logs", &self.name]);
        let prefix = format!("{label} ");
        let lines: String = String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| l.strip_prefix(&prefix))
            .map(|l| format!("{l}\n"))
            .collect();
        parse_report(&lines)
    }

    /// Stops the loop; what it saw stays readable with [`ClientLoop::report_of`]
    /// until it is dropped.
    pub fn stop_only(&self) {
        docker_ok(["kill", &self.name]);
    }

    pub fn container(&self) -> &str {
        &self.name
    }

    /// Results so far, without stopping.
    pub fn report(&self) -> ClientReport {
        let out = docker(["logs", &self.name]);
        parse_report(&String::from_utf8_lossy(&out.stdout))
    }

    /// Waits until at least one request succeeded.
    pub fn wait_for_ok(&self, timeout: Duration) -> bool {
        wait_until(timeout, Duration::from_millis(100), || self.report().ok > 0)
    }

    /// Stops the loop and returns `(ok, fail)`.
    pub fn stop(self) -> (usize, usize) {
        let r = self.stop_report();
        (r.ok, r.fail)
    }

    /// Stops the loop and returns everything it saw. A request cut short by
    /// the stop is not counted.
    pub fn stop_report(mut self) -> ClientReport {
        docker_ok(["kill", &self.name]);
        let report = self.report();
        docker_ok(["rm", "-f", &self.name]);
        self.done = true;
        report
    }
}

impl Drop for ClientLoop {
    fn drop(&mut self) {
        if !self.done {
            docker_ok(["rm", "-f", &self.name]);
        }
    }
}

fn parse_report(logs: &str) -> ClientReport {
    let mut r = ClientReport::default();
    for line in logs.lines() {
        if line == "fail" {
            r.fail += 1;
        } else if let Some(body) = line.strip_prefix("ok ") {
            r.ok += 1;
            *r.bodies.entry(body.to_string()).or_default() += 1;
        } else if line == "ok" {
            r.ok += 1;
            *r.bodies.entry(String::new()).or_default() += 1;
        } else {
            continue;
        }
        r.lines.push(line.to_string());
    }
    r
}
