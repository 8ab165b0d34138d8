//! `depends_on`: the services a service waits for, which must exist and must not form
//! a cycle.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde_yaml::Value;

use super::super::context::Ctx;
use super::super::location::KeyPath;
use super::super::spec::ServiceSpec;
use super::scalars::string_list;
use super::Merged;

/// A service's `depends_on`: names of other services of the project.
pub(super) fn depends_on(
    ctx: &mut Ctx,
    file: usize,
    path: &KeyPath,
    v: &Value,
    name: &str,
    all_services: &BTreeSet<&str>,
) -> Option<Vec<String>> {
    let list = string_list(ctx, file, path, v, "`depends_on`", "[api, web]")?;
    let mut good = true;
    for (i, d) in list.iter().enumerate() {
        let p = path.index(i);
        if d == name {
            ctx.error(
                file,
                &p,
                format!("service `{name}` depends on itself; remove it from `depends_on`"),
            );
            good = false;
        } else if !all_services.contains(d.as_str()) {
            let hint = if ctx.is_full() {
                String::new()
            } else {
                let known: Vec<&str> = all_services.iter().copied().collect();
                super::super::diagnostic::nearest(d, &known)
                    .map(|k| format!("; did you mean `{k}`?"))
                    .unwrap_or_default()
            };
            ctx.error(
                file,
                &p,
                format!("`depends_on` names `{d}`, which is not a service{hint}"),
            );
            good = false;
        }
    }
    good.then_some(list)
}

/// `depends_on` must not form a cycle; each cycle is reported once.
pub(crate) fn check_cycles(
    ctx: &mut Ctx,
    merged: &Merged,
    services: &BTreeMap<String, ServiceSpec>,
) {
    let mut state: HashMap<&str, u8> = HashMap::new(); // 1 = on stack, 2 = done
    let mut reported: BTreeSet<Vec<String>> = BTreeSet::new();
    fn visit<'a>(
        n: &'a str,
        services: &'a BTreeMap<String, ServiceSpec>,
        state: &mut HashMap<&'a str, u8>,
        stack: &mut Vec<&'a str>,
        cycles: &mut Vec<Vec<String>>,
    ) {
        state.insert(n, 1);
        stack.push(n);
        if let Some(svc) = services.get(n) {
            for d in &svc.depends_on {
                match state.get(d.as_str()) {
                    Some(1) => {
                        let start = stack.iter().position(|s| s == d).unwrap_or(0);
                        cycles.push(stack[start..].iter().map(|s| s.to_string()).collect());
                    }
                    Some(_) => {}
                    None => visit(d, services, state, stack, cycles),
                }
            }
        }
        stack.pop();
        state.insert(n, 2);
    }
    let mut cycles = Vec::new();
    for name in services.keys() {
        if !state.contains_key(name.as_str()) {
            visit(name, services, &mut state, &mut Vec::new(), &mut cycles);
        }
    }
    for cycle in cycles {
        let mut key = cycle.clone();
        key.sort();
        if !reported.insert(key) {
            continue;
        }
        let first = &cycle[0];
        let mut shown = cycle.clone();
        shown.push(first.clone());
        let file = merged.services[first].file;
        ctx.key_error(
            file,
            &KeyPath::root().key("services").key(first).key("depends_on"),
            format!(
                "`depends_on` forms a cycle: {}; remove one of these dependencies",
                shown.join(" → ")
            ),
        );
    }
}
