//! [`LastUsed`]: when a token was last used, kept current in memory and written back rarely.

use std::{
    fmt,
    sync::atomic::{AtomicU64, Ordering::Relaxed},
    time::Duration,
};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::time::Timestamp;

/// How precisely the last use is kept: a second.
const RESOLUTION_MILLIS: u64 = 1000;

/// How often a token's last use is written back to its store, at most.
pub const USE_RECORDING_INTERVAL: Duration = Duration::from_secs(60);

/// When a token was last used.
///
/// Every record handed out by a store is shared (`Arc`), so noting a use is one atomic store into
/// that shared record: no allocation and no store write per request. The layer tells the store
/// at most once per [`USE_RECORDING_INTERVAL`] per record.
/// Serialized as the time in milliseconds, or `null` for never.
#[derive(Default)]
pub struct LastUsed {
    /// Milliseconds since the epoch of the latest use; 0 for never.
    seen: AtomicU64,
    /// Milliseconds since the epoch of the latest use the store was told of.
    written: AtomicU64,
}

impl LastUsed {
    /// A last use as read back from a store.
    pub fn new(at: Option<Timestamp>) -> Self {
        let millis = at.map_or(0, Timestamp::as_millis);
        Self {
            seen: AtomicU64::new(millis),
            written: AtomicU64::new(millis),
        }
    }

    /// The latest use, if any.
    pub fn get(&self) -> Option<Timestamp> {
        match self.seen.load(Relaxed) {
            0 => None,
            millis => Some(Timestamp::from_millis(millis)),
        }
    }

    /// Records a use at `at`, never moving backwards. It is kept to the second, so a busy
    /// token's record is written once a second, not by every request on every core serving it.
    pub fn record(&self, at: Timestamp) {
        if self.seen.load(Relaxed).saturating_add(RESOLUTION_MILLIS) <= at.as_millis() {
            self.seen.fetch_max(at.as_millis(), Relaxed);
        }
    }

    /// Whether a use at `at` would be due to reach the store.
    pub fn is_due(&self, at: Timestamp) -> bool {
        let written = self.written.load(Relaxed);
        written.saturating_add(USE_RECORDING_INTERVAL.as_millis() as u64) <= at.as_millis()
    }

    /// Records a use at `at`; `true` when the store should now be told, which one caller per
    /// interval is.
    pub(crate) fn note(&self, at: Timestamp) -> bool {
        self.record(at);
        let written = self.written.load(Relaxed);
        let due =
            written.saturating_add(USE_RECORDING_INTERVAL.as_millis() as u64) <= at.as_millis();
        due && self
            .written
            .compare_exchange(written, at.as_millis(), Relaxed, Relaxed)
            .is_ok()
    }

    /// The latest use the store has not been told of, if any: what a
    /// [`TokenStore::flush`](crate::TokenStore::flush) writes back, then counts as told with
    /// [`LastUsed::mark_written`] once the store has it.
    pub fn unwritten(&self) -> Option<Timestamp> {
        let seen = self.seen.load(Relaxed);
        (seen > self.written.load(Relaxed)).then(|| Timestamp::from_millis(seen))
    }

    /// Gives back the claim a [`LastUsed::note`] at `at` made, when the store could not be told:
    /// the use stays [unwritten](LastUsed::unwritten) for the next flush, and no other caller is
    /// due before the interval is over.
    pub(crate) fn release(&self, at: Timestamp) {
        let claimed = at.as_millis();
        let _ = self
            .written
            .compare_exchange(claimed, claimed.saturating_sub(1), Relaxed, Relaxed);
    }

    /// Counts the uses up to `at` as told to the store, which now has them.
    pub fn mark_written(&self, at: Timestamp) {
        self.written.fetch_max(at.as_millis(), Relaxed);
    }
}

impl Clone for LastUsed {
    fn clone(&self) -> Self {
        Self {
            seen: AtomicU64::new(self.seen.load(Relaxed)),
            written: AtomicU64::new(self.written.load(Relaxed)),
        }
    }
}

impl PartialEq for LastUsed {
    fn eq(&self, other: &Self) -> bool {
        self.get() == other.get()
    }
}

impl Eq for LastUsed {}

impl fmt::Debug for LastUsed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.get(), f)
    }
}

impl Serialize for LastUsed {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.get().serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for LastUsed {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Option::<Timestamp>::deserialize(deserializer).map(LastUsed::new)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_use_the_store_was_not_told_of_is_left_for_the_flush() {
        let used = LastUsed::default();
        let at = Timestamp::from_millis(120_000);
        assert!(used.note(at));
        assert_eq!(used.unwritten(), None, "claimed for the write");
        used.release(at);
        assert_eq!(used.unwritten(), Some(at));
        assert!(!used.note(at.plus(std::time::Duration::from_secs(1))));
    }

    #[test]
    fn the_store_is_told_once_per_interval() {
        let used = LastUsed::default();
        let start = Timestamp::from_secs(1_000_000);
        assert!(used.note(start), "a first use is written back");
        assert!(!used.note(start.plus(Duration::from_secs(30))));
        assert_eq!(
            used.get(),
            Some(start.plus(Duration::from_secs(30))),
            "yet kept current"
        );
        assert!(used.note(start.plus(Duration::from_secs(60))));
    }

    #[test]
    fn a_use_stays_unwritten_until_counted_as_written() {
        let used = LastUsed::new(Some(Timestamp::from_secs(1_000)));
        assert_eq!(used.unwritten(), None);
        let at = Timestamp::from_secs(1_010);
        used.record(at);
        assert_eq!(used.unwritten(), Some(at));
        assert_eq!(used.unwritten(), Some(at), "still, until written");
        used.mark_written(at);
        assert_eq!(used.unwritten(), None);
        used.mark_written(Timestamp::from_secs(1_005));
        assert_eq!(used.unwritten(), None, "never moves backwards");
    }

    #[test]
    fn never_moves_backwards_and_round_trips_through_serde() {
        let used = LastUsed::new(Some(Timestamp::from_millis(5000)));
        used.record(Timestamp::from_millis(10));
        assert_eq!(used.get(), Some(Timestamp::from_millis(5000)));
        let json = serde_json::to_string(&used).unwrap();
        assert_eq!(json, "5000");
        assert_eq!(serde_json::from_str::<LastUsed>(&json).unwrap(), used);
        assert_eq!(
            serde_json::from_str::<LastUsed>("null").unwrap().get(),
            None
        );
    }
}
