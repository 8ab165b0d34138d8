//! Compose jobs compiled into migrations: the seed's profiled `migrate` service, the
//! `service_completed_successfully` form, a job on its own image, restart policies, and
//! what a job may not ask for.

use std::time::Duration;

use super::super::*;

use super::tests::{errors, spec, warnings};

/// An api and its workers on one image, a web frontend on another.
const STACK: &str = "services:
  api:
    image: reg.example/api:1.0
    env_file: /etc/berth/stack/api.env
    healthcheck: { test: [\"CMD\", \"true\"] }
  worker:
    image: reg.example/api:1.0
    healthcheck: { test: [\"CMD\", \"true\"] }
  web:
    image: reg.example/web:1.0
    healthcheck: { test: [\"CMD\", \"true\"] }
";

#[test]
fn the_profiled_migrate_service_becomes_a_migration() {
    let yaml = format!(
        "{STACK}  migrate:
    image: reg.example/api:1.0
    command: alembic upgrade head
    env_file: /etc/berth/stack/api.env
    environment: {{ MODE: migrate }}
    profiles: [migrate]
    x-berth:
      migration: {{ gates: [api, worker], timeout: 5m }}
"
    );
    let s = spec(&yaml);
    assert!(!s.services.contains_key("migrate"));
    let m = &s.migrations["migrate"];
    assert_eq!(m.gates, ["api", "worker"]);
    assert_eq!(m.from, "api");
    assert_eq!(m.command, ["alembic", "upgrade", "head"]);
    assert_eq!(m.timeout, Duration::from_secs(300));
    assert_eq!(m.run_on, None);
    let job = m.job.as_ref().unwrap();
    assert_eq!(job.image, s.services["api"].image);
    assert_eq!(job.env["MODE"], "migrate");
    assert_eq!(
        job.env_files,
        [EnvFileRef {
            path: "/etc/berth/stack/api.env".into(),
            required: true,
            sealed: None,
        }]
    );
    assert_eq!(job.networks, ["default"]);
    // Neither left out nor warned about a missing health check.
    assert_eq!(warnings(&yaml), Vec::<String>::new());
}

#[test]
fn a_service_waited_for_to_complete_is_a_job_gating_its_dependants() {
    let yaml = "services:
  api:
    image: reg.example/api:1.0
    healthcheck: { test: [\"CMD\", \"true\"] }
    depends_on:
      migrate: { condition: service_completed_successfully }
      db: { condition: service_healthy }
  worker:
    image: reg.example/api:1.0
    healthcheck: { test: [\"CMD\", \"true\"] }
    depends_on:
      migrate: { condition: service_completed_successfully, required: true }
  db:
    image: reg.example/db:16
    healthcheck: { test: [\"CMD\", \"true\"] }
  migrate:
    image: reg.example/api:1.0
    command: [\"migrate\"]
    restart: on-failure
";
    let s = spec(yaml);
    let m = &s.migrations["migrate"];
    assert_eq!(m.gates, ["api", "worker"]);
    assert_eq!(m.timeout, Duration::from_secs(600), "v1's default");
    assert_eq!(s.services["api"].depends_on, ["db"]);
    assert!(s.services["worker"].depends_on.is_empty());
    assert_eq!(s.services.len(), 3);
}

#[test]
fn a_job_on_its_own_image_is_keyed_by_its_own_image_and_placed_with_what_it_gates() {
    let yaml = format!(
        "{STACK}    depends_on:\n      init: {{ condition: service_completed_successfully }}\n  init:\n    image: reg.example/tool:1\n    command: [\"sh\", \"-c\", \"chown -R 1000 /data\"]\n    volumes: [\"data:/data\"]\n    depends_on: [worker]\n    deploy:\n      restart_policy: {{ condition: none }}\nvolumes:\n  data: {{}}\n"
    );
    let s = spec(&yaml);
    let m = &s.migrations["init"];
    assert_eq!(m.gates, ["web"]);
    assert_eq!(m.from, "web");
    let job = m.job.as_ref().unwrap();
    assert_eq!(job.image.to_string(), "reg.example/tool:1");
    assert_eq!(job.volumes[0].source, MountSource::Volume("data".into()));
    // The gated service waits for what the job waits for.
    assert_eq!(s.services["web"].depends_on, ["worker"]);
}

#[test]
fn a_service_left_out_by_its_profiles_makes_nothing_a_job() {
    let yaml = format!("{STACK}  debug:\n    image: reg.example/tool:1\n    profiles: [debug]\n    depends_on:\n      web: {{ condition: service_completed_successfully }}\n");
    let s = spec(&yaml);
    assert!(s.migrations.is_empty());
    assert!(s.services.contains_key("web"));
}

#[test]
fn without_dependants_or_gates_a_job_gates_the_services_on_its_image() {
    let yaml = format!(
        "{STACK}  migrate:\n    image: reg.example/api:1.0\n    command: [\"m\"]\n    x-berth: {{ migration: {{ run_on: db-1 }} }}\n"
    );
    let m = &spec(&yaml).migrations["migrate"];
    assert_eq!(m.gates, ["api", "worker"]);
    assert_eq!(m.run_on.as_deref(), Some("db-1"));
    let yaml = format!(
        "{STACK}  migrate:\n    image: reg.example/other:1\n    x-berth: {{ migration: {{}} }}\n"
    );
    assert_eq!(errors(&yaml), ["stack/compose.yaml:12:3: error: services.migrate: job `migrate` gates no service: nothing waits for it with `condition: service_completed_successfully`, no service runs its image, and `x-berth.migration.gates` is not set; say which services wait for it"]);
}

#[test]
fn restart_policies_are_read_as_compose_users_expect() {
    let job = |extra: &str| {
        format!("{STACK}    depends_on:\n      migrate: {{ condition: service_completed_successfully }}\n  migrate:\n    image: reg.example/api:1.0\n{extra}")
    };
    for ok in [
        "    restart: \"no\"\n",
        "    restart: on-failure\n",
        "    restart: on-failure:3\n",
        "    deploy: { restart_policy: { condition: none } }\n",
        "    deploy: { restart_policy: { condition: on-failure } }\n",
    ] {
        assert_eq!(errors(&job(ok)), Vec::<String>::new(), "{ok}");
    }
    assert_eq!(
        errors(&job("    restart: always\n")),
        ["stack/compose.yaml:16:14: error: services.migrate.restart: `restart: always` would run this job again after it succeeded; a job runs to completion once per image: use `no` or `on-failure`"]
    );
    assert_eq!(
        errors(&job("    deploy: { restart_policy: { condition: any } }\n")),
        ["stack/compose.yaml:16:44: error: services.migrate.deploy.restart_policy.condition: `condition: any` would run this job again after it succeeded; a job runs to completion once per image: use `none` or `on-failure`"]
    );
    // A long-running service is restarted whatever happens; `no` there names a job
    // nothing waits for.
    let errs = errors(&format!("{STACK}    restart: \"no\"\n"));
    assert_eq!(errs.len(), 1);
    assert!(
        errs[0].starts_with("stack/compose.yaml:12:14: error: services.web.restart: `restart: no` is for a one-shot job, and nothing waits for this service to complete"),
        "{}",
        errs[0]
    );
    let errs = errors(&format!("{STACK}    restart: on-failure:x\n"));
    assert!(errs[0].contains("unknown restart policy"), "{errs:?}");
}

#[test]
fn a_job_is_waited_for_to_complete_not_to_be_healthy() {
    let yaml = format!("{STACK}    depends_on:\n      migrate: {{ condition: service_completed_successfully }}\n  worker2:\n    image: reg.example/api:1.0\n    healthcheck: {{ test: [\"CMD\", \"true\"] }}\n    depends_on: [migrate]\n  migrate:\n    image: reg.example/api:1.0\n");
    assert_eq!(errors(&yaml), ["stack/compose.yaml:17:18: error: services.worker2.depends_on[0]: `migrate` is a job (it runs to completion, it is never healthy); wait for it with `migrate: { condition: service_completed_successfully }`"]);
}

/// A pusher gets no more from a job than from a format v1 migration: a container
/// compiled by the rules of every service, run once, publishing nothing, gating only
/// services of its own project.
#[test]
fn a_job_asks_for_no_more_than_a_service_or_a_migration() {
    let job = |extra: &str| {
        format!("{STACK}    depends_on:\n      migrate: {{ condition: service_completed_successfully }}\n  migrate:\n    image: reg.example/api:1.0\n{extra}")
    };
    let cases: &[(&str, &str)] = &[
        ("    privileged: true\n", "stack/compose.yaml:16:5: error: services.migrate.privileged: `privileged` is not allowed"),
        ("    network_mode: host\n", "stack/compose.yaml:16:5: error: services.migrate.network_mode: `network_mode` is not allowed"),
        ("    pid: host\n", "stack/compose.yaml:16:5: error: services.migrate.pid: `pid` is not allowed"),
        ("    cap_add: [SYS_ADMIN]\n", "stack/compose.yaml:16:5: error: services.migrate.cap_add: `cap_add` is not allowed"),
        ("    volumes: [\"/:/host\"]\n", "stack/compose.yaml:16:15: error: services.migrate.volumes[0]"),
        ("    labels: { berth.project: other }\n", "stack/compose.yaml:16:15: error: services.migrate.labels.berth.project"),
        ("    ports: [\"22:22\"]\n", "stack/compose.yaml:16:12: error: services.migrate.ports: job `migrate` publishes host ports"),
        ("    deploy: { replicas: 3 }\n", "stack/compose.yaml:16:25: error: services.migrate.deploy.replicas: job `migrate` has 3 replicas"),
        ("    scale: 2\n", "stack/compose.yaml:16:12: error: services.migrate.scale: job `migrate` has 2 replicas"),
        ("    x-berth: { migration: { gates: [other_stack] } }\n", "stack/compose.yaml:16:37: error: services.migrate.x-berth.migration.gates[0]: `gates` names `other_stack`, which is not a deployed service"),
        ("    x-berth: { migration: { gates: api } }\n", "stack/compose.yaml:16:36: error: services.migrate.x-berth.migration.gates"),
        ("    x-berth: { migration: { timeout: 0s } }\n", "stack/compose.yaml:16:38: error: services.migrate.x-berth.migration.timeout"),
        ("    x-berth: { migration: { command: [rm] } }\n", "stack/compose.yaml:16:29: error: services.migrate.x-berth.migration.command: unknown key `command`"),
        ("    depends_on: [web]\n", "stack/compose.yaml:16:17: error: services.migrate.depends_on: job `migrate` waits for `web`, which waits for the job"),
        ("    deploy: { placement: { constraints: [\"node.hostname == db-1\"] } }\n", "stack/compose.yaml:16:26: error: services.migrate.deploy.placement: job `migrate` has a placement"),
        ("    deploy: { mode: replicated-job }\n", "stack/compose.yaml:16:21: error: services.migrate.deploy.mode: `mode: replicated-job` (Swarm's jobs) is not supported"),
        ("    restart: unless-stopped\n", "stack/compose.yaml:16:14: error: services.migrate.restart: `restart: unless-stopped` would run this job again"),
    ];
    let mut missed = Vec::new();
    for (extra, want) in cases {
        let errs = errors(&job(extra));
        if !errs.iter().any(|e| e.starts_with(want)) {
            missed.push(format!("{extra}: {errs:#?}\n  want {want}"));
        }
    }
    assert!(missed.is_empty(), "{}", missed.join("\n"));
    // A job waiting for a job, and a job named as no migration can be.
    let yaml = format!("{STACK}    depends_on:\n      migrate: {{ condition: service_completed_successfully }}\n  migrate:\n    image: reg.example/api:1.0\n    depends_on:\n      seed: {{ condition: service_completed_successfully }}\n  seed:\n    image: reg.example/api:1.0\n    x-berth: {{ migration: {{ gates: [api] }} }}\n");
    assert!(
        errors(&yaml)
            .iter()
            .any(|e| e.contains("job `migrate` waits for another job, `seed`")),
        "{:?}",
        errors(&yaml)
    );
    let yaml = format!("{STACK}    depends_on:\n      db_migrate: {{ condition: service_completed_successfully }}\n  db_migrate:\n    image: reg.example/api:1.0\n");
    assert_eq!(errors(&yaml), ["stack/compose.yaml:14:3: error: services.db_migrate: job name `db_migrate` is not supported; a job is a migration, named by a lowercase letter then up to 30 lowercase letters, digits or `-`"]);
}
