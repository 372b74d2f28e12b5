//! Rate-limit headers: `RateLimit` (IETF draft, both the `limit=100, remaining=0, reset=1` form that
//! Close sends and the later `"policy";r=0;t=1` form), the older `X-Rate-Limit-*`/`RateLimit-*`
//! headers, and `Retry-After` (delay-seconds or an HTTP-date).

use std::time::{SystemTime, UNIX_EPOCH};

/// What a `RateLimit` header said. `reset_secs` is the delay until the window resets.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct RateLimitInfo {
    /// The quota of the window.
    pub limit: Option<u64>,
    /// What is left of it.
    pub remaining: Option<u64>,
    /// Seconds until the window resets (may be fractional).
    pub reset_secs: Option<f64>,
}

/// The longest wait reported, whatever the server says (one day).
pub const MAX_RETRY_AFTER_MS: u64 = 86_400_000;

/// Parses a `RateLimit` header value. Returns `None` if it holds none of the known keys.
pub fn parse_ratelimit(value: &str) -> Option<RateLimitInfo> {
    let mut info = RateLimitInfo::default();
    let mut found = false;
    for item in value.split([',', ';']) {
        let Some((key, val)) = item.split_once('=') else {
            continue;
        };
        let key = key.trim().to_ascii_lowercase();
        let val = val.trim().trim_matches('"');
        match key.as_str() {
            "limit" | "l" | "q" => {
                if let Ok(n) = val.parse() {
                    info.limit = Some(n);
                    found = true;
                }
            }
            "remaining" | "r" => {
                if let Ok(n) = val.parse() {
                    info.remaining = Some(n);
                    found = true;
                }
            }
            "reset" | "t" => {
                if let Some(s) = parse_seconds(val) {
                    info.reset_secs = Some(s);
                    found = true;
                }
            }
            _ => {}
        }
    }
    found.then_some(info)
}

/// Parses a `Retry-After` value (delay-seconds, leniently fractional, or an IMF-fixdate) into
/// milliseconds from `now`.
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<u64> {
    let value = value.trim();
    if let Some(secs) = parse_seconds(value) {
        return Some(secs_to_ms(secs));
    }
    let at = parse_http_date(value)?;
    let now = now.duration_since(UNIX_EPOCH).ok()?.as_secs();
    Some(
        at.saturating_sub(now)
            .saturating_mul(1000)
            .min(MAX_RETRY_AFTER_MS),
    )
}

/// Converts seconds to milliseconds, capped at [`MAX_RETRY_AFTER_MS`].
pub fn secs_to_ms(secs: f64) -> u64 {
    let ms = (secs * 1000.0).ceil();
    if ms.is_nan() || ms <= 0.0 {
        0
    } else if ms >= MAX_RETRY_AFTER_MS as f64 {
        MAX_RETRY_AFTER_MS
    } else {
        ms as u64
    }
}

fn parse_seconds(value: &str) -> Option<f64> {
    if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        return None;
    }
    value
        .parse::<f64>()
        .ok()
        .filter(|s| s.is_finite() && *s >= 0.0)
}

/// Parses an IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`) into seconds since the Unix epoch.
pub fn parse_http_date(value: &str) -> Option<u64> {
    let rest = value.trim().split_once(", ")?.1;
    let parts: Vec<&str> = rest.split_ascii_whitespace().collect();
    let [day, month, year, time, "GMT"] = parts.as_slice() else {
        return None;
    };
    let day: u64 = day.parse().ok()?;
    let month = match *month {
        "Jan" => 1,
        "Feb" => 2,
        "Mar" => 3,
        "Apr" => 4,
        "May" => 5,
        "Jun" => 6,
        "Jul" => 7,
        "Aug" => 8,
        "Sep" => 9,
        "Oct" => 10,
        "Nov" => 11,
        "Dec" => 12,
        _ => return None,
    };
    let year: i64 = year.parse().ok()?;
    let mut hms = time.split(':').map(|p| p.parse::<u64>().ok());
    let (Some(Some(h)), Some(Some(m)), Some(Some(s)), None) =
        (hms.next(), hms.next(), hms.next(), hms.next())
    else {
        return None;
    };
    if !(1..=31).contains(&day) || h > 23 || m > 59 || s > 60 || !(1970..=9999).contains(&year) {
        return None;
    }
    let days = days_from_civil(year, month, day as i64);
    u64::try_from(days)
        .ok()
        .map(|d| d * 86_400 + h * 3600 + m * 60 + s)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn closes_ratelimit_header_is_parsed() {
        let info = parse_ratelimit("limit=100, remaining=0, reset=1").unwrap();
        assert_eq!(
            info,
            RateLimitInfo {
                limit: Some(100),
                remaining: Some(0),
                reset_secs: Some(1.0)
            }
        );
    }

    #[test]
    fn a_fractional_reset_and_odd_spacing_are_accepted() {
        let info = parse_ratelimit(" Limit = 20 ,remaining=3,  reset=0.25 ").unwrap();
        assert_eq!(info.reset_secs, Some(0.25));
        assert_eq!(info.limit, Some(20));
        assert_eq!(secs_to_ms(info.reset_secs.unwrap()), 250);
    }

    #[test]
    fn the_later_draft_form_with_r_and_t_is_parsed() {
        let info = parse_ratelimit(r#""default";r=0;t=30"#).unwrap();
        assert_eq!(
            info,
            RateLimitInfo {
                limit: None,
                remaining: Some(0),
                reset_secs: Some(30.0)
            }
        );
    }

    #[test]
    fn a_ratelimit_header_without_known_keys_is_none() {
        assert_eq!(parse_ratelimit("banana"), None);
        assert_eq!(parse_ratelimit("reset=soon"), None);
        assert_eq!(parse_ratelimit(""), None);
    }

    #[test]
    fn retry_after_in_seconds_becomes_milliseconds() {
        assert_eq!(parse_retry_after("120", SystemTime::now()), Some(120_000));
        assert_eq!(parse_retry_after(" 0 ", SystemTime::now()), Some(0));
        assert_eq!(parse_retry_after("1.5", SystemTime::now()), Some(1_500));
        assert_eq!(parse_retry_after("-1", SystemTime::now()), None);
        assert_eq!(
            parse_retry_after("99999999999", SystemTime::now()),
            Some(MAX_RETRY_AFTER_MS)
        );
    }

    #[test]
    fn retry_after_as_an_http_date_is_relative_to_now() {
        let now = UNIX_EPOCH + Duration::from_secs(784_111_777); // Sun, 06 Nov 1994 08:49:37 GMT
        assert_eq!(
            parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT"),
            Some(784_111_777)
        );
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:50:07 GMT", now),
            Some(30_000)
        );
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:00:00 GMT", now),
            Some(0),
            "a date in the past means now"
        );
        assert_eq!(
            parse_http_date("Thu, 29 Feb 2024 00:00:00 GMT"),
            Some(1_709_164_800)
        );
    }

    #[test]
    fn malformed_dates_are_refused() {
        for d in [
            "",
            "Sun, 06 Nov 1994 08:49:37 PST",
            "Sun, 32 Nov 1994 08:49:37 GMT",
            "Sun, 06 Foo 1994 08:49:37 GMT",
            "Sun, 06 Nov 1994 8:49 GMT",
            "Sunday",
        ] {
            assert_eq!(parse_http_date(d), None, "{d}");
        }
    }
}
