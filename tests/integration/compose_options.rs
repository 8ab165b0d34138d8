//! A compose service using every supported container option, applied on the real
//! engine: each option is what Docker runs, and changing one replaces the replica and
//! is named by the plan.

use serde_json::json;

use crate::support::{images, inspect, Project};
use crate::Stack;

fn compose(name: &str, image: &str, user: &str) -> String {
    format!(
        "\
name: {name}
services:
  worker:
    image: {image}
    entrypoint: /bin/sh -c 'exec sleep 3600'
    user: \"{user}\"
    working_dir: /tmp
    labels:
      com.example.team: platform
    hostname: opts-worker
    read_only: true
    init: true
    stop_signal: SIGUSR1
    stop_grace_period: 1s
    tmpfs:
      - /run:size=8m,mode=1777
    volumes:
      - type: tmpfs
        target: /cache
        tmpfs:
          size: 4m
    extra_hosts:
      - db.internal:10.0.0.5
      - host.docker.internal:host-gateway
    dns: [9.9.9.9]
    logging:
      driver: json-file
      options:
        max-size: 1m
    ulimits:
      nofile:
        soft: 1024
        hard: 2048
    shm_size: 32m
    pids_limit: 100
    cap_drop: [NET_RAW]
    security_opt: [\"no-new-privileges:true\"]
    mem_limit: 64m
    mem_reservation: 32m
    tty: true
    stdin_open: true
    deploy:
      update_config:
        monitor: 1s
"
    )
}

#[test]
fn every_container_option_reaches_docker_and_a_change_replaces_the_replica() {
    let p = Project::new("opts");
    let img = images();
    let s = Stack::new();
    s.file(
        "compose.yaml",
        &compose(p.name(), &img.tool_v1, "1000:1000"),
    );
    let r = s.apply();
    assert_eq!(r.code, 0, "{r:?}");

    let name = format!("{}-worker-1", p.name());
    let c = inspect(&name).expect("the replica exists");
    let (cfg, host) = (&c["Config"], &c["HostConfig"]);
    assert_eq!(cfg["User"], "1000:1000");
    assert_eq!(cfg["WorkingDir"], "/tmp");
    assert_eq!(
        cfg["Entrypoint"],
        json!(["/bin/sh", "-c", "exec sleep 3600"])
    );
    assert_eq!(cfg["Labels"]["com.example.team"], "platform");
    assert_eq!(cfg["Labels"]["berth.project"], p.name());
    assert_eq!(cfg["Hostname"], "opts-worker");
    assert_eq!(cfg["StopSignal"], "SIGUSR1");
    assert_eq!(cfg["Tty"], true);
    assert_eq!(cfg["OpenStdin"], true);
    assert_eq!(host["ReadonlyRootfs"], true);
    assert_eq!(host["Init"], true);
    assert_eq!(
        host["Tmpfs"],
        json!({"/run": "size=8388608,mode=1777", "/cache": "size=4194304"})
    );
    assert_eq!(
        host["ExtraHosts"],
        json!(["db.internal:10.0.0.5", "host.docker.internal:host-gateway"])
    );
    assert_eq!(host["SecurityOpt"], json!(["no-new-privileges:true"]));
    assert_eq!(host["Dns"], json!(["9.9.9.9"]));
    assert_eq!(
        host["LogConfig"],
        json!({"Type": "json-file", "Config": {"max-size": "1m", "max-file": "3"}})
    );
    assert_eq!(
        host["Ulimits"],
        json!([{"Name": "nofile", "Soft": 1024, "Hard": 2048}])
    );
    assert_eq!(host["ShmSize"], 32 << 20);
    assert_eq!(host["PidsLimit"], 100);
    assert_eq!(host["CapDrop"], json!(["NET_RAW"]));
    assert_eq!(host["Memory"], 64 << 20);
    assert_eq!(host["MemoryReservation"], 32 << 20);
    assert_eq!(c["State"]["Running"], true, "{}", c["State"]);
    let first = c["Id"].as_str().unwrap().to_string();

    // Unchanged: nothing to do.
    let r = s.plan();
    assert_eq!(r.code, 0, "{r:?}");
    assert!(!r.stdout.contains("changed"), "{}", r.stdout);

    s.file(
        "compose.yaml",
        &compose(p.name(), &img.tool_v1, "1001:1001"),
    );
    let r = s.plan();
    assert!(r.stdout.contains("user changed"), "{r:?}");
    let r = s.apply();
    assert_eq!(r.code, 0, "{r:?}");
    let c = inspect(&name).expect("the replica exists");
    assert_ne!(c["Id"], first.as_str(), "the replica is replaced");
    assert_eq!(c["Config"]["User"], "1001:1001");
}
