//! Integration-test support: a real Docker engine, a loopback registry and
//! images built locally from busybox, so no test needs the internet; for
//! fleet tests, extra engines on the same machine and a PostgreSQL server.
//!
//! Each test binary compiles this module with `mod support;` and uses only a
//! part of it, hence the module-wide allowances below.
#![allow(dead_code, unused_imports)]

mod chaos;
mod cleanup;
pub mod compose;
mod docker;
mod engines;
mod faults;
mod images;
mod postgres;
mod project;
mod registry;
pub mod traffic;

pub use chaos::{agent_image, Tmpfs};
pub use docker::{
    container_exists, container_health, container_status, docker, docker_ok, docker_stdout,
    http_get_via_container, image_id, inspect, repo_digest, require_docker, wait_for, wait_healthy,
    wait_until,
};
pub use engines::Engine;
pub use faults::{crash_container, new_release, restart_engine, ChaosRng};
pub use images::{caddy_image, images, Images};
pub use postgres::Postgres;
pub use project::{ClientLoop, ClientReport, Project, PROJECT_LABEL};
pub use registry::{registry, Registry};

/// Label put on every image the harness builds (and therefore on every
/// container made from them) and on helper containers and networks. Its value
/// is [`owner_id`], so leftovers of a test process that died can be told apart
/// from those of a run still in progress.
pub const OWNER_LABEL: &str = "berth-test.owner";

/// `PIDNS:PID` of this process. The pid namespace matters when test processes
/// in several containers share one engine: a pid is only meaningful, and only
/// checked for liveness, within its own namespace.
pub fn owner_id() -> &'static str {
    static ID: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    ID.get_or_init(|| format!("{}:{}", cleanup::pid_namespace(), std::process::id()))
}
