//! What berth's compose reader does with each key of a compose service: the one table
//! that the reader, the README section "Compose files" and its test follow.
//!
//! A key is in exactly one list. A key in none of them is not a compose key at all and
//! is reported as unknown, with the nearest valid key.

/// Keys mapped into berth's service model, with what they become.
pub(crate) const SUPPORTED: &[(&str, &str)] = &[
    ("image", "the pinned image (required)"),
    (
        "command",
        "the command; a string is split into words as a shell would",
    ),
    (
        "environment",
        "committed environment, as a map or a `K=V` list",
    ),
    (
        "env_file",
        "host-side env files, in order; relative paths are in the env directory; `required: false`; a relative path ending in `.age` is an encrypted file of the repository",
    ),
    ("ports", "published host ports, short or long syntax"),
    ("expose", "ports reachable by other services"),
    (
        "networks",
        "networks joined, as a list or a map with `aliases` (no dots)",
    ),
    (
        "volumes",
        "named volumes, repository files and directories (`./…`, read-only), host data (`./data` not in the repository) and allowed host paths",
    ),
    ("healthcheck", "the health check that gates every update"),
    (
        "depends_on",
        "services that must be healthy before this one changes; `service_completed_successfully` makes the dependency a job",
    ),
    (
        "deploy",
        "replicas, update_config, resources (limits: memory, cpus, pids; reservations: memory), placement.constraints",
    ),
    ("scale", "replicas, as `deploy.replicas`"),
    ("mem_limit", "memory limit"),
    ("cpus", "CPU limit"),
    ("stop_grace_period", "time between SIGTERM and SIGKILL"),
    (
        "entrypoint",
        "the entrypoint; a string is split into words as a shell would, empty clears it",
    ),
    ("user", "`user[:group]` inside the container"),
    ("working_dir", "the working directory (absolute)"),
    (
        "labels",
        "container labels, as a map or a `K=V` list; `berth.*` keys are refused",
    ),
    ("hostname", "the container's hostname"),
    ("read_only", "a read-only root filesystem"),
    ("init", "an init process as PID 1 (berth's default is on)"),
    ("stop_signal", "the signal that stops a replica"),
    (
        "tmpfs",
        "tmpfs mounts, `PATH[:OPTIONS]`; also volumes of `type: tmpfs`",
    ),
    ("extra_hosts", "`/etc/hosts` entries, `HOST:IP` list or a map"),
    ("dns", "DNS servers (IP addresses)"),
    (
        "logging",
        "log driver and options; `json-file` stays rotated unless its options say otherwise",
    ),
    ("ulimits", "process limits, `N` or `{soft, hard}`"),
    ("shm_size", "size of `/dev/shm`"),
    (
        "pids_limit",
        "most processes, as `deploy.resources.limits.pids`",
    ),
    ("cap_drop", "capabilities dropped (`cap_add` stays refused)"),
    (
        "security_opt",
        "`no-new-privileges` only; options that turn off confinement are refused",
    ),
    (
        "mem_reservation",
        "memory reservation, as `deploy.resources.reservations.memory`",
    ),
    ("tty", "a pseudo-TTY"),
    (
        "secrets",
        "files of the host's env directory, read-only at `/run/secrets/<name>`; a relative `file:` ending in `.age` is an encrypted file of the repository",
    ),
    (
        "configs",
        "repository files, read-only at `/<name>`",
    ),
    ("stdin_open", "stdin kept open"),
    (
        "restart",
        "`always` and `unless-stopped`: berth restarts replicas anyway; a job takes `no` or `on-failure`",
    ),
    (
        "x-berth",
        "berth's own rollout keys: `deadline`, `max_hosts`, `canary`; a job's `migration`: `gates`, `timeout`, `run_on`",
    ),
];

/// Keys refused because they give the container the host, with the reason.
pub(crate) const REFUSED: &[(&str, &str)] = &[
    (
        "privileged",
        "gives the container every device and capability of the host",
    ),
    (
        "network_mode",
        "`host` puts the container in the host's network namespace",
    ),
    (
        "pid",
        "`host` lets the container see and signal every process of the host",
    ),
    ("ipc", "`host` shares the host's IPC namespace"),
    ("userns_mode", "`host` turns off user-namespace remapping"),
    (
        "uts",
        "`host` lets the container change the host's hostname",
    ),
    ("cgroup", "`host` shares the host's cgroup namespace"),
    ("devices", "passes host devices into the container"),
    ("device_cgroup_rules", "grants access to host devices"),
    ("gpus", "passes host devices into the container"),
    ("cap_add", "adds kernel capabilities"),
    ("sysctls", "changes kernel parameters"),
    (
        "use_api_socket",
        "hands the container the Docker API, which owns the host",
    ),
];

/// Keys read and ignored with a warning: they concern building or a developer's
/// machine, not what runs on a host.
pub(crate) const IGNORED: &[(&str, &str)] = &[
    (
        "build",
        "berth deploys the image; build is ignored (build in CI and pin the tag)",
    ),
    (
        "container_name",
        "berth names each replica `<project>-<service>-<slot>` itself",
    ),
    (
        "pull_policy",
        "berth pulls every image a plan needs before anything stops",
    ),
    (
        "develop",
        "for `docker compose watch` on a developer's machine",
    ),
    ("attach", "log attachment of `docker compose up`"),
    (
        "profiles",
        "a service with profiles is left out, as compose does when no profile is active, unless it is a job with `x-berth.migration`",
    ),
];

/// Compose keys berth does not map yet; each is an error naming it. Most need a new
/// field in berth's service model.
pub(crate) const NOT_YET: &[&str] = &[
    "annotations",
    "blkio_config",
    "cgroup_parent",
    "cpu_count",
    "cpu_percent",
    "cpu_period",
    "cpu_quota",
    "cpu_rt_period",
    "cpu_rt_runtime",
    "cpu_shares",
    "cpuset",
    "credential_spec",
    "dns_opt",
    "dns_search",
    "domainname",
    "extends",
    "external_links",
    "group_add",
    "isolation",
    "label_file",
    "links",
    "mac_address",
    "mem_swappiness",
    "memswap_limit",
    "models",
    "oom_kill_disable",
    "oom_score_adj",
    "platform",
    "post_start",
    "pre_stop",
    "provider",
    "pull_refresh_after",
    "runtime",
    "storage_opt",
    "volumes_from",
];

/// Top-level keys besides `services`, `volumes`, `networks` and `name`.
pub(crate) const TOP_LEVEL_NOT_YET: &[&str] = &["include", "models"];

/// The supported key spelled `key`, found by hash: every key of every service is
/// looked up here.
pub(crate) fn supported(key: &str) -> Option<&'static str> {
    static BY_NAME: std::sync::LazyLock<foldhash::HashSet<&'static str>> =
        std::sync::LazyLock::new(|| SUPPORTED.iter().map(|(k, _)| *k).collect());
    BY_NAME.get(key).copied()
}

/// Looks a key up in a `(key, text)` list.
pub(crate) fn lookup(list: &[(&'static str, &'static str)], key: &str) -> Option<&'static str> {
    list.iter().find(|(k, _)| *k == key).map(|(_, t)| *t)
}

/// Every compose service key berth knows, for "did you mean" hints.
pub(crate) fn all_service_keys() -> Vec<&'static str> {
    SUPPORTED
        .iter()
        .chain(REFUSED)
        .chain(IGNORED)
        .map(|(k, _)| *k)
        .chain(NOT_YET.iter().copied())
        .collect()
}

/// The message for a key that is not supported yet.
pub(crate) fn not_yet(key: &str) -> String {
    format!("`{key}` is not supported yet by berth's compose reader")
}
