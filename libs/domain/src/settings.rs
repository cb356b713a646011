//! Parsers for the values of settings, as an operator writes them in the
//! environment: durations in seconds or days (fractions allowed). Each
//! returns a message clap prints next to the variable's name.

use std::time::Duration;

const SECONDS_PER_DAY: f64 = 86_400.0;

/// A number from `min` to `max`.
fn number(text: &str, min: f64, max: f64) -> Result<f64, String> {
    let value: f64 = text
        .trim()
        .parse()
        .map_err(|_| format!("{text:?} is not a number"))?;
    if !value.is_finite() || value < min || value > max {
        return Err(format!("must be from {min} to {max}"));
    }
    Ok(value)
}

/// Seconds, 0 or more (at most a year).
pub fn seconds(text: &str) -> Result<Duration, String> {
    number(text, 0.0, 365.0 * SECONDS_PER_DAY).map(Duration::from_secs_f64)
}

/// Seconds, more than 0 (at most a year).
pub fn positive_seconds(text: &str) -> Result<Duration, String> {
    let duration = seconds(text)?;
    if duration.is_zero() {
        return Err("must be more than 0".to_owned());
    }
    Ok(duration)
}

/// Milliseconds, more than 0.
pub fn positive_millis(text: &str) -> Result<Duration, String> {
    let millis = number(text, 0.0, 365.0 * SECONDS_PER_DAY * 1_000.0)?;
    if millis == 0.0 {
        return Err("must be more than 0".to_owned());
    }
    Ok(Duration::from_secs_f64(millis / 1_000.0))
}

/// Days, more than 0 and at most ten years.
pub fn days(text: &str) -> Result<Duration, String> {
    let days = number(text, 0.0, 3_650.0)?;
    if days == 0.0 {
        return Err("must be more than 0 days".to_owned());
    }
    Ok(Duration::from_secs_f64(days * SECONDS_PER_DAY))
}

/// A distance in metres, 0 or more (at most the width of a city, 100 km).
pub fn metres(text: &str) -> Result<f64, String> {
    number(text, 0.0, 100_000.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_take_fractions_and_refuse_nonsense() {
        assert_eq!(seconds("1.5"), Ok(Duration::from_millis(1_500)));
        assert_eq!(seconds(" 0 "), Ok(Duration::ZERO));
        assert_eq!(days("0.5"), Ok(Duration::from_secs(43_200)));
        assert_eq!(positive_millis("250"), Ok(Duration::from_millis(250)));
        for bad in ["-1", "NaN", "inf", "ten", ""] {
            assert!(seconds(bad).is_err(), "{bad}");
            assert!(days(bad).is_err(), "{bad}");
        }
        assert!(positive_seconds("0").is_err());
        assert!(days("0").is_err());
        assert!(days("100000").is_err());
        assert!(metres("-5").is_err());
    }
}
