//! Gitea and Forgejo: `X-Gitea-Event` (Forgejo: `X-Forgejo-Event`, and `X-Gitea-Event`
//! as well) names the event, and `X-Gitea-Signature` (Forgejo: `X-Forgejo-Signature`)
//! is the hex HMAC-SHA256 of the body under the webhook's secret, without a prefix. A
//! `push` event's payload names the ref in `ref` (`refs/heads/<branch>`), per Gitea's
//! "Webhooks" page. Both also send `X-GitHub-Event`, so they are told apart first.

use super::{hmac_ok, ref_branch, Event, PayloadError};

/// The event headers, Forgejo's first.
pub(super) const EVENTS: [&str; 2] = ["x-forgejo-event", "x-gitea-event"];
/// The signature headers, Forgejo's first.
pub(super) const SIGNATURES: [&str; 2] = ["x-forgejo-signature", "x-gitea-signature"];

/// Checks the hex HMAC-SHA256 of the body, in constant time.
pub(super) fn signature_ok(secret: &[u8], body: &[u8], header: Option<&str>) -> bool {
    header.is_some_and(|hex_sig| hmac_ok(secret, body, hex_sig))
}

/// The event: `push` carries `ref`; others are other events.
pub(super) fn event(name: &str, payload: &[u8]) -> Result<Event, PayloadError> {
    match name {
        "push" => Ok(Event::Push(vec![ref_branch(payload)?])),
        other => Ok(Event::Other(other.to_string())),
    }
}
