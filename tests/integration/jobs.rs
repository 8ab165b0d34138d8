//! Compose jobs on the real engine: a job on its own image runs with its own container
//! (image, environment, host env file, volume) once per image digest before the service
//! waiting for it moves; a failing job holds that service back, its output quoted with
//! the values of its env file masked; a kill -9 of berth during a run never doubles it.

use crate::migrate::runs;
use std::time::Duration;

use crate::support::{docker_stdout, images, inspect, wait_until, Project};
use crate::Stack;

fn compose(project: &str, api: &str, job: &str, exit: u8) -> String {
    format!(
        "\
name: {project}
services:
  api:
    image: {api}
    expose: [8000]
    stop_grace_period: 2s
    healthcheck:
      test: [\"CMD\", \"wget\", \"-q\", \"-O-\", \"http://127.0.0.1:8000/health\"]
      interval: 1s
    depends_on:
      init:
        condition: service_completed_successfully
  init:
    image: {job}
    command: [\"sh\", \"-c\", \"cat /version >> /data/runs; echo $$GREETING $$FROM_HOST | tee -a /data/runs; exit {exit}\"]
    environment:
      GREETING: hello
    env_file: job.env
    volumes: [\"data:/data\"]
    restart: on-failure
volumes:
  data: {{}}
"
    )
}

#[test]
fn a_job_on_its_own_image_runs_once_per_image_with_its_own_container() {
    let p = Project::new("job");
    let img = images();
    let s = Stack::new();
    std::fs::write(
        s.env.path().join("job.env"),
        "FROM_HOST=job-only-secret-4f2a\n",
    )
    .unwrap();
    s.file(
        "compose.yaml",
        &compose(p.name(), &img.app_v1, &img.tool_v1, 0),
    );
    let r = s.apply();
    assert_eq!(r.code, 0, "{r:?}");
    assert!(
        r.stdout.contains("✓ migration init: succeeded in "),
        "{}",
        r.stdout
    );
    assert_eq!(runs(&p), ["tool:v1", "hello job-only-secret-4f2a"]);
    assert!(inspect(&format!("{}-api-1", p.name())).is_some());

    // The service moves, the job's image does not: nothing runs.
    s.file(
        "compose.yaml",
        &compose(p.name(), &img.app_v2, &img.tool_v1, 0),
    );
    let r = s.apply();
    assert_eq!(r.code, 0, "{r:?}");
    assert!(!r.stdout.contains("migration"), "{}", r.stdout);
    assert_eq!(runs(&p), ["tool:v1", "hello job-only-secret-4f2a"]);

    // A new job image runs once more before the service moves.
    s.file(
        "compose.yaml",
        &compose(p.name(), &img.app_v1, &img.tool_v2, 0),
    );
    assert_eq!(s.apply().code, 0);
    assert_eq!(
        runs(&p),
        [
            "tool:v1",
            "hello job-only-secret-4f2a",
            "tool:v2",
            "hello job-only-secret-4f2a"
        ]
    );
    let r = s.apply();
    assert_eq!(r.code, 0, "{r:?}");
    assert!(!r.stdout.contains("migration"), "{}", r.stdout);
}

#[test]
fn a_failing_job_holds_back_the_service_waiting_for_it() {
    let p = Project::new("jobfail");
    let img = images();
    let s = Stack::new();
    std::fs::write(
        s.env.path().join("job.env"),
        "FROM_HOST=job-only-secret-4f2a\n",
    )
    .unwrap();
    s.file(
        "compose.yaml",
        &compose(p.name(), &img.app_v1, &img.tool_v1, 3),
    );
    let r = s.apply();
    assert_ne!(r.code, 0, "{r:?}");
    assert!(inspect(&format!("{}-api-1", p.name())).is_none());
    // Its output is quoted with the value of its own env file masked.
    let out = format!("{}{}", r.stdout, r.stderr);
    assert!(out.contains("hello ***"), "{out}");
    assert!(!out.contains("job-only-secret"), "{out}");
    assert!(!runs(&p).is_empty(), "the job ran");
    // Fixed, the job runs again and the service starts.
    s.file(
        "compose.yaml",
        &compose(p.name(), &img.app_v1, &img.tool_v1, 0),
    );
    let r = s.apply();
    assert_eq!(r.code, 0, "{r:?}");
    assert!(inspect(&format!("{}-api-1", p.name())).is_some());
}

/// berth killed while a job runs: the run goes on, the next apply records its result
/// from the container and never starts it again.
#[test]
fn kill_9_while_a_job_runs_never_runs_it_twice() {
    let p = Project::new("jobkill");
    let img = images();
    let s = Stack::new();
    std::fs::write(s.env.path().join("job.env"), "FROM_HOST=x\n").unwrap();
    let slow = compose(p.name(), &img.app_v1, &img.tool_v1, 0).replace(
        "[\"sh\", \"-c\", \"cat /version",
        "[\"sh\", \"-c\", \"sleep 2; cat /version",
    );
    assert!(slow.contains("sleep 2"));
    s.file("compose.yaml", &slow);
    let args = s.apply_args();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut child = crate::spawn_berth(&args);
    let job_container = || {
        docker_stdout([
            "ps",
            "-aq",
            "--filter",
            &format!("label=berth.project={}", p.name()),
            "--filter",
            "label=berth.role=migration",
        ])
    };
    assert!(wait_until(
        Duration::from_secs(30),
        Duration::from_millis(50),
        || !job_container().is_empty()
    ));
    child.kill().unwrap();
    child.wait().unwrap();
    let r = s.apply();
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(runs(&p), ["tool:v1", "hello x"]);
    assert!(inspect(&format!("{}-api-1", p.name())).is_some());
    assert!(
        job_container().is_empty(),
        "the run's container is removed once recorded"
    );
    let r = s.apply();
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(runs(&p).len(), 2);
}
