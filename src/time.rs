//! Millisecond timestamps and the two date formats the services answer with.

use std::{
    fmt,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use serde::{Deserialize, Serialize};

/// A point in time, in milliseconds since the Unix epoch (UTC).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Timestamp(u64);

impl Timestamp {
    /// The current time.
    pub fn now() -> Self {
        let since_epoch = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or(Duration::ZERO);
        Self(u64::try_from(since_epoch.as_millis()).unwrap_or(u64::MAX))
    }

    /// The current time from the kernel's coarse clock, where there is one (Linux, Android),
    /// cheaper to read than [`now`](Self::now) and behind it by up to a scheduler tick (1 to
    /// 10 ms). The layer reads it on every request, so a token is refused up to a tick after it
    /// expires.
    #[cfg(any(target_os = "linux", target_os = "android"))]
    pub(crate) fn now_coarse() -> Self {
        use rustix::time::{ClockId, clock_gettime};
        let now = clock_gettime(ClockId::RealtimeCoarse);
        let secs = u64::try_from(now.tv_sec).unwrap_or(0);
        let millis = u64::try_from(now.tv_nsec / 1_000_000).unwrap_or(0);
        Self(secs.saturating_mul(1000).saturating_add(millis))
    }

    /// The current time; elsewhere there is no coarse clock to read.
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    pub(crate) fn now_coarse() -> Self {
        Self::now()
    }
}

/// Milliseconds on a clock that never goes back, for ages within this process: the kernel's
/// coarse monotonic clock where there is one (cheaper than `Instant::now`, behind it by up to a
/// tick), else [`std::time::Instant`].
#[cfg(any(target_os = "linux", target_os = "android"))]
pub(crate) fn monotonic_millis() -> u64 {
    use rustix::time::{ClockId, clock_gettime};
    let now = clock_gettime(ClockId::MonotonicCoarse);
    let secs = u64::try_from(now.tv_sec).unwrap_or(0);
    let millis = u64::try_from(now.tv_nsec / 1_000_000).unwrap_or(0);
    secs.saturating_mul(1000).saturating_add(millis)
}

/// Milliseconds since this process first asked, on [`std::time::Instant`].
#[cfg(not(any(target_os = "linux", target_os = "android")))]
pub(crate) fn monotonic_millis() -> u64 {
    static START: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
    let elapsed = START.get_or_init(std::time::Instant::now).elapsed();
    u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX)
}

impl Timestamp {
    /// A timestamp from milliseconds since the epoch.
    pub const fn from_millis(millis: u64) -> Self {
        Self(millis)
    }

    /// A timestamp from whole seconds since the epoch.
    pub const fn from_secs(secs: u64) -> Self {
        Self(secs.saturating_mul(1000))
    }

    /// Milliseconds since the epoch.
    pub const fn as_millis(self) -> u64 {
        self.0
    }

    /// Whole seconds since the epoch.
    pub const fn as_secs(self) -> u64 {
        self.0 / 1000
    }

    /// This time plus `duration`, saturating.
    pub fn plus(self, duration: Duration) -> Self {
        let millis = u64::try_from(duration.as_millis()).unwrap_or(u64::MAX);
        Self(self.0.saturating_add(millis))
    }

    /// The token listing's format: `2024-07-23T16:11:25.257+0000`.
    pub fn to_listing_format(self) -> String {
        let (date, millis) = (self.civil(), self.0 % 1000);
        format!("{date}.{millis:03}+0000")
    }

    /// The JSON:API impersonation endpoint's format: `2021-11-23T14:38:20Z`.
    pub fn to_rfc3339_seconds(self) -> String {
        format!("{}Z", self.civil())
    }

    /// Parses `YYYY-MM-DDTHH:MM:SS[.fff](Z|+0000|+00:00)`, UTC only, as clients send `expiresAt`.
    pub fn parse_utc(text: &str) -> Option<Self> {
        let body = ["Z", "+0000", "+00:00"]
            .iter()
            .find_map(|zone| text.strip_suffix(zone))?;
        let (seconds_part, millis) = match body.split_once('.') {
            Some((whole, fraction)) => (whole, parse_fraction(fraction)?),
            None => (body, 0),
        };
        let b = seconds_part.as_bytes();
        let separators = [(4, b'-'), (7, b'-'), (10, b'T'), (13, b':'), (16, b':')];
        if b.len() != 19 || separators.iter().any(|&(i, c)| b[i] != c) {
            return None;
        }
        let field = |range: std::ops::Range<usize>| digits(seconds_part.get(range)?);
        let (year, month, day) = (field(0..4)?, field(5..7)?, field(8..10)?);
        let (hour, minute, second) = (field(11..13)?, field(14..16)?, field(17..19)?);
        let valid = (1970..=9999).contains(&year)
            && (1..=12).contains(&month)
            && (1..=days_in_month(year, month)).contains(&day)
            && hour < 24
            && minute < 60
            && second < 60;
        if !valid {
            return None;
        }
        let days = days_from_civil(year, month, day);
        let secs = days * 86_400 + hour * 3600 + minute * 60 + second;
        Some(Self(secs * 1000 + millis))
    }

    fn civil(self) -> Civil {
        let secs = self.0 / 1000;
        let (days, rest) = (secs / 86_400, secs % 86_400);
        let (year, month, day) = civil_from_days(days);
        Civil {
            year,
            month,
            day,
            hour: rest / 3600,
            minute: rest % 3600 / 60,
            second: rest % 60,
        }
    }
}

impl fmt::Debug for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_listing_format())
    }
}

struct Civil {
    year: u64,
    month: u64,
    day: u64,
    hour: u64,
    minute: u64,
    second: u64,
}

impl fmt::Display for Civil {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
            self.year, self.month, self.day, self.hour, self.minute, self.second
        )
    }
}

/// The value of a run of ASCII digits; `u64::from_str` alone would also take a leading `+`.
fn digits(text: &str) -> Option<u64> {
    let all_digits = !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit());
    all_digits.then(|| text.parse().ok()).flatten()
}

fn parse_fraction(fraction: &str) -> Option<u64> {
    if fraction.len() > 9 {
        return None;
    }
    digits(fraction)?;
    digits(&format!("{fraction:0<3}")[..3])
}

fn is_leap(year: u64) -> bool {
    year.is_multiple_of(4) && (!year.is_multiple_of(100) || year.is_multiple_of(400))
}

fn days_in_month(year: u64, month: u64) -> u64 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

// Howard Hinnant's days_from_civil / civil_from_days, restricted to dates after 1970.
fn days_from_civil(year: u64, month: u64, day: u64) -> u64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year / 400;
    let year_of_era = year - era * 400;
    let shifted_month = (month + 9) % 12;
    let day_of_year = (153 * shifted_month + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let day_of_era = z - era * 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let shifted_month = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * shifted_month + 2) / 5 + 1;
    let month = if shifted_month < 10 {
        shifted_month + 3
    } else {
        shifted_month - 9
    };
    let year = year_of_era + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_coarse_clock_is_never_ahead_and_not_far_behind() {
        let before = Timestamp::now();
        let coarse = Timestamp::now_coarse();
        let after = Timestamp::now();
        // It lags by a tick (1 to 10 ms), more on a starved VM: a second of slack keeps the test
        // from flaking while still catching a wrong unit or clock.
        assert!(
            coarse.as_millis() + 1000 >= before.as_millis(),
            "{coarse:?} {before:?}"
        );
        assert!(coarse <= after, "{coarse:?} {after:?}");
    }

    #[test]
    fn formats_are_rfc_3339_to_the_second_and_the_listings_millisecond_form() {
        // The JSON:API endpoint's example JWT expires at 1637681900, an hour after it was made.
        let created = Timestamp::from_secs(1_637_681_900 - 3600);
        assert_eq!(created.to_rfc3339_seconds(), "2021-11-23T14:38:20Z");
        let listed = Timestamp::from_millis(1_721_751_085_257);
        assert_eq!(listed.to_listing_format(), "2024-07-23T16:11:25.257+0000");
    }

    #[test]
    fn parse_accepts_the_formats_it_prints() {
        for millis in [0, 951_782_400_000, 1_721_751_085_257, 4_102_444_799_999] {
            let t = Timestamp::from_millis(millis);
            assert_eq!(Timestamp::parse_utc(&t.to_listing_format()), Some(t));
            let whole = Timestamp::from_secs(t.as_secs());
            assert_eq!(Timestamp::parse_utc(&t.to_rfc3339_seconds()), Some(whole));
        }
        assert_eq!(
            Timestamp::parse_utc("2024-07-23T16:11:25.5+00:00"),
            Some(Timestamp::from_millis(1_721_751_085_500))
        );
    }

    #[test]
    fn parse_refuses_what_is_not_a_utc_date() {
        for bad in [
            "",
            "2024-07-23",
            "2024-07-23T16:11:25",
            "2024-02-30T00:00:00Z",
            "2023-02-29T00:00:00Z",
            "2024-07-23T24:00:00Z",
            "2024-07-23T16:11:25+0100",
            "1969-12-31T23:59:59Z",
            "2024-07-23T16:11:25.Z",
            "+024-07-23T16:11:25Z",
            "2030-+1-+1T+1:+1:+1Z",
            "2024-07-23T16:11:25.1234567890Z",
        ] {
            assert_eq!(Timestamp::parse_utc(bad), None, "{bad:?}");
        }
    }
}
