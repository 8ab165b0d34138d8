//! URLs as berth prints them: without the credentials they may carry.
//!
//! An operator may give a repository as `https://user:token@git.example/x.git`, a
//! notification endpoint as `http://hooks.example/T?token=…` or a ledger as
//! `postgres://user:pass@db/berth`, and libraries (git2, tokio-postgres) may quote such a
//! URL in their errors. Everything berth logs, publishes in `/status`, prints or sends in
//! a notification goes through [`redact_url`] (one URL) or [`redact_urls_in`] (free text).
//!
//! The text is scanned rather than parsed with a URL parser on purpose: a parser
//! normalizes what it prints and refuses malformed input, while what must be masked is
//! exactly the malformed URL an operator typed (a password with a raw `/` or `@`).
//! What is masked:
//! - the password of the userinfo (`user:***@`);
//! - a userinfo without a password, except for schemes whose user names are not
//!   secrets (ssh, postgres): `https://TOKEN@github.com/` carries a token;
//! - values of query parameters whose names say they hold a secret (`token=`, `key=`,
//!   `secret=`, `password=`, `sig=` and their kin).
//!
//! An scp-like remote (`git@host:path`) has no password and is left as it is.

/// What replaces a secret.
pub(crate) const MASK: &str = "***";

/// Schemes whose user name alone is no secret (`ssh://git@host/x`, `postgres://berth@db/`).
const USER_IS_NO_SECRET: &[&str] = &["ssh", "git+ssh", "ssh+git", "postgres", "postgresql"];

/// Query parameter names (lower case) that hold secrets, matched as parts of the name:
/// `api_key`, `access_token`, `X-Amz-Signature` and `sig` all count.
const SECRET_PARAMS: &[&str] = &[
    "token",
    "key",
    "secret",
    "password",
    "passwd",
    "pwd",
    "sig",
    "auth",
    "credential",
];

/// The URL with its credentials masked; text that is no URL comes back unchanged.
pub(crate) fn redact_url(url: &str) -> String {
    let Some(sep) = url.find("://") else {
        // A local path or an scp-like remote (`git@host:path`): no password to hide.
        return url.to_string();
    };
    let scheme = &url[..sep];
    let rest = &url[sep + 3..];
    let mut out = String::with_capacity(url.len());
    out.push_str(scheme);
    out.push_str("://");
    // The authority ends at the first `/`, `?` or `#`.
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, after) = rest.split_at(authority_end);
    let after = match authority.rfind('@') {
        Some(at) => {
            out.push_str(&redact_userinfo(scheme, &authority[..at]));
            out.push_str(&authority[at..]);
            after
        }
        None => match misplaced_userinfo(rest) {
            // `user:pa/ss@host`: a password with a raw `/` ends the authority early;
            // everything up to the `@` is masked.
            Some(at) => {
                out.push_str(MASK);
                &rest[at..]
            }
            None => {
                out.push_str(authority);
                after
            }
        },
    };
    out.push_str(&redact_query(after));
    out
}

/// Every URL (`scheme://…`, up to whitespace or a quote) in `text` passed through
/// [`redact_url`]; the rest of the text unchanged.
pub(crate) fn redact_urls_in(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut done = 0;
    let mut from = 0;
    while let Some(found) = text[from..].find("://") {
        let sep = from + found;
        let start = text[..sep]
            .char_indices()
            .rev()
            .take_while(|(_, c)| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
            .last()
            .map_or(sep, |(i, _)| i);
        let end = text[sep..]
            .find(|c: char| c.is_whitespace() || matches!(c, '"' | '\'' | '`' | '<' | '>'))
            .map_or(text.len(), |i| sep + i);
        if start < done {
            // `://` inside a URL already copied (a URL in a query value).
            from = end.max(sep + 3);
            continue;
        }
        out.push_str(&text[done..start]);
        out.push_str(&redact_url(&text[start..end]));
        done = end;
        from = end.max(sep + 3);
    }
    out.push_str(&text[done..]);
    out
}

/// `user:pass` → `user:***`; a lone user name → `***` unless the scheme's user names
/// are no secrets.
fn redact_userinfo(scheme: &str, userinfo: &str) -> String {
    match userinfo.split_once(':') {
        Some((user, _)) => format!("{user}:{MASK}"),
        None if userinfo.is_empty() => String::new(),
        None if USER_IS_NO_SECRET
            .iter()
            .any(|s| s.eq_ignore_ascii_case(scheme)) =>
        {
            userinfo.to_string()
        }
        None => MASK.to_string(),
    }
}

/// Where the `@` ends a userinfo that holds a raw `/`, `?` or `#`: an `@` with a `:`
/// before it that is not a port's (`host:8080/@scope/pkg` is an ordinary URL). `None`
/// for an ordinary URL.
fn misplaced_userinfo(rest: &str) -> Option<usize> {
    let at = rest.find('@')?;
    let head = &rest[..at];
    let authority = &head[..head.find(['/', '?', '#']).unwrap_or(head.len())];
    let colon = authority.rfind(':')?;
    let after = &authority[colon + 1..];
    let is_port = !after.is_empty() && after.bytes().all(|b| b.is_ascii_digit());
    (!is_port && !head.contains(char::is_whitespace)).then_some(at)
}

/// The path, query and fragment with secret-looking query values masked.
fn redact_query(after: &str) -> String {
    let Some(q) = after.find('?') else {
        return after.to_string();
    };
    let (path, query) = after.split_at(q + 1);
    let (query, fragment) = match query.find('#') {
        Some(h) => query.split_at(h),
        None => (query, ""),
    };
    let mut out = String::with_capacity(after.len());
    out.push_str(path);
    for (i, pair) in query.split('&').enumerate() {
        if i > 0 {
            out.push('&');
        }
        match pair.split_once('=') {
            Some((name, value)) if !value.is_empty() && secret_param(name) => {
                out.push_str(name);
                out.push('=');
                out.push_str(MASK);
            }
            // A URL in a parameter (`?redirect=https://u:p@h/`) is masked in turn.
            _ if pair.contains("://") => out.push_str(&redact_urls_in(pair)),
            _ => out.push_str(pair),
        }
    }
    out.push_str(fragment);
    out
}

fn secret_param(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    SECRET_PARAMS.iter().any(|s| name.contains(s))
}

#[cfg(test)]
mod tests;
