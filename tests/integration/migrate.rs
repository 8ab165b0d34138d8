//! Migrations exactly once per image, the ledger, and `berth history`.

use std::thread;
use std::time::Duration;

use crate::support::{docker_stdout, images, Project};
use crate::{berth, spawn_berth, Stack};

/// api and worker on one image, a migration from api that appends the image's version
/// to a file in a named volume after `sleep` seconds, exiting with `code`.
fn stack(project: &str, image: &str, sleep: u32, code: u32, timeout: &str) -> String {
    stack_with_web(project, image, image, sleep, code, timeout)
}

fn stack_with_web(
    project: &str,
    image: &str,
    web: &str,
    sleep: u32,
    code: u32,
    timeout: &str,
) -> String {
    format!(
        "project: {project}
volumes:
  data: {{}}
services:
  api:
    image: &app {image}
    replicas: 2
    volumes: [\"data:/data\"]
    stop_grace: 2s
    update: {{ monitor: 0s, deadline: 20s }}
  worker:
    image: *app
    stop_grace: 2s
    update: {{ monitor: 0s, deadline: 20s }}
  web:
    image: {web}
    stop_grace: 2s
    update: {{ monitor: 0s, deadline: 20s }}
migrations:
  migrate:
    from: api
    command: [\"sh\", \"-c\", \"echo starting; sleep {sleep}; cat /version >> /data/runs; echo done; exit {code}\"]
    timeout: {timeout}
"
    )
}

/// The lines the migration appended, read through the volume.
pub fn runs(p: &Project) -> Vec<String> {
    let out = std::process::Command::new("docker")
        .args([
            "run",
            "--rm",
            "-v",
            &format!("{}_data:/data", p.name()),
            &images().tool_v1,
            "sh",
            "-c",
            "cat /data/runs 2>/dev/null || true",
        ])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect()
}

fn images_of(p: &Project, service: &str) -> Vec<String> {
    let out = docker_stdout([
        "ps",
        "-a",
        "--filter",
        &format!("label=berth.project={}", p.name()),
        "--filter",
        &format!("label=berth.service={service}"),
        "--filter",
        "label=berth.role=replica",
        "--format",
        "{{.Names}} {{.Label \"berth.image\"}}",
    ]);
    let mut v: Vec<String> = out.lines().map(str::to_string).collect();
    v.sort();
    v
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .unwrap()
        .trim()
        .to_string()
}

fn history_json(s: &Stack) -> serde_json::Value {
    let r = berth([
        "history",
        "--state-dir",
        &s.state_path().display().to_string(),
        "--output",
        "json",
    ]);
    assert_eq!(r.code, 0, "{r:?}");
    serde_json::from_str(&r.stdout).unwrap()
}

#[test]
fn runs_once_per_image_and_never_on_reapply_or_revert() {
    let p = Project::new("once");
    let img = images();
    let s = Stack::new();
    s.write(&stack(p.name(), &img.app_v1, 0, 0, "1m"));
    let r = s.apply();
    assert_eq!(r.code, 0, "{r:?}");
    assert!(
        r.stdout.contains("✓ migration migrate: succeeded in "),
        "{}",
        r.stdout
    );
    assert_eq!(runs(&p), ["app:v1"]);

    let r = s.apply();
    assert_eq!(r.code, 0, "{r:?}");
    assert!(!r.stdout.contains("migration"), "{}", r.stdout);
    assert_eq!(runs(&p), ["app:v1"]);

    s.write(&stack(p.name(), &img.app_v2, 0, 0, "1m"));
    assert_eq!(s.apply().code, 0);
    assert_eq!(runs(&p), ["app:v1", "app:v2"]);

    // A revert to an image that was migrated runs nothing.
    s.write(&stack(p.name(), &img.app_v1, 0, 0, "1m"));
    let r = s.apply();
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(runs(&p), ["app:v1", "app:v2"]);
    assert_eq!(
        images_of(&p, "worker"),
        [format!("{}-worker-1 {}", p.name(), img.app_v1)]
    );

    let h = history_json(&s);
    let deploys = h.as_array().unwrap();
    assert_eq!(deploys.len(), 3, "{h:#}");
    assert_eq!(deploys[0]["migrations"].as_array().unwrap().len(), 0);
    assert_eq!(deploys[1]["migrations"][0]["outcome"], "succeeded");
    let api = deploys[1]["services"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["service"] == "api")
        .unwrap();
    assert_eq!(
        (
            api["from"].as_str(),
            api["to"].as_str(),
            api["outcome"].as_str()
        ),
        (
            Some(img.app_v1.as_str()),
            Some(img.app_v2.as_str()),
            Some("converged")
        )
    );

    let text = berth([
        "history",
        "--state-dir",
        &s.state_path().display().to_string(),
        "--service",
        "worker",
        "--limit",
        "1",
    ]);
    let lines: Vec<&str> = text.stdout.lines().collect();
    assert_eq!(lines.len(), 2, "{}", text.stdout);
    assert!(
        lines[0].starts_with("#3 ")
            && lines[0].ends_with(&format!(" {} on {} commit -", p.name(), hostname())),
        "{}",
        lines[0]
    );
    assert_eq!(lines[1], "  worker  v2 → v1  converged");
}

#[test]
fn a_failing_migration_blocks_its_gated_services_only() {
    let p = Project::new("migfail");
    let img = images();
    let s = Stack::new();
    s.write(&stack(p.name(), &img.app_v1, 0, 0, "1m"));
    assert_eq!(s.apply().code, 0);
    // web runs another image, so the migration does not gate it.
    s.write(&stack_with_web(
        p.name(),
        &img.app_v2,
        &img.app_v3,
        0,
        3,
        "1m",
    ));
    let r = s.apply();
    assert_eq!(r.code, 1, "{r:?}");
    assert!(
        r.stdout
            .contains("✗ migration migrate exited with code 3; last output: starting | done\n"),
        "{}",
        r.stdout
    );
    for svc in ["api", "worker"] {
        let line = r
            .stdout
            .lines()
            .find(|l| l.contains(&format!(" {svc} ")))
            .unwrap();
        assert!(
            line.contains(&format!("failed: migration migrate exited with code 3; last output: starting | done; {svc} was not changed")),
            "{line}"
        );
    }
    assert!(r.stdout.contains("✓ web "), "{}", r.stdout);
    assert_eq!(
        images_of(&p, "api"),
        [
            format!("{}-api-1 {}", p.name(), img.app_v1),
            format!("{}-api-2 {}", p.name(), img.app_v1)
        ]
    );
    let h = history_json(&s);
    assert_eq!(h[0]["migrations"][0]["outcome"], "failed");
}

#[test]
fn a_migration_over_its_timeout_is_killed_and_reported() {
    let p = Project::new("migtimeout");
    let img = images();
    let s = Stack::new();
    s.write(&stack(p.name(), &img.app_v1, 30, 0, "2s"));
    let started = std::time::Instant::now();
    let r = s.apply();
    assert_eq!(r.code, 1, "{r:?}");
    assert!(started.elapsed() < Duration::from_secs(20));
    assert!(
        r.stdout.contains("migration migrate timed out after "),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout.contains("and was killed; last output: starting"),
        "{}",
        r.stdout
    );
    assert!(runs(&p).is_empty());
    assert!(images_of(&p, "api").is_empty());
    // The container went only once the ledger held the result.
    assert_eq!(
        docker_stdout([
            "ps",
            "-aq",
            "--filter",
            &format!("name={}-migrate-", p.name())
        ]),
        ""
    );
}

#[test]
fn kill_9_during_a_slow_migration_never_runs_it_twice() {
    let p = Project::new("migkill");
    let img = images();
    let s = Stack::new();
    s.write(&stack(p.name(), &img.app_v1, 3, 0, "1m"));
    let args = s.apply_args();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    for delay_ms in [400u64, 1500, 2600] {
        let mut child = spawn_berth(&args);
        thread::sleep(Duration::from_millis(delay_ms));
        child.kill().unwrap();
        child.wait().unwrap();
        // While berth is down the run goes on; history can be read meanwhile.
        assert_eq!(
            berth([
                "history",
                "--state-dir",
                &s.state_path().display().to_string()
            ])
            .code,
            0
        );
    }
    let r = s.apply();
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(runs(&p), ["app:v1"]);
    assert_eq!(images_of(&p, "api").len(), 2);
    let r = s.apply();
    assert_eq!(r.code, 0);
    assert_eq!(runs(&p), ["app:v1"]);
}
