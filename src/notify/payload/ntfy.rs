//! An ntfy message, published as JSON to the server's root.
//!
//! ntfy's schema (docs.ntfy.sh/publish, "Publish as JSON"): POST to the root URL
//! with `topic` (required) and the optional `message`, `title`, `tags` (emoji short
//! codes or words), `priority` (1 to 5, 3 the default), `click` (the URL opened when
//! the notification is tapped). A message over 4096 bytes is turned into an attachment
//! by the server, so the message is cut to fit. Plain text: no markdown.

use serde_json::{json, Value};

use super::super::{Event, EventKind};
use super::text::{cut_bytes, cut_chars, headline, release, short_commit, subject};

/// The most bytes of `message` ntfy keeps as a message.
pub(crate) const MESSAGE_MAX_BYTES: usize = 4096;
/// A title short enough for any phone's notification.
pub(crate) const TITLE_MAX: usize = 250;

pub(super) fn ntfy(e: &Event, topic: &str) -> Value {
    let head = headline(&e.kind);
    let priority = match e.kind {
        EventKind::Deployed => 3,
        EventKind::Failed | EventKind::RolledBack | EventKind::InvalidCommit => 4,
    };
    let mut lines = Vec::new();
    if let Some(change) = release(e, str::to_string) {
        lines.push(change);
    }
    if let Some(commit) = &e.commit {
        let mut line = format!("commit {}", short_commit(commit));
        if let Some(summary) = e.commit_summary.as_deref().filter(|s| !s.is_empty()) {
            line.push_str(&format!(" {}", cut_chars(summary, 200)));
        }
        if let Some(author) = e.commit_author.as_deref().filter(|s| !s.is_empty()) {
            line.push_str(&format!(" ({})", cut_chars(author, 100)));
        }
        lines.push(line);
    }
    let text = e.message.trim();
    if !text.is_empty() {
        lines.push(text.to_string());
    }
    let mut body = json!({
        "topic": topic,
        "title": cut_chars(&format!("{}: {} on {}", head.label, subject(e), e.host), TITLE_MAX),
        "message": cut_bytes(&lines.join("\n"), MESSAGE_MAX_BYTES),
        "tags": [head.shortcode],
        "priority": priority,
    });
    if let Some(url) = &e.commit_url {
        body["click"] = json!(url);
    }
    body
}
