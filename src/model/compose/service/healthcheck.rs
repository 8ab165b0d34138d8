//! `healthcheck`: the check Docker runs, with Docker's defaults for its timing.

use std::time::Duration;

use serde_yaml::Value;

use super::super::super::context::{kind, Ctx};
use super::super::super::location::KeyPath;
use super::super::super::spec::{Health, HealthCheck};
use super::super::super::validate::{duration, integer, string_list};
use super::super::forms::{mapping, nested};

/// `healthcheck`, with Docker's defaults for what is left out.
pub(super) fn healthcheck(ctx: &mut Ctx, file: usize, path: &KeyPath, v: &Value) -> Option<Health> {
    let m = mapping(ctx, file, path, v, "`healthcheck`")?;
    let h = nested(
        ctx,
        file,
        path,
        m,
        &[
            "test",
            "interval",
            "timeout",
            "retries",
            "start_period",
            "disable",
        ],
        &["start_interval"],
        &[],
    )?;
    if let Some(d) = h.get("disable") {
        match d {
            Value::Bool(true) => return Some(Health::Disabled),
            Value::Bool(false) => {}
            other => {
                ctx.error(
                    file,
                    &path.key("disable"),
                    format!("expected `true` or `false`; found {}", kind(other)),
                );
                return None;
            }
        }
    }
    let Some(test) = h.get("test") else {
        ctx.key_error(file, path, "a `healthcheck` without `test` (changing only the image's timing) is not supported yet; give the `test`");
        return None;
    };
    let tp = path.key("test");
    let test = match test {
        Value::String(s) => Some(vec!["CMD-SHELL".to_string(), s.clone()]),
        other => string_list(
            ctx,
            file,
            &tp,
            other,
            "`healthcheck.test`",
            "[\"CMD\", \"curl\", \"-f\", \"http://localhost/health\"]",
        ),
    }?;
    match test.first().map(String::as_str) {
        Some("NONE") => return Some(Health::Disabled),
        Some("CMD") | Some("CMD-SHELL") if test.len() >= 2 => {}
        _ => {
            ctx.error(file, &tp, "`healthcheck.test` must be a string, or a list starting with \"CMD\" or \"CMD-SHELL\" followed by the command, or [\"NONE\"]");
            return None;
        }
    }
    let ms = Duration::from_millis;
    let secs = Duration::from_secs;
    let mut timing = |key: &str, default: Duration, min: Duration| match h.get(key) {
        None => Some(default),
        Some(v) => duration(ctx, file, &path.key(key), v, min, secs(3600)),
    };
    let interval = timing("interval", secs(30), ms(100));
    let timeout = timing("timeout", secs(30), ms(100));
    let start_period = timing("start_period", Duration::ZERO, Duration::ZERO);
    let retries = match h.get("retries") {
        None => Some(3),
        Some(v) => integer(ctx, file, &path.key("retries"), v, 1, 100),
    };
    Some(Health::Check(HealthCheck {
        test,
        interval: interval?,
        timeout: timeout?,
        retries: retries? as u32,
        start_period: start_period?,
    }))
}
