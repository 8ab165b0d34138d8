//! `.berth/recipients`: who the repository's secrets are encrypted to, one line per host
//! or person: an age recipient (`age1…`) or an ssh public key (`ssh-ed25519 AAAA…`,
//! `ssh-rsa AAAA…`, with its comment). Lines starting with `#` are comments; the one
//! right above a key says whose it is. Written that way the file is also a recipients
//! file for `age -R`.
//!
//! Whoever can push can change this file; a person who runs `secrets edit` or `rekey`
//! after such a change would encrypt to the pusher's key. So both commands print every
//! recipient they encrypt to, with its comment and line, before writing.

use std::io::Write;
use std::path::{Path, PathBuf};

/// Where the recipients live, relative to the repository's root.
pub(crate) const RECIPIENTS_FILE: &str = ".berth/recipients";

/// One recipient of the file.
pub(crate) struct Recipient {
    /// Its line in the file (1-based).
    pub(crate) line: usize,
    /// The key as written (`age1…`, or `ssh-ed25519 AAAA…`).
    pub(crate) key: String,
    /// What follows the key on its line (a host or a person), maybe empty.
    pub(crate) comment: String,
    parsed: Box<dyn age::Recipient + Send>,
}

impl std::fmt::Debug for Recipient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{} {}", self.line, self.key, self.comment)
    }
}

/// Parses the recipients file's text; `shown` names it in errors.
pub(crate) fn parse(text: &str, shown: &str) -> Result<Vec<Recipient>, String> {
    let mut out = Vec::new();
    let mut above = String::new();
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if let Some(c) = line.strip_prefix('#') {
            above = c.trim().to_string();
            continue;
        }
        if line.is_empty() {
            above.clear();
            continue;
        }
        let n = i + 1;
        let mut words = line.split_whitespace();
        let first = words.next().unwrap_or_default();
        let (key, parsed): (String, Box<dyn age::Recipient + Send>) = if first.starts_with("ssh-") {
            let body = words.next().unwrap_or_default();
            let key = format!("{first} {body}");
            let r: age::ssh::Recipient = key
                .parse()
                .map_err(|e| format!("{shown}:{n}: not an ssh public key age can use ({e:?}); write `ssh-ed25519 AAAA… comment`"))?;
            (key, Box::new(r))
        } else {
            let r: age::x25519::Recipient = first.parse().map_err(|e| {
                format!("{shown}:{n}: `{first}` is not an age recipient ({e}); write `age1… comment` (`berth secrets recipients` prints a host's)")
            })?;
            (first.to_string(), Box::new(r))
        };
        let trailing = words.collect::<Vec<_>>().join(" ");
        let trailing = trailing.trim_start_matches('#').trim();
        let comment = if trailing.is_empty() {
            std::mem::take(&mut above)
        } else {
            trailing.to_string()
        };
        out.push(Recipient {
            line: n,
            key,
            comment,
            parsed,
        });
    }
    if out.is_empty() {
        return Err(format!(
            "{shown} lists no recipient; add one line per host or person (`berth secrets recipients` on a host prints its)"
        ));
    }
    Ok(out)
}

/// The repository root above `start`: the nearest directory holding
/// [`RECIPIENTS_FILE`].
pub(crate) fn find_root(start: &Path) -> Result<PathBuf, String> {
    let start = start
        .canonicalize()
        .map_err(|e| format!("{}: {e}", start.display()))?;
    let mut dir = if start.is_dir() {
        start.as_path()
    } else {
        start.parent().unwrap_or(&start)
    };
    loop {
        if dir.join(RECIPIENTS_FILE).is_file() {
            return Ok(dir.to_path_buf());
        }
        match dir.parent() {
            Some(p) => dir = p,
            None => {
                return Err(format!(
                    "no {RECIPIENTS_FILE} above {}; create it at the repository's root with one recipient per line",
                    start.display()
                ))
            }
        }
    }
}

/// Reads the recipients of the repository at `root`.
pub(crate) fn read(root: &Path) -> Result<Vec<Recipient>, String> {
    let path = root.join(RECIPIENTS_FILE);
    let text = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    parse(&text, &path.display().to_string())
}

/// The list as printed before anything is encrypted to it.
pub(crate) fn describe(recipients: &[Recipient]) -> String {
    let mut out = format!(
        "encrypting to {} recipient(s) of {RECIPIENTS_FILE}:\n",
        recipients.len()
    );
    for r in recipients {
        let short = if r.key.len() > 40 {
            format!("{}…{}", &r.key[..24], &r.key[r.key.len() - 8..])
        } else {
            r.key.clone()
        };
        let comment = if r.comment.is_empty() {
            "(no comment: who is this?)"
        } else {
            &r.comment
        };
        out.push_str(&format!("  line {:>3}  {short}  {comment}\n", r.line));
    }
    out
}

/// Encrypts `plain` to every recipient, armored (text, reviewable in a diff) or binary.
pub(crate) fn encrypt(
    recipients: &[Recipient],
    plain: &[u8],
    armor: bool,
) -> Result<Vec<u8>, String> {
    let encryptor =
        age::Encryptor::with_recipients(recipients.iter().map(|r| r.parsed.as_ref() as _))
            .map_err(|e| format!("cannot encrypt: {e}"))?;
    let mut out = Vec::new();
    let format = if armor {
        age::armor::Format::AsciiArmor
    } else {
        age::armor::Format::Binary
    };
    let fail = |e: std::io::Error| format!("cannot encrypt: {e}");
    let armored = age::armor::ArmoredWriter::wrap_output(&mut out, format).map_err(fail)?;
    let mut writer = encryptor.wrap_output(armored).map_err(fail)?;
    writer.write_all(plain).map_err(fail)?;
    writer.finish().and_then(|a| a.finish()).map_err(fail)?;
    Ok(out)
}

/// True for an armored age file (`-----BEGIN AGE ENCRYPTED FILE-----`).
pub(crate) fn is_armored(data: &[u8]) -> bool {
    data.trim_ascii_start()
        .starts_with(b"-----BEGIN AGE ENCRYPTED FILE-----")
}
