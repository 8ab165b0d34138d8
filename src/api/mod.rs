//! The agent's HTTP listener: the git webhook, `/healthz`, `/metrics` and `/status`,
//! and `/control/reconcile`.
//!
//! The same routes are served on two transports. On TCP (`--listen`, loopback by
//! default) a request that changes the agent's state (every `POST`) must carry the
//! webhook secret's HMAC of its body, or for the webhook the proof its git host's
//! scheme gives ([`hooks`]); on the control socket (`<state-dir>/control.sock`,
//! mode 0600, see [`control_socket`]) it needs none, since only the agent's user and root
//! can open it. The `GET` routes answer on both without authentication and carry no
//! secret: URLs in `/status` have their credentials masked.

pub(crate) mod control_socket;
pub(crate) mod hooks;
pub(crate) mod metrics;

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use axum::{Json, Router};
use tokio::sync::mpsc;

pub(crate) use hooks::signature_ok;

use crate::status::{AgentStatus, SharedStatus};
use crate::trigger::Trigger;

/// Webhook bodies larger than this are refused before their signature is checked.
pub(crate) const MAX_WEBHOOK_BODY: usize = 1 << 20;

/// How a request reached the agent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Transport {
    /// The TCP listener: state-changing requests need the webhook secret's HMAC.
    Tcp,
    /// The control socket, which only the agent's user and root can open.
    ControlSocket,
}

impl Transport {
    /// The label in metrics and logs.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Transport::Tcp => "tcp",
            Transport::ControlSocket => "unix",
        }
    }
}

/// Why a state-changing request was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// Over TCP, with no webhook secret configured: nothing could sign it.
    NoSecret,
    /// Over TCP, with a missing or wrong proof of the secret (`X-Hub-Signature-256`,
    /// or the webhook's host's own scheme).
    BadSignature,
}

/// Whether a state-changing request may go through: always over the control socket;
/// over TCP only with a proof of the webhook secret, checked by `proof` (the HMAC of the
/// body, or a webhook host's own scheme).
pub(crate) fn authorize_with(
    transport: Transport,
    secret: Option<&[u8]>,
    proof: impl FnOnce(&[u8]) -> bool,
) -> Result<(), Refusal> {
    match (transport, secret) {
        (Transport::ControlSocket, _) => Ok(()),
        (Transport::Tcp, None) => Err(Refusal::NoSecret),
        (Transport::Tcp, Some(secret)) if proof(secret) => Ok(()),
        (Transport::Tcp, Some(_)) => Err(Refusal::BadSignature),
    }
}

/// What the handlers share.
#[derive(Clone)]
pub(crate) struct ApiState {
    /// The agent's status.
    pub status: SharedStatus,
    /// Wakes the loop.
    pub triggers: mpsc::UnboundedSender<Trigger>,
    /// The webhook secret; the webhook answers 404 without one.
    pub webhook_secret: Option<Arc<Vec<u8>>>,
    /// The metrics.
    pub metrics: Arc<metrics::Metrics>,
    /// How requests reach this router.
    pub transport: Transport,
    /// The control socket, named in refusals so that an operator knows where to go.
    pub control_socket: std::path::PathBuf,
    /// The branch followed: a webhook's push to another branch is ignored.
    pub branch: String,
}

impl ApiState {
    /// Checks a state-changing request by `proof`, counts it, and logs a refusal.
    fn admit(&self, route: &str, proof: impl FnOnce(&[u8]) -> bool) -> Result<(), Refusal> {
        let verdict = authorize_with(
            self.transport,
            self.webhook_secret.as_deref().map(Vec::as_slice),
            proof,
        );
        let outcome = match verdict {
            Ok(()) => "accepted",
            Err(Refusal::NoSecret) => "refused-no-secret",
            Err(Refusal::BadSignature) => "refused-bad-signature",
        };
        self.metrics
            .control_requests
            .get_or_create(&metrics::ControlLabels {
                route: route.to_string(),
                transport: self.transport.as_str().to_string(),
                outcome: outcome.to_string(),
            })
            .inc();
        if verdict.is_err() {
            tracing::warn!(
                action = "request-refused",
                route,
                transport = self.transport.as_str(),
                outcome,
                "state-changing request refused"
            );
        }
        verdict
    }
}

/// The routes.
pub(crate) fn router(state: ApiState) -> Router {
    Router::new()
        .route("/hooks/git", post(webhook))
        .route("/healthz", get(healthz))
        .route("/status", get(status))
        .route("/metrics", get(metrics_text))
        .route("/control/reconcile", post(reconcile))
        .layer(DefaultBodyLimit::max(MAX_WEBHOOK_BODY))
        .with_state(state)
}

async fn webhook(
    State(state): State<ApiState>,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, String) {
    let hook = hooks::detect(&headers);
    match state.admit("/hooks/git", |secret| hook.verify(secret, &headers, &body)) {
        Ok(()) => {}
        Err(Refusal::NoSecret) => {
            return (
                StatusCode::NOT_FOUND,
                "webhook not configured (--webhook-secret-file)\n".into(),
            )
        }
        Err(Refusal::BadSignature) => {
            return (
                StatusCode::UNAUTHORIZED,
                "bad or missing signature\n".into(),
            )
        }
    }
    let branch = hooks::branch_name(&state.branch);
    let event = hook.event.as_deref().unwrap_or("-");
    match hook.event(&headers, &body) {
        Ok(hooks::Event::Push(branches)) if !branches.iter().any(|b| b == branch) => {
            tracing::info!(
                action = "webhook-ignored",
                host = hook.host.as_str(),
                event,
                branch,
                "webhook accepted; the push does not move the watched branch"
            );
            return (
                StatusCode::ACCEPTED,
                format!("ignored: the push does not move the watched branch {branch}\n"),
            );
        }
        Ok(_) => {}
        Err(e) => {
            tracing::warn!(
                action = "webhook-refused",
                host = hook.host.as_str(),
                event,
                error = %e,
                "webhook refused"
            );
            return (
                StatusCode::BAD_REQUEST,
                format!("{} push event refused: {e}\n", hook.host.as_str()),
            );
        }
    }
    tracing::info!(
        action = "webhook",
        transport = state.transport.as_str(),
        host = hook.host.as_str(),
        event,
        "webhook accepted; fetching"
    );
    let _ = state.triggers.send(Trigger::Webhook);
    (StatusCode::ACCEPTED, "fetching\n".into())
}

async fn reconcile(
    State(state): State<ApiState>,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, String) {
    let socket = state.control_socket.display();
    let signature = headers
        .get(hooks::GITHUB_SIGNATURE)
        .and_then(|v| v.to_str().ok());
    match state.admit("/control/reconcile", |secret| {
        signature_ok(secret, &body, signature)
    }) {
        Ok(()) => {}
        Err(Refusal::NoSecret) => {
            return (
                StatusCode::FORBIDDEN,
                format!("control over TCP needs the webhook secret (--webhook-secret-file) and X-Hub-Signature-256: sha256=<HMAC-SHA256 of the body>; on this host use the control socket {socket} (berth pause, berth resume, or curl --unix-socket)\n"),
            )
        }
        Err(Refusal::BadSignature) => {
            return (
                StatusCode::FORBIDDEN,
                format!("bad or missing signature: send X-Hub-Signature-256: sha256=<HMAC-SHA256 of the body with the webhook secret>, or use the control socket {socket}\n"),
            )
        }
    }
    tracing::info!(
        action = "control-reconcile",
        transport = state.transport.as_str(),
        "reconcile asked for"
    );
    let _ = state.triggers.send(Trigger::Control);
    (StatusCode::ACCEPTED, "reconciling\n".into())
}

async fn healthz(State(state): State<ApiState>) -> (StatusCode, String) {
    match state.status.read().await.unhealthy_because() {
        None => (StatusCode::OK, "ok\n".into()),
        Some(why) => (StatusCode::SERVICE_UNAVAILABLE, format!("{why}\n")),
    }
}

async fn metrics_text(
    State(state): State<ApiState>,
) -> ([(axum::http::header::HeaderName, &'static str); 1], String) {
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        state.metrics.encode(),
    )
}

async fn status(State(state): State<ApiState>) -> Json<AgentStatus> {
    Json(state.status.read().await.clone())
}

#[cfg(test)]
mod tests;
