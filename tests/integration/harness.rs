//! Checks of the integration-test support itself: the loopback registry, the
//! test images and their behaviour, and the cleanup guard.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use crate::support::{
    container_exists, container_health, container_status, docker, docker_ok, docker_stdout,
    http_get_via_container, image_id, images, registry, wait_for, wait_healthy, wait_until,
    Project, Registry,
};

/// Runs an image detached on `network` with `alias`, labelled for `project`.
fn run_on(project: &Project, network: &str, alias: &str, image: &str) -> String {
    let name = project.child(alias);
    docker([
        "run",
        "-d",
        "--name",
        &name,
        "--label",
        &project.label(),
        "--network",
        network,
        "--network-alias",
        alias,
        image,
    ]);
    name
}

fn exit_code(name: &str) -> i64 {
    docker_stdout(["inspect", "--format", "{{.State.ExitCode}}", name])
        .parse()
        .expect("exit code")
}

fn valid_project_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some('a'..='z'))
        && name.len() <= 31
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

#[test]
fn registry_answers_on_loopback() {
    let r = registry();
    assert!(r.addr().starts_with("127.0.0.1:"), "{}", r.addr());
    assert_eq!(r.v2_status(None), Some(200));
    assert!(r.is_running());
}

#[test]
fn images_are_distinct_and_stored_in_the_registry() {
    let imgs = images();
    let prefix = format!("{}/berth-test/", imgs.registry);
    let ids: BTreeSet<String> = imgs.all().iter().map(|r| image_id(r)).collect();
    assert_eq!(
        ids.len(),
        imgs.all().len(),
        "image IDs must differ: {ids:?}"
    );
    for reference in imgs.all() {
        assert!(reference.starts_with(&prefix), "{reference}");
        let repo_tag = imgs.repo_tag(reference);
        let (repo, tag) = repo_tag.rsplit_once(':').expect("tagged reference");
        assert!(
            registry().has_manifest(repo, tag),
            "{reference} missing in registry"
        );
        assert!(imgs.digest(reference).contains("@sha256:"));
    }
}

#[test]
fn an_image_removed_locally_pulls_back_from_the_registry() {
    let imgs = images();
    // A repository of its own: other tests run the shared tags meanwhile.
    let copy = registry().push_copy(
        &imgs.tool_v2,
        "berth-test/pullcheck",
        &format!("p{}", std::process::id()),
    );
    let id = image_id(&copy);
    docker(["rmi", &copy]);
    assert!(!docker_ok(["image", "inspect", &copy]));
    docker(["pull", "-q", &copy]);
    assert_eq!(image_id(&copy), id);
}

#[test]
fn tool_images_differ_by_version_and_stop_at_once() {
    let imgs = images();
    for (image, version) in [(&imgs.tool_v1, "tool:v1\n"), (&imgs.tool_v2, "tool:v2\n")] {
        let out = docker(["run", "--rm", image, "cat", "/version"]);
        assert_eq!(String::from_utf8_lossy(&out.stdout), version);
    }
    let p = Project::new("tool");
    let name = p.child("sleeper");
    docker(["run", "-d", "--name", &name, &imgs.tool_v1]);
    assert_eq!(container_status(&name).as_deref(), Some("running"));
    let t = Instant::now();
    docker(["stop", &name]);
    assert!(t.elapsed() < Duration::from_secs(3), "{:?}", t.elapsed());
    assert_eq!(exit_code(&name), 0);
}

#[test]
fn app_v1_becomes_healthy_serves_v1_and_stops_at_once() {
    let imgs = images();
    let p = Project::new("healthy");
    let net = p.create_network("net");
    let started = Instant::now();
    let name = run_on(&p, &net, "web", &imgs.app_v1);
    assert!(
        wait_healthy(&name, Duration::from_secs(10)),
        "app:v1 not healthy: {:?}",
        container_health(&name)
    );
    eprintln!("app:v1 healthy {:?} after `docker run`", started.elapsed());
    assert_eq!(
        http_get_via_container(&net, "http://web:8000/").as_deref(),
        Ok("v1\n")
    );
    assert_eq!(
        p.http_get(&net, "http://web:8000/health").as_deref(),
        Ok("ok")
    );
    let t = Instant::now();
    docker(["stop", &name]);
    assert!(t.elapsed() < Duration::from_secs(3), "{:?}", t.elapsed());
    assert_eq!(exit_code(&name), 0);
}

#[test]
fn app_versions_serve_their_version() {
    let imgs = images();
    let p = Project::new("versions");
    let net = p.create_network("net");
    for (alias, image) in [("v2", &imgs.app_v2), ("v3", &imgs.app_v3)] {
        run_on(&p, &net, alias, image);
    }
    for alias in ["v2", "v3"] {
        let body = wait_for(Duration::from_secs(10), Duration::from_millis(200), || {
            p.http_get(&net, &format!("http://{alias}:8000/")).ok()
        });
        assert_eq!(body, Some(format!("{alias}\n")));
    }
}

#[test]
fn app_unhealthy_turns_unhealthy_and_keeps_running() {
    let p = Project::new("unhealthy");
    let net = p.create_network("net");
    let name = run_on(&p, &net, "web", &images().app_unhealthy);
    let started = Instant::now();
    assert!(
        wait_until(Duration::from_secs(15), Duration::from_millis(100), || {
            container_health(&name).as_deref() == Some("unhealthy")
        }),
        "health: {:?}",
        container_health(&name)
    );
    eprintln!(
        "app:unhealthy unhealthy {:?} after start",
        started.elapsed()
    );
    assert_eq!(container_status(&name).as_deref(), Some("running"));
    assert_eq!(
        p.http_get(&net, "http://web:8000/").as_deref(),
        Ok("unhealthy\n")
    );
}

#[test]
fn app_crash_exits_with_code_one() {
    let p = Project::new("crash");
    let name = p.child("app");
    docker(["run", "-d", "--name", &name, &images().app_crash]);
    assert!(wait_until(
        Duration::from_secs(10),
        Duration::from_millis(50),
        || container_status(&name).as_deref() == Some("exited")
    ));
    assert_eq!(exit_code(&name), 1);
    let logs = docker(["logs", &name]);
    assert_eq!(String::from_utf8_lossy(&logs.stdout), "boom\n");
}

#[test]
fn app_nohealth_has_no_health_check_and_serves() {
    let p = Project::new("nohealth");
    let net = p.create_network("net");
    let name = run_on(&p, &net, "web", &images().app_nohealth);
    let body = wait_for(Duration::from_secs(10), Duration::from_millis(200), || {
        p.http_get(&net, "http://web:8000/").ok()
    });
    assert_eq!(body.as_deref(), Some("nohealth\n"));
    assert_eq!(container_health(&name), None);
    let healthcheck = docker_stdout([
        "image",
        "inspect",
        "--format",
        "{{json .Config.Healthcheck}}",
        &images().app_nohealth,
    ]);
    assert_eq!(healthcheck, "null");
}

#[test]
fn project_names_are_valid_and_unique() {
    let names: BTreeSet<String> = (0..1000)
        .map(|_| Project::unique_name("Some_Long-Prefix.Name"))
        .collect();
    assert_eq!(names.len(), 1000);
    for name in &names {
        assert!(valid_project_name(name), "{name}");
    }
    assert!(valid_project_name(&Project::unique_name("")));
    assert!(valid_project_name(Project::new("x").name()));
}

#[test]
fn project_guard_removes_what_it_owns() {
    let tool = &images().tool_v1;
    let p = Project::new("guard");
    let other = Project::new("guard");
    assert_ne!(p.name(), other.name());

    let label = p.label();
    let labelled_net = format!("{}_default", p.name());
    docker(["network", "create", "--label", &label, &labelled_net]);
    let labelled_vol = format!("{}_data", p.name());
    docker(["volume", "create", "--label", &label, &labelled_vol]);
    let own_net = p.create_network("hand-net");
    let own_vol = p.create_volume("hand-vol");
    let labelled = p.child("svc-1");
    docker([
        "run",
        "-d",
        "--name",
        &labelled,
        "--label",
        &label,
        "--network",
        &labelled_net,
        "-v",
        &format!("{labelled_vol}:/data"),
        tool,
    ]);
    // Named neither after the project nor with a name prefix: found by label.
    let anonymous = docker_stdout(["run", "-d", "--label", &label, tool]);
    let hand = p.child("hand");
    docker([
        "run",
        "-d",
        "--name",
        &hand,
        "--network",
        &own_net,
        "-v",
        &format!("{own_vol}:/data"),
        tool,
    ]);
    let survivor = other.child("svc-1");
    docker([
        "run",
        "-d",
        "--name",
        &survivor,
        "--label",
        &other.label(),
        tool,
    ]);
    assert_eq!(p.containers(), {
        let mut v = vec![
            labelled.clone(),
            docker_stdout(["inspect", "--format", "{{.Name}}", &anonymous])
                .trim_start_matches('/')
                .to_string(),
        ];
        v.sort();
        v
    });

    drop(p);
    for container in [&labelled, &anonymous, &hand] {
        assert!(!container_exists(container), "{container} left behind");
    }
    for net in [&labelled_net, &own_net] {
        assert!(!docker_ok(["network", "inspect", net]), "{net} left behind");
    }
    for vol in [&labelled_vol, &own_vol] {
        assert!(!docker_ok(["volume", "inspect", vol]), "{vol} left behind");
    }
    assert!(container_exists(&survivor));
    drop(other);
    assert!(!container_exists(&survivor));
}

#[test]
fn private_registry_keeps_content_across_stop_and_start() {
    let r = Registry::new();
    let addr = r.addr();
    let copy = r.push_copy(&images().tool_v1, "berth-test/keep", "v1");
    let id = image_id(&copy);

    r.stop();
    assert!(!r.is_running());
    docker(["rmi", &copy]);
    assert!(
        !docker_ok(["pull", "-q", &copy]),
        "pull worked with the registry down"
    );

    r.start();
    assert_eq!(r.addr(), addr);
    assert!(r.has_manifest("berth-test/keep", "v1"));
    docker(["pull", "-q", &copy]);
    assert_eq!(image_id(&copy), id);
}

#[test]
fn registry_with_htpasswd_requires_credentials() {
    let r = Registry::with_htpasswd(
        "berth:$2b$05$va3KKJnOP45oegz3.3jT6e8mZq2OPANFqXG3lDUvPF9Qyq1aHxXH.\n",
    );
    assert_eq!(r.v2_status(None), Some(401));
    assert_eq!(r.v2_status(Some(("berth", "wrong"))), Some(401));
    assert_eq!(r.v2_status(Some(("berth", "berth-secret"))), Some(200));
}

#[test]
fn client_loop_counts_successes_and_failures() {
    let p = Project::new("client");
    let net = p.create_network("net");
    let web = run_on(&p, &net, "web", &images().app_v1);
    assert!(wait_healthy(&web, Duration::from_secs(10)));

    let client = p.client_loop(&net, "web");
    assert!(client.wait_for_ok(Duration::from_secs(10)));
    assert!(wait_until(
        Duration::from_secs(10),
        Duration::from_millis(50),
        || client.report().ok >= 2
    ));
    docker(["rm", "-f", &web]);
    assert!(
        wait_until(Duration::from_secs(10), Duration::from_millis(100), || {
            client.report().fail > 0
        }),
        "no failure seen after the server went away"
    );
    let report = client.stop_report();
    assert!(report.ok >= 2, "{report:?}");
    assert!(report.fail >= 1, "{report:?}");
    assert_eq!(report.bodies.keys().collect::<Vec<_>>(), ["v1"]);
    assert_eq!(report.ok + report.fail, report.lines.len());
}
