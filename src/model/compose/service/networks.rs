//! `networks`: the networks a service joins and its aliases on each.

use std::collections::BTreeMap;

use serde_yaml::Value;

use super::super::super::context::{kind, Ctx};
use super::super::super::diagnostic::nearest;
use super::super::super::location::KeyPath;
use super::super::super::validate::string_list;
use super::super::forms::nested;
use super::{Scope, DEFAULT_NETWORK};

/// `networks`: a list of names, or a map of names to nothing or to `aliases`. Returns
/// the networks (their names in the spec) and the aliases by network.
pub(super) fn networks(
    ctx: &mut Ctx,
    file: usize,
    path: &KeyPath,
    v: &Value,
    scope: &Scope,
) -> Option<(Vec<String>, Aliases)> {
    let mut extra: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let names: Vec<(KeyPath, String)> = match v {
        Value::Sequence(_) => string_list(ctx, file, path, v, "`networks`", "[backend]")?
            .into_iter()
            .enumerate()
            .map(|(i, n)| (path.index(i), n))
            .collect(),
        Value::Mapping(m) => {
            let mut out = Vec::new();
            let mut good = true;
            for (k, opts) in m {
                let Some(n) = k.as_str() else { continue };
                let np = path.key(n);
                if let Value::Mapping(o) = opts {
                    match nested(
                        ctx,
                        file,
                        &np,
                        o,
                        &["aliases"],
                        &[
                            "ipv4_address",
                            "ipv6_address",
                            "link_local_ips",
                            "mac_address",
                            "driver_opts",
                            "priority",
                            "gw_priority",
                            "interface_name",
                        ],
                        &[],
                    ) {
                        Some(o) => match o.get("aliases") {
                            None | Some(Value::Null) => {}
                            Some(a) => match aliases(ctx, file, &np.key("aliases"), a) {
                                Some(a) if !a.is_empty() => {
                                    extra.insert(n.to_string(), a);
                                }
                                Some(_) => {}
                                None => good = false,
                            },
                        },
                        None => good = false,
                    }
                } else if !opts.is_null() {
                    ctx.error(
                        file,
                        &np,
                        format!("network options must be a mapping; found {}", kind(opts)),
                    );
                    good = false;
                }
                out.push((np, n.to_string()));
            }
            if !good {
                return None;
            }
            out
        }
        other => {
            ctx.error(
                file,
                path,
                format!(
                    "`networks` must be a list or a mapping; found {}",
                    kind(other)
                ),
            );
            return None;
        }
    };
    let mut out = Vec::new();
    let mut good = true;
    for (np, n) in names {
        match scope.networks.get(&n) {
            Some(spec_name) => out.push(spec_name.clone()),
            None if n == DEFAULT_NETWORK => out.push(n),
            None => {
                let known: Vec<&str> = scope.networks.keys().map(String::as_str).collect();
                let hint = nearest(&n, &known)
                    .map(|k| format!("; did you mean `{k}`?"))
                    .unwrap_or_else(|| "; declare it under the top-level `networks:`".to_string());
                ctx.error(file, &np, format!("network `{n}` is not declared{hint}"));
                good = false;
            }
        }
    }
    if out.is_empty() && good {
        ctx.error(file, path, "`networks` is empty; a service joins at least one network (leave it out for `default`)");
        good = false;
    }
    let aliases = extra
        .into_iter()
        .map(|(n, a)| (scope.networks.get(&n).cloned().unwrap_or(n), a))
        .collect();
    good.then_some((out, aliases))
}

/// A service's aliases, by the spec name of each network.
pub(super) type Aliases = BTreeMap<String, Vec<String>>;

/// The most aliases a service may have on one network.
const MAX_ALIASES: usize = 32;

/// A network's `aliases`: DNS labels without dots, since a dotted name would answer for
/// a real host name (`api.example.com`) to every container on the network.
fn aliases(ctx: &mut Ctx, file: usize, path: &KeyPath, v: &Value) -> Option<Vec<String>> {
    let list = string_list(ctx, file, path, v, "`aliases`", "[db, database]")?;
    let mut good = true;
    if list.len() > MAX_ALIASES {
        ctx.error(
            file,
            path,
            format!("{} aliases; at most {MAX_ALIASES} per network", list.len()),
        );
        return None;
    }
    for (i, a) in list.iter().enumerate() {
        let label = !a.is_empty()
            && a.len() <= 63
            && a.chars().next().is_some_and(|c| c.is_ascii_alphanumeric())
            && a.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
        if !label {
            let why = if a.contains('.') {
                "a name with a dot would answer for a real host name to every container on the network"
            } else {
                "use lowercase letters, digits, `-` or `_`, at most 63"
            };
            ctx.error(
                file,
                &path.index(i),
                format!("alias `{a}` is not supported: {why}"),
            );
            good = false;
        }
    }
    good.then_some(list)
}
