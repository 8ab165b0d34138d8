//! The page's overview and the rollout in flight, rendered from the agent's status.
//! Pure functions of their input: the same status renders the same HTML, for the
//! first answer and for every live update.

use std::fmt::Write;

use super::escape::{commit_url, esc, esc_text, when};
use crate::executor::progress::{Board, ServiceProgress};
use crate::status::{AgentStatus, ServiceStatus};

/// The state of a service in one word or two, and its CSS class.
pub(crate) fn state_of(
    name: &str,
    s: &ServiceStatus,
    st: &AgentStatus,
) -> (&'static str, &'static str) {
    if s.paused || st.paused {
        return ("paused", "paused");
    }
    if st.rollout.services.contains_key(name) {
        return ("rolling out", "moving");
    }
    if s.failed_target.is_some() {
        return ("failed (held)", "failed");
    }
    match s.last_outcome.as_str() {
        "waiting" => ("waiting", "waiting"),
        "failed" | "rolled-back" | "blocked" => ("failed (held)", "failed"),
        _ => {
            let only_desired = s
                .running_images
                .keys()
                .all(|i| Some(i) == s.desired_image.as_ref());
            if s.healthy >= s.desired && only_desired {
                ("in sync", "ok")
            } else {
                ("rolling out", "moving")
            }
        }
    }
}

/// Seconds from `now_ms` to `until_ms`, never negative.
fn secs_left(until_ms: u64, now_ms: u64) -> u64 {
    until_ms.saturating_sub(now_ms).div_ceil(1000)
}

/// A countdown the page's script keeps counting; without script, the time when rendered.
fn countdown(out: &mut String, until_ms: u64, now_ms: u64) {
    let _ = write!(
        out,
        "<span class=\"countdown\" data-until=\"{until_ms}\">{}s</span>",
        secs_left(until_ms, now_ms)
    );
}

/// The overview: what is followed, what runs, and each service.
pub(crate) fn overview(out: &mut String, st: &AgentStatus) {
    out.push_str("<section id=\"overview\"><h2>Overview</h2><dl class=\"facts\">");
    let _ = write!(
        out,
        "<dt>Host</dt><dd>{}</dd><dt>Repository</dt><dd><code>{}</code> branch <code>{}</code></dd>",
        esc(&st.host.name),
        esc_text(&st.repo),
        esc(&st.branch)
    );
    out.push_str("<dt>Applied commit</dt><dd id=\"applied\">");
    match &st.applied_commit {
        Some(c) => {
            let short = esc(c.short());
            match commit_url(&st.repo, &c.sha) {
                Some(url) => {
                    let _ = write!(out, "<a href=\"{}\"><code>{short}</code></a>", esc(&url));
                }
                None => {
                    let _ = write!(out, "<code>{short}</code>");
                }
            }
            let _ = write!(
                out,
                " <span class=\"summary\">{}</span> <span class=\"author\">by {}</span>",
                esc_text(&c.summary),
                esc_text(&c.author)
            );
        }
        None => out.push_str("none yet"),
    }
    out.push_str("</dd>");
    if let Some(head) = &st.head {
        let applied = st.applied_commit.as_ref().map(|c| c.sha.as_str());
        if Some(head.as_str()) != applied {
            let _ = write!(
                out,
                "<dt>Last head seen</dt><dd class=\"refused\"><code>{}</code> refused: {}</dd>",
                esc(&head[..head.len().min(12)]),
                esc_text(st.last_error.as_deref().unwrap_or("not applied"))
            );
        }
    }
    if let Some(e) = st
        .last_error
        .as_deref()
        .filter(|_| st.head.as_deref() == st.applied_commit.as_ref().map(|c| c.sha.as_str()))
    {
        let _ = write!(
            out,
            "<dt>Last error</dt><dd class=\"error\">{}</dd>",
            esc_text(e)
        );
    }
    let _ = write!(
        out,
        "<dt>Last reconcile</dt><dd>{}</dd><dt>Coordination</dt><dd>{}</dd>",
        match (&st.last_reconcile, st.last_reconcile_ms) {
            (Some(at), Some(ms)) => format!("{} ({ms} ms)", when(at)),
            _ => "not yet".into(),
        },
        esc_text(&st.coordination)
    );
    if let Some(d) = &st.degraded {
        let _ = write!(
            out,
            "<dt>Degraded</dt><dd class=\"error\">{}</dd>",
            esc_text(d)
        );
    }
    let paused: Vec<&str> = st
        .services
        .iter()
        .filter(|(_, s)| s.paused)
        .map(|(n, _)| n.as_str())
        .collect();
    if st.paused {
        out.push_str("<dt>Paused</dt><dd class=\"paused\">everything (berth resume to go on)</dd>");
    } else if !paused.is_empty() {
        let _ = write!(
            out,
            "<dt>Paused</dt><dd class=\"paused\">{}</dd>",
            esc(&paused.join(", "))
        );
    }
    if !st.started_migrations.is_empty() {
        out.push_str("<dt>Migrations started, no result</dt><dd>");
        for m in &st.started_migrations {
            let _ = write!(out, "<code>{}</code> ", esc(&m.migration));
        }
        out.push_str("</dd>");
    }
    out.push_str("</dl>");
    services(out, st);
    out.push_str("</section>");
}

fn services(out: &mut String, st: &AgentStatus) {
    if st.services.is_empty() {
        out.push_str("<p class=\"empty\">No service reported yet.</p>");
        return;
    }
    out.push_str(
        "<table id=\"services\"><thead><tr><th>Service</th><th>State</th><th>Desired image</th>\
         <th>Running</th><th>Healthy</th><th>Last deploy</th></tr></thead><tbody>",
    );
    for (name, s) in &st.services {
        let (word, class) = state_of(name, s, st);
        let _ = write!(
            out,
            "<tr class=\"service\" data-service=\"{n}\"><td class=\"name\">{n}</td><td><span class=\"state {class}\">{word}</span>",
            n = esc(name)
        );
        if let Some(f) = &s.failed_target {
            let _ = write!(
                out,
                "<div class=\"attempts\">{} attempt{}{}</div>",
                f.attempts,
                if f.attempts == 1 { "" } else { "s" },
                if f.given_up {
                    ", given up until the desired state changes"
                } else {
                    ""
                }
            );
        }
        if let Some(e) = &s.last_error {
            let _ = write!(out, "<div class=\"error\">{}</div>", esc_text(e));
        }
        let _ = write!(
            out,
            "</td><td><code>{}</code></td><td>",
            esc(s.desired_image.as_deref().unwrap_or("-"))
        );
        for (image, n) in &s.running_images {
            let _ = write!(out, "<div>{n} × <code>{}</code></div>", esc(image));
        }
        let _ = write!(out, "</td><td>{}/{}</td><td>", s.healthy, s.desired);
        match &s.last_deploy {
            Some(d) => {
                let _ = write!(
                    out,
                    "<span class=\"outcome {o}\">{o}</span> {} <code>{}</code>",
                    when(&d.at),
                    esc(&d.commit[..d.commit.len().min(12)]),
                    o = esc(&d.outcome)
                );
            }
            None => out.push('-'),
        }
        out.push_str("</td></tr>");
    }
    out.push_str("</tbody></table>");
}

/// The rollout in flight: pulls, then slot by slot.
pub(crate) fn rollout(out: &mut String, board: &Board, now_ms: u64) {
    out.push_str("<section id=\"rollout\"><h2>Rollout</h2>");
    if board.is_idle() {
        out.push_str("<p class=\"empty\">Nothing under way.</p></section>");
        return;
    }
    if !board.pulls.is_empty() {
        out.push_str("<ul class=\"pulls\">");
        for (image, p) in &board.pulls {
            let _ = write!(out, "<li>pulling <code>{}</code>", esc(image));
            if p.layers > 0 {
                let _ = write!(
                    out,
                    ": {}/{} layers, {} of {} MB",
                    p.layers_done,
                    p.layers,
                    p.bytes / 1_000_000,
                    p.bytes_total / 1_000_000
                );
            }
            out.push_str("</li>");
        }
        out.push_str("</ul>");
    }
    for (name, s) in &board.services {
        service_rollout(out, name, s, now_ms);
    }
    out.push_str("</section>");
}

fn service_rollout(out: &mut String, name: &str, s: &ServiceProgress, now_ms: u64) {
    let _ = write!(
        out,
        "<div class=\"moving-service\" data-service=\"{n}\"><h3>{n} → <code>{}</code></h3><ol class=\"slots\">",
        esc(&s.image),
        n = esc(name)
    );
    for (slot, p) in &s.slots {
        let _ = write!(out, "<li class=\"slot\" data-slot=\"{slot}\">slot {slot}: ");
        match &p.container {
            Some(c) => {
                let _ = write!(out, "<code class=\"replica\">{}</code>", esc(c));
            }
            None => out.push_str("waiting"),
        }
        if p.done {
            out.push_str(" <span class=\"state ok\">serving</span>");
        } else if let Some(deadline) = p.deadline_ms {
            out.push_str(" <span class=\"state moving\">health gate</span>: healthy within ");
            countdown(out, deadline, now_ms);
            if let Some(m) = p.monitor_ms {
                let _ = write!(out, ", then for {}s", m.div_ceil(1000));
            }
        } else {
            out.push_str(" starting");
        }
        out.push_str("</li>");
    }
    out.push_str("</ol>");
    if !s.draining.is_empty() {
        out.push_str("<p class=\"draining\">draining ");
        for c in &s.draining {
            let _ = write!(out, "<code>{}</code> ", esc(c));
        }
        if let Some(until) = s.drain_until_ms {
            out.push_str("stop in ");
            countdown(out, until, now_ms);
        }
        out.push_str("</p>");
    }
    out.push_str("</div>");
}
