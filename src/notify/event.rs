//! What a notification tells, and the shapes it is sent in.

use std::fmt;
use std::str::FromStr;

/// What happened.
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum EventKind {
    /// A service runs the desired state of a commit.
    #[default]
    Deployed,
    /// Applying a service failed.
    Failed,
    /// A failed rollout was undone and the previous containers kept.
    RolledBack,
    /// A commit was refused (unsigned, unparsable or invalid desired state).
    InvalidCommit,
}

/// One notification. Never carries a secret: callers pass already-redacted text.
///
/// The first eight fields are the event as berth has always sent it; the others were
/// added after and are left out of the JSON when unknown, so that a receiver written
/// for the first ones reads the new events unchanged.
#[derive(Debug, Clone, PartialEq, Default, serde::Serialize)]
pub(crate) struct Event {
    /// What happened.
    pub kind: EventKind,
    /// The project the event belongs to.
    pub project: String,
    /// The host the agent runs on.
    pub host: String,
    /// The service concerned, when the event is about one.
    pub service: Option<String>,
    /// The full commit id, when one is known.
    pub commit: Option<String>,
    /// The image reference the service is brought to ("after"), when the event is
    /// about one.
    pub image: Option<String>,
    /// A human-readable explanation, already redacted.
    pub message: String,
    /// When it happened, RFC 3339.
    pub time: String,
    /// The images that ran before ("before"), sorted; empty when nothing ran.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub images_before: Vec<String>,
    /// The first line of the commit's message.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub commit_summary: Option<String>,
    /// The commit's author.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub commit_author: Option<String>,
    /// The commit's page on its forge, when the repository is on a known one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub commit_url: Option<String>,
}

/// The shape of the body sent to one URL.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Format {
    /// The event itself as JSON, for relays and custom receivers; signed when a secret
    /// is configured.
    Json,
    /// A Slack incoming-webhook message, also understood by Mattermost.
    Slack,
    /// A Discord webhook message with one embed.
    Discord,
    /// A Microsoft Teams Workflows message carrying one Adaptive Card.
    Teams,
    /// An ntfy JSON publish to the server's root, the topic in the body.
    Ntfy,
}

impl Format {
    /// Every format, in the order help texts list them.
    pub(crate) const ALL: [Format; 5] = [
        Format::Json,
        Format::Slack,
        Format::Discord,
        Format::Teams,
        Format::Ntfy,
    ];

    /// The name written before `=` in `--notify-url`.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Format::Json => "json",
            Format::Slack => "slack",
            Format::Discord => "discord",
            Format::Teams => "teams",
            Format::Ntfy => "ntfy",
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Format {
    type Err = ();

    /// A format's name, any case; `mattermost` is Slack's payload.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let lower = s.to_ascii_lowercase();
        if lower == "mattermost" {
            return Ok(Format::Slack);
        }
        Format::ALL
            .into_iter()
            .find(|f| f.name() == lower)
            .ok_or(())
    }
}
