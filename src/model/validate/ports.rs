//! Ports: a service's `expose` and published `ports`, and the rule that no two
//! services publish the same host port.

use std::collections::BTreeMap;

use serde_yaml::Value;

use super::super::context::{kind, Ctx};
use super::super::location::KeyPath;
use super::super::spec::{PortMapping, Protocol, ServiceSpec};
use super::scalars::{describe, scalar, string_list};
use super::Merged;

/// `expose`: container ports other services reach, `8000` or `"8000/tcp"`.
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

/// `ports`: host ports published, each `[ip:]host:container[/proto]`.
pub(super) fn ports(
    ctx: &mut Ctx,
    file: usize,
    path: &KeyPath,
    v: &Value,
) -> Option<Vec<PortMapping>> {
    let list = string_list(
        ctx,
        file,
        path,
        v,
        "`ports`",
        "[\"80:80\", \"443:443/udp\"]",
    )?;
    let mut out = Vec::new();
    let mut good = true;
    for (i, p) in list.iter().enumerate() {
        match parse_port(p) {
            Ok(m) => out.push(m),
            Err(e) => {
                ctx.error(file, &path.index(i), e);
                good = false;
            }
        }
    }
    good.then_some(out)
}

/// Parses `[ip:]host:container[/proto]`.
pub(crate) fn parse_port(text: &str) -> Result<PortMapping, String> {
    let (body, protocol) = match text.rsplit_once('/') {
        Some((b, "tcp")) => (b, Protocol::Tcp),
        Some((b, "udp")) => (b, Protocol::Udp),
        Some((_, p)) => {
            return Err(format!(
                "port `{text}` has unknown protocol `{p}`; use `tcp` or `udp`"
            ))
        }
        None => (text, Protocol::Tcp),
    };
    let parts: Vec<&str> = body.rsplitn(3, ':').collect();
    let (host_ip, host, container) = match parts.as_slice() {
        [c, h] => (None, *h, *c),
        [c, h, ip] => (Some(ip.trim_matches(['[', ']']).to_string()), *h, *c),
        _ => return Err(format!("port `{text}` must be `HOST:CONTAINER` (e.g. `80:80`), optionally with an address (`127.0.0.1:8080:80`) and `/udp`")),
    };
    let num = |s: &str, what: &str| -> Result<u16, String> {
        match s.parse::<u16>() {
            Ok(n) if n > 0 => Ok(n),
            _ => Err(format!(
                "{what} port `{s}` in `{text}` must be a number from 1 to 65535"
            )),
        }
    };
    if let Some(ip) = &host_ip {
        if ip.parse::<std::net::IpAddr>().is_err() {
            return Err(format!(
                "host address `{ip}` in `{text}` is not an IP address"
            ));
        }
    }
    Ok(PortMapping {
        host_ip,
        host_port: num(host, "host")?,
        container_port: num(container, "container")?,
        protocol,
    })
}

/// Host ports must not collide across services: the same port and protocol on the
/// same address, or on any address when one side binds all of them.
pub(crate) fn check_ports(
    ctx: &mut Ctx,
    merged: &Merged,
    services: &BTreeMap<String, ServiceSpec>,
) {
    let mut seen: Vec<(&str, usize, &PortMapping)> = Vec::new();
    for (name, svc) in services {
        for (i, p) in svc.ports.iter().enumerate() {
            let clash = seen.iter().find(|(_, _, q)| {
                q.host_port == p.host_port
                    && q.protocol == p.protocol
                    && (q.host_ip.is_none() || p.host_ip.is_none() || q.host_ip == p.host_ip)
            });
            if let Some((other, _, _)) = clash {
                let file = merged.services[name].file;
                let msg = if *other == name.as_str() {
                    format!(
                        "host port {}/{} is published twice by `{name}`",
                        p.host_port,
                        p.protocol.as_str()
                    )
                } else {
                    format!("host port {}/{} is already published by service `{other}`; pick another host port", p.host_port, p.protocol.as_str())
                };
                ctx.error(
                    file,
                    &KeyPath::root()
                        .key("services")
                        .key(name)
                        .key("ports")
                        .index(i),
                    msg,
                );
            }
            seen.push((name, i, p));
        }
    }
}
