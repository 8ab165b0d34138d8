//! The deploy history: a timeline drawn as SVG (one row per service, one column per
//! deploy, coloured by outcome) whose marks open each deploy's details below it.

use std::collections::BTreeSet;
use std::fmt::Write;

use super::escape::{commit_url, esc, esc_text, when};
use crate::ledger::DeployRecord;

/// Deploys the page shows at most.
pub(crate) const SHOWN: usize = 40;

const LABEL: u32 = 170;
const STEP: u32 = 26;
const ROW: u32 = 24;
const TOP: u32 = 8;

/// The fill of an outcome.
pub(crate) fn colour(outcome: &str) -> &'static str {
    match outcome {
        "converged" => "#2e7d32",
        "rolled-back" => "#ef6c00",
        "failed" => "#c62828",
        "blocked" | "held" | "waiting" => "#9e9e9e",
        "removed" => "#546e7a",
        _ => "#757575",
    }
}

/// The timeline and the details of `deploys` (newest first, as the ledger answers).
pub(crate) fn history(out: &mut String, deploys: &[DeployRecord], repo: &str) {
    out.push_str("<section id=\"history\"><h2>History</h2>");
    if deploys.is_empty() {
        out.push_str("<p class=\"empty\">No deploy recorded yet.</p></section>");
        return;
    }
    let shown: Vec<&DeployRecord> = deploys.iter().take(SHOWN).rev().collect();
    timeline(out, &shown);
    out.push_str("<div class=\"deploys\">");
    for d in shown.iter().rev() {
        detail(out, d, repo);
    }
    out.push_str("</div></section>");
}

fn timeline(out: &mut String, shown: &[&DeployRecord]) {
    let services: BTreeSet<&str> = shown
        .iter()
        .flat_map(|d| d.services.iter().map(|s| s.service.as_str()))
        .collect();
    let rows = services.len().max(1) as u32;
    let width = LABEL + STEP * shown.len() as u32 + STEP;
    let height = TOP * 2 + ROW * rows;
    let _ = write!(
        out,
        "<svg id=\"timeline\" role=\"img\" aria-label=\"deploys by service, oldest left\" \
         viewBox=\"0 0 {width} {height}\" width=\"{width}\" height=\"{height}\" \
         xmlns=\"http://www.w3.org/2000/svg\">"
    );
    for (row, service) in services.iter().enumerate() {
        let y = TOP + ROW * row as u32 + ROW / 2;
        let _ = write!(
            out,
            "<line x1=\"{LABEL}\" y1=\"{y}\" x2=\"{width}\" y2=\"{y}\" stroke=\"#ddd\"/>\
             <text x=\"{}\" y=\"{}\" text-anchor=\"end\" font-size=\"12\" fill=\"#333\">{}</text>",
            LABEL - 8,
            y + 4,
            esc(&truncate(service, 24))
        );
    }
    for (col, d) in shown.iter().enumerate() {
        let x = LABEL + STEP * col as u32 + STEP / 2;
        for s in &d.services {
            let Some(row) = services.iter().position(|n| *n == s.service) else {
                continue;
            };
            let y = TOP + ROW * row as u32 + ROW / 2;
            let _ = write!(
                out,
                "<a href=\"#deploy-{id}\"><circle cx=\"{x}\" cy=\"{y}\" r=\"7\" fill=\"{}\"><title>#{id} {}: {}</title></circle></a>",
                colour(&s.outcome),
                esc(&s.service),
                esc(&s.outcome),
                id = d.id,
            );
        }
    }
    out.push_str("</svg>");
}

fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_string()
    } else {
        let mut t: String = s.chars().take(max - 1).collect();
        t.push('…');
        t
    }
}

fn detail(out: &mut String, d: &DeployRecord, repo: &str) {
    let worst = d
        .services
        .iter()
        .map(|s| s.outcome.as_str())
        .find(|o| *o != "converged" && *o != "removed")
        .unwrap_or("converged");
    let _ = write!(
        out,
        "<details id=\"deploy-{}\" class=\"deploy\"><summary><span class=\"outcome {o}\">{o}</span> #{} {}",
        d.id,
        d.id,
        when(&d.started_at),
        o = esc(worst)
    );
    if let Some(host) = &d.host {
        let _ = write!(out, " on {}", esc(host));
    }
    let names: Vec<&str> = d.services.iter().map(|s| s.service.as_str()).collect();
    let _ = write!(
        out,
        " — {}</summary>",
        esc(&truncate(&names.join(", "), 80))
    );
    if let Some(c) = &d.commit {
        let short = esc(&c[..c.len().min(12)]);
        match commit_url(repo, c) {
            Some(url) => {
                let _ = write!(
                    out,
                    "<p>commit <a href=\"{}\"><code>{short}</code></a></p>",
                    esc(&url)
                );
            }
            None => {
                let _ = write!(out, "<p>commit <code>{short}</code></p>");
            }
        }
    }
    out.push_str("<table><thead><tr><th>Service</th><th>Before</th><th>After</th><th>Outcome</th></tr></thead><tbody>");
    for s in &d.services {
        let _ = write!(
            out,
            "<tr><td>{}</td><td><code>{}</code></td><td><code>{}</code></td><td><span class=\"outcome {o}\">{o}</span></td></tr>",
            esc(&s.service),
            esc(s.from.as_deref().unwrap_or("-")),
            esc(s.to.as_deref().unwrap_or("-")),
            o = esc(&s.outcome)
        );
        if let Some(e) = &s.error {
            let _ = write!(
                out,
                "<tr><td colspan=\"4\"><blockquote class=\"error\">{}</blockquote></td></tr>",
                esc_text(e)
            );
        }
    }
    out.push_str("</tbody></table>");
    if !d.migrations.is_empty() {
        out.push_str("<ul class=\"migrations\">");
        for m in &d.migrations {
            let _ = write!(
                out,
                "<li>migration <code>{}</code> {} in {:.1}s</li>",
                esc(&m.migration),
                esc(m.outcome.as_str()),
                m.duration_ms as f64 / 1000.0
            );
        }
        out.push_str("</ul>");
    }
    out.push_str("</details>");
}
