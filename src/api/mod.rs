//! The agent's HTTP listener: the git webhook, `/healthz`, `/metrics` and `/status`.

pub mod metrics;

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use axum::{Json, Router};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use tokio::sync::mpsc;

use crate::agent::{SharedStatus, Trigger};

/// `GET path` on a loopback listener as HTTP/1.0, so the answer comes whole rather
/// than chunked: `(status, body)`, or `None` when nothing answers in time.
pub fn http_get(
    addr: &str,
    path: &str,
    connect: std::time::Duration,
    read: std::time::Duration,
) -> Option<(u16, String)> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect_timeout(&addr.parse().ok()?, connect).ok()?;
    s.set_read_timeout(Some(read)).ok()?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").ok()?;
    let mut raw = String::new();
    s.read_to_string(&mut raw).ok()?;
    let (head, body) = raw.split_once("\r\n\r\n")?;
    Some((
        head.split_whitespace().nth(1)?.parse().ok()?,
        body.to_string(),
    ))
}

/// Webhook bodies larger than this are refused before their signature is checked.
pub const MAX_WEBHOOK_BODY: usize = 1 << 20;

/// What the handlers share.
#[derive(Clone)]
pub struct ApiState {
    /// The agent's status.
    pub status: SharedStatus,
    /// Wakes the loop.
    pub triggers: mpsc::UnboundedSender<Trigger>,
    /// The webhook secret; the webhook answers 404 without one.
    pub webhook_secret: Option<Arc<Vec<u8>>>,
    /// The metrics.
    pub metrics: Arc<metrics::Metrics>,
}

/// The routes.
pub fn router(state: ApiState) -> Router {
    Router::new()
        .route("/hooks/git", post(webhook))
        .route("/healthz", get(healthz))
        .route("/status", get(status))
        .route("/metrics", get(metrics_text))
        .route("/control/reconcile", post(reconcile))
        .layer(DefaultBodyLimit::max(MAX_WEBHOOK_BODY))
        .with_state(state)
}

/// Checks a GitHub-style `X-Hub-Signature-256: sha256=<hex>` over the body, in constant
/// time.
pub fn signature_ok(secret: &[u8], body: &[u8], header: Option<&str>) -> bool {
    let Some(hex_sig) = header.and_then(|h| h.strip_prefix("sha256=")) else {
        return false;
    };
    let Ok(sig) = hex::decode(hex_sig.trim()) else {
        return false;
    };
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes any key length");
    mac.update(body);
    mac.verify_slice(&sig).is_ok()
}

async fn webhook(
    State(state): State<ApiState>,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, &'static str) {
    let Some(secret) = &state.webhook_secret else {
        return (
            StatusCode::NOT_FOUND,
            "webhook not configured (--webhook-secret-file)\n",
        );
    };
    let header = headers
        .get("x-hub-signature-256")
        .and_then(|v| v.to_str().ok());
    if !signature_ok(secret, &body, header) {
        tracing::warn!(
            action = "webhook-refused",
            "webhook with a missing or bad signature"
        );
        return (StatusCode::UNAUTHORIZED, "bad or missing signature\n");
    }
    tracing::info!(action = "webhook", "webhook accepted; fetching");
    let _ = state.triggers.send(Trigger::Webhook);
    (StatusCode::ACCEPTED, "fetching\n")
}

async fn reconcile(State(state): State<ApiState>) -> StatusCode {
    let _ = state.triggers.send(Trigger::Control);
    StatusCode::ACCEPTED
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

async fn status(State(state): State<ApiState>) -> Json<crate::agent::AgentStatus> {
    Json(state.status.read().await.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn github_signatures() {
        // The example of GitHub's webhook documentation.
        let secret = b"It's a Secret to Everybody";
        let body = b"Hello, World!";
        let good = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";
        assert!(signature_ok(secret, body, Some(good)));
        assert!(!signature_ok(secret, b"Hello, World?", Some(good)));
        assert!(!signature_ok(b"other", body, Some(good)));
        assert!(!signature_ok(secret, body, None));
        assert!(!signature_ok(secret, body, Some("sha1=abc")));
        assert!(!signature_ok(secret, body, Some("sha256=zz")));
    }
}
