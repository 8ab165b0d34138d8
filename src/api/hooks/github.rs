//! GitHub: `X-GitHub-Event` names the event, `X-Hub-Signature-256: sha256=<hex>` is the
//! HMAC-SHA256 of the body under the webhook's secret, and a `push` event's payload
//! names the ref in `ref` (`refs/heads/<branch>`), per GitHub's "Webhook events and
//! payloads" and "Validating webhook deliveries".

use super::{hmac_ok, ref_branch, Event, PayloadError};

/// The event header.
pub(super) const EVENT: &str = "x-github-event";
/// The signature header (also the one a request without an event header is checked by,
/// and the one `/control/reconcile` over TCP needs).
pub(crate) const SIGNATURE: &str = "x-hub-signature-256";

/// Checks `sha256=<hex>` over the body, in constant time.
pub(crate) fn signature_ok(secret: &[u8], body: &[u8], header: Option<&str>) -> bool {
    header
        .and_then(|h| h.strip_prefix("sha256="))
        .is_some_and(|hex_sig| hmac_ok(secret, body, hex_sig))
}

/// The event: `push` carries `ref`; everything else (`ping`, ...) is another event.
pub(super) fn event(name: &str, payload: &[u8]) -> Result<Event, PayloadError> {
    match name {
        "push" => Ok(Event::Push(vec![ref_branch(payload)?])),
        other => Ok(Event::Other(other.to_string())),
    }
}
