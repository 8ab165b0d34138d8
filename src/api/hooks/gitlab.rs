//! GitLab: `X-Gitlab-Event` names the event (`Push Hook`, `Tag Push Hook`, ...), and
//! `X-Gitlab-Token` carries the webhook's secret token as written in the webhook's
//! settings (GitLab signs nothing: the token itself is the proof). A push's payload
//! names the ref in `ref` (`refs/heads/<branch>`), per GitLab's "Webhook events" page.

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::{ref_branch, Event, PayloadError};

/// The event header.
pub(super) const EVENT: &str = "x-gitlab-event";
/// The token header.
pub(super) const TOKEN: &str = "x-gitlab-token";

/// Whether the token equals the secret. Both are hashed first so that the comparison,
/// in constant time, does not reveal the secret's length either.
pub(super) fn token_ok(secret: &[u8], header: Option<&str>) -> bool {
    let Some(token) = header else {
        return false;
    };
    let given = Sha256::digest(token.trim().as_bytes());
    let expected = Sha256::digest(secret);
    bool::from(given.ct_eq(&expected))
}

/// The event: `Push Hook` and `Tag Push Hook` carry `ref`; others are other events.
pub(super) fn event(name: &str, payload: &[u8]) -> Result<Event, PayloadError> {
    match name {
        "Push Hook" | "Tag Push Hook" => Ok(Event::Push(vec![ref_branch(payload)?])),
        other => Ok(Event::Other(other.to_string())),
    }
}
