//! Extra Docker engines on this machine, one per simulated host of a fleet.
//!
//! Each [`Engine`] is a `dockerd` of its own (with its own managed
//! containerd) beside the machine's engine: own data and exec roots under a
//! short directory in `/tmp`, own socket, own default bridge and its own
//! block of addresses for user-defined networks. It pulls from the loopback
//! registries like the machine's engine does (`127.0.0.0/8` is an insecure
//! registry by default).
//!
//! Needs root. Things learnt the hard way:
//!
//! - `--bridge none` must not be used: a dockerd without a default bridge
//!   deletes the link named `docker0`, i.e. the machine engine's bridge.
//!   Each engine gets a bridge of its own (`bxengN`) instead.
//! - `--iptables=false`, or the engine would flush the machine engine's
//!   `DOCKER` chains. The machine engine leaves the FORWARD policy at DROP
//!   and bridged traffic goes through iptables (`br_netfilter`), so traffic
//!   between containers of one network is allowed by a rule of our own
//!   (bridged traffic within the engine's address block only: separate
//!   networks stay isolated, as with a normal engine).
//! - Every engine needs its own `--default-address-pool`: each engine
//!   hands out `172.17.0.0/16`... on its own, and equal subnets on two
//!   bridges break routing on the host.
//! - `--config-file` of its own: `/etc/docker/daemon.json` may set
//!   `data-root`, which dockerd refuses to combine with the flag.
//! - A dockerd started with `--default-address-pool` on existing data (a
//!   restart) deletes `docker0` too, unless live restore is on. Each engine
//!   therefore starts with live restore and turns it off (config reload)
//!   once it runs, so that stopping it still stops its containers.

use std::ffi::OsStr;
use std::fs::{self, OpenOptions};
use std::net::Ipv4Addr;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Mutex, MutexGuard, Once};
use std::time::{Duration, Instant};

use super::cleanup;
use super::docker::{quietly, wait_until};

/// Address blocks: engine slot `N` owns `10.(FIRST_OCTET2+N).0.0/16`, its
/// default bridge is `bxengN` with `10.(..).0.1/24`, and its user-defined
/// networks get `/24`s from the rest of the block.
const FIRST_OCTET2: u8 = 192;
const SLOTS: u8 = 64;

/// How long an engine may take to answer after it was started.
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// Stops an engine and removes everything it had: containers, networks (and
/// their bridges), mounts left behind, the FORWARD rule, its bridge and its
/// directory. Arguments: engine directory, bridge, address block (`10.N`).
/// Safe to run more than once and on an engine that is gone; used by
/// [`Engine`]'s drop, the exit hook, the watchdog and to reclaim the slot of
/// an engine whose test process and watchdog both died.
const TEARDOWN: &str = r#"
dir=$1 bridge=$2 block=$3
host=unix://$dir/docker.sock
alive() {
    [ -n "$1" ] && [ "$(cat /proc/$1/comm 2>/dev/null)" = "$2" ] &&
        ! grep -q '^[0-9]* ([^)]*) Z' /proc/$1/stat 2>/dev/null
}
pid=$(cat "$dir/docker.pid" 2>/dev/null)
if alive "$pid" dockerd; then
    ids=$(timeout 30 docker -H "$host" ps -aq 2>/dev/null)
    [ -n "$ids" ] && timeout 60 docker -H "$host" rm -f $ids >/dev/null 2>&1
    timeout 30 docker -H "$host" network prune -f >/dev/null 2>&1
    kill "$pid" 2>/dev/null
    i=0
    while alive "$pid" dockerd && [ $i -lt 300 ]; do sleep 0.1; i=$((i+1)); done
    kill -9 "$pid" 2>/dev/null
fi
cpid=$(cat "$dir/exec/containerd/containerd.pid" 2>/dev/null)
alive "$cpid" containerd && kill -9 "$cpid" 2>/dev/null
grep -o " $dir/[^ ]*" /proc/mounts 2>/dev/null | sort -r | while read -r m; do
    umount -l "$m" 2>/dev/null
done
ip -o -4 addr show 2>/dev/null | awk -v p="$block." 'index($4, p) == 1 { print $2 }' |
    sort -u | while read -r l; do
        [ "$l" != "$bridge" ] && ip link del "$l" 2>/dev/null
    done
while iptables -D FORWARD -s "$block.0.0/16" -d "$block.0.0/16" -m physdev --physdev-is-bridged \
    -m comment --comment "berth-test $dir" -j ACCEPT 2>/dev/null; do :; done
[ "$(cat "/sys/class/net/$bridge/ifalias" 2>/dev/null)" = "$dir" ] && ip link del "$bridge"
rm -rf "$dir"
true
"#;

/// Waits for the test process (first argument) to end, then runs
/// [`TEARDOWN`] with the remaining arguments. Exit hooks do not run when a
/// test process is killed.
const WATCHDOG: &str = r#"
while kill -0 "$1" 2>/dev/null; do sleep 1; done
shift
"#;

/// Engines of this process not dropped yet, torn down at exit (an engine
/// kept in a static is never dropped).
static LIVE: Mutex<Vec<(PathBuf, u8)>> = Mutex::new(Vec::new());

/// A Docker engine of its own, stopped and deleted (containers, networks,
/// images, volumes) when dropped.
pub struct Engine {
    name: String,
    dir: PathBuf,
    slot: u8,
    child: Mutex<Option<Child>>,
    watchdog: cleanup::Watchdog,
}

impl Engine {
    /// Starts an engine and waits until it answers (about half a second).
    /// `name` appears in its directory and in messages.
    pub fn start(name: &str) -> Engine {
        require_root();
        let short: String = name
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' {
                    c
                } else {
                    '-'
                }
            })
            .take(12)
            .collect();
        // Unix socket paths are limited to about 108 bytes: stay short.
        let dir = tempfile::Builder::new()
            .prefix(&format!("bx-{short}-"))
            .tempdir_in("/tmp")
            .expect("create engine directory")
            .keep();
        fs::write(dir.join("owner"), std::process::id().to_string()).expect("write engine owner");
        let slot = claim_slot(&dir).unwrap_or_else(|e| {
            let _ = fs::remove_dir_all(&dir);
            panic!("{e}")
        });
        register(&dir, slot);

        let watchdog = cleanup::Watchdog::spawn(
            &format!("{WATCHDOG}{TEARDOWN}"),
            "berth-test-engine-watchdog",
            &teardown_args(&dir, slot),
        );

        // From here on, a panic drops the engine, which cleans up.
        let engine = Engine {
            name: name.to_string(),
            dir,
            slot,
            child: Mutex::new(None),
            watchdog,
        };
        engine.allow_bridged_traffic();
        engine.start_again();
        engine
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// `unix:///tmp/bx-NAME-XXXXXX/docker.sock`, the `DOCKER_HOST` value for
    /// this engine.
    pub fn host(&self) -> String {
        format!("unix://{}", self.dir.join("docker.sock").display())
    }

    /// Directory of the engine: `data/` (data root), `exec/` (exec root),
    /// `docker.sock`, `docker.pid`, `dockerd.log`, `daemon.json` and `owner`
    /// (pid of the test process).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The `/16` this engine's networks get their subnets from, e.g.
    /// `10.192.0.0/16`.
    pub fn address_block(&self) -> String {
        format!("{}.0.0/16", block(self.slot))
    }

    /// The engine's log (warnings and errors, containerd's too).
    pub fn log(&self) -> String {
        fs::read_to_string(self.dir.join("dockerd.log")).unwrap_or_default()
    }

    /// A `docker` command aimed at this engine (`DOCKER_HOST` set), for what
    /// [`Engine::docker`] does not cover: stdin, extra environment, spawn.
    pub fn command(&self) -> Command {
        let mut cmd = Command::new("docker");
        cmd.env("DOCKER_HOST", self.host())
            .env_remove("DOCKER_CONTEXT")
            .env_remove("DOCKER_TLS_VERIFY")
            .env_remove("DOCKER_CERT_PATH")
            .stdin(Stdio::null());
        cmd
    }

    /// Runs `docker ARGS` against this engine and returns its output,
    /// whether it succeeded or not (see [`Engine::docker_stdout`]).
    pub fn docker<I, S>(&self, args: I) -> Output
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let args: Vec<_> = args.into_iter().map(|a| a.as_ref().to_owned()).collect();
        self.command()
            .args(&args)
            .output()
            .unwrap_or_else(|e| panic!("cannot run `docker` for engine {}: {e}", self.name))
    }

    /// Runs `docker ARGS` against this engine and returns its trimmed stdout,
    /// panicking with its stderr when it fails.
    pub fn docker_stdout<I, S>(&self, args: I) -> String
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let args: Vec<_> = args.into_iter().map(|a| a.as_ref().to_owned()).collect();
        let out = self.docker(&args);
        if !out.status.success() {
            let shown: Vec<_> = args.iter().map(|a| a.to_string_lossy()).collect();
            panic!(
                "`docker {}` on engine {} failed ({}):\n{}{}",
                shown.join(" "),
                self.name,
                out.status,
                String::from_utf8_lossy(&out.stderr),
                String::from_utf8_lossy(&out.stdout),
            );
        }
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// Runs `docker ARGS` against this engine and tells whether it succeeded.
    pub fn docker_ok<I, S>(&self, args: I) -> bool
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.docker(args).status.success()
    }

    fn lock_child(&self) -> MutexGuard<'_, Option<Child>> {
        self.child.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether the engine's dockerd runs (it may not answer yet).
    pub fn is_running(&self) -> bool {
        self.lock_child()
            .as_mut()
            .is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }

    /// Starts the engine (again, after [`Engine::stop`]) with the same data,
    /// networks and address block, and waits until it answers. Does nothing
    /// when it already runs. Containers with a restart policy come back.
    pub fn start_again(&self) {
        let mut child = self.lock_child();
        if let Some(c) = child.as_mut() {
            if matches!(c.try_wait(), Ok(None)) {
                return;
            }
        }
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("dockerd.log"))
            .expect("open dockerd log");
        let d = |p: &str| self.dir.join(p);
        // Live restore while the engine starts (a restart would delete
        // `docker0` otherwise), off once it runs; see the module comment.
        fs::write(d("daemon.json"), "{\"live-restore\": true}\n").expect("write daemon.json");
        let pool = format!("base={},size=24", self.address_block());
        let mut spawned = Command::new("dockerd")
            .arg("--config-file")
            .arg(d("daemon.json"))
            .arg("--data-root")
            .arg(d("data"))
            .arg("--exec-root")
            .arg(d("exec"))
            .arg("--host")
            .arg(self.host())
            .arg("--pidfile")
            .arg(d("docker.pid"))
            .args(["--bridge", &bridge_name(self.slot)])
            .args(["--default-address-pool", &pool])
            .args(["--iptables=false", "--ip-masq=false"])
            .args(["--log-level", "warn"])
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("clone log handle"))
            .stderr(log)
            // Not in the test run's process group: a Ctrl-C leaves the
            // engine to the watchdog, which removes its containers first.
            .process_group(0)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run `dockerd` for engine {}: {e}", self.name));
        let started = Instant::now();
        let up = wait_until(START_TIMEOUT, Duration::from_millis(50), || {
            !matches!(spawned.try_wait(), Ok(None))
                || self.docker_ok(["version", "--format", "{{.Server.Version}}"])
        });
        if !up || !matches!(spawned.try_wait(), Ok(None)) {
            let status = if up {
                spawned
                    .wait()
                    .map(|s| format!("dockerd exited: {s}"))
                    .unwrap_or_default()
            } else {
                let _ = spawned.kill();
                let _ = spawned.wait();
                format!("no answer within {} s", START_TIMEOUT.as_secs())
            };
            panic!(
                "engine {} ({}) did not start ({status}); end of {}:\n{}",
                self.name,
                self.host(),
                d("dockerd.log").display(),
                tail(&self.log(), 40)
            );
        }
        if let Err(e) = self.reload_live_restore(spawned.id() as i32, false) {
            let _ = spawned.kill();
            let _ = spawned.wait();
            panic!("engine {}: {e}", self.name);
        }
        eprintln!(
            "engine {} up at {} in {:.1} s",
            self.name,
            self.host(),
            started.elapsed().as_secs_f64()
        );
        *child = Some(spawned);
    }

    /// Turns live restore on or off while the engine runs (config reload): with it
    /// on, a stop leaves the containers running and a start takes them back.
    pub fn set_live_restore(&self, on: bool) {
        let pid = self.lock_child().as_ref().map(|c| c.id() as i32);
        let pid = pid.unwrap_or_else(|| panic!("engine {} does not run", self.name));
        if let Err(e) = self.reload_live_restore(pid, on) {
            panic!("engine {}: {e}", self.name);
        }
    }

    /// A restart of the engine's dockerd, as a package upgrade does it: stopped
    /// (SIGTERM) with live restore `on` or off, then started again on the same data.
    /// With it on, containers keep running throughout; with it off, they all stop
    /// and those with a restart policy come back when the engine does.
    pub fn restart(&self, live_restore: bool) {
        self.set_live_restore(live_restore);
        self.stop();
        self.start_again();
    }

    /// Writes `daemon.json` with live restore `on` and has dockerd `pid` reload it.
    fn reload_live_restore(&self, pid: i32, on: bool) -> Result<(), String> {
        fs::write(
            self.dir.join("daemon.json"),
            format!("{{\"live-restore\": {on}}}\n"),
        )
        .map_err(|e| format!("write daemon.json: {e}"))?;
        // SAFETY: plain kill(2) of our own child process.
        unsafe {
            libc::kill(pid, libc::SIGHUP);
        }
        let want = format!("{on}");
        let reloaded = wait_until(Duration::from_secs(10), Duration::from_millis(20), || {
            self.docker(["info", "--format", "{{.LiveRestoreEnabled}}"])
                .stdout
                .starts_with(want.as_bytes())
        });
        if reloaded {
            Ok(())
        } else {
            Err(format!(
                "live restore did not turn {}; end of its log:\n{}",
                if on { "on" } else { "off" },
                tail(&self.log(), 40)
            ))
        }
    }

    /// Stops the engine (SIGTERM, waiting for dockerd to exit). Running
    /// containers get their stop timeout first, 10 s for one that ignores
    /// SIGTERM. Data stays for [`Engine::start_again`]. Does nothing when
    /// the engine does not run.
    pub fn stop(&self) {
        let mut child = self.lock_child();
        let Some(mut c) = child.take() else {
            return;
        };
        if matches!(c.try_wait(), Ok(None)) {
            // dockerd's pid file names the child itself.
            let pid = fs::read_to_string(self.dir.join("docker.pid"))
                .ok()
                .and_then(|p| p.trim().parse::<i32>().ok())
                .filter(|p| *p == c.id() as i32)
                .unwrap_or(c.id() as i32);
            // SAFETY: plain kill(2) of our own child process.
            unsafe {
                libc::kill(pid, libc::SIGTERM);
            }
            let exited = wait_until(Duration::from_secs(60), Duration::from_millis(50), || {
                !matches!(c.try_wait(), Ok(None))
            });
            if !exited {
                let _ = c.kill();
            }
        }
        let _ = c.wait();
    }

    /// Adds the FORWARD rule that lets containers of one network of this
    /// engine talk to each other.
    fn allow_bridged_traffic(&self) {
        let block = self.address_block();
        let comment = format!("berth-test {}", self.dir.display());
        let out = Command::new("iptables")
            .args(["-I", "FORWARD", "-s", &block, "-d", &block])
            .args(["-m", "physdev", "--physdev-is-bridged"])
            .args(["-m", "comment", "--comment", &comment, "-j", "ACCEPT"])
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("cannot run `iptables`: {e}"));
        if !out.status.success() {
            panic!(
                "iptables rule for engine {} failed: {}",
                self.name,
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        if self.is_running() {
            let ids = self.docker(["ps", "-aq"]);
            let ids = String::from_utf8_lossy(&ids.stdout).into_owned();
            let ids: Vec<&str> = ids.split_whitespace().collect();
            if !ids.is_empty() {
                let mut args = vec!["rm", "-f"];
                args.extend(ids);
                let _ = self.docker(args);
            }
            let _ = self.docker(["network", "prune", "-f"]);
        }
        self.stop();
        teardown(&self.dir, self.slot);
        self.watchdog.disarm();
        LIVE.lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|(d, _)| d != &self.dir);
    }
}

fn require_root() {
    // SAFETY: geteuid(2) has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        panic!("extra Docker engines need root (dockerd, bridges, iptables)");
    }
}

fn bridge_name(slot: u8) -> String {
    format!("bxeng{slot}")
}

/// `10.N`, the first two octets of a slot's address block.
fn block(slot: u8) -> String {
    format!("10.{}", FIRST_OCTET2 + slot)
}

/// Arguments of [`TEARDOWN`].
fn teardown_args(dir: &Path, slot: u8) -> [std::ffi::OsString; 3] {
    [dir.into(), bridge_name(slot).into(), block(slot).into()]
}

fn teardown(dir: &Path, slot: u8) {
    let _ = Command::new("sh")
        .arg("-c")
        .arg(TEARDOWN)
        .arg("berth-test-engine-teardown")
        .args(teardown_args(dir, slot))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

fn register(dir: &Path, slot: u8) {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        cleanup::on_exit(|| {
            let live = match LIVE.try_lock() {
                Ok(mut l) => std::mem::take(&mut *l),
                Err(_) => return,
            };
            for (dir, slot) in live {
                teardown(&dir, slot);
            }
        })
    });
    LIVE.lock()
        .unwrap_or_else(|e| e.into_inner())
        .push((dir.to_path_buf(), slot));
}

/// Claims a free address block by creating its bridge: `ip link add` is the
/// lock between test processes. The bridge's alias names the engine
/// directory; a bridge whose directory or test process is gone was left by a
/// test process and watchdog that both died, and its slot is cleaned and
/// reused.
fn claim_slot(dir: &Path) -> Result<u8, String> {
    for slot in 0..SLOTS {
        let bridge = bridge_name(slot);
        let alias = Path::new("/sys/class/net").join(&bridge).join("ifalias");
        if let Ok(owner) = fs::read_to_string(&alias) {
            let owner = owner.trim();
            // An empty alias: another process is claiming it right now.
            if owner.is_empty() || !abandoned(Path::new(owner)) {
                continue;
            }
            teardown(Path::new(owner), slot);
        }
        let range = (Ipv4Addr::new(10, FIRST_OCTET2 + slot, 0, 0), 16);
        if routes().iter().any(|r| overlaps(*r, range)) {
            continue;
        }
        if !ip(&["link", "add", &bridge, "type", "bridge"]) {
            continue;
        }
        let address = format!("{}.0.1/24", block(slot));
        let dir = dir.to_string_lossy();
        if ip(&["link", "set", "dev", &bridge, "alias", &dir])
            && ip(&["addr", "add", &address, "dev", &bridge])
        {
            return Ok(slot);
        }
        ip(&["link", "del", &bridge]);
        return Err(format!("cannot set up bridge {bridge} for an engine"));
    }
    Err(format!(
        "no free address block for another engine (10.{FIRST_OCTET2}.0.0 to 10.{}.0.0, /16 each)",
        FIRST_OCTET2 + (SLOTS - 1)
    ))
}

/// Whether the test process that made an engine directory is gone.
fn abandoned(dir: &Path) -> bool {
    if !dir.exists() {
        return true;
    }
    fs::read_to_string(dir.join("owner"))
        .ok()
        .and_then(|p| p.trim().parse::<u32>().ok())
        .is_some_and(|pid| !Path::new(&format!("/proc/{pid}")).exists())
}

fn ip(args: &[&str]) -> bool {
    quietly(Command::new("ip").args(args))
}

/// Destinations of the host's IPv4 routes, except the default route.
fn routes() -> Vec<(Ipv4Addr, u8)> {
    let out = Command::new("ip")
        .args(["-4", "route", "show", "table", "all"])
        .stdin(Stdio::null())
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();
    out.lines()
        .filter_map(|l| l.split_whitespace().take(2).find_map(parse_prefix))
        .collect()
}

fn parse_prefix(s: &str) -> Option<(Ipv4Addr, u8)> {
    let (addr, len) = s.split_once('/').unwrap_or((s, "32"));
    Some((addr.parse().ok()?, len.parse().ok().filter(|l| *l <= 32)?))
}

fn overlaps(a: (Ipv4Addr, u8), b: (Ipv4Addr, u8)) -> bool {
    let len = a.1.min(b.1);
    let mask = if len == 0 { 0 } else { u32::MAX << (32 - len) };
    (u32::from(a.0) & mask) == (u32::from(b.0) & mask) && len > 0
}

fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}
