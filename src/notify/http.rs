//! One notification URL, and one delivery attempt to it over berth's HTTP client.

use std::fmt;
use std::time::Duration;

use reqwest::Url;

use crate::http_client::{HttpClient, RequestError};

/// The most bytes of a failed answer's body read: enough for any explanation a webhook
/// endpoint gives, and a broken one cannot make the reader grow without bound.
const MAX_RESPONSE: usize = 64 * 1024;

/// How long a failed response may take to hand over its body, which is only read to
/// make the warning useful (Slack, for one, explains a 400 there).
const BODY_GRACE: Duration = Duration::from_millis(300);

/// The longest body excerpt kept for a warning.
const BODY_EXCERPT: usize = 200;

/// Why a notification URL cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum UrlError {
    /// The URL has a scheme other than `http://` or `https://`.
    #[error("notification URLs must start with http:// or https://")]
    Scheme,
    /// The URL carries `user:password@`, which would be sent nowhere and logged nowhere.
    #[error("credentials in notification URLs are not supported; put the secret in the path or use a relay")]
    Credentials,
    /// The host or port part is malformed.
    #[error("invalid host or port in notification URL: {0}")]
    Authority(String),
}

/// A checked `http://` or `https://` URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Target {
    /// The URL as sent.
    url: Url,
}

impl Target {
    /// Checks a notification URL.
    pub(super) fn parse(url: &str) -> Result<Target, UrlError> {
        let text = url.trim();
        let scheme_ok = text.split_once("://").is_some_and(|(scheme, _)| {
            scheme.eq_ignore_ascii_case("http") || scheme.eq_ignore_ascii_case("https")
        });
        if !scheme_ok {
            return Err(UrlError::Scheme);
        }
        // The authority as written, for an error that must not quote the path.
        let authority = || {
            let rest = text.split_once("://").map_or("", |(_, rest)| rest);
            let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
            rest[..end].to_string()
        };
        if authority().contains('@') {
            return Err(UrlError::Credentials);
        }
        let url = Url::parse(text).map_err(|_| UrlError::Authority(authority()))?;
        if url.host_str().is_none_or(str::is_empty) || url.port() == Some(0) {
            return Err(UrlError::Authority(authority()));
        }
        Ok(Target { url })
    }

    /// The URL without its path: safe to log, since webhook URLs often carry their
    /// secret in the path.
    pub(super) fn redacted(&self) -> String {
        let host = self.url.host_str().unwrap_or_default();
        match self.url.port() {
            Some(port) => format!("{}://{host}:{port}/…", self.url.scheme()),
            None => format!("{}://{host}/…", self.url.scheme()),
        }
    }
}

/// Why one delivery attempt failed.
#[derive(Debug)]
pub(crate) enum DeliveryError {
    /// No answer: the connection, the exchange or the deadline failed.
    Request(RequestError),
    /// The server answered with a status other than 2xx.
    Status { status: u16, body: String },
}

impl fmt::Display for DeliveryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DeliveryError::Request(e) => e.fmt(f),
            DeliveryError::Status { status, body } if body.is_empty() => {
                write!(f, "HTTP {status}")
            }
            DeliveryError::Status { status, body } => write!(f, "HTTP {status}: {body}"),
        }
    }
}

/// Sends one POST with a JSON body and succeeds on a 2xx answer, within the client's
/// deadline.
pub(crate) async fn post_json(
    client: &HttpClient,
    target: &Target,
    body: &[u8],
) -> Result<(), DeliveryError> {
    let reply = client
        .post_json(target.url.as_str(), body.to_vec())
        .await
        .map_err(DeliveryError::Request)?;
    let status = reply.status();
    if (200..300).contains(&status) {
        return Ok(());
    }
    let text = tokio::time::timeout(BODY_GRACE, reply.text(MAX_RESPONSE))
        .await
        .ok()
        .and_then(Result::ok)
        .unwrap_or_default();
    Err(DeliveryError::Status {
        status,
        body: excerpt(text.as_bytes()),
    })
}

/// A short, single-line, printable excerpt of what a server sent, for a log line.
fn excerpt(raw: &[u8]) -> String {
    let text = String::from_utf8_lossy(raw);
    let flat: String = text
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .chars()
        .filter(|c| !c.is_control())
        .collect();
    if flat.chars().count() > BODY_EXCERPT {
        let cut: String = flat.chars().take(BODY_EXCERPT).collect();
        format!("{cut}…")
    } else {
        flat
    }
}

#[cfg(test)]
mod tests;
