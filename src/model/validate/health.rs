//! A service's `health`: the check Docker runs, with berth's defaults for its timing.

use std::time::Duration;

use serde_yaml::Value;

use super::super::context::Ctx;
use super::super::location::KeyPath;
use super::super::raw::{KnownKeys, RawHealth};
use super::super::spec::{Health, HealthCheck};
use super::raw;
use super::scalars::{duration, integer, string_list};

/// `health`: a `test` (a shell string, or a list starting with `CMD`/`CMD-SHELL`, or
/// `["NONE"]` to switch the image's check off) and its timing.
pub(super) fn health(ctx: &mut Ctx, file: usize, path: &KeyPath, v: &Value) -> Option<Health> {
    let raw: RawHealth = raw(ctx, file, path, v, &KnownKeys::get().health, "`health`")?;
    let Some(test) = &raw.test else {
        ctx.key_error(file, path, "`health.test` is missing; e.g. [\"CMD\", \"wget\", \"-q\", \"-O-\", \"http://localhost:8000/health\"]");
        return None;
    };
    let test = match test {
        Value::String(s) => Some(vec!["CMD-SHELL".to_string(), s.clone()]),
        other => string_list(
            ctx,
            file,
            &path.key("test"),
            other,
            "`health.test`",
            "[\"CMD\", \"curl\", \"-f\", \"http://localhost/health\"]",
        ),
    };
    let test = test.and_then(|t| match t.first().map(String::as_str) {
        Some("NONE") if t.len() == 1 => Some(t),
        Some("CMD") | Some("CMD-SHELL") if t.len() >= 2 => Some(t),
        _ => {
            ctx.error(file, &path.key("test"), "`health.test` must start with \"CMD\" or \"CMD-SHELL\" followed by the command, or be [\"NONE\"]");
            None
        }
    });
    let ms = Duration::from_millis;
    let secs = Duration::from_secs;
    let interval = raw.interval.as_ref().map_or(Some(secs(5)), |v| {
        duration(ctx, file, &path.key("interval"), v, ms(100), secs(3600))
    });
    let timeout = raw.timeout.as_ref().map_or(Some(secs(3)), |v| {
        duration(ctx, file, &path.key("timeout"), v, ms(100), secs(3600))
    });
    let retries = raw.retries.as_ref().map_or(Some(3), |v| {
        integer(ctx, file, &path.key("retries"), v, 1, 100)
    });
    let start_period = raw.start_period.as_ref().map_or(Some(Duration::ZERO), |v| {
        duration(
            ctx,
            file,
            &path.key("start_period"),
            v,
            Duration::ZERO,
            secs(3600),
        )
    });
    let test = test?;
    if test[0] == "NONE" {
        return Some(Health::Disabled);
    }
    Some(Health::Check(HealthCheck {
        test,
        interval: interval?,
        timeout: timeout?,
        retries: retries? as u32,
        start_period: start_period?,
    }))
}
