//! Every rule of desired-state format v1, each with a failing example, its exact message
//! and its location.

use super::*;

const GOOD: &str = "\
project: shop
services:
  api:
    image: registry.example.com/api:sha-1111111
    health: { test: [\"CMD\", \"true\"] }
";

fn load(files: &[(&str, &str)]) -> Loaded {
    let config = if files.len() == 1 { files[0].0 } else { "" };
    load_at(config, files)
}

fn load_at(config: &str, files: &[(&str, &str)]) -> Loaded {
    let mut tree = MemTree::new();
    for (p, c) in files {
        tree = tree.with(p, c.as_bytes());
    }
    load_tree(&tree, config).expect("readable")
}

/// The headlines of every diagnostic of a single `berth.yaml`.
fn check(yaml: &str) -> Vec<String> {
    load(&[("berth.yaml", yaml)])
        .diagnostics
        .0
        .iter()
        .map(|d| d.headline())
        .collect()
}

fn errors(yaml: &str) -> Vec<String> {
    load(&[("berth.yaml", yaml)])
        .diagnostics
        .errors()
        .map(|d| d.headline())
        .collect()
}

#[test]
fn the_reference_stack_is_valid() {
    let loaded = load_path(std::path::Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/desired"
    )))
    .unwrap();
    assert!(loaded.diagnostics.0.is_empty(), "{}", loaded.diagnostics);
    let spec = loaded.spec.unwrap();
    assert_eq!(spec.project, "shop");
    assert_eq!(
        spec.services.keys().collect::<Vec<_>>(),
        ["api", "proxy", "web", "worker"]
    );
    assert_eq!(spec.services["worker"].image, spec.services["api"].image);
    assert_eq!(spec.services["proxy"].update.order, UpdateOrder::StopFirst);
    assert_eq!(spec.migrations["migrate"].gates, ["api", "worker"]);
    // The seed's `migrate` service: profiled out of `docker compose up`, a migration
    // on the API's image for berth.
    let job = spec.migrations["migrate"].job.as_ref().unwrap();
    assert_eq!(job.image, spec.services["api"].image);
    assert_eq!(spec.services["api"].replicas, 2);
    assert_eq!(spec.services["worker"].replicas, 3);
    assert_eq!(
        spec.volumes.keys().collect::<Vec<_>>(),
        ["caddy_config", "caddy_data"]
    );
    let MountSource::RepoDir(d) = &spec.services["proxy"].volumes[1].source else {
        panic!("repo dir")
    };
    assert_eq!(d.path, "desired/static");
    let MountSource::RepoFile(f) = &spec.services["proxy"].volumes[0].source else {
        panic!("repo file")
    };
    assert_eq!(f.path, "desired/Caddyfile");
    assert!(std::str::from_utf8(&f.content)
        .unwrap()
        .contains("reverse_proxy api:8000"));
}

#[test]
fn defaults_are_filled_in() {
    let spec = load(&[("berth.yaml", GOOD)]).spec.unwrap();
    let api = &spec.services["api"];
    assert_eq!(api.replicas, 1);
    assert_eq!(api.networks, ["default"]);
    assert_eq!(api.stop_grace, std::time::Duration::from_secs(10));
    assert_eq!(api.update.order, UpdateOrder::StartFirst);
    assert_eq!(api.update.parallelism, 1);
    assert_eq!(api.update.monitor, std::time::Duration::from_secs(5));
    assert_eq!(api.update.deadline, std::time::Duration::from_secs(120));
    assert_eq!(api.update.on_failure, OnFailure::Rollback);
    assert!(spec.networks.contains_key("default"));
}

#[test]
fn unknown_key_suggests_the_nearest() {
    assert_eq!(
        errors(&format!("{GOOD}    replica: 2\n")),
        ["berth.yaml:6:5: error: services.api.replica: unknown key `replica`; did you mean `replicas`?"]
    );
}

#[test]
fn unknown_key_without_a_near_one_lists_the_valid_ones() {
    assert_eq!(
        errors(&format!("{GOOD}    update: {{ strategy: fast }}\n")),
        ["berth.yaml:6:15: error: services.api.update.strategy: unknown key `strategy`; valid keys: `order`, `parallelism`, `monitor`, `deadline`, `on_failure`, `max_hosts`, `canary`"]
    );
}

#[test]
fn unknown_top_level_key() {
    assert_eq!(
        errors(&format!("{GOOD}servics: {{}}\n")),
        ["berth.yaml:6:1: error: servics: unknown key `servics`; did you mean `services`?"]
    );
}

#[test]
fn image_must_be_pinned() {
    let yaml = "project: shop\nservices:\n  a:\n    image: caddy\n  b:\n    image: caddy:latest\n";
    assert_eq!(
        errors(yaml),
        [
            "berth.yaml:4:12: error: services.a.image: image `caddy` is not pinned (no tag means `latest`, which moves); use an explicit tag such as `caddy:sha-<git sha>` or a digest",
            "berth.yaml:6:12: error: services.b.image: image `caddy:latest` is not pinned (`latest` moves); use an explicit tag such as `caddy:sha-<git sha>` or a digest",
        ]
    );
}

#[test]
fn image_is_required() {
    assert_eq!(
        errors("project: shop\nservices:\n  api:\n    replicas: 1\n"),
        ["berth.yaml:3:3: error: services.api: `image` is missing; add a pinned image such as `registry.example.com/app:sha-3f2c1e9`"]
    );
}

#[test]
fn names_are_unique_across_files() {
    let other = "services:\n  api:\n    image: x/api:v2\n";
    let loaded = load(&[("a.yaml", GOOD), ("b.yaml", other)]);
    let errs: Vec<String> = loaded.diagnostics.errors().map(|d| d.headline()).collect();
    assert_eq!(errs, ["b.yaml:2:3: error: services.api: `services.api` is already defined in a.yaml; a name is defined once"]);
}

#[test]
fn files_of_a_directory_are_merged() {
    let other =
        "services:\n  web:\n    image: x/web:v2\n    health: { test: [\"CMD\", \"true\"] }\n";
    let loaded = load(&[
        ("a.yaml", GOOD),
        ("b.yaml", other),
        ("files/ignored.txt", "x"),
    ]);
    assert!(loaded.diagnostics.0.is_empty(), "{}", loaded.diagnostics);
    assert_eq!(loaded.spec.unwrap().services.len(), 2);
}

#[test]
fn a_key_twice_in_one_mapping_is_an_error() {
    assert_eq!(
        errors(&format!("{GOOD}    image: x/api:v2\n")),
        ["berth.yaml:6:5: error: services.api.image: key `image` is written twice in this mapping (first on line 4); keep one"]
    );
}

#[test]
fn depends_on_names_existing_services() {
    assert_eq!(
        errors(&format!("{GOOD}    depends_on: [wbe]\n  web:\n    image: x/web:v1\n")),
        ["berth.yaml:6:18: error: services.api.depends_on[0]: `depends_on` names `wbe`, which is not a service; did you mean `web`?"]
    );
}

#[test]
fn depends_on_forms_no_cycle() {
    let yaml = "project: shop\nservices:\n  a:\n    image: x/a:v1\n    depends_on: [b]\n  b:\n    image: x/b:v1\n    depends_on: [c]\n  c:\n    image: x/c:v1\n    depends_on: [a]\n";
    assert_eq!(
        errors(yaml),
        ["berth.yaml:5:5: error: services.a.depends_on: `depends_on` forms a cycle: a → b → c → a; remove one of these dependencies"]
    );
}

#[test]
fn a_service_cannot_depend_on_itself() {
    assert_eq!(
        errors(&format!("{GOOD}    depends_on: [api]\n")),
        ["berth.yaml:6:18: error: services.api.depends_on[0]: service `api` depends on itself; remove it from `depends_on`"]
    );
}

#[test]
fn migration_from_and_gates_name_existing_services() {
    let yaml = format!("{GOOD}migrations:\n  migrate:\n    from: apj\n    command: [\"true\"]\n    gates: [api, wrker]\n");
    assert_eq!(
        errors(&yaml),
        [
            "berth.yaml:8:11: error: migrations.migrate.from: `apj` is not a service; did you mean `api`?",
            "berth.yaml:10:18: error: migrations.migrate.gates[1]: `wrker` is not a service",
        ]
    );
}

#[test]
fn migration_needs_a_command() {
    assert_eq!(
        errors(&format!("{GOOD}migrations:\n  migrate:\n    from: api\n")),
        ["berth.yaml:7:3: error: migrations.migrate: `command` is missing; e.g. [\"alembic\", \"upgrade\", \"head\"]"]
    );
}

#[test]
fn host_ports_do_not_collide() {
    let yaml = "project: shop\nservices:\n  a:\n    image: x/a:v1\n    ports: [\"80:80\"]\n  b:\n    image: x/b:v1\n    ports: [\"127.0.0.1:80:8080\", \"53:53/udp\", \"53:53\"]\n";
    assert_eq!(
        errors(yaml),
        ["berth.yaml:8:13: error: services.b.ports[0]: host port 80/tcp is already published by service `a`; pick another host port"]
    );
}

#[test]
fn explicit_start_first_publishes_no_host_port() {
    let yaml = "project: shop\nservices:\n  proxy:\n    image: caddy:2.7\n    ports: [\"80:80\"]\n    update: { order: start-first }\n";
    assert_eq!(
        errors(yaml),
        ["berth.yaml:6:22: error: services.proxy.update.order: `start-first` cannot be used by a service that publishes host ports (two replicas cannot bind one port); use `stop-first` or publish through the proxy"]
    );
}

#[test]
fn publishing_defaults_to_stop_first() {
    let yaml = "project: shop\nservices:\n  proxy:\n    image: caddy:2.7\n    ports: [\"80:80\"]\n";
    let spec = load(&[("berth.yaml", yaml)]).spec.unwrap();
    assert_eq!(spec.services["proxy"].update.order, UpdateOrder::StopFirst);
}

#[test]
fn a_published_port_allows_one_replica() {
    let yaml = "project: shop\nservices:\n  proxy:\n    image: caddy:2.7\n    replicas: 2\n    ports: [\"80:80\"]\n";
    assert_eq!(
        errors(yaml),
        ["berth.yaml:5:15: error: services.proxy.replicas: `proxy` publishes host port 80 and has 2 replicas, which would all bind it; use 1 replica, or publish through the proxy"]
    );
}

#[test]
fn malformed_ports() {
    let yaml = format!("{GOOD}    ports: [\"80\", \"0:80\", \"80:80/sctp\"]\n");
    assert_eq!(
        errors(&yaml),
        [
            "berth.yaml:6:13: error: services.api.ports[0]: port `80` must be `HOST:CONTAINER` (e.g. `80:80`), optionally with an address (`127.0.0.1:8080:80`) and `/udp`",
            "berth.yaml:6:19: error: services.api.ports[1]: host port `0` in `0:80` must be a number from 1 to 65535",
            "berth.yaml:6:27: error: services.api.ports[2]: port `80:80/sctp` has unknown protocol `sctp`; use `tcp` or `udp`",
        ]
    );
}

#[test]
fn durations_sizes_and_counts_are_in_range() {
    let yaml = format!(
        "{GOOD}    replicas: -1\n    stop_grace: 10\n    resources: {{ memory: 1m, cpus: 0 }}\n    update: {{ parallelism: 0, monitor: 2h, deadline: 5x }}\n"
    );
    assert_eq!(
        errors(&yaml),
        [
            "berth.yaml:6:15: error: services.api.replicas: -1 is out of range; use a whole number from 0 to 1000",
            "berth.yaml:7:17: error: services.api.stop_grace: duration `10` has no unit; write e.g. `10s` (units: ms, s, m, h)",
            "berth.yaml:8:26: error: services.api.resources.memory: memory limit is out of range; use 6m to 1t (Docker's minimum is 6m)",
            "berth.yaml:8:36: error: services.api.resources.cpus: cpus is out of range; use 0.01 to 1024 (cores)",
            "berth.yaml:9:28: error: services.api.update.parallelism: 0 is out of range; use a whole number from 1 to 100",
            "berth.yaml:9:40: error: services.api.update.monitor: duration `2h` is out of range; use 0s to 1h",
            "berth.yaml:9:54: error: services.api.update.deadline: unknown unit `x` in duration `5x`; units: ms, s, m, h",
        ]
    );
}

#[test]
fn wrong_types_are_named() {
    let yaml = format!("{GOOD}    replicas: three\n    command: uvicorn app:app\n    env: [A]\n");
    assert_eq!(
        errors(&yaml),
        [
            "berth.yaml:6:15: error: services.api.replicas: expected a whole number from 0 to 1000; found the string `three`",
            "berth.yaml:7:14: error: services.api.command: `command` must be a list such as [\"uvicorn\", \"app:app\"]; found a string; write it as a list, e.g. [\"uvicorn\", \"app:app\"]",
            "berth.yaml:8:10: error: services.api.env: `env` must be a mapping such as { LOG_LEVEL: info }; found a list",
        ]
    );
}

#[test]
fn unknown_update_order_suggests() {
    assert_eq!(
        errors(&format!("{GOOD}    update: {{ order: start-frist }}\n")),
        ["berth.yaml:6:22: error: services.api.update.order: unknown update order the string `start-frist`; did you mean `start-first`? use `start-first` or `stop-first`"]
    );
}

#[test]
fn repo_files_exist_and_stay_inside() {
    let yaml = format!(
        "{GOOD}    volumes: [\"./files/missing.conf:/etc/a\", \"../../etc/passwd:/etc/b\"]\n"
    );
    let loaded = load(&[("desired/berth.yaml", &yaml)]);
    let errs: Vec<String> = loaded.diagnostics.errors().map(|d| d.headline()).collect();
    assert_eq!(
        errs,
        [
            "desired/berth.yaml:6:15: error: services.api.volumes[0]: `./files/missing.conf` does not exist in the repository (looked for `desired/files/missing.conf`); commit it or fix the path",
            "desired/berth.yaml:6:46: error: services.api.volumes[1]: `../../etc/passwd` leads outside the repository; mount files from inside it",
        ]
    );
}

#[test]
fn repo_files_above_the_config_dir_are_inside_the_repository() {
    let yaml = format!("{GOOD}    volumes: [\"../shared/app.conf:/etc/app.conf:ro\"]\n");
    let loaded = load_at(
        "desired/berth.yaml",
        &[("desired/berth.yaml", &yaml), ("shared/app.conf", "x=1")],
    );
    assert!(!loaded.diagnostics.has_errors(), "{}", loaded.diagnostics);
}

#[test]
fn named_volumes_are_declared() {
    let yaml =
        format!("{GOOD}    volumes: [\"dta:/data\", \"data:relative\"]\nvolumes:\n  data: {{}}\n");
    assert_eq!(
        errors(&yaml),
        [
            "berth.yaml:6:15: error: services.api.volumes[0]: volume `dta` is not declared; did you mean `data`?",
            "berth.yaml:6:28: error: services.api.volumes[1]: mount target `relative` must be an absolute path in the container",
        ]
    );
}

#[test]
fn networks_are_declared() {
    let yaml = format!("{GOOD}    networks: [frontend]\nnetworks:\n  backend: {{}}\n");
    assert_eq!(
        errors(&yaml),
        ["berth.yaml:6:16: error: services.api.networks[0]: network `frontend` is not declared; declare it under `networks:` (declared: backend)"]
    );
}

#[test]
fn env_file_is_absolute() {
    assert_eq!(
        errors(&format!("{GOOD}    env_file: secrets/api.env\n")),
        ["berth.yaml:6:15: error: services.api.env_file: env_file `secrets/api.env` must be an absolute path on the host (e.g. `/etc/berth/<project>/api.env`); secrets do not live in the repository"]
    );
}

#[test]
fn project_is_required_and_well_formed() {
    assert_eq!(
        errors("services:\n  api:\n    image: x/api:v1\n"),
        ["berth.yaml:1:1: error: `project` is missing; add e.g. `project: shop` (it prefixes every container, network and volume)"]
    );
    assert_eq!(
        errors("project: Shop_1\nservices:\n  api:\n    image: x/api:v1\n"),
        ["berth.yaml:1:10: error: project: project name `Shop_1` is invalid; use a lowercase letter then up to 30 lowercase letters, digits or `-` (e.g. `shop`)"]
    );
}

#[test]
fn service_names_are_container_names() {
    assert_eq!(
        errors("project: shop\nservices:\n  Api_1:\n    image: x/api:v1\n"),
        ["berth.yaml:3:3: error: services.Api_1: service name `Api_1` is invalid; use a lowercase letter then up to 30 lowercase letters, digits or `-` (it becomes a container name and a network alias)"]
    );
}

#[test]
fn syntax_errors_have_a_position() {
    let e = errors("project: shop\nservices:\n  api: [unclosed\n");
    assert_eq!(e.len(), 1);
    assert!(
        e[0].starts_with("berth.yaml:4:1: error: invalid YAML: "),
        "{e:?}"
    );
}

#[test]
fn health_test_form() {
    assert_eq!(
        errors(&GOOD.replace("[\\\"CMD\\\", \\\"true\\\"]", "[\\\"curl\\\"]").replace("[\"CMD\", \"true\"]", "[\"curl\"]")),
        ["berth.yaml:5:21: error: services.api.health.test: `health.test` must start with \"CMD\" or \"CMD-SHELL\" followed by the command, or be [\"NONE\"]"]
    );
}

#[test]
fn three_mistakes_are_all_reported() {
    let yaml = "project: shop\nservices:\n  api:\n    image: x/api:latest\n    replica: 2\n    update: { order: sideways }\n";
    assert_eq!(
        errors(yaml),
        [
            "berth.yaml:4:12: error: services.api.image: image `x/api:latest` is not pinned (`latest` moves); use an explicit tag such as `x/api:sha-<git sha>` or a digest",
            "berth.yaml:5:5: error: services.api.replica: unknown key `replica`; did you mean `replicas`?",
            "berth.yaml:6:22: error: services.api.update.order: unknown update order the string `sideways`; use `start-first` or `stop-first`",
        ]
    );
}

#[test]
fn a_service_without_health_gets_a_warning() {
    let yaml = "project: shop\nservices:\n  web:\n    image: x/web:v1\n";
    assert_eq!(
        check(yaml),
        ["berth.yaml:3:3: warning: services.web: no `health` check; berth uses the image's HEALTHCHECK, and a replica of an image without one counts healthy after `update.monitor` of running"]
    );
    assert!(load(&[("berth.yaml", yaml)]).spec.is_some());
}

#[test]
fn anchors_and_aliases_share_one_image_line() {
    let yaml = "project: shop\nservices:\n  api:\n    image: &app x/api:sha-1\n    health: { test: [\"NONE\"] }\n  worker:\n    image: *app\n    health: { test: [\"NONE\"] }\n";
    let spec = load(&[("berth.yaml", yaml)]).spec.unwrap();
    assert_eq!(spec.services["worker"].image.full, "x/api:sha-1");
    assert_eq!(spec.services["worker"].health, Health::Disabled);
}

#[test]
fn oversized_files_are_refused() {
    let big = format!("{GOOD}# {}\n", "x".repeat(super::load::MAX_YAML_BYTES));
    assert_eq!(
        errors(&big),
        ["berth.yaml:1:1: error: the file is larger than 1024 KiB; split it or trim it"]
    );
}

#[test]
fn host_paths_need_the_hosts_allowance() {
    let yaml = format!("{GOOD}    volumes: [\"/srv/data:/data\", \"/var/run/docker.sock:/var/run/docker.sock\", \"/srv/../etc:/etc2\"]\n");
    assert_eq!(
        errors(&yaml),
        [
            "berth.yaml:6:15: error: services.api.volumes[0]: host path `/srv/data` is outside the host paths this host allows (no host path is allowed); use a named volume, or the host's operator can allow it with `--allow-host-path PREFIX`",
            "berth.yaml:6:34: error: services.api.volumes[1]: `/var/run/docker.sock` is a runtime socket that hands the host to the container; the host's operator can allow it by naming it: `--allow-host-path /var/run/docker.sock`",
            "berth.yaml:6:79: error: services.api.volumes[2]: host path `/srv/../etc` must not contain `.` or `..`; write it normalized",
        ]
    );
    let tree = MemTree::new().with("berth.yaml", yaml.as_bytes());
    let opts = LoadOptions {
        allow_host_paths: vec![
            AllowedHostPath::writable("/srv"),
            AllowedHostPath::writable("/var/run/docker.sock"),
        ],
        check_on_host: false,
        host_env: None,
        project: None,
    };
    let loaded = load_tree_with(&tree, "berth.yaml", &opts).unwrap();
    let errs: Vec<String> = loaded.diagnostics.errors().map(|d| d.headline()).collect();
    assert_eq!(errs, ["berth.yaml:6:79: error: services.api.volumes[2]: host path `/srv/../etc` must not contain `.` or `..`; write it normalized"]);
    // Allowing `/` does not allow the socket by accident.
    let opts = LoadOptions {
        allow_host_paths: vec![AllowedHostPath::writable("/")],
        check_on_host: false,
        host_env: None,
        project: None,
    };
    let yaml = format!("{GOOD}    volumes: [\"/var/run/docker.sock:/s\"]\n");
    let tree = MemTree::new().with("berth.yaml", yaml.as_bytes());
    assert!(load_tree_with(&tree, "berth.yaml", &opts)
        .unwrap()
        .diagnostics
        .has_errors());
}

#[test]
fn placement_names_hosts_or_labels() {
    let yaml = format!("{GOOD}    placement: {{ hosts: [web-1], labels: {{ role: web }} }}\n");
    let spec = load(&[("berth.yaml", &yaml)]).spec.unwrap();
    let p = &spec.services["api"].placement;
    let web = std::collections::BTreeMap::from([("role".to_string(), "web".to_string())]);
    assert!(p.admits("web-1", &web));
    assert!(!p.admits("web-2", &web));
    assert!(!p.admits("web-1", &Default::default()));
    assert!(Placement::default().admits("anything", &Default::default()));
    assert_eq!(
        errors(&format!("{GOOD}    placement: {{ host: [a], labels: [x] }}\n")),
        [
            "berth.yaml:6:18: error: services.api.placement.host: unknown key `host`; did you mean `hosts`?",
            "berth.yaml:6:37: error: services.api.placement.labels: `placement.labels` must be a mapping such as { role: web }; found a list",
        ]
    );
    assert_eq!(
        errors(&format!("{GOOD}    placement: {{ hosts: [] }}\n")),
        ["berth.yaml:6:25: error: services.api.placement.hosts: `placement.hosts` is empty, so no host would run the service; leave it out for every host, or set `replicas: 0`"]
    );
}

#[test]
fn fleet_update_keys_and_run_on() {
    let yaml = format!("{GOOD}    update: {{ max_hosts: 1, canary: web-1 }}\nmigrations:\n  migrate:\n    from: api\n    command: [\"true\"]\n    run_on: db-1\n");
    let spec = load(&[("berth.yaml", &yaml)]).spec.unwrap();
    assert_eq!(spec.services["api"].update.max_hosts, Some(1));
    assert_eq!(spec.services["api"].update.canary.as_deref(), Some("web-1"));
    assert_eq!(spec.migrations["migrate"].run_on.as_deref(), Some("db-1"));
    let plain = load(&[("berth.yaml", GOOD)]).spec.unwrap();
    assert_eq!(plain.services["api"].update.max_hosts, None);
    assert_eq!(
        errors(&format!("{GOOD}    update: {{ max_hosts: 0, canary: [a] }}\n")),
        [
            "berth.yaml:6:26: error: services.api.update.max_hosts: 0 is out of range; use a whole number from 1 to 1000",
            "berth.yaml:6:37: error: services.api.update.canary: expected a string such as `web-1`; found a list",
        ]
    );
    assert_eq!(
        errors(&format!("{GOOD}    placement: {{ hosts: [web-1] }}\n    update: {{ canary: web-2 }}\n")),
        ["berth.yaml:7:23: error: services.api.update.canary: canary host `web-2` is not in `placement.hosts`, so it never runs `api` and the other hosts would wait for it forever; name one of web-1"]
    );
}

#[test]
fn external_objects_are_flagged_and_must_say_true_or_false() {
    let ok = "project: shop\nnetworks:\n  edge: { external: true }\n  own: {}\nvolumes:\n  data: { external: false }\nservices:\n  api:\n    image: a:1\n";
    let spec = load_tree(
        &MemTree::new().with("berth.yaml", ok.as_bytes()),
        "berth.yaml",
    )
    .unwrap()
    .spec
    .unwrap();
    assert!(spec.networks["edge"].external);
    assert!(!spec.networks["own"].external);
    assert!(!spec.volumes["data"].external);
    assert_eq!(
        errors("project: shop\nvolumes:\n  data: { external: yes please }\nservices:\n  api:\n    image: a:1\n"),
        ["berth.yaml:3:21: error: volumes.data.external: expected `true` or `false`; found a string"]
    );
}
