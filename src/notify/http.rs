//! One notification URL with its format (`slack=https://…`), and one delivery attempt
//! to it over berth's HTTP client.

use std::fmt;
use std::time::Duration;

use reqwest::Url;

use super::Format;
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
    /// The word before `=` names no format.
    #[error("unknown notification format {0} before `=`; write one of json, slack (or mattermost), discord, teams, ntfy, e.g. `slack=https://hooks.slack.com/services/…`; a URL without a prefix gets --notify-format")]
    UnknownFormat(String),
    /// An ntfy URL without a usable topic.
    #[error("an ntfy URL ends with its topic, e.g. `ntfy=https://ntfy.sh/<topic>`: 1 to 64 letters, digits, `-` or `_`")]
    NtfyTopic,
}

/// The most characters of a format prefix an error quotes: anything longer is not a
/// mistyped format name, and could be a secret.
const PREFIX_QUOTED_MAX: usize = 16;

/// Splits `FORMAT=URL` into its format and URL; a plain URL (starting with its
/// scheme) takes `default`.
pub(crate) fn split_format(spec: &str, default: Format) -> Result<(Format, &str), UrlError> {
    let text = spec.trim();
    let lower = text.to_ascii_lowercase();
    if lower.starts_with("http://") || lower.starts_with("https://") {
        return Ok((default, text));
    }
    let Some((prefix, url)) = text.split_once('=') else {
        return Err(UrlError::Scheme);
    };
    match prefix.trim().parse::<Format>() {
        Ok(format) => Ok((format, url.trim())),
        Err(()) => {
            let plain = plain_word(prefix.trim());
            Err(UrlError::UnknownFormat(if plain {
                format!("`{prefix}`")
            } else {
                "(not shown)".to_string()
            }))
        }
    }
}

/// A `--notify-url` value as it may be shown: its format prefix and the URL's scheme
/// and host, never its user, path or query (webhook URLs carry their token there).
pub(crate) fn redact_spec(spec: &str) -> String {
    let text = spec.trim();
    let lower = text.to_ascii_lowercase();
    let plain_url = lower.starts_with("http://") || lower.starts_with("https://");
    let (prefix, url) = match text.split_once('=') {
        Some((p, u)) if !plain_url => (Some(p), u.trim()),
        _ => (None, text),
    };
    let prefix = match prefix {
        None => String::new(),
        Some(p) if plain_word(p) => format!("{p}="),
        Some(_) => "…=".to_string(),
    };
    let Some((scheme, _)) = url.split_once("://") else {
        return format!("{prefix}(not a URL)");
    };
    let scheme = if plain_word(scheme) { scheme } else { "…" };
    // The host as the URL parser reads it, so that a password with a raw `/` in it
    // (`user:pa/ss@host`) is never taken for the host.
    match Url::parse(url) {
        Ok(u) if u.host_str().is_some_and(|h| !h.is_empty()) => {
            let host = u.host_str().unwrap_or_default();
            match u.port() {
                Some(port) => format!("{prefix}{scheme}://{host}:{port}/…"),
                None => format!("{prefix}{scheme}://{host}/…"),
            }
        }
        _ => format!("{prefix}{scheme}://(invalid host)/…"),
    }
}

/// The authority as written when it looks like `host` or `host:port`, for an error;
/// anything else (a password, say) is not quoted.
fn shown_authority(authority: &str) -> String {
    let (host, port) = match authority.rsplit_once(':') {
        Some((h, p)) if !h.ends_with(':') && !authority.starts_with('[') => (h, Some(p)),
        _ => (authority, None),
    };
    let host_ok = host
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'[' | b']' | b':'));
    let port_ok = port.is_none_or(|p| p.bytes().all(|b| b.is_ascii_digit()));
    if host_ok && port_ok && !authority.contains('@') {
        authority.to_string()
    } else {
        "(not shown)".to_string()
    }
}

/// A short word of letters, digits, `-` and `_`: a format's or a scheme's name, safe to
/// quote back.
fn plain_word(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= PREFIX_QUOTED_MAX
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// A checked `http://` or `https://` URL and the format sent to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Target {
    /// The URL posted to (for ntfy, the server's root).
    url: Url,
    /// The body's shape.
    format: Format,
    /// The ntfy topic, taken from the URL's path; empty for other formats.
    topic: String,
}

impl Target {
    /// Checks a `--notify-url` value: `FORMAT=URL`, or a plain URL sent `default`.
    pub(crate) fn parse_spec(spec: &str, default: Format) -> Result<Target, UrlError> {
        let (format, url) = split_format(spec, default)?;
        let mut target = Target::parse(url)?;
        target.format = format;
        if format == Format::Ntfy {
            target.split_topic()?;
        }
        Ok(target)
    }

    /// ntfy is published to as JSON at the server's root with the topic in the body:
    /// `https://ntfy.sh/alerts` posts to `https://ntfy.sh/` with topic `alerts` (a
    /// server under a path keeps it: `https://h/ntfy/alerts` posts to `https://h/ntfy/`;
    /// a query, such as ntfy's `?auth=`, is kept).
    fn split_topic(&mut self) -> Result<(), UrlError> {
        let path = self.url.path().trim_end_matches('/').to_string();
        let (root, topic) = path.rsplit_once('/').ok_or(UrlError::NtfyTopic)?;
        let valid = (1..=64).contains(&topic.len())
            && topic
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !valid {
            return Err(UrlError::NtfyTopic);
        }
        self.topic = topic.to_string();
        // The query stays: ntfy takes an access token as `?auth=…` there.
        self.url.set_path(&format!("{root}/"));
        self.url.set_fragment(None);
        Ok(())
    }

    /// The body's shape.
    pub(crate) fn format(&self) -> Format {
        self.format
    }

    /// The ntfy topic; empty for other formats.
    pub(crate) fn topic(&self) -> &str {
        &self.topic
    }

    /// Checks a notification URL, sent berth's JSON.
    pub(super) fn parse(url: &str) -> Result<Target, UrlError> {
        let text = url.trim();
        let scheme_ok = text.split_once("://").is_some_and(|(scheme, _)| {
            scheme.eq_ignore_ascii_case("http") || scheme.eq_ignore_ascii_case("https")
        });
        if !scheme_ok {
            return Err(UrlError::Scheme);
        }
        // The authority as written, for an error that must not quote the path.
        let written = || {
            let rest = text.split_once("://").map_or("", |(_, rest)| rest);
            let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
            rest[..end].to_string()
        };
        let authority = || shown_authority(&written());
        if written().contains('@') {
            return Err(UrlError::Credentials);
        }
        let url = Url::parse(text).map_err(|_| UrlError::Authority(authority()))?;
        if url.host_str().is_none_or(str::is_empty) || url.port() == Some(0) {
            return Err(UrlError::Authority(authority()));
        }
        Ok(Target {
            url,
            format: Format::Json,
            topic: String::new(),
        })
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

    /// The format and the redacted URL, for a log line: `slack https://hooks.slack.com/…`.
    pub(super) fn label(&self) -> String {
        format!("{} {}", self.format, self.redacted())
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

/// Sends one POST with a JSON body and `headers` (the signature of a `json` body), and
/// succeeds on a 2xx answer, within the client's deadline.
pub(crate) async fn post(
    client: &HttpClient,
    target: &Target,
    body: &[u8],
    headers: &[(&'static str, String)],
) -> Result<(), DeliveryError> {
    let reply = client
        .post_json(target.url.as_str(), body.to_vec(), headers)
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
