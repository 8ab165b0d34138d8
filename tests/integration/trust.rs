//! The trust boundary against a hostile pusher, on the real engine: each test is a
//! finding of SECURITY.md that once held only on paper.

use crate::support::{docker_stdout, images, inspect, Project};
use crate::Stack;

fn stack(project: &str, env_file: &str) -> String {
    format!(
        "project: {project}
services:
  api:
    image: {}
    env_file: {env_file}
    update: {{ monitor: 0s }}
  web:
    image: {}
    update: {{ monitor: 0s }}
",
        images().app_v1,
        images().app_v1
    )
}

fn running(p: &Project, service: &str) -> usize {
    docker_stdout([
        "ps",
        "--filter",
        &format!("label=berth.project={}", p.name()),
        "--filter",
        &format!("label=berth.service={service}"),
        "-q",
    ])
    .lines()
    .count()
}

#[test]
fn env_file_values_are_literal_never_expanded_from_the_agent() {
    let p = Project::new("envlit");
    let s = Stack::new();
    let env = s.env.path().join("api.env");
    std::fs::write(
        &env,
        "PASSWORD=pa$word\nFROM_AGENT=${PGPASSWORD}\nHOME_OF=$HOME\nQUOTED=\"a b\"\n",
    )
    .unwrap();
    s.write(&stack(p.name(), &env.display().to_string()));
    let r = std::process::Command::new(env!("CARGO_BIN_EXE_berth"))
        .args(s.apply_args())
        .env("PGPASSWORD", "agent-secret-9d1c")
        .output()
        .unwrap();
    assert!(r.status.success(), "{r:?}");
    let c = inspect(&format!("{}-api-1", p.name())).unwrap();
    let env: Vec<&str> = c["Config"]["Env"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|v| v.as_str())
        .collect();
    for literal in [
        "PASSWORD=pa$word",
        "FROM_AGENT=${PGPASSWORD}",
        "HOME_OF=$HOME",
        "QUOTED=\"a b\"",
    ] {
        assert!(env.contains(&literal), "{literal} in {env:?}");
    }
    assert!(!format!("{env:?}").contains("agent-secret-9d1c"));
}

#[test]
fn env_files_come_only_from_the_env_dir() {
    let p = Project::new("envdir");
    let s = Stack::new();
    let host = tempfile::tempdir().unwrap();
    let dir = s.env.path();
    // The agent's own settings, beside the env directory.
    let settings = host.path().join("agent.env");
    std::fs::write(&settings, "BERTH_GIT_TOKEN=ghp_agent_token_51f0\n").unwrap();
    std::os::unix::fs::symlink(&settings, dir.join("link.env")).unwrap();
    let fifo = dir.join("fifo.env");
    assert!(std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap()
        .success());
    let outside = |path: &std::path::Path| {
        format!(
            "env_file {} is not inside the env directory {}; env files are read only from there (--env-dir)",
            path.display(),
            dir.display()
        )
    };
    let cases = [
        (settings.clone(), outside(&settings)),
        (
            host.path().join("absent.env"),
            outside(&host.path().join("absent.env")),
        ),
        (dir.join("link.env"), outside(&dir.join("link.env"))),
        (dir.join("../agent.env"), outside(&dir.join("../agent.env"))),
        (
            fifo.clone(),
            format!("env_file {} is not a regular file", fifo.display()),
        ),
        (
            "/dev/zero".into(),
            outside(std::path::Path::new("/dev/zero")),
        ),
    ];
    for (path, message) in cases {
        s.write(&stack(p.name(), &path.display().to_string()));
        let r = s.apply();
        assert_eq!(r.code, 1, "{r:?}");
        let line = r
            .stdout
            .lines()
            .find(|l| l.contains(" api "))
            .unwrap_or_else(|| panic!("{r:?}"));
        assert!(line.contains(&message), "{line}\nwanted: {message}");
        assert!(
            !r.stdout.contains("ghp_agent_token_51f0")
                && !r.stderr.contains("ghp_agent_token_51f0")
        );
        // The refused service starts nothing; the others converge.
        assert_eq!(running(&p, "api"), 0);
        assert_eq!(running(&p, "web"), 1);
    }
}
