//! berth's update policy from `deploy.update_config` and the service's `x-berth`.

use std::time::Duration;

use serde_yaml::{Mapping, Value};

use super::super::super::context::Ctx;
use super::super::super::location::KeyPath;
use super::super::super::spec::{OnFailure, UpdateOrder, UpdatePolicy};
use super::super::super::validate::{default_update, describe, duration, integer, string};
use super::super::forms::{mapping, nested};

/// `deploy.update_config` and `x-berth` into berth's update policy.
pub(super) fn update(
    ctx: &mut Ctx,
    file: usize,
    path: &KeyPath,
    cfg: Option<&(KeyPath, Mapping)>,
    berth: Option<&Value>,
    publishes: bool,
) -> Option<UpdatePolicy> {
    let mut u = default_update(publishes);
    let secs = Duration::from_secs;
    let mut good = true;
    if let Some((up, m)) = cfg {
        let c = nested(
            ctx,
            file,
            up,
            m,
            &["parallelism", "delay", "order", "monitor", "failure_action"],
            &["max_failure_ratio"],
            &[],
        )?;
        if let Some(v) = c.get("parallelism") {
            match integer(ctx, file, &up.key("parallelism"), v, 0, 100) {
                Some(0) => {
                    ctx.error(file, &up.key("parallelism"), "`parallelism: 0` (all at once) is not supported; give the number of replicas replaced at a time");
                    good = false;
                }
                Some(n) => u.parallelism = n as u32,
                None => good = false,
            }
        }
        if let Some(v) = c.get("delay") {
            match duration(ctx, file, &up.key("delay"), v, Duration::ZERO, secs(3600)) {
                Some(d) => u.delay = d,
                None => good = false,
            }
        }
        if let Some(v) = c.get("order") {
            match v.as_str() {
                Some("start-first") if publishes => {
                    ctx.error(file, &up.key("order"), "`start-first` cannot be used by a service that publishes host ports (two replicas cannot bind one port); use `stop-first` or publish through the proxy");
                    good = false;
                }
                Some("start-first") => u.order = UpdateOrder::StartFirst,
                Some("stop-first") => u.order = UpdateOrder::StopFirst,
                _ => {
                    ctx.error(
                        file,
                        &up.key("order"),
                        format!(
                            "unknown update order {}; use `start-first` or `stop-first`",
                            describe(v)
                        ),
                    );
                    good = false;
                }
            }
        }
        if let Some(v) = c.get("monitor") {
            match duration(ctx, file, &up.key("monitor"), v, Duration::ZERO, secs(3600)) {
                Some(d) => u.monitor = d,
                None => good = false,
            }
        }
        if let Some(v) = c.get("failure_action") {
            match v.as_str() {
                Some("rollback") => u.on_failure = OnFailure::Rollback,
                Some("pause") => u.on_failure = OnFailure::Pause,
                _ => {
                    ctx.error(
                        file,
                        &up.key("failure_action"),
                        format!(
                            "failure_action {} is not supported; use `rollback` or `pause`",
                            describe(v)
                        ),
                    );
                    good = false;
                }
            }
        }
    }
    if let Some(v) = berth {
        let bp = path.key("x-berth");
        let m = mapping(ctx, file, &bp, v, "`x-berth`")?;
        let b = nested(
            ctx,
            file,
            &bp,
            m,
            &["deadline", "max_hosts", "canary", "migration"],
            &[],
            &[],
        )?;
        if let Some(v) = b.get("deadline") {
            match duration(ctx, file, &bp.key("deadline"), v, secs(1), secs(24 * 3600)) {
                Some(d) => u.deadline = d,
                None => good = false,
            }
        }
        if let Some(v) = b.get("max_hosts") {
            match integer(ctx, file, &bp.key("max_hosts"), v, 1, 1000) {
                Some(n) => u.max_hosts = Some(n as u32),
                None => good = false,
            }
        }
        if let Some(v) = b.get("canary") {
            match string(ctx, file, &bp.key("canary"), v, "web-1") {
                Some(c) => u.canary = Some(c),
                None => good = false,
            }
        }
    }
    good.then_some(u)
}
