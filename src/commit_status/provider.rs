//! The three commit-status APIs, as one request each: where it goes, how the token is
//! sent, and the body. Pure: the requests are built here and sent by `reporter`.
//!
//! - GitHub ("Create a commit status"): `POST {api}/repos/{owner}/{repo}/statuses/{sha}`,
//!   `Authorization: Bearer <token>`, JSON `{state, description, context}`; `state` is
//!   `error`, `failure`, `pending` or `success`, and a description longer than 140
//!   characters is refused.
//! - GitLab ("Set the pipeline status of a commit"): `POST
//!   {base}/api/v4/projects/{id}/statuses/{sha}` where `id` may be the URL-encoded path
//!   of the project, `PRIVATE-TOKEN: <token>`, form parameters `state` (`pending`,
//!   `running`, `success`, `failed`, `canceled`), `name` (the context) and
//!   `description`.
//! - Gitea and Forgejo ("Create a commit status", `CreateStatusOption`): `POST
//!   {base}/api/v1/repos/{owner}/{repo}/statuses/{sha}`, `Authorization: token <token>`,
//!   JSON `{state, context, description, target_url}`; `state` is `pending`,
//!   `success`, `error`, `failure` or `warning`.

use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

use super::remote::Remote;
use super::State;

/// A git host's commit-status API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Provider {
    /// GitHub and GitHub Enterprise Server.
    GitHub,
    /// GitLab.
    GitLab,
    /// Gitea and Forgejo.
    Gitea,
}

/// What is percent-encoded in a path segment: everything but unreserved characters.
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// One request to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Request {
    /// The URL.
    pub url: String,
    /// The body's content type.
    pub content_type: &'static str,
    /// The authentication header's name.
    pub auth_header: &'static str,
    /// Its value, which holds the token.
    pub auth_value: Token,
    /// The body.
    pub body: Vec<u8>,
}

impl Provider {
    /// The label in logs and in the context, `github`, `gitlab` or `gitea`.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Provider::GitHub => "github",
            Provider::GitLab => "gitlab",
            Provider::Gitea => "gitea",
        }
    }

    /// The provider a remote's host is known to be: `github.com`; a host with `gitlab`
    /// in its name; `codeberg.org` or a host with `gitea` or `forgejo` in its name.
    pub(crate) fn guess(host: &str) -> Option<Provider> {
        let host = host.to_ascii_lowercase();
        if host == "github.com" || host.ends_with(".github.com") {
            Some(Provider::GitHub)
        } else if host.contains("gitlab") {
            Some(Provider::GitLab)
        } else if host == "codeberg.org" || host.contains("gitea") || host.contains("forgejo") {
            Some(Provider::Gitea)
        } else {
            None
        }
    }

    /// The API base when none is given: `https://api.github.com` for github.com and
    /// `https://<host>/api/v3` for GitHub Enterprise Server; the instance itself,
    /// `https://<host>`, for GitLab and Gitea (their API paths are added to it).
    pub(crate) fn default_base(self, host: &str) -> String {
        match self {
            Provider::GitHub if host == "github.com" => "https://api.github.com".into(),
            Provider::GitHub => format!("https://{host}/api/v3"),
            Provider::GitLab | Provider::Gitea => format!("https://{host}"),
        }
    }

    /// The longest description the API takes, in characters: 140 on GitHub (longer is
    /// refused); 255 elsewhere, what GitLab's and Gitea's tables hold.
    pub(crate) fn description_limit(self) -> usize {
        match self {
            Provider::GitHub => 140,
            Provider::GitLab | Provider::Gitea => 255,
        }
    }

    fn state(self, state: State) -> &'static str {
        match (self, state) {
            (_, State::Pending) => "pending",
            (_, State::Success) => "success",
            (Provider::GitLab, State::Failure) => "failed",
            (_, State::Failure) => "failure",
        }
    }

    /// Whether the remote's path fits the API: `owner/repo` on GitHub and Gitea, any
    /// depth of groups on GitLab.
    pub(crate) fn check_path(self, remote: &Remote) -> Result<(), String> {
        match self {
            Provider::GitLab => Ok(()),
            Provider::GitHub | Provider::Gitea => {
                remote.owner_repo().map(|_| ()).ok_or_else(|| {
                    format!(
                        "the remote's path {:?} is not owner/repository, as {} needs",
                        remote.path,
                        self.as_str()
                    )
                })
            }
        }
    }
}

/// A token, kept out of every `Debug` and log line.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct Token(pub(crate) String);

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Token(***)")
    }
}

/// Where statuses go: one repository on one host's API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Target {
    /// The API.
    pub provider: Provider,
    /// The API base (see [`Provider::default_base`]).
    pub base: String,
    /// The repository.
    pub remote: Remote,
    /// The token.
    pub token: Token,
    /// The status's context, `berth/<host>`.
    pub context: String,
}

impl Target {
    /// The request that sets `state` with `description` (already cut to the limit) on
    /// commit `sha`.
    pub(crate) fn request(&self, sha: &str, state: State, description: &str) -> Request {
        let (remote, token, context) = (&self.remote, self.token.0.as_str(), self.context.as_str());
        let base = self.base.trim_end_matches('/');
        let enc = |s: &str| utf8_percent_encode(s, SEGMENT).to_string();
        let sha = enc(sha);
        let owner_repo = || {
            let (owner, repo) = remote.owner_repo().unwrap_or((&remote.path, ""));
            format!("{}/{}", enc(owner), enc(repo))
        };
        let state = self.provider.state(state);
        match self.provider {
            Provider::GitHub => Request {
                url: format!("{base}/repos/{}/statuses/{sha}", owner_repo()),
                content_type: "application/json",
                auth_header: "authorization",
                auth_value: Token(format!("Bearer {token}")),
                body: serde_json::json!({
                    "state": state,
                    "description": description,
                    "context": context,
                })
                .to_string()
                .into_bytes(),
            },
            Provider::GitLab => Request {
                // The whole path is one segment: `group/repo` → `group%2Frepo`.
                url: format!(
                    "{base}/api/v4/projects/{}/statuses/{sha}",
                    enc(&remote.path)
                ),
                content_type: "application/x-www-form-urlencoded",
                auth_header: "private-token",
                auth_value: Token(token.to_string()),
                body: form_urlencoded::Serializer::new(String::new())
                    .append_pair("state", state)
                    .append_pair("name", context)
                    .append_pair("description", description)
                    .finish()
                    .into_bytes(),
            },
            Provider::Gitea => Request {
                url: format!("{base}/api/v1/repos/{}/statuses/{sha}", owner_repo()),
                content_type: "application/json",
                auth_header: "authorization",
                auth_value: Token(format!("token {token}")),
                body: serde_json::json!({
                    "state": state,
                    "context": context,
                    "description": description,
                })
                .to_string()
                .into_bytes(),
            },
        }
    }
}

/// The first line of `reason`, credentials in URLs masked, cut to `limit` characters
/// (the last one an ellipsis when cut).
pub(crate) fn describe(reason: &str, limit: usize) -> String {
    let line = reason
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("");
    let line = crate::urls::redact_urls_in(line);
    let line: String = line.chars().filter(|c| !c.is_control()).collect();
    if line.chars().count() <= limit {
        return line;
    }
    let mut cut: String = line.chars().take(limit.saturating_sub(1)).collect();
    cut.push('…');
    cut
}
