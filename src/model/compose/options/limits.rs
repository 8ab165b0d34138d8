//! Process limits: `ulimits`, the pids limit and sizes in bytes (`shm_size`, memory
//! reservations), bounded where Docker or the kernel would refuse them.

use std::collections::BTreeMap;

use serde_yaml::Value;

use super::super::super::context::{kind, Ctx};
use super::super::super::location::KeyPath;
use super::super::super::spec::Ulimit;
use super::super::super::units::parse_size;
use super::super::super::validate::{describe, scalar};
use super::super::forms::{mapping, nested};

/// The process limits Docker knows by name, less `rtprio` and `nice` (refused).
const ULIMITS: &[&str] = &[
    "as",
    "core",
    "cpu",
    "data",
    "fsize",
    "locks",
    "memlock",
    "msgqueue",
    "nofile",
    "nproc",
    "rss",
    "rttime",
    "sigpending",
    "stack",
];

/// The kernel's highest `pid_max`.
const MAX_PIDS: i64 = 1 << 22;

/// A whole number written as a number or a string of digits.
fn whole(v: &Value) -> Option<i64> {
    match v {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// `ulimits`: `NAME: N` (soft and hard), or `NAME: {soft: N, hard: M}`.
pub(super) fn ulimits(
    ctx: &mut Ctx,
    file: usize,
    path: &KeyPath,
    v: &Value,
) -> Option<BTreeMap<String, Ulimit>> {
    let m = mapping(ctx, file, path, v, "`ulimits`")?;
    let mut out = BTreeMap::new();
    let mut good = true;
    for (k, val) in m {
        let name = scalar(k).unwrap_or_default();
        let up = path.key(&name);
        if matches!(name.as_str(), "rtprio" | "nice") {
            ctx.key_error(
                file,
                &up,
                format!("ulimit `{name}` is not allowed: it lets the container's processes take CPU priority over the host's own; berth lets whoever pushes to the desired state run containers, not own the host"),
            );
            good = false;
            continue;
        }
        if !ULIMITS.contains(&name.as_str()) {
            ctx.key_error(
                file,
                &up,
                format!("unknown ulimit `{name}`; use one of {}", ULIMITS.join(", ")),
            );
            good = false;
            continue;
        }
        let limit = match val {
            Value::Mapping(lm) => {
                nested(ctx, file, &up, lm, &["soft", "hard"], &[], &[]).and_then(|l| {
                    let read = |key: &str| l.get(key).and_then(|v| whole(v));
                    match (read("soft"), read("hard")) {
                        (Some(soft), Some(hard)) => Some(Ulimit { soft, hard }),
                        _ => {
                            ctx.error(
                                file,
                                &up,
                                format!(
                                    "ulimit `{name}` needs `soft` and `hard`, each a whole number"
                                ),
                            );
                            None
                        }
                    }
                })
            }
            other => match whole(other) {
                Some(n) => Some(Ulimit { soft: n, hard: n }),
                None => {
                    ctx.error(
                        file,
                        &up,
                        format!(
                            "ulimit `{name}` must be a whole number or `{{soft: N, hard: M}}`; found {}",
                            describe(other)
                        ),
                    );
                    None
                }
            },
        };
        match limit {
            Some(l) if l.soft < 0 || l.hard < 0 => {
                ctx.error(file, &up, format!("ulimit `{name}` must not be negative"));
                good = false;
            }
            Some(l) if l.soft > l.hard => {
                ctx.error(
                    file,
                    &up,
                    format!(
                        "ulimit `{name}`: soft {} is above hard {}; the soft limit cannot exceed the hard one",
                        l.soft, l.hard
                    ),
                );
                good = false;
            }
            Some(l) => {
                out.insert(name, l);
            }
            None => good = false,
        }
    }
    good.then_some(out)
}

/// A size in bytes from `min` to 1t: `64m`, `1g`, or a number of bytes.
pub(in super::super) fn size(
    ctx: &mut Ctx,
    file: usize,
    path: &KeyPath,
    v: &Value,
    min: u64,
) -> Option<u64> {
    let Some(text) = (match v {
        Value::String(_) | Value::Number(_) => scalar(v),
        _ => None,
    }) else {
        ctx.error(
            file,
            path,
            format!("expected a size such as `512m`; found {}", kind(v)),
        );
        return None;
    };
    match parse_size(&text) {
        Ok(n) if (min..=1 << 40).contains(&n) => Some(n),
        Ok(_) => {
            ctx.error(
                file,
                path,
                format!(
                    "size `{text}` is out of range; use {} to 1t",
                    if min >= 1 << 20 {
                        format!("{}m", min >> 20)
                    } else {
                        format!("{min}b")
                    }
                ),
            );
            None
        }
        Err(e) => {
            ctx.error(file, path, e.to_string());
            None
        }
    }
}

/// `pids_limit` and `deploy.resources.limits.pids`: 1 to the kernel's highest
/// `pid_max`; leave it out for no limit.
pub(in super::super) fn pids(ctx: &mut Ctx, file: usize, path: &KeyPath, v: &Value) -> Option<i64> {
    match whole(v) {
        Some(n) if (1..=MAX_PIDS).contains(&n) => Some(n),
        _ => {
            ctx.error(
                file,
                path,
                format!(
                    "a pids limit must be a whole number from 1 to {MAX_PIDS}; found {} (leave it out for no limit)",
                    describe(v)
                ),
            );
            None
        }
    }
}
