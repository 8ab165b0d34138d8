//! `berth history`: the deploy log from the ledger.

use super::{exit, HistoryArgs};
use crate::ledger::DeployRecord;
use crate::plan::desired::short;

/// Prints deploys, newest first.
pub(super) async fn run(args: &HistoryArgs) -> u8 {
    let path = args.state_dir.join("ledger.db");
    if args.coordination.is_local() && !path.exists() {
        eprintln!(
            "error: no ledger at {}; berth has not applied anything with this --state-dir",
            path.display()
        );
        return exit::USAGE;
    }
    let ledger = match args.coordination.open(&args.state_dir) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("error: {e}");
            return exit::FAILED;
        }
    };
    let deploys = match ledger
        .deploys(args.project.as_deref(), args.service.as_deref(), args.limit)
        .await
    {
        Ok(d) => d,
        Err(e) => {
            eprintln!("error: {e}");
            return exit::FAILED;
        }
    };
    super::print_answer(args.output, &deploys, |d| render(d));
    exit::OK
}

/// One block per deploy: a header line, then one line per service and migration.
pub(super) fn render(deploys: &[DeployRecord]) -> String {
    if deploys.is_empty() {
        return "no deploys recorded\n".into();
    }
    let mut out = String::new();
    for d in deploys {
        let commit = d
            .commit
            .as_deref()
            .map(|c| &c[..c.len().min(12)])
            .unwrap_or("-");
        let host = d
            .host
            .as_deref()
            .map(|h| format!(" on {h}"))
            .unwrap_or_default();
        out.push_str(&format!(
            "#{} {} {}{host} commit {commit}\n",
            d.id, d.started_at, d.project
        ));
        let width = d
            .services
            .iter()
            .map(|s| s.service.len())
            .max()
            .unwrap_or(0);
        for s in &d.services {
            let from = s.from.as_deref().map(short).unwrap_or_else(|| "-".into());
            let to = s.to.as_deref().map(short).unwrap_or_else(|| "-".into());
            let err = s
                .error
                .as_deref()
                .map(|e| format!(": {e}"))
                .unwrap_or_default();
            out.push_str(&format!(
                "  {:<width$}  {from} → {to}  {}{err}\n",
                s.service, s.outcome
            ));
        }
        for m in &d.migrations {
            out.push_str(&format!(
                "  migration {}  {} in {:.1}s\n",
                m.migration,
                m.outcome.as_str(),
                m.duration_ms as f64 / 1000.0
            ));
        }
    }
    out
}
