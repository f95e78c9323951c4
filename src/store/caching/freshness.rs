//! [`Freshness`]: whether a copy read from the store may answer, and which one caller reads the
//! store again before it expires; [`Lifetime`]: how long a copy answers, in the form every
//! lookup compares ages with.

use std::{
    sync::atomic::{AtomicU64, Ordering},
    time::Duration,
};

/// When a copy of something in the store (a token's record, the JWT revocations) was read, and
/// whether a caller is reading it again.
///
/// A copy answers while younger than the cache's lifetime, never after. In the last tenth of the
/// lifetime, the first caller to [`claim`](Freshness::claim) it reads the store again while the
/// others are still answered from the copy, so a hot token never sends every request in flight
/// to the store at once.
pub(super) struct Freshness {
    /// When the copy was read ([`monotonic_millis`](crate::time::monotonic_millis) before the
    /// store was asked) shifted left by one, its lowest bit set while a caller has claimed the
    /// refresh: one word, so a lookup reads both with one load.
    state: AtomicU64,
}

/// The bit of [`Freshness::state`] that says a refresh is claimed.
const REFRESHING: u64 = 1;

/// How long a copy answers, and the age from which it is due for a refresh, in milliseconds:
/// worked out once, so a lookup compares an age with each and does no arithmetic on a
/// [`Duration`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Lifetime {
    millis: u64,
    due_at: u64,
}

impl Lifetime {
    pub(super) fn new(lifetime: Duration) -> Self {
        let millis = u64::try_from(lifetime.as_millis()).unwrap_or(u64::MAX);
        Self {
            millis,
            // The last tenth.
            due_at: millis - millis / 10,
        }
    }

    /// The lifetime, to the millisecond.
    pub(super) fn duration(self) -> Duration {
        Duration::from_millis(self.millis)
    }
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
            state: AtomicU64::new(read_at << 1),
        }
    }

    /// Whether the copy is young enough to answer at all at `now`.
    #[inline]
    pub(super) fn is_fresh(&self, now: u64, lifetime: Lifetime) -> bool {
        age(self.state.load(Ordering::Relaxed), now) < lifetime.millis
    }

    /// Whether the copy answers at `now` without anyone reading the store: it is young enough,
    /// and either not yet due for a refresh or another caller is refreshing it.
    #[inline]
    pub(super) fn answers(&self, now: u64, lifetime: Lifetime) -> bool {
        let state = self.state.load(Ordering::Relaxed);
        let age = age(state, now);
        age < lifetime.millis && (age < lifetime.due_at || state & REFRESHING != 0)
    }

    /// When the copy is due for a refresh, on the clock `now` is read on: until then it answers
    /// every caller.
    #[inline]
    pub(super) fn due_at(&self, lifetime: Lifetime) -> u64 {
        (self.state.load(Ordering::Relaxed) >> 1).saturating_add(lifetime.due_at)
    }

    /// What the caller asking at `now` does: at most one caller is told to
    /// [`Refresh`](Claim::Refresh) a copy, until it [`release`](Freshness::release)s it.
    #[inline]
    pub(super) fn claim(&self, now: u64, lifetime: Lifetime) -> Claim {
        let state = self.state.load(Ordering::Relaxed);
        let age = age(state, now);
        if age >= lifetime.millis {
            Claim::Expired
        } else if age < lifetime.due_at
            || state & REFRESHING != 0
            || self.state.fetch_or(REFRESHING, Ordering::Relaxed) & REFRESHING != 0
        {
            Claim::Answer
        } else {
            Claim::Refresh
        }
    }

    /// Gives up a claimed refresh that failed, so a later caller tries again.
    pub(super) fn release(&self) {
        self.state.fetch_and(!REFRESHING, Ordering::Relaxed);
    }
}

/// The age at `now` of a copy whose [`Freshness::state`] is `state`.
#[inline]
fn age(state: u64, now: u64) -> u64 {
    now.saturating_sub(state >> 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIFETIME: Lifetime = Lifetime {
        millis: 4_000,
        due_at: 3_600,
    };

    #[test]
    fn a_young_copy_answers_everyone_and_an_old_one_no_one() {
        let copy = Freshness::new(1_000);
        for now in [1_000, 4_599] {
            assert!(copy.answers(now, LIFETIME));
            assert_eq!(copy.claim(now, LIFETIME), Claim::Answer);
        }
        assert!(!copy.answers(5_000, LIFETIME));
        assert_eq!(copy.claim(5_000, LIFETIME), Claim::Expired);
    }

    #[test]
    fn in_its_last_tenth_one_caller_refreshes_while_the_others_are_answered() {
        let copy = Freshness::new(1_000);
        assert!(
            !copy.answers(4_600, LIFETIME),
            "due: the first caller is sent to claim"
        );
        assert_eq!(copy.claim(4_600, LIFETIME), Claim::Refresh);
        assert_eq!(copy.claim(4_600, LIFETIME), Claim::Answer);
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
        assert_eq!(copy.claim(4_700, LIFETIME), Claim::Refresh);
        copy.release();
        assert!(!copy.answers(4_700, LIFETIME));
        assert_eq!(copy.claim(4_700, LIFETIME), Claim::Refresh);
    }

    #[test]
    fn the_refresh_is_due_in_the_last_tenth_and_a_lifetime_is_kept_to_the_millisecond() {
        assert_eq!(Lifetime::new(Duration::from_secs(4)), LIFETIME);
        let odd = Lifetime::new(Duration::from_micros(5_001_999));
        assert_eq!((odd.millis, odd.due_at), (5_001, 4_501));
        assert_eq!(odd.duration(), Duration::from_millis(5_001));
        let zero = Lifetime::new(Duration::ZERO);
        assert_eq!(Freshness::new(1_000).claim(1_000, zero), Claim::Expired);
        let endless = Lifetime::new(Duration::MAX);
        assert_eq!(
            Freshness::new(0).claim(u64::MAX / 2, endless),
            Claim::Answer
        );
    }

    #[test]
    fn a_clock_behind_the_read_counts_as_no_time_passed() {
        let copy = Freshness::new(1_000);
        assert_eq!(copy.claim(0, LIFETIME), Claim::Answer);
    }
}
