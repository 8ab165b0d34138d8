//! `berth plan`.

use super::{exit, PlanArgs};
use crate::plan::{plan, Action, Desired, EnvFile, Plan};
use crate::runtime::{DockerEngine, Engine};

/// Prints the plan for the desired state against the live engine.
pub(super) async fn run(args: &PlanArgs) -> u8 {
    let (spec, _commit) = match super::source::load(
        &args.source,
        &args.host,
        &args.state_dir,
        exit::FAILED,
        args.project.as_deref(),
    ) {
        Ok(x) => x,
        Err(code) => return code,
    };
    let host = match args.host.host_with_keys() {
        Ok(h) => h,
        Err(e) => {
            eprintln!("error: {e}");
            return exit::FAILED;
        }
    };
    let desired = Desired::resolve_for(spec, &host);
    let engine = match DockerEngine::connect().await {
        Ok(e) => e,
        Err(e) => {
            eprintln!("error: {e}");
            return exit::FAILED;
        }
    };
    let observed = match engine.list_project(&desired.spec.project).await {
        Ok(o) => o,
        Err(e) => {
            eprintln!("error: {e}");
            return exit::FAILED;
        }
    };
    for (name, d) in &desired.services {
        if let EnvFile::Unreadable(why) = &d.env_file {
            eprintln!("warning: service {name}: {why}; apply will fail this service until the file is readable");
        }
        for why in d.secret_files.values().filter_map(|f| f.as_ref().err()) {
            eprintln!(
                "warning: service {name}: {why}; apply will fail this service until it is readable"
            );
        }
    }
    let mut plan = plan(&desired, &observed);
    // Reasons and images may quote values a compose file took from the host's `.env`.
    let redactor = crate::executor::Redactor::from_desired(&desired);
    for s in &mut plan.services {
        s.reasons = s.reasons.iter().map(|r| redactor.redact(r)).collect();
        s.image = s.image.as_deref().map(|i| redactor.redact(i));
    }
    super::print_answer(args.output, &plan, render);
    if plan.in_sync() {
        exit::OK
    } else {
        exit::CHANGES
    }
}

/// The plan as text: one line per service, reasons after it.
pub(super) fn render(plan: &Plan) -> String {
    let width = plan
        .services
        .iter()
        .map(|s| s.service.len())
        .max()
        .unwrap_or(0);
    let mut out = String::new();
    for s in &plan.services {
        let sign = match s.action {
            Action::InSync => "=",
            Action::Create | Action::ScaleUp => "+",
            Action::Remove | Action::ScaleDown => "-",
            Action::Replace | Action::Restart => "~",
        };
        let reasons = if s.action == Action::InSync {
            format!("{}/{} replicas", s.running, s.desired)
        } else {
            s.reasons.join("; ")
        };
        out.push_str(&format!(
            "{sign} {:<width$}  {:<10}  {reasons}\n",
            s.service,
            s.action.as_str()
        ));
    }
    let changes = plan.changes().count();
    if changes == 0 {
        out.push_str(&format!("project {}: in sync\n", plan.project));
    } else {
        out.push_str(&format!(
            "project {}: {changes} of {} service{} to change\n",
            plan.project,
            plan.services.len(),
            if plan.services.len() == 1 { "" } else { "s" }
        ));
    }
    out
}
