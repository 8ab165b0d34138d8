//! The git webhook on `POST /hooks/git`, from every common git host: the host is told
//! by its event header, the request is checked by that host's scheme against the
//! webhook secret (`--webhook-secret-file`), and a push names the branches it moved.
//!
//! | host | event header | proof |
//! |---|---|---|
//! | Gitea, Forgejo | `X-Gitea-Event`, `X-Forgejo-Event` | `X-Gitea-Signature` / `X-Forgejo-Signature`: hex HMAC-SHA256 |
//! | GitLab | `X-Gitlab-Event` | `X-Gitlab-Token`: the secret itself |
//! | Bitbucket Cloud, Server | `X-Event-Key` | `X-Hub-Signature: sha256=<hex>` |
//! | GitHub | `X-GitHub-Event` | `X-Hub-Signature-256: sha256=<hex>` |
//! | none of these | — | `X-Hub-Signature-256`, as GitHub |
//!
//! Gitea and Forgejo send `X-GitHub-Event` too, so they are recognized first. The
//! sender chooses the scheme by its headers, and every scheme needs the secret: none
//! is weaker than another for an attacker who does not hold it.

mod bitbucket;
mod gitea;
mod github;
mod gitlab;

use axum::http::HeaderMap;
use hmac::{Hmac, Mac};
use serde::Deserialize;
use sha2::Sha256;

pub(crate) use github::{signature_ok, SIGNATURE as GITHUB_SIGNATURE};

/// The host a webhook came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum GitHost {
    /// GitHub, or a sender without a known event header (checked as GitHub).
    GitHub,
    /// GitLab.
    GitLab,
    /// Gitea or Forgejo.
    Gitea,
    /// Bitbucket Cloud or Server.
    Bitbucket,
}

impl GitHost {
    /// The label in logs.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            GitHost::GitHub => "github",
            GitHost::GitLab => "gitlab",
            GitHost::Gitea => "gitea",
            GitHost::Bitbucket => "bitbucket",
        }
    }
}

/// What a webhook says happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Event {
    /// A push that moved these branches (tags are left out).
    Push(Vec<String>),
    /// Another event (`ping`, `diagnostics:ping`, an issue, ...), by its name.
    Other(String),
}

/// A push whose payload could not be read.
#[derive(Debug, thiserror::Error)]
#[error("the payload is not a push event's JSON: {0}")]
pub(crate) struct PayloadError(#[from] serde_json::Error);

/// One webhook request, told apart by its headers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Hook {
    /// The sender.
    pub host: GitHost,
    /// The event's name from the host's event header; `None` without one.
    pub event: Option<String>,
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// Tells the sender by its event header.
pub(crate) fn detect(headers: &HeaderMap) -> Hook {
    let event = |name: &str| header(headers, name).map(|v| v.trim().to_string());
    if let Some(e) = gitea::EVENTS.iter().find_map(|h| event(h)) {
        return Hook {
            host: GitHost::Gitea,
            event: Some(e),
        };
    }
    for (name, host) in [
        (gitlab::EVENT, GitHost::GitLab),
        (bitbucket::EVENT, GitHost::Bitbucket),
        (github::EVENT, GitHost::GitHub),
    ] {
        if let Some(e) = event(name) {
            return Hook {
                host,
                event: Some(e),
            };
        }
    }
    Hook {
        host: GitHost::GitHub,
        event: None,
    }
}

impl Hook {
    /// Whether the request carries the proof of `secret` its host's scheme asks for.
    pub(crate) fn verify(&self, secret: &[u8], headers: &HeaderMap, body: &[u8]) -> bool {
        match self.host {
            GitHost::GitHub => {
                github::signature_ok(secret, body, header(headers, github::SIGNATURE))
            }
            GitHost::GitLab => gitlab::token_ok(secret, header(headers, gitlab::TOKEN)),
            GitHost::Gitea => {
                // Forgejo sends both; the first present is checked.
                let sig = gitea::SIGNATURES.iter().find_map(|h| header(headers, h));
                gitea::signature_ok(secret, body, sig)
            }
            GitHost::Bitbucket => {
                bitbucket::signature_ok(secret, body, header(headers, bitbucket::SIGNATURE))
            }
        }
    }

    /// The event the (verified) body describes. A request without an event header is
    /// an event of no name, as before hosts were told apart: it fetches.
    pub(crate) fn event(&self, headers: &HeaderMap, body: &[u8]) -> Result<Event, PayloadError> {
        let Some(name) = self.event.as_deref() else {
            return Ok(Event::Other(String::new()));
        };
        let payload = json_payload(headers, body);
        let payload = payload.as_deref().unwrap_or(body);
        match self.host {
            GitHost::GitHub => github::event(name, payload),
            GitHost::GitLab => gitlab::event(name, payload),
            GitHost::Gitea => gitea::event(name, payload),
            GitHost::Bitbucket => bitbucket::event(name, payload),
        }
    }
}

/// GitHub and Gitea may send `application/x-www-form-urlencoded` with the JSON in the
/// `payload` field; `None` for a JSON body.
fn json_payload(headers: &HeaderMap, body: &[u8]) -> Option<Vec<u8>> {
    let form = header(headers, "content-type")
        .is_some_and(|c| c.starts_with("application/x-www-form-urlencoded"));
    if !form {
        return None;
    }
    form_urlencoded::parse(body)
        .find(|(k, _)| k == "payload")
        .map(|(_, v)| v.into_owned().into_bytes())
}

/// Whether `hex_sig` is the HMAC-SHA256 of `body` under `secret`, compared in constant
/// time (by `hmac`'s `verify_slice`).
fn hmac_ok(secret: &[u8], body: &[u8], hex_sig: &str) -> bool {
    let Ok(sig) = hex::decode(hex_sig.trim()) else {
        return false;
    };
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes any key length");
    mac.update(body);
    mac.verify_slice(&sig).is_ok()
}

#[derive(Deserialize)]
struct RefPayload {
    #[serde(rename = "ref")]
    reference: String,
}

/// The branch of a payload's `ref` (`refs/heads/main` → `main`); a tag or another ref
/// is kept whole, so it matches no branch.
fn ref_branch(payload: &[u8]) -> Result<String, PayloadError> {
    let p: RefPayload = serde_json::from_slice(payload)?;
    Ok(match p.reference.strip_prefix("refs/heads/") {
        Some(branch) => branch.to_string(),
        None => p.reference,
    })
}

/// The watched branch, however it was written (`main` or `refs/heads/main`).
pub(crate) fn branch_name(branch: &str) -> &str {
    branch.strip_prefix("refs/heads/").unwrap_or(branch)
}

#[cfg(test)]
mod tests;
