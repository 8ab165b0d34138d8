//! Durations (`500ms`, `10s`, `2m`, `1h30m`) and sizes (`512m`, `1g`) as written in the
//! desired state.

use std::time::Duration;

/// Why a duration or size was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum UnitError {
    /// Not written the way the format says; the message says how to write it.
    #[error("{0}")]
    Invalid(String),
    /// Well written, but larger than berth can represent (the text is quoted).
    #[error("`{0}` is too large")]
    TooLarge(String),
}

impl From<String> for UnitError {
    fn from(message: String) -> Self {
        Self::Invalid(message)
    }
}

impl From<&str> for UnitError {
    fn from(message: &str) -> Self {
        Self::Invalid(message.to_string())
    }
}

/// Parses a duration written as one or more `<number><unit>` parts, unit one of
/// `ms`, `s`, `m`, `h`. A bare number is refused: the unit is never guessed; so is a
/// duration longer than [`Duration`] holds, never rounded or wrapped.
pub(crate) fn parse_duration(text: &str) -> Result<Duration, UnitError> {
    let s = text.trim();
    if s.is_empty() {
        return Err("empty duration; write e.g. `10s`, `500ms`, `2m` or `1h30m`".into());
    }
    if s.chars().all(|c| c.is_ascii_digit()) {
        return Err(UnitError::Invalid(format!(
            "duration `{s}` has no unit; write e.g. `{s}s` (units: ms, s, m, h)"
        )));
    }
    let mut total = Duration::ZERO;
    let mut rest = s;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit() && c != '.')
            .unwrap_or(rest.len());
        if digits == 0 {
            return Err(UnitError::Invalid(format!(
                "invalid duration `{s}`; write e.g. `10s`, `500ms`, `2m` or `1h30m`"
            )));
        }
        let number: f64 = rest[..digits]
            .parse()
            .map_err(|_| format!("invalid number in duration `{s}`"))?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let unit = &rest[..unit_len];
        rest = &rest[unit_len..];
        let secs = match unit {
            "ms" => number / 1000.0,
            "s" => number,
            "m" => number * 60.0,
            "h" => number * 3600.0,
            "" => {
                return Err(UnitError::Invalid(format!(
                    "duration `{s}` ends without a unit; units: ms, s, m, h"
                )))
            }
            other => {
                return Err(UnitError::Invalid(format!(
                    "unknown unit `{other}` in duration `{s}`; units: ms, s, m, h"
                )))
            }
        };
        total = Duration::try_from_secs_f64(secs)
            .ok()
            .and_then(|part| total.checked_add(part))
            .ok_or_else(|| UnitError::TooLarge(s.to_string()))?;
    }
    Ok(total)
}

/// Renders a duration the way it is written in the desired state.
pub(crate) fn format_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if !ms.is_multiple_of(1000) {
        return format!("{ms}ms");
    }
    let s = ms / 1000;
    if s != 0 && s.is_multiple_of(3600) {
        format!("{}h", s / 3600)
    } else if s != 0 && s.is_multiple_of(60) {
        format!("{}m", s / 60)
    } else {
        format!("{s}s")
    }
}

/// Parses a size in bytes: a number with an optional unit `b`, `k`, `m`, `g` (binary
/// multiples; `kb`/`kib` and friends are accepted too). A size above `u64::MAX` bytes
/// is refused, never rounded or wrapped.
pub(crate) fn parse_size(text: &str) -> Result<u64, UnitError> {
    let s = text.trim().to_ascii_lowercase();
    let split = s
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let number: f64 = num
        .parse()
        .map_err(|_| format!("invalid size `{text}`; write e.g. `512m` or `1g`"))?;
    let mult: u64 = match unit.trim() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        "g" | "gb" | "gib" => 1 << 30,
        "t" | "tb" | "tib" => 1 << 40,
        other => {
            return Err(UnitError::Invalid(format!(
                "unknown unit `{other}` in size `{text}`; units: b, k, m, g, t"
            )))
        }
    };
    let bytes = number * mult as f64;
    // `u64::MAX as f64` rounds up to 2^64, which no u64 holds: refuse from there on.
    if !bytes.is_finite() || bytes >= u64::MAX as f64 {
        return Err(UnitError::TooLarge(text.trim().to_string()));
    }
    Ok(bytes as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(
            parse_duration("10"),
            Err(UnitError::Invalid(
                "duration `10` has no unit; write e.g. `10s` (units: ms, s, m, h)".into()
            ))
        );
        assert_eq!(
            parse_duration("10d"),
            Err(UnitError::Invalid(
                "unknown unit `d` in duration `10d`; units: ms, s, m, h".into()
            ))
        );
        assert!(parse_duration("s").is_err());
    }

    #[test]
    fn durations_round_trip() {
        for s in ["10s", "500ms", "2m", "1h", "0s"] {
            assert_eq!(format_duration(parse_duration(s).unwrap()), s);
        }
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("512m"), Ok(512 << 20));
        assert_eq!(parse_size("1g"), Ok(1 << 30));
        assert_eq!(parse_size("1.5GiB"), Ok(3 << 29));
        assert_eq!(parse_size("100"), Ok(100));
        assert!(parse_size("12 parsecs").is_err());
    }

    #[test]
    fn too_large_is_refused_not_wrapped() {
        let huge = "99999999999999999999h";
        assert_eq!(parse_duration(huge), Err(UnitError::TooLarge(huge.into())));
        assert!(matches!(
            parse_duration(&format!("{}s", "9".repeat(400))),
            Err(UnitError::TooLarge(_))
        ));
        assert!(matches!(
            parse_duration("18446744073709551615s1s"),
            Err(UnitError::TooLarge(_))
        ));
        assert!(matches!(
            parse_size("99999999999t"),
            Err(UnitError::TooLarge(_))
        ));
        assert!(matches!(
            parse_size(&"9".repeat(400)),
            Err(UnitError::TooLarge(_))
        ));
        assert_eq!(parse_size("16777215t"), Ok(16_777_215 << 40));
    }
}
