//! Diagnostics: what is wrong with the desired state, where, and what to do about it.

use std::fmt;

use super::limits::MAX_EXCERPT_CHARS;

/// The longest name quoted whole in a message; longer ones are cut with `…`.
const MAX_QUOTED_CHARS: usize = 64;

/// How serious a diagnostic is. Errors make the desired state invalid; warnings are printed
/// and do not fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// The input cannot be applied.
    Error,
    /// The input is valid, but probably not what the operator meant.
    Warning,
}

/// A position in one input file; line and column are 1-based.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Location {
    /// The file as it was named to berth (repository-relative for a repository).
    pub file: String,
    /// 1-based line.
    pub line: usize,
    /// 1-based column.
    pub col: usize,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.file, self.line, self.col)
    }
}

/// One problem found in the desired state.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Diagnostic {
    /// Error or warning.
    pub severity: Severity,
    /// Where the offending key or value is.
    pub location: Location,
    /// The key path, e.g. `services.api.update.order`; empty for the document itself.
    pub path: String,
    /// What is wrong and what to do, in one sentence or two.
    pub message: String,
    /// The offending source line (at most [`MAX_EXCERPT_CHARS`] of it, around the
    /// column), for rendering a caret under it.
    #[serde(skip)]
    pub source_line: Option<String>,
    /// The 1-based column of the caret in `source_line`.
    #[serde(skip)]
    pub source_col: usize,
}

impl Diagnostic {
    /// True for errors.
    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }

    /// The one-line form, stable for scripts: `file:line:col: error: path: message`.
    pub fn headline(&self) -> String {
        let sev = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        if self.path.is_empty() {
            format!("{}: {sev}: {}", self.location, self.message)
        } else {
            format!("{}: {sev}: {}: {}", self.location, self.path, self.message)
        }
    }

    /// The headline followed by the source line with a caret under the column.
    pub fn render(&self) -> String {
        let mut out = self.headline();
        if let Some(src) = &self.source_line {
            let num = self.location.line.to_string();
            let pad = " ".repeat(num.len());
            let caret_pad: String = src
                .chars()
                .take(self.source_col.saturating_sub(1))
                .map(|c| if c == '\t' { '\t' } else { ' ' })
                .collect();
            out.push_str(&format!(
                "\n {pad} |\n {num} | {src}\n {pad} | {caret_pad}^"
            ));
        }
        out
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.headline())
    }
}

/// Every diagnostic of one load, errors and warnings together, in input order.
#[derive(Debug, Clone, Default, serde::Serialize)]
#[serde(transparent)]
pub struct Diagnostics(pub Vec<Diagnostic>);

impl Diagnostics {
    /// True when at least one diagnostic is an error.
    pub fn has_errors(&self) -> bool {
        self.0.iter().any(Diagnostic::is_error)
    }

    /// The errors alone.
    pub fn errors(&self) -> impl Iterator<Item = &Diagnostic> {
        self.0.iter().filter(|d| d.is_error())
    }

    /// The warnings alone.
    pub fn warnings(&self) -> impl Iterator<Item = &Diagnostic> {
        self.0.iter().filter(|d| !d.is_error())
    }

    /// Sorts by file, line and column so output is stable.
    pub fn sort(&mut self) {
        self.0.sort_by(|a, b| {
            (
                &a.location.file,
                a.location.line,
                a.location.col,
                a.severity,
            )
                .cmp(&(
                    &b.location.file,
                    b.location.line,
                    b.location.col,
                    b.severity,
                ))
        });
    }

    /// "2 errors, 1 warning".
    pub fn summary(&self) -> String {
        let e = self.errors().count();
        let w = self.warnings().count();
        let plural = |n: usize, word: &str| {
            if n == 1 {
                format!("1 {word}")
            } else {
                format!("{n} {word}s")
            }
        };
        format!("{}, {}", plural(e, "error"), plural(w, "warning"))
    }
}

impl fmt::Display for Diagnostics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for d in &self.0 {
            writeln!(f, "{}", d.render())?;
        }
        Ok(())
    }
}

/// The part of a source line quoted under a diagnostic at 1-based `col`: at most
/// [`MAX_EXCERPT_CHARS`] characters around the column, `…` where it is cut, control
/// characters shown as `�`. Returns the excerpt and the caret's column in it.
pub fn excerpt(line: &str, col: usize) -> (String, usize) {
    let len = line.chars().count();
    let start = if len <= MAX_EXCERPT_CHARS {
        0
    } else {
        col.saturating_sub(1 + MAX_EXCERPT_CHARS / 2)
            .min(len - MAX_EXCERPT_CHARS)
    };
    let mut out = String::new();
    if start > 0 {
        out.push('…');
    }
    out.extend(
        line.chars()
            .skip(start)
            .take(MAX_EXCERPT_CHARS)
            .map(printable),
    );
    if start + MAX_EXCERPT_CHARS < len {
        out.push('…');
    }
    let caret = col.saturating_sub(start) + usize::from(start > 0);
    (out, caret.max(1))
}

/// A name from the input as quoted in a message: at most [`MAX_QUOTED_CHARS`]
/// characters, control characters shown as `�`.
pub fn shown(name: &str) -> String {
    let mut out: String = name.chars().take(MAX_QUOTED_CHARS).map(printable).collect();
    if name.chars().nth(MAX_QUOTED_CHARS).is_some() {
        out.push('…');
    }
    out
}

/// Keeps a terminal's escape sequences out of what berth prints.
fn printable(c: char) -> char {
    if c.is_control() && c != '\t' {
        '\u{fffd}'
    } else {
        c
    }
}

/// The valid key nearest to a misspelt one, when it is near enough to be a likely typo.
/// Words longer than any plausible key get no suggestion (the comparison is quadratic).
pub fn nearest<'a>(word: &str, candidates: &[&'a str]) -> Option<&'a str> {
    if word.len() > MAX_QUOTED_CHARS {
        return None;
    }
    candidates
        .iter()
        .filter(|c| c.len() <= MAX_QUOTED_CHARS)
        .map(|c| (strsim::damerau_levenshtein(word, c), *c))
        .filter(|(d, c)| *d <= 2.max(c.len() / 3))
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn excerpts_are_bounded_and_keep_the_caret() {
        assert_eq!(excerpt("  a: 1", 3), ("  a: 1".to_string(), 3));
        let long = "x".repeat(1000);
        let (text, caret) = excerpt(&long, 500);
        assert_eq!(text.chars().count(), MAX_EXCERPT_CHARS + 2);
        assert!(text.starts_with('…') && text.ends_with('…'));
        assert_eq!(caret, 102);
        let (text, caret) = excerpt(&long, 1);
        assert_eq!((text.chars().count(), caret), (MAX_EXCERPT_CHARS + 1, 1));
        let (text, caret) = excerpt(&long, 1000);
        assert_eq!((text.chars().count(), caret), (MAX_EXCERPT_CHARS + 1, 201));
        assert_eq!(excerpt("a\x1b[2Jb", 1).0, "a\u{fffd}[2Jb");
    }

    #[test]
    fn long_names_are_cut() {
        assert_eq!(shown("api"), "api");
        assert_eq!(shown(&"k".repeat(100)), format!("{}…", "k".repeat(64)));
    }

    #[test]
    fn nearest_finds_typos() {
        let keys = ["replicas", "image", "command", "env", "env_file"];
        assert_eq!(nearest("replica", &keys), Some("replicas"));
        assert_eq!(nearest("imgae", &keys), Some("image"));
        assert_eq!(nearest("envfile", &keys), Some("env_file"));
        assert_eq!(nearest("zzzzzzzz", &keys), None);
    }

    #[test]
    fn render_puts_caret_under_column() {
        let d = Diagnostic {
            severity: Severity::Error,
            location: Location {
                file: "berth.yaml".into(),
                line: 7,
                col: 5,
            },
            path: "services.api.replica".into(),
            message: "unknown key `replica`; did you mean `replicas`?".into(),
            source_line: Some("    replica: 2".into()),
            source_col: 5,
        };
        assert_eq!(
            d.render(),
            "berth.yaml:7:5: error: services.api.replica: unknown key `replica`; did you mean `replicas`?\n   |\n 7 |     replica: 2\n   |     ^"
        );
    }
}
