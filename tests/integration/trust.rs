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

fn replicas(project: &str, n: u32) -> String {
    format!(
        "project: {project}
services:
  api:
    image: {}
    replicas: {n}
    update: {{ monitor: 0s }}
",
        images().app_v1
    )
}

#[test]
fn concurrent_applies_on_one_state_dir_take_turns_and_end_exact() {
    let p = Project::new("twoapply");
    let s = Stack::new();
    s.write(&replicas(p.name(), 3));
    let spawn = || {
        std::process::Command::new(env!("CARGO_BIN_EXE_berth"))
            .args(s.apply_args())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    };
    let (a, b) = (spawn(), spawn());
    let (a, b) = (a.wait_with_output().unwrap(), b.wait_with_output().unwrap());
    assert!(a.status.success(), "{a:?}");
    assert!(b.status.success(), "{b:?}");
    let waited = [&a, &b]
        .iter()
        .filter(|o| String::from_utf8_lossy(&o.stderr).contains("waiting for berth apply (pid "))
        .count();
    assert_eq!(waited, 1, "{a:?}\n{b:?}");
    let mut names: Vec<String> = docker_stdout([
        "ps",
        "-a",
        "--filter",
        &format!("label=berth.project={}", p.name()),
        "--format",
        "{{.Names}} {{.State}}",
    ])
    .lines()
    .map(str::to_string)
    .collect();
    names.sort();
    assert_eq!(
        names,
        (1..=3)
            .map(|i| format!("{}-api-{i} running", p.name()))
            .collect::<Vec<_>>()
    );
}

#[test]
fn an_apply_beside_a_running_agent_waits_then_says_who_holds_the_state_dir() {
    let p = Project::new("applyagent");
    let repo = crate::agent::Repo::new();
    repo.commit(&replicas(p.name(), 1), "first");
    let s = Stack::new();
    s.write(&replicas(p.name(), 1));
    let agent = repo.agent(&s.state_path(), &[]);
    assert!(
        crate::support::wait_until(
            std::time::Duration::from_secs(30),
            std::time::Duration::from_millis(100),
            || running(&p, "api") == 1
        ),
        "{}",
        agent.log()
    );
    let mut args = s.apply_args();
    args.extend(["--lock-timeout".into(), "1s".into()]);
    let r = crate::berth(args);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(
        r.stderr.contains("still holds")
            && r.stderr.contains("berth agent (pid ")
            && r.stderr.contains("(--lock-timeout)"),
        "{r:?}"
    );
}

#[test]
fn an_empty_webhook_secret_is_refused_at_start() {
    let state = tempfile::tempdir().unwrap();
    let secret = state.path().join("secret");
    std::fs::write(&secret, " \n").unwrap();
    let repo = crate::agent::Repo::new();
    let r = crate::berth([
        "agent",
        "--repo",
        &repo.path().display().to_string(),
        "--state-dir",
        &state.path().display().to_string(),
        "--webhook-secret-file",
        &secret.display().to_string(),
    ]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(
        r.stderr.contains(&format!(
            "--webhook-secret-file {} is empty: anyone could sign a webhook with an empty secret",
            secret.display()
        )),
        "{r:?}"
    );
}

#[test]
fn a_rewound_signed_head_is_refused_and_a_revert_goes_through() {
    use crate::agent::{api_images, converges_to, expect, keygen, stack};
    let p = Project::new("rewind");
    let img = images();
    let keys = tempfile::tempdir().unwrap();
    let (alice, alice_pub) = keygen(keys.path(), "alice");
    let signers = keys.path().join("allowed_signers");
    std::fs::write(
        &signers,
        format!("alice@example.com namespaces=\"git\" {alice_pub}\n"),
    )
    .unwrap();
    let repo = crate::agent::Repo::new();
    let old = repo.commit_signed(&stack(p.name(), &img.app_v1, 1), "v1", &alice);
    let state = tempfile::tempdir().unwrap();
    let verify = ["--verify-signatures", &signers.display().to_string()];
    let agent = repo.agent(state.path(), &verify);
    assert!(converges_to(&p, &img.app_v1, 1), "{}", agent.log());
    repo.commit_signed(&stack(p.name(), &img.app_v2, 1), "v2", &alice);
    assert!(converges_to(&p, &img.app_v2, 1), "{}", agent.log());

    // A force-push back to the older signed commit: a downgrade.
    repo.git(&["reset", "-q", "--hard", &old]);
    let refused = format!("commit {} refused: it does not descend from", &old[..12]);
    assert!(
        crate::support::wait_until(
            std::time::Duration::from_secs(20),
            std::time::Duration::from_millis(100),
            || error_of(&agent).starts_with(&refused)
        ),
        "{}\n{}",
        error_of(&agent),
        agent.log()
    );
    assert_eq!(api_images(&p), expect(&p, &img.app_v2, 1));
    // Also after a restart of the agent.
    drop(agent);
    let agent = repo.agent(state.path(), &verify);
    assert!(
        crate::support::wait_until(
            std::time::Duration::from_secs(20),
            std::time::Duration::from_millis(100),
            || error_of(&agent).starts_with(&refused)
        ),
        "{}",
        agent.log()
    );
    assert_eq!(api_images(&p), expect(&p, &img.app_v2, 1));

    // Going back by a new commit on top works as before.
    let v2 = repo.git(&["rev-parse", "HEAD@{1}"]);
    repo.git(&["reset", "-q", "--hard", &v2]);
    repo.commit_signed(&stack(p.name(), &img.app_v1, 1), "revert to v1", &alice);
    assert!(converges_to(&p, &img.app_v1, 1), "{}", agent.log());
}

fn error_of(agent: &crate::agent::Agent) -> String {
    agent.status()["last_error"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

#[test]
fn a_rollback_that_cannot_restore_is_reported_as_failed_not_rolled_back() {
    let p = Project::new("badrollback");
    let img = images();
    let s = Stack::new();
    let stack = |image: &str| {
        format!(
            "project: {}
services:
  api:
    image: {image}
    replicas: 2
    stop_grace: 2s
    update: {{ monitor: 3s, deadline: 30s }}
",
            p.name()
        )
    };
    s.write(&stack(&img.app_v1));
    assert_eq!(s.apply().code, 0);
    s.write(&stack(&img.app_v2));
    let mut args = s.apply_args();
    args.extend(["--output".into(), "json".into()]);
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_berth"))
        .args(&args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Slot 1 has moved (its previous replica waits, stopped, for a rollback) and slot
    // 2's new replica is at its gate: the previous replica goes away by hand, and the
    // new one of slot 2 dies, so the rollout fails and cannot be rolled back.
    let (prev, next) = (
        format!("{}-api-1-prev", p.name()),
        format!("{}-api-2-next", p.name()),
    );
    assert!(crate::support::wait_until(
        std::time::Duration::from_secs(60),
        std::time::Duration::from_millis(50),
        || crate::support::container_exists(&prev) && crate::support::container_exists(&next)
    ));
    crate::support::docker(["rm", "-f", &prev]);
    crate::support::docker(["kill", &next]);
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let api = report["services"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["service"] == "api")
        .unwrap()
        .clone();
    assert_eq!(api["outcome"], "failed", "{api}");
    assert_eq!(api["rolled_back"], false, "{api}");
    let error = api["error"].as_str().unwrap();
    assert!(
        error.contains("; rolling back failed: ")
            && error.contains(&format!("{}-api-1: ", p.name())),
        "{error}"
    );
}

#[test]
fn objects_berth_did_not_create_are_refused_unless_declared_external() {
    use crate::support::docker;
    let p = Project::new("owner");
    let img = images();
    let s = Stack::new();
    // Compose names its objects `<project>_<name>` too: this one holds somebody's data.
    let theirs = format!("{}_pgdata", p.name());
    docker(["volume", "create", &theirs]);
    s.write(&format!(
        "project: {}
volumes:
  pgdata: {{}}
services:
  api:
    image: {}
    volumes: [\"pgdata:/data\"]
    update: {{ monitor: 0s }}
",
        p.name(),
        img.app_v1
    ));
    let r = s.apply();
    assert_eq!(r.code, 1, "{r:?}");
    assert!(
        r.stderr.contains(&format!(
            "volume `{theirs}` exists but berth did not create it (it has no berth.project={} label); declare `volumes.pgdata: {{ external: true }}`",
            p.name()
        )),
        "{r:?}"
    );
    assert_eq!(running(&p, "api"), 0);

    // Declared external under their own names, a volume and a network made by hand
    // are used as they are, and outlive the service.
    let volume = p.create_volume("shared");
    let network = p.create_network("edge");
    let external = |with_api: bool| {
        let api = format!(
            "  api:
    image: {}
    networks: [{network}]
    volumes: [\"{volume}:/data\"]
    update: {{ monitor: 0s }}
",
            img.app_v1
        );
        format!(
            "project: {}
networks:
  {network}: {{ external: true }}
volumes:
  {volume}: {{ external: true }}
services:
{}  web:
    image: {}
    networks: [{network}]
    update: {{ monitor: 0s }}
",
            p.name(),
            if with_api { api.as_str() } else { "" },
            img.app_v1
        )
    };
    s.write(&external(true));
    let r = s.apply();
    assert_eq!(r.code, 0, "{r:?}");
    let api = inspect(&format!("{}-api-1", p.name())).unwrap();
    assert_eq!(api["Mounts"][0]["Name"], volume.as_str(), "{api}");
    assert!(
        api["NetworkSettings"]["Networks"][&network].is_object(),
        "{api}"
    );
    s.write(&external(false));
    assert_eq!(s.apply().code, 0);
    assert_eq!(running(&p, "api"), 0);
    for (kind, name) in [("volume", &volume), ("network", &network)] {
        let labels = docker_stdout([kind, "inspect", "-f", "{{json .Labels}}", name]);
        assert!(!labels.contains("berth.project"), "{kind} {name}: {labels}");
    }

    // An external object that does not exist is not made.
    s.write(&external(true).replace(&volume, &p.child("absent")));
    let r = s.apply();
    assert_eq!(r.code, 1, "{r:?}");
    assert!(
        r.stderr.contains(&format!(
            "external volume `{}` does not exist",
            p.child("absent")
        )),
        "{r:?}"
    );
}

#[test]
fn an_agent_pinned_to_its_project_refuses_a_commit_naming_another() {
    use crate::agent::{converges_to, stack};
    let p = Project::new("pinned");
    let other = Project::new("other");
    let img = images();
    let repo = crate::agent::Repo::new();
    repo.commit(&stack(p.name(), &img.app_v1, 1), "first");
    let state = tempfile::tempdir().unwrap();
    let agent = repo.agent(state.path(), &["--project", p.name()]);
    assert!(converges_to(&p, &img.app_v1, 1), "{}", agent.log());
    let sha = repo.commit(
        &stack(other.name(), &img.app_v1, 1),
        "take over another project",
    );
    let refused = format!(
        "commit {} names project `{}`; this agent manages only `{}` (--project)",
        &sha[..12],
        other.name(),
        p.name()
    );
    assert!(
        crate::support::wait_until(
            std::time::Duration::from_secs(20),
            std::time::Duration::from_millis(100),
            || error_of(&agent) == refused
        ),
        "{}\n{}",
        error_of(&agent),
        agent.log()
    );
    assert_eq!(running(&other, "api"), 0);
    assert_eq!(running(&p, "api"), 1);
}

fn mounts_of(p: &Project) -> Vec<String> {
    docker_stdout([
        "ps",
        "-a",
        "--filter",
        &format!("label=berth.project={}", p.name()),
        "--format",
        "{{.Names}} {{.Mounts}}",
    ])
    .lines()
    .map(str::to_string)
    .collect()
}

fn planted(project: &str, api_image: &str, uploads: &std::path::Path, extra: &str) -> String {
    format!(
        "project: {project}
services:
  api:
    image: {api_image}
    update: {{ monitor: 0s }}
{extra}  planter:
    image: {}
    command: [\"sh\", \"-c\", \"ln -s / /up/r; ln -s /etc /up/e; trap 'exit 0' TERM; sleep 3600 & wait\"]
    volumes: [\"{}:/up\"]
    update: {{ monitor: 0s }}
",
        images().tool_v1,
        uploads.display()
    )
}

#[test]
fn a_symlink_planted_through_a_writable_mount_is_refused_not_followed() {
    use crate::agent::{api_images, converges_to, expect};
    let p = Project::new("plant");
    let img = images();
    let host = tempfile::tempdir().unwrap();
    let uploads = host.path().join("uploads");
    std::fs::create_dir(&uploads).unwrap();
    let repo = crate::agent::Repo::new();
    repo.commit(&planted(p.name(), &img.app_v1, &uploads, ""), "uploads");
    let state = tempfile::tempdir().unwrap();
    let allow = format!("{}:rw", uploads.display());
    let agent = repo.agent(state.path(), &["--allow-host-path", &allow]);
    assert!(converges_to(&p, &img.app_v1, 1), "{}", agent.log());
    // The container plants links to the host's root and /etc in the writable prefix.
    assert!(
        crate::support::wait_until(
            std::time::Duration::from_secs(20),
            std::time::Duration::from_millis(100),
            || uploads.join("r").is_symlink() && uploads.join("e").is_symlink()
        ),
        "{}",
        agent.log()
    );
    for link in ["r", "e/shadow"] {
        // The next commit mounts them, spelled inside the allowance.
        let source = uploads.join(link);
        let volume = format!("    volumes: [\"{}:/host:ro\"]\n", source.display());
        let bad = repo.commit(
            &planted(p.name(), &img.app_v2, &uploads, &volume),
            &format!("mount {link}"),
        );
        assert!(
            crate::support::wait_until(
                std::time::Duration::from_secs(20),
                std::time::Duration::from_millis(100),
                || error_of(&agent).starts_with(&format!("commit {} is invalid", &bad[..12]))
            ),
            "{}\n{}",
            error_of(&agent),
            agent.log()
        );
        let error = error_of(&agent);
        let through = uploads.join(link.split('/').next().unwrap());
        assert!(
            error.contains(&format!(
                "services.api.volumes[0]: host path `{}` passes through the symlink `{}`",
                source.display(),
                through.display()
            )),
            "{error}"
        );
        // The last good commit keeps running; nothing mounts the host's root or /etc.
        assert_eq!(api_images(&p), expect(&p, &img.app_v1, 1));
        let mounts = mounts_of(&p);
        assert!(mounts.iter().all(|m| !m.contains("/host")), "{mounts:?}");
    }
}

#[test]
fn socket_directories_are_refused_even_under_an_allowed_prefix() {
    let p = Project::new("sockdir");
    let s = Stack::new();
    let with_volume = |volume: &str| {
        format!(
            "project: {}
services:
  api:
    image: {}
    volumes: [\"{volume}\"]
    update: {{ monitor: 0s }}
",
            p.name(),
            images().tool_v1
        )
    };
    let cases = [
        ("/var/run:/r:ro", "/var", "host path `/var/run` holds the runtime socket"),
        ("/run:/r:ro", "/", "host path `/run` holds the runtime socket"),
        ("/var:/r:ro", "/var", "host path `/var` holds the runtime socket"),
        (
            "/var/run/docker.sock:/var/run/docker.sock",
            "/var/run",
            "`/var/run/docker.sock` is a runtime socket that hands the host to the container; the host's operator can allow it by naming it: `--allow-host-path /var/run/docker.sock`",
        ),
        (
            "/srv/berth-test-data:/data",
            "/srv",
            "host path `/srv/berth-test-data` is allowed read-only on this host (`--allow-host-path /srv`); add `:ro` to the mount, or the host's operator can allow writes with `--allow-host-path /srv:rw`",
        ),
    ];
    for (volume, allowed, message) in cases {
        s.write(&with_volume(volume));
        let mut args = s.apply_args();
        args.extend(["--allow-host-path".to_string(), allowed.to_string()]);
        let r = crate::berth(args);
        assert_ne!(r.code, 0, "{volume}: {r:?}");
        assert!(
            r.stdout.contains(message) || r.stderr.contains(message),
            "{volume}: {r:?}\nwanted: {message}"
        );
        assert!(mounts_of(&p).is_empty(), "{volume}: {:?}", mounts_of(&p));
    }
    // Named exactly, the socket is mounted: by its real path.
    s.write(&with_volume("/var/run/docker.sock:/var/run/docker.sock:ro"));
    let mut args = s.apply_args();
    args.extend(["--allow-host-path", "/var/run/docker.sock"].map(String::from));
    let r = crate::berth(args);
    assert_eq!(r.code, 0, "{r:?}");
    let c = inspect(&format!("{}-api-1", p.name())).unwrap();
    let real = std::fs::canonicalize("/var/run/docker.sock").unwrap();
    assert_eq!(
        c["Mounts"][0]["Source"].as_str(),
        Some(real.to_str().unwrap()),
        "{c}"
    );
}

#[test]
fn a_multi_line_secret_quoted_by_a_failing_replica_is_masked_line_by_line() {
    let p = Project::new("pemkey");
    let s = Stack::new();
    let lines = [
        "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7VJTUt9Us8cKj",
        "MzEfYyjiWA4R4/M2bS1GB4t7NXp98C3SC6dVMvDuictGeurT8jNbvJZHtCSuYEvu",
    ];
    let pem = format!(
        "-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n",
        lines.join("\n")
    );
    std::fs::write(
        s.env.path().join("api.env"),
        "SESSION_SECRET=one-line-secret-7f3e\n",
    )
    .unwrap();
    let block: String = pem.lines().map(|l| format!("        {l}\n")).collect();
    s.write(&format!(
        "project: {}
services:
  api:
    image: {}
    env_file: {}
    env:
      TLS_KEY: |
{block}    command: [\"sh\", \"-c\", \"echo \\\"$TLS_KEY\\\"; echo $SESSION_SECRET; exit 1\"]
    update: {{ monitor: 3s }}
",
        p.name(),
        images().tool_v1,
        s.env.path().join("api.env").display()
    ));
    let r = s.apply();
    assert_eq!(r.code, 1, "{r:?}");
    // The replica's last five lines are quoted, masked line by line: the key's last
    // three, the empty line `echo` adds, the env file's value.
    assert!(
        r.stdout.contains("last output: *** | *** | *** |  | ***"),
        "{r:?}"
    );
    let history = crate::berth([
        "history",
        "--state-dir",
        &s.state_path().display().to_string(),
    ]);
    for shown in [&r.stdout, &r.stderr, &history.stdout, &history.stderr] {
        for secret in lines.iter().copied().chain(["one-line-secret-7f3e"]) {
            assert!(!shown.contains(secret), "{secret} in {shown}");
        }
    }
}

#[test]
fn an_agent_keeps_to_the_project_its_state_dir_recorded_unless_told_otherwise() {
    use crate::agent::{converges_to, stack};
    let p = Project::new("recorded");
    let other = Project::new("elsewhere");
    let img = images();
    let repo = crate::agent::Repo::new();
    repo.commit(&stack(p.name(), &img.app_v1, 1), "first");
    let state = tempfile::tempdir().unwrap();
    let agent = repo.agent(state.path(), &[]);
    assert!(converges_to(&p, &img.app_v1, 1), "{}", agent.log());
    let sha = repo.commit(
        &stack(other.name(), &img.app_v1, 1),
        "take over another project",
    );
    let refused = format!(
        "commit {} names project `{}`; this state dir belongs to `{}` (recorded in {} at its first commit); to move it to `{}`, start the agent with `--project {}`",
        &sha[..12],
        other.name(),
        p.name(),
        state.path().join("project").display(),
        other.name(),
        other.name()
    );
    assert!(
        crate::support::wait_until(
            std::time::Duration::from_secs(20),
            std::time::Duration::from_millis(100),
            || error_of(&agent) == refused
        ),
        "{}\n{}",
        error_of(&agent),
        agent.log()
    );
    assert_eq!(running(&other, "api"), 0);
    assert_eq!(running(&p, "api"), 1);
    // Also after a restart; the operator moves it with --project.
    drop(agent);
    let agent = repo.agent(state.path(), &[]);
    assert!(
        crate::support::wait_until(
            std::time::Duration::from_secs(20),
            std::time::Duration::from_millis(100),
            || error_of(&agent) == refused
        ),
        "{}",
        agent.log()
    );
    drop(agent);
    let agent = repo.agent(state.path(), &["--project", other.name()]);
    assert!(
        crate::support::wait_until(
            std::time::Duration::from_secs(30),
            std::time::Duration::from_millis(100),
            || running(&other, "api") == 1
        ),
        "{}",
        agent.log()
    );
    assert_eq!(
        std::fs::read_to_string(state.path().join("project")).unwrap(),
        other.name()
    );
}

fn invalid_commits(agent: &crate::agent::Agent) -> u64 {
    let (_, body) = crate::agent::http(agent.port, "GET", "/metrics", &[], b"").unwrap();
    body.lines()
        .find(|l| l.starts_with("berth_invalid_commits_total"))
        .and_then(|l| l.split_whitespace().last())
        .map(|v| v.parse().unwrap())
        .unwrap_or(0)
}

#[test]
fn hostile_yaml_commits_are_refused_and_the_agent_keeps_the_last_good() {
    use crate::agent::{api_images, converges_to, expect, stack};
    let p = Project::new("hostile");
    let img = images();
    let repo = crate::agent::Repo::new();
    repo.commit(&stack(p.name(), &img.app_v1, 1), "first");
    let state = tempfile::tempdir().unwrap();
    let agent = repo.agent(state.path(), &[]);
    assert!(converges_to(&p, &img.app_v1, 1), "{}", agent.log());
    let good = stack(p.name(), &img.app_v2, 1);
    let mut bomb = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
    for i in 1..10 {
        bomb += &format!(
            "a{i}: &a{i} [{}]\n",
            vec![format!("*a{}", i - 1); 10].join(", ")
        );
    }
    let unknown_keys: Vec<String> = (0..20_000).map(|i| format!("k{i}: {i}")).collect();
    let hostile = [
        (
            "deep sequence",
            format!("{good}x: {}1\n", "- ".repeat(30_000)),
        ),
        (
            "deep flow",
            format!("{good}x: {}{}\n", "[".repeat(30_000), "]".repeat(30_000)),
        ),
        ("alias bomb", format!("{good}{bomb}")),
        (
            "one-line mapping",
            format!("{good}x: {{{}}}\n", unknown_keys.join(", ")),
        ),
        (
            "huge duration",
            good.replace("monitor: 1s", "monitor: 99999999999999999999h"),
        ),
    ];
    for (i, (what, yaml)) in hostile.iter().enumerate() {
        let sha = repo.commit(yaml, what);
        assert!(
            crate::support::wait_until(
                std::time::Duration::from_secs(30),
                std::time::Duration::from_millis(100),
                || error_of(&agent).starts_with(&format!("commit {} is invalid", &sha[..12]))
            ),
            "{what}: {}\n{}",
            error_of(&agent),
            agent.log()
        );
        assert_eq!(invalid_commits(&agent), i as u64 + 1, "{what}");
        assert_eq!(api_images(&p), expect(&p, &img.app_v1, 1), "{what}");
    }
    // Still the same process, and it applies the next good commit.
    repo.commit(&good, "v2");
    assert!(converges_to(&p, &img.app_v2, 1), "{}", agent.log());
}
