//! The fleet, when hosts share a PostgreSQL ledger: a matrix of hosts × services with
//! the release each host last deployed of each service and how that ended, the canary
//! host of each service, the rollout leases held now, and the migrations under way and
//! where they run.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write;

use super::escape::{esc, when};
use crate::ledger::{DeployRecord, LeaseHeld};
use crate::status::AgentStatus;

/// What the fleet section shows, read from the shared ledger.
#[derive(Debug, Clone, Default)]
pub(crate) struct FleetView {
    /// Every host's deploys of this project, newest first.
    pub deploys: Vec<DeployRecord>,
    /// The rollout leases held now.
    pub leases: Vec<LeaseHeld>,
}

/// The newest deploy of one service on one host.
struct Cell<'a> {
    image: Option<&'a str>,
    outcome: &'a str,
    at: &'a str,
}

/// `name:tag` of an image reference, without its registry and path.
fn short_image(image: &str) -> &str {
    image.rsplit('/').next().unwrap_or(image)
}

/// The fleet section: the matrix, then the migrations under way.
pub(crate) fn fleet(out: &mut String, st: &AgentStatus, view: &FleetView) {
    out.push_str("<section id=\"fleet\"><h2>Fleet</h2>");
    let mut cells: BTreeMap<(&str, &str), Cell> = BTreeMap::new();
    let mut hosts: BTreeSet<&str> = BTreeSet::from([st.host.name.as_str()]);
    let mut services: BTreeSet<&str> = st.services.keys().map(String::as_str).collect();
    // Newest first: the first deploy seen of a (host, service) is its current one.
    for d in &view.deploys {
        let Some(host) = d.host.as_deref() else {
            continue;
        };
        hosts.insert(host);
        for s in &d.services {
            services.insert(&s.service);
            cells.entry((host, &s.service)).or_insert(Cell {
                image: s.to.as_deref(),
                outcome: &s.outcome,
                at: &d.ended_at,
            });
        }
    }
    for l in &view.leases {
        hosts.insert(&l.host);
        services.insert(&l.service);
    }
    for m in &st.started_migrations {
        hosts.insert(&m.host);
    }
    let leased: BTreeMap<(&str, &str), &str> = view
        .leases
        .iter()
        .map(|l| ((l.host.as_str(), l.service.as_str()), l.expires_at.as_str()))
        .collect();
    out.push_str("<table id=\"fleet-matrix\"><thead><tr><th>Host</th>");
    for service in &services {
        let _ = write!(out, "<th data-service=\"{s}\">{s}", s = esc(service));
        if let Some(c) = st.services.get(*service).and_then(|s| s.canary.as_deref()) {
            let _ = write!(out, "<div class=\"attempts\">canary {}</div>", esc(c));
        }
        out.push_str("</th>");
    }
    out.push_str("</tr></thead><tbody>");
    for host in &hosts {
        let _ = write!(
            out,
            "<tr class=\"fleet-host\" data-host=\"{h}\"><td class=\"name\">{h}{}</td>",
            if *host == st.host.name {
                " <span class=\"attempts\">(this host)</span>"
            } else {
                ""
            },
            h = esc(host)
        );
        for service in &services {
            let _ = write!(
                out,
                "<td data-host=\"{}\" data-service=\"{}\">",
                esc(host),
                esc(service)
            );
            match cells.get(&(*host, *service)) {
                Some(c) => {
                    let _ = write!(
                        out,
                        "<code>{}</code> <span class=\"outcome {o}\">{o}</span> <span class=\"attempts\">{}</span>",
                        esc(c.image.map(short_image).unwrap_or("-")),
                        when(c.at),
                        o = esc(c.outcome)
                    );
                }
                None => out.push('-'),
            }
            let canary = st.services.get(*service).and_then(|s| s.canary.as_deref());
            if canary == Some(*host) {
                out.push_str(" <span class=\"state moving\">canary</span>");
            }
            if let Some(until) = leased.get(&(*host, *service)) {
                let _ = write!(
                    out,
                    " <span class=\"state moving lease\">lease until {}</span>",
                    esc(until)
                );
            }
            out.push_str("</td>");
        }
        out.push_str("</tr>");
    }
    out.push_str("</tbody></table>");
    if st.started_migrations.is_empty() {
        out.push_str("<p class=\"empty\">No migration under way.</p>");
    } else {
        out.push_str("<h3>Migrations under way</h3><ul id=\"fleet-migrations\">");
        for m in &st.started_migrations {
            let _ = write!(
                out,
                "<li><code>{}</code> on {} (container <code>{}</code>) since {}</li>",
                esc(&m.migration),
                esc(&m.host),
                esc(&m.container),
                when(&m.since)
            );
        }
        out.push_str("</ul>");
    }
    out.push_str("</section>");
}
