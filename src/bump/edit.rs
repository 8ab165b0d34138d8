//! The text of a bump: what the image scalar becomes, or which `.env` variable it reads
//! and what that variable becomes. Pure functions of strings.

use crate::model::ImageRef;

/// What the operator asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Target {
    /// Only the tag: `sha-3f2c1e9`. The repository stays.
    Tag(String),
    /// A whole reference: `registry.example.com/api:sha-3f2c1e9`.
    Image(ImageRef),
}

impl Target {
    /// An argument without `/`, `:` or `@` is a tag; anything else a whole reference.
    pub(crate) fn parse(arg: &str) -> Result<Self, String> {
        if arg.contains(['/', ':', '@']) {
            let image = ImageRef::parse(arg)?;
            if image.tag.is_none() && image.digest.is_none() {
                return Err(format!(
                    "`{arg}` names no tag; write `{arg}:TAG` (berth refuses `latest`)"
                ));
            }
            return Ok(Self::Image(image));
        }
        // The tag rules are the reference's: check them on a stand-in repository.
        ImageRef::parse(&format!("x:{arg}"))?;
        if arg == "latest" {
            return Err("`latest` names no release; bump to an immutable tag".into());
        }
        Ok(Self::Tag(arg.to_string()))
    }

    /// The reference a service running `old` runs after the bump.
    pub(crate) fn applied_to(&self, old: &ImageRef) -> Result<ImageRef, String> {
        match self {
            Self::Tag(tag) => ImageRef::parse(&format!("{}:{tag}", old.repository)),
            Self::Image(image) => Ok(image.clone()),
        }
    }
}

/// How an image scalar is written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Written {
    /// No interpolation: the scalar itself is edited.
    Literal,
    /// `${API_IMAGE}`: the variable holds the whole reference.
    WholeVar(String),
    /// `registry/api:${API_TAG}`: the variable holds the tag.
    TagVar(String),
}

/// How `value` (the scalar before interpolation) is written. Refuses forms a bump
/// cannot edit without guessing.
pub(crate) fn classify(value: &str) -> Result<Written, String> {
    if !value.contains('$') {
        return Ok(Written::Literal);
    }
    let unsupported = || {
        format!(
            "the image is written `{value}`; berth bump edits an image written literally, \
             as one variable (`${{API_IMAGE}}`) or as `repository:${{API_TAG}}`; edit \
             this one by hand"
        )
    };
    if let Some(name) = whole_var(value) {
        return Ok(Written::WholeVar(name));
    }
    // The tag's colon: the last one outside `${…}`.
    let mut depth = 0usize;
    let mut cut = None;
    let bytes = value.as_bytes();
    for (i, b) in bytes.iter().enumerate() {
        match b {
            b'{' if i > 0 && bytes[i - 1] == b'$' => depth += 1,
            b'}' => depth = depth.saturating_sub(1),
            b':' if depth == 0 => cut = Some(i),
            _ => {}
        }
    }
    let cut = cut.ok_or_else(unsupported)?;
    let (head, tail) = (&value[..cut], &value[cut + 1..]);
    // A registry port (`host:5000/name`) is not a tag.
    if tail.contains('/') || head.is_empty() {
        return Err(unsupported());
    }
    match whole_var(tail) {
        Some(name) => Ok(Written::TagVar(name)),
        None => Err(unsupported()),
    }
}

/// The variable of `$NAME`, `${NAME}` or `${NAME:-default}` (also `-`, `:?`, `?`) when
/// that expression is all of `text`.
fn whole_var(text: &str) -> Option<String> {
    let valid = |n: &str| {
        n.chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && n.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
    };
    if let Some(inner) = text.strip_prefix("${").and_then(|t| t.strip_suffix('}')) {
        let end = inner
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(inner.len());
        let (name, op) = inner.split_at(end);
        let op_ok = op.is_empty()
            || ["-", ":-", "?", ":?"].iter().any(|o| op.starts_with(o))
                && !op.contains(['$', '{', '}']);
        return (valid(name) && op_ok).then(|| name.to_string());
    }
    let name = text.strip_prefix('$')?;
    valid(name).then(|| name.to_string())
}

/// The scalar's new value when the image is written literally.
pub(crate) fn literal(old_value: &str, target: &Target) -> Result<String, String> {
    let old = ImageRef::parse(old_value)?;
    Ok(target.applied_to(&old)?.full)
}

/// The new value of the variable an image reads, given the image it resolved to.
pub(crate) fn variable(
    written: &Written,
    resolved: &ImageRef,
    target: &Target,
) -> Result<String, String> {
    let new = target.applied_to(resolved)?;
    match written {
        Written::Literal => Ok(new.full),
        Written::WholeVar(_) => Ok(new.full),
        Written::TagVar(name) => match (target, &new.tag, &new.digest) {
            (Target::Tag(tag), _, _) => Ok(tag.clone()),
            (Target::Image(_), Some(tag), None) if new.repository == resolved.repository => {
                Ok(tag.clone())
            }
            _ => Err(format!(
                "the image is `{}:${{{name}}}` and only its tag can change: pass the tag \
                 alone (not `{}`)",
                resolved.repository, new.full
            )),
        },
    }
}

/// `text` (a `.env` file) with `name` set to `value`: the last line setting it is
/// edited in place (an `export ` prefix, the quotes and a trailing comment kept), or
/// a line is added at the end. Also the 1-based line edited, `None` when added.
pub(crate) fn set_dotenv(text: &str, name: &str, value: &str) -> (String, Option<usize>) {
    let mut found = None;
    let mut offset = 0;
    for (i, line) in text.split_inclusive('\n').enumerate() {
        if let Some(span) = dotenv_value_span(line, name) {
            found = Some((i + 1, offset + span.start..offset + span.end));
        }
        offset += line.len();
    }
    match found {
        Some((line, span)) => {
            let mut out = String::with_capacity(text.len() + value.len());
            out.push_str(&text[..span.start]);
            out.push_str(value);
            out.push_str(&text[span.end..]);
            (out, Some(line))
        }
        None => {
            let mut out = text.to_string();
            if !out.is_empty() && !out.ends_with('\n') {
                out.push('\n');
            }
            out.push_str(&format!("{name}={value}\n"));
            (out, None)
        }
    }
}

/// The bytes of the value (inside its quotes, if any) when `line` sets `name`.
fn dotenv_value_span(line: &str, name: &str) -> Option<std::ops::Range<usize>> {
    let body = line.trim_end_matches(['\n', '\r']);
    let lead = body.len() - body.trim_start().len();
    let mut at = lead;
    if let Some(rest) = body[at..].strip_prefix("export ") {
        at = body.len() - rest.trim_start().len();
    }
    let rest = body[at..].strip_prefix(name)?;
    let eq = rest.len() - rest.trim_start().len();
    let after = rest[eq..].strip_prefix('=')?;
    let mut start = body.len() - after.len();
    start += after.len() - after.trim_start_matches([' ', '\t']).len();
    let value = &body[start..];
    match value.chars().next() {
        Some(q @ ('\'' | '"')) => {
            let close = value[1..].find(q)?;
            Some(start + 1..start + 1 + close)
        }
        _ => {
            let end = value.find(" #").unwrap_or(value.len());
            Some(start..start + value[..end].trim_end().len())
        }
    }
}
