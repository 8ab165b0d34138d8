//! Interpolation in compose files: the order of the sources, values typed after
//! interpolation, unset variables and errors with their positions, the literal project
//! name, and host values kept secret.

use super::super::*;

/// The compose file of these tests: `stack/compose.yaml`, so the project is `stack`.
const FILE: &str = "stack/compose.yaml";

/// Loads `yaml` with the committed `stack/.env` and the host's `.env` given; `host:
/// None` reads no host `.env`, as `berth validate` does.
fn load_with(yaml: &str, committed: Option<&str>, host: Option<Option<&str>>) -> Loaded {
    let mut tree = MemTree::new().with(FILE, yaml.as_bytes());
    if let Some(c) = committed {
        tree = tree.with("stack/.env", c.as_bytes());
    }
    let host_env = host.map(|text| {
        let text = text.map(str::to_string);
        HostEnv::new(move |project| {
            assert_eq!(project, "stack", "the host's .env is read for the project");
            Ok(text.clone().map(|text| HostDotEnv {
                path: "/etc/berth/stack/.env".to_string(),
                text,
            }))
        })
    });
    let opts = LoadOptions {
        host_env,
        ..LoadOptions::default()
    };
    load_tree_with(&tree, "stack", &opts).expect("readable")
}

fn spec_with(yaml: &str, committed: Option<&str>, host: Option<&str>) -> Spec {
    let loaded = load_with(yaml, committed, Some(host));
    match loaded.spec {
        Some(s) => s,
        None => panic!("{}", loaded.diagnostics),
    }
}

fn headlines(loaded: &Loaded) -> Vec<String> {
    loaded.diagnostics.0.iter().map(|d| d.headline()).collect()
}

/// A file whose service `app` sets `V` to `expr`.
fn env_file(expr: &str) -> String {
    format!(
        "services:\n  app:\n    image: r/app:1\n    healthcheck: {{ disable: true }}\n    environment:\n      V: \"{expr}\"\n"
    )
}

#[test]
fn the_host_env_wins_over_the_committed_env_over_the_default() {
    let cases: &[(Option<&str>, Option<&str>, &str, &str)] = &[
        // (host .env, committed .env, expression, value)
        (Some("X=host"), Some("X=committed"), "${X:-default}", "host"),
        (None, Some("X=committed"), "${X:-default}", "committed"),
        (
            Some("Y=other"),
            Some("X=committed"),
            "${X:-default}",
            "committed",
        ),
        (Some("X=host"), None, "${X:-default}", "host"),
        (None, None, "${X:-default}", "default"),
        (Some("X="), Some("X=committed"), "${X:-default}", "default"),
        (Some("X="), Some("X=committed"), "${X-default}", ""),
        (None, Some("X=committed"), "$X/${X}", "committed/committed"),
        (None, Some("A=1\nB=${A}2"), "$B", "12"),
        (None, None, "pa$$word", "pa$word"),
        (None, Some("X=committed"), "$${X}", "${X}"),
        (None, None, "^x$", "^x$"),
    ];
    for (host, committed, expr, expected) in cases {
        let s = spec_with(&env_file(expr), *committed, *host);
        assert_eq!(
            s.services["app"].env["V"], *expected,
            "{expr:?} with host {host:?}, committed {committed:?}"
        );
    }
}

#[test]
fn the_process_environment_is_never_read() {
    // Set in this test process only; no other test reads this name.
    std::env::set_var("BERTH_TEST_ONLY_IN_PROCESS", "from-the-process");
    let yaml = env_file("${BERTH_TEST_ONLY_IN_PROCESS:-default}");
    assert_eq!(
        spec_with(&yaml, None, None).services["app"].env["V"],
        "default"
    );
    let loaded = load_with(&env_file("$BERTH_TEST_ONLY_IN_PROCESS"), None, Some(None));
    assert_eq!(loaded.spec.as_ref().unwrap().services["app"].env["V"], "");
    assert_eq!(
        headlines(&loaded),
        ["stack/compose.yaml:6:11: warning: services.app.environment.V: `BERTH_TEST_ONLY_IN_PROCESS` is not set in the host's .env nor the committed .env and has no default; it is replaced by an empty string"]
    );
}

#[test]
fn values_are_typed_after_interpolation() {
    let committed = "N=5\nPOLICY=always\nAPI_TAG=2.4.1\nRO=true\nEXT=false\nS=2\n";
    let yaml = "services:\n  app:\n    image: reg.example/api:${API_TAG}\n    restart: ${POLICY}\n    healthcheck:\n      test: [\"CMD\", \"true\"]\n      retries: $N\n      interval: ${INTERVAL:-15s}\n    deploy:\n      replicas: ${R:-2}\n    volumes:\n      - type: volume\n        source: data\n        target: /data\n        read_only: $RO\n    networks: [front]\n  db:\n    image: postgres:16\n    scale: \"1\"\n    healthcheck: { disable: \"${OFF:-true}\" }\n    ports: [\"${HOST_IP:-127.0.0.1}:5432:5432\"]\n    expose: [\"$S\"]\nvolumes:\n  data: {}\nnetworks:\n  front:\n    external: $EXT\n";
    let s = spec_with(yaml, Some(committed), None);
    let app = &s.services["app"];
    assert_eq!(app.image.to_string(), "reg.example/api:2.4.1");
    let Health::Check(h) = &app.health else {
        panic!("{:?}", app.health)
    };
    assert_eq!(
        (h.retries, h.interval),
        (5, std::time::Duration::from_secs(15))
    );
    assert_eq!(app.replicas, 2);
    assert!(app.volumes[0].read_only);
    assert!(!s.networks["front"].external);
    let db = &s.services["db"];
    assert_eq!(db.replicas, 1);
    assert_eq!(db.health, Health::Disabled);
    assert_eq!(db.ports[0].host_ip.as_deref(), Some("127.0.0.1"));
    assert_eq!(
        (db.ports[0].host_port, db.ports[0].container_port),
        (5432, 5432)
    );
    assert_eq!(db.expose, [2]);

    // The host's value wins in a port too.
    let s = spec_with(yaml, Some(committed), Some("HOST_IP=10.0.0.5\n"));
    assert_eq!(
        s.services["db"].ports[0].host_ip.as_deref(),
        Some("10.0.0.5")
    );
}

#[test]
fn a_value_that_does_not_read_as_its_type_is_reported_by_its_reader() {
    let yaml = "services:\n  app:\n    image: r/app:1\n    healthcheck:\n      test: [\"CMD\", \"true\"]\n      retries: $N\n";
    let loaded = load_with(yaml, Some("N=many\n"), None);
    assert_eq!(
        headlines(&loaded),
        ["stack/compose.yaml:6:16: error: services.app.healthcheck.retries: expected a whole number from 1 to 100; found the string `many`"]
    );
}

#[test]
fn unset_variables_warn_except_in_image() {
    let yaml = "services:\n  app:\n    image: reg.example/app:${TAG}\n    healthcheck: { disable: true }\n    environment:\n      LOG: \"level=${LOG_LEVEL}\"\n      PLAIN: x-$MISSING\n";
    // Without the host's .env, as `berth validate` loads.
    let loaded = load_with(yaml, None, None);
    assert!(loaded.spec.is_none());
    assert_eq!(
        headlines(&loaded),
        [
            "stack/compose.yaml:3:28: error: services.app.image: `TAG` is not set and has no default, so the image reference is incomplete; set it in the committed .env or the host's, or write `${TAG:-default}`",
            "stack/compose.yaml:6:19: warning: services.app.environment.LOG: `LOG_LEVEL` is not set in the committed .env and has no default; it is replaced by an empty string unless the host's .env sets it (not read here)",
            "stack/compose.yaml:7:16: warning: services.app.environment.PLAIN: `MISSING` is not set in the committed .env and has no default; it is replaced by an empty string unless the host's .env sets it (not read here)",
        ]
    );
    // Set, nothing is said.
    let loaded = load_with(yaml, Some("TAG=1\nLOG_LEVEL=info\nMISSING=m\n"), None);
    assert_eq!(headlines(&loaded), Vec::<String>::new());
    assert_eq!(
        loaded.spec.unwrap().services["app"].env["LOG"],
        "level=info"
    );
}

#[test]
fn a_variable_in_an_anchor_is_reported_where_it_is_used_once() {
    let yaml = "x-env: &env\n  V: ${UNSET_ONE}\nservices:\n  app:\n    image: r/app:1\n    healthcheck: { disable: true }\n    environment: *env\n";
    let loaded = load_with(yaml, None, None);
    let h = headlines(&loaded);
    assert_eq!(h.len(), 1, "{h:?}");
    assert!(
        h[0].contains("services.app.environment.V: `UNSET_ONE` is not set"),
        "{h:?}"
    );
}

#[test]
fn interpolation_errors_are_errors_at_their_position() {
    let cases: &[(&str, &str)] = &[
        (
            "${DB_URL:?set DB_URL in the host's .env}",
            "stack/compose.yaml:6:11: error: services.app.environment.V: `${DB_URL:?set DB_URL in the host's .env}`: DB_URL is not set or is empty: set DB_URL in the host's .env",
        ),
        (
            "a ${X?}",
            "stack/compose.yaml:6:13: error: services.app.environment.V: `${X?}`: X is not set: set it in the host's .env or the committed .env",
        ),
        (
            "${1X}",
            "stack/compose.yaml:6:11: error: services.app.environment.V: invalid interpolation `${1X}`: a variable name starts with a letter or `_`; write `$$` for a literal `$`",
        ),
    ];
    for (expr, expected) in cases {
        let loaded = load_with(&env_file(expr), None, Some(None));
        assert!(loaded.spec.is_none(), "{expr}");
        assert_eq!(headlines(&loaded), [*expected], "{expr}");
    }
}

#[test]
fn the_project_name_is_literal() {
    let loaded = load_with(
        "name: ${PROJECT:-shop}\nservices:\n  app:\n    image: r/app:1\n",
        Some("PROJECT=shop\n"),
        None,
    );
    assert!(loaded.spec.is_none());
    assert!(
        headlines(&loaded)[0].starts_with("stack/compose.yaml:1:7: error: name: `name: ${PROJECT:-shop}` must be written literally for berth"),
        "{:?}",
        headlines(&loaded)
    );
}

#[test]
fn a_broken_env_file_is_an_error_at_its_line() {
    let loaded = load_with(&env_file("$X"), Some("X=1\nBAD KEY=2\n"), None);
    assert!(loaded.spec.is_none());
    let d = loaded.diagnostics.errors().next().unwrap();
    assert_eq!(
        (d.location.file.as_str(), d.location.line),
        ("stack/.env", 2)
    );
    assert_eq!(d.source_line.as_deref(), Some("BAD KEY=2"));

    // The host's lines are never quoted.
    let loaded = load_with(&env_file("$X"), None, Some(Some("X=1\nBAD KEY=hunter2\n")));
    let d = loaded.diagnostics.errors().next().unwrap();
    assert_eq!(
        (d.location.file.as_str(), d.location.line),
        ("/etc/berth/stack/.env", 2)
    );
    assert_eq!(d.source_line, None);
    assert!(!d.message.contains("hunter2"), "{}", d.message);
}

#[test]
fn host_values_are_recorded_as_secrets_and_masked() {
    let yaml = "services:\n  app:\n    image: r/app:${TAG}\n    healthcheck: { disable: true }\n    environment:\n      DATABASE: \"postgres://app:${DB_PASS}@db/app\"\n      MODE: ${MODE}\n";
    let s = spec_with(
        yaml,
        Some("TAG=1.0\nMODE=committed-mode\nDB_PASS=not-this\n"),
        Some("DB_PASS=hunter2-secret\n"),
    );
    assert_eq!(
        s.secrets,
        ["hunter2-secret", "postgres://app:hunter2-secret@db/app"]
    );
    let env = &s.services["app"].env;
    assert_eq!(env["DATABASE"], "postgres://app:hunter2-secret@db/app");
    assert_eq!(
        env["MODE"], "committed-mode",
        "committed values are not secret"
    );

    let desired = crate::plan::Desired::resolve(s, std::path::Path::new("/nonexistent"));
    let redactor = crate::executor::Redactor::from_desired(&desired);
    assert_eq!(
        redactor.redact(
            "started with DATABASE=postgres://app:hunter2-secret@db/app MODE=committed-mode"
        ),
        "started with DATABASE=*** MODE=committed-mode"
    );
    assert_eq!(redactor.redact("password hunter2-secret"), "password ***");

    // A reader quoting a host value in a diagnostic quotes it masked.
    let yaml = "services:\n  app:\n    image: r/app:1\n    healthcheck:\n      test: [\"CMD\", \"true\"]\n      retries: $N\n";
    let loaded = load_with(yaml, None, Some(Some("N=hunter2-secret\n")));
    assert_eq!(
        headlines(&loaded),
        ["stack/compose.yaml:6:16: error: services.app.healthcheck.retries: expected a whole number from 1 to 100; found the string `***`"]
    );
}

#[test]
fn no_host_env_file_is_no_variables() {
    let s = spec_with(&env_file("${X:-d}"), None, None);
    assert_eq!(s.services["app"].env["V"], "d");
    assert!(s.secrets.is_empty());

    // A host that cannot read it says so.
    let tree = MemTree::new().with(FILE, env_file("x").as_bytes());
    let opts = LoadOptions {
        host_env: Some(HostEnv::new(|_| {
            Err("/etc/berth/stack/.env is not a regular file".into())
        })),
        ..LoadOptions::default()
    };
    let loaded = load_tree_with(&tree, "stack", &opts).unwrap();
    assert_eq!(
        headlines(&loaded),
        ["stack/compose.yaml:1:1: error: the host's .env cannot be read: /etc/berth/stack/.env is not a regular file"]
    );
}

#[test]
fn many_references_to_a_long_variable_cannot_blow_the_file_up() {
    let committed = format!("BIG={}\n", "x".repeat(512 << 10));
    let env: String = (0..64)
        .map(|i| format!("      V{i}: \"${{BIG}}\"\n"))
        .collect();
    let yaml = format!(
        "services:\n  app:\n    image: r/app:1\n    healthcheck: {{ disable: true }}\n    environment:\n{env}"
    );
    let loaded = load_with(&yaml, Some(&committed), None);
    assert!(loaded.spec.is_none());
    let all = headlines(&loaded).join("\n");
    assert!(
        all.contains("interpolation makes the file's values larger than 16 MiB"),
        "{all}"
    );
}

#[test]
fn unset_variables_past_the_diagnostics_cap_are_not_kept_but_an_image_still_fails() {
    let refs = "${NOPE}".repeat(5_000);
    let yaml = format!(
        "services:\n  app:\n    image: r/app:${{TAG}}\n    healthcheck: {{ disable: true }}\n    environment:\n      V: \"{refs}\"\n"
    );
    let loaded = load_with(&yaml, None, None);
    assert!(loaded.spec.is_none(), "the image's unset TAG is an error");
    assert!(
        loaded.diagnostics.0.len() <= 101,
        "{}",
        loaded.diagnostics.0.len()
    );
}
