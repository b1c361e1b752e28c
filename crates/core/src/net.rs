//! Network timeouts, shared by every client imagespec has (the registry client, the build
//! service client), so one setting governs them all.
//!
//! Three limits, none of them on a whole transfer (a large layer on a slow link is not a
//! fault): connecting, the first answer to a request (its status line and headers), and a
//! stall (no byte for a while) in the middle of a body.

use std::time::Duration;

/// The environment variable that sets every network timeout, in seconds (`30`, `2.5`, `500ms`).
pub const TIMEOUT_ENV: &str = "IMAGESPEC_NETWORK_TIMEOUT";

/// How long a network operation may wait before it counts as failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NetworkTimeouts {
    /// Opening a TCP (and TLS) connection.
    pub connect: Duration,
    /// From sending a request to receiving its status line and headers (and, for small
    /// documents such as manifests and tokens, their whole body).
    pub first_byte: Duration,
    /// The longest silence in the middle of a body.
    pub idle: Duration,
}

impl Default for NetworkTimeouts {
    /// 10 s to connect, 15 s to answer, 30 s of silence: generous for a healthy registry on a
    /// slow link (which answers in milliseconds), short enough that a hung one is reported
    /// within a minute even with retries.
    fn default() -> Self {
        NetworkTimeouts {
            connect: Duration::from_secs(10),
            first_byte: Duration::from_secs(15),
            idle: Duration::from_secs(30),
        }
    }
}

/// An unusable `IMAGESPEC_NETWORK_TIMEOUT`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{TIMEOUT_ENV}=`{value}` is not a usable timeout: {problem}; write a number of seconds, e.g. {TIMEOUT_ENV}=30 (or 500ms), or unset it for the defaults (10 s to connect, 15 s to answer, 30 s of silence mid-transfer)"
)]
pub struct TimeoutError {
    pub value: String,
    pub problem: &'static str,
}

impl NetworkTimeouts {
    /// The same limit for all three.
    pub fn uniform(limit: Duration) -> Self {
        NetworkTimeouts {
            connect: limit,
            first_byte: limit,
            idle: limit,
        }
    }

    /// The defaults, or `IMAGESPEC_NETWORK_TIMEOUT` for all three when it is set.
    pub fn from_env() -> Result<Self, TimeoutError> {
        Self::from_value(std::env::var(TIMEOUT_ENV).ok().as_deref())
    }

    /// [`NetworkTimeouts::from_env`] for a given value (`None`: unset).
    pub fn from_value(value: Option<&str>) -> Result<Self, TimeoutError> {
        match value.map(str::trim).filter(|v| !v.is_empty()) {
            None => Ok(Self::default()),
            Some(v) => parse_duration(v)
                .map(Self::uniform)
                .map_err(|problem| TimeoutError {
                    value: v.to_string(),
                    problem,
                }),
        }
    }
}

/// `30`, `30s`, `2.5`, `500ms`; more than zero, at most a day.
fn parse_duration(value: &str) -> Result<Duration, &'static str> {
    let (number, scale) = if let Some(ms) = value.strip_suffix("ms") {
        (ms, 0.001)
    } else if let Some(s) = value.strip_suffix('s') {
        (s, 1.0)
    } else {
        (value, 1.0)
    };
    let number: f64 = number.trim().parse().map_err(|_| "it is not a number")?;
    let seconds = number * scale;
    if !seconds.is_finite() || seconds <= 0.0 {
        return Err("it must be more than zero");
    }
    if seconds > 86_400.0 {
        return Err("it is longer than a day");
    }
    Ok(Duration::from_secs_f64(seconds))
}

/// A duration for messages: `10 s`, `0.3 s`.
pub fn seconds(d: Duration) -> String {
    let s = d.as_secs_f64();
    if s.fract() == 0.0 {
        format!("{s:.0} s")
    } else {
        format!("{} s", (s * 1000.0).round() / 1000.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_values() {
        assert_eq!(
            NetworkTimeouts::from_value(None),
            Ok(NetworkTimeouts::default())
        );
        assert_eq!(
            NetworkTimeouts::from_value(Some(" ")),
            Ok(NetworkTimeouts::default())
        );
        let d = |v| NetworkTimeouts::from_value(Some(v)).map(|t| t.first_byte);
        assert_eq!(d("30"), Ok(Duration::from_secs(30)));
        assert_eq!(d("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(d("2.5"), Ok(Duration::from_millis(2500)));
        assert_eq!(d("500ms"), Ok(Duration::from_millis(500)));
        for bad in ["0", "-1", "abc", "NaN", "inf", "1e9", "10m"] {
            let err = NetworkTimeouts::from_value(Some(bad)).expect_err(bad);
            assert!(err.to_string().contains(TIMEOUT_ENV), "{err}");
            assert!(err.to_string().contains(bad), "{err}");
        }
    }

    #[test]
    fn seconds_for_messages() {
        assert_eq!(seconds(Duration::from_secs(10)), "10 s");
        assert_eq!(seconds(Duration::from_millis(300)), "0.3 s");
    }
}
