//! [`Freshness`]: whether a copy read from the store may answer, and which one caller reads the
//! store again before it expires.

use std::{
    sync::atomic::{AtomicBool, Ordering},
    time::Duration,
};

/// When a copy of something in the store (a token's record, the JWT revocations) was read, and
/// whether a caller is reading it again.
///
/// A copy answers while younger than the cache's lifetime, never after. Once three quarters of
/// the lifetime have passed, the first caller to [`claim`](Freshness::claim) it reads the store
/// again while every other caller is still answered from the copy. Without that, every request
/// for a hot token arriving between its expiry and the first new read would read the store itself,
/// queueing on it: a stampede each lifetime, which showed as the token's 99th percentile latency.
/// The quarter left gives the one refresh time to land before anyone has to wait.
pub(super) struct Freshness {
    /// [`monotonic_millis`](crate::time::monotonic_millis) before the store was asked.
    read_at: u64,
    /// Whether a caller has claimed the refresh.
    refreshing: AtomicBool,
}

/// What a caller does with a copy, as [`Freshness::claim`] decides.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Claim {
    /// Answer from the copy.
    Answer,
    /// Read the store again, for everyone: the copy still answers if that read fails.
    Refresh,
    /// Read the store: the copy is too old to answer.
    Expired,
}

impl Freshness {
    /// A copy read at `read_at` ([`monotonic_millis`](crate::time::monotonic_millis)).
    pub(super) fn new(read_at: u64) -> Self {
        Self {
            read_at,
            refreshing: AtomicBool::new(false),
        }
    }

    /// Whether the copy is young enough to answer at all at `now`.
    pub(super) fn is_fresh(&self, now: u64, lifetime: Duration) -> bool {
        self.age(now) < lifetime.as_millis()
    }

    /// Whether the copy answers at `now` without anyone reading the store: it is young enough,
    /// and either not yet due for a refresh or another caller is refreshing it.
    pub(super) fn answers(&self, now: u64, lifetime: Duration) -> bool {
        self.is_fresh(now, lifetime)
            && (!self.is_due(now, lifetime) || self.refreshing.load(Ordering::Acquire))
    }

    /// What the caller asking at `now` does: at most one caller is told to
    /// [`Refresh`](Claim::Refresh) a copy, until it [`release`](Freshness::release)s it.
    pub(super) fn claim(&self, now: u64, lifetime: Duration) -> Claim {
        if !self.is_fresh(now, lifetime) {
            Claim::Expired
        } else if !self.is_due(now, lifetime)
            || self.refreshing.load(Ordering::Acquire)
            || self.refreshing.swap(true, Ordering::AcqRel)
        {
            Claim::Answer
        } else {
            Claim::Refresh
        }
    }

    /// Gives up a claimed refresh that failed, so a later caller tries again.
    pub(super) fn release(&self) {
        self.refreshing.store(false, Ordering::Release);
    }

    fn is_due(&self, now: u64, lifetime: Duration) -> bool {
        self.age(now) >= lifetime.as_millis() / 4 * 3
    }

    fn age(&self, now: u64) -> u128 {
        u128::from(now.saturating_sub(self.read_at))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIFETIME: Duration = Duration::from_secs(4);

    #[test]
    fn a_young_copy_answers_everyone_and_an_old_one_no_one() {
        let copy = Freshness::new(1_000);
        for now in [1_000, 3_999] {
            assert!(copy.answers(now, LIFETIME));
            assert_eq!(copy.claim(now, LIFETIME), Claim::Answer);
        }
        assert!(!copy.answers(5_000, LIFETIME));
        assert_eq!(copy.claim(5_000, LIFETIME), Claim::Expired);
    }

    #[test]
    fn in_its_last_quarter_one_caller_refreshes_while_the_others_are_answered() {
        let copy = Freshness::new(1_000);
        assert!(
            !copy.answers(4_000, LIFETIME),
            "due: the first caller is sent to claim"
        );
        assert_eq!(copy.claim(4_000, LIFETIME), Claim::Refresh);
        assert_eq!(copy.claim(4_000, LIFETIME), Claim::Answer);
        assert!(copy.answers(4_999, LIFETIME));
        assert_eq!(
            copy.claim(5_000, LIFETIME),
            Claim::Expired,
            "a refresh in flight never stretches the lifetime"
        );
        assert!(!copy.answers(5_000, LIFETIME));
    }

    #[test]
    fn a_released_refresh_goes_to_the_next_caller() {
        let copy = Freshness::new(1_000);
        assert_eq!(copy.claim(4_500, LIFETIME), Claim::Refresh);
        copy.release();
        assert!(!copy.answers(4_500, LIFETIME));
        assert_eq!(copy.claim(4_500, LIFETIME), Claim::Refresh);
    }

    #[test]
    fn a_clock_behind_the_read_counts_as_no_time_passed() {
        let copy = Freshness::new(1_000);
        assert_eq!(copy.claim(0, LIFETIME), Claim::Answer);
    }
}
