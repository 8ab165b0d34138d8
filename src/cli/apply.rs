//! `berth apply`.

use std::sync::Arc;

use super::{exit, ApplyArgs};
use crate::executor::{ApplyReport, Executor, Outcome};
use crate::plan::Desired;
use crate::runtime::DockerEngine;

/// Converges once; 0 converged, 1 a service failed, 2 invalid input or usage.
pub(super) async fn run(args: &ApplyArgs) -> u8 {
    let c = &args.converge;
    // One berth at a time on a state dir: its clone, ledger and the containers it names.
    let (dir, wait) = (c.state_dir.clone(), args.lock_timeout.into());
    let _lock = match crate::agent::StateLock::acquire_async(dir, "apply", wait).await {
        Ok(lock) => lock,
        Err(e) => {
            eprintln!("error: {e}");
            return exit::FAILED;
        }
    };
    let (spec, commit) = match super::source::load(
        &args.source,
        &args.host,
        &c.state_dir,
        exit::USAGE,
        args.project.as_deref(),
    ) {
        Ok(x) => x,
        Err(code) => return code,
    };
    let host = match args.host.host_with_keys() {
        Ok(h) => h,
        Err(e) => {
            eprintln!("error: {e}");
            return exit::USAGE;
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
    let mut opts = super::agent::apply_options(c, args.retries + 1);
    opts.commit = args.commit.clone().or(commit.map(|i| i.sha));
    opts.host = Some(host.name.clone());
    opts.allow_host_paths = args.source.allow_host_path.clone();
    let ledger = match c.coordination.open(&c.state_dir) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("error: {e}");
            return exit::USAGE;
        }
    };
    let view = super::progress::wanted().then(|| {
        let (sink, view) = super::progress::Terminal::start();
        opts.progress = Some(sink);
        view
    });
    let executor = Executor::new(Arc::new(engine), ledger, opts);
    let result = executor.apply(&desired).await;
    if let Some(view) = view {
        view.finish().await;
    }
    let report = match result {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {e}");
            return exit::FAILED;
        }
    };
    super::print_answer(args.output, &report, render);
    if report.converged() {
        exit::OK
    } else {
        exit::FAILED
    }
}

/// The report as text: one line per service.
pub(super) fn render(report: &ApplyReport) -> String {
    let width = report
        .services
        .iter()
        .map(|s| s.service.len())
        .max()
        .unwrap_or(0);
    let mut out = String::new();
    let mut failed = 0;
    for s in &report.services {
        let secs = s.millis as f64 / 1000.0;
        let line = match &s.outcome {
            Outcome::InSync => format!("= {:<width$}  in sync", s.service),
            Outcome::Converged => format!(
                "✓ {:<width$}  {}: {} ({secs:.1}s)",
                s.service,
                s.action.as_str(),
                s.reasons.join("; ")
            ),
            Outcome::Failed { error, serving, .. } => {
                failed += 1;
                let tries = if s.attempts > 1 {
                    format!(" after {} attempts", s.attempts)
                } else {
                    String::new()
                };
                format!(
                    "✗ {:<width$}  {} failed{tries}: {error}; {serving}",
                    s.service,
                    s.action.as_str()
                )
            }
            Outcome::Blocked { by } => {
                failed += 1;
                format!(
                    "✗ {:<width$}  not changed: it depends on {by}, which did not converge",
                    s.service
                )
            }
            Outcome::Held { reason } => format!(
                "- {:<width$}  {} held: {reason}",
                s.service,
                s.action.as_str()
            ),
            Outcome::Waiting { reason } => {
                failed += 1;
                format!(
                    "… {:<width$}  {} waiting: {reason}",
                    s.service,
                    s.action.as_str()
                )
            }
            Outcome::Skipped => format!(
                "- {:<width$}  left running: not in the desired state, and pruning is off",
                s.service
            ),
        };
        out.push_str(&line);
        out.push('\n');
    }
    for m in &report.migrations {
        match (&m.run, &m.error) {
            (_, Some(e)) => out.push_str(&format!("✗ {e}\n")),
            (Some(run), None) => out.push_str(&format!(
                "✓ migration {}: {} in {:.1}s\n",
                m.migration,
                run.outcome.as_str(),
                run.duration_ms as f64 / 1000.0
            )),
            (None, None) => {}
        }
    }
    if failed == 0 {
        out.push_str(&format!("project {}: converged\n", report.project));
    } else {
        out.push_str(&format!(
            "project {}: {failed} service{} did not converge\n",
            report.project,
            if failed == 1 { "" } else { "s" }
        ));
    }
    out
}
