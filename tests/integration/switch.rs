//! Switching a host from docker compose to berth: `berth adopt` takes over compose's
//! volumes (with their data) and network, replaces its containers service by service,
//! and leaves other compose projects alone; a file that merely names compose's objects
//! adopts nothing. `berth convert` writes a format v1 file as compose.

use std::time::{Duration, Instant};

use crate::support::compose::{free_port, get, ComposeDir, PortLoop};
use crate::support::{
    caddy_image, container_exists, container_status, docker_stdout, images, inspect, wait_healthy,
    wait_until, Project,
};
use crate::{berth, Run, TempDir};

fn stack(port: Option<u16>) -> String {
    let img = images();
    let proxy = match port {
        Some(port) => format!(
            "  proxy:
    image: {caddy}
    ports: [\"127.0.0.1:{port}:8080\"]
    volumes: [\"./Caddyfile:/etc/caddy/Caddyfile:ro\"]
    depends_on: [api]
    deploy:
      update_config: {{ monitor: 0s }}
",
            caddy = caddy_image()
        ),
        None => String::new(),
    };
    format!(
        "services:
  api:
    image: {app}
    volumes: [\"data:/data\"]
    deploy:
      update_config: {{ monitor: 1s }}
{proxy}volumes:
  data: {{}}
",
        app = img.app_v1
    )
}

const CADDYFILE: &str =
    "{\n\tauto_https off\n\tadmin off\n}\n\n:8080 {\n\treverse_proxy api:8000\n}\n";

/// `berth ARGS --file FILE --state-dir STATE --env-dir ENV`.
fn berth_on(args: &[&str], file: &std::path::Path, state: &TempDir, env: &TempDir) -> Run {
    let mut all: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    all.extend([
        "--file".into(),
        file.display().to_string(),
        "--state-dir".into(),
        state.path().display().to_string(),
        "--env-dir".into(),
        env.path().display().to_string(),
    ]);
    berth(all)
}

fn read(container: &str, path: &str) -> String {
    docker_stdout(["exec", container, "cat", path])
}

#[test]
fn a_compose_stack_is_adopted_with_its_data_and_other_projects_are_untouched() {
    let p = Project::new("switch");
    let other = Project::new("switchother");
    let (state, env) = (TempDir::default(), TempDir::default());
    let port = free_port();
    let ours = ComposeDir::new(p.name(), &stack(Some(port)));
    ours.file("Caddyfile", CADDYFILE);
    let theirs = ComposeDir::new(other.name(), &stack(None));
    ours.compose(&["up", "-d"]);
    theirs.compose(&["up", "-d"]);
    let (api, proxy) = (
        format!("{}_api_1", p.name()),
        format!("{}_proxy_1", p.name()),
    );
    let their_api = format!("{}_api_1", other.name());
    for c in [&api, &their_api] {
        assert!(wait_healthy(c, Duration::from_secs(30)), "{c}");
    }
    docker_stdout(["exec", &api, "sh", "-c", "echo precious > /data/file"]);
    docker_stdout(["exec", &their_api, "sh", "-c", "echo theirs > /data/file"]);
    let their_id = docker_stdout(["inspect", "-f", "{{.Id}}", &their_api]);
    assert!(
        wait_until(Duration::from_secs(30), Duration::from_millis(100), || get(
            port,
            Duration::from_secs(2)
        )
        .as_deref()
            == Some("v1")),
        "compose's proxy answers: {:?} {}",
        get(port, Duration::from_secs(2)),
        String::from_utf8_lossy(&crate::support::docker(["logs", &proxy]).stderr)
    );
    let file = ours.file_path();
    let volume = format!("{}_data", p.name());
    let network = format!("{}_default", p.name());

    // The desired state alone adopts nothing: compose's objects are refused as any
    // object berth did not create, and the message says who can hand them over.
    let r = berth_on(&["apply"], &file, &state, &env);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(
        r.stderr.contains(&format!(
            "network `{network}` exists but berth did not create it"
        )) && r.stderr.contains(&format!(
            "if docker compose made it, the host's operator hands it over with `berth adopt --project {} --state-dir {}` and this desired state's --file or --repo",
            p.name(),
            state.path().display()
        )),
        "{r:?}"
    );
    assert_eq!(p.containers(), Vec::<String>::new());
    assert_eq!(container_status(&api).as_deref(), Some("running"));

    // The dry run says what happens to what, and changes nothing.
    let r = berth_on(
        &["adopt", "--project", p.name(), "--dry-run"],
        &file,
        &state,
        &env,
    );
    assert_eq!(r.code, 0, "{r:?}");
    let name = p.name();
    assert_eq!(
        r.stdout,
        format!(
            "docker compose project `{name}` → berth project `{name}`
volumes handed over (used as they are; berth never removes them):
  {name}_data (`data`)
networks handed over (used as they are; berth never removes them):
  {name}_default (`default`)
services, in dependency order:
  api    start-first: berth's replicas start and pass their gate, then {name}_api_1 leaves its alias, drain 1000ms and stops
  proxy  stop-first (publishes host ports): {name}_proxy_1 stops, then berth's replicas start; unserved until they pass their gate
dry run: nothing changed
"
        ),
        "{r:?}"
    );
    let r = berth_on(
        &[
            "adopt",
            "--project",
            p.name(),
            "--dry-run",
            "--output",
            "json",
        ],
        &file,
        &state,
        &env,
    );
    assert_eq!(r.code, 0, "{r:?}");
    let shown: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(shown["dry_run"], true, "{shown}");
    assert_eq!(
        shown["plan"]["volumes"],
        serde_json::json!([{ "name": format!("{name}_data"), "short": "data" }])
    );
    let orders: Vec<(&str, &str)> = shown["plan"]["services"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["service"].as_str().unwrap(), s["order"].as_str().unwrap()))
        .collect();
    assert_eq!(orders, [("api", "start-first"), ("proxy", "stop-first")]);
    assert!(!state.path().join("adopted.json").exists());
    assert_eq!(container_status(&proxy).as_deref(), Some("running"));
    // --project names the compose project, which must be the desired state's: the
    // operator says what is taken over, not the file.
    let r = berth_on(&["adopt", "--dry-run"], &file, &state, &env);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("--project <NAME>"), "{r:?}");
    let r = berth_on(&["adopt", "--project", other.name()], &file, &state, &env);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(
        r.stderr.contains(&format!(
            "--project {}, but the desired state is project `{name}`",
            other.name()
        )),
        "{r:?}"
    );
    assert!(container_exists(&their_api));

    // The switch, under traffic: on the published port from the host, and on the
    // internal service's alias from inside the network.
    let published = PortLoop::start(port, "v1");
    let internal = p.client_loop(&network, "api");
    assert!(internal.wait_for_ok(Duration::from_secs(20)));
    assert!(wait_until(
        Duration::from_secs(10),
        Duration::from_millis(50),
        || published.ok() > 0
    ));
    let started = Instant::now();
    let loop_age = published.age();
    let r = berth_on(
        &["adopt", "--project", p.name(), "--drain", "1s"],
        &file,
        &state,
        &env,
    );
    let took = started.elapsed();
    assert_eq!(r.code, 0, "{r:?}");
    // Let both clients see the new containers for a while.
    let (seen, inside) = (published.ok(), internal.report().ok);
    assert!(wait_until(
        Duration::from_secs(20),
        Duration::from_millis(50),
        || published.ok() > seen + 20 && internal.report().ok > inside + 20
    ));
    let outside = published.stop();
    let inside = internal.stop_report();
    eprintln!(
        "switch from docker compose: `berth adopt` took {:.2}s\n{}\
         published port (host → proxy → api): {} failed of {}, longest gap {} ms \
         (gaps, ms after adopt started: {:?})\n\
         internal service (client → api alias, every 50 ms): {} failed of {}",
        took.as_secs_f64(),
        r.stdout,
        outside.fail,
        outside.ok + outside.fail,
        outside.longest_gap.as_millis(),
        outside
            .gaps
            .iter()
            .map(|(at, len)| (
                at.as_millis() as i64 - loop_age.as_millis() as i64,
                len.as_millis()
            ))
            .collect::<Vec<_>>(),
        inside.fail,
        inside.ok + inside.fail,
    );
    assert!(
        r.stdout.contains("✓ api    switched start-first in ")
            && r.stdout
                .contains("✓ proxy  switched stop-first: published ports closed for "),
        "{r:?}"
    );

    // compose's containers are gone; berth's serve, with compose's data.
    for c in [&api, &proxy] {
        assert!(!container_exists(c), "{c}");
    }
    let (new_api, new_proxy) = (format!("{name}-api-1"), format!("{name}-proxy-1"));
    for c in [&new_api, &new_proxy] {
        assert_eq!(container_status(c).as_deref(), Some("running"), "{c}");
    }
    assert_eq!(read(&new_api, "/data/file"), "precious");
    let mounted = inspect(&new_api).unwrap();
    assert_eq!(mounted["Mounts"][0]["Name"], volume.as_str(), "{mounted}");
    assert_eq!(get(port, Duration::from_secs(2)).as_deref(), Some("v1"));
    // Adopted objects are used as they are: compose's labels, no berth label.
    for (kind, object) in [("volume", &volume), ("network", &network)] {
        let labels = docker_stdout([kind, "inspect", "-f", "{{json .Labels}}", object]);
        assert!(
            !labels.contains("berth.project")
                && labels.contains(&format!("\"com.docker.compose.project\":\"{name}\"")),
            "{kind} {object}: {labels}"
        );
    }
    let record: serde_json::Value =
        serde_json::from_slice(&std::fs::read(state.path().join("adopted.json")).unwrap()).unwrap();
    assert_eq!(
        record,
        serde_json::json!({ name: { "volumes": [volume], "networks": [network] } })
    );

    // The other compose project was not touched.
    assert_eq!(
        docker_stdout(["inspect", "-f", "{{.Id}} {{.State.Status}}", &their_api]),
        format!("{their_id} running")
    );
    assert_eq!(read(&their_api, "/data/file"), "theirs");
    let their_labels = docker_stdout([
        "volume",
        "inspect",
        "-f",
        "{{json .Labels}}",
        &format!("{}_data", other.name()),
    ]);
    assert!(!their_labels.contains("berth"), "{their_labels}");

    // From now on a plain apply (the agent's too) uses the adopted objects.
    let r = berth_on(&["apply"], &file, &state, &env);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stdout.contains("= api    in sync"), "{r:?}");
    assert_eq!(read(&new_api, "/data/file"), "precious");
}

#[test]
fn convert_writes_a_v1_file_as_compose_that_berth_reads_to_the_same_stack() {
    let img = images();
    let dir = TempDir::default();
    let v1 = dir.path().join("berth.yaml");
    std::fs::write(
        &v1,
        format!(
            "project: shop
networks: {{ backend: {{}} }}
volumes: {{ data: {{}} }}
services:
  api:
    image: {app}
    replicas: 2
    env: {{ LOG_LEVEL: info }}
    networks: [backend]
    volumes: [\"data:/data\"]
    update: {{ order: start-first, monitor: 2s }}
  proxy:
    image: {caddy}
    ports: [\"8080:8080\"]
    networks: [backend]
    volumes: [\"./Caddyfile:/etc/caddy/Caddyfile:ro\"]
    depends_on: [api]
",
            app = img.app_v1,
            caddy = caddy_image()
        ),
    )
    .unwrap();
    std::fs::write(dir.path().join("Caddyfile"), CADDYFILE).unwrap();
    let out = dir.path().join("compose.yaml");
    let r = berth([
        "convert".as_ref(),
        v1.as_os_str(),
        "-o".as_ref(),
        out.as_os_str(),
    ]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(
        r.stderr,
        format!("wrote {}: project `shop`, 2 services\n", out.display())
    );
    let config = |path: &std::path::Path| berth(["config".as_ref(), path.as_os_str()]);
    let (before, after) = (config(&v1), config(&out));
    assert_eq!((before.code, after.code), (0, 0), "{before:?} {after:?}");
    assert_eq!(before.stdout, after.stdout);

    // An existing file is never replaced, and a compose file is not converted.
    let r = berth([
        "convert".as_ref(),
        v1.as_os_str(),
        "-o".as_ref(),
        out.as_os_str(),
    ]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(
        r.stderr.contains("exists; convert writes a new file"),
        "{r:?}"
    );
    let r = berth(["convert".as_ref(), out.as_os_str()]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("is already a compose file"), "{r:?}");
}

#[test]
fn a_replacement_that_fails_gives_the_port_back_to_compose_and_adopt_can_run_again() {
    let p = Project::new("switchfail");
    let img = images();
    let (state, env) = (TempDir::default(), TempDir::default());
    let port = free_port();
    let web = |image: &str| {
        format!(
            "services:
  web:
    image: {image}
    ports: [\"127.0.0.1:{port}:8000\"]
    deploy:
      update_config: {{ monitor: 0s }}
"
        )
    };
    let dir = ComposeDir::new(p.name(), &web(&img.app_v1));
    dir.compose(&["up", "-d"]);
    let theirs = format!("{}_web_1", p.name());
    let adopt = || {
        berth_on(
            &["adopt", "--project", p.name()],
            &dir.file_path(),
            &state,
            &env,
        )
    };
    assert!(wait_healthy(&theirs, Duration::from_secs(30)));
    assert_eq!(get(port, Duration::from_secs(2)).as_deref(), Some("v1"));

    // An image that cannot be pulled stops the switch before anything moves.
    let started_at = || docker_stdout(["inspect", "-f", "{{.State.StartedAt}}", &theirs]);
    let before = started_at();
    dir.file("compose.yaml", &web("127.0.0.1:9/berth-test/absent:1"));
    let r = adopt();
    assert_eq!(r.code, 1, "{r:?}");
    assert!(
        r.stderr.contains("error: web: ")
            && r.stderr
                .contains("; nothing was adopted or stopped: compose still runs everything"),
        "{r:?}"
    );
    assert_eq!(started_at(), before, "compose's web was never stopped");
    assert!(!state.path().join("adopted.json").exists());

    // The desired state asks for an image that exits at once.
    dir.file("compose.yaml", &web(&img.app_crash));
    let r = adopt();
    assert_eq!(r.code, 1, "{r:?}");
    assert!(
        r.stderr
            .contains("error: web: berth's replicas did not converge (")
            && r.stderr.contains(&format!(
            "compose's {theirs} started again. Services switched before it stay with berth; fix the cause and run `berth adopt` again"
        )),
        "{r:?}"
    );
    assert_eq!(container_status(&theirs).as_deref(), Some("running"));
    assert!(
        wait_until(Duration::from_secs(10), Duration::from_millis(50), || get(
            port,
            Duration::from_secs(2)
        )
        .as_deref()
            == Some("v1")),
        "compose's web answers again"
    );
    assert_eq!(
        p.containers(),
        Vec::<String>::new(),
        "berth's failed replica is gone"
    );

    // Fixed, the same command finishes the switch.
    dir.file("compose.yaml", &web(&img.app_v2));
    let r = adopt();
    assert_eq!(r.code, 0, "{r:?}");
    assert!(!container_exists(&theirs));
    assert_eq!(get(port, Duration::from_secs(2)).as_deref(), Some("v2"));
}
