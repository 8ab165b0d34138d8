//! Compose variable interpolation: `$VAR`, `${VAR}`, `${VAR:-default}`, `${VAR-default}`,
//! `${VAR:?error}`, `${VAR?error}`, `${VAR:+alternative}`, `${VAR+alternative}` and `$$`.
//!
//! The rules are those of the Compose Specification as implemented by compose-go:
//!
//! - A name is `[A-Za-z_][A-Za-z0-9_]*`. `$NAME` takes the longest such name.
//! - `$$` is a literal `$`. A `$` followed by anything that is neither `$`, `{` nor a
//!   name character (or by the end of the text) stays a literal `$`: `a $ b`, `^x$`, `$}`.
//! - `${` must be followed by a name, then `}` or one of the operators `:-`, `-`, `:?`, `?`,
//!   `:+`, `+`; anything else (`${}`, `${ X}`, `${1X}`, `${X!}`, `${X/a/b}`) is an error.
//! - The text after an operator (default, message or alternative) is itself interpolated, so
//!   expressions nest: `${A:-${B:-x}}`. It ends at the `}` that balances the opening one;
//!   literal `{` and `}` inside it count towards the balance, as in compose-go.
//! - Like compose-go, the nested text is always evaluated, whether or not it is used: an
//!   error in it (a syntax error, a `${X:?}` on an unset `X`) is an error of the whole
//!   expression. Unlike compose-go's warnings, only the branch that is used reports unset
//!   variables, so `${TAG:-${FALLBACK}}` does not report `FALLBACK` when `TAG` is set.
//! - Values are inserted literally; a value that contains `$` is never interpolated again.
//! - An expression must close on the line it starts (compose-go's pattern does not cross
//!   line breaks).
//!
//! Variables come from a [`Lookup`], which only holds parsed `.env` files: the host's
//! `.env` first, then the committed `.env`. The process environment is never consulted;
//! this module does not read it and [`Lookup`] cannot be built from it.
//!
//! The input is untrusted: nesting is capped at [`MAX_DEPTH`] levels and the output (counting
//! the branches that are evaluated and then dropped) at [`MAX_OUTPUT`] bytes, and the work is
//! linear in the input plus the output.

pub(crate) mod dotenv;

use dotenv::DotEnv;

/// Deepest nesting of `${…}` inside `${…}`.
pub(crate) const MAX_DEPTH: usize = 32;

/// Largest interpolated output, in bytes, of one call.
pub(crate) const MAX_OUTPUT: usize = 1 << 20;

/// Longest excerpt of the input quoted in an error message, in characters.
const MAX_EXCERPT: usize = 80;

/// A variable's value, and whether it came from the host's (uncommitted) `.env`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Found<'a> {
    /// The value; may be empty, which is different from unset.
    pub value: &'a str,
    /// True when the value came from the host's `.env`, which is treated as secret.
    pub secret: bool,
}

/// Where interpolation finds variables: the host's `.env` (secret, highest precedence),
/// then the committed `.env`. Nothing else, in particular not the process environment.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Lookup<'a> {
    host: Option<&'a DotEnv>,
    committed: Option<&'a DotEnv>,
}

impl<'a> Lookup<'a> {
    /// A lookup over the host's `.env` and the committed `.env`, either of which may be absent.
    pub(crate) fn new(host: Option<&'a DotEnv>, committed: Option<&'a DotEnv>) -> Self {
        Self { host, committed }
    }

    #[cfg(test)]
    /// A lookup in which every variable is unset.
    pub(crate) fn empty() -> Self {
        Self::default()
    }

    /// The value of `name`: from the host's `.env` if it sets it, else from the committed one.
    pub(crate) fn get(&self, name: &str) -> Option<Found<'a>> {
        let host = self.host.and_then(|env| env.get(name)).map(|value| Found {
            value,
            secret: true,
        });
        host.or_else(|| {
            self.committed
                .and_then(|env| env.get(name))
                .map(|value| Found {
                    value,
                    secret: false,
                })
        })
    }
}

/// What the engine asks for a variable; implemented by [`Lookup`] and, inside
/// [`dotenv`], by the entries parsed so far.
trait Resolve {
    fn resolve(&self, name: &str) -> Option<Found<'_>>;
}

impl Resolve for Lookup<'_> {
    fn resolve(&self, name: &str) -> Option<Found<'_>> {
        self.get(name)
    }
}

/// The result of interpolating one string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Interpolated {
    /// The text with every expression replaced.
    pub value: String,
    /// Variables that were referenced without a default and are unset; each became `""`.
    pub unset: Vec<Unset>,
    /// True when a variable from the host's `.env` was read to produce `value`, so the
    /// value must be treated as secret (masked in output, not written to logs).
    pub used_secret: bool,
    /// The values of the host's `.env` variables that were read, in the order read.
    pub secrets: Vec<String>,
}

/// A reference to an unset variable that has no default, e.g. `$TAG` or `${TAG}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Unset {
    /// The variable's name.
    pub name: String,
    /// Byte offset of the reference's `$` in the input.
    pub offset: usize,
}

/// Interpolation failed: a syntax error, a `${VAR:?message}` whose variable is missing, or a
/// limit was exceeded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub(crate) struct InterpolationError {
    /// Byte offset in the input of the `$` that starts the offending expression.
    pub offset: usize,
    /// Length in bytes of the offending expression (as far as it could be delimited).
    pub len: usize,
    /// What is wrong and what to do.
    pub message: String,
}

/// Interpolates `text` with the variables of `vars`.
///
/// # Errors
/// A malformed expression, a required variable (`:?` / `?`) that is missing, nesting deeper
/// than [`MAX_DEPTH`] or an output longer than [`MAX_OUTPUT`].
pub(crate) fn interpolate(
    text: &str,
    vars: &Lookup<'_>,
) -> Result<Interpolated, InterpolationError> {
    interpolate_with(text, vars, MAX_OUTPUT)
}

/// [`interpolate`] with any source of variables and an output limit.
fn interpolate_with(
    text: &str,
    vars: &dyn Resolve,
    limit: usize,
) -> Result<Interpolated, InterpolationError> {
    if !text.contains('$') {
        if text.len() > limit {
            return Err(too_long(0, limit));
        }
        return Ok(Interpolated {
            value: text.to_string(),
            unset: Vec::new(),
            used_secret: false,
            secrets: Vec::new(),
        });
    }
    let mut engine = Engine {
        text,
        vars,
        produced: 0,
        limit,
    };
    let mut out = Out::default();
    // At the top level a scan only stops at the end of the text.
    engine.scan(0, 0, Mode::Top, &mut out)?;
    Ok(Interpolated {
        value: out.value,
        unset: out.unset,
        used_secret: out.secret,
        secrets: out.secrets,
    })
}

/// Output of one (possibly nested) piece of text, kept apart until it is known to be used.
#[derive(Debug, Default)]
struct Out {
    value: String,
    unset: Vec<Unset>,
    secret: bool,
    secrets: Vec<String>,
}

impl Out {
    /// Appends a branch that is used.
    fn absorb(&mut self, other: Out) {
        self.value.push_str(&other.value);
        self.unset.extend(other.unset);
        self.secret |= other.secret;
        self.secrets.extend(other.secrets);
    }

    /// Notes that `found` was read.
    fn read(&mut self, found: Found<'_>) {
        if found.secret {
            self.secret = true;
            self.secrets.push(found.value.to_string());
        }
    }
}

/// Whether a scan is of the whole text or of the word after an operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Top,
    Word,
}

/// Where a scan stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum End {
    /// The end of the text.
    Text,
    /// The `}` at this offset closes the enclosing expression.
    Brace(usize),
    /// A line break at this offset came before the closing `}`.
    LineBreak(usize),
}

/// The operator of a braced expression.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    /// `:-` (colon) or `-`: the word when the variable is unset (or empty).
    Default,
    /// `:?` or `?`: an error with the word as message when unset (or empty).
    Required,
    /// `:+` or `+`: the word when the variable is set (and not empty).
    Alternative,
}

struct Engine<'t, 'v> {
    text: &'t str,
    vars: &'v dyn Resolve,
    /// Bytes produced so far, including branches that were dropped.
    produced: usize,
    limit: usize,
}

impl Engine<'_, '_> {
    /// Copies text from `pos` into `out`, replacing expressions, until the end of the text
    /// (`Mode::Top`) or the `}` closing the enclosing expression (`Mode::Word`).
    fn scan(
        &mut self,
        mut pos: usize,
        depth: usize,
        mode: Mode,
        out: &mut Out,
    ) -> Result<End, InterpolationError> {
        let bytes = self.text.as_bytes();
        let mut braces = 0usize;
        let mut literal = pos;
        while pos < bytes.len() {
            match bytes[pos] {
                b'$' => {
                    self.push(out, literal, pos)?;
                    pos = self.dollar(pos, depth, out)?;
                    literal = pos;
                }
                b'{' if mode == Mode::Word => {
                    braces += 1;
                    pos += 1;
                }
                b'}' if mode == Mode::Word => {
                    if braces == 0 {
                        self.push(out, literal, pos)?;
                        return Ok(End::Brace(pos));
                    }
                    braces -= 1;
                    pos += 1;
                }
                b'\n' if mode == Mode::Word => return Ok(End::LineBreak(pos)),
                _ => pos += 1,
            }
        }
        self.push(out, literal, pos)?;
        Ok(End::Text)
    }

    /// Appends the literal text `start..end` of the input.
    fn push(&mut self, out: &mut Out, start: usize, end: usize) -> Result<(), InterpolationError> {
        let text = self.text;
        self.produce(out, &text[start..end], start)
    }

    /// Appends `s`, counting it against the output limit; `at` is blamed when it is exceeded.
    fn produce(&mut self, out: &mut Out, s: &str, at: usize) -> Result<(), InterpolationError> {
        self.produced += s.len();
        if self.produced > self.limit {
            return Err(too_long(at, self.limit));
        }
        out.value.push_str(s);
        Ok(())
    }

    /// Handles the `$` at `pos`; returns the offset after what it consumed.
    fn dollar(
        &mut self,
        pos: usize,
        depth: usize,
        out: &mut Out,
    ) -> Result<usize, InterpolationError> {
        let bytes = self.text.as_bytes();
        match bytes.get(pos + 1) {
            Some(b'$') => {
                self.produce(out, "$", pos)?;
                Ok(pos + 2)
            }
            Some(b'{') => self.braced(pos, depth, out),
            Some(&c) if is_name_start(c) => {
                let end = name_end(bytes, pos + 1);
                let name = &self.text[pos + 1..end];
                self.plain(name, pos, out)?;
                Ok(end)
            }
            _ => {
                self.produce(out, "$", pos)?;
                Ok(pos + 1)
            }
        }
    }

    /// Substitutes a variable without operator (`$NAME` or `${NAME}` starting at `at`).
    fn plain(&mut self, name: &str, at: usize, out: &mut Out) -> Result<(), InterpolationError> {
        let vars = self.vars;
        match vars.resolve(name) {
            Some(found) => {
                out.read(found);
                self.produce(out, found.value, at)
            }
            None => {
                out.unset.push(Unset {
                    name: name.to_string(),
                    offset: at,
                });
                Ok(())
            }
        }
    }

    /// Handles the `${` at `start`; returns the offset after its closing `}`.
    fn braced(
        &mut self,
        start: usize,
        depth: usize,
        out: &mut Out,
    ) -> Result<usize, InterpolationError> {
        if depth >= MAX_DEPTH {
            return Err(self.error(
                start,
                format!(
                    "{}: expressions are nested more than {MAX_DEPTH} deep; simplify the default",
                    self.excerpt(start)
                ),
            ));
        }
        let bytes = self.text.as_bytes();
        let name_start = start + 2;
        if name_start >= bytes.len() {
            return Err(self.unclosed(start));
        }
        if !bytes.get(name_start).is_some_and(|&c| is_name_start(c)) {
            return Err(self.invalid(
                start,
                "a variable name starts with a letter or `_`; write `$$` for a literal `$`",
            ));
        }
        let name_end = name_end(bytes, name_start);
        let name = &self.text[name_start..name_end];
        match bytes.get(name_end) {
            Some(b'}') => {
                self.plain(name, start, out)?;
                return Ok(name_end + 1);
            }
            None => return Err(self.unclosed(start)),
            Some(_) => {}
        }
        let colon = bytes[name_end] == b':';
        let op_at = name_end + usize::from(colon);
        let Some(op) = bytes.get(op_at).copied().and_then(operator) else {
            if op_at >= bytes.len() {
                return Err(self.unclosed(start));
            }
            return Err(self.invalid(
                start,
                "a name is followed by `}`, `:-`, `-`, `:?`, `?`, `:+` or `+`; \
                 write `$$` for a literal `$`",
            ));
        };
        let word_start = op_at + 1;
        let mut word = Out::default();
        let close = match self.scan(word_start, depth + 1, Mode::Word, &mut word)? {
            End::Brace(close) => close,
            End::Text => return Err(self.unclosed(start)),
            End::LineBreak(_) => {
                return Err(self.invalid(
                    start,
                    "an expression ends on the line it starts; close it with `}`",
                ))
            }
        };
        let expr = Expr {
            start,
            close,
            name,
            op,
            colon,
            word_start,
        };
        self.apply(&expr, word, out)?;
        Ok(close + 1)
    }

    /// Evaluates an operator expression whose word has been interpolated into `word`.
    fn apply(
        &mut self,
        expr: &Expr<'_>,
        word: Out,
        out: &mut Out,
    ) -> Result<(), InterpolationError> {
        let vars = self.vars;
        let found = vars.resolve(expr.name);
        if let Some(f) = found {
            out.read(f);
        }
        // "set" for the plain operators; "set and not empty" with a colon.
        let present = found.is_some_and(|f| !expr.colon || !f.value.is_empty());
        let value = found.map_or("", |f| f.value);
        match (expr.op, present) {
            (Op::Default, true) | (Op::Required, true) | (Op::Alternative, false) => {
                self.produce(out, value, expr.start)
            }
            (Op::Default, false) | (Op::Alternative, true) => {
                out.absorb(word);
                Ok(())
            }
            (Op::Required, false) => Err(self.required(expr, &word)),
        }
    }

    /// The error of a `${NAME:?message}` or `${NAME?message}` whose variable is missing.
    fn required(&self, expr: &Expr<'_>, word: &Out) -> InterpolationError {
        // A message built from a secret value is quoted as written, not as interpolated.
        let message = if word.secret {
            &self.text[expr.word_start..expr.close]
        } else {
            word.value.as_str()
        };
        let state = if expr.colon {
            "is not set or is empty"
        } else {
            "is not set"
        };
        let advice = if message.is_empty() {
            "set it in the host's .env or the committed .env".to_string()
        } else {
            truncate(message)
        };
        InterpolationError {
            offset: expr.start,
            len: expr.close + 1 - expr.start,
            message: format!(
                "{}: {} {state}: {advice}",
                self.excerpt(expr.start),
                expr.name
            ),
        }
    }

    /// A syntax error in the expression starting at `start`.
    fn invalid(&self, start: usize, what: &str) -> InterpolationError {
        self.error(
            start,
            format!("invalid interpolation {}: {what}", self.excerpt(start)),
        )
    }

    /// The `${` at `start` has no closing `}`.
    fn unclosed(&self, start: usize) -> InterpolationError {
        self.error(
            start,
            format!(
                "invalid interpolation {}: `${{` is not closed; add `}}`, or write `$$` for a literal `$`",
                self.excerpt(start)
            ),
        )
    }

    /// An error covering the expression that starts at `start`.
    fn error(&self, start: usize, message: String) -> InterpolationError {
        InterpolationError {
            offset: start,
            len: self.extent(start) - start,
            message,
        }
    }

    /// The end of the expression starting at `start`: after its balancing `}`, or at the end
    /// of its line. Only used to delimit errors.
    fn extent(&self, start: usize) -> usize {
        let bytes = self.text.as_bytes();
        let mut open = 0usize;
        for (i, &c) in bytes.iter().enumerate().skip(start + 1) {
            match c {
                b'{' => open += 1,
                b'}' => {
                    open = open.saturating_sub(1);
                    if open == 0 {
                        return i + 1;
                    }
                }
                b'\n' => return i,
                _ => {}
            }
        }
        bytes.len()
    }

    /// The expression starting at `start`, quoted in backticks and shortened if long.
    fn excerpt(&self, start: usize) -> String {
        format!("`{}`", truncate(&self.text[start..self.extent(start)]))
    }
}

/// A parsed `${NAME<op>word}`.
struct Expr<'t> {
    /// Offset of the `$`.
    start: usize,
    /// Offset of the closing `}`.
    close: usize,
    name: &'t str,
    op: Op,
    /// True for `:-`, `:?`, `:+` (empty counts as unset).
    colon: bool,
    /// Offset of the word after the operator.
    word_start: usize,
}

/// The error of an output longer than `limit`.
fn too_long(at: usize, limit: usize) -> InterpolationError {
    InterpolationError {
        offset: at,
        len: 0,
        message: format!(
            "the interpolated value is longer than {limit} bytes; shorten the variables it uses"
        ),
    }
}

/// The operator whose character is `c`.
fn operator(c: u8) -> Option<Op> {
    match c {
        b'-' => Some(Op::Default),
        b'?' => Some(Op::Required),
        b'+' => Some(Op::Alternative),
        _ => None,
    }
}

/// True for the first character of a name: `[A-Za-z_]`.
fn is_name_start(c: u8) -> bool {
    c.is_ascii_alphabetic() || c == b'_'
}

/// The offset after the name that starts at `start` (`[A-Za-z0-9_]*`).
fn name_end(bytes: &[u8], start: usize) -> usize {
    bytes[start..]
        .iter()
        .position(|&c| !(c.is_ascii_alphanumeric() || c == b'_'))
        .map_or(bytes.len(), |n| start + n)
}

/// `s` cut to [`MAX_EXCERPT`] characters, with `…` when cut.
fn truncate(s: &str) -> String {
    match s.char_indices().nth(MAX_EXCERPT) {
        Some((cut, _)) => format!("{}…", &s[..cut]),
        None => s.to_string(),
    }
}

#[cfg(test)]
mod tests;
