//! The link to a commit on the forge that hosts the repository: derived from the
//! remote's URL when its host is one whose commit pages are known, else none.

/// The forges whose commit page is known, and how it is reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Forge {
    /// github.com: `/owner/repo/commit/<sha>`.
    GitHub,
    /// gitlab.com: `/group[/subgroup…]/repo/-/commit/<sha>`.
    GitLab,
    /// Gitea and Forgejo (gitea.com, codeberg.org): `/owner/repo/commit/<sha>`.
    Gitea,
    /// bitbucket.org: `/workspace/repo/commits/<sha>`.
    Bitbucket,
}

impl Forge {
    fn of(host: &str) -> Option<Forge> {
        match host {
            "github.com" => Some(Forge::GitHub),
            "gitlab.com" => Some(Forge::GitLab),
            "gitea.com" | "codeberg.org" => Some(Forge::Gitea),
            "bitbucket.org" => Some(Forge::Bitbucket),
            _ => None,
        }
    }
}

/// Where a repository's commits are shown: `https://host/owner/repo` and its forge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CommitLinks {
    base: String,
    forge: Forge,
}

impl CommitLinks {
    /// The commit pages of the repository at `remote` (`https://`, `ssh://`, `git://`
    /// or scp-like `git@host:owner/repo.git`), when its host is a known forge. The
    /// credentials a remote may carry are never part of the link.
    pub(crate) fn from_remote(remote: &str) -> Option<CommitLinks> {
        let (host, path) = host_and_path(remote.trim())?;
        let host = host.to_ascii_lowercase();
        let forge = Forge::of(&host)?;
        let path = path.trim_matches('/');
        let path = path.strip_suffix(".git").unwrap_or(path);
        let segments: Vec<&str> = path.split('/').collect();
        let fits = match forge {
            Forge::GitLab => segments.len() >= 2,
            _ => segments.len() == 2,
        };
        if !fits || !segments.iter().all(|s| plain_segment(s)) {
            return None;
        }
        Some(CommitLinks {
            base: format!("https://{host}/{}", segments.join("/")),
            forge,
        })
    }

    /// The page of one commit; none for something that is not a commit id.
    pub(crate) fn commit(&self, sha: &str) -> Option<String> {
        let is_id = matches!(sha.len(), 40 | 64) && sha.bytes().all(|b| b.is_ascii_hexdigit());
        if !is_id {
            return None;
        }
        let sha = sha.to_ascii_lowercase();
        Some(match self.forge {
            Forge::GitHub | Forge::Gitea => format!("{}/commit/{sha}", self.base),
            Forge::GitLab => format!("{}/-/commit/{sha}", self.base),
            Forge::Bitbucket => format!("{}/commits/{sha}", self.base),
        })
    }
}

/// The host and the path of a remote, without user, password or port.
fn host_and_path(remote: &str) -> Option<(&str, &str)> {
    if let Some((scheme, rest)) = remote.split_once("://") {
        let scheme = scheme.to_ascii_lowercase();
        if !matches!(
            scheme.as_str(),
            "https" | "http" | "ssh" | "git" | "git+ssh"
        ) {
            return None;
        }
        let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        let (authority, path) = rest.split_at(end);
        let path = path.split(['?', '#']).next().unwrap_or_default();
        let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
        let host = host_port.split(':').next().unwrap_or_default();
        return Some((host, path));
    }
    // scp-like: `[user@]host:path`, with no `/` before the colon.
    let (before, path) = remote.split_once(':')?;
    if before.contains('/') || path.starts_with("//") {
        return None;
    }
    let host = before.rsplit_once('@').map_or(before, |(_, h)| h);
    Some((host, path))
}

/// A path segment a forge's owner or repository name can be: letters, digits, `.`,
/// `-`, `_`, and not `.` or `..`, so that nothing odd ends up in a link.
fn plain_segment(s: &str) -> bool {
    !s.is_empty()
        && s != "."
        && s != ".."
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'))
}
