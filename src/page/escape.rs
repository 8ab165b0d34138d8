//! Text from the repository made safe for HTML, and the link of a commit on its git
//! host. Everything a page shows that a pusher could write (service names, images,
//! commit summaries, authors, errors) goes through [`esc`].

use std::fmt::Write;

use crate::urls::redact_urls_in;

/// HTML-escapes `text` for element content and quoted attribute values.
pub(crate) fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    push_esc(&mut out, text);
    out
}

/// [`esc`] into `out`.
pub(crate) fn push_esc(out: &mut String, text: &str) {
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            // Controls other than whitespace have no business on a page.
            c if c.is_control() && !matches!(c, '\n' | '\t') => {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
            c => out.push(c),
        }
    }
}

/// An error or other free text: credentials in URLs masked, then escaped.
pub(crate) fn esc_text(text: &str) -> String {
    esc(&redact_urls_in(text))
}

/// An RFC 3339 time to the second, escaped: `2026-11-29T21:00:01Z`.
pub(crate) fn when(t: &str) -> String {
    match (t.get(..19), t.find('.')) {
        (Some(head), Some(19)) if t.ends_with('Z') => esc(&format!("{head}Z")),
        _ => esc(t),
    }
}

/// The git hosts whose commit pages berth knows how to link.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum GitHost {
    /// github.com: `/commit/<sha>`.
    GitHub,
    /// gitlab.com or a host named gitlab…: `/-/commit/<sha>`.
    GitLab,
    /// codeberg.org or a host named gitea… or forgejo…: `/commit/<sha>`.
    Gitea,
    /// bitbucket.org: `/commits/<sha>`.
    Bitbucket,
}

/// The host and repository path of a remote, https or ssh (URL or scp-like
/// `git@host:owner/repo.git`); `None` for a local path or anything unusual.
fn host_and_path(remote: &str) -> Option<(String, String)> {
    let remote = remote.trim();
    let (host, path) = if let Some(rest) = remote
        .strip_prefix("https://")
        .or_else(|| remote.strip_prefix("http://"))
        .or_else(|| remote.strip_prefix("ssh://"))
        .or_else(|| remote.strip_prefix("git://"))
    {
        let (authority, path) = rest.split_once('/')?;
        let host = authority.rsplit('@').next()?;
        let host = host.split(':').next()?;
        (host.to_string(), path.to_string())
    } else if !remote.contains("://") && !remote.starts_with('/') {
        // scp-like: [user@]host:path
        let (authority, path) = remote.split_once(':')?;
        let host = authority.rsplit('@').next()?;
        (host.to_string(), path.trim_start_matches('/').to_string())
    } else {
        return None;
    };
    let path = path.trim_end_matches('/');
    let path = path.strip_suffix(".git").unwrap_or(path).to_string();
    let host = host.to_ascii_lowercase();
    let host_ok = !host.is_empty()
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-');
    let path_ok = path.split('/').filter(|p| !p.is_empty()).count() >= 2
        && path
            .split('/')
            .all(|p| !p.is_empty() && p != "." && p != "..")
        && path
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | '/'));
    (host_ok && path_ok).then_some((host, path))
}

/// Which git host a remote is on, by its host name.
pub(crate) fn git_host(remote: &str) -> Option<GitHost> {
    let (host, _) = host_and_path(remote)?;
    let first = host.split('.').next().unwrap_or_default();
    match host.as_str() {
        "github.com" => Some(GitHost::GitHub),
        "gitlab.com" => Some(GitHost::GitLab),
        "codeberg.org" => Some(GitHost::Gitea),
        "bitbucket.org" => Some(GitHost::Bitbucket),
        _ if first.starts_with("gitlab") => Some(GitHost::GitLab),
        _ if first.starts_with("gitea") || first.starts_with("forgejo") => Some(GitHost::Gitea),
        _ if first.starts_with("github") => Some(GitHost::GitHub),
        _ => None,
    }
}

/// The https page of `sha` on the remote's git host, when the host is known and the
/// SHA is hex.
pub(crate) fn commit_url(remote: &str, sha: &str) -> Option<String> {
    if sha.is_empty() || sha.len() > 64 || !sha.chars().all(|c| c.is_ascii_hexdigit()) {
        return None;
    }
    let kind = git_host(remote)?;
    let (host, path) = host_and_path(remote)?;
    let tail = match kind {
        GitHost::GitHub | GitHost::Gitea => "commit",
        GitHost::GitLab => "-/commit",
        GitHost::Bitbucket => "commits",
    };
    Some(format!("https://{host}/{path}/{tail}/{sha}"))
}
