//! Host patterns as OpenSSH matches them (sshd(8), "SSH_KNOWN_HOSTS FILE FORMAT";
//! ssh_config(5), "PATTERNS"): `*` any run of characters, `?` exactly one, a leading
//! `!` negates, and a list matches when some pattern matches and no negated one does.

/// How a comma-separated pattern list matched a name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ListMatch {
    /// No pattern matched.
    None,
    /// A pattern matched and no negated one did.
    Yes,
    /// A negated pattern matched: the name is excluded, whatever else matched.
    Negated,
}

/// `name` against one pattern with `*` and `?`, ASCII case-insensitively.
pub(crate) fn matches(name: &str, pattern: &str) -> bool {
    let name = name.as_bytes();
    let pattern = pattern.as_bytes();
    // Iterative glob match with backtracking to the last `*`.
    let (mut n, mut p) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while n < name.len() {
        if p < pattern.len() && (pattern[p] == b'?' || pattern[p].eq_ignore_ascii_case(&name[n])) {
            n += 1;
            p += 1;
        } else if p < pattern.len() && pattern[p] == b'*' {
            star = Some((p, n));
            p += 1;
        } else if let Some((sp, sn)) = star {
            p = sp + 1;
            n = sn + 1;
            star = Some((sp, sn + 1));
        } else {
            return false;
        }
    }
    pattern[p..].iter().all(|&c| c == b'*')
}

/// `name` against a comma-separated list of patterns, each maybe negated with `!`.
pub(crate) fn match_list(name: &str, list: &str) -> ListMatch {
    let mut found = ListMatch::None;
    for pattern in list.split(',') {
        if let Some(negated) = pattern.strip_prefix('!') {
            if matches(name, negated) {
                return ListMatch::Negated;
            }
        } else if matches(name, pattern) {
            found = ListMatch::Yes;
        }
    }
    found
}
