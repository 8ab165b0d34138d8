//! What every chat format says about an event, and cutting text to a provider's
//! limits without splitting a character.

use super::super::{Event, EventKind};

/// How many characters of a commit id a person needs to recognise it.
const SHORT_COMMIT: usize = 12;

/// The mark put where text was cut.
pub(super) const ELLIPSIS: char = '…';

/// How each kind opens a message.
pub(super) struct Headline {
    /// The emoji as a `:shortcode:` (Slack, Mattermost) and as ntfy's tag.
    pub shortcode: &'static str,
    /// The same emoji as a character (Discord, Teams).
    pub emoji: &'static str,
    /// The words.
    pub label: &'static str,
}

pub(super) fn headline(kind: &EventKind) -> Headline {
    let (shortcode, emoji, label) = match kind {
        EventKind::Deployed => ("white_check_mark", "✅", "Deployed"),
        EventKind::Failed => ("x", "❌", "Failed"),
        EventKind::RolledBack => ("leftwards_arrow_with_hook", "↩️", "Rolled back"),
        EventKind::InvalidCommit => ("warning", "⚠️", "Invalid commit"),
    };
    Headline {
        shortcode,
        emoji,
        label,
    }
}

/// `project/service`, or the project alone.
pub(super) fn subject(e: &Event) -> String {
    match &e.service {
        Some(service) => format!("{}/{}", e.project, service),
        None => e.project.clone(),
    }
}

/// The first characters of a commit id.
pub(super) fn short_commit(commit: &str) -> String {
    commit.chars().take(SHORT_COMMIT).collect()
}

/// The release in one line: the images before and after, e.g. `nginx:1.26 → nginx:1.27`,
/// `nginx:1.27 (unchanged)` or `→ nginx:1.27` for a first deploy; none when the event
/// names no image. `show` formats each image (code span, escaping).
pub(super) fn release(e: &Event, show: impl Fn(&str) -> String) -> Option<String> {
    let after = e.image.as_deref()?;
    let before: Vec<&str> = e.images_before.iter().map(String::as_str).collect();
    Some(if before.is_empty() {
        format!("(none) → {}", show(after))
    } else if before == [after] {
        format!("{} (unchanged)", show(after))
    } else {
        let before: Vec<String> = before.iter().map(|i| show(i)).collect();
        format!("{} → {}", before.join(", "), show(after))
    })
}

/// At most `max` characters: when cut, the last one kept is an ellipsis.
pub(super) fn cut_chars(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    let mut cut: String = text.chars().take(max.saturating_sub(1)).collect();
    cut.push(ELLIPSIS);
    cut
}

/// At most `max` bytes of UTF-8, cut at a character boundary: when cut, it ends with
/// an ellipsis within the bound.
pub(super) fn cut_bytes(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_string();
    }
    let room = max.saturating_sub(ELLIPSIS.len_utf8());
    let mut end = room.min(text.len());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let mut cut = text[..end].to_string();
    if max >= ELLIPSIS.len_utf8() {
        cut.push(ELLIPSIS);
    }
    cut
}

/// `text` escaped character by character with `escape`.
pub(super) fn escape_all(text: &str, escape: impl Fn(char, &mut String)) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        escape(c, &mut out);
    }
    out
}

/// `raw` escaped character by character with `escape`, stopping before the result
/// would pass `max` characters (an escape is never split); ends with an ellipsis when
/// something was left out.
pub(super) fn escape_within(raw: &str, max: usize, escape: impl Fn(char, &mut String)) -> String {
    let mut out = String::new();
    let mut count = 0;
    let mut piece = String::new();
    let mut chars = raw.chars().peekable();
    while let Some(c) = chars.next() {
        piece.clear();
        escape(c, &mut piece);
        let n = piece.chars().count();
        // Room for an ellipsis is kept unless this is the last character.
        let reserve = usize::from(chars.peek().is_some());
        if count + n + reserve > max {
            if count < max {
                out.push(ELLIPSIS);
            }
            return out;
        }
        out.push_str(&piece);
        count += n;
    }
    out
}
