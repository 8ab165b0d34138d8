//! The switch plan as a value: what is handed over, in which order services switch and
//! how, and what is left alone.

use std::path::Path;

use super::*;
use crate::model::{load_tree_with, AllowedHostPath, LoadOptions, MemTree};
use crate::runtime::compose::{ComposeContainer, ComposeObject, ComposeProject};

fn spec(yaml: &str) -> Spec {
    let tree = MemTree::new().with("shop/compose.yaml", yaml.as_bytes());
    let opts = LoadOptions {
        allow_host_paths: vec![AllowedHostPath::writable("/")],
        ..LoadOptions::default()
    };
    let loaded = load_tree_with(&tree, "shop/compose.yaml", &opts).unwrap();
    loaded
        .spec
        .unwrap_or_else(|| panic!("{}", loaded.diagnostics))
}

fn container(name: &str, service: &str, publishes: bool) -> ComposeContainer {
    ComposeContainer {
        id: format!("id-{name}"),
        name: name.into(),
        service: service.into(),
        running: true,
        oneoff: false,
        networks: vec!["shop_default".into()],
        publishes,
    }
}

fn object(name: &str, short: &str) -> ComposeObject {
    ComposeObject {
        name: name.into(),
        short: short.into(),
        berth: false,
    }
}

const STACK: &str = "services:
  proxy:
    image: reg.example/caddy:2
    ports: [\"80:80\"]
    depends_on: [api]
  api:
    image: reg.example/api:1
    volumes: [\"data:/data\", \"shared:/shared\"]
    depends_on: [db]
  db:
    image: reg.example/db:1
    volumes: [\"pgdata:/var/lib/postgresql/data\"]
volumes:
  data: {}
  pgdata: {}
  shared: { external: true }
";

fn compose() -> ComposeProject {
    ComposeProject {
        containers: vec![
            container("shop_api_1", "api", false),
            container("shop_api_2", "api", false),
            container("shop_db_1", "db", false),
            ComposeContainer {
                oneoff: true,
                ..container("shop_api_run_3f2c", "api", false)
            },
            container("shop_old_1", "old", false),
            container("shop_proxy_1", "proxy", true),
        ],
        volumes: vec![
            object("shop_cache", "cache"),
            object("shop_data", "data"),
            object("shop_pgdata", "pgdata"),
            object("shop_shared", "shared"),
        ],
        networks: vec![object("shop_default", "default")],
    }
}

#[test]
fn declared_objects_are_handed_over_and_services_switch_in_dependency_order() {
    let plan = SwitchPlan::new(&spec(STACK), &compose());
    assert_eq!(plan.project, "shop");
    let names = |h: &[Handover]| h.iter().map(|h| h.name.clone()).collect::<Vec<_>>();
    assert_eq!(names(&plan.volumes), ["shop_data", "shop_pgdata"]);
    assert_eq!(names(&plan.networks), ["shop_default"]);
    let services: Vec<(&str, Order, Vec<String>)> = plan
        .services
        .iter()
        .map(|s| (s.service.as_str(), s.order, s.containers.clone()))
        .collect();
    assert_eq!(
        services,
        [
            ("db", Order::StartFirst, vec!["shop_db_1".to_string()]),
            (
                "api",
                Order::StartFirst,
                vec!["shop_api_1".to_string(), "shop_api_2".to_string()]
            ),
            ("proxy", Order::StopFirst, vec!["shop_proxy_1".to_string()]),
        ]
    );
    assert_eq!(
        plan.left,
        [
            "volume shop_cache: the desired state does not declare it",
            "volume shop_shared: the desired state declares `shared` external; used under its own name as it is",
            "container shop_api_run_3f2c: a one-off container (`docker-compose run`)",
            "container shop_old_1: service `old` is not in the desired state of this host",
        ]
    );
    assert_eq!(
        plan.adopted(),
        Adopted {
            volumes: ["shop_data".to_string(), "shop_pgdata".to_string()].into(),
            networks: ["shop_default".to_string()].into(),
        }
    );
}

#[test]
fn a_service_publishing_ports_on_compose_s_side_only_switches_stop_first() {
    let mut project = compose();
    project.containers = vec![container("shop_db_1", "db", true)];
    let plan = SwitchPlan::new(&spec(STACK), &project);
    assert_eq!(plan.services[0].order, Order::StopFirst);
}

#[test]
fn a_service_updated_stop_first_switches_stop_first() {
    let stateful = STACK.replace(
        "  db:\n    image: reg.example/db:1\n",
        "  db:\n    image: reg.example/db:1\n    deploy: { update_config: { order: stop-first } }\n",
    );
    let plan = SwitchPlan::new(&spec(&stateful), &compose());
    assert_eq!(plan.services[0].service, "db");
    assert_eq!(plan.services[0].order, Order::StopFirst);
    assert!(plan
        .render(std::time::Duration::from_secs(1))
        .contains("  db     stop-first (its update order is stop-first): shop_db_1 stops, then berth's replicas start; unserved until they pass their gate\n"));
}

#[test]
fn objects_berth_already_owns_or_under_other_names_are_not_handed_over() {
    let mut project = compose();
    project.volumes = vec![
        ComposeObject {
            berth: true,
            ..object("shop_data", "data")
        },
        // compose's label says `pgdata`, but the Docker name is not the one berth
        // would give it.
        object("elsewhere_pgdata", "pgdata"),
    ];
    let plan = SwitchPlan::new(&spec(STACK), &project);
    assert!(plan.volumes.is_empty(), "{plan:?}");
    assert_eq!(
        plan.left[..2],
        [
            "volume shop_data: already berth's",
            "volume elsewhere_pgdata: the desired state's `pgdata` is `shop_pgdata` on this host, another object",
        ]
    );
}

#[test]
fn nothing_of_compose_is_an_empty_plan() {
    let plan = SwitchPlan::new(&spec(STACK), &ComposeProject::default());
    assert!(plan.is_empty());
}

#[test]
fn the_record_keeps_each_project_and_adds_to_it() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    assert_eq!(Adopted::read(&state, "shop").unwrap(), Adopted::default());
    let first = Adopted {
        volumes: ["shop_data".to_string()].into(),
        networks: ["shop_default".to_string()].into(),
    };
    first.record(&state, "shop").unwrap();
    Adopted {
        volumes: ["blog_db".to_string()].into(),
        ..Adopted::default()
    }
    .record(&state, "blog")
    .unwrap();
    Adopted {
        volumes: ["shop_pgdata".to_string()].into(),
        ..Adopted::default()
    }
    .record(&state, "shop")
    .unwrap();
    let shop = Adopted::read(&state, "shop").unwrap();
    assert_eq!(
        shop.volumes,
        ["shop_data".to_string(), "shop_pgdata".to_string()].into()
    );
    assert_eq!(shop.networks, first.networks);
    assert_eq!(
        Adopted::read(&state, "blog").unwrap().volumes,
        ["blog_db".to_string()].into()
    );
    assert_eq!(Adopted::read(&state, "other").unwrap(), Adopted::default());

    std::fs::write(Adopted::path(&state), "{not json").unwrap();
    let e = Adopted::read(&state, "shop").unwrap_err();
    assert!(
        e.to_string()
            .starts_with(&format!("{}: ", Adopted::path(&state).display())),
        "{e}"
    );
    assert!(Path::new(&Adopted::path(&state)).exists());
}

#[test]
fn the_dry_run_says_what_happens_to_what() {
    let plan = SwitchPlan::new(&spec(STACK), &compose());
    let text = plan.render(std::time::Duration::from_secs(1));
    assert_eq!(
        text,
        "docker compose project `shop` → berth project `shop`
volumes handed over (used as they are; berth never removes them):
  shop_data (`data`)
  shop_pgdata (`pgdata`)
networks handed over (used as they are; berth never removes them):
  shop_default (`default`)
services, in dependency order:
  db     start-first: berth's replicas start and pass their gate, then shop_db_1 leaves its alias, drain 1000ms and stops
  api    start-first: berth's replicas start and pass their gate, then shop_api_1, shop_api_2 leave their alias, drain 1000ms and stop
  proxy  stop-first (publishes host ports): shop_proxy_1 stops, then berth's replicas start; unserved until they pass their gate
left alone:
  volume shop_cache: the desired state does not declare it
  volume shop_shared: the desired state declares `shared` external; used under its own name as it is
  container shop_api_run_3f2c: a one-off container (`docker-compose run`)
  container shop_old_1: service `old` is not in the desired state of this host
"
    );
}

#[test]
fn a_service_placed_on_another_host_is_left_to_compose_here() {
    let placed = STACK.replace(
        "  db:\n    image: reg.example/db:1\n",
        "  db:\n    image: reg.example/db:1\n    deploy: { placement: { constraints: [\"node.hostname == db-host\"] } }\n",
    );
    let host = crate::plan::Host {
        name: "web-host".into(),
        labels: Default::default(),
        env_dir: Some(std::env::temp_dir()),
        keys: Default::default(),
    };
    let desired = crate::plan::Desired::resolve_for(spec(&placed), &host);
    let plan = SwitchPlan::new(&desired.spec, &compose());
    let services: Vec<&str> = plan.services.iter().map(|s| s.service.as_str()).collect();
    assert_eq!(services, ["api", "proxy"]);
    assert!(
        plan.left.contains(
            &"container shop_db_1: service `db` is not in the desired state of this host".into()
        ),
        "{plan:?}"
    );
}
