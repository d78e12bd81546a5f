//! Durations as operators write them: `500ms`, `30s`, `5m`, `1h30m`, `2d`.

use std::fmt::{self, Write as _};
use std::time::Duration;

/// Why a duration did not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    /// Empty text.
    #[error("empty duration")]
    Empty,
    /// A number without a unit, such as `30`.
    #[error("`{text}` has no unit")]
    NoUnit {
        /// The text as written.
        text: String,
    },
    /// Something that is not `<number><unit>`.
    #[error("`{text}` is not a duration")]
    Malformed {
        /// The text as written.
        text: String,
    },
    /// A unit other than ms, s, m, h, d.
    #[error("unknown unit `{unit}` in `{text}`")]
    UnknownUnit {
        /// The unit as written.
        unit: String,
        /// The text as written.
        text: String,
    },
}

/// Parses `1h30m`-style durations: one or more `<whole number><unit>` parts.
pub fn parse(text: &str) -> Result<Duration, DurationError> {
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return Err(DurationError::Empty);
    }
    if trimmed.chars().all(|c| c.is_ascii_digit()) {
        return Err(DurationError::NoUnit {
            text: text.to_owned(),
        });
    }
    let mut total = Duration::ZERO;
    let mut rest = trimmed;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        if digits == 0 {
            return Err(DurationError::Malformed {
                text: text.to_owned(),
            });
        }
        let number: u64 = rest[..digits]
            .parse()
            .map_err(|_| DurationError::Malformed {
                text: text.to_owned(),
            })?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let unit = &rest[..unit_len];
        rest = &rest[unit_len..];
        let part = match unit {
            "ms" => Duration::from_millis(number),
            "s" => Duration::from_secs(number),
            "m" => Duration::from_secs(number * 60),
            "h" => Duration::from_secs(number * 3600),
            "d" => Duration::from_secs(number * 86_400),
            "" => {
                return Err(DurationError::NoUnit {
                    text: text.to_owned(),
                });
            }
            other => {
                return Err(DurationError::UnknownUnit {
                    unit: other.to_owned(),
                    text: text.to_owned(),
                });
            }
        };
        total += part;
    }
    Ok(total)
}

/// Shows a duration the way it would be written in a runbook (`1h30m`, `2.5s` for measured ones).
pub struct Human(pub Duration);

impl fmt::Display for Human {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let d = self.0;
        if d < Duration::from_secs(1) {
            return write!(f, "{}ms", d.as_millis());
        }
        if d < Duration::from_mins(1) {
            let secs = d.as_secs_f64();
            return if d.subsec_millis() == 0 {
                write!(f, "{}s", d.as_secs())
            } else {
                write!(f, "{secs:.1}s")
            };
        }
        let total = d.as_secs();
        let (days, hours, minutes, seconds) = (
            total / 86_400,
            total % 86_400 / 3600,
            total % 3600 / 60,
            total % 60,
        );
        let mut out = String::new();
        for (value, unit) in [(days, "d"), (hours, "h"), (minutes, "m"), (seconds, "s")] {
            if value > 0 {
                let _ = write!(out, "{value}{unit}");
            }
        }
        f.write_str(&out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_compound_durations() {
        assert_eq!(parse("5m"), Ok(Duration::from_mins(5)));
        assert_eq!(parse("1h30m"), Ok(Duration::from_mins(90)));
        assert_eq!(parse("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse("2d"), Ok(Duration::from_hours(48)));
    }

    #[test]
    fn rejects_what_is_not_a_duration() {
        assert!(matches!(parse("30"), Err(DurationError::NoUnit { .. })));
        assert!(matches!(
            parse("5 minutes"),
            Err(DurationError::UnknownUnit { .. })
        ));
        assert!(matches!(parse("m5"), Err(DurationError::Malformed { .. })));
        assert!(matches!(parse(""), Err(DurationError::Empty)));
    }

    #[test]
    fn shows_durations_as_written() {
        assert_eq!(Human(Duration::from_mins(90)).to_string(), "1h30m");
        assert_eq!(Human(Duration::from_millis(250)).to_string(), "250ms");
        assert_eq!(Human(Duration::from_millis(2500)).to_string(), "2.5s");
    }
}
