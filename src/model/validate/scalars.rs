//! Readers of single values (strings, whole numbers, durations, lists of strings) that
//! report what they found and what they expected. The compose reader uses them too, so
//! a value means the same in both formats.

use std::time::Duration;

use serde_yaml::Value;

use super::super::context::{kind, Ctx};
use super::super::diagnostic::shown;
use super::super::location::KeyPath;
use super::super::units::{format_duration, parse_duration, UnitError};

/// A string value; anything else is reported with `example` as the form to write.
pub(crate) fn string(
    ctx: &mut Ctx,
    file: usize,
    path: &KeyPath,
    v: &Value,
    example: &str,
) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        other => {
            ctx.error(
                file,
                path,
                format!(
                    "expected a string such as `{example}`; found {}",
                    kind(other)
                ),
            );
            None
        }
    }
}

/// A scalar rendered as a string (env values may be written as numbers or booleans).
pub(crate) fn scalar(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// A whole number from `min` to `max`, both included.
pub(crate) fn integer(
    ctx: &mut Ctx,
    file: usize,
    path: &KeyPath,
    v: &Value,
    min: i64,
    max: i64,
) -> Option<i64> {
    let n = match v {
        Value::Number(n) => n.as_i64(),
        _ => None,
    };
    match n {
        Some(n) if (min..=max).contains(&n) => Some(n),
        Some(n) => {
            ctx.error(
                file,
                path,
                format!("{n} is out of range; use a whole number from {min} to {max}"),
            );
            None
        }
        None => {
            ctx.error(
                file,
                path,
                format!(
                    "expected a whole number from {min} to {max}; found {}",
                    describe(v)
                ),
            );
            None
        }
    }
}

/// A value as a message quotes it: a string or a number with its text (bounded), any
/// other value by its kind.
pub(crate) fn describe(v: &Value) -> String {
    match v {
        Value::String(s) => format!("the string `{}`", shown(s)),
        Value::Number(n) => format!("the number {n}"),
        other => kind(other).to_string(),
    }
}

/// A duration such as `10s` or `1m30s` from `min` to `max`; a bare number is read as
/// the same text.
pub(crate) fn duration(
    ctx: &mut Ctx,
    file: usize,
    path: &KeyPath,
    v: &Value,
    min: Duration,
    max: Duration,
) -> Option<Duration> {
    let text = match v {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        other => {
            ctx.error(
                file,
                path,
                format!("expected a duration such as `10s`; found {}", kind(other)),
            );
            return None;
        }
    };
    match parse_duration(&text) {
        Ok(d) if d >= min && d <= max => Some(d),
        Ok(_) | Err(UnitError::TooLarge(_)) => {
            ctx.error(
                file,
                path,
                format!(
                    "duration `{}` is out of range; use {} to {}",
                    shown(&text),
                    format_duration(min),
                    format_duration(max)
                ),
            );
            None
        }
        Err(e) => {
            ctx.error(file, path, e.to_string());
            None
        }
    }
}

/// A list of scalars (`what` names the key in messages, `example` shows the form). A
/// string where a list belongs is reported with the list it probably meant.
pub(crate) fn string_list(
    ctx: &mut Ctx,
    file: usize,
    path: &KeyPath,
    v: &Value,
    what: &str,
    example: &str,
) -> Option<Vec<String>> {
    let Value::Sequence(items) = v else {
        let hint = match v {
            Value::String(s) => format!("; write it as a list, e.g. {}", as_list(s)),
            _ => String::new(),
        };
        ctx.error(
            file,
            path,
            format!(
                "{what} must be a list such as {example}; found {}{hint}",
                kind(v)
            ),
        );
        return None;
    };
    let mut out = Vec::new();
    let mut ok = true;
    for (i, item) in items.iter().enumerate() {
        match scalar(item) {
            Some(s) => out.push(s),
            None => {
                ctx.error(
                    file,
                    &path.index(i),
                    format!("each item of {what} must be a string; found {}", kind(item)),
                );
                ok = false;
            }
        }
    }
    ok.then_some(out)
}

/// The words of `s` written as a YAML flow list: `a b` → `["a", "b"]`.
fn as_list(s: &str) -> String {
    let words: Vec<String> = s.split_whitespace().map(|w| format!("\"{w}\"")).collect();
    format!("[{}]", words.join(", "))
}
