//! `berth apply`: converge, roll, fail safely, scale, prune, heal, survive `kill -9`.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use crate::support::{docker, docker_ok, docker_stdout, images, wait_until, Project, Registry};
use crate::{berth, spawn_berth, Stack};

/// `name image-label state` of every container of a service, sorted by name.
fn containers(p: &Project, service: &str) -> Vec<String> {
    let out = docker_stdout([
        "ps",
        "-a",
        "--filter",
        &format!("label=berth.project={}", p.name()),
        "--filter",
        &format!("label=berth.service={service}"),
        "--format",
        "{{.Names}} {{.Label \"berth.image\"}} {{.State}}",
    ]);
    let mut v: Vec<String> = out.lines().map(str::to_string).collect();
    v.sort();
    v
}

/// What a converged service looks like: `<project>-<service>-<n> <image> running`.
fn expect(p: &Project, service: &str, image: &str, n: u32) -> Vec<String> {
    (1..=n)
        .map(|i| format!("{}-{service}-{i} {image} running", p.name()))
        .collect()
}

fn healthy_count(p: &Project, service: &str) -> usize {
    docker_stdout([
        "ps",
        "--filter",
        &format!("label=berth.project={}", p.name()),
        "--filter",
        &format!("label=berth.service={service}"),
        "--filter",
        "health=healthy",
        "-q",
    ])
    .lines()
    .count()
}

/// Records the lowest number of healthy replicas seen while it runs.
struct HealthWatch {
    stop: Arc<AtomicBool>,
    min: Arc<AtomicUsize>,
    handle: Option<thread::JoinHandle<()>>,
}

impl HealthWatch {
    fn start(p: &Project, service: &str) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let min = Arc::new(AtomicUsize::new(usize::MAX));
        let (s, m, name, svc) = (stop.clone(), min.clone(), p.label(), service.to_string());
        let handle = thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                let n = docker_stdout([
                    "ps",
                    "--filter",
                    &format!("label={name}"),
                    "--filter",
                    &format!("label=berth.service={svc}"),
                    "--filter",
                    "health=healthy",
                    "-q",
                ])
                .lines()
                .count();
                m.fetch_min(n, Ordering::Relaxed);
                thread::sleep(Duration::from_millis(50));
            }
        });
        Self {
            stop,
            min,
            handle: Some(handle),
        }
    }

    fn finish(mut self) -> usize {
        self.stop.store(true, Ordering::Relaxed);
        self.handle.take().unwrap().join().unwrap();
        self.min.load(Ordering::Relaxed)
    }
}

/// A stack with `api` (replicas, image) and a `web` that depends on it.
fn two_services(project: &str, api_image: &str, replicas: u32, web_image: &str) -> String {
    format!(
        "project: {project}
services:
  api:
    image: {api_image}
    replicas: {replicas}
    stop_grace: 2s
    update: {{ monitor: 1s, deadline: 20s }}
  web:
    image: {web_image}
    depends_on: [api]
    stop_grace: 2s
    update: {{ monitor: 1s, deadline: 20s }}
"
    )
}

#[test]
fn cold_start_then_a_bump_rolls_every_replica_keeping_the_healthy_count() {
    let p = Project::new("roll");
    let img = images();
    let s = Stack::new();
    s.write(&two_services(p.name(), &img.app_v1, 3, &img.app_v1));
    let r = s.apply();
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(containers(&p, "api"), expect(&p, "api", &img.app_v1, 3));
    assert_eq!(containers(&p, "web"), expect(&p, "web", &img.app_v1, 1));
    assert_eq!(healthy_count(&p, "api"), 3);
    assert!(
        r.stdout.contains("✓ api  create: 3 replicas of v1"),
        "{}",
        r.stdout
    );

    s.write(&two_services(p.name(), &img.app_v2, 3, &img.app_v1));
    let watch = HealthWatch::start(&p, "api");
    let r = s.apply();
    let min = watch.finish();
    assert_eq!(r.code, 0, "{r:?}");
    assert!(
        min >= 3,
        "healthy replicas dropped to {min} during the rollout"
    );
    assert_eq!(containers(&p, "api"), expect(&p, "api", &img.app_v2, 3));
    assert!(
        r.stdout.contains("✓ api  replace: image v1 → v2"),
        "{}",
        r.stdout
    );
    assert!(r.stdout.contains("= web  in sync"), "{}", r.stdout);
    assert_eq!(s.plan().code, 0);
}

#[test]
fn a_never_healthy_image_leaves_the_old_version_serving() {
    let p = Project::new("unhealthy");
    let img = images();
    let s = Stack::new();
    s.write(&two_services(p.name(), &img.app_v1, 2, &img.app_v1));
    assert_eq!(s.apply().code, 0);
    s.write(&two_services(p.name(), &img.app_unhealthy, 2, &img.app_v1));
    let r = s.apply();
    assert_eq!(r.code, 1, "{r:?}");
    let line = r.stdout.lines().find(|l| l.contains(" api ")).unwrap();
    assert!(
        line.starts_with(&format!(
            "✗ api  replace failed: new replica {}-api-1-next became unhealthy",
            p.name()
        )),
        "{line}"
    );
    assert!(
        line.ends_with("; the old replica kept serving; 2 replicas of v1 still serving"),
        "{line}"
    );
    assert_eq!(containers(&p, "api"), expect(&p, "api", &img.app_v1, 2));
    assert_eq!(healthy_count(&p, "api"), 2);
}

#[test]
fn an_image_that_exits_at_once_fails_its_gate_without_waiting() {
    let p = Project::new("crash");
    let img = images();
    let s = Stack::new();
    s.write(&two_services(p.name(), &img.app_v1, 1, &img.app_v1));
    assert_eq!(s.apply().code, 0);
    s.write(&two_services(p.name(), &img.app_crash, 1, &img.app_v1));
    let started = std::time::Instant::now();
    let r = s.apply();
    assert_eq!(r.code, 1, "{r:?}");
    // Far below the 20 s deadline: an exit fails the gate at once.
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "{:?}",
        started.elapsed()
    );
    let line = r.stdout.lines().find(|l| l.contains(" api ")).unwrap();
    assert!(
        line.contains("exited with code 1; last output: boom"),
        "{line}"
    );
    assert!(line.ends_with("1 replica of v1 still serving"), "{line}");
    assert_eq!(containers(&p, "api"), expect(&p, "api", &img.app_v1, 1));
    // The dependant was not touched and is reported as such.
    assert!(r.stdout.contains("= web  in sync"), "{}", r.stdout);
}

#[test]
fn a_failed_dependency_blocks_its_dependants() {
    let p = Project::new("blocked");
    let img = images();
    let s = Stack::new();
    s.write(&two_services(p.name(), &img.app_v1, 1, &img.app_v1));
    assert_eq!(s.apply().code, 0);
    s.write(&two_services(p.name(), &img.app_crash, 1, &img.app_v2));
    let r = s.apply();
    assert_eq!(r.code, 1);
    assert!(
        r.stdout
            .contains("✗ web  not changed: it depends on api, which did not converge"),
        "{}",
        r.stdout
    );
    assert_eq!(containers(&p, "web"), expect(&p, "web", &img.app_v1, 1));
}

#[test]
fn scale_three_to_one_to_three() {
    let p = Project::new("scale");
    let img = images();
    let s = Stack::new();
    for n in [3, 1, 3] {
        s.write(&two_services(p.name(), &img.app_v1, n, &img.app_v1));
        let r = s.apply();
        assert_eq!(r.code, 0, "{r:?}");
        assert_eq!(containers(&p, "api"), expect(&p, "api", &img.app_v1, n));
    }
}

#[test]
fn a_removed_service_is_pruned_and_unmanaged_containers_survive() {
    let p = Project::new("prune");
    let img = images();
    let s = Stack::new();
    s.write(&two_services(p.name(), &img.app_v1, 1, &img.app_v1));
    assert_eq!(s.apply().code, 0);
    // Same engine, same name prefix, no berth label: never touched.
    let bystander = p.child("bystander");
    docker(["run", "-d", "--name", &bystander, &img.tool_v1]);
    s.write(&format!(
        "project: {}\nservices:\n  api:\n    image: {}\n    stop_grace: 2s\n    update: {{ monitor: 1s }}\n",
        p.name(),
        img.app_v1
    ));
    let r = s.apply();
    assert_eq!(r.code, 0, "{r:?}");
    assert!(
        r.stdout
            .contains("✓ web  remove: service is no longer in the desired state of this host"),
        "{}",
        r.stdout
    );
    assert!(containers(&p, "web").is_empty());
    assert_eq!(containers(&p, "api"), expect(&p, "api", &img.app_v1, 1));
    assert_eq!(
        docker_stdout(["inspect", "-f", "{{.State.Status}}", &bystander]).trim(),
        "running"
    );
}

#[test]
fn a_replica_killed_or_removed_by_hand_is_back_after_the_next_apply() {
    let p = Project::new("heal");
    let img = images();
    let s = Stack::new();
    s.write(&two_services(p.name(), &img.app_v1, 2, &img.app_v1));
    assert_eq!(s.apply().code, 0);
    docker(["kill", &format!("{}-api-1", p.name())]);
    docker(["rm", "-f", &format!("{}-api-2", p.name())]);
    let plan = s.plan();
    assert_eq!(plan.code, 3);
    assert!(plan.stdout.contains("~ api  restart"), "{}", plan.stdout);
    assert!(
        plan.stdout
            .contains("exited with code 137; replica 2 missing"),
        "{}",
        plan.stdout
    );
    let r = s.apply();
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(containers(&p, "api"), expect(&p, "api", &img.app_v1, 2));
    assert!(wait_until(
        Duration::from_secs(10),
        Duration::from_millis(200),
        || healthy_count(&p, "api") == 2
    ));
}

#[test]
fn an_unmanaged_container_holding_a_replica_name_fails_only_that_service() {
    let p = Project::new("collide");
    let img = images();
    let s = Stack::new();
    let squatter = format!("{}-api-1", p.name());
    docker(["run", "-d", "--name", &squatter, &img.tool_v1]);
    s.write(
        &two_services(p.name(), &img.app_v1, 1, &img.app_v1).replace("    depends_on: [api]\n", ""),
    );
    let r = s.apply();
    assert_eq!(r.code, 1, "{r:?}");
    assert!(
        r.stdout.contains(&format!("✗ api  create failed: container name {squatter} is taken by a container berth does not manage (or of another project); rename or remove it")),
        "{}",
        r.stdout
    );
    assert_eq!(containers(&p, "web"), expect(&p, "web", &img.app_v1, 1));
    assert_eq!(
        docker_stdout(["inspect", "-f", "{{.State.Status}}", &squatter]).trim(),
        "running"
    );
}

#[test]
fn kill_9_at_any_point_of_a_rollout_then_a_rerun_converges_exactly() {
    let p = Project::new("kill9");
    let img = images();
    let s = Stack::new();
    s.write(&two_services(p.name(), &img.app_v1, 3, &img.app_v1));
    assert_eq!(s.apply().code, 0);
    let args = s.apply_args();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut image = &img.app_v1;
    // Points spread over pull, start, health gate, promotion and stop of the slots.
    for (i, delay_ms) in [300u64, 1200, 2500, 4000, 5500, 7000]
        .into_iter()
        .enumerate()
    {
        image = if i % 2 == 0 { &img.app_v2 } else { &img.app_v1 };
        s.write(&two_services(p.name(), image, 3, image));
        let mut child = spawn_berth(&args);
        thread::sleep(Duration::from_millis(delay_ms));
        child.kill().unwrap();
        child.wait().unwrap();
    }
    let r = s.apply();
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(containers(&p, "api"), expect(&p, "api", image, 3));
    assert_eq!(containers(&p, "web"), expect(&p, "web", image, 1));
    assert_eq!(s.plan().code, 0);
}

#[test]
fn zero_failed_requests_during_a_rolling_update_behind_the_alias() {
    let p = Project::new("zero");
    let img = images();
    let s = Stack::new();
    s.write(&two_services(p.name(), &img.app_v1, 3, &img.app_v1));
    assert_eq!(s.apply().code, 0);
    // With the short drain of these tests (300 ms) a connection attempt lost in the
    // instant the old replica leaves the alias may be retried by TCP only after that
    // replica stopped; a client retrying once, like a reverse proxy does, loses nothing
    // (traffic.rs counts the client that never retries, at the default drain).
    let client = p.client_loop_with_retries(&format!("{}_default", p.name()), "api", 1);
    assert!(client.wait_for_ok(Duration::from_secs(10)));
    s.write(&two_services(p.name(), &img.app_v2, 3, &img.app_v1));
    let r = s.apply();
    assert_eq!(r.code, 0, "{r:?}");
    assert!(wait_until(
        Duration::from_secs(10),
        Duration::from_millis(50),
        || client.report().bodies.contains_key("v2")
    ));
    let report = client.stop_report();
    assert_eq!(report.fail, 0, "{:?}", report.lines);
    assert!(
        report.bodies.contains_key("v1") && report.bodies.contains_key("v2"),
        "{:?}",
        report.bodies
    );
}

#[test]
fn rollback_to_an_image_on_the_host_needs_no_registry() {
    let p = Project::new("offline");
    let img = images();
    // A registry of this test alone, so stopping it disturbs no other test.
    let reg = Registry::new();
    let v1 = reg.push_copy(&img.app_v1, &format!("{}/app", p.name()), "v1");
    let v2 = reg.push_copy(&img.app_v2, &format!("{}/app", p.name()), "v2");
    // Neither is on the host yet: apply must pull them.
    docker_ok(["rmi", &v1]);
    docker_ok(["rmi", &v2]);
    let s = Stack::new();
    s.write(&two_services(p.name(), &v1, 1, &v1));
    assert_eq!(s.apply().code, 0);
    s.write(&two_services(p.name(), &v2, 1, &v1));
    assert_eq!(s.apply().code, 0);
    reg.stop();
    s.write(&two_services(p.name(), &v1, 1, &v1));
    let r = s.apply();
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(containers(&p, "api"), expect(&p, "api", &v1, 1));
    docker_ok(["rmi", &v1]);
    docker_ok(["rmi", &v2]);
}

#[test]
fn an_unpullable_image_fails_that_service_alone_and_stops_nothing() {
    let p = Project::new("nopull");
    let img = images();
    let s = Stack::new();
    s.write(
        &two_services(p.name(), &img.app_v1, 1, &img.app_v1).replace("    depends_on: [api]\n", ""),
    );
    assert_eq!(s.apply().code, 0);
    let missing = format!("{}/berth-test/absent:v9", img.registry);
    s.write(
        &two_services(p.name(), &missing, 1, &img.app_v2).replace("    depends_on: [api]\n", ""),
    );
    let r = s.apply();
    assert_eq!(r.code, 1, "{r:?}");
    let line = r.stdout.lines().find(|l| l.contains(" api ")).unwrap();
    assert!(
        line.starts_with(&format!("✗ api  replace failed: pull {missing}: ")),
        "{line}"
    );
    assert!(
        line.ends_with("nothing of this service was stopped; 1 replica of v1 still serving"),
        "{line}"
    );
    assert_eq!(containers(&p, "api"), expect(&p, "api", &img.app_v1, 1));
    assert_eq!(containers(&p, "web"), expect(&p, "web", &img.app_v2, 1));
}

#[test]
fn retries_follow_the_backoff_and_are_reported() {
    let p = Project::new("retry");
    let img = images();
    let s = Stack::new();
    s.write(&two_services(p.name(), &img.app_v1, 1, &img.app_v1));
    assert_eq!(s.apply().code, 0);
    s.write(&two_services(p.name(), &img.app_crash, 1, &img.app_v1));
    let mut args = s.apply_args();
    args.extend(
        [
            "--retries",
            "2",
            "--backoff-initial",
            "500ms",
            "--backoff-max",
            "1s",
        ]
        .map(String::from),
    );
    let r = berth(&args);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(
        r.stdout
            .contains("✗ api  replace failed after 3 attempts: "),
        "{}",
        r.stdout
    );
    assert_eq!(
        r.stderr.matches("retrying after backoff").count(),
        2,
        "{}",
        r.stderr
    );
}

#[test]
fn a_stop_first_service_with_a_host_port_is_replaced_and_keeps_its_port() {
    let p = Project::new("stopfirst");
    let img = images();
    let port = free_port();
    let s = Stack::new();
    let stack = |image: &str| {
        format!(
            "project: {}\nservices:\n  proxy:\n    image: {image}\n    ports: [\"127.0.0.1:{port}:8000\"]\n    stop_grace: 2s\n    update: {{ monitor: 1s, deadline: 20s }}\n",
            p.name()
        )
    };
    s.write(&stack(&img.app_v1));
    assert_eq!(s.apply().code, 0);
    assert_eq!(http(port), "v1");
    s.write(&stack(&img.app_v2));
    assert_eq!(s.apply().code, 0);
    assert_eq!(http(port), "v2");
    s.write(&stack(&img.app_crash));
    let r = s.apply();
    assert_eq!(r.code, 1, "{r:?}");
    assert!(
        r.stdout.contains("the old replica was restarted"),
        "{}",
        r.stdout
    );
    assert!(wait_until(
        Duration::from_secs(10),
        Duration::from_millis(200),
        || http_try(port).as_deref() == Some("v2")
    ));
    assert_eq!(containers(&p, "proxy"), expect(&p, "proxy", &img.app_v2, 1));
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn http_try(port: u16) -> Option<String> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    s.write_all(b"GET / HTTP/1.0\r\nHost: x\r\n\r\n").ok()?;
    let mut buf = String::new();
    s.read_to_string(&mut buf).ok()?;
    buf.split("\r\n\r\n").nth(1).map(|b| b.trim().to_string())
}

fn http(port: u16) -> String {
    let mut last = None;
    for _ in 0..50 {
        last = http_try(port);
        if last.is_some() {
            break;
        }
        thread::sleep(Duration::from_millis(100));
    }
    last.expect("the published port answers")
}

#[test]
fn a_host_runs_what_is_placed_on_it_and_prunes_what_moved_away() {
    let p = Project::new("placement");
    let img = images();
    let s = Stack::new();
    s.write(&format!(
        "project: {n}
services:
  api:
    image: {v1}
    update: {{ monitor: 0s }}
  web:
    image: {v1}
    placement: {{ hosts: [edge-1] }}
    update: {{ monitor: 0s }}
  batch:
    image: {v1}
    placement: {{ labels: {{ role: batch }} }}
    update: {{ monitor: 0s }}
",
        n = p.name(),
        v1 = img.app_v1
    ));
    let mut args = s.apply_args();
    args.extend(["--host", "core-1", "--host-label", "role=batch"].map(String::from));
    let r = berth(&args);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(containers(&p, "api"), expect(&p, "api", &img.app_v1, 1));
    assert_eq!(containers(&p, "batch"), expect(&p, "batch", &img.app_v1, 1));
    assert!(containers(&p, "web").is_empty());
    let host = docker_stdout([
        "inspect",
        "-f",
        "{{index .Config.Labels \"berth.host\"}}",
        &format!("{}-api-1", p.name()),
    ]);
    assert_eq!(host, "core-1");
    // The same engine answering as edge-1 without the label: web comes, batch goes.
    let mut args = s.apply_args();
    args.extend(["--host", "edge-1"].map(String::from));
    let r = berth(&args);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(
        r.stdout
            .contains("✓ batch  remove: service is no longer in the desired state of this host"),
        "{}",
        r.stdout
    );
    assert_eq!(containers(&p, "web"), expect(&p, "web", &img.app_v1, 1));
    assert!(containers(&p, "batch").is_empty());
}

/// Creates a network through the engine's API without its duplicate-name check, as a
/// create sent by an apply that was then killed can still finish after the next apply
/// made the network.
fn create_twin_network(name: &str, project: &str) {
    use std::io::{Read, Write};
    let body = format!(
        r#"{{"Name":"{name}","Driver":"bridge","CheckDuplicate":false,"Labels":{{"berth.project":"{project}"}}}}"#
    );
    let mut s = std::os::unix::net::UnixStream::connect("/var/run/docker.sock").unwrap();
    write!(
        s,
        "POST /v1.41/networks/create HTTP/1.0\r\nHost: docker\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut reply = String::new();
    s.read_to_string(&mut reply).unwrap();
    assert!(reply.starts_with("HTTP/1.0 201"), "{reply}");
}

#[test]
fn a_second_network_of_the_same_name_is_removed_before_anything_starts_on_it() {
    let p = Project::new("twins");
    let img = images();
    let s = Stack::new();
    s.write(&two_services(p.name(), &img.app_v1, 1, &img.app_v1));
    assert_eq!(s.apply().code, 0);
    let net = format!("{}_default", p.name());
    create_twin_network(&net, p.name());
    let count = || {
        docker_stdout(["network", "ls", "-q", "--filter", &format!("name=^{net}$")])
            .lines()
            .count()
    };
    assert_eq!(count(), 2);
    s.write(&two_services(p.name(), &img.app_v2, 1, &img.app_v1));
    let r = s.apply();
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(count(), 1);
    assert_eq!(containers(&p, "api"), expect(&p, "api", &img.app_v2, 1));
}
