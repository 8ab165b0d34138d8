//! A Slack incoming-webhook message, also posted as is to Mattermost.
//!
//! Slack's schema (docs.slack.dev, "Sending messages using incoming webhooks" and the
//! Block Kit reference): the body is a message payload whose `text` is required as
//! the notification fallback once `blocks` are given; `text` is cut by Slack past
//! 40,000 characters; a message holds at most 50 blocks; a `header` block's
//! `text` is a `plain_text` object of at most 150 characters; a `section` block's
//! `text` object (`mrkdwn`) holds at most 3000 characters.
//!
//! Mattermost's Slack-compatible webhooks show `text` and ignore `blocks`, so `text`
//! is the whole message, not an excerpt.

use serde_json::{json, Value};

use super::super::Event;
use super::text::{cut_chars, escape_all, escape_within, headline, release, short_commit, subject};

/// A header block's most characters.
pub(crate) const HEADER_MAX: usize = 150;
/// A section block's most characters.
pub(crate) const SECTION_MAX: usize = 3000;
/// The most characters of `text` Slack keeps.
pub(crate) const TEXT_MAX: usize = 40_000;
/// The most blocks in one message.
/// Documented; the tests hold the payload to it.
#[cfg(test)]
pub(crate) const BLOCKS_MAX: usize = 50;

pub(super) fn slack(e: &Event) -> Value {
    let head = headline(&e.kind);
    let emoji = format!(":{}:", head.shortcode);
    let subject = subject(e);

    let mut lines = vec![format!("*Project:* {}", code(&e.project))];
    if let Some(service) = &e.service {
        lines.push(format!("*Service:* {}", code(service)));
    }
    lines.push(format!("*Host:* {}", code(&e.host)));
    if let Some(change) = release(e, code) {
        lines.push(format!("*Image:* {change}"));
    }
    if let Some(commit) = &e.commit {
        lines.push(format!("*Commit:* {}", commit_line(e, commit)));
    }
    if !e.time.is_empty() {
        lines.push(format!("*Time:* {}", escape(&e.time)));
    }
    let mut details = cut_chars(&lines.join("\n"), SECTION_MAX / 2);
    let message = e.message.trim();
    if !message.is_empty() {
        // The message is quoted line by line; what is left of the section is its room.
        let room = SECTION_MAX - details.chars().count() - "\n> ".len();
        let quoted = escape_within(message, room, |c, out| match c {
            '\n' => out.push_str("\n> "),
            c => push_escaped(c, out),
        });
        details.push_str(&format!("\n> {quoted}"));
        details = cut_chars(&details, SECTION_MAX);
    }

    let summary = format!(
        "{emoji} *{}*: {} on {}",
        head.label,
        escape(&subject),
        escape(&e.host)
    );
    let header = cut_chars(
        &format!("{} {}: {subject}", head.emoji, head.label),
        HEADER_MAX,
    );
    json!({
        "text": cut_chars(&format!("{summary}\n{details}"), TEXT_MAX),
        "blocks": [
            { "type": "header", "text": { "type": "plain_text", "text": header, "emoji": true } },
            { "type": "section", "text": { "type": "mrkdwn", "text": details } }
        ]
    })
}

/// The short commit (a link to its page when known), its summary and author.
fn commit_line(e: &Event, commit: &str) -> String {
    let short = short_commit(commit);
    let mut line = match &e.commit_url {
        // The link is built by berth from a checked remote: no `|` or `>` in it.
        Some(url) => format!("<{url}|{}>", escape(&short)),
        None => code(&short),
    };
    if let Some(summary) = e.commit_summary.as_deref().filter(|s| !s.is_empty()) {
        line.push_str(&format!(" {}", escape(&cut_chars(summary, 200))));
    }
    if let Some(author) = e.commit_author.as_deref().filter(|s| !s.is_empty()) {
        line.push_str(&format!(" ({})", escape(&cut_chars(author, 100))));
    }
    line
}

/// Escapes the three characters Slack gives a meaning in message text, so that a
/// message cannot turn into a link or a mention.
pub(super) fn escape(text: &str) -> String {
    escape_all(text, push_escaped)
}

fn push_escaped(c: char, out: &mut String) {
    match c {
        '&' => out.push_str("&amp;"),
        '<' => out.push_str("&lt;"),
        '>' => out.push_str("&gt;"),
        c => out.push(c),
    }
}

/// Inline code, with backticks in the value swapped so that they cannot end the span.
fn code(text: &str) -> String {
    format!("`{}`", escape(&cut_chars(&text.replace('`', "'"), 300)))
}
