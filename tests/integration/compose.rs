//! A compose file applied on the real engine: the replicas, health check and environment
//! it asks for are what Docker runs.

use crate::support::{container_health, images, inspect, Project};
use crate::Stack;

#[test]
fn a_compose_file_is_applied_with_its_replicas_and_healthcheck() {
    let p = Project::new("compose");
    let img = images();
    let s = Stack::new();
    s.file(
        "compose.yaml",
        &format!(
            "\
name: {name}
x-common: &common
  restart: unless-stopped
  environment:
    - GREETING=hello
services:
  web:
    <<: *common
    image: {image}
    expose: [8000]
    healthcheck:
      test: [\"CMD\", \"wget\", \"-q\", \"-O-\", \"http://localhost:8000/health\"]
      interval: 1s
      timeout: 2s
      retries: 2
    deploy:
      replicas: 2
",
            name = p.name(),
            image = img.app_v1
        ),
    );
    let r = s.apply();
    assert_eq!(r.code, 0, "{r:?}");
    for slot in 1..=2 {
        let name = format!("{}-web-{slot}", p.name());
        assert_eq!(
            container_health(&name).as_deref(),
            Some("healthy"),
            "{name}"
        );
        let c = inspect(&name).expect("the replica exists");
        let cfg = &c["Config"];
        assert_eq!(
            cfg["Healthcheck"]["Test"],
            serde_json::json!(["CMD", "wget", "-q", "-O-", "http://localhost:8000/health"])
        );
        assert_eq!(cfg["Healthcheck"]["Interval"], 1_000_000_000u64);
        assert_eq!(cfg["Healthcheck"]["Retries"], 2);
        assert!(
            cfg["Env"]
                .as_array()
                .unwrap()
                .iter()
                .any(|e| e == "GREETING=hello"),
            "{cfg}"
        );
        assert_eq!(cfg["Labels"]["berth.project"], p.name());
    }
    assert!(inspect(&format!("{}-web-3", p.name())).is_none());
    assert!(inspect(&format!("{}_default", p.name())).is_some());
}
