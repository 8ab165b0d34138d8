//! `depends_on`: the services a service waits for, and the jobs it waits to complete
//! (those gate it instead; the project reads them).

use serde_yaml::Value;

use super::super::super::context::{kind, Ctx};
use super::super::super::diagnostic::nearest;
use super::super::super::location::KeyPath;
use super::super::super::validate::string_list;
use super::super::forms::{mapping, nested};
use super::Scope;

pub(super) fn depends_on(
    ctx: &mut Ctx,
    file: usize,
    path: &KeyPath,
    v: &Value,
    name: &str,
    scope: &Scope,
) -> Option<Vec<String>> {
    let mut names: Vec<(KeyPath, String)> = Vec::new();
    let mut good = true;
    match v {
        Value::Sequence(_) => {
            for (i, d) in string_list(ctx, file, path, v, "`depends_on`", "[api, web]")?
                .into_iter()
                .enumerate()
            {
                names.push((path.index(i), d));
            }
        }
        Value::Mapping(m) => {
            for (k, cond) in m {
                let Some(d) = k.as_str() else { continue };
                let dp = path.key(d);
                let Some(c) = mapping(ctx, file, &dp, cond, "a dependency") else {
                    good = false;
                    continue;
                };
                let Some(c) = nested(
                    ctx,
                    file,
                    &dp,
                    c,
                    &["condition", "required"],
                    &[],
                    &[(
                        "restart",
                        "berth replaces dependants only when their own spec changes",
                    )],
                ) else {
                    good = false;
                    continue;
                };
                if let Some(r) = c.get("required") {
                    if **r != Value::Bool(true) {
                        ctx.error(
                            file,
                            &dp.key("required"),
                            "optional dependencies (`required: false`) are not supported yet",
                        );
                        good = false;
                    }
                }
                match c.get("condition").and_then(|v| v.as_str()) {
                    None | Some("service_started") | Some("service_healthy") => {}
                    Some("service_completed_successfully") if scope.jobs.contains(name) => {
                        ctx.error(file, &dp.key("condition"), format!("job `{name}` waits for another job, `{d}`; jobs waiting for jobs are not supported yet: make the services they gate depend on both"));
                        good = false;
                        continue;
                    }
                    // The job (found by the project) gates this service; not a
                    // service dependency.
                    Some("service_completed_successfully") if scope.jobs.contains(d) => continue,
                    Some("service_completed_successfully") => {}
                    Some(other) => {
                        ctx.error(file, &dp.key("condition"), format!("unknown condition `{other}`; use `service_started`, `service_healthy` or `service_completed_successfully`"));
                        good = false;
                    }
                }
                names.push((dp, d.to_string()));
            }
        }
        other => {
            ctx.error(
                file,
                path,
                format!(
                    "`depends_on` must be a list or a mapping; found {}",
                    kind(other)
                ),
            );
            return None;
        }
    }
    let mut out = Vec::new();
    for (dp, d) in names {
        if d == name {
            ctx.error(
                file,
                &dp,
                format!("service `{name}` depends on itself; remove it from `depends_on`"),
            );
            good = false;
        } else if scope.left_out.contains(&d) {
            ctx.error(file, &dp, format!("`depends_on` names `{d}`, which has `profiles` and is left out; remove the dependency or the profiles"));
            good = false;
        } else if scope.jobs.contains(&d) {
            ctx.error(file, &dp, format!("`{d}` is a job (it runs to completion, it is never healthy); wait for it with `{d}: {{ condition: service_completed_successfully }}`"));
            good = false;
        } else if !scope.services.contains(&d) {
            let known: Vec<&str> = scope.services.iter().map(String::as_str).collect();
            let hint = nearest(&d, &known)
                .map(|k| format!("; did you mean `{k}`?"))
                .unwrap_or_default();
            ctx.error(
                file,
                &dp,
                format!("`depends_on` names `{d}`, which is not a service{hint}"),
            );
            good = false;
        } else {
            out.push(d);
        }
    }
    good.then_some(out)
}
