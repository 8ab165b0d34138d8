//! Durations (`500ms`, `10s`, `2m`, `1h30m`) and sizes (`512m`, `1g`) as written in the
//! desired state.

use std::time::Duration;

/// Parses a duration written as one or more `<number><unit>` parts, unit one of
/// `ms`, `s`, `m`, `h`. A bare number is refused: the unit is never guessed.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let s = text.trim();
    if s.is_empty() {
        return Err("empty duration; write e.g. `10s`, `500ms`, `2m` or `1h30m`".into());
    }
    if s.chars().all(|c| c.is_ascii_digit()) {
        return Err(format!(
            "duration `{s}` has no unit; write e.g. `{s}s` (units: ms, s, m, h)"
        ));
    }
    let mut total = Duration::ZERO;
    let mut rest = s;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit() && c != '.')
            .unwrap_or(rest.len());
        if digits == 0 {
            return Err(format!(
                "invalid duration `{s}`; write e.g. `10s`, `500ms`, `2m` or `1h30m`"
            ));
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
                return Err(format!(
                    "duration `{s}` ends without a unit; units: ms, s, m, h"
                ))
            }
            other => {
                return Err(format!(
                    "unknown unit `{other}` in duration `{s}`; units: ms, s, m, h"
                ))
            }
        };
        total += Duration::from_secs_f64(secs);
    }
    Ok(total)
}

/// Renders a duration the way it is written in the desired state.
pub fn format_duration(d: Duration) -> String {
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
/// multiples; `kb`/`kib` and friends are accepted too).
pub fn parse_size(text: &str) -> Result<u64, String> {
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
            return Err(format!(
                "unknown unit `{other}` in size `{text}`; units: b, k, m, g, t"
            ))
        }
    };
    Ok((number * mult as f64) as u64)
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
            Err("duration `10` has no unit; write e.g. `10s` (units: ms, s, m, h)".into())
        );
        assert_eq!(
            parse_duration("10d"),
            Err("unknown unit `d` in duration `10d`; units: ms, s, m, h".into())
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
}
