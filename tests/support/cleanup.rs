//! Cleanup when the test process exits, and removal of what earlier test
//! processes left behind when they were killed before they could clean up.

use std::sync::{Mutex, Once};

use super::docker::{docker_ok, docker_try};
use super::{owner_id, OWNER_LABEL};

/// Local image tags this process created, removed at exit.
static OWN_TAGS: Mutex<Vec<String>> = Mutex::new(Vec::new());

/// Work to do when the process exits (after all tests ran). The test harness
/// never drops statics, so this is the only place a process-wide registry and
/// the images built for it get removed.
static EXIT_HOOKS: Mutex<Vec<fn()>> = Mutex::new(Vec::new());

extern "C" {
    fn atexit(callback: extern "C" fn()) -> std::os::raw::c_int;
}

pub(crate) fn on_exit(hook: fn()) {
    static REGISTER: Once = Once::new();
    REGISTER.call_once(|| {
        // SAFETY: `run_exit_hooks` is a plain function that never unwinds
        // across the FFI boundary.
        unsafe {
            atexit(run_exit_hooks);
        }
    });
    EXIT_HOOKS
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push(hook);
}

extern "C" fn run_exit_hooks() {
    let _ = std::panic::catch_unwind(|| {
        let hooks = match EXIT_HOOKS.try_lock() {
            Ok(mut h) => std::mem::take(&mut *h),
            Err(_) => return,
        };
        // Containers first: images and networks in use cannot be removed.
        remove_owned(owner_id());
        for hook in hooks.into_iter().rev() {
            hook();
        }
    });
}

pub(crate) fn record_tag(tag: &str) {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| on_exit(remove_own_tags));
    OWN_TAGS
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push(tag.to_string());
}

fn remove_own_tags() {
    let tags = match OWN_TAGS.try_lock() {
        Ok(mut t) => std::mem::take(&mut *t),
        Err(_) => return,
    };
    if !tags.is_empty() {
        let mut args = vec!["rmi".to_string()];
        args.extend(tags);
        // Best effort: a tag a test removed already fails alone.
        let _ = docker_try(&args);
    }
}

/// Inode of this process's pid namespace, e.g. `4026531836`.
pub(crate) fn pid_namespace() -> String {
    std::fs::read_link("/proc/self/ns/pid")
        .ok()
        .and_then(|p| {
            let p = p.to_string_lossy().into_owned();
            let digits: String = p.chars().filter(char::is_ascii_digit).collect();
            (!digits.is_empty()).then_some(digits)
        })
        .unwrap_or_else(|| "0".to_string())
}

/// Containers, networks and volumes whose owner label satisfies `stale`.
fn owned_objects(stale: &dyn Fn(&str) -> bool) -> [(&'static str, Vec<String>); 3] {
    let filter = format!("label={OWNER_LABEL}");
    let label = format!("{{{{.Label \"{OWNER_LABEL}\"}}}}");
    let list = |args: [&str; 2], id: &str| -> Vec<String> {
        let format = format!("{id} {label}");
        let out = docker_try([
            args[0],
            args[1],
            "--filter",
            filter.as_str(),
            "--format",
            format.as_str(),
        ])
        .unwrap_or_default();
        out.lines()
            .filter_map(|l| l.split_once(' '))
            .filter(|(_, owner)| stale(owner.trim()))
            .map(|(id, _)| id.to_string())
            .collect()
    };
    [
        ("container", list(["ps", "-a"], "{{.ID}}")),
        ("network", list(["network", "ls"], "{{.ID}}")),
        ("volume", list(["volume", "ls"], "{{.Name}}")),
    ]
}

fn remove_objects(objects: [(&'static str, Vec<String>); 3]) {
    for (kind, ids) in objects {
        if ids.is_empty() {
            continue;
        }
        let mut args = vec![kind.to_string(), "rm".to_string()];
        if kind != "network" {
            args.push("-f".to_string());
        }
        args.extend(ids);
        docker_ok(&args);
    }
}

fn remove_owned(owner: &str) {
    remove_objects(owned_objects(&|o| o == owner));
}

/// Whether an owner id names a process of this pid namespace that is gone.
fn owner_is_dead(owner: &str) -> bool {
    let Some((ns, pid)) = owner.split_once(':') else {
        return false;
    };
    let Ok(pid) = pid.parse::<u32>() else {
        return false;
    };
    ns == pid_namespace()
        && pid != std::process::id()
        && !std::path::Path::new(&format!("/proc/{pid}")).exists()
}

/// Removes containers, networks, volumes and images labelled by test
/// processes that no longer run (killed, or crashed before their exit hook).
pub(crate) fn sweep_dead_owners() {
    remove_objects(owned_objects(&owner_is_dead));

    let filter = format!("label={OWNER_LABEL}");
    let Ok(ids) = docker_try(["images", "-q", "--no-trunc", "--filter", filter.as_str()]) else {
        return;
    };
    let mut ids: Vec<&str> = ids.split_whitespace().collect();
    ids.sort_unstable();
    ids.dedup();
    let format =
        format!("{{{{index .Config.Labels \"{OWNER_LABEL}\"}}}} {{{{join .RepoTags \" \"}}}}");
    for id in ids {
        let Ok(info) = docker_try(["image", "inspect", "--format", format.as_str(), id]) else {
            continue;
        };
        let mut fields = info.split_whitespace();
        if !fields.next().is_some_and(owner_is_dead) {
            continue;
        }
        let tags: Vec<&str> = fields.collect();
        let mut args = vec!["rmi"];
        if tags.is_empty() {
            args.push(id);
        } else {
            args.extend(tags);
        }
        docker_ok(args);
    }
}

/// A shell script that cleans up after the test process when it dies without
/// doing so itself (exit hooks do not run on a kill): it gets the process's
/// pid as `$1` and the given arguments after it, and runs in its own process
/// group, so a Ctrl-C on the test run does not kill it before it is done.
pub(crate) struct Watchdog(Mutex<Option<std::process::Child>>);

impl Watchdog {
    /// Starts `script` as `sh -c script name PID args...`.
    pub(crate) fn spawn<S: AsRef<std::ffi::OsStr>>(script: &str, name: &str, args: &[S]) -> Self {
        use std::os::unix::process::CommandExt;
        use std::process::{Command, Stdio};
        let child = Command::new("sh")
            .arg("-c")
            .arg(script)
            .arg(name)
            .arg(std::process::id().to_string())
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .unwrap_or_else(|e| panic!("start {name}: {e}"));
        Self(Mutex::new(Some(child)))
    }

    /// Stops it without letting it run: the owner cleaned up itself.
    pub(crate) fn disarm(&self) {
        if let Some(mut w) = self.0.lock().unwrap_or_else(|e| e.into_inner()).take() {
            let _ = w.kill();
            let _ = w.wait();
        }
    }
}
