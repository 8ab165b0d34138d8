//! A compose file applied on the real engine: the replicas, health check and environment
//! it asks for are what Docker runs.

use crate::support::{container_health, docker_stdout, images, inspect, Project};
use crate::Stack;

#[test]
fn a_compose_file_is_applied_with_its_replicas_and_healthcheck() {
    let p = Project::new("compose");
    let img = images();
    let s = Stack::new();
    s.file(
        "compose.yaml",
        &format!(
            "\
name: {name}
x-common: &common
  restart: unless-stopped
  environment:
    - GREETING=hello
services:
  web:
    <<: *common
    image: {image}
    expose: [8000]
    healthcheck:
      test: [\"CMD\", \"wget\", \"-q\", \"-O-\", \"http://localhost:8000/health\"]
      interval: 1s
      timeout: 2s
      retries: 2
    deploy:
      replicas: 2
",
            name = p.name(),
            image = img.app_v1
        ),
    );
    let r = s.apply();
    assert_eq!(r.code, 0, "{r:?}");
    for slot in 1..=2 {
        let name = format!("{}-web-{slot}", p.name());
        assert_eq!(
            container_health(&name).as_deref(),
            Some("healthy"),
            "{name}"
        );
        let c = inspect(&name).expect("the replica exists");
        let cfg = &c["Config"];
        assert_eq!(
            cfg["Healthcheck"]["Test"],
            serde_json::json!(["CMD", "wget", "-q", "-O-", "http://localhost:8000/health"])
        );
        assert_eq!(cfg["Healthcheck"]["Interval"], 1_000_000_000u64);
        assert_eq!(cfg["Healthcheck"]["Retries"], 2);
        assert!(
            cfg["Env"]
                .as_array()
                .unwrap()
                .iter()
                .any(|e| e == "GREETING=hello"),
            "{cfg}"
        );
        assert_eq!(cfg["Labels"]["berth.project"], p.name());
    }
    assert!(inspect(&format!("{}-web-3", p.name())).is_none());
    assert!(inspect(&format!("{}_default", p.name())).is_some());
}

/// `./static:/srv/static`: a repository directory is mounted whole, read-only, from the
/// content of the commit; a changed file in it replaces the replica.
#[test]
fn a_repository_directory_is_mounted_read_only_and_a_change_in_it_replaces_the_replica() {
    let p = Project::new("repodir");
    let img = images();
    let s = Stack::new();
    s.file(
        "compose.yaml",
        &format!(
            "\
name: {name}
services:
  web:
    image: {image}
    volumes:
      - ./static:/srv/static
    deploy:
      update_config: {{ monitor: 0s }}
",
            name = p.name(),
            image = img.app_v1
        ),
    );
    s.file("static/index.html", "<h1>v1</h1>\n");
    s.file("static/css/site.css", "body {}\n");
    let r = s.apply();
    assert_eq!(r.code, 0, "{r:?}");
    let name = format!("{}-web-1", p.name());
    let cat = |path: &str| docker_stdout(["exec", &name, "cat", path]);
    assert_eq!(cat("/srv/static/index.html"), "<h1>v1</h1>");
    assert_eq!(cat("/srv/static/css/site.css"), "body {}");
    let write = write_in(&name, "/srv/static/index.html");
    assert!(
        String::from_utf8_lossy(&write.stderr).contains("Read-only file system"),
        "the mount is writable: {write:?}"
    );
    let before = inspect(&name).unwrap()["Id"].clone();

    s.file("static/index.html", "<h1>v2</h1>\n");
    let plan = s.plan();
    assert!(
        plan.stdout.contains("static"),
        "the plan names the directory: {plan:?}"
    );
    let r = s.apply();
    assert_eq!(r.code, 0, "{r:?}");
    let running = docker_stdout([
        "ps",
        "--filter",
        &format!("label=berth.project={}", p.name()),
        "--format",
        "{{.Names}}",
    ]);
    let names: Vec<&str> = running.lines().collect();
    assert_eq!(names.len(), 1, "{running}");
    let name = names[0].to_string();
    assert_ne!(inspect(&name).unwrap()["Id"], before);
    assert_eq!(
        docker_stdout(["exec", &name, "cat", "/srv/static/index.html"]),
        "<h1>v2</h1>"
    );
}

/// `env_file` as compose users write it: a relative `.env.prod` read from the host's env
/// directory, a second file whose keys win, an optional one that is missing; the
/// committed `environment` wins over them all.
#[test]
fn env_files_are_read_from_the_env_directory_in_order_and_optional_ones_may_be_missing() {
    let p = Project::new("envfiles");
    let img = images();
    let s = Stack::new();
    s.file(
        "compose.yaml",
        &format!(
            "\
name: {name}
services:
  web:
    image: {image}
    env_file:
      - .env.prod
      - ./web.env
      - path: local.env
        required: false
    environment:
      C: committed
    deploy:
      update_config: {{ monitor: 0s }}
",
            name = p.name(),
            image = img.app_v1
        ),
    );
    std::fs::write(s.env.path().join(".env.prod"), "A=from-prod\nB=from-prod\n").unwrap();
    std::fs::write(s.env.path().join("web.env"), "B=from-web\nC=from-web\n").unwrap();
    let r = s.apply();
    assert_eq!(r.code, 0, "{r:?}");
    let c = inspect(&format!("{}-web-1", p.name())).unwrap();
    let env: Vec<&str> = c["Config"]["Env"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|v| v.as_str())
        .filter(|e| e.starts_with("A=") || e.starts_with("B=") || e.starts_with("C="))
        .collect();
    assert_eq!(env, ["A=from-prod", "B=from-web", "C=committed"]);
    assert!(!r.stderr.contains("from-prod") && !r.stdout.contains("from-prod"));
}

/// A network alias answers like the service's name, on its network only, and goes with
/// the replica that takes traffic.
#[test]
fn a_network_alias_reaches_the_service_and_follows_a_rolling_update() {
    let p = Project::new("aliases");
    let img = images();
    let s = Stack::new();
    let stack = |image: &str| {
        format!(
            "\
name: {name}
networks:
  back: {{}}
services:
  db:
    image: {image}
    networks:
      default:
      back:
        aliases: [database, pg]
    deploy:
      update_config: {{ monitor: 0s }}
",
            name = p.name(),
        )
    };
    s.file("compose.yaml", &stack(&img.app_v1));
    let r = s.apply();
    assert_eq!(r.code, 0, "{r:?}");
    let back = format!("{}_back", p.name());
    let default = format!("{}_default", p.name());
    let get = |net: &str, host: &str| {
        crate::support::http_get_via_container(net, &format!("http://{host}:8000/"))
    };
    assert_eq!(get(&back, "database").as_deref(), Ok("v1\n"));
    assert_eq!(get(&back, "pg").as_deref(), Ok("v1\n"));
    assert_eq!(get(&back, "db").as_deref(), Ok("v1\n"));
    assert!(
        get(&default, "database").is_err(),
        "the alias is on `back` only"
    );

    s.file("compose.yaml", &stack(&img.app_v2));
    let r = s.apply();
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(get(&back, "database").as_deref(), Ok("v2\n"));
}

/// `./data` that is not in the repository is the project's host data: created on first
/// use under the state dir, kept across a replacement, and never followed through a
/// symlink a container planted there.
#[test]
fn host_data_outlives_its_containers_and_a_planted_symlink_is_refused() {
    let p = Project::new("hostdata");
    let img = images();
    let s = Stack::new();
    let stack = |image: &str, extra: &str| {
        format!(
            "\
name: {name}
services:
  db:
    image: {image}
    volumes:
      - ./data:/data{extra}
    deploy:
      update_config: {{ monitor: 0s }}
",
            name = p.name(),
        )
    };
    s.file("compose.yaml", &stack(&img.app_v1, ""));
    let r = s.apply();
    assert_eq!(r.code, 0, "{r:?}");
    let name = format!("{}-db-1", p.name());
    crate::support::docker([
        "exec",
        &name,
        "sh",
        "-c",
        "echo kept > /data/file && ln -s / /data/root",
    ]);
    let on_host = s.state_path().join("data").join(p.name()).join("data");
    assert_eq!(
        std::fs::read_to_string(on_host.join("file")).unwrap(),
        "kept\n"
    );

    // Replaced by v2: the data is still there.
    s.file("compose.yaml", &stack(&img.app_v2, ""));
    let r = s.apply();
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(docker_stdout(["exec", &name, "cat", "/data/file"]), "kept");

    // A commit that mounts the planted symlink is refused; v2 keeps running.
    s.file(
        "compose.yaml",
        &stack(&img.app_v2, "\n      - ./data/root:/host"),
    );
    let r = s.apply();
    assert_ne!(r.code, 0, "{r:?}");
    assert!(r.stderr.contains("passes through the symlink"), "{r:?}");
    let mounts = inspect(&name).unwrap()["Mounts"].to_string();
    assert!(!mounts.contains("\"/host\""), "{mounts}");
    assert_eq!(docker_stdout(["exec", &name, "cat", "/data/file"]), "kept");
}

/// `deploy.update_config.delay` pauses between batches: the second slot's new replica is
/// created no sooner than the delay after the first slot was replaced.
#[test]
fn update_delay_pauses_between_batches() {
    let p = Project::new("delay");
    let img = images();
    let s = Stack::new();
    let stack = |image: &str| {
        format!(
            "\
name: {name}
services:
  web:
    image: {image}
    deploy:
      replicas: 2
      update_config: {{ parallelism: 1, delay: 2s, monitor: 0s }}
",
            name = p.name(),
        )
    };
    s.file("compose.yaml", &stack(&img.app_v1));
    let r = s.apply();
    assert_eq!(r.code, 0, "{r:?}");
    s.file("compose.yaml", &stack(&img.app_v2));
    let r = s.apply();
    assert_eq!(r.code, 0, "{r:?}");
    let events: Vec<serde_json::Value> = r
        .stderr
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    let at = |action: &str, slot: u64| {
        events
            .iter()
            .find(|e| e["action"] == action && (slot == 0 || e["slot"] == slot))
            .and_then(|e| e["timestamp"].as_str())
            .and_then(seconds)
            .unwrap_or_else(|| panic!("no `{action}` of slot {slot} in {}", r.stderr))
    };
    let replaced = at("replaced", 1);
    let delay = at("delay", 0);
    let next = at("create", 2);
    assert!(delay >= replaced, "{}", r.stderr);
    assert!(next - replaced >= 2.0, "{}", r.stderr);
}

/// Seconds since the epoch of an RFC 3339 timestamp (`2026-11-29T15:22:54.404126Z`).
fn seconds(t: &str) -> Option<f64> {
    let at = time::OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339).ok()?;
    Some(at.unix_timestamp_nanos() as f64 / 1e9)
}

/// A secret is the host's file, mounted read-only where compose mounts it; a config is
/// the repository's. A changed secret replaces the replica; a missing one is refused
/// at create and the running replica is kept. The secret's content is never printed.
#[test]
fn secrets_and_configs_are_mounted_read_only_and_a_changed_secret_replaces_the_replica() {
    let p = Project::new("secrets");
    let img = images();
    let s = Stack::new();
    let stack = |secret_file: &str| {
        format!(
            "\
name: {name}
secrets:
  db_password: {{ file: {secret_file} }}
configs:
  app_ini: {{ file: ./conf/app.ini }}
services:
  api:
    image: {image}
    secrets: [db_password]
    configs:
      - source: app_ini
        target: /etc/app/app.ini
    deploy:
      update_config: {{ monitor: 0s }}
",
            name = p.name(),
            image = img.app_v1
        )
    };
    s.file("compose.yaml", &stack("./db_password.txt"));
    s.file("conf/app.ini", "[app]\nmode = prod\n");
    std::fs::write(s.env.path().join("db_password.txt"), "hunter2-first").unwrap();
    let r = s.apply();
    assert_eq!(r.code, 0, "{r:?}");
    let name = format!("{}-api-1", p.name());
    let cat = |path: &str| docker_stdout(["exec", &name, "cat", path]);
    assert_eq!(cat("/run/secrets/db_password"), "hunter2-first");
    assert_eq!(cat("/etc/app/app.ini"), "[app]\nmode = prod");
    let write = write_in(&name, "/run/secrets/db_password");
    assert!(!write.status.success(), "the secret is writable");
    let before = inspect(&name).unwrap()["Id"].clone();

    std::fs::write(s.env.path().join("db_password.txt"), "hunter2-second").unwrap();
    let plan = s.plan();
    assert!(
        plan.stdout.contains("secret db_password changed"),
        "{plan:?}"
    );
    let r = s.apply();
    assert_eq!(r.code, 0, "{r:?}");
    assert_ne!(inspect(&name).unwrap()["Id"], before);
    assert_eq!(cat("/run/secrets/db_password"), "hunter2-second");
    for out in [&r.stdout, &r.stderr, &plan.stdout, &plan.stderr] {
        assert!(!out.contains("hunter2"), "{out}");
    }

    // Pointing at a file that is not there: refused, the replica keeps running.
    let running = inspect(&name).unwrap()["Id"].clone();
    s.file("compose.yaml", &stack("./missing.txt"));
    let r = s.apply();
    assert_ne!(r.code, 0, "{r:?}");
    assert!(r.stderr.contains("missing.txt"), "{r:?}");
    assert_eq!(inspect(&name).unwrap()["Id"], running);
}

/// `-f compose.yaml -f compose.prod.yml`: the second file's replicas, environment key
/// and volume are merged onto the first's, as `docker compose` merges them; the
/// override file beside them is not read since it is not named.
#[test]
fn compose_files_named_in_order_are_merged() {
    let p = Project::new("merged");
    let img = images();
    let s = Stack::new();
    s.file(
        "compose.yaml",
        &format!(
            "\
name: {name}
services:
  web:
    image: {image}
    expose: [8000]
    environment:
      GREETING: hello
      MODE: dev
    volumes: [\"data:/data\"]
volumes:
  data:
",
            name = p.name(),
            image = img.app_v1
        ),
    );
    s.file(
        "compose.prod.yml",
        "\
services:
  web:
    environment:
      - MODE=prod
    volumes:
      - cache:/cache
    deploy:
      replicas: 2
volumes:
  cache:
",
    );
    s.file(
        "compose.override.yaml",
        "services:\n  web:\n    deploy:\n      replicas: 3\n",
    );
    let mut args = s.apply_args();
    args[2] = s.path().join("compose.yaml").display().to_string();
    args.insert(3, "--file".into());
    args.insert(4, s.path().join("compose.prod.yml").display().to_string());
    let r = crate::berth(&args);
    assert_eq!(r.code, 0, "{r:?}");
    for slot in 1..=2 {
        let name = format!("{}-web-{slot}", p.name());
        let c = inspect(&name).expect("the replica exists");
        let env = c["Config"]["Env"].as_array().unwrap().clone();
        assert!(env.iter().any(|e| e == "MODE=prod"), "{env:?}");
        assert!(env.iter().any(|e| e == "GREETING=hello"), "{env:?}");
        assert!(!env.iter().any(|e| e == "MODE=dev"), "{env:?}");
        let mounts: Vec<(String, String)> = c["Mounts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| {
                (
                    m["Name"].as_str().unwrap_or_default().to_string(),
                    m["Destination"].as_str().unwrap_or_default().to_string(),
                )
            })
            .collect();
        for (volume, target) in [("data", "/data"), ("cache", "/cache")] {
            assert!(
                mounts
                    .iter()
                    .any(|(n, d)| n == &format!("{}_{volume}", p.name()) && d == target),
                "{mounts:?}"
            );
        }
    }
    // Two replicas: the prod file's, not the unnamed override's three.
    assert!(inspect(&format!("{}-web-3", p.name())).is_none());
    let volumes = docker_stdout(["volume", "ls", "-q"]);
    assert!(
        volumes.contains(&format!("{}_cache", p.name())),
        "{volumes}"
    );
}

/// Tries to write `path` inside the container `name`; the output of `docker exec`.
fn write_in(name: &str, path: &str) -> std::process::Output {
    std::process::Command::new("docker")
        .args(["exec", name, "sh", "-c", &format!("echo x > {path}")])
        .output()
        .unwrap()
}
