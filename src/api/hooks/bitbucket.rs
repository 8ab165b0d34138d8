//! Bitbucket Cloud and Bitbucket Server (Data Center): `X-Event-Key` names the event,
//! and with a secret set `X-Hub-Signature: sha256=<hex>` is the HMAC-SHA256 of the body.
//!
//! - Cloud ("Event payloads", `repo:push`): `push.changes[]`, each with `new` (and
//!   `old`) of `type` `branch` or `tag` and its `name`; `new` is null when the branch
//!   was deleted.
//! - Server ("Event payload", `repo:refs_changed`): `changes[]`, each with
//!   `ref.displayId` (`main`), `ref.type` (`BRANCH` or `TAG`) and `refId`
//!   (`refs/heads/main`). Its test button sends `diagnostics:ping`.

use serde::Deserialize;

use super::{hmac_ok, Event, PayloadError};

/// The event header.
pub(super) const EVENT: &str = "x-event-key";
/// The signature header.
pub(super) const SIGNATURE: &str = "x-hub-signature";

/// Checks `sha256=<hex>` over the body, in constant time.
pub(super) fn signature_ok(secret: &[u8], body: &[u8], header: Option<&str>) -> bool {
    header
        .and_then(|h| h.strip_prefix("sha256="))
        .is_some_and(|hex_sig| hmac_ok(secret, body, hex_sig))
}

#[derive(Deserialize)]
struct CloudPush {
    push: CloudChanges,
}

#[derive(Deserialize)]
struct CloudChanges {
    changes: Vec<CloudChange>,
}

#[derive(Deserialize)]
struct CloudChange {
    new: Option<CloudRef>,
    old: Option<CloudRef>,
}

#[derive(Deserialize)]
struct CloudRef {
    #[serde(rename = "type")]
    kind: String,
    name: String,
}

#[derive(Deserialize)]
struct ServerPush {
    changes: Vec<ServerChange>,
}

#[derive(Deserialize)]
struct ServerChange {
    #[serde(rename = "ref")]
    reference: Option<ServerRef>,
    #[serde(rename = "refId")]
    ref_id: Option<String>,
}

#[derive(Deserialize)]
struct ServerRef {
    #[serde(rename = "displayId")]
    display_id: Option<String>,
    #[serde(rename = "type")]
    kind: Option<String>,
}

/// The event: `repo:push` (Cloud) and `repo:refs_changed` (Server) name the branches
/// pushed; others (`diagnostics:ping`, ...) are other events.
pub(super) fn event(name: &str, payload: &[u8]) -> Result<Event, PayloadError> {
    match name {
        "repo:push" => {
            let push: CloudPush = serde_json::from_slice(payload)?;
            let branches = push
                .push
                .changes
                .into_iter()
                // A deleted branch has no `new`: its `old` names it.
                .filter_map(|c| c.new.or(c.old))
                .filter(|r| r.kind == "branch")
                .map(|r| r.name)
                .collect();
            Ok(Event::Push(branches))
        }
        "repo:refs_changed" => {
            let push: ServerPush = serde_json::from_slice(payload)?;
            let branches = push
                .changes
                .into_iter()
                .filter_map(|c| {
                    let from_id = c
                        .ref_id
                        .as_deref()
                        .and_then(|id| id.strip_prefix("refs/heads/"))
                        .map(str::to_string);
                    match c.reference {
                        Some(r) if r.kind.as_deref().is_some_and(|k| k != "BRANCH") => None,
                        Some(ServerRef {
                            display_id: Some(name),
                            ..
                        }) => Some(name),
                        _ => from_id,
                    }
                })
                .collect();
            Ok(Event::Push(branches))
        }
        other => Ok(Event::Other(other.to_string())),
    }
}
