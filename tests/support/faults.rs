//! Tools of the chaos tests: a seeded generator (the seed is printed, so a run can
//! be replayed), new application images made on demand (each with a digest of its
//! own, so each release runs its migration), and faults a host can suffer that are
//! not berth's: a replica's process killed, an engine restarted. (Disk faults and the
//! agent as a container are in `chaos`.)

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::images::build_pushed;
use super::{Engine, Registry};

/// A seeded generator (fastrand's wyrand) with its seed.
pub struct ChaosRng {
    rng: fastrand::Rng,
    seed: u64,
}

impl ChaosRng {
    /// Seeded from the environment variable `var` when set, else from the clock;
    /// prints `var=SEED` so the run can be replayed.
    pub fn from_env(var: &str) -> ChaosRng {
        let seed = std::env::var(var)
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .expect("clock after 1970")
                    .as_nanos() as u64
            });
        eprintln!("chaos seed: {var}={seed}");
        ChaosRng::new(seed)
    }

    /// A generator seeded with `seed`.
    pub fn new(seed: u64) -> ChaosRng {
        ChaosRng {
            rng: fastrand::Rng::with_seed(seed),
            seed,
        }
    }

    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// A number in `0..n`.
    pub fn below(&mut self, n: u64) -> u64 {
        self.rng.u64(0..n.max(1))
    }

    /// True with probability `percent` %.
    pub fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }

    /// A duration between `min` and `max`.
    pub fn between(&mut self, min: Duration, max: Duration) -> Duration {
        let span = max.saturating_sub(min).as_millis() as u64;
        min + Duration::from_millis(self.rng.u64(0..=span))
    }
}

/// Builds an image `FROM base` whose `/version` reads `version`, pushes it to
/// `registry` as `ADDR/chaos/app:TAG` and returns that reference. Each call makes
/// a new digest.
pub fn new_release(registry: &Registry, base: &str, version: &str) -> String {
    let work = tempfile::tempdir().expect("build directory");
    let reference = format!(
        "{}/chaos/app:{}",
        registry.addr(),
        version.replace(':', "-")
    );
    let version = format!("{version}\n");
    build_pushed(
        work.path(),
        base,
        [("version", version.as_str())],
        &reference,
    );
    reference
}

/// Kills the main process of container `id` on `engine` with SIGKILL from the
/// machine, as a crash: the engine's restart policy applies (unlike `docker kill`,
/// which counts as stopped by hand). False when it was not running.
pub fn crash_container(engine: &Engine, id: &str) -> bool {
    let pid = engine.docker(["inspect", "-f", "{{.State.Pid}}", id]);
    let pid: i32 = String::from_utf8_lossy(&pid.stdout)
        .trim()
        .parse()
        .unwrap_or(0);
    if pid <= 0 {
        return false;
    }
    // SAFETY: plain kill(2) of a process the test's engine started.
    unsafe { libc::kill(pid, libc::SIGKILL) == 0 }
}

/// Restarts `engine` (dockerd stops, its containers with it; it starts again on the
/// same data) and returns how long it was away.
pub fn restart_engine(engine: &Engine, away: Duration) -> Duration {
    let started = Instant::now();
    engine.stop();
    std::thread::sleep(away);
    engine.start_again();
    started.elapsed()
}
