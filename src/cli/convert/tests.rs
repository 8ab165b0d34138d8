//! `berth convert`: format v1 inputs come out as compose files that read back to the
//! same spec, values as committed (nothing masked), and what has no compose form is
//! refused.

use super::convert;
use crate::model::*;

fn load(files: &[(&str, &str)], config: &str) -> Spec {
    let mut tree = MemTree::new();
    for (p, c) in files {
        tree = tree.with(p, c.as_bytes());
    }
    let opts = LoadOptions {
        allow_host_paths: vec![AllowedHostPath::writable("/")],
        ..LoadOptions::default()
    };
    let loaded = load_tree_with(&tree, config, &opts).expect("readable");
    loaded
        .spec
        .unwrap_or_else(|| panic!("{config}: {}", loaded.diagnostics))
}

/// Reads `text` back as `<dir>/compose.yaml` beside `files`.
fn read_back(text: &str, dir: &str, files: &[(&str, &str)]) -> Spec {
    let file = format!("{dir}/compose.yaml");
    let mut all: Vec<(&str, &str)> = files.to_vec();
    all.retain(|(p, _)| !p.ends_with("berth.yaml"));
    all.push((&file, text));
    load(&all, &file)
}

const V1: &str = r#"project: shop
networks: { backend: {}, edge: {} }
volumes: { pgdata: {}, shared: { external: true } }
services:
  api:
    image: reg.example/api:1.4.2
    replicas: 2
    command: ["uvicorn", "app:app"]
    env: { LOG_LEVEL: info, API_TOKEN: committed-token-value, GREETING: "costs $5" }
    networks: [backend]
    volumes: ["pgdata:/var/lib/data", "shared:/shared:ro"]
    health: { test: ["CMD", "wget", "-q", "-O-", "http://127.0.0.1:8000/health"], interval: 5s }
    update: { order: start-first, parallelism: 1, monitor: 10s }
    depends_on: [worker]
  worker:
    image: reg.example/api:1.4.2
    networks: [backend]
  proxy:
    image: reg.example/caddy:2
    ports: ["80:80", "127.0.0.1:8443:443/udp"]
    networks: [backend, edge]
    volumes: ["./files/Caddyfile:/etc/caddy/Caddyfile:ro"]
    depends_on: [api]
"#;

#[test]
fn a_v1_stack_reads_back_to_the_same_spec_with_its_values_as_committed() {
    let files = [
        ("stack/berth.yaml", V1),
        ("stack/files/Caddyfile", ":80 {\n}\n"),
    ];
    let spec = load(&files, "stack/berth.yaml");
    let text = convert(&spec, "stack").unwrap();
    let back = read_back(&text, "stack", &files);
    let mut expected = spec.clone();
    for s in expected.services.values_mut() {
        s.depends_on.sort();
    }
    assert_eq!(back, expected, "{text}");
    // Committed values stay as written: the output replaces the input in the repository.
    assert!(text.contains("committed-token-value"), "{text}");
    assert!(text.contains("costs $$5"), "{text}");
    assert!(text.contains("name: shop"), "{text}");
    assert!(
        text.contains("./files/Caddyfile:/etc/caddy/Caddyfile:ro")
            || text.contains("source: ./files/Caddyfile"),
        "{text}"
    );
}

#[test]
fn migrations_are_refused_with_what_to_do() {
    let spec = load(
        &[(
            "berth.yaml",
            "project: shop
services:
  api: { image: reg.example/api:1 }
migrations:
  schema: { from: api, command: [\"migrate\"] }
",
        )],
        "berth.yaml",
    );
    let e = convert(&spec, "").unwrap_err();
    assert_eq!(
        e,
        "migrations (schema) have no compose form berth reads yet; keep format v1 for this project"
    );
}
