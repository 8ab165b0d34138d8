//! Deploy notifications: each event goes to every configured webhook URL, in the
//! background, so that a slow or dead endpoint can never block or fail a deploy.
//!
//! Every URL has its own queue and its own delivery task: events for one URL keep their
//! order, and one endpoint that times out or is retried with backoff holds up only its
//! own queue. A full queue drops the event with a warning rather than making the caller
//! wait, since a lost notification is better than a stalled reconcile.
//!
//! Each URL has its format (`slack=https://…`): berth's JSON (signed with HMAC-SHA256
//! when a secret is configured), Slack (and Mattermost), Discord, Microsoft Teams
//! (Workflows) or ntfy.
//!
//! `event` is what is told, `payload` the body each format sends, `link` the commit's
//! page on its forge, `sign` the signature of JSON bodies, `notifier` the queues and
//! their delivery, `http` one URL and one attempt at it, `deployed_once` keeps a
//! converged service from being announced at every reconcile.

mod deployed_once;
mod event;
mod http;
mod link;
mod notifier;
mod payload;
mod sign;

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

pub(crate) use deployed_once::DeployedOnce;
pub(crate) use event::{Event, EventKind, Format};
pub(crate) use http::{redact_spec, UrlError};
pub(crate) use link::CommitLinks;
pub(crate) use notifier::Notifier;
pub(crate) use payload::payload;
pub(crate) use sign::Secret;

use crate::http_client::ClientError;
use crate::retry::RetryPolicy;
use http::Target;

/// Where events go, in what shape, and how a failed delivery is retried.
#[derive(Clone)]
pub(crate) struct NotifyConfig {
    /// The webhook URLs, `http://` or `https://`, each as `FORMAT=URL` or plain.
    pub urls: Vec<String>,
    /// The format of plain URLs.
    pub format: Format,
    /// How a failed delivery to one URL is retried ([`DEFAULT_RETRY`] unless a test
    /// hurries it).
    pub retry: RetryPolicy,
    /// A PEM file of CA certificates trusted for `https://` URLs beside the system's
    /// roots: a private CA of the endpoints.
    pub ca_file: Option<PathBuf>,
    /// The secret `json` bodies are signed with.
    pub secret: Option<Secret>,
    /// The repository's remote, for links to commits on a known forge.
    pub repository: Option<String>,
}

impl fmt::Debug for NotifyConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // URLs carry their token in the path, the remote may carry credentials.
        let urls: Vec<String> = self.urls.iter().map(|u| redact_spec(u)).collect();
        f.debug_struct("NotifyConfig")
            .field("urls", &urls)
            .field("format", &self.format)
            .field("retry", &self.retry)
            .field("ca_file", &self.ca_file)
            .field("secret", &self.secret)
            .field(
                "repository",
                &self.repository.as_deref().map(crate::urls::redact_url),
            )
            .finish()
    }
}

/// Why notifications cannot start.
#[derive(Debug, thiserror::Error)]
pub(crate) enum NotifyError {
    /// The HTTP client could not be built (the CA file, most likely).
    #[error(transparent)]
    Client(#[from] ClientError),
}

/// How a failed delivery to one URL is retried: 2 s doubling to a 1 min cap, ±10 %, 5
/// attempts, so that an endpoint that restarts within about half a minute still gets
/// the event.
pub(crate) const DEFAULT_RETRY: RetryPolicy = RetryPolicy {
    initial: Duration::from_secs(2),
    max: Duration::from_secs(60),
    max_attempts: 5,
    jitter: crate::retry::JITTER,
};

/// Checks that a `--notify-url` value (`FORMAT=URL`, or a plain URL sent `default`)
/// can be delivered to, so that configuration can be refused at start instead of every
/// event being given up later.
pub(crate) fn check_url(spec: &str, default: Format) -> Result<(), UrlError> {
    Target::parse_spec(spec, default).map(|_| ())
}

#[cfg(test)]
mod tests;
