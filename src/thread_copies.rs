//! [`ThreadCopies`]: a thread's own copies of shared values that requests read over and over.
//!
//! Cloning a shared `Arc` writes its count, and when every core serving one credential writes
//! the same count, the cores wait on each other for that memory. The layer's lookups hand out
//! such clones on every request; with a copy of its own, a thread writes only its own memory.
//! A copy is made the second time a thread meets a value, so values met once cost no copy.

use std::{
    cell::RefCell,
    hash::{BuildHasher, Hash},
    thread::LocalKey,
};

use foldhash::fast::FixedState;

/// How many values one thread keeps for one kind of lookup; more hot credentials than this on
/// one thread share the slots and are served as before, from the shared values.
const SLOTS: usize = 64;

/// Values a thread has met, each under its key and the source it came from: a direct-mapped
/// table of [`SLOTS`] slots, a key's hash naming its slot.
pub(crate) struct ThreadCopies<K, V> {
    slots: Vec<Option<Slot<K, V>>>,
}

struct Slot<K, V> {
    /// Which cache, or which version of a cache, the value came from.
    source: u64,
    key: K,
    value: V,
    /// Whether `value` is this thread's copy rather than the shared value.
    copied: bool,
}

impl<K, V: Clone> ThreadCopies<K, V> {
    pub(crate) const fn new() -> Self {
        Self { slots: Vec::new() }
    }

    /// The value kept under a key `is_key` accepts, from `source`: this thread's copy, made with
    /// `copy` the first time the value is met again.
    fn get(
        &mut self,
        source: u64,
        hash: u64,
        is_key: impl FnOnce(&K) -> bool,
        copy: impl FnOnce(&V) -> V,
    ) -> Option<V> {
        let slot = self.slots.get_mut(slot_of(hash))?.as_mut()?;
        if slot.source != source || !is_key(&slot.key) {
            return None;
        }
        if !slot.copied {
            slot.value = copy(&slot.value);
            slot.copied = true;
        }
        Some(slot.value.clone())
    }

    /// Keeps the shared `value`, from `source`, under `key`, in place of what its slot held.
    fn put(&mut self, source: u64, hash: u64, key: K, value: V) {
        if self.slots.is_empty() {
            self.slots.resize_with(SLOTS, || None);
        }
        self.slots[slot_of(hash)] = Some(Slot {
            source,
            key,
            value,
            copied: false,
        });
    }
}

/// A lookup through this thread's `copies`: the copy kept under a key `is_key` accepts, from
/// `source`, else what `find` finds among the shared values, kept for next time. `copy` makes
/// this thread's copy of a value met again.
pub(crate) fn find_through<K, V: Clone>(
    copies: &'static LocalKey<RefCell<ThreadCopies<K, V>>>,
    source: u64,
    hash: u64,
    is_key: impl FnOnce(&K) -> bool,
    copy: impl FnOnce(&V) -> V,
    find: impl Fn() -> Option<(K, V)>,
) -> Option<V> {
    let found = copies.try_with(|copies| {
        let mut copies = copies.try_borrow_mut().ok()?;
        if let Some(copy) = copies.get(source, hash, is_key, copy) {
            return Some(Some(copy));
        }
        let found = find().map(|(key, value)| {
            copies.put(source, hash, key, value.clone());
            value
        });
        Some(found)
    });
    match found {
        Ok(Some(found)) => found,
        // This thread's copies are out of reach (being dropped, or in use further up the
        // stack): the shared values answer.
        _ => find().map(|(_, value)| value),
    }
}

/// The hash of a lookup's key, the same on every thread.
pub(crate) fn hash_of(key: impl Hash) -> u64 {
    FixedState::default().hash_one(key)
}

/// A source no other cache or version has: what [`ThreadCopies`] tells values apart by.
pub(crate) fn new_source() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static SOURCES: AtomicU64 = AtomicU64::new(0);
    SOURCES.fetch_add(1, Ordering::Relaxed)
}

fn slot_of(hash: u64) -> usize {
    // The high bits: foldhash mixes them best.
    (hash >> 58) as usize % SLOTS
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    fn get(
        copies: &mut ThreadCopies<String, Arc<str>>,
        source: u64,
        key: &str,
    ) -> Option<Arc<str>> {
        copies.get(source, hash_of(key), |k| k == key, |v| Arc::from(&**v))
    }

    #[test]
    fn a_value_met_again_is_served_as_a_copy_of_its_own() {
        let mut copies = ThreadCopies::new();
        let shared: Arc<str> = Arc::from("ada");
        copies.put(1, hash_of("u1"), "u1".to_owned(), Arc::clone(&shared));
        let first = get(&mut copies, 1, "u1").unwrap();
        let second = get(&mut copies, 1, "u1").unwrap();
        assert_eq!(*first, *shared);
        assert!(!Arc::ptr_eq(&first, &shared), "the thread's own copy");
        assert!(Arc::ptr_eq(&first, &second), "copied once");
        assert_eq!(
            Arc::strong_count(&shared),
            1,
            "the slot let go of the shared value"
        );
    }

    #[test]
    fn another_source_or_key_is_not_served() {
        let mut copies = ThreadCopies::new();
        copies.put(1, hash_of("u1"), "u1".to_owned(), Arc::from("ada"));
        assert_eq!(
            get(&mut copies, 2, "u1"),
            None,
            "a newer version of the source"
        );
        assert_eq!(
            copies.get(1, hash_of("u1"), |k| k == "u2", Arc::clone),
            None,
            "a key sharing the slot"
        );
        assert_eq!(
            get(&mut ThreadCopies::new(), 1, "u1"),
            None,
            "nothing kept yet"
        );
    }

    #[test]
    fn a_new_value_takes_its_slot() {
        let mut copies = ThreadCopies::new();
        copies.put(1, hash_of("u1"), "u1".to_owned(), Arc::from("ada"));
        copies.put(1, hash_of("u1"), "u1".to_owned(), Arc::from("ada lovelace"));
        assert_eq!(get(&mut copies, 1, "u1").as_deref(), Some("ada lovelace"));
    }
}
