//! The container options of compose services: each key's forms with the spec they give,
//! each wrong form with its message at file:line:col, and what the plan names when one
//! changes.

use std::collections::BTreeMap;

use super::super::*;

fn load(yaml: &str) -> Loaded {
    load_tree(&MemTree::new().with("stack/compose.yaml", yaml), "stack").expect("readable")
}

/// The options of the one service `app` whose keys are `svc` (indented by four).
fn options(svc: &str) -> ContainerOptions {
    let loaded = load(&format!(
        "services:\n  app:\n    image: reg.example/app:1.2\n{svc}"
    ));
    match loaded.spec {
        Some(mut s) => s.services.remove("app").unwrap().options,
        None => panic!("{svc}: {}", loaded.diagnostics),
    }
}

fn errors(svc: &str) -> Vec<String> {
    load(&format!(
        "services:\n  app:\n    image: reg.example/app:1.2\n{svc}"
    ))
    .diagnostics
    .errors()
    .map(|d| d.headline())
    .collect()
}

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

#[test]
fn each_option_in_each_form_gives_its_spec() {
    let d = ContainerOptions::default;
    let labels = |kv: &[(&str, &str)]| -> BTreeMap<String, String> {
        kv.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    };
    let tmpfs = |t: &str, o: &str| Tmpfs {
        target: t.into(),
        options: o.into(),
    };
    let cases: Vec<(&str, ContainerOptions)> = vec![
        (
            "    entrypoint: /bin/sh -c 'echo hi'\n",
            ContainerOptions {
                entrypoint: Some(strings(&["/bin/sh", "-c", "echo hi"])),
                ..d()
            },
        ),
        (
            "    entrypoint: [\"/docker-entrypoint.sh\", \"--\"]\n",
            ContainerOptions {
                entrypoint: Some(strings(&["/docker-entrypoint.sh", "--"])),
                ..d()
            },
        ),
        (
            "    entrypoint: \"\"\n",
            ContainerOptions {
                entrypoint: Some(Vec::new()),
                ..d()
            },
        ),
        (
            "    user: \"1000:1000\"\n",
            ContainerOptions {
                user: Some("1000:1000".into()),
                ..d()
            },
        ),
        (
            "    user: 999\n",
            ContainerOptions {
                user: Some("999".into()),
                ..d()
            },
        ),
        (
            "    user: root\n",
            ContainerOptions {
                user: Some("root".into()),
                ..d()
            },
        ),
        (
            "    working_dir: /srv/app\n",
            ContainerOptions {
                working_dir: Some("/srv/app".into()),
                ..d()
            },
        ),
        (
            "    labels:\n      com.example.team: web\n      traefik.enable: true\n",
            ContainerOptions {
                labels: labels(&[("com.example.team", "web"), ("traefik.enable", "true")]),
                ..d()
            },
        ),
        (
            "    labels: [\"a=1\", \"b\"]\n",
            ContainerOptions {
                labels: labels(&[("a", "1"), ("b", "")]),
                ..d()
            },
        ),
        (
            "    hostname: db-primary.internal\n",
            ContainerOptions {
                hostname: Some("db-primary.internal".into()),
                ..d()
            },
        ),
        (
            "    read_only: true\n    init: false\n    tty: true\n    stdin_open: true\n",
            ContainerOptions {
                read_only: true,
                init: Some(false),
                tty: true,
                stdin_open: true,
                ..d()
            },
        ),
        (
            "    read_only: \"true\"\n",
            ContainerOptions {
                read_only: true,
                ..d()
            },
        ),
        (
            "    stop_signal: SIGQUIT\n",
            ContainerOptions {
                stop_signal: Some("SIGQUIT".into()),
                ..d()
            },
        ),
        (
            "    tmpfs: /tmp\n",
            ContainerOptions {
                tmpfs: vec![tmpfs("/tmp", "")],
                ..d()
            },
        ),
        (
            "    tmpfs:\n      - /run:size=64m,mode=1777,noexec\n      - /tmp\n",
            ContainerOptions {
                tmpfs: vec![
                    tmpfs("/run", "size=67108864,mode=1777,noexec"),
                    tmpfs("/tmp", ""),
                ],
                ..d()
            },
        ),
        (
            "    volumes:\n      - type: tmpfs\n        target: /cache\n        tmpfs: { size: 1g, mode: 0o1777 }\n",
            ContainerOptions {
                tmpfs: vec![tmpfs("/cache", "size=1073741824,mode=1777")],
                ..d()
            },
        ),
        (
            "    extra_hosts: [\"db.internal:10.0.0.5\", \"v6=::1\", \"gw:[fe80::1]\"]\n",
            ContainerOptions {
                extra_hosts: strings(&["db.internal:10.0.0.5", "v6:::1", "gw:fe80::1"]),
                ..d()
            },
        ),
        (
            "    extra_hosts:\n      db.internal: 10.0.0.5\n",
            ContainerOptions {
                extra_hosts: strings(&["db.internal:10.0.0.5"]),
                ..d()
            },
        ),
        (
            "    dns: 1.1.1.1\n",
            ContainerOptions {
                dns: strings(&["1.1.1.1"]),
                ..d()
            },
        ),
        (
            "    dns: [9.9.9.9, \"2620:fe::fe\"]\n",
            ContainerOptions {
                dns: strings(&["9.9.9.9", "2620:fe::fe"]),
                ..d()
            },
        ),
        (
            "    logging:\n      driver: journald\n      options: { tag: app }\n",
            ContainerOptions {
                logging: Some(Logging {
                    driver: "journald".into(),
                    options: labels(&[("tag", "app")]),
                }),
                ..d()
            },
        ),
        (
            "    logging:\n      options: { max-size: 50m }\n",
            ContainerOptions {
                logging: Some(Logging {
                    driver: "json-file".into(),
                    options: labels(&[("max-size", "50m")]),
                }),
                ..d()
            },
        ),
        (
            "    ulimits:\n      nofile: { soft: 20000, hard: 40000 }\n      nproc: 65535\n",
            ContainerOptions {
                ulimits: BTreeMap::from([
                    (
                        "nofile".to_string(),
                        Ulimit {
                            soft: 20000,
                            hard: 40000,
                        },
                    ),
                    (
                        "nproc".to_string(),
                        Ulimit {
                            soft: 65535,
                            hard: 65535,
                        },
                    ),
                ]),
                ..d()
            },
        ),
        (
            "    shm_size: 256m\n",
            ContainerOptions {
                shm_size: Some(256 << 20),
                ..d()
            },
        ),
        (
            "    pids_limit: 200\n",
            ContainerOptions {
                pids_limit: Some(200),
                ..d()
            },
        ),
        (
            "    deploy:\n      resources:\n        limits: { pids: 100, memory: 512m }\n        reservations: { memory: 128m }\n",
            ContainerOptions {
                pids_limit: Some(100),
                mem_reservation: Some(128 << 20),
                ..d()
            },
        ),
        (
            "    cap_drop: [ALL]\n",
            ContainerOptions {
                cap_drop: strings(&["ALL"]),
                ..d()
            },
        ),
        (
            "    mem_reservation: 64m\n",
            ContainerOptions {
                mem_reservation: Some(64 << 20),
                ..d()
            },
        ),
    ];
    for (svc, want) in cases {
        assert_eq!(options(svc), want, "{svc}");
    }
}

#[test]
fn wrong_forms_are_errors_at_their_position() {
    let at = |line: u32, col: u32, path: &str, msg: &str| {
        format!("stack/compose.yaml:{line}:{col}: error: {path}: {msg}")
    };
    let cases: Vec<(&str, String)> = vec![
        (
            "    entrypoint: \"sh -c 'x\"\n",
            at(4, 17, "services.app.entrypoint", "`entrypoint` `sh -c 'x` has an unclosed quote; close it or write the entrypoint as a list"),
        ),
        (
            "    entrypoint: { a: 1 }\n",
            at(4, 17, "services.app.entrypoint", "`entrypoint` must be a list such as [\"/docker-entrypoint.sh\"]; found a mapping"),
        ),
        (
            "    user: \"a:b:c\"\n",
            at(4, 11, "services.app.user", "`user` `a:b:c` must be `USER` or `USER:GROUP`, each a name or a number (e.g. `1000:1000`, `postgres`)"),
        ),
        (
            "    working_dir: app\n",
            at(4, 18, "services.app.working_dir", "`working_dir` `app` must be an absolute path in the container, such as `/app`"),
        ),
        (
            "    labels:\n      berth.project: other\n",
            at(5, 7, "services.app.labels.berth.project", "label `berth.project` is not allowed: labels starting with `berth.` are berth's record of what it owns; rename it"),
        ),
        (
            "    labels: [\"ok=1\", \"berth.service=api\"]\n",
            at(4, 22, "services.app.labels[1]", "label `berth.service` is not allowed: labels starting with `berth.` are berth's record of what it owns; rename it"),
        ),
        (
            "    labels: [\"a=1\", \"a=2\"]\n",
            at(4, 21, "services.app.labels[1]", "label `a` is set twice; keep one"),
        ),
        (
            "    hostname: -bad\n",
            at(4, 15, "services.app.hostname", "`hostname` `-bad` is not a valid host name; use letters, digits and `-`, in labels separated by `.`"),
        ),
        (
            "    read_only: yes please\n",
            at(4, 16, "services.app.read_only", "expected `true` or `false`; found the string `yes please`"),
        ),
        (
            "    stop_signal: QUIT\n",
            at(4, 18, "services.app.stop_signal", "`stop_signal` must be a signal such as `SIGQUIT` or a number from 1 to 64; found the string `QUIT`"),
        ),
        (
            "    tmpfs: tmp\n",
            at(4, 12, "services.app.tmpfs", "tmpfs target `tmp` must be an absolute path in the container, such as `/tmp`"),
        ),
        (
            "    tmpfs: [\"/tmp:suid\"]\n",
            at(4, 13, "services.app.tmpfs[0]", "tmpfs option `suid` is not supported; use `size`, `mode`, `uid`, `gid`, `nr_inodes`, `ro`, `rw`, `exec`, `noexec`, `nosuid` or `nodev`"),
        ),
        (
            "    tmpfs: [\"/tmp:size=lots\"]\n",
            at(4, 13, "services.app.tmpfs[0]", "tmpfs option `size=lots` has an invalid value (e.g. `size=64m`, `mode=1777`)"),
        ),
        (
            "    tmpfs: [/data]\n    volumes: [\"data:/data\"]\nvolumes:\n  data: {}\n",
            at(4, 5, "services.app.tmpfs", "`/data` is mounted twice (tmpfs and another mount); each target takes one mount"),
        ),
        (
            "    extra_hosts: [\"db.internal\"]\n",
            at(4, 19, "services.app.extra_hosts[0]", "an extra host must be `HOST:IP`, a host name and an IP address (e.g. `db.internal:10.0.0.5`); found host `db.internal`, address ``"),
        ),
        (
            "    dns: [dns.google]\n",
            at(4, 11, "services.app.dns[0]", "DNS server `dns.google` must be an IP address such as `1.1.1.1`"),
        ),
        (
            "    logging:\n      driver: \"a b\"\n",
            at(5, 15, "services.app.logging.driver", "log driver `a b` is not a driver name such as `json-file`, `local` or `journald`"),
        ),
        (
            "    logging:\n      drivr: syslog\n",
            at(5, 7, "services.app.logging.drivr", "unknown key `drivr`; did you mean `driver`?"),
        ),
        (
            "    ulimits:\n      nofile: { soft: 2, hard: 1 }\n",
            at(5, 15, "services.app.ulimits.nofile", "ulimit `nofile`: soft 2 is above hard 1; the soft limit cannot exceed the hard one"),
        ),
        (
            "    ulimits:\n      rtprio: 99\n",
            at(5, 7, "services.app.ulimits.rtprio", "ulimit `rtprio` is not allowed: it lets the container's processes take CPU priority over the host's own; berth lets whoever pushes to the desired state run containers, not own the host"),
        ),
        (
            "    ulimits:\n      files: 10\n",
            at(5, 7, "services.app.ulimits.files", "unknown ulimit `files`; use one of as, core, cpu, data, fsize, locks, memlock, msgqueue, nofile, nproc, rss, rttime, sigpending, stack"),
        ),
        (
            "    shm_size: 2t\n",
            at(4, 15, "services.app.shm_size", "size `2t` is out of range; use 1m to 1t"),
        ),
        (
            "    pids_limit: -1\n",
            at(4, 17, "services.app.pids_limit", "a pids limit must be a whole number from 1 to 4194304; found the number -1 (leave it out for no limit)"),
        ),
        (
            "    pids_limit: 10\n    deploy:\n      resources:\n        limits: { pids: 20 }\n",
            at(4, 5, "services.app.pids_limit", "`pids_limit: 10` and `deploy.resources.limits.pids: 20` disagree; keep one"),
        ),
        (
            "    cap_drop: [net_raw]\n",
            at(4, 16, "services.app.cap_drop[0]", "capability `net_raw` must be an upper-case name such as `NET_RAW` or `ALL`"),
        ),
        (
            "    mem_limit: 64m\n    mem_reservation: 128m\n",
            at(5, 22, "services.app.mem_reservation", "the memory reservation is above the memory limit; Docker refuses it: lower the reservation"),
        ),
        (
            "    cap_add: [NET_ADMIN]\n",
            at(4, 5, "services.app.cap_add", "`cap_add` is not allowed: it adds kernel capabilities; berth lets whoever pushes to the desired state run containers, not own the host"),
        ),
    ];
    let mut wrong = Vec::new();
    for (svc, want) in cases {
        let got = errors(svc);
        if got != [want.clone()] {
            wrong.push(format!("{svc}\n  got:  {got:?}\n  want: {want}"));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn tty_and_stdin_open_no_longer_warn() {
    let loaded = load("services:\n  app:\n    image: reg.example/app:1.2\n    tty: true\n    stdin_open: true\n    healthcheck: { disable: true }\n");
    assert!(loaded.diagnostics.0.is_empty(), "{}", loaded.diagnostics);
}

/// The plan names each changed option, and labels by name only; a service that sets no
/// option keeps the hash it had before options existed.
#[test]
fn a_changed_option_is_named_by_the_plan() {
    use crate::plan::{describe_change, Desired};
    let parts = |svc: &str| {
        let loaded = load(&format!(
            "services:\n  app:\n    image: reg.example/app:1.2\n{svc}"
        ));
        let spec = loaded.spec.expect("valid");
        let d = Desired::resolve(spec, std::path::Path::new("/nonexistent"));
        let s = &d.services["app"];
        (s.parts.clone(), s.hash.clone())
    };
    let (plain, plain_hash) = parts("");
    assert!(plain.options.is_empty() && plain.labels.is_empty());
    assert!(
        !crate::plan::DesiredService::new(
            load("services:\n  app:\n    image: reg.example/app:1.2\n")
                .spec
                .unwrap()
                .services
                .remove("app")
                .unwrap(),
            crate::plan::EnvFile::None,
            &Default::default(),
        )
        .parts_label()
        .contains("options"),
        "no options, no key in the parts label"
    );
    let (user, user_hash) = parts("    user: \"1000\"\n");
    assert_ne!(plain_hash, user_hash);
    assert_eq!(describe_change(&plain, &user), ["user changed"]);
    let (other, _) = parts("    user: \"1001\"\n    tmpfs: /tmp\n");
    assert_eq!(
        describe_change(&user, &other),
        ["tmpfs changed", "user changed"]
    );
    let (l1, _) = parts("    labels: { team: web, secret-ish: a }\n");
    let (l2, _) = parts("    labels: { team: api, extra: b }\n");
    let changes = describe_change(&l1, &l2);
    assert_eq!(
        changes,
        [
            "label extra added",
            "label team changed",
            "label secret-ish removed"
        ]
    );
    assert!(!changes
        .iter()
        .any(|c| c.contains("web") || c.contains("api")));
}
