//! A Discord webhook message: a one-line `content` and one embed.
//!
//! Discord's schema (discord.com/developers/docs, "Execute Webhook" and "Embed
//! Limits"): one of `content`, `embeds`, `components`, `file` or `poll` is required;
//! `content` holds at most 2000 characters; an embed's `title` at most 256, its
//! `description` at most 4096, at most 25 `fields` whose `name` holds at most 256 and
//! `value` at most 1024 characters (both required), a `footer.text` at most 2048; the
//! title, description, field names and values, footer and author of all embeds
//! together at most 6000 characters. `allowed_mentions` with an empty `parse` keeps a
//! message from pinging anyone, whatever it quotes.

use serde_json::{json, Value};

use super::super::{Event, EventKind};
use super::text::{cut_chars, escape_all, escape_within, headline, release, short_commit, subject};

pub(crate) const CONTENT_MAX: usize = 2000;
pub(crate) const TITLE_MAX: usize = 256;
pub(crate) const DESCRIPTION_MAX: usize = 4096;
pub(crate) const FIELD_NAME_MAX: usize = 256;
pub(crate) const FIELD_VALUE_MAX: usize = 1024;
pub(crate) const FIELDS_MAX: usize = 25;
/// Documented; the tests hold the payload to it.
#[cfg(test)]
pub(crate) const FOOTER_MAX: usize = 2048;
pub(crate) const EMBED_TOTAL_MAX: usize = 6000;

const FOOTER: &str = "berth";

pub(super) fn discord(e: &Event) -> Value {
    let head = headline(&e.kind);
    let subject = subject(e);
    let color = match e.kind {
        EventKind::Deployed => 0x2E_B8_86,
        EventKind::Failed => 0xED_42_45,
        EventKind::RolledBack | EventKind::InvalidCommit => 0xFE_A7_3C,
    };

    let mut fields = vec![field("Project", &code(&e.project), true)];
    if let Some(service) = &e.service {
        fields.push(field("Service", &code(service), true));
    }
    fields.push(field("Host", &code(&e.host), true));
    if let Some(change) = release(e, code) {
        fields.push(field("Image", &change, false));
    }
    if let Some(commit) = &e.commit {
        fields.push(field("Commit", &commit_value(e, commit), false));
    }
    fields.truncate(FIELDS_MAX);

    let title = cut_chars(
        &format!("{} {}: {subject}", head.emoji, head.label),
        TITLE_MAX,
    );
    let counted: usize = title.chars().count()
        + FOOTER.len()
        + fields
            .iter()
            .map(|f| text_len(&f["name"]) + text_len(&f["value"]))
            .sum::<usize>();
    let room = DESCRIPTION_MAX.min(EMBED_TOTAL_MAX.saturating_sub(counted));
    let description = escape_within(e.message.trim(), room, push_escaped);

    let mut embed = json!({
        "title": title,
        "color": color,
        "fields": fields,
        "footer": { "text": FOOTER },
    });
    if !description.is_empty() {
        embed["description"] = json!(description);
    }
    if let Some(url) = &e.commit_url {
        embed["url"] = json!(url);
    }
    if !e.time.is_empty() {
        embed["timestamp"] = json!(e.time);
    }
    let content = cut_chars(
        &format!(
            "{} **{}**: {} on {}",
            head.emoji,
            head.label,
            escape(&subject),
            escape(&e.host)
        ),
        CONTENT_MAX,
    );
    json!({
        "content": content,
        "embeds": [embed],
        "allowed_mentions": { "parse": [] }
    })
}

fn field(name: &str, value: &str, inline: bool) -> Value {
    json!({
        "name": cut_chars(name, FIELD_NAME_MAX),
        "value": escape_within(value, FIELD_VALUE_MAX, |c, out| out.push(c)),
        "inline": inline
    })
}

fn text_len(v: &Value) -> usize {
    v.as_str().map_or(0, |s| s.chars().count())
}

/// The short commit (a link to its page when known), its summary and author.
fn commit_value(e: &Event, commit: &str) -> String {
    let short = short_commit(commit);
    let mut value = match &e.commit_url {
        // The link is built by berth from a checked remote.
        Some(url) => format!("[`{short}`]({url})"),
        None => code(&short),
    };
    if let Some(summary) = e.commit_summary.as_deref().filter(|s| !s.is_empty()) {
        value.push_str(&format!(" {}", escape(&cut_chars(summary, 300))));
    }
    if let Some(author) = e.commit_author.as_deref().filter(|s| !s.is_empty()) {
        value.push_str(&format!(" — {}", escape(&cut_chars(author, 100))));
    }
    value
}

/// Backslash before every character Discord's markdown gives a meaning (emphasis,
/// code, spoilers, quotes, headings, links; any punctuation may be escaped), so that quoted text shows as
/// written.
pub(super) fn escape(text: &str) -> String {
    escape_all(text, push_escaped)
}

fn push_escaped(c: char, out: &mut String) {
    if matches!(
        c,
        '\\' | '*' | '_' | '~' | '`' | '|' | '>' | '<' | '[' | ']' | '#'
    ) {
        out.push('\\');
    }
    out.push(c);
}

/// Inline code, with backticks swapped so that they cannot end the span.
fn code(text: &str) -> String {
    format!("`{}`", cut_chars(&text.replace('`', "'"), 300))
}
