//! Several compose files merged in order: each merge rule with the spec it gives, the
//! position a diagnostic on a merged value points at, override files read only when
//! named, and the project name's precedence.

use super::super::*;

const BASE: &str = "services:\n  app:\n    image: reg.example/app:1.2\n";

/// Loads `stack/compose.yaml` holding `base` and `stack/compose.prod.yml` holding
/// `over`, merged in that order.
fn merged(base: &str, over: &str) -> Loaded {
    let tree = MemTree::new()
        .with("stack/compose.yaml", base.as_bytes())
        .with("stack/compose.prod.yml", over.as_bytes());
    load_tree_files(
        &tree,
        &["stack/compose.yaml".into(), "stack/compose.prod.yml".into()],
        &LoadOptions::default(),
    )
    .expect("readable")
}

fn app(base: &str, over: &str) -> ServiceSpec {
    let loaded = merged(base, over);
    match loaded.spec {
        Some(mut s) => s.services.remove("app").expect("service app"),
        None => panic!("{}", loaded.diagnostics),
    }
}

fn errors(base: &str, over: &str) -> Vec<String> {
    merged(base, over)
        .diagnostics
        .errors()
        .map(|d| d.headline())
        .collect()
}

fn port(host: u16, container: u16) -> PortMapping {
    PortMapping {
        host_ip: None,
        host_port: host,
        container_port: container,
        protocol: Protocol::Tcp,
    }
}

#[test]
fn scalars_are_replaced_and_mappings_merged() {
    let s = app(
        &format!(
            "{BASE}    user: \"1000\"\n    working_dir: /srv\n    deploy:\n      replicas: 1\n"
        ),
        "services:\n  app:\n    image: reg.example/app:2.0\n    deploy:\n      replicas: 3\n",
    );
    assert_eq!(s.image.to_string(), "reg.example/app:2.0");
    assert_eq!(s.replicas, 3);
    // Keys only the first file writes stay.
    assert_eq!(s.options.user.as_deref(), Some("1000"));
    assert_eq!(s.options.working_dir.as_deref(), Some("/srv"));
}

#[test]
fn shell_commands_are_replaced() {
    let s = app(
        &format!("{BASE}    command: [\"serve\", \"--port\", \"80\"]\n    entrypoint: [\"/init\"]\n    healthcheck:\n      test: [\"CMD\", \"true\"]\n      retries: 5\n"),
        "services:\n  app:\n    command: [\"serve\"]\n    entrypoint: /entry\n    healthcheck:\n      test: [\"CMD-SHELL\", \"exit 0\"]\n",
    );
    assert_eq!(s.command, Some(vec!["serve".to_string()]));
    assert_eq!(s.options.entrypoint, Some(vec!["/entry".to_string()]));
    let Health::Check(check) = s.health else {
        panic!("a health check")
    };
    assert_eq!(check.test, ["CMD-SHELL", "exit 0"]);
    // The rest of `healthcheck` is merged.
    assert_eq!(check.retries, 5);
}

#[test]
fn sequences_append_and_unique_ones_replace_by_key() {
    // (first file's service keys, second's, what the merged service holds)
    type Check = fn(&ServiceSpec);
    let table: &[(&str, &str, Check)] = &[
        (
            "    ports: [\"8080:80\", \"9090:90\"]\n",
            "    ports: [\"8081:80\", \"8080:80\", \"8443:443\"]\n",
            |s| {
                assert_eq!(
                    s.ports,
                    [port(8080, 80), port(9090, 90), port(8081, 80), port(8443, 443)],
                    "unique by ip, published, target and protocol"
                )
            },
        ),
        (
            "    expose: [\"80\", \"81\"]\n",
            "    expose: [\"81\", 82]\n",
            |s| assert_eq!(s.expose, [80, 81, 82]),
        ),
        (
            "    dns: [1.1.1.1]\n",
            "    dns: [8.8.8.8, 1.1.1.1]\n",
            |s| assert_eq!(s.options.dns, ["1.1.1.1", "8.8.8.8"]),
        ),
        (
            "    extra_hosts: [\"db:10.0.0.2\"]\n",
            "    extra_hosts: [\"cache:10.0.0.3\", \"db:10.0.0.2\"]\n",
            |s| assert_eq!(s.options.extra_hosts.len(), 2),
        ),
        (
            "    cap_drop: [NET_RAW]\n",
            "    cap_drop: [MKNOD, NET_RAW]\n",
            |s| assert_eq!(s.options.cap_drop, ["NET_RAW", "MKNOD"]),
        ),
        (
            "    volumes: [\"data:/var/lib/data\", \"logs:/logs\"]\n",
            "    volumes:\n      - type: volume\n        source: other\n        target: /var/lib/data\n      - \"cache:/cache\"\n",
            |s| {
                let got: Vec<(String, String)> = s
                    .volumes
                    .iter()
                    .map(|m| (format!("{:?}", m.source), m.target.clone()))
                    .collect();
                assert_eq!(got.len(), 3, "{got:?}");
                assert_eq!(got[0].1, "/var/lib/data");
                assert!(got[0].0.contains("other"), "the later volume replaces: {got:?}");
                assert_eq!(got[1].1, "/logs");
                assert_eq!(got[2].1, "/cache");
            },
        ),
    ];
    let volumes = "volumes:\n  data:\n  logs:\n  other:\n  cache:\n";
    for (a, b, check) in table {
        let s = app(
            &format!("{BASE}{a}{volumes}"),
            &format!("services:\n  app:\n{b}"),
        );
        check(&s);
    }
}

#[test]
fn environment_and_labels_merge_by_name_in_either_form() {
    let forms = [
        (
            "    environment:\n      A: \"1\"\n      B: \"2\"\n",
            "    environment:\n      B: \"3\"\n      C: \"4\"\n",
        ),
        (
            "    environment: [A=1, B=2]\n",
            "    environment: [B=3, C=4]\n",
        ),
        (
            "    environment: [A=1, B=2]\n",
            "    environment:\n      B: \"3\"\n      C: \"4\"\n",
        ),
        (
            "    environment:\n      A: \"1\"\n      B: \"2\"\n",
            "    environment: [B=3, C=4]\n",
        ),
    ];
    for (a, b) in forms {
        let s = app(&format!("{BASE}{a}"), &format!("services:\n  app:\n{b}"));
        let env: Vec<(&str, &str)> = s
            .env
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        assert_eq!(env, [("A", "1"), ("B", "3"), ("C", "4")], "{a} + {b}");
    }
    let s = app(
        &format!("{BASE}    labels: [team=web, tier=front]\n"),
        "services:\n  app:\n    labels:\n      tier: back\n",
    );
    assert_eq!(
        s.options.labels.get("team").map(String::as_str),
        Some("web")
    );
    assert_eq!(
        s.options.labels.get("tier").map(String::as_str),
        Some("back")
    );
}

#[test]
fn depends_on_and_networks_merge_by_name() {
    let base = "services:\n  db:\n    image: reg.example/db:1\n  cache:\n    image: reg.example/cache:1\n  app:\n    image: reg.example/app:1.2\n    depends_on: [db]\n    networks: [front]\nnetworks:\n  front:\n  back:\n";
    let over = "services:\n  app:\n    depends_on:\n      cache:\n        condition: service_started\n    networks:\n      back:\n";
    let s = app(base, over);
    let mut deps = s.depends_on.clone();
    deps.sort();
    assert_eq!(deps, ["cache", "db"]);
    let mut nets = s.networks.clone();
    nets.sort();
    assert_eq!(nets, ["back", "front"], "{nets:?}");
}

#[test]
fn reset_removes_and_override_replaces() {
    let s = app(
        &format!("{BASE}    ports: [\"8080:80\"]\n    environment:\n      FOO: bar\n      KEEP: \"1\"\n    dns: [1.1.1.1]\n"),
        "services:\n  app:\n    ports: !reset []\n    environment:\n      FOO: !reset null\n    dns: !override [8.8.8.8]\n",
    );
    assert!(s.ports.is_empty());
    assert_eq!(s.env.keys().collect::<Vec<_>>(), ["KEEP"]);
    assert_eq!(s.options.dns, ["8.8.8.8"]);
}

#[test]
fn a_diagnostic_on_a_merged_value_points_at_the_file_that_wrote_it() {
    // A bad port from the second file, appended after the first file's.
    assert_eq!(
        errors(
            &format!("{BASE}    ports: [\"8080:80\"]\n"),
            "services:\n  app:\n    ports:\n      - \"8081:80\"\n      - \"99999:80\"\n",
        )
        .len(),
        1
    );
    let errs = errors(
        &format!("{BASE}    ports: [\"8080:80\"]\n"),
        "services:\n  app:\n    ports:\n      - \"8081:80\"\n      - \"99999:80\"\n",
    );
    assert!(
        errs[0].starts_with("stack/compose.prod.yml:5:9: error:"),
        "{errs:?}"
    );
    // An unknown key of the second file, and one of the first.
    let errs = errors(
        &format!("{BASE}    restart_policy: always\n"),
        "services:\n  app:\n    replicaz: 2\n",
    );
    assert_eq!(errs.len(), 2, "{errs:?}");
    assert!(
        errs[0].starts_with(
            "stack/compose.prod.yml:3:5: error: services.app.replicaz: unknown key `replicaz`"
        ),
        "{errs:?}"
    );
    assert!(
        errs[1].starts_with("stack/compose.yaml:4:5: error:"),
        "{errs:?}"
    );
    // A value of the first file that the second does not touch keeps its position.
    let errs = errors(
        &format!("{BASE}    stop_grace_period: forever\n"),
        "services:\n  app:\n    image: reg.example/app:2\n",
    );
    assert!(
        errs[0].starts_with("stack/compose.yaml:4:24: error:"),
        "{errs:?}"
    );
}

#[test]
fn interpolation_happens_per_file_with_the_project_directorys_env() {
    let tree = MemTree::new()
        .with("stack/.env", b"TAG=7\nPORT=9000\n")
        .with("stack/compose.yaml", format!("{BASE}    ports: [\"8080:80\"]\n").as_bytes())
        .with(
            "stack/prod/compose.prod.yml",
            b"services:\n  app:\n    image: reg.example/app:${TAG}\n    ports: [\"${PORT}:90\"]\n    environment:\n      X: ${UNSET}\n",
        );
    let loaded = load_tree_files(
        &tree,
        &[
            "stack/compose.yaml".into(),
            "stack/prod/compose.prod.yml".into(),
        ],
        &LoadOptions::default(),
    )
    .unwrap();
    let spec = loaded.spec.as_ref().expect("valid");
    let s = &spec.services["app"];
    assert_eq!(s.image.to_string(), "reg.example/app:7");
    assert_eq!(s.ports, [port(8080, 80), port(9000, 90)]);
    let warnings: Vec<String> = loaded
        .diagnostics
        .warnings()
        .map(|d| d.headline())
        .collect();
    assert!(
        warnings
            .iter()
            .any(|w| w.starts_with("stack/prod/compose.prod.yml:6:")),
        "{warnings:?}"
    );
    // The project directory is the first file's.
    assert_eq!(spec.project, "stack");
}

#[test]
fn override_files_are_read_only_when_named() {
    let tree = MemTree::new()
        .with("stack/compose.yaml", BASE.as_bytes())
        .with(
            "stack/compose.override.yaml",
            b"services:\n  app:\n    deploy:\n      replicas: 4\n",
        );
    let alone = load_tree(&tree, "stack").unwrap();
    assert_eq!(alone.spec.expect("valid").services["app"].replicas, 1);
    let named = load_tree_files(
        &tree,
        &["stack".into(), "stack/compose.override.yaml".into()],
        &LoadOptions::default(),
    )
    .unwrap();
    assert!(
        named
            .diagnostics
            .warnings()
            .all(|w| !w.headline().contains("override")),
        "{}",
        named.diagnostics
    );
    assert_eq!(named.spec.expect("valid").services["app"].replicas, 4);
}

#[test]
fn reset_and_override_in_one_file_alone() {
    let tree = MemTree::new().with(
        "stack/compose.yaml",
        format!("{BASE}    dns: !override [1.1.1.1]\n    ports: !reset [\"8080:80\"]\n    stop_grace_period: forever\n").as_bytes(),
    );
    let loaded = load_tree(&tree, "stack").unwrap();
    let errs: Vec<String> = loaded.diagnostics.errors().map(|d| d.headline()).collect();
    // The rest of the file keeps its positions.
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert!(
        errs[0].starts_with("stack/compose.yaml:6:24: error:"),
        "{errs:?}"
    );
    let tree = MemTree::new().with(
        "stack/compose.yaml",
        format!("{BASE}    dns: !override [1.1.1.1]\n    ports: !reset [\"8080:80\"]\n").as_bytes(),
    );
    let s = load_tree(&tree, "stack").unwrap().spec.expect("valid");
    assert_eq!(s.services["app"].options.dns, ["1.1.1.1"]);
    assert!(s.services["app"].ports.is_empty());
}

#[test]
fn format_v1_does_not_mix_with_compose_files() {
    let tree = MemTree::new()
        .with("stack/compose.yaml", BASE.as_bytes())
        .with(
            "v1/berth.yaml",
            b"project: shop\nservices:\n  app:\n    image: reg.example/app:1\n",
        );
    let err = load_tree_files(
        &tree,
        &["stack/compose.yaml".into(), "v1/berth.yaml".into()],
        &LoadOptions::default(),
    )
    .unwrap_err();
    assert!(err.to_string().contains("not a compose file"), "{err}");
}

#[test]
fn project_name_precedence() {
    let opts = |p: Option<&str>| LoadOptions {
        project: p.map(str::to_string),
        ..LoadOptions::default()
    };
    let load = |files: &[(&str, &str)], configs: &[&str], p: Option<&str>| {
        let mut tree = MemTree::new();
        for (path, text) in files {
            tree = tree.with(path, text.as_bytes());
        }
        let configs: Vec<String> = configs.iter().map(|c| c.to_string()).collect();
        load_tree_files(&tree, &configs, &opts(p)).unwrap()
    };
    let name = |l: Loaded| match l.spec {
        Some(s) => s.project,
        None => panic!("{}", l.diagnostics),
    };
    // `name:` wins over --project; the last file's `name:` wins.
    let named = format!("name: shop\n{BASE}");
    assert_eq!(
        name(load(
            &[("stack/compose.yaml", &named)],
            &["stack"],
            Some("other")
        )),
        "shop"
    );
    assert_eq!(
        name(load(
            &[
                ("stack/compose.yaml", &named),
                ("stack/b.yml", "name: shop2\nservices:\n")
            ],
            &["stack/compose.yaml", "stack/b.yml"],
            None
        )),
        "shop2"
    );
    // Without `name:`, --project, then the first file's directory.
    assert_eq!(
        name(load(
            &[("stack/compose.yaml", BASE)],
            &["stack"],
            Some("web")
        )),
        "web"
    );
    assert_eq!(
        name(load(
            &[("Web.Shop/compose.yaml", BASE)],
            &["Web.Shop"],
            None
        )),
        "webshop"
    );
    // At the repository's root --project gives the name.
    assert_eq!(
        name(load(&[("compose.yaml", BASE)], &[""], Some("web"))),
        "web"
    );
    // --project is checked like any project name.
    let bad = load(&[("stack/compose.yaml", BASE)], &["stack"], Some("Web!"));
    let errs: Vec<String> = bad.diagnostics.errors().map(|d| d.headline()).collect();
    assert!(bad.spec.is_none());
    assert!(
        errs[0].contains("--project `Web!` is not supported"),
        "{errs:?}"
    );
}

#[test]
fn the_input_limits_hold_across_files() {
    let big = format!(
        "{BASE}{}",
        "# padding padding padding padding\n".repeat(30_000)
    );
    let tree = MemTree::new()
        .with("stack/compose.yaml", big.as_bytes())
        .with("stack/b.yml", big.as_bytes())
        .with("stack/c.yml", big.as_bytes())
        .with("stack/d.yml", big.as_bytes())
        .with("stack/e.yml", big.as_bytes());
    let configs: Vec<String> = ["compose.yaml", "b.yml", "c.yml", "d.yml", "e.yml"]
        .iter()
        .map(|f| format!("stack/{f}"))
        .collect();
    let loaded = load_tree_files(&tree, &configs, &LoadOptions::default()).unwrap();
    let errs: Vec<String> = loaded.diagnostics.errors().map(|d| d.headline()).collect();
    assert!(loaded.spec.is_none());
    assert!(
        errs.iter().any(|e| e.contains("more than 4 MiB together")),
        "{errs:?}"
    );
    let many: Vec<String> = (0..300).map(|i| format!("stack/f{i}.yml")).collect();
    let err = load_tree_files(&tree, &many, &LoadOptions::default()).unwrap_err();
    assert!(err.to_string().contains("at most 256"), "{err}");
}

/// Long lists from a hostile repository merge with one look-up per item: two files of
/// 40 000 `ports` each (half of them the same) give the union, each item still
/// pointing at the file that wrote it.
#[test]
fn long_unique_lists_merge_item_by_item() {
    use super::merge::merge;
    use crate::model::location::KeyPath;
    let doc = |from: usize| {
        let ports: Vec<String> = (from..from + 40_000).map(|p| format!("{p}:80")).collect();
        serde_yaml::to_value(serde_json::json!({"services": {"app": {"ports": ports}}})).unwrap()
    };
    let (merged, origins) = merge(vec![(0, doc(1)), (1, doc(20_001))]);
    let ports = merged["services"]["app"]["ports"].as_sequence().unwrap();
    assert_eq!(ports.len(), 60_000);
    let first = KeyPath::root().key("services").key("app").key("ports");
    assert_eq!(origins.resolve(&first.index(0)), Some((0, first.index(0))));
    // `20001:80` was written by both: the later file's item, in the earlier one's place.
    assert_eq!(
        origins.resolve(&first.index(20_000)),
        Some((1, first.index(0)))
    );
    assert_eq!(
        origins.resolve(&first.index(59_999)),
        Some((1, first.index(39_999)))
    );
}
