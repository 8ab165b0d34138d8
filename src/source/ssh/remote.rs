//! The host and port of an ssh remote, read from its URL as git reads it:
//! `ssh://[user@]host[:port]/path` or the scp-like `[user@]host:path` (port 22).

/// Where an ssh remote lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SshRemote {
    /// The user in the URL, if any (`git` otherwise).
    pub user: Option<String>,
    /// The host, as written (an IPv6 address without its brackets).
    pub host: String,
    /// The port (22 unless the URL says otherwise).
    pub port: u16,
}

/// The ssh remote `url` names, or `None` when it is not an ssh URL.
pub(crate) fn parse(url: &str) -> Option<SshRemote> {
    if let Some((scheme, rest)) = url.split_once("://") {
        if !matches!(scheme, "ssh" | "git+ssh" | "ssh+git") {
            return None;
        }
        let authority = rest.split('/').next().unwrap_or_default();
        let (user, hostport) = split_user(authority);
        let (host, port) = if let Some(v6) = hostport.strip_prefix('[') {
            let (host, after) = v6.split_once(']')?;
            (host, after.strip_prefix(':'))
        } else {
            match hostport.rsplit_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (hostport, None),
            }
        };
        let port = match port {
            None | Some("") => 22,
            Some(p) => p.parse().ok()?,
        };
        (!host.is_empty()).then(|| SshRemote {
            user,
            host: host.to_string(),
            port,
        })
    } else {
        // scp-like: a colon before any slash.
        let colon = url.find(':')?;
        if url[..colon].contains('/') {
            return None;
        }
        let (user, host) = split_user(&url[..colon]);
        let host = host.trim_start_matches('[').trim_end_matches(']');
        (!host.is_empty()).then(|| SshRemote {
            user,
            host: host.to_string(),
            port: 22,
        })
    }
}

fn split_user(authority: &str) -> (Option<String>, &str) {
    match authority.rsplit_once('@') {
        Some((user, host)) => (Some(user.to_string()), host),
        None => (None, authority),
    }
}
