//! A service's `update`: how its replicas are replaced on a new spec.

use std::time::Duration;

use serde_yaml::Value;

use super::super::context::Ctx;
use super::super::location::KeyPath;
use super::super::raw::{KnownKeys, RawUpdate};
use super::super::spec::{OnFailure, UpdateOrder, UpdatePolicy};
use super::raw;
use super::scalars::{describe, duration, integer, scalar, string};

/// The policy of a service that says nothing: one replica at a time, started before
/// the old one stops unless the service publishes host ports (two replicas cannot bind
/// one port), rolled back on failure.
pub(crate) fn default_update(publishes: bool) -> UpdatePolicy {
    UpdatePolicy {
        order: if publishes {
            UpdateOrder::StopFirst
        } else {
            UpdateOrder::StartFirst
        },
        parallelism: 1,
        delay: Duration::ZERO,
        monitor: Duration::from_secs(5),
        deadline: Duration::from_secs(120),
        on_failure: OnFailure::Rollback,
        max_hosts: None,
        canary: None,
    }
}

/// `update`: each key left out keeps [`default_update`]'s value; `start-first` is refused
/// for a service that publishes host ports.
pub(super) fn update(
    ctx: &mut Ctx,
    file: usize,
    path: &KeyPath,
    v: &Value,
    publishes: bool,
) -> Option<UpdatePolicy> {
    let raw: RawUpdate = raw(ctx, file, path, v, &KnownKeys::get().update, "`update`")?;
    let d = default_update(publishes);
    let secs = Duration::from_secs;
    let order = match &raw.order {
        None => Some(d.order),
        Some(v) => match scalar(v).as_deref() {
            Some("start-first") if publishes => {
                ctx.error(file, &path.key("order"), "`start-first` cannot be used by a service that publishes host ports (two replicas cannot bind one port); use `stop-first` or publish through the proxy");
                None
            }
            Some("start-first") => Some(UpdateOrder::StartFirst),
            Some("stop-first") => Some(UpdateOrder::StopFirst),
            _ => {
                let hint = scalar(v).and_then(|s| {
                    super::super::diagnostic::nearest(&s, &["start-first", "stop-first"])
                        .map(|n| format!("did you mean `{n}`? "))
                });
                ctx.error(
                    file,
                    &path.key("order"),
                    format!(
                        "unknown update order {}; {}use `start-first` or `stop-first`",
                        describe(v),
                        hint.unwrap_or_default()
                    ),
                );
                None
            }
        },
    };
    let parallelism = raw
        .parallelism
        .as_ref()
        .map_or(Some(d.parallelism as i64), |v| {
            integer(ctx, file, &path.key("parallelism"), v, 1, 100)
        });
    let monitor = raw.monitor.as_ref().map_or(Some(d.monitor), |v| {
        duration(
            ctx,
            file,
            &path.key("monitor"),
            v,
            Duration::ZERO,
            secs(3600),
        )
    });
    let deadline = raw.deadline.as_ref().map_or(Some(d.deadline), |v| {
        duration(
            ctx,
            file,
            &path.key("deadline"),
            v,
            secs(1),
            secs(24 * 3600),
        )
    });
    let on_failure = match &raw.on_failure {
        None => Some(d.on_failure),
        Some(v) => match scalar(v).as_deref() {
            Some("rollback") => Some(OnFailure::Rollback),
            Some("pause") => Some(OnFailure::Pause),
            _ => {
                ctx.error(
                    file,
                    &path.key("on_failure"),
                    format!(
                        "unknown on_failure {}; use `rollback` or `pause`",
                        describe(v)
                    ),
                );
                None
            }
        },
    };
    let max_hosts = match &raw.max_hosts {
        None => Some(None),
        Some(v) => integer(ctx, file, &path.key("max_hosts"), v, 1, 1000).map(|n| Some(n as u32)),
    };
    let canary = match &raw.canary {
        None => Some(None),
        Some(v) => string(ctx, file, &path.key("canary"), v, "web-1").map(Some),
    };
    Some(UpdatePolicy {
        order: order?,
        parallelism: parallelism? as u32,
        delay: Duration::ZERO,
        monitor: monitor?,
        deadline: deadline?,
        on_failure: on_failure?,
        max_hosts: max_hosts?,
        canary: canary?,
    })
}
