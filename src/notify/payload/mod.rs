//! The body sent for an event, one module per format: berth's JSON, Slack (and
//! Mattermost), Discord, Microsoft Teams (Workflows), ntfy. Every chat format shows
//! one release in one message: the subject, the images before and after, the commit
//! (linked when its forge is known), and the message, cut to the provider's limits.

pub(crate) mod discord;
pub(crate) mod ntfy;
pub(crate) mod slack;
pub(crate) mod teams;
mod text;

use serde_json::Value;

use super::{Event, Format};

/// The payload as sent. `topic` is the ntfy topic (from the URL's path), unused by
/// other formats.
pub(crate) fn payload(event: &Event, format: Format, topic: &str) -> Value {
    match format {
        Format::Json => serde_json::to_value(event).unwrap_or(Value::Null),
        Format::Slack => slack::slack(event),
        Format::Discord => discord::discord(event),
        Format::Teams => teams::teams(event),
        Format::Ntfy => ntfy::ntfy(event, topic),
    }
}
