//! The body sent for an event: berth's JSON, or a Slack incoming-webhook message.

use serde_json::{json, Value};

use super::{Event, EventKind, Format};

/// Slack rejects a section text longer than 3000 characters; the message is cut well
/// before that to leave room for the other lines.
const SLACK_MESSAGE_MAX: usize = 2000;

/// The longest message excerpt in the one-line summary.
const SUMMARY_MESSAGE_MAX: usize = 200;

/// How many characters of a commit id a person needs to recognise it.
const SHORT_COMMIT: usize = 12;

/// The payload as sent, for tests and for logging.
pub(crate) fn payload(event: &Event, format: Format) -> Value {
    match format {
        Format::Json => serde_json::to_value(event).unwrap_or(Value::Null),
        Format::Slack => slack(event),
    }
}

/// The emoji and label that open a Slack message of each kind.
fn headline(kind: &EventKind) -> (&'static str, &'static str) {
    match kind {
        EventKind::Deployed => (":white_check_mark:", "Deployed"),
        EventKind::Failed => (":x:", "Failed"),
        EventKind::RolledBack => (":leftwards_arrow_with_hook:", "Rolled back"),
        EventKind::InvalidCommit => (":warning:", "Invalid commit"),
    }
}

/// A Slack incoming-webhook body: `text` is the one-line fallback shown in
/// notifications, the section block the full message.
fn slack(event: &Event) -> Value {
    let (emoji, label) = headline(&event.kind);
    let short = event.commit.as_deref().map(short_commit);

    let subject = match &event.service {
        Some(service) => format!("{}/{}", event.project, service),
        None => event.project.clone(),
    };
    let mut summary = format!("{emoji} {label}: {}", escape(&subject));
    if let Some(short) = &short {
        summary.push_str(&format!(" at {}", escape(short)));
    }
    summary.push_str(&format!(" on {}", escape(&event.host)));
    if let Some(first) = event.message.lines().find(|l| !l.trim().is_empty()) {
        summary.push_str(&format!(
            ": {}",
            escape(&truncate(first.trim(), SUMMARY_MESSAGE_MAX))
        ));
    }

    let mut lines = vec![format!("{emoji} *{label}*")];
    lines.push(format!("*Project:* {}", code(&event.project)));
    if let Some(service) = &event.service {
        lines.push(format!("*Service:* {}", code(service)));
    }
    if let Some(short) = &short {
        lines.push(format!("*Commit:* {}", code(short)));
    }
    if let Some(image) = &event.image {
        lines.push(format!("*Image:* {}", code(image)));
    }
    lines.push(format!("*Host:* {}", code(&event.host)));
    if !event.time.is_empty() {
        lines.push(format!("*Time:* {}", escape(&event.time)));
    }
    let message = truncate(event.message.trim(), SLACK_MESSAGE_MAX);
    if !message.is_empty() {
        for line in message.lines() {
            lines.push(format!("> {}", escape(line)));
        }
    }

    json!({
        "text": summary,
        "blocks": [
            { "type": "section", "text": { "type": "mrkdwn", "text": lines.join("\n") } }
        ]
    })
}

/// The first characters of a commit id.
fn short_commit(commit: &str) -> String {
    commit.chars().take(SHORT_COMMIT).collect()
}

/// Escapes the three characters Slack gives a meaning in message text, so that a
/// message cannot turn into a link or a mention.
fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// Inline code, with backticks in the value swapped so that they cannot end the span.
fn code(text: &str) -> String {
    format!("`{}`", escape(&text.replace('`', "'")))
}

/// At most `max` characters, with an ellipsis when something was cut.
fn truncate(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        text.to_string()
    } else {
        let mut cut: String = text.chars().take(max).collect();
        cut.push('…');
        cut
    }
}
