//! The allowed-signers file: git's `gpg.ssh.allowedSignersFile` format, read line by
//! line into the keys allowed to sign, with their namespaces and validity times.

use std::path::Path;

use ssh_key::public::KeyData;
use ssh_key::{Algorithm, PublicKey};

/// How a line of the file is written, repeated in errors so they say how to fix it.
const LINE_FORMAT: &str = "PRINCIPALS [OPTIONS] KEYTYPE BASE64KEY [COMMENT]";

/// Keys allowed to sign the commits berth applies.
///
/// Read from a file in git's `gpg.ssh.allowedSignersFile` format: one signer a
/// line, `PRINCIPALS [OPTIONS] KEYTYPE BASE64KEY [COMMENT]`, with blank lines
/// and lines starting with `#` ignored. The options understood are
/// `namespaces="…"`, `valid-after="…"` and `valid-before="…"`; a
/// `cert-authority` line is refused.
#[derive(Debug, Clone)]
pub(crate) struct AllowedSigners {
    pub(super) signers: Vec<Signer>,
}

/// One line of an allowed-signers file.
#[derive(Debug, Clone)]
pub(super) struct Signer {
    /// The principals field as written (comma-separated); its first entry
    /// names the signer, as `git verify-commit` does.
    pub(super) principals: String,
    pub(super) key: KeyData,
    /// Pattern list of the namespaces the key may sign in; `None` allows all.
    pub(super) namespaces: Option<String>,
    /// Earliest committer time (Unix seconds) the key is valid for.
    pub(super) valid_after: Option<i64>,
    /// Latest committer time (Unix seconds) the key is valid for.
    pub(super) valid_before: Option<i64>,
}

impl Signer {
    /// The first principal listed (parsing guarantees there is one).
    pub(super) fn first_principal(&self) -> &str {
        self.principals
            .split(',')
            .find(|principal| !principal.is_empty())
            .unwrap_or_default()
    }

    /// Whether this line lets its key sign in `namespace` at Unix time `time`.
    pub(super) fn allows(&self, namespace: &str, time: i64) -> bool {
        self.namespaces
            .as_deref()
            .is_none_or(|list| match_pattern_list(namespace, list))
            && self.valid_after.is_none_or(|after| time >= after)
            && self.valid_before.is_none_or(|before| time <= before)
    }
}

impl AllowedSigners {
    /// Reads an allowed-signers file.
    ///
    /// Errors name the file, and the line for a line that cannot be read. An
    /// empty file loads as an empty list, which no commit passes; see
    /// [`AllowedSigners::is_empty`].
    pub(crate) fn load(path: &Path) -> Result<Self, String> {
        let text = std::fs::read_to_string(path).map_err(|err| {
            if err.kind() == std::io::ErrorKind::NotFound {
                format!(
                    "allowed signers file {} does not exist: create it with one line per signer, \
                     `{LINE_FORMAT}` (the format of git's gpg.ssh.allowedSignersFile)",
                    path.display()
                )
            } else {
                format!(
                    "cannot read allowed signers file {}: {err}: make it a readable UTF-8 text file",
                    path.display()
                )
            }
        })?;
        Self::parse(&text, &path.display().to_string())
    }

    /// Parses the text of an allowed-signers file; `origin` names it in errors,
    /// which read `origin:line: what is wrong and how to fix it`.
    pub(crate) fn parse(text: &str, origin: &str) -> Result<Self, String> {
        let mut signers = Vec::new();
        for (index, line) in text.lines().enumerate() {
            let parsed =
                parse_line(line).map_err(|err| format!("{origin}:{}: {err}", index + 1))?;
            signers.extend(parsed);
        }
        Ok(Self { signers })
    }

    #[cfg(test)]
    /// The number of signer lines (a key listed on two lines counts twice).
    pub(crate) fn len(&self) -> usize {
        self.signers.len()
    }

    #[cfg(test)]
    /// Whether the file lists no signer at all, so no commit can pass.
    pub(crate) fn is_empty(&self) -> bool {
        self.signers.is_empty()
    }
}

/// Parses one line; `Ok(None)` for a blank or comment line.
fn parse_line(line: &str) -> Result<Option<Signer>, String> {
    let line = line.trim();
    if line.is_empty() || line.starts_with('#') {
        return Ok(None);
    }

    let (principals, rest) = split_principals(line)?;
    if principals.split(',').all(str::is_empty) {
        return Err(format!(
            "the principals field is empty: write who the key belongs to, as in `{LINE_FORMAT}`"
        ));
    }
    let rest = rest.trim_start();

    // As in ssh-keygen, the options field is present exactly when the field
    // after the principals is not a key type.
    let first = rest.split_ascii_whitespace().next().unwrap_or("");
    let (options, key_text) = if first.is_empty() || is_key_type(first) {
        ("", rest)
    } else {
        split_options(rest)?
    };
    let mut signer = Signer {
        principals: principals.to_owned(),
        key: parse_key(key_text)?,
        namespaces: None,
        valid_after: None,
        valid_before: None,
    };
    parse_options(options, &mut signer)?;
    Ok(Some(signer))
}

/// Splits off the principals field: a double-quoted string (without its quotes)
/// or everything up to the first blank.
fn split_principals(line: &str) -> Result<(&str, &str), String> {
    if let Some(inner) = line.strip_prefix('"') {
        let end = inner.find('"').ok_or_else(|| {
            "the principals field opens a double quote it never closes: add the closing `\"`"
                .to_owned()
        })?;
        Ok((&inner[..end], &inner[end + 1..]))
    } else {
        let end = line.find([' ', '\t']).unwrap_or(line.len());
        Ok(line.split_at(end))
    }
}

/// Splits off the options field, which ends at the first blank outside double
/// quotes (a quoted value may contain blanks and commas, and `\"`).
fn split_options(text: &str) -> Result<(&str, &str), String> {
    let bytes = text.as_bytes();
    let mut quoted = false;
    let mut end = 0;
    while end < bytes.len() {
        match bytes[end] {
            b'\\' if bytes.get(end + 1) == Some(&b'"') => end += 1,
            b'"' => quoted = !quoted,
            b' ' | b'\t' if !quoted => break,
            _ => {}
        }
        end += 1;
    }
    if quoted {
        return Err(
            "the options open a double quote they never close: add the closing `\"`".into(),
        );
    }
    Ok(text.split_at(end))
}

/// Whether `word` names a public key type (rather than starting the options).
fn is_key_type(word: &str) -> bool {
    matches!(Algorithm::new(word), Ok(algorithm) if !matches!(algorithm, Algorithm::Other(_)))
}

/// Applies a comma-separated options field to `signer`.
fn parse_options(field: &str, signer: &mut Signer) -> Result<(), String> {
    let mut rest = field;
    while !rest.is_empty() {
        let name_end = rest.find(['=', ',']).unwrap_or(rest.len());
        let name = &rest[..name_end];
        rest = &rest[name_end..];
        let value = match rest.strip_prefix('=') {
            Some(quoted) => {
                let (value, after) = dequote(quoted)
                    .map_err(|err| format!("option {name}: {err}, as in {name}=\"…\""))?;
                rest = after;
                Some(value)
            }
            None => None,
        };
        rest = match rest.strip_prefix(',') {
            Some(after) => after,
            None if rest.is_empty() => rest,
            None => {
                return Err(format!(
                    "unexpected `{rest}` after option {name}: separate options with commas only"
                ))
            }
        };

        let lower = name.to_ascii_lowercase();
        match (lower.as_str(), value) {
            ("cert-authority", _) => {
                return Err(
                    "cert-authority lines are not supported: berth checks signatures \
                     made by plain keys only, so list each signer's own public key instead"
                        .into(),
                );
            }
            ("namespaces", Some(list)) => {
                set_once(&mut signer.namespaces, list, name)?;
            }
            ("valid-after", Some(time)) => {
                set_once(&mut signer.valid_after, parse_time(&time)?, name)?;
            }
            ("valid-before", Some(time)) => {
                set_once(&mut signer.valid_before, parse_time(&time)?, name)?;
            }
            ("namespaces" | "valid-after" | "valid-before", None) => {
                return Err(format!("option {name} needs a value, as in {name}=\"…\""));
            }
            _ => {
                return Err(format!(
                    "`{name}` is neither a key type berth supports nor an allowed signers option \
                     (namespaces=\"…\", valid-after=\"…\", valid-before=\"…\"): \
                     write the line as `{LINE_FORMAT}`"
                ))
            }
        }
    }
    if let (Some(after), Some(before)) = (signer.valid_after, signer.valid_before) {
        if before <= after {
            return Err(
                "valid-before is not later than valid-after, so the key is never valid: \
                 fix one of the two times"
                    .into(),
            );
        }
    }
    Ok(())
}

/// Stores an option's value, refusing a second occurrence of the option.
fn set_once<T>(slot: &mut Option<T>, value: T, name: &str) -> Result<(), String> {
    if slot.is_some() {
        return Err(format!("option {name} is given twice: keep one"));
    }
    *slot = Some(value);
    Ok(())
}

/// Reads a double-quoted option value, where `\"` stands for a quote; returns
/// the value and the text after the closing quote.
fn dequote(text: &str) -> Result<(String, &str), String> {
    let inner = text
        .strip_prefix('"')
        .ok_or_else(|| "its value must be in double quotes".to_owned())?;
    let mut value = String::new();
    let mut chars = inner.char_indices();
    while let Some((at, c)) = chars.next() {
        match c {
            '\\' if inner[at + 1..].starts_with('"') => {
                chars.next();
                value.push('"');
            }
            '"' => return Ok((value, &inner[at + 1..])),
            c => value.push(c),
        }
    }
    Err("its value opens a double quote it never closes".into())
}

/// Parses `KEYTYPE BASE64KEY [COMMENT]`.
fn parse_key(text: &str) -> Result<KeyData, String> {
    let mut fields = text.split_ascii_whitespace();
    let (Some(kind), Some(data)) = (fields.next(), fields.next()) else {
        return Err(format!(
            "no public key: each line must read `{LINE_FORMAT}`, the key part copied \
             from the signer's .pub file"
        ));
    };
    PublicKey::from_openssh(&format!("{kind} {data}"))
        .map(|key| key.key_data().clone())
        .map_err(|err| {
            format!(
                "invalid {kind} public key ({err}): copy `KEYTYPE BASE64KEY` unchanged \
                 from the signer's .pub file"
            )
        })
}

/// Parses a `valid-after`/`valid-before` time, `YYYYMMDD[HHMM[SS]]` optionally
/// followed by `Z` or `UTC`, into Unix seconds (always read as UTC).
pub(super) fn parse_time(text: &str) -> Result<i64, String> {
    let invalid = || {
        format!(
            "`{text}` is not a time: write YYYYMMDD, YYYYMMDDHHMM or YYYYMMDDHHMMSS (UTC), \
             optionally followed by Z"
        )
    };
    let digits = text
        .strip_suffix(['Z', 'z'])
        .or_else(|| {
            let cut = text.len().checked_sub(3)?;
            let (head, tail) = (text.get(..cut)?, text.get(cut..)?);
            tail.eq_ignore_ascii_case("UTC").then_some(head)
        })
        .unwrap_or(text);
    if !matches!(digits.len(), 8 | 12 | 14) || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(invalid());
    }
    // Every slice is within bounds and all digits, so the parses cannot fail;
    // absent parts (a date without time) are zero.
    let part = |from: usize, to: usize| -> i64 {
        digits
            .get(from..to)
            .map_or(0, |s| s.parse().unwrap_or_default())
    };
    let (year, month, day) = (part(0, 4), part(4, 6), part(6, 8));
    let (hour, minute, second) = (part(8, 10), part(10, 12), part(12, 14));
    if !(1..=12).contains(&month)
        || day < 1
        || day > days_in_month(year, month)
        || hour > 23
        || minute > 59
        || second > 59
    {
        return Err(invalid());
    }
    Ok(days_from_civil(year, month, day) * 86_400 + hour * 3_600 + minute * 60 + second)
}

/// Days in `month` (1–12) of `year` in the proleptic Gregorian calendar.
fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days from 1970-01-01 to the given date (Howard Hinnant's `days_from_civil`).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let day_of_year = (153 * ((month + 9) % 12) + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// OpenSSH's `match_pattern_list`: whether `text` matches the comma-separated
/// `*`/`?` patterns in `list`, where a match of a `!`-negated pattern vetoes.
pub(super) fn match_pattern_list(text: &str, list: &str) -> bool {
    let mut matched = false;
    for pattern in list.split(',') {
        match pattern.strip_prefix('!') {
            Some(negated) if match_pattern(text.as_bytes(), negated.as_bytes()) => return false,
            Some(_) => {}
            None => matched |= match_pattern(text.as_bytes(), pattern.as_bytes()),
        }
    }
    matched
}

/// Glob match where `*` is any run of bytes and `?` any single byte.
fn match_pattern(text: &[u8], pattern: &[u8]) -> bool {
    match pattern.split_first() {
        None => text.is_empty(),
        Some((b'*', rest)) => (0..=text.len()).any(|skip| match_pattern(&text[skip..], rest)),
        Some((&p, rest)) => match text.split_first() {
            Some((&t, text_rest)) if p == b'?' || p == t => match_pattern(text_rest, rest),
            _ => false,
        },
    }
}
