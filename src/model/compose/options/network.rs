//! Name resolution inside the container: `extra_hosts` and `dns`.

use std::net::IpAddr;

use serde_yaml::Value;

use super::super::super::context::{kind, Ctx};
use super::super::super::location::KeyPath;
use super::super::super::validate::{scalar, string_list};

/// `extra_hosts`: a list of `HOST:IP` (or `HOST=IP`), or a mapping of host to address.
pub(super) fn extra_hosts(
    ctx: &mut Ctx,
    file: usize,
    path: &KeyPath,
    v: &Value,
) -> Option<Vec<String>> {
    let items: Vec<(KeyPath, String, String)> = match v {
        Value::Sequence(_) => {
            let mut out = Vec::new();
            for (i, text) in string_list(
                ctx,
                file,
                path,
                v,
                "`extra_hosts`",
                "[\"db.internal:10.0.0.5\"]",
            )?
            .into_iter()
            .enumerate()
            {
                let split = text
                    .split_once('=')
                    .or_else(|| text.split_once(':'))
                    .unwrap_or((&text, ""));
                out.push((path.index(i), split.0.to_string(), split.1.to_string()));
            }
            out
        }
        Value::Mapping(m) => m
            .iter()
            .map(|(k, val)| {
                let host = scalar(k).unwrap_or_default();
                (
                    path.key(&host),
                    host.clone(),
                    scalar(val).unwrap_or_default(),
                )
            })
            .collect(),
        other => {
            ctx.error(
                file,
                path,
                format!(
                    "`extra_hosts` must be a list of `HOST:IP` or a mapping; found {}",
                    kind(other)
                ),
            );
            return None;
        }
    };
    let mut out = Vec::new();
    let mut good = true;
    for (ip, host, addr) in items {
        let addr = addr.trim_start_matches('[').trim_end_matches(']');
        let host_ok = !host.is_empty()
            && host
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_'));
        // Docker's name for the host's address on the default bridge: a container can
        // reach that gateway without it.
        if host_ok && addr == "host-gateway" {
            out.push(format!("{host}:host-gateway"));
            continue;
        }
        match (host_ok, addr.parse::<IpAddr>()) {
            (true, Ok(a)) => out.push(format!("{host}:{a}")),
            _ => {
                ctx.error(file, &ip, format!("an extra host must be `HOST:IP`, a host name and an IP address (e.g. `db.internal:10.0.0.5`); found host `{host}`, address `{addr}`"));
                good = false;
            }
        }
    }
    good.then_some(out)
}

/// `dns`: an address or a list of addresses.
pub(super) fn dns(ctx: &mut Ctx, file: usize, path: &KeyPath, v: &Value) -> Option<Vec<String>> {
    let items: Vec<(KeyPath, String)> = match v {
        Value::String(s) => vec![(path.clone(), s.clone())],
        other => string_list(ctx, file, path, other, "`dns`", "[\"1.1.1.1\"]")?
            .into_iter()
            .enumerate()
            .map(|(i, s)| (path.index(i), s))
            .collect(),
    };
    let mut out = Vec::new();
    let mut good = true;
    for (ip, text) in items {
        match text.parse::<IpAddr>() {
            Ok(a) => out.push(a.to_string()),
            Err(_) => {
                ctx.error(
                    file,
                    &ip,
                    format!("DNS server `{text}` must be an IP address such as `1.1.1.1`"),
                );
                good = false;
            }
        }
    }
    good.then_some(out)
}
