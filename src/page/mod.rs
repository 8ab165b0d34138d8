//! The status page the agent serves on `--listen` at `/`: HTML and CSS rendered from
//! its status and ledger, with no asset from anywhere else, readable without script;
//! a little script keeps it live over server-sent events (`/events`), and without
//! script it refreshes itself.
//!
//! Safe by construction: only `GET`; everything a pusher could write is escaped
//! ([`escape`]); it shows what `/status` shows, masked the same way; a strict
//! Content-Security-Policy lets in only the page's own script and style (by hash) and
//! connections to itself.

mod escape;
mod fleet;
mod history;
mod render;
mod sample;

pub use sample::Sample;

use std::convert::Infallible;
use std::sync::{Arc, LazyLock};
use std::time::{Duration, SystemTime};

use axum::extract::State;
use axum::http::header::{self, HeaderName, HeaderValue};
use axum::http::StatusCode;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use base64::Engine as _;
use futures_util::Stream;
use sha2::{Digest, Sha256};
use tokio::sync::{mpsc, Semaphore};
use tokio_util::sync::CancellationToken;

use crate::executor::progress::{unix_ms, Sink};
use crate::ledger::{DeployRecord, Ledger};
use crate::status::{AgentStatus, SharedStatus};
use fleet::FleetView;

const STYLE: &str = include_str!("assets/page.css");
const SCRIPT: &str = include_str!("assets/live.js");

/// Live streams open at once; more are answered 503 (the page still refreshes).
const MAX_STREAMS: usize = 32;

/// How often a live stream looks at the status for a change.
const LOOK_EVERY: Duration = Duration::from_millis(300);

/// How often a live stream reads the fleet from the shared ledger again (leases come
/// and go within one reconcile).
const FLEET_EVERY: Duration = Duration::from_secs(3);

/// What the page's handlers share.
#[derive(Clone)]
pub(crate) struct PageState {
    status: SharedStatus,
    ledger: Arc<dyn Ledger>,
    streams: Arc<Semaphore>,
    shutdown: CancellationToken,
}

impl PageState {
    /// The page over the agent's status and ledger; live streams end at `shutdown`.
    pub(crate) fn new(
        status: SharedStatus,
        ledger: Arc<dyn Ledger>,
        shutdown: CancellationToken,
    ) -> Self {
        Self {
            status,
            ledger,
            streams: Arc::new(Semaphore::new(MAX_STREAMS)),
            shutdown,
        }
    }

    /// This host's deploys, newest first, and with a shared ledger the fleet: one read
    /// of the ledger's deploys serves both. Nothing when the ledger does not answer.
    async fn read(&self, host: &str) -> (Vec<DeployRecord>, Option<FleetView>) {
        let shared = self.ledger.is_shared();
        let limit = if shared {
            FLEET_DEPLOYS
        } else {
            history::SHOWN * 4
        };
        let all = match self.ledger.deploys(None, None, limit).await {
            Ok(all) => all,
            Err(e) => {
                tracing::debug!(error = %e, "deploy history not read for the status page");
                return (Vec::new(), None);
            }
        };
        let mine = all
            .iter()
            .filter(|d| d.host.as_deref().is_none_or(|h| h == host))
            .take(history::SHOWN)
            .cloned()
            .collect();
        let fleet = if shared {
            self.fleet(all, host).await
        } else {
            None
        };
        (mine, fleet)
    }

    /// The fleet in `all` (every host's deploys, newest first): the deploys of the
    /// project this host last deployed, and the leases held now. `None` before this
    /// host recorded a deploy.
    async fn fleet(&self, all: Vec<DeployRecord>, host: &str) -> Option<FleetView> {
        let project = all
            .iter()
            .find(|d| d.host.as_deref() == Some(host))?
            .project
            .clone();
        let leases = self.ledger.leases(&project).await.unwrap_or_default();
        Some(FleetView {
            deploys: all.into_iter().filter(|d| d.project == project).collect(),
            leases,
        })
    }
}

/// Deploys read for the fleet section: enough for every host's latest of each service
/// in a fleet that deploys often.
const FLEET_DEPLOYS: usize = 400;

/// The page's routes: `GET /` and `GET /events`.
pub(crate) fn router(state: PageState) -> Router {
    Router::new()
        .route("/", get(page))
        .route("/events", get(events))
        .with_state(state)
}

/// A sink whose events are folded into the status, for the page's rollout section.
pub(crate) fn follow_progress(status: SharedStatus) -> Sink {
    let (tx, mut rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Some(event) = rx.recv().await {
            status.write().await.rollout.apply(&event);
        }
    });
    Sink::new(tx)
}

fn hash(text: &str) -> String {
    format!(
        "'sha256-{}'",
        base64::engine::general_purpose::STANDARD.encode(Sha256::digest(text.as_bytes()))
    )
}

/// The policy: nothing but the page's own script and style, and connections to itself.
pub(crate) static CSP: LazyLock<String> = LazyLock::new(|| {
    format!(
        "default-src 'none'; script-src {}; style-src {}; connect-src 'self'; img-src 'self' data:; \
         base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
        hash(SCRIPT),
        hash(STYLE)
    )
});

/// The headers of every answer of the page.
fn safety_headers(content_type: &'static str) -> [(HeaderName, HeaderValue); 5] {
    [
        (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
        (
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_str(&CSP).expect("the policy is ASCII"),
        ),
        (
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ),
        (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
        (
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        ),
    ]
}

/// The live part of the page: overview, rollout, history.
pub(crate) fn render_live(
    st: &AgentStatus,
    deploys: &[DeployRecord],
    fleet: Option<&FleetView>,
    now_ms: u64,
) -> String {
    let mut out = String::with_capacity(16 * 1024 + 600 * st.services.len());
    render::overview(&mut out, st);
    render::rollout(&mut out, &st.rollout, now_ms);
    if let Some(view) = fleet {
        fleet::fleet(&mut out, st, view);
    }
    history::history(&mut out, deploys, &st.repo);
    out
}

/// The whole page.
pub(crate) fn render_page(
    st: &AgentStatus,
    deploys: &[DeployRecord],
    fleet: Option<&FleetView>,
    now_ms: u64,
) -> String {
    let live = render_live(st, deploys, fleet, now_ms);
    let mut out = String::with_capacity(live.len() + STYLE.len() + SCRIPT.len() + 1024);
    out.push_str("<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">");
    out.push_str("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">");
    out.push_str("<noscript><meta http-equiv=\"refresh\" content=\"10\"></noscript>");
    out.push_str("<link rel=\"icon\" href=\"data:,\">");
    out.push_str("<title>berth · ");
    escape::push_esc(&mut out, &st.host.name);
    out.push_str("</title><style>");
    out.push_str(STYLE);
    out.push_str("</style></head><body><header><h1>berth</h1><span>");
    escape::push_esc(&mut out, &st.host.name);
    out.push_str("</span><span class=\"live\" id=\"live-state\">refreshes every 10 s</span></header><main id=\"live\">");
    out.push_str(&live);
    out.push_str("</main><footer>read-only · the same data as <a href=\"/status\">/status</a></footer><script>");
    out.push_str(SCRIPT);
    out.push_str("</script></body></html>");
    out
}

async fn page(State(state): State<PageState>) -> Response {
    let st = state.status.read().await.clone();
    let (deploys, fleet) = state.read(&st.host.name).await;
    let html = render_page(&st, &deploys, fleet.as_ref(), unix_ms(SystemTime::now()));
    (safety_headers("text/html; charset=utf-8"), html).into_response()
}

/// What a live stream last sent, and what it holds.
struct LiveStream {
    state: PageState,
    last_html: Option<String>,
    reconcile: Option<String>,
    deploys: Vec<DeployRecord>,
    fleet: Option<FleetView>,
    /// When the ledger was last read.
    read_at: Option<tokio::time::Instant>,
    _permit: tokio::sync::OwnedSemaphorePermit,
}

async fn events(State(state): State<PageState>) -> Response {
    let Ok(permit) = state.streams.clone().try_acquire_owned() else {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            "too many live pages open; the page refreshes by itself\n",
        )
            .into_response();
    };
    let s = LiveStream {
        state,
        last_html: None,
        reconcile: None,
        deploys: Vec::new(),
        fleet: None,
        read_at: None,
        _permit: permit,
    };
    (
        safety_headers("text/event-stream"),
        Sse::new(live_stream(s)).keep_alive(KeepAlive::default()),
    )
        .into_response()
}

/// The live part again each time it changes; ends when the agent stops.
fn live_stream(s: LiveStream) -> impl Stream<Item = Result<SseEvent, Infallible>> {
    futures_util::stream::unfold(s, |mut s| async move {
        loop {
            if s.state.shutdown.is_cancelled() {
                return None;
            }
            let st = s.state.status.read().await.clone();
            let first = s.last_html.is_none();
            // The history changes with a reconcile; a fleet's leases within one.
            let fleet_due =
                s.state.ledger.is_shared() && s.read_at.is_none_or(|t| t.elapsed() >= FLEET_EVERY);
            if first || st.last_reconcile != s.reconcile || fleet_due {
                s.reconcile = st.last_reconcile.clone();
                (s.deploys, s.fleet) = s.state.read(&st.host.name).await;
                s.read_at = Some(tokio::time::Instant::now());
            }
            // Countdowns run in the browser: a rendering differs only when the state does.
            let html = render_live(&st, &s.deploys, s.fleet.as_ref(), 0);
            if s.last_html.as_deref() != Some(html.as_str()) {
                let now = render_live(
                    &st,
                    &s.deploys,
                    s.fleet.as_ref(),
                    unix_ms(SystemTime::now()),
                );
                s.last_html = Some(html);
                return Some((Ok(SseEvent::default().event("live").data(now)), s));
            }
            tokio::select! {
                _ = tokio::time::sleep(LOOK_EVERY) => {}
                _ = s.state.shutdown.cancelled() => return None,
            }
        }
    })
}

#[cfg(test)]
mod tests;
