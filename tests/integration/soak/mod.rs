//! Chaos against a fleet of three: random commits (releases, reverts, invalid commits,
//! scale changes), agents killed, replicas crashed, the registry stopped, engines
//! restarted and PostgreSQL stopped or failed over, while the invariants are checked
//! continuously ([`watch`]). In CI it runs a short mode: [`SHORT_SECS`] of chaos from
//! the seed [`SHORT_SEED`]. By hand, `BERTH_RELIABILITY=soak cargo test --test
//! integration soak` runs it for an hour from a seed of the clock;
//! `BERTH_SOAK_SECS` sets the length and `BERTH_SOAK_SEED` replays a run.

mod faults;
mod model;
mod watch;

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use faults::Chaos;
use model::{Content, Desired, History, SERVICES};
use watch::{count_lines, ledger_attempts, replicas, Watch};

use crate::fleet::Fleet;
use crate::support::{images, new_release, wait_until, ChaosRng, Registry};

/// The time of day (UTC), as the agents' logs show it.
pub(crate) fn now() -> String {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970");
    let s = t.as_secs() % 86400;
    format!(
        "{:02}:{:02}:{:02}.{:03}",
        s / 3600,
        s / 60 % 60,
        s % 60,
        t.subsec_millis()
    )
}

/// The chaos's length in the short mode (CI).
const SHORT_SECS: u64 = 60;
/// The seed of the short mode, so that CI replays the same faults and commits.
const SHORT_SEED: u64 = 20261130;

/// Whether the soak runs its long mode (`BERTH_RELIABILITY=soak`).
fn long() -> bool {
    std::env::var("BERTH_RELIABILITY").as_deref() == Ok("soak")
}

fn soak_secs() -> u64 {
    std::env::var("BERTH_SOAK_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(if long() { 3600 } else { SHORT_SECS })
}

#[test]
fn a_fleet_of_three_keeps_its_invariants_under_chaos() {
    let secs = soak_secs();
    let mut rng = if long() || std::env::var_os("BERTH_SOAK_SEED").is_some() {
        ChaosRng::from_env("BERTH_SOAK_SEED")
    } else {
        ChaosRng::new(SHORT_SEED)
    };
    let f = Fleet::new(3, "soak");
    // A registry of the chaos's own: it is stopped now and then.
    let registry = Registry::new();
    let base = images().app_v1.clone();
    let first = Desired {
        image: new_release(&registry, &base, "r0"),
        version: "r0".into(),
        api: 2,
        web: 2,
    };
    let mut history = History::default();
    let sha = f.repo.commit(&model::stack(&f, &first), "r0");
    history.push(Content::Valid(first.clone()), sha.clone());
    // Kept after the run, to read beside the violations.
    let log_dir =
        std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("soak-{}", rng.seed()));
    let _ = std::fs::remove_dir_all(&log_dir);
    eprintln!(
        "soak: seed {}, agents' logs in {}",
        rng.seed(),
        log_dir.display()
    );
    let mut chaos = Chaos::new(&f, &registry, log_dir);
    chaos.start_agents();
    let converged = wait_until(Duration::from_secs(120), Duration::from_millis(250), || {
        (1..=3).all(|h| exactly(&f, h, &first).is_ok())
    });
    assert!(converged, "the fleet did not start:\n{}", chaos.logs());
    // What the project has besides containers, to compare at the end.
    let nets: Vec<String> = (1..=3).map(|h| networks(&f, h)).collect();

    let watch = Watch::new(3);
    let started = Instant::now();
    let mut releases = 0;
    std::thread::scope(|s| {
        s.spawn(|| watch.run(&f));
        // The checker stops also when the chaos panics.
        let _stop = StopOnDrop(&watch.stop);
        let end = started + Duration::from_secs(secs);
        while Instant::now() < end {
            chaos.recover_due(&watch);
            match rng.below(100) {
                0..=39 => {
                    let kind = commit(&f, &registry, &base, &mut history, &mut rng, &mut releases);
                    chaos.count(
                        &format!("commit: {kind}"),
                        &f.repo.git(&["rev-parse", "--short", "HEAD"]),
                    );
                }
                40..=59 => chaos.kill_agent(&mut rng),
                60..=74 => {
                    let (want, _) = history.last_valid().expect("r0 is valid");
                    chaos.crash_replica(&mut rng, &watch, &want)
                }
                75..=82 => chaos.stop_registry(&mut rng),
                83..=89 => chaos.restart_engine(&mut rng, &watch),
                90..=94 => chaos.stop_postgres(&mut rng, false),
                _ => chaos.stop_postgres(&mut rng, true),
            }
            std::thread::sleep(rng.between(Duration::from_millis(200), Duration::from_secs(3)));
        }
        chaos.recover_all(&watch);
        // The last valid commit, exactly, on every host; and every agent says so.
        let (want, sha) = history.last_valid().expect("r0 is valid");
        let mut last = String::new();
        let until = Instant::now() + Duration::from_secs(300);
        let mut ok = false;
        while !ok && Instant::now() < until {
            chaos.recover_all(&watch);
            let states: Result<Vec<()>, String> = (1..=3).map(|h| exactly(&f, h, &want)).collect();
            let applied = chaos.applied();
            match (states, applied.iter().position(|a| a != &sha)) {
                (Err(e), _) => last = e,
                (Ok(_), Some(h)) => last = format!("h{} applied {} not {sha}", h + 1, applied[h]),
                (Ok(_), None) => ok = true,
            }
            std::thread::sleep(Duration::from_millis(500));
        }
        if !ok {
            watch.violation(format!("not converged to the last valid commit: {last}"));
        }
        watch.stop.store(true, Ordering::SeqCst);
    });

    let (want, _) = history.last_valid().unwrap();
    let runs = count_lines(&f.shared.path().join("runs"));
    let starts = count_lines(&f.shared.path().join("starts"));
    if runs.get(&want.version) != Some(&1) {
        watch.violation(format!(
            "the last release's migration ran {:?} times",
            runs.get(&want.version)
        ));
    }
    for h in 1..=3 {
        if networks(&f, h) != nets[h - 1] {
            watch.violation(format!(
                "h{h}: networks {} then {}",
                nets[h - 1],
                networks(&f, h)
            ));
        }
    }
    let commits: BTreeMap<&str, u32> = chaos
        .counts
        .iter()
        .filter_map(|(k, v)| k.strip_prefix("commit: ").map(|k| (k, *v)))
        .collect();
    let faults: BTreeMap<&str, u32> = chaos
        .counts
        .iter()
        .filter(|(k, _)| !k.starts_with("commit: "))
        .map(|(k, v)| (k.as_str(), *v))
        .collect();
    let violations = watch.violations();
    eprintln!(
        "soak: seed {} for {} s: commits {} {commits:?}; faults {} {faults:?}; releases {releases}; \
         migration starts {}, completed runs {}, ledger claims {}; {} invariant samples; {} violations",
        rng.seed(),
        started.elapsed().as_secs(),
        commits.values().sum::<u32>(),
        faults.values().sum::<u32>(),
        starts.values().sum::<u32>(),
        runs.values().sum::<u32>(),
        ledger_attempts(&f).map_or(0, |a| a.values().sum::<u32>()),
        watch.samples.load(Ordering::SeqCst),
        violations.len(),
    );
    assert!(
        violations.is_empty(),
        "seed {}: {violations:#?}\nthe agents' logs: {}",
        rng.seed(),
        chaos.log_dir.display()
    );
    drop(chaos);
    drop(registry);
}

/// Sets its flag when dropped.
struct StopOnDrop<'a>(&'a std::sync::atomic::AtomicBool);

impl Drop for StopOnDrop<'_> {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

/// Makes one random commit and returns its kind.
fn commit(
    f: &Fleet,
    registry: &Registry,
    base: &str,
    history: &mut History,
    rng: &mut ChaosRng,
    releases: &mut u32,
) -> &'static str {
    let (last, _) = history.last_valid().expect("r0 is valid");
    let roll = rng.below(100);
    if roll < 20 {
        if let Some(back) = history.before_head() {
            // `git revert HEAD`, also of an empty commit (an invalid one made twice).
            let text = f.repo.git(&["show", "HEAD~1:berth.yaml"]);
            let sha = f.repo.commit(&format!("{text}\n"), "Revert HEAD");
            history.push(back, sha);
            return "revert";
        }
    }
    if roll < 35 {
        let (text, kind) = model::invalid(f, &last, rng.below(3));
        let sha = f.repo.commit(&text, kind);
        history.push(Content::Invalid, sha);
        return "invalid";
    }
    let mut next = last.clone();
    let kind = if roll < 70 && registry.is_running() {
        *releases += 1;
        next.version = format!("r{releases}");
        next.image = new_release(registry, base, &next.version);
        "release"
    } else {
        next.api = 1 + rng.below(3) as u32;
        next.web = 1 + rng.below(2) as u32;
        "scale"
    };
    let sha = f.repo.commit(&model::stack(f, &next), kind);
    history.push(Content::Valid(next), sha);
    kind
}

/// Whether `host` runs exactly `want`: each service's replicas, healthy, on its
/// image, and no other container of the project (no leftover candidate or migration).
fn exactly(f: &Fleet, host: usize, want: &Desired) -> Result<(), String> {
    let e = &f.engines[host - 1];
    let all = e.docker([
        "ps",
        "-a",
        "--filter",
        &format!("label=berth.project={}", f.project),
        "--format",
        "{{.Names}} {{.Image}} {{.Status}}",
    ]);
    let all = String::from_utf8_lossy(&all.stdout).into_owned();
    let count = all.lines().count() as u32;
    let running = replicas(f, host).unwrap_or_default();
    for s in SERVICES {
        let healthy = running
            .iter()
            .filter(|r| r.service == s && r.healthy)
            .count() as u32;
        if healthy != want.replicas(s) {
            return Err(format!(
                "h{host}: {healthy} healthy {s}, want {}:\n{all}",
                want.replicas(s)
            ));
        }
    }
    if count != want.api + want.web || all.lines().any(|l| !l.contains(&want.image)) {
        return Err(format!("h{host}: want {want:?}, found:\n{all}"));
    }
    Ok(())
}

/// The project's networks on `host`, by name, sorted.
fn networks(f: &Fleet, host: usize) -> String {
    let mut v: Vec<String> = f.engines[host - 1]
        .docker_stdout([
            "network",
            "ls",
            "--filter",
            &format!("label=berth.project={}", f.project),
            "--format",
            "{{.Name}}",
        ])
        .lines()
        .map(str::to_string)
        .collect();
    v.sort();
    v.join(",")
}
