//! `berth status`: what the agent reports, or, with no agent answering, what Docker and
//! the ledger say.

use std::collections::BTreeMap;
use std::time::Duration;

use super::{exit, Output, StatusArgs};
use crate::executor::ServiceObserved;
use crate::plan::desired::short;
use crate::runtime::{DockerEngine, Engine, HealthState, Role};

/// Prints the status; with `--watch`, again each time it changes.
pub(super) async fn run(args: &StatusArgs) -> u8 {
    if !args.watch {
        let (code, text) = once(args).await;
        print!("{text}");
        return code;
    }
    super::progress::watch(args.watch_every.into(), || once(args)).await
}

/// The status once, as text, and the exit code it means; errors on stderr.
async fn once(args: &StatusArgs) -> (u8, String) {
    if let Some(body) = ask_agent(args).await {
        let Ok(mut status) = serde_json::from_str::<serde_json::Value>(&body) else {
            eprintln!(
                "error: the agent on {} answered something that is not its status",
                args.listen
            );
            return (exit::FAILED, String::new());
        };
        // The agent masks credentials in what it publishes; an older agent did not.
        redact_strings(&mut status);
        let text = match args.output {
            Output::Json => format!(
                "{}\n",
                serde_json::to_string_pretty(&status).expect("serializes")
            ),
            Output::Human => render_agent(&status),
        };
        return (exit::OK, text);
    }
    match from_engine(args).await {
        Ok(v) => {
            let text = match args.output {
                Output::Json => {
                    format!(
                        "{}\n",
                        serde_json::to_string_pretty(&v).expect("serializes")
                    )
                }
                Output::Human => render_engine(&v),
            };
            (exit::OK, text)
        }
        Err(e) => {
            eprintln!("error: {e}");
            (exit::FAILED, String::new())
        }
    }
}

/// The agent's status from its listener, when an agent answers there.
async fn ask_agent(args: &StatusArgs) -> Option<String> {
    use crate::http_client::{ClientOptions, HttpClient};
    let client = HttpClient::new(&ClientOptions {
        connect_timeout: Duration::from_secs(1),
        ..ClientOptions::tcp(Duration::from_secs(5))
    })
    .ok()?;
    match client
        .get(&format!("http://{}/status", args.listen))
        .await
        .ok()?
    {
        answer if answer.status == 200 => Some(answer.body),
        _ => None,
    }
}

/// Every string in `v` with the credentials of the URLs in it masked.
fn redact_strings(v: &mut serde_json::Value) {
    match v {
        serde_json::Value::String(s) => *s = crate::urls::redact_urls_in(s),
        serde_json::Value::Array(items) => items.iter_mut().for_each(redact_strings),
        serde_json::Value::Object(map) => map.values_mut().for_each(redact_strings),
        _ => {}
    }
}

fn or_dash(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::Null => "-".into(),
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// The agent's status as a table.
pub(super) fn render_agent(s: &serde_json::Value) -> String {
    let mut out = String::new();
    let commit = &s["applied_commit"];
    let sha = commit["sha"]
        .as_str()
        .map(|c| &c[..c.len().min(12)])
        .unwrap_or("-");
    out.push_str(&format!(
        "agent on {}: {} ({}) at commit {sha} {}\n",
        or_dash(&s["host"]["name"]),
        or_dash(&s["repo"]),
        or_dash(&s["branch"]),
        commit["summary"]
            .as_str()
            .map(|m| format!("\"{m}\""))
            .unwrap_or_default()
    ));
    out.push_str(&format!(
        "last reconcile: {} ({} ms){}\n",
        or_dash(&s["last_reconcile"]),
        or_dash(&s["last_reconcile_ms"]),
        if s["paused"] == true {
            "; everything paused"
        } else {
            ""
        }
    ));
    if let Some(e) = s["last_error"].as_str() {
        out.push_str(&format!("last error: {e}\n"));
    }
    if let Some(c) = s["coordination"].as_str() {
        out.push_str(&format!("coordination: {c}\n"));
    }
    if let Some(d) = s["degraded"].as_str() {
        out.push_str(&format!("DEGRADED: {d}\n"));
    }
    out.push_str(&started_migrations(&s["started_migrations"]));
    let mut rows = vec![[
        "SERVICE",
        "DESIRED IMAGE",
        "RUNNING",
        "HEALTHY",
        "LAST DEPLOY",
        "STATE",
    ]
    .map(String::from)];
    if let Some(services) = s["services"].as_object() {
        for (name, v) in services {
            let state = if v["paused"] == true {
                "paused".to_string()
            } else if let Some(t) = v["failed_target"].as_object() {
                if t.get("given_up") == Some(&serde_json::Value::Bool(true)) {
                    "failed (held)".into()
                } else {
                    "failed (retrying)".into()
                }
            } else {
                or_dash(&v["last_outcome"])
            };
            rows.push([
                name.clone(),
                v["desired_image"]
                    .as_str()
                    .map(short)
                    .unwrap_or_else(|| "-".into()),
                running_cell(&v["running_images"]),
                format!("{}/{}", or_dash(&v["healthy"]), or_dash(&v["desired"])),
                last_deploy_cell(&v["last_deploy"]),
                state,
            ]);
        }
    }
    out.push_str(&table(&rows));
    out
}

/// One line per migration recorded as started without a result: where it runs and
/// since when, and how to settle it should that host never return.
fn started_migrations(list: &serde_json::Value) -> String {
    let mut out = String::new();
    for m in list.as_array().into_iter().flatten() {
        let since = m["since"].as_str().unwrap_or("");
        let age = crate::ledger::age_of(since)
            .map(|d| format!(" ({}s ago)", d.as_secs()))
            .unwrap_or_default();
        out.push_str(&format!(
            "migration {} for {} under way on {} since {since}{age} (container {}); if {} never returns: berth migrations resolve {} --image {} --as succeeded|failed\n",
            or_dash(&m["migration"]),
            or_dash(&m["digest"]),
            or_dash(&m["host"]),
            or_dash(&m["container"]),
            or_dash(&m["host"]),
            or_dash(&m["migration"]),
            or_dash(&m["digest"]),
        ));
    }
    out
}

/// What Docker and the ledger say, per project and service.
async fn from_engine(args: &StatusArgs) -> Result<serde_json::Value, String> {
    let engine = DockerEngine::connect().await.map_err(|e| e.to_string())?;
    let all = engine.list_managed().await.map_err(|e| e.to_string())?;
    let mut services: BTreeMap<(String, String), ServiceObserved> = BTreeMap::new();
    for (project, c) in all
        .iter()
        .filter(|(_, c)| c.role == Role::Replica && c.is_up())
    {
        let e = services
            .entry((project.clone(), c.service.clone()))
            .or_default();
        *e.images.entry(c.image.clone()).or_default() += 1;
        e.running += 1;
        if matches!(c.health, HealthState::Healthy | HealthState::None) {
            e.healthy += 1;
        }
    }
    let ledger_path = args.state_dir.join("ledger.db");
    let ledger = if args.coordination.is_local() && !ledger_path.exists() {
        None
    } else {
        Some(args.coordination.open(&args.state_dir)?)
    };
    let (deploys, started) = match &ledger {
        Some(l) => (
            l.deploys(None, None, 200).await.unwrap_or_default(),
            l.started_migrations(None).await.unwrap_or_default(),
        ),
        None => (Vec::new(), Vec::new()),
    };
    let rows: Vec<serde_json::Value> = services
        .into_iter()
        .map(|((project, service), o)| {
            let last = deploys
                .iter()
                .filter(|d| d.project == project)
                .find_map(|d| d.services.iter().find(|s| s.service == service).map(|s| (d, s)));
            serde_json::json!({
                "project": project,
                "service": service,
                "running_images": o.images,
                "running": o.running,
                "healthy": o.healthy,
                "last_deploy": last.map(|(d, s)| serde_json::json!({"at": d.started_at, "commit": d.commit, "outcome": s.outcome})),
            })
        })
        .collect();
    Ok(serde_json::json!({ "agent": null, "services": rows, "started_migrations": started }))
}

fn render_engine(v: &serde_json::Value) -> String {
    let mut out = String::from("no agent answered; from Docker and the ledger:\n");
    out.push_str(&started_migrations(&v["started_migrations"]));
    let mut rows =
        vec![["PROJECT", "SERVICE", "RUNNING", "HEALTHY", "LAST DEPLOY"].map(String::from)];
    for s in v["services"].as_array().into_iter().flatten() {
        rows.push([
            or_dash(&s["project"]),
            or_dash(&s["service"]),
            running_cell(&s["running_images"]),
            format!("{}/{}", or_dash(&s["healthy"]), or_dash(&s["running"])),
            last_deploy_cell(&s["last_deploy"]),
        ]);
    }
    out.push_str(&table(&rows));
    out
}

/// `2×sha-1111111 1×sha-2222222` from running replicas by image, or `-`.
fn running_cell(by_image: &serde_json::Value) -> String {
    let running: Vec<String> = by_image
        .as_object()
        .map(|m| {
            m.iter()
                .map(|(img, n)| format!("{n}×{}", short(img)))
                .collect()
        })
        .unwrap_or_default();
    if running.is_empty() {
        "-".into()
    } else {
        running.join(" ")
    }
}

/// `converged 2026-…` from a last deploy, or `-`.
fn last_deploy_cell(last: &serde_json::Value) -> String {
    last.as_object()
        .map(|d| format!("{} {}", or_dash(&d["outcome"]), or_dash(&d["at"])))
        .unwrap_or_else(|| "-".into())
}

fn table<const N: usize>(rows: &[[String; N]]) -> String {
    let widths: Vec<usize> = (0..N)
        .map(|i| rows.iter().map(|r| r[i].chars().count()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for r in rows {
        let cells: Vec<String> = r
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests;
