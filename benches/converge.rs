//! End-to-end timings on the real engine, contestants interleaved in one run on the same
//! images: a cold converge of 20 services × 1 replica until all are healthy (berth,
//! `docker-compose up -d` plus waiting, parallel `docker run` plus waiting), and a
//! one-service image bump (berth, docker-compose).
//!
//! `cargo bench --bench converge [-- ROUNDS]` (default 3 rounds). Not a test: it asserts
//! nothing about time and prints median, min, max and ratios.

#[path = "../tests/support/mod.rs"]
mod support;

use std::process::Command;
use std::time::{Duration, Instant};

use support::{docker, docker_stdout, images, wait_until, Project};

const SERVICES: usize = 20;

/// Runs berth, logging JSON at `level` to stderr; returns the log.
fn berth(args: &[&str], level: &str) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_berth"))
        .arg("--log-format")
        .arg("json")
        .args(args)
        .env("RUST_LOG", level)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "berth {args:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Seconds from `since` to the first log event with `"action":"<action>"`.
fn event_after(log: &str, action: &str, since: std::time::SystemTime) -> Option<f64> {
    let needle = format!("\"action\":\"{action}\"");
    let line = log.lines().find(|l| l.contains(&needle))?;
    let v: serde_json::Value = serde_json::from_str(line).ok()?;
    let t = time::OffsetDateTime::parse(
        v["timestamp"].as_str()?,
        &time::format_description::well_known::Rfc3339,
    )
    .ok()?;
    let at = std::time::UNIX_EPOCH + Duration::from_nanos(t.unix_timestamp_nanos() as u64);
    at.duration_since(since).ok().map(|d| d.as_secs_f64())
}

fn all_healthy(project: &Project, n: usize) -> bool {
    let out = docker_stdout([
        "ps",
        "--filter",
        &format!("name=^{}", project.name()),
        "--filter",
        "health=healthy",
        "-q",
    ]);
    out.lines().count() >= n
}

fn wait_all_healthy(project: &Project, n: usize) {
    assert!(wait_until(
        Duration::from_secs(120),
        Duration::from_millis(50),
        || all_healthy(project, n)
    ));
}

fn berth_stack(project: &str, image: &str, bumped: Option<&str>) -> String {
    let mut s = format!("project: {project}\nservices:\n");
    for i in 0..SERVICES {
        let img = if i == 0 {
            bumped.unwrap_or(image)
        } else {
            image
        };
        s.push_str(&format!(
            "  s{i}:\n    image: {img}\n    stop_grace: 2s\n    update: {{ monitor: 0s }}\n"
        ));
    }
    s
}

fn compose_file(image: &str, bumped: Option<&str>) -> String {
    let mut s = String::from("version: \"2.4\"\nservices:\n");
    for i in 0..SERVICES {
        let img = if i == 0 {
            bumped.unwrap_or(image)
        } else {
            image
        };
        s.push_str(&format!(
            "  s{i}:\n    image: {img}\n    stop_grace_period: 2s\n"
        ));
    }
    s
}

/// CPU seconds (user + system) of all finished child processes so far.
fn children_cpu() -> f64 {
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: getrusage writes into the struct we own.
    unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, &mut u) };
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    tv(u.ru_utime) + tv(u.ru_stime)
}

fn time(f: impl FnOnce()) -> f64 {
    let t = Instant::now();
    f();
    t.elapsed().as_secs_f64()
}

struct Series(Vec<f64>);

impl Series {
    fn median(&self) -> f64 {
        let mut v = self.0.clone();
        v.sort_by(|a, b| a.partial_cmp(b).unwrap());
        v[v.len() / 2]
    }
    fn line(&self, name: &str, base: Option<f64>) -> String {
        self.line_in(name, base, "s")
    }
    fn line_in(&self, name: &str, base: Option<f64>, unit: &str) -> String {
        let min = self.0.iter().cloned().fold(f64::MAX, f64::min);
        let max = self.0.iter().cloned().fold(0.0, f64::max);
        let ratio = base
            .map(|b| format!("  ratio {:.2}", self.median() / b))
            .unwrap_or_default();
        format!(
            "{name:<28} median {:>6.2}{unit}  min {min:>6.2}{unit}  max {max:>6.2}{unit}{ratio}",
            self.median()
        )
    }
}

fn main() {
    let rounds: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(3);
    let img = images();
    let (mut b_cold, mut c_cold, mut r_cold, mut b_bump, mut c_bump) =
        (vec![], vec![], vec![], vec![], vec![]);
    let (mut cpu_create, mut cpu_bump, mut b_serves) = (vec![], vec![], vec![]);
    for round in 0..rounds {
        eprintln!("round {} of {rounds}", round + 1);
        // berth
        let p = Project::new("benchb");
        let dir = tempfile::tempdir().unwrap();
        let state = tempfile::tempdir().unwrap();
        let file = dir.path().join("berth.yaml");
        std::fs::write(&file, berth_stack(p.name(), &img.app_v1, None)).unwrap();
        let args = [
            "apply",
            "--file",
            file.to_str().unwrap(),
            "--state-dir",
            state.path().to_str().unwrap(),
            // Defaults, but for the drain pause of a replaced replica: neither contestant
            // has one, and the cold converge replaces nothing.
            "--drain",
            "0s",
        ];
        let cpu0 = children_cpu();
        b_cold.push(time(|| {
            berth(&args, "warn");
        }));
        let cpu1 = children_cpu();
        std::fs::write(&file, berth_stack(p.name(), &img.app_v1, Some(&img.app_v2))).unwrap();
        let since = std::time::SystemTime::now();
        let mut log = String::new();
        b_bump.push(time(|| log = berth(&args, "info")));
        // The new replica serves once it passed its gate and took the replica's name.
        b_serves.push(event_after(&log, "replaced", since).expect("a replaced event"));
        let cpu2 = children_cpu();
        // berth's own CPU per replica: the cold converge creates 20, the bump replaces 1
        // (and plans 20).
        cpu_create.push((cpu1 - cpu0) / SERVICES as f64 * 1000.0);
        cpu_bump.push((cpu2 - cpu1) * 1000.0);
        drop(p);

        // docker-compose
        let p = Project::new("benchc");
        let cdir = tempfile::tempdir().unwrap();
        let cfile = cdir.path().join("docker-compose.yml");
        std::fs::write(&cfile, compose_file(&img.app_v1, None)).unwrap();
        let compose = |f: &std::path::Path| {
            let out = Command::new("docker-compose")
                .args(["-p", p.name(), "-f", f.to_str().unwrap(), "up", "-d"])
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
        };
        c_cold.push(time(|| {
            compose(&cfile);
            wait_all_healthy(&p, SERVICES);
        }));
        std::fs::write(&cfile, compose_file(&img.app_v1, Some(&img.app_v2))).unwrap();
        c_bump.push(time(|| {
            compose(&cfile);
            wait_all_healthy(&p, SERVICES);
        }));
        let _ = Command::new("docker-compose")
            .args([
                "-p",
                p.name(),
                "-f",
                cfile.to_str().unwrap(),
                "down",
                "-t",
                "1",
            ])
            .output();
        drop(p);

        // the raw engine: parallel `docker run`, then wait
        let p = Project::new("benchr");
        docker(["network", "create", &p.child("net")]);
        r_cold.push(time(|| {
            let children: Vec<_> = (0..SERVICES)
                .map(|i| {
                    Command::new("docker")
                        .args([
                            "run",
                            "-d",
                            "--name",
                            &p.child(&format!("s{i}")),
                            "--network",
                            &p.child("net"),
                            "--network-alias",
                            &format!("s{i}"),
                            &img.app_v1,
                        ])
                        .output()
                })
                .collect();
            for c in children {
                assert!(c.unwrap().status.success());
            }
            wait_all_healthy(&p, SERVICES);
        }));
        drop(p);
    }
    let raw = Series(r_cold);
    println!("cold converge, {SERVICES} services x 1 replica, until all healthy ({rounds} rounds)");
    println!("{}", raw.line("raw docker run (parallel)", None));
    println!("{}", Series(b_cold).line("berth apply", Some(raw.median())));
    println!(
        "{}",
        Series(c_cold).line("docker-compose up -d", Some(raw.median()))
    );
    let cb = Series(c_bump);
    println!("one-service image bump, until the new replica is healthy and the old gone");
    println!("{}", cb.line("docker-compose up -d", None));
    println!("{}", Series(b_bump).line("berth apply", Some(cb.median())));
    println!("one-service image bump, until the new replica serves (compose: the same as above)");
    println!(
        "{}",
        Series(b_serves).line("berth apply", Some(cb.median()))
    );
    println!("berth's own CPU time (user + system), in milliseconds");
    println!(
        "{}",
        Series(cpu_create).line_in("per replica, cold converge", None, "ms")
    );
    println!(
        "{}",
        Series(cpu_bump).line_in("whole apply, one replaced", None, "ms")
    );
}
