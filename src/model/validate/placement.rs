//! A service's `placement`: the hosts that run it, by name or by label.

use std::collections::BTreeMap;

use serde_yaml::Value;

use super::super::context::{kind, Ctx};
use super::super::location::KeyPath;
use super::super::raw::{KnownKeys, RawPlacement};
use super::super::spec::Placement;
use super::raw;
use super::scalars::{scalar, string_list};

/// `placement`: `hosts` (a non-empty list when given) and `labels` a host must carry.
pub(super) fn placement(
    ctx: &mut Ctx,
    file: usize,
    path: &KeyPath,
    v: &Value,
) -> Option<Placement> {
    let raw: RawPlacement = raw(
        ctx,
        file,
        path,
        v,
        &KnownKeys::get().placement,
        "`placement`",
    )?;
    let hosts = match &raw.hosts {
        None => Some(Vec::new()),
        Some(v) => string_list(ctx, file, &path.key("hosts"), v, "`placement.hosts`", "[web-1, web-2]").filter(|h| {
            if h.is_empty() {
                ctx.error(file, &path.key("hosts"), "`placement.hosts` is empty, so no host would run the service; leave it out for every host, or set `replicas: 0`");
                false
            } else {
                true
            }
        }),
    };
    let labels = match &raw.labels {
        None => Some(BTreeMap::new()),
        Some(Value::Mapping(m)) => {
            let mut out = BTreeMap::new();
            let mut good = true;
            for (k, val) in m {
                match (k.as_str(), scalar(val)) {
                    (Some(k), Some(val)) => {
                        out.insert(k.to_string(), val);
                    }
                    _ => {
                        ctx.error(
                            file,
                            &path.key("labels"),
                            "`placement.labels` maps label names to values, e.g. { role: web }",
                        );
                        good = false;
                    }
                }
            }
            good.then_some(out)
        }
        Some(other) => {
            ctx.error(
                file,
                &path.key("labels"),
                format!(
                    "`placement.labels` must be a mapping such as {{ role: web }}; found {}",
                    kind(other)
                ),
            );
            None
        }
    };
    Some(Placement {
        hosts: hosts?,
        labels: labels?,
    })
}
