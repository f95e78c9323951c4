//! The time a line starts with: RFC 3339, UTC, to the microsecond. The date and time to the
//! second are made once a second per thread, by the crate's calendar.

use std::{
    cell::RefCell,
    time::{SystemTime, UNIX_EPOCH},
};

use tower_impersonation::Timestamp;

thread_local! {
    /// The second last written on this thread, and its date and time: `2026-01-02T03:04:05.`.
    static SECOND: RefCell<(u64, String)> = const { RefCell::new((u64::MAX, String::new())) };
}

/// Now in RFC 3339, UTC, to the microsecond: `2026-01-02T03:04:05.000006Z`.
pub(super) fn write_timestamp(line: &mut String) {
    let since_epoch = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let secs = since_epoch.as_secs();
    SECOND.with_borrow_mut(|(cached, second)| {
        if *cached != secs {
            *cached = secs;
            second.clear();
            second.push_str(&date_and_time(secs));
        }
        line.push_str(second);
    });
    let micros = since_epoch.subsec_micros();
    for place in [100_000, 10_000, 1_000, 100, 10, 1] {
        line.push(char::from(b'0' + (micros / place % 10) as u8));
    }
    line.push('Z');
}

/// `secs` since the epoch as `2026-01-02T03:04:05.`, by the crate's calendar. Written once a
/// second per thread, so its cost does not matter.
fn date_and_time(secs: u64) -> String {
    let mut text = Timestamp::from_secs(secs).to_rfc3339_seconds();
    text.pop(); // the `Z`: the fraction of the second comes first
    text.push('.');
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_and_times_read_as_rfc_3339() {
        // 2024-02-29T23:59:59, a leap day, and the epoch.
        assert_eq!(date_and_time(1_709_251_199), "2024-02-29T23:59:59.");
        assert_eq!(date_and_time(0), "1970-01-01T00:00:00.");
    }
}
