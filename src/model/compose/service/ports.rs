//! `ports` and `expose`: host ports a service publishes (fixed, never a range or an
//! ephemeral one) and container ports other services reach.

use serde_yaml::Value;

use super::super::super::context::{kind, Ctx};
use super::super::super::location::KeyPath;
use super::super::super::spec::PortMapping;
use super::super::super::validate::{describe, parse_port, scalar};
use super::super::forms::nested;

/// `ports`: `[ip:]host:container[/proto]` strings, or the long form.
pub(super) fn ports(
    ctx: &mut Ctx,
    file: usize,
    path: &KeyPath,
    v: &Value,
) -> Option<Vec<PortMapping>> {
    let Value::Sequence(items) = v else {
        ctx.error(
            file,
            path,
            format!(
                "`ports` must be a list such as [\"80:80\"]; found {}",
                kind(v)
            ),
        );
        return None;
    };
    let mut out = Vec::new();
    let mut good = true;
    for (i, item) in items.iter().enumerate() {
        let ip = path.index(i);
        let text = match item {
            Value::Mapping(m) => nested(
                ctx,
                file,
                &ip,
                m,
                &["target", "published", "host_ip", "protocol", "mode", "name", "app_protocol"],
                &[],
                &[],
            )
            .and_then(|long| {
                let target = long.get("target").and_then(|v| scalar(v));
                let published = long.get("published").and_then(|v| scalar(v));
                let (Some(target), Some(published)) = (target, published) else {
                    ctx.error(file, &ip, "a published port needs `target` and `published`; berth publishes fixed host ports");
                    return None;
                };
                let host_ip = long.get("host_ip").and_then(|v| scalar(v)).map(|h| if h.contains(':') { format!("[{h}]:") } else { format!("{h}:") }).unwrap_or_default();
                let proto = long.get("protocol").and_then(|v| scalar(v)).map(|p| format!("/{p}")).unwrap_or_default();
                Some(format!("{host_ip}{published}:{target}{proto}"))
            }),
            other => scalar(other),
        };
        let Some(text) = text else {
            good = false;
            if !matches!(item, Value::Mapping(_)) {
                ctx.error(
                    file,
                    &ip,
                    format!(
                        "each port must be a string such as \"80:80\" or a mapping; found {}",
                        kind(item)
                    ),
                );
            }
            continue;
        };
        let body = text.split('/').next().unwrap_or_default();
        let msg = if !body.contains(':') {
            Some(format!("port `{text}` names only the container port; berth publishes fixed host ports: write `HOST:CONTAINER` (e.g. `8080:{body}`), or use `expose` for other services"))
        } else if body.rsplit(':').take(2).any(|p| p.contains('-')) {
            Some(format!(
                "port ranges (`{text}`) are not supported yet; list each port"
            ))
        } else {
            None
        };
        if let Some(msg) = msg {
            ctx.error(file, &ip, msg);
            good = false;
            continue;
        }
        match parse_port(&text) {
            Ok(m) => out.push(m),
            Err(e) => {
                ctx.error(file, &ip, e);
                good = false;
            }
        }
    }
    good.then_some(out)
}

pub(super) fn expose(ctx: &mut Ctx, file: usize, path: &KeyPath, v: &Value) -> Option<Vec<u16>> {
    let Value::Sequence(items) = v else {
        ctx.error(
            file,
            path,
            format!(
                "`expose` must be a list of ports such as [8000]; found {}",
                kind(v)
            ),
        );
        return None;
    };
    let mut out = Vec::new();
    let mut good = true;
    for (i, item) in items.iter().enumerate() {
        let text = scalar(item).unwrap_or_default();
        match text.trim_end_matches("/tcp").parse::<u16>() {
            Ok(port) if port > 0 => out.push(port),
            _ => {
                ctx.error(
                    file,
                    &path.index(i),
                    format!(
                        "expected a port number from 1 to 65535; found {}",
                        describe(item)
                    ),
                );
                good = false;
            }
        }
    }
    good.then_some(out)
}
