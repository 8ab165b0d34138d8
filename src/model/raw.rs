//! Phase one: the desired state as written, before any rule is checked.
//!
//! Leaves whose form berth interprets itself (durations, sizes, commands, env values)
//! stay YAML values here, so that phase two can say exactly what is wrong with each.

use serde::{Deserialize, Serialize};
use serde_yaml::Value;

/// The top level of one file.
#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawDocument {
    pub project: Option<Value>,
    pub networks: Option<Value>,
    pub volumes: Option<Value>,
    pub services: Option<Value>,
    pub migrations: Option<Value>,
}

/// `networks.<name>`.
#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawNetwork {
    pub external: Option<Value>,
}

/// `volumes.<name>`.
#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawVolume {
    pub external: Option<Value>,
}

/// `services.<name>`.
#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawService {
    pub image: Option<Value>,
    pub replicas: Option<Value>,
    pub command: Option<Value>,
    pub env: Option<Value>,
    pub env_file: Option<Value>,
    pub expose: Option<Value>,
    pub ports: Option<Value>,
    pub networks: Option<Value>,
    pub volumes: Option<Value>,
    pub health: Option<Value>,
    pub resources: Option<Value>,
    pub stop_grace: Option<Value>,
    pub update: Option<Value>,
    pub depends_on: Option<Value>,
    pub placement: Option<Value>,
}

/// `services.<name>.placement`.
#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawPlacement {
    pub hosts: Option<Value>,
    pub labels: Option<Value>,
}

/// `services.<name>.health`.
#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawHealth {
    pub test: Option<Value>,
    pub interval: Option<Value>,
    pub timeout: Option<Value>,
    pub retries: Option<Value>,
    pub start_period: Option<Value>,
}

/// `services.<name>.resources`.
#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawResources {
    pub memory: Option<Value>,
    pub cpus: Option<Value>,
}

/// `services.<name>.update`.
#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawUpdate {
    pub order: Option<Value>,
    pub parallelism: Option<Value>,
    pub monitor: Option<Value>,
    pub deadline: Option<Value>,
    pub on_failure: Option<Value>,
    pub max_hosts: Option<Value>,
    pub canary: Option<Value>,
}

/// `migrations.<name>`.
#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawMigration {
    pub from: Option<Value>,
    pub command: Option<Value>,
    pub timeout: Option<Value>,
    pub gates: Option<Value>,
    pub run_on: Option<Value>,
}

/// The keys a raw type accepts, read off the type itself so the list can never drift
/// from the fields.
pub(crate) fn known_keys<T: Default + Serialize>() -> Vec<&'static str> {
    let value = serde_yaml::to_value(T::default()).expect("raw types serialize");
    let Value::Mapping(map) = value else {
        return Vec::new();
    };
    map.keys()
        .filter_map(|k| k.as_str())
        .map(|k| &*Box::leak(k.to_string().into_boxed_str()))
        .collect()
}

/// Keys of each raw type, computed once.
pub(crate) struct KnownKeys {
    pub document: Vec<&'static str>,
    pub network: Vec<&'static str>,
    pub volume: Vec<&'static str>,
    pub service: Vec<&'static str>,
    pub health: Vec<&'static str>,
    pub resources: Vec<&'static str>,
    pub update: Vec<&'static str>,
    pub migration: Vec<&'static str>,
    pub placement: Vec<&'static str>,
}

impl KnownKeys {
    /// The process-wide key lists.
    pub(crate) fn get() -> &'static KnownKeys {
        static KEYS: std::sync::OnceLock<KnownKeys> = std::sync::OnceLock::new();
        KEYS.get_or_init(|| KnownKeys {
            document: known_keys::<RawDocument>(),
            network: known_keys::<RawNetwork>(),
            volume: known_keys::<RawVolume>(),
            service: known_keys::<RawService>(),
            health: known_keys::<RawHealth>(),
            resources: known_keys::<RawResources>(),
            update: known_keys::<RawUpdate>(),
            migration: known_keys::<RawMigration>(),
            placement: known_keys::<RawPlacement>(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_lists_follow_the_fields() {
        let k = KnownKeys::get();
        assert_eq!(
            k.document,
            ["project", "networks", "volumes", "services", "migrations"]
        );
        assert!(k.service.contains(&"env_file"));
        assert!(k.update.contains(&"on_failure"));
        assert_eq!(k.network, ["external"]);
        assert_eq!(k.volume, ["external"]);
    }
}
