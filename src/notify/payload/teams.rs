//! A Microsoft Teams message for a Workflows webhook ("When a Teams webhook request is
//! received" → "Post card in a chat or channel"): one Adaptive Card 1.4.
//!
//! The schema (learn.microsoft.com, "Create and send messages" for Workflows, and
//! adaptivecards.io's schema explorer): the body is a message
//! `{"type":"message","attachments":[{"contentType":"application/vnd.microsoft.card.adaptive","content":<card>}]}`
//! (Workflows take Adaptive Cards only, not the old MessageCard); the card requires
//! `type: "AdaptiveCard"` and `version`; a `TextBlock` requires `text`; a `FactSet`
//! requires `facts`, each with `title` and `value`; a `RichTextBlock` requires
//! `inlines`, each `TextRun` its `text`; an `Action.OpenUrl` requires `url`. A Teams
//! message holds about 28 KB in all.
//!
//! `TextBlock` and facts are read as markdown, and Teams' clients disagree on
//! backslash escapes, so text berth does not write itself (the message, the commit's
//! summary and author) goes in `TextRun`s, which are never read as markdown.

use serde_json::{json, Value};

use super::super::{Event, EventKind};
use super::text::{cut_bytes, cut_chars, headline, release, short_commit, subject};

/// The most bytes of one Teams message, with room under the documented ~28 KB.
pub(crate) const MESSAGE_MAX_BYTES: usize = 27 * 1024;
/// The most bytes of the event's message in the card.
const TEXT_MAX_BYTES: usize = 16 * 1024;

pub(super) fn teams(e: &Event) -> Value {
    let mut budget = TEXT_MAX_BYTES;
    loop {
        let message = message(e, budget);
        let size = serde_json::to_vec(&message).map_or(usize::MAX, |b| b.len());
        // JSON escapes can grow text (a control character takes six bytes): the
        // message is cut further until the whole body fits.
        if size <= MESSAGE_MAX_BYTES || budget == 0 {
            return message;
        }
        budget /= 2;
    }
}

fn message(e: &Event, text_max: usize) -> Value {
    let head = headline(&e.kind);
    let color = match e.kind {
        EventKind::Deployed => "Good",
        EventKind::Failed => "Attention",
        EventKind::RolledBack | EventKind::InvalidCommit => "Warning",
    };
    let mut facts = vec![fact("Project", &e.project)];
    if let Some(service) = &e.service {
        facts.push(fact("Service", service));
    }
    facts.push(fact("Host", &e.host));
    if let Some(change) = release(e, |i| cut_chars(i, 300)) {
        facts.push(fact("Image", &change));
    }
    if let Some(commit) = &e.commit {
        facts.push(fact("Commit", &short_commit(commit)));
    }
    if !e.time.is_empty() {
        facts.push(fact("Time", &e.time));
    }

    let mut body = vec![
        json!({
            "type": "TextBlock",
            "text": cut_chars(&format!("{} {}: {}", head.emoji, head.label, subject(e)), 400),
            "weight": "Bolder",
            "size": "Medium",
            "color": color,
            "wrap": true
        }),
        json!({ "type": "FactSet", "facts": facts }),
    ];
    let mut commit_runs = Vec::new();
    if let Some(summary) = e.commit_summary.as_deref().filter(|s| !s.is_empty()) {
        commit_runs.push(
            json!({ "type": "TextRun", "text": cut_chars(summary, 300), "weight": "Bolder" }),
        );
    }
    if let Some(author) = e.commit_author.as_deref().filter(|s| !s.is_empty()) {
        commit_runs.push(json!({ "type": "TextRun", "text": format!(" — {}", cut_chars(author, 100)), "isSubtle": true }));
    }
    if !commit_runs.is_empty() {
        body.push(json!({ "type": "RichTextBlock", "inlines": commit_runs }));
    }
    let text = e.message.trim();
    if !text.is_empty() && text_max > 0 {
        body.push(json!({
            "type": "RichTextBlock",
            "inlines": [ { "type": "TextRun", "text": cut_bytes(text, text_max), "fontType": "Monospace" } ]
        }));
    }
    let mut card = json!({
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "type": "AdaptiveCard",
        "version": "1.4",
        "body": body,
        "msteams": { "width": "Full" }
    });
    if let Some(url) = &e.commit_url {
        card["actions"] = json!([{ "type": "Action.OpenUrl", "title": "View commit", "url": url }]);
    }
    json!({
        "type": "message",
        "attachments": [{
            "contentType": "application/vnd.microsoft.card.adaptive",
            "contentUrl": null,
            "content": card
        }]
    })
}

/// A fact: its value cannot become a link (brackets swapped for look-alikes that
/// Teams' markdown does not read); names berth checked (project, service, host,
/// image references) are all that goes here.
fn fact(title: &str, value: &str) -> Value {
    let value: String = cut_chars(value, 400)
        .chars()
        .map(|c| match c {
            '[' => '［',
            ']' => '］',
            c => c,
        })
        .collect();
    json!({ "title": title, "value": value })
}
