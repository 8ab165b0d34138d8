//! What a notification tells, and the shapes it is sent in.

/// What happened.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum EventKind {
    /// A service runs the desired state of a commit.
    Deployed,
    /// Applying a service failed.
    Failed,
    /// A failed rollout was undone and the previous containers kept.
    RolledBack,
    /// A commit was refused (unsigned, unparsable or invalid desired state).
    InvalidCommit,
}

/// One notification. Never carries a secret: callers pass already-redacted text.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
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
    /// The image reference, when the event is about one.
    pub image: Option<String>,
    /// A human-readable explanation, already redacted.
    pub message: String,
    /// When it happened, RFC 3339.
    pub time: String,
}

/// The shape of the body sent to each URL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Format {
    /// The event itself as JSON, for relays and custom receivers.
    Json,
    /// A Slack incoming-webhook message (also understood by Slack-compatible chats).
    Slack,
}
