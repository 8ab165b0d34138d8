//! A literal parser for `.env` files, following compose-go's dotenv rules:
//!
//! - One `KEY=VALUE` per statement; `KEY: VALUE` is accepted too, and a leading `export `
//!   is dropped. Blank lines and lines starting with `#` are skipped.
//! - A key is made of letters, digits, `_`, `.`, `-`, `[` and `]`; spaces around it are
//!   dropped, a space inside it is an error.
//! - An unquoted value runs to the end of the line; ` #` starts a comment, trailing
//!   whitespace is dropped, and `${…}` expressions are interpolated.
//! - A single-quoted value is literal (`\'` is a quote) and may span lines.
//! - A double-quoted value may span lines, understands `\n`, `\r`, `\t`, `\a`, `\b`, `\f`,
//!   `\v`, `\\`, `\"`, `\$` and `\0` followed by three octal digits, keeps any other
//!   backslash as written, and is interpolated.
//! - Interpolation sees only the keys set earlier in the same file; it never reads the
//!   process environment. A later duplicate key replaces the earlier value.
//!
//! Where berth is stricter than compose-go: a statement without a key (`=value`) and text
//! after a closing quote other than a `#` comment are errors, and a bare `KEY` (which
//! compose-go takes from the process environment) is ignored with a warning.
//!
//! The input is untrusted: it is capped at [`MAX_DOTENV_BYTES`] bytes, [`MAX_ENTRIES`]
//! entries and [`MAX_DOTENV_BYTES`] bytes of values after interpolation.

use std::collections::HashMap;

use super::{interpolate_with, Found, InterpolationError, Resolve, Unset};

/// Largest `.env` file, and largest total of its values after interpolation, in bytes.
pub(crate) const MAX_DOTENV_BYTES: usize = 1 << 20;

/// Most distinct keys in one `.env` file.
pub(crate) const MAX_ENTRIES: usize = 4096;

/// The variables of one `.env` file, in the order they were first set.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct DotEnv {
    entries: Vec<Entry>,
    index: HashMap<String, usize>,
}

/// One variable of a `.env` file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Entry {
    /// The key as written.
    pub key: String,
    /// The value after unquoting, unescaping and interpolation.
    pub value: String,
    /// 1-based line of the statement that set the value.
    pub line: usize,
}

/// A parsed `.env` file and what is worth telling about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Parsed {
    /// The variables.
    pub env: DotEnv,
    /// Unset variables referenced by values, bare keys.
    pub warnings: Vec<DotEnvWarning>,
}

/// Something in a `.env` file that is accepted but probably not meant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DotEnvWarning {
    /// 1-based line.
    pub line: usize,
    /// 1-based column, in characters.
    pub col: usize,
    /// What and what to do.
    pub message: String,
}

/// A `.env` file that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub(crate) struct DotEnvError {
    /// 1-based line.
    pub line: usize,
    /// 1-based column, in characters.
    pub col: usize,
    /// What is wrong and what to do.
    pub message: String,
}

impl DotEnv {
    /// Parses the text of a `.env` file (a leading UTF-8 byte order mark is skipped).
    ///
    /// # Errors
    /// A malformed statement, an unterminated quote, a failed interpolation or a limit.
    pub(crate) fn parse(text: &str) -> Result<Parsed, DotEnvError> {
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        let mut parser = Parser {
            text,
            pos: 0,
            env: DotEnv::default(),
            warnings: Vec::new(),
            values: 0,
        };
        if text.len() > MAX_DOTENV_BYTES {
            return Err(parser.error(
                0,
                format!("the file is larger than {MAX_DOTENV_BYTES} bytes; shorten it"),
            ));
        }
        while parser.next_statement() {
            parser.statement()?;
        }
        Ok(Parsed {
            env: parser.env,
            warnings: parser.warnings,
        })
    }

    /// The value of `key`, if the file sets it.
    pub(crate) fn get(&self, key: &str) -> Option<&str> {
        self.index.get(key).map(|&i| self.entries[i].value.as_str())
    }

    #[cfg(test)]
    /// The variables in the order they were first set.
    pub(crate) fn entries(&self) -> &[Entry] {
        &self.entries
    }

    #[cfg(test)]
    /// The number of distinct keys.
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    #[cfg(test)]
    /// True when the file sets nothing.
    pub(crate) fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Sets `key`, replacing an earlier value. Returns false when the entry limit is reached.
    fn set(&mut self, key: &str, value: String, line: usize) -> bool {
        if let Some(&i) = self.index.get(key) {
            self.entries[i].value = value;
            self.entries[i].line = line;
            return true;
        }
        if self.entries.len() >= MAX_ENTRIES {
            return false;
        }
        self.index.insert(key.to_string(), self.entries.len());
        self.entries.push(Entry {
            key: key.to_string(),
            value,
            line,
        });
        true
    }
}

/// Values interpolated inside a `.env` file see the keys set above them.
impl Resolve for DotEnv {
    fn resolve(&self, name: &str) -> Option<Found<'_>> {
        self.get(name).map(|value| Found {
            value,
            secret: false,
        })
    }
}

/// A value as written, ready for interpolation, with the file offset of each of its bytes.
struct RawValue {
    text: String,
    /// `None` when `text` is a verbatim slice of the file starting at `base`.
    offsets: Option<Vec<usize>>,
    base: usize,
    /// Offset just after the value (at the closing quote for quoted values).
    end: usize,
}

impl RawValue {
    /// The file offset of byte `i` of the value.
    fn offset(&self, i: usize) -> usize {
        match &self.offsets {
            None => self.base + i,
            Some(offsets) => offsets.get(i).copied().unwrap_or(self.end),
        }
    }
}

struct Parser<'t> {
    text: &'t str,
    pos: usize,
    env: DotEnv,
    warnings: Vec<DotEnvWarning>,
    /// Bytes of values produced so far.
    values: usize,
}

impl Parser<'_> {
    /// Skips blank space and comment lines; false at the end of the text.
    fn next_statement(&mut self) -> bool {
        loop {
            let rest = &self.text[self.pos..];
            let trimmed = rest.trim_start();
            self.pos += rest.len() - trimmed.len();
            if trimmed.is_empty() {
                return false;
            }
            if !trimmed.starts_with('#') {
                return true;
            }
            self.pos += trimmed.find('\n').unwrap_or(trimmed.len());
        }
    }

    /// Parses one statement starting at `self.pos`.
    fn statement(&mut self) -> Result<(), DotEnvError> {
        self.skip_export();
        let key_start = self.pos;
        let (key_end, terminator) = self.scan_key()?;
        let key = self.text[key_start..key_end].trim_end_matches(is_space);
        let line = self.line_col(key_start).0;
        if key.is_empty() {
            return Err(self.error(key_start, "a statement has no key; write KEY=VALUE".into()));
        }
        if key.contains(is_space) {
            return Err(self.error(
                key_start,
                format!("the key `{key}` contains a space; write KEY=VALUE"),
            ));
        }
        if terminator.is_none() {
            self.pos = key_end;
            let message = format!(
                "`{key}` has no value and is ignored: berth does not read the process \
                 environment; write {key}=VALUE"
            );
            self.warn(key_start, message);
            return Ok(());
        }
        self.pos = key_end + 1;
        self.skip_spaces();
        let value = self.value()?;
        if !self.env.set(key, value, line) {
            return Err(self.error(
                key_start,
                format!("the file sets more than {MAX_ENTRIES} keys; remove some"),
            ));
        }
        Ok(())
    }

    /// Drops a leading `export` followed by a space or a tab.
    fn skip_export(&mut self) {
        let rest = &self.text[self.pos..];
        if let Some(after) = rest.strip_prefix("export") {
            if after.starts_with([' ', '\t']) {
                self.pos += "export".len();
                self.skip_spaces();
            }
        }
    }

    /// Skips spaces and tabs, not line breaks.
    fn skip_spaces(&mut self) {
        let rest = &self.text[self.pos..];
        self.pos += rest.len() - rest.trim_start_matches(is_space).len();
    }

    /// Finds the end of the key: the offset of `=` or `:` (`Some`), or of the line end
    /// (`None`: a bare key).
    fn scan_key(&self) -> Result<(usize, Option<char>), DotEnvError> {
        for (i, c) in self.text[self.pos..].char_indices() {
            let at = self.pos + i;
            match c {
                '=' | ':' => return Ok((at, Some(c))),
                '\n' => return Ok((at, None)),
                c if is_space(c) || is_key_char(c) => {}
                c => {
                    return Err(self.error(
                        at,
                        format!(
                            "unexpected character {c:?} in a key; a key is made of letters, \
                             digits, `_`, `.`, `-`, `[` and `]`, followed by `=`"
                        ),
                    ))
                }
            }
        }
        Ok((self.text.len(), None))
    }

    /// Parses the value starting at `self.pos` and interpolates it if it is not single-quoted.
    fn value(&mut self) -> Result<String, DotEnvError> {
        let raw = match self.text[self.pos..].chars().next() {
            Some('\'') => return self.single_quoted(),
            Some('"') => self.double_quoted()?,
            _ => self.unquoted(),
        };
        let done = interpolate_with(&raw.text, &self.env, MAX_DOTENV_BYTES)
            .map_err(|e| self.interpolation_error(&raw, e))?;
        for Unset { name, offset } in done.unset {
            let message = format!(
                "`{name}` is not set above this line, so it is empty here; set it earlier in \
                 this file (berth does not read the process environment)"
            );
            self.warn(raw.offset(offset), message);
        }
        self.count(done.value.len(), raw.offset(0))?;
        Ok(done.value)
    }

    /// An unquoted value: the rest of the line, without a ` #` comment and trailing space.
    fn unquoted(&mut self) -> RawValue {
        let start = self.pos;
        let rest = &self.text[start..];
        let line_end = rest.find('\n').unwrap_or(rest.len());
        let line = &rest[..line_end];
        let value = line.find(" #").map_or(line, |cut| &line[..cut]).trim_end();
        self.pos = start + line_end;
        RawValue {
            text: value.to_string(),
            offsets: None,
            base: start,
            end: start + value.len(),
        }
    }

    /// A single-quoted value: literal except for `\'`.
    fn single_quoted(&mut self) -> Result<String, DotEnvError> {
        let open = self.pos;
        let bytes = self.text.as_bytes();
        let mut value = Vec::new();
        let mut i = open + 1;
        while i < bytes.len() {
            match bytes[i] {
                b'\\' if i + 1 < bytes.len() => {
                    // `\'` is a quote; any other escaped byte keeps its backslash.
                    if bytes[i + 1] != b'\'' {
                        value.push(b'\\');
                    }
                    value.push(bytes[i + 1]);
                    i += 2;
                }
                b'\'' => {
                    self.after_quote(i + 1)?;
                    self.count(value.len(), open)?;
                    return Ok(utf8(value));
                }
                b => {
                    value.push(b);
                    i += 1;
                }
            }
        }
        Err(self.unterminated(open, '\''))
    }

    /// A double-quoted value with its escapes resolved; `\$` becomes `$$` so that it stays a
    /// literal `$` through interpolation.
    fn double_quoted(&mut self) -> Result<RawValue, DotEnvError> {
        let open = self.pos;
        let bytes = self.text.as_bytes();
        let mut text = Vec::new();
        let mut offsets = Vec::new();
        let mut i = open + 1;
        while i < bytes.len() {
            let b = bytes[i];
            if b == b'"' {
                self.after_quote(i + 1)?;
                return Ok(RawValue {
                    text: utf8(text),
                    offsets: Some(offsets),
                    base: open + 1,
                    end: i,
                });
            }
            let before = text.len();
            let used = if b == b'\\' {
                escape(&bytes[i + 1..], &mut text)
            } else {
                text.push(b);
                1
            };
            offsets.extend(std::iter::repeat_n(i, text.len() - before));
            i += used;
        }
        Err(self.unterminated(open, '"'))
    }

    /// After a closing quote at `pos - 1`: only spaces and an optional `#` comment may follow
    /// on the line.
    fn after_quote(&mut self, pos: usize) -> Result<(), DotEnvError> {
        self.pos = pos;
        self.skip_spaces();
        let rest = &self.text[self.pos..];
        if rest.is_empty() || rest.starts_with(['\n', '#']) {
            return Ok(());
        }
        Err(self.error(
            self.pos,
            "unexpected text after the closing quote; start a comment with `#`".into(),
        ))
    }

    /// Adds `len` bytes of value to the total, which is capped at [`MAX_DOTENV_BYTES`].
    fn count(&mut self, len: usize, at: usize) -> Result<(), DotEnvError> {
        self.values += len;
        if self.values <= MAX_DOTENV_BYTES {
            return Ok(());
        }
        Err(self.error(
            at,
            format!(
                "the values of this file add up to more than {MAX_DOTENV_BYTES} bytes after \
                 interpolation; shorten them"
            ),
        ))
    }

    fn unterminated(&self, open: usize, quote: char) -> DotEnvError {
        self.error(
            open,
            format!("unterminated quoted value; add the closing {quote}"),
        )
    }

    fn interpolation_error(&self, raw: &RawValue, e: InterpolationError) -> DotEnvError {
        self.error(raw.offset(e.offset), e.message)
    }

    fn warn(&mut self, at: usize, message: String) {
        let (line, col) = self.line_col(at);
        self.warnings.push(DotEnvWarning { line, col, message });
    }

    fn error(&self, at: usize, message: String) -> DotEnvError {
        let (line, col) = self.line_col(at);
        DotEnvError { line, col, message }
    }

    /// 1-based line and column (in characters) of byte offset `at`.
    fn line_col(&self, at: usize) -> (usize, usize) {
        let before = &self.text[..at];
        let line = before.bytes().filter(|&b| b == b'\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |n| n + 1);
        (line, before[line_start..].chars().count() + 1)
    }
}

/// Resolves the escape after a backslash inside double quotes into `out`; `rest` follows the
/// backslash. Returns the number of input bytes used, backslash included.
fn escape(rest: &[u8], out: &mut Vec<u8>) -> usize {
    let simple: &[u8] = match rest.first() {
        Some(b'n') => b"\n",
        Some(b'r') => b"\r",
        Some(b't') => b"\t",
        Some(b'a') => b"\x07",
        Some(b'b') => b"\x08",
        Some(b'f') => b"\x0c",
        Some(b'v') => b"\x0b",
        Some(b'\\') => b"\\",
        Some(b'"') => b"\"",
        Some(b'$') => b"$$",
        Some(b'0') if octal(&rest[1..]).is_some() => {
            let c = octal(&rest[1..]).unwrap_or_default();
            let mut buf = [0u8; 4];
            out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            return 5;
        }
        _ => {
            // Not an escape: the backslash stays and the next character is read as usual.
            out.push(b'\\');
            return 1;
        }
    };
    out.extend_from_slice(simple);
    2
}

/// `\0ddd`: the character U+0000..U+00FF with octal code `ddd`; `digits` follows `\0`.
fn octal(digits: &[u8]) -> Option<char> {
    let d = digits.get(..3)?;
    if !d.iter().all(|c| (b'0'..=b'7').contains(c)) {
        return None;
    }
    let code = d.iter().fold(0u32, |n, c| n * 8 + u32::from(c - b'0'));
    u8::try_from(code).ok().map(char::from)
}

/// Bytes assembled from whole UTF-8 sequences of the input and ASCII or whole characters.
fn utf8(bytes: Vec<u8>) -> String {
    String::from_utf8(bytes).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

/// Spaces that may surround keys and values (not line breaks), as compose-go counts them.
fn is_space(c: char) -> bool {
    matches!(
        c,
        ' ' | '\t' | '\u{b}' | '\u{c}' | '\r' | '\u{85}' | '\u{a0}'
    )
}

/// Characters allowed in a key.
fn is_key_char(c: char) -> bool {
    c.is_alphanumeric() || matches!(c, '_' | '.' | '-' | '[' | ']')
}

#[cfg(test)]
mod tests;
