//! Compose files compiled into the spec: each supported key with the spec it gives, each
//! refused or unsupported key with its message and position, and YAML merge keys.

use std::time::Duration;

use super::super::*;

/// Loads `yaml` as `stack/compose.yaml` (so the project name comes from `stack`).
fn load(yaml: &str) -> Loaded {
    load_files(&[("stack/compose.yaml", yaml)], "stack")
}

fn load_files(files: &[(&str, &str)], config: &str) -> Loaded {
    let mut tree = MemTree::new();
    for (p, c) in files {
        tree = tree.with(p, c.as_bytes());
    }
    load_tree(&tree, config).expect("readable")
}

pub(super) fn spec(yaml: &str) -> Spec {
    let loaded = load(yaml);
    match loaded.spec {
        Some(s) => s,
        None => panic!("{}", loaded.diagnostics),
    }
}

/// The one service `app` of a file whose services section is `svc`, indented.
fn app(svc: &str) -> ServiceSpec {
    spec(&format!(
        "services:\n  app:\n    image: reg.example/app:1.2\n{svc}"
    ))
    .services
    .remove("app")
    .unwrap()
}

pub(super) fn errors(yaml: &str) -> Vec<String> {
    load(yaml)
        .diagnostics
        .errors()
        .map(|d| d.headline())
        .collect()
}

pub(super) fn warnings(yaml: &str) -> Vec<String> {
    load(yaml)
        .diagnostics
        .0
        .iter()
        .filter(|d| !d.is_error())
        .map(|d| d.headline())
        .collect()
}

const HEAD: &str = "services:\n  app:\n    image: reg.example/app:1.2\n";

#[test]
fn a_minimal_file_gives_a_spec_with_compose_defaults() {
    let s = spec(HEAD);
    assert_eq!(s.project, "stack");
    assert_eq!(s.networks.keys().collect::<Vec<_>>(), ["default"]);
    let a = &s.services["app"];
    assert_eq!(a.replicas, 1);
    assert_eq!(a.networks, ["default"]);
    assert_eq!(a.health, Health::Image);
    assert_eq!(a.stop_grace, Duration::from_secs(10));
    assert_eq!(a.update.order, UpdateOrder::StartFirst);
}

#[test]
fn project_names() {
    assert_eq!(spec(&format!("name: shop\n{HEAD}")).project, "shop");
    let l = load_files(&[("My.Stack_1/compose.yaml", HEAD)], "My.Stack_1");
    assert!(l.spec.is_none());
    assert_eq!(
        super::project::normalise("My.Stack-1"),
        "mystack-1",
        "compose lowercases and keeps [a-z0-9_-]"
    );
    let l = load_files(&[("Shop/compose.yaml", HEAD)], "Shop");
    assert_eq!(l.spec.unwrap().project, "shop");
    let root = load_files(&[("compose.yaml", HEAD)], "");
    let errs: Vec<String> = root.diagnostics.errors().map(|d| d.headline()).collect();
    assert_eq!(errs, ["compose.yaml:1:1: error: `name` is missing; at the repository's root the project name cannot come from a directory: add e.g. `name: shop` (it prefixes every container, network and volume), or give `--project shop`"]);
}

#[test]
fn detection() {
    use super::detect::looks_like_compose;
    assert!(looks_like_compose(b"version: '3'\nservices:\n  a: {}\n"));
    assert!(!looks_like_compose(b"project: x\nservices:\n  a: {}\n"));
    assert!(!looks_like_compose(b"# services:\nfoo: 1\n"));
    // A named file of another name is compose when its top level says so.
    let l = load_files(&[("deploy/prod.yml", HEAD)], "deploy/prod.yml");
    assert_eq!(l.spec.unwrap().project, "deploy");
    // A directory prefers compose.yaml, and reports what it leaves.
    let l = load_files(
        &[
            ("d/compose.yaml", HEAD),
            ("d/docker-compose.yml", "bad"),
            ("d/compose.override.yaml", "bad"),
        ],
        "d",
    );
    assert!(l.spec.is_some());
    let w: Vec<String> = l
        .diagnostics
        .0
        .iter()
        .map(|d| d.headline())
        .filter(|h| h.contains("not read"))
        .collect();
    assert_eq!(
        w,
        [
            "d/compose.override.yaml:1:1: warning: not read: override files are not read from a directory; name one to use it",
            "d/docker-compose.yml:1:1: warning: not read: only one compose file is read; name it to use it",
        ]
    );
    // Without a standard name, one file named for an environment is the project.
    let l = load_files(&[("d/docker-compose.prod.yml", HEAD), ("d/.env", "")], "d");
    assert_eq!(l.spec.unwrap().project, "d");
    let l = load_files(
        &[
            ("d/docker-compose.prod.yml", HEAD),
            ("d/compose.staging.yaml", HEAD),
        ],
        "d",
    );
    assert!(l.spec.is_none());
    assert!(
        l.diagnostics.to_string().contains("d/docker-compose.prod.yml:1:1: error: not read: several compose files named for an environment"),
        "{}",
        l.diagnostics
    );
    // berth.yaml beside a compose file is ambiguous.
    let l = load_files(
        &[("d/compose.yaml", HEAD), ("d/berth.yaml", "project: x")],
        "d",
    );
    assert!(l.spec.is_none());
    // Format v1 is untouched.
    let v1 = "project: shop\nservices:\n  api:\n    image: r/api:1\n    health: { test: [\"CMD\", \"true\"] }\n";
    assert!(load_files(&[("berth.yaml", v1)], "berth.yaml")
        .spec
        .is_some());
    assert!(load_files(&[("d/berth.yaml", v1)], "d").spec.is_some());
}

#[test]
fn supported_keys_give_the_spec() {
    let a = app("    command: celery -A 'my tasks' worker\n");
    assert_eq!(a.command.unwrap(), ["celery", "-A", "my tasks", "worker"]);
    let a = app("    command: [\"uvicorn\", \"app:app\", \"--port\", 8000]\n");
    assert_eq!(a.command.unwrap(), ["uvicorn", "app:app", "--port", "8000"]);

    let a = app("    environment:\n      A: 1\n      B: true\n      C: text\n");
    assert_eq!(
        a.env.into_iter().collect::<Vec<_>>(),
        [
            ("A".into(), "1".into()),
            ("B".into(), "true".into()),
            ("C".into(), "text".into())
        ]
    );
    let a = app("    environment:\n      - A=1\n      - B=x=y\n      - C=\n");
    assert_eq!(a.env["B"], "x=y");
    assert_eq!(a.env["C"], "");

    for form in [
        "    env_file: /etc/berth/stack/app.env\n",
        "    env_file: [/etc/berth/stack/app.env]\n",
        "    env_file:\n      - path: /etc/berth/stack/app.env\n        required: true\n",
    ] {
        assert_eq!(
            app(form).env_files,
            [EnvFileRef {
                path: "/etc/berth/stack/app.env".into(),
                required: true,
                sealed: None,
            }]
        );
    }
    // Several, in order; relative ones inside the host's env directory; optional ones.
    let a = app("    env_file:
      - .env.prod
      - ./api.env
      - path: local.env
        required: false
");
    assert_eq!(
        a.env_files,
        [
            EnvFileRef {
                path: ".env.prod".into(),
                required: true,
                sealed: None,
            },
            EnvFileRef {
                path: "api.env".into(),
                required: true,
                sealed: None,
            },
            EnvFileRef {
                path: "local.env".into(),
                required: false,
                sealed: None,
            },
        ]
    );

    let a = app("    ports:\n      - \"8080:80\"\n      - 127.0.0.1:5353:53/udp\n      - target: 443\n        published: \"8443\"\n        host_ip: \"::1\"\n        protocol: tcp\n");
    assert_eq!(a.ports.len(), 3);
    assert_eq!(
        (a.ports[0].host_port, a.ports[0].container_port),
        (8080, 80)
    );
    assert_eq!(a.ports[1].protocol, Protocol::Udp);
    assert_eq!(a.ports[2].host_ip.as_deref(), Some("::1"));
    assert_eq!(
        a.update.order,
        UpdateOrder::StopFirst,
        "publishing means stop-first"
    );

    assert_eq!(
        app("    deploy: { update_config: { parallelism: 2, delay: 10s } }\n")
            .update
            .delay,
        Duration::from_secs(10)
    );

    assert_eq!(
        app("    expose: [8000, \"9000/tcp\"]\n").expose,
        [8000, 9000]
    );

    let s = spec(&format!("{HEAD}    healthcheck:\n      test: curl -f http://localhost/\n      interval: 1m30s\n      timeout: 5s\n      retries: 5\n      start_period: 10s\n"));
    let Health::Check(h) = &s.services["app"].health else {
        panic!()
    };
    assert_eq!(h.test, ["CMD-SHELL", "curl -f http://localhost/"]);
    assert_eq!(h.interval, Duration::from_secs(90));
    assert_eq!(
        (h.timeout, h.retries, h.start_period),
        (Duration::from_secs(5), 5, Duration::from_secs(10))
    );
    let Health::Check(h) = app("    healthcheck:\n      test: [\"CMD\", \"true\"]\n").health else {
        panic!()
    };
    assert_eq!(
        (h.interval, h.timeout, h.retries),
        (Duration::from_secs(30), Duration::from_secs(30), 3),
        "Docker's defaults"
    );
    assert_eq!(
        app("    healthcheck:\n      disable: true\n").health,
        Health::Disabled
    );
    assert_eq!(
        app("    healthcheck:\n      test: [\"NONE\"]\n").health,
        Health::Disabled
    );

    let a = app("    stop_grace_period: 1m\n    restart: unless-stopped\n    mem_limit: 512m\n    cpus: 0.5\n");
    assert_eq!(a.stop_grace, Duration::from_secs(60));
    assert_eq!(
        a.resources,
        Resources {
            memory: Some(512 << 20),
            cpus: Some(0.5)
        }
    );

    let a = app("    deploy:\n      mode: replicated\n      replicas: 3\n      resources:\n        limits: { memory: 1g, cpus: \"2\" }\n      update_config:\n        parallelism: 2\n        order: stop-first\n        monitor: 20s\n        failure_action: pause\n      placement:\n        constraints: [\"node.hostname == web-1\", \"node.labels.role == edge\"]\n    x-berth: { deadline: 5m, max_hosts: 1, canary: web-1 }\n");
    assert_eq!(a.replicas, 3);
    assert_eq!(
        a.resources,
        Resources {
            memory: Some(1 << 30),
            cpus: Some(2.0)
        }
    );
    assert_eq!(a.update.parallelism, 2);
    assert_eq!(a.update.order, UpdateOrder::StopFirst);
    assert_eq!(a.update.monitor, Duration::from_secs(20));
    assert_eq!(a.update.on_failure, OnFailure::Pause);
    assert_eq!(a.update.deadline, Duration::from_secs(300));
    assert_eq!(a.update.max_hosts, Some(1));
    assert_eq!(a.update.canary.as_deref(), Some("web-1"));
    assert_eq!(a.placement.hosts, ["web-1"]);
    assert_eq!(a.placement.labels["role"], "edge");
    assert_eq!(app("    scale: 2\n").replicas, 2);
}

#[test]
fn networks_volumes_and_dependencies() {
    let yaml = "\
services:
  db:
    image: postgres:16
    volumes:
      - pgdata:/var/lib/postgresql/data
      - type: volume
        source: shared
        target: /shared
        read_only: true
    networks: [backend]
  app:
    image: reg.example/app:1.2
    volumes:
      - ./conf/app.ini:/etc/app.ini:ro,z
      - type: bind
        source: ./conf/app.ini
        target: /etc/other.ini
    networks:
      backend:
      front: { aliases: [] }
    depends_on:
      db: { condition: service_healthy }
  web:
    image: reg.example/web:1.2
    depends_on: [app]
volumes:
  pgdata:
  shared: { external: true, name: team_shared }
networks:
  backend: {}
  front: { external: true, name: proxy }
";
    let loaded = load_files(
        &[
            ("stack/compose.yaml", yaml),
            ("stack/conf/app.ini", "[app]\n"),
        ],
        "stack",
    );
    let s = loaded.spec.expect("valid");
    assert_eq!(
        s.networks.keys().collect::<Vec<_>>(),
        ["backend", "default", "proxy"]
    );
    assert!(s.networks["proxy"].external);
    assert_eq!(
        s.volumes.keys().collect::<Vec<_>>(),
        ["pgdata", "team_shared"]
    );
    assert!(s.volumes["team_shared"].external);
    let db = &s.services["db"];
    assert_eq!(db.volumes[0].source, MountSource::Volume("pgdata".into()));
    assert_eq!(
        db.volumes[1].source,
        MountSource::Volume("team_shared".into())
    );
    assert!(db.volumes[1].read_only);
    let app = &s.services["app"];
    assert_eq!(app.networks, ["backend", "proxy"]);
    assert!(
        matches!(&app.volumes[0].source, MountSource::RepoFile(f) if f.path == "stack/conf/app.ini")
    );
    assert!(app.volumes[0].read_only);
    assert!(!app.volumes[1].read_only);
    assert_eq!(app.depends_on, ["db"]);
    assert_eq!(s.services["web"].depends_on, ["app"]);
    assert_eq!(s.services["web"].networks, ["default"]);
}

#[test]
fn anchors_and_merge_keys() {
    let s = spec(
        "\
x-logging: &logging
  driver: json-file
x-env: &env
  LOG: json
  LEVEL: info
x-more: &more
  <<: *env
  LEVEL: debug
  EXTRA: \"1\"
x-base: &base
  image: reg.example/app:1.2
  restart: always
  healthcheck: &hc
    test: [\"CMD\", \"true\"]
    interval: 10s
services:
  api:
    <<: *base
    environment:
      <<: *more
      OWN: x
  worker:
    <<: [*base]
    command: worker
    environment:
      <<: [*more, *env]
    healthcheck:
      <<: *hc
      retries: 7
    x-note: ignored
",
    );
    let api = &s.services["api"];
    assert_eq!(api.image.to_string(), "reg.example/app:1.2");
    assert_eq!(api.env["LEVEL"], "debug", "the merging mapping wins");
    assert_eq!(api.env["LOG"], "json", "merges of merges are resolved");
    assert_eq!(api.env["OWN"], "x");
    let w = &s.services["worker"];
    assert_eq!(
        w.env["LEVEL"], "debug",
        "the earlier mapping of a list wins"
    );
    assert_eq!(w.env["EXTRA"], "1");
    let Health::Check(h) = &w.health else {
        panic!()
    };
    assert_eq!((h.interval, h.retries), (Duration::from_secs(10), 7));
}

#[test]
fn refused_keys_name_the_reason_and_the_position() {
    let cases = [
        ("privileged: true", "`privileged` is not allowed: it gives the container every device and capability of the host"),
        ("network_mode: host", "`network_mode` is not allowed: it `host` puts the container in the host's network namespace"),
        ("pid: host", "`pid` is not allowed"),
        ("ipc: host", "`ipc` is not allowed"),
        ("userns_mode: host", "`userns_mode` is not allowed"),
        ("devices: [\"/dev/fuse:/dev/fuse\"]", "`devices` is not allowed"),
        ("cap_add: [NET_ADMIN]", "`cap_add` is not allowed"),
        ("sysctls: { net.core.somaxconn: 1024 }", "`sysctls` is not allowed"),
    ];
    for (line, msg) in cases {
        let errs = errors(&format!("{HEAD}    {line}\n"));
        let key = line.split(':').next().unwrap();
        assert_eq!(errs.len(), 1, "{line}: {errs:?}");
        let want = format!("stack/compose.yaml:4:5: error: services.app.{key}: {msg}");
        assert!(errs[0].starts_with(&want), "{}\n  vs {want}", errs[0]);
    }
    assert!(errors(&format!("{HEAD}    privileged: false\n    cap_add: []\n")).is_empty());
    for opt in [
        "seccomp:unconfined",
        "apparmor=unconfined",
        "label:disable",
        "systempaths=unconfined",
    ] {
        assert_eq!(
            errors(&format!("{HEAD}    security_opt: [no-new-privileges, \"{opt}\"]\n")),
            [format!("stack/compose.yaml:4:39: error: services.app.security_opt[1]: security option `{opt}` is refused: only `no-new-privileges` is allowed; the others (seccomp, AppArmor, SELinux labels, systempaths) turn off the confinement that keeps a container from the host")]
        );
    }
    assert_eq!(
        errors(&format!("{HEAD}    network_mode: \"service:db\"\n")),
        ["stack/compose.yaml:4:5: error: services.app.network_mode: `network_mode` is not supported yet by berth's compose reader"]
    );
}

#[test]
fn unsupported_and_unknown_keys_are_errors_with_positions() {
    let cases = [
        ("platform: linux/amd64", "`platform` is not supported yet by berth's compose reader"),
        ("group_add: [\"1000\"]", "`group_add` is not supported yet by berth's compose reader"),
        ("oom_score_adj: 100", "`oom_score_adj` is not supported yet by berth's compose reader"),
        ("imagee: x", "unknown key `imagee` in a compose service; did you mean `image`?"),
        ("restart: on-failure", "`restart: on-failure` is for a one-shot job, and nothing waits for this service to complete: make the services that need it depend on it with `condition: service_completed_successfully`, or give it `x-berth: { migration: { gates: [...] } }`; a long-running service is restarted whenever it exits (`always`)"),
        ("environment: [TOKEN]", "`TOKEN` has no value, which in compose passes the variable through from the environment of whoever runs it; berth never reads its own environment: write `TOKEN=value` here, or put it in the host's env_file"),
        ("env_file: ../other/app.env", "env_file `../other/app.env` leads out of the env directory; berth reads env files from the host's env directory (`/etc/berth/<project>/`, or --env-dir): name a file there, e.g. `app.env`"),
        ("env_file: [{path: a.env, required: maybe}]", "expected `true` or `false`; found a string"),
        ("ports: [\"3000\"]", "port `3000` names only the container port; berth publishes fixed host ports: write `HOST:CONTAINER` (e.g. `8080:3000`), or use `expose` for other services"),
        ("volumes: [\"/data\"]", "anonymous volumes (`/data`) are not supported yet; name the volume (`data:/data`)"),
        ("deploy: { update_config: { delay: 2h } }", "duration `2h` is out of range; use 0s to 1h"),
        ("deploy: { placement: { constraints: [\"node.role == manager\"] } }", "constraint `node.role == manager` is not supported yet; berth reads `node.hostname == HOST` and `node.labels.KEY == VALUE`"),
        ("networks: { default: { aliases: [api.example.com] } }", "alias `api.example.com` is not supported: a name with a dot would answer for a real host name to every container on the network"),
        ("networks: { default: { aliases: [Db] } }", "alias `Db` is not supported: use lowercase letters, digits, `-` or `_`, at most 63"),
    ];
    for (line, msg) in cases {
        let errs = errors(&format!("{HEAD}    {line}\n"));
        assert_eq!(errs.len(), 1, "{line}: {errs:?}");
        assert!(errs[0].starts_with("stack/compose.yaml:4:"), "{}", errs[0]);
        assert!(errs[0].ends_with(msg), "{}\n  wanted …{msg}", errs[0]);
    }
    // A service waited for with `service_completed_successfully` is a job (job_tests).
    let s = spec("services:\n  job:\n    image: r/a:1\n  app:\n    image: r/b:1\n    depends_on:\n      job:\n        condition: service_completed_successfully\n");
    assert_eq!(s.migrations["job"].gates, ["app"]);
    let errs = errors("services:\n  app:\n    build: .\n");
    assert_eq!(errs, ["stack/compose.yaml:2:3: error: services.app: `image` is missing: berth deploys images: build in CI and pin the tag (e.g. `image: ghcr.io/owner/app:sha-3f2c1e9`)"]);
    let errs = errors("services:\n  app:\n    image: r/a:latest\n");
    assert_eq!(errs.len(), 1);
    assert!(errs[0].starts_with(
        "stack/compose.yaml:3:12: error: services.app.image: image `r/a:latest` is not pinned"
    ));
    let errs = errors("secrets:\n  s: {}\nservices:\n  app:\n    image: r/a:1\n");
    assert_eq!(errs, ["stack/compose.yaml:2:3: error: secrets.s: a secret needs `file:`, a file in the host's env directory (`/etc/berth/<project>/`, or --env-dir)"]);
}

#[test]
fn ignored_keys_warn() {
    let w = warnings(&format!("version: \"3.8\"\n{HEAD}    build: .\n    container_name: app\n    healthcheck: {{ test: [\"CMD\", \"true\"] }}\n  extra:\n    image: r/x:1\n    profiles: [debug]\n"));
    assert_eq!(
        w,
        [
            "stack/compose.yaml:1:1: warning: version: `version` is obsolete and ignored",
            "stack/compose.yaml:5:5: warning: services.app.build: `build` is ignored: berth deploys the image; build is ignored (build in CI and pin the tag)",
            "stack/compose.yaml:6:5: warning: services.app.container_name: `container_name` is ignored: berth names each replica `<project>-<service>-<slot>` itself",
            "stack/compose.yaml:10:5: warning: services.extra.profiles: service `extra` has `profiles` and is left out, as compose does when no profile is active",
        ]
    );
    assert!(!spec(&format!(
        "{HEAD}  extra:\n    image: r/x:1\n    profiles: [debug]\n"
    ))
    .services
    .contains_key("extra"));
}

#[test]
fn cross_service_rules_of_format_v1_hold() {
    let errs = errors("services:\n  a:\n    image: r/a:1\n    ports: [\"80:80\"]\n  b:\n    image: r/b:1\n    ports: [\"80:80\"]\n");
    assert_eq!(errs, ["stack/compose.yaml:7:13: error: services.b.ports[0]: host port 80/tcp is already published by service `a`; pick another host port"]);
    let errs = errors("services:\n  a:\n    image: r/a:1\n    depends_on: [b]\n  b:\n    image: r/b:1\n    depends_on: [a]\n");
    assert_eq!(errs.len(), 1);
    assert!(errs[0].contains("forms a cycle"));
}

#[test]
fn host_paths_go_through_the_host_policy() {
    let errs = errors(&format!(
        "{HEAD}    volumes: [\"/var/run/docker.sock:/var/run/docker.sock\"]\n"
    ));
    assert_eq!(errs.len(), 1);
    assert!(
        errs[0].starts_with("stack/compose.yaml:4:15: error: services.app.volumes[0]: "),
        "{}",
        errs[0]
    );
}

#[test]
fn the_readme_lists_every_key_of_the_table() {
    let readme = include_str!("../../../README.md");
    let section = readme
        .split("## Compose files")
        .nth(1)
        .expect("README has a section `## Compose files`");
    for (key, what) in super::keys::SUPPORTED
        .iter()
        .chain(super::keys::REFUSED)
        .chain(super::keys::IGNORED)
    {
        let row = format!("| `{key}` | {what} |");
        assert!(section.contains(&row), "README misses the row {row}");
    }
    for key in super::keys::NOT_YET {
        assert!(
            section.contains(&format!("`{key}`")),
            "README misses `{key}`"
        );
    }
}

#[test]
fn the_example_compose_files_are_valid() {
    let dir = std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/compose"));
    let mut n = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if !path.is_dir() {
            continue;
        }
        let loaded = load_path(&path).unwrap();
        assert!(
            !loaded.diagnostics.has_errors(),
            "{}: {}",
            path.display(),
            loaded.diagnostics
        );
        assert!(loaded.spec.is_some());
        n += 1;
    }
    assert!(n >= 10, "at least ten example stacks");
}

#[test]
fn an_explicit_merge_tag_is_a_merge_key() {
    let s = spec("x-a: &a\n  image: reg.example/app:1.2\nservices:\n  app:\n    !!merge <<: *a\n");
    assert_eq!(s.services["app"].image.to_string(), "reg.example/app:1.2");
}

mod host_files;
mod sealed;
