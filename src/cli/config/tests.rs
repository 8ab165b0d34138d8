//! `berth config`: the rendered text of known inputs, secrets kept out, and every example
//! stack read back through the compose reader to the spec it came from.

use std::path::Path;

use super::text;
use crate::cli::Output;
use crate::executor::redact::looks_secret;
use crate::model::compose::render::MASK;
use crate::model::*;

/// Loads `files` (repository path, text) at `config`, the host's `.env` being `host`.
fn load(files: &[(&str, &str)], config: &str, host: Option<&str>) -> Spec {
    let mut tree = MemTree::new();
    for (p, c) in files {
        tree = tree.with(p, c.as_bytes());
    }
    let host = host.map(str::to_string);
    let opts = LoadOptions {
        host_env: Some(HostEnv::new(move |project| {
            Ok(host.clone().map(|text| HostDotEnv {
                path: format!("/etc/berth/{project}/.env"),
                text,
            }))
        })),
        allow_host_paths: vec![AllowedHostPath::writable("/")],
        check_on_host: false,
        project: None,
    };
    let loaded = load_tree_with(&tree, config, &opts).expect("readable");
    match loaded.spec {
        Some(s) => s,
        None => panic!("{config}: {}", loaded.diagnostics),
    }
}

const ANCHORS: &str = r#"name: shop
x-app: &app
  image: reg.example/api:${TAG}
  environment:
    LOG_LEVEL: ${LOG:-info}
    API_TOKEN: committed-token-value
    GREETING: "costs $$5"
  networks: [backend]
services:
  api:
    <<: *app
    command: uvicorn app:app --port ${PORT:-8000}
    deploy:
      replicas: ${R:-2}
      update_config: { monitor: 10s }
    healthcheck:
      test: curl -f http://localhost:8000/health
      interval: 5s
  worker:
    <<: *app
    stop_grace_period: 1m
    healthcheck: { disable: true }
    deploy:
      resources: { limits: { memory: 512m, cpus: "0.5" } }
      placement: { constraints: ["node.labels.role == batch"] }
  proxy:
    image: caddy:${CADDY}
    ports: ["127.0.0.1:${HTTP:-8080}:80", "443:443/udp"]
    depends_on: [api]
    networks: [backend, edge]
    volumes: ["./files/Caddyfile:/etc/caddy/Caddyfile:ro", "data:/data"]
    x-berth: { deadline: 3m, canary: web-1 }
networks:
  backend: {}
  edge: { external: true, name: edge-net }
volumes:
  data: {}
"#;

const ANCHORS_YAML: &str = r#"name: shop
networks:
  backend: {}
  edge-net:
    external: true
    name: edge-net
services:
  api:
    command:
    - uvicorn
    - app:app
    - --port
    - '8000'
    deploy:
      replicas: 2
      update_config:
        failure_action: rollback
        monitor: 10s
        order: start-first
        parallelism: 1
    environment:
      API_TOKEN: '***'
      GREETING: costs $$5
      LOG_LEVEL: info
    healthcheck:
      interval: 5s
      retries: 3
      start_period: 0s
      test:
      - CMD-SHELL
      - curl -f http://localhost:8000/health
      timeout: 30s
    image: reg.example/api:1.4.2
    networks:
    - backend
    stop_grace_period: 10s
    x-berth:
      deadline: 2m
  proxy:
    depends_on:
      api:
        condition: service_healthy
        required: true
    deploy:
      replicas: 1
      update_config:
        failure_action: rollback
        monitor: 5s
        order: stop-first
        parallelism: 1
    image: caddy:2.8
    networks:
    - backend
    - edge-net
    ports:
    - host_ip: 127.0.0.1
      protocol: tcp
      published: '8080'
      target: 80
    - protocol: udp
      published: '443'
      target: 443
    stop_grace_period: 10s
    volumes:
    - read_only: true
      source: ./files/Caddyfile
      target: /etc/caddy/Caddyfile
      type: bind
    - source: data
      target: /data
      type: volume
    x-berth:
      canary: web-1
      deadline: 3m
  worker:
    deploy:
      placement:
        constraints:
        - node.labels.role == batch
      replicas: 1
      resources:
        limits:
          cpus: 0.5
          memory: 512m
      update_config:
        failure_action: rollback
        monitor: 5s
        order: start-first
        parallelism: 1
    environment:
      API_TOKEN: '***'
      GREETING: costs $$5
      LOG_LEVEL: info
    healthcheck:
      disable: true
    image: reg.example/api:1.4.2
    networks:
    - backend
    stop_grace_period: 1m
    x-berth:
      deadline: 2m
volumes:
  data: {}
"#;

const V1: &str = r#"project: shop
networks: { backend: {} }
volumes: { pg: { external: true } }
services:
  api:
    image: reg.example/api:1.0
    env: { DATABASE_URL: "postgres://u:p@db/shop", MODE: prod }
    env_file: /etc/berth/shop/api.env
    expose: [8000]
    networks: [backend]
    volumes: ["pg:/var/lib/pg"]
    health: { test: ["CMD", "true"] }
    placement: { hosts: [web-1] }
    update: { max_hosts: 2 }
migrations:
  migrate: { from: api, command: ["migrate"], timeout: 5m }
"#;

const V1_YAML: &str = r#"name: shop
networks:
  backend: {}
services:
  api:
    deploy:
      placement:
        constraints:
        - node.hostname == web-1
      replicas: 1
      update_config:
        failure_action: rollback
        monitor: 5s
        order: start-first
        parallelism: 1
    env_file:
    - /etc/berth/shop/api.env
    environment:
      DATABASE_URL: '***'
      MODE: prod
    expose:
    - '8000'
    healthcheck:
      interval: 5s
      retries: 3
      start_period: 0s
      test:
      - CMD
      - 'true'
      timeout: 3s
    image: reg.example/api:1.0
    networks:
    - backend
    stop_grace_period: 10s
    volumes:
    - source: pg
      target: /var/lib/pg
      type: volume
    x-berth:
      deadline: 2m
      max_hosts: 2
volumes:
  pg:
    external: true
    name: pg
x-berth:
  migrations:
    migrate:
      command:
      - migrate
      from: api
      gates:
      - api
      timeout: 5m
"#;

/// What a case is, its files (repository path, text), its directory, the expected text.
type Case<'a> = (&'a str, &'a [(&'a str, &'a str)], &'a str, &'a str);

#[test]
fn known_inputs_render_to_known_compose_files() {
    let cases: &[Case] = &[
        (
            "anchors, merge keys and interpolation",
            &[
                ("stack/compose.yaml", ANCHORS),
                ("stack/.env", "TAG=1.4.2\nCADDY=2.8\n"),
                ("stack/files/Caddyfile", ":80\n"),
            ],
            "stack",
            ANCHORS_YAML,
        ),
        ("format v1", &[("stack/berth.yaml", V1)], "stack", V1_YAML),
    ];
    for (what, files, dir, expected) in cases {
        let spec = load(files, dir, None);
        let shown = text(&spec, dir, Output::Human);
        assert_eq!(shown, *expected, "{what}:\n{shown}");
        // The same twice: nothing depends on iteration order.
        assert_eq!(text(&spec, dir, Output::Human), shown, "{what}");
    }
}

#[test]
fn host_values_and_secret_names_never_appear() {
    let yaml = "name: shop\nservices:\n  api:\n    image: reg.example/api:${TAG}\n    environment:\n      DSN: \"postgres://app:${DB_PASS}@db/app\"\n      STRIPE_SECRET: sk_live_committed\n      PLAIN: visible\n    command: [\"run\", \"--key=${DB_PASS}\"]\n    healthcheck: { test: [\"CMD\", \"probe\", \"${DB_PASS}\"] }\n";
    let host = "DB_PASS=hunter2-host-only\nTAG=1.0\n";
    let spec = load(&[("stack/compose.yaml", yaml)], "stack", Some(host));
    assert!(spec.secrets.iter().any(|s| s == "hunter2-host-only"));
    for output in [Output::Human, Output::Json] {
        let shown = text(&spec, "stack", output);
        for secret in ["hunter2-host-only", "sk_live_committed"] {
            assert!(!shown.contains(secret), "{secret} in:\n{shown}");
        }
        assert!(shown.contains("visible"), "{shown}");
        // A value that read the host's `.env` is a secret whole, not only the part
        // the host gave.
        for whole in ["postgres://app:", "--key=", "reg.example/api"] {
            assert!(!shown.contains(whole), "{whole} in:\n{shown}");
        }
    }
}

#[test]
fn json_is_the_same_document() {
    let spec = load(
        &[
            ("stack/compose.yaml", ANCHORS),
            ("stack/.env", "TAG=1.4.2\nCADDY=2.8\n"),
            ("stack/files/Caddyfile", ":80\n"),
        ],
        "stack",
        None,
    );
    let yaml: serde_json::Value =
        serde_yaml::from_str(&text(&spec, "stack", Output::Human)).unwrap();
    let json: serde_json::Value =
        serde_json::from_str(&text(&spec, "stack", Output::Json)).unwrap();
    assert_eq!(yaml, json);
}

/// What reading the rendered file back must give: the spec as shown (secret-looking
/// environment values masked, `depends_on` sorted as the keys of a mapping), without
/// what compose cannot hold (format v1's migrations).
fn as_shown(spec: &Spec) -> Spec {
    let mut out = spec.clone();
    let jobs = out
        .migrations
        .values_mut()
        .filter_map(|m| m.job.as_deref_mut());
    for s in out.services.values_mut().chain(jobs) {
        s.depends_on.sort();
        for (k, v) in s.env.iter_mut() {
            if looks_secret(k) {
                *v = MASK.to_string();
            }
        }
    }
    // Format v1's migrations; a compose job is a service of the file.
    out.migrations.retain(|_, m| m.job.is_some());
    out.secrets.clear();
    out
}

/// Renders `spec` (loaded from `dir`), reads the text back as `<dir>/compose.yaml` next
/// to the repository files it mounts, and checks it gives the same spec.
fn round_trip(what: &str, spec: &Spec, dir: &str) {
    for output in [Output::Human, Output::Json] {
        let shown = text(spec, dir, output);
        let file = if dir.is_empty() {
            "compose.yaml".to_string()
        } else {
            format!("{dir}/compose.yaml")
        };
        let mut tree = MemTree::new().with(&file, shown.as_bytes());
        let jobs = spec.migrations.values().filter_map(|m| m.job.as_deref());
        for s in spec.services.values().chain(jobs) {
            for m in &s.volumes {
                match &m.source {
                    MountSource::RepoFile(f) => tree = tree.with(&f.path, f.content.to_vec()),
                    MountSource::RepoDir(d) => {
                        for (p, content) in &d.files {
                            tree = tree.with(&format!("{}/{p}", d.path), content.to_vec());
                        }
                    }
                    _ => {}
                }
            }
        }
        let opts = LoadOptions {
            allow_host_paths: vec![AllowedHostPath::writable("/")],
            ..LoadOptions::default()
        };
        let loaded = load_tree_with(&tree, &file, &opts).expect("readable");
        let Some(back) = loaded.spec else {
            panic!(
                "{what} ({output:?}) does not read back:\n{}\n{shown}",
                loaded.diagnostics
            );
        };
        assert_eq!(back, as_shown(spec), "{what} ({output:?}):\n{shown}");
        // Rendering is a fixed point from there on.
        assert_eq!(
            text(&back, dir, output),
            text(&as_shown(spec), dir, output),
            "{what} ({output:?})"
        );
    }
}

#[test]
fn every_example_stack_reads_back_to_the_same_spec() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut paths: Vec<_> = std::fs::read_dir(root.join("tests/compose"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .collect();
    paths.push(root.join("desired"));
    paths.sort();
    assert!(paths.len() >= 11, "ten example stacks and desired/");
    for path in paths {
        let loaded = load_path(&path).unwrap();
        let spec = loaded
            .spec
            .unwrap_or_else(|| panic!("{}: {}", path.display(), loaded.diagnostics));
        let dir = repo_dir(&path).unwrap();
        round_trip(&path.display().to_string(), &spec, &dir);
    }
}

#[test]
fn the_table_inputs_read_back_too() {
    let spec = load(
        &[
            ("stack/compose.yaml", ANCHORS),
            ("stack/.env", "TAG=1.4.2\nCADDY=2.8\n"),
            ("stack/files/Caddyfile", ":80\n"),
        ],
        "stack",
        None,
    );
    round_trip("anchors", &spec, "stack");
    round_trip(
        "v1",
        &load(&[("stack/berth.yaml", V1)], "stack", None),
        "stack",
    );
    let host = load(
        &[(
            "a/b/compose.yaml",
            "services:\n  app:\n    image: r/app:1\n    volumes: [\"../shared/x.conf:/x\", \"/srv/data:/data\"]\n    ports: [\"[::1]:8080:80\"]\n",
        ), ("a/shared/x.conf", "x")],
        "a/b",
        None,
    );
    round_trip("relative and host paths, IPv6", &host, "a/b");
    let options = load(
        &[(
            "o/compose.yaml",
            "services:
  app:
    image: r/app:1
    entrypoint: [\"/bin/sh\", \"-c\"]
    user: \"1000:1000\"
    working_dir: /srv
    labels: { com.example.team: web }
    hostname: app-host
    read_only: true
    init: false
    stop_signal: SIGINT
    tmpfs: [\"/run:size=64m,mode=1777\", /tmp]
    extra_hosts: [\"db.internal:10.0.0.5\"]
    dns: [1.1.1.1]
    logging: { driver: json-file, options: { max-size: 5m, max-file: \"2\" } }
    ulimits: { nofile: { soft: 1024, hard: 2048 }, nproc: 512 }
    shm_size: 128m
    pids_limit: 200
    cap_drop: [NET_RAW]
    mem_reservation: 64m
    tty: true
    stdin_open: true
",
        )],
        "o",
        None,
    );
    assert_ne!(options.services["app"].options, Default::default());
    round_trip("container options", &options, "o");
}
