//! [`ThreadCopies`]: a thread's own copies of shared values that requests read over and over.
//!
//! Cloning a shared `Arc` writes its count, and when every core serving one credential writes
//! the same count, the cores wait on each other for that memory. The layer's lookups hand out
//! such clones on every request; with a copy of its own, a thread writes only its own memory.
//! A lookup whose shared table takes a lock per read gains from a thread's hold on the shared
//! value too, copied or not: the thread skips the lock.
//! Only keys a thread meets again and again are kept: a key is kept when it misses at its slot
//! [`MISSES_TO_KEEP`] times in a row, and its value is copied at its first hit, so a stream of
//! many different keys seldom costs a copy.

use std::{
    cell::RefCell,
    hash::{BuildHasher, Hash},
    thread::LocalKey,
};

use foldhash::fast::FixedState;

/// How many values one thread keeps for one kind of lookup; more hot credentials than this on
/// one thread share the slots and are served as before, from the shared values.
const SLOTS: usize = 64;

/// How many times in a row a key must miss at its slot to be kept there. With many keys taking
/// turns at a slot, the same one seldom misses three times in a row.
const MISSES_TO_KEEP: u8 = 3;

/// Values a thread has met, each under its key and the source it came from: a direct-mapped
/// table of [`SLOTS`] slots, a key's hash naming its slot.
pub(crate) struct ThreadCopies<K, V> {
    slots: Vec<Slot<K, V>>,
}

struct Slot<K, V> {
    /// The hash of the last key that missed here, and how many times in a row it missed.
    missed: u64,
    misses: u8,
    kept: Option<Kept<K, V>>,
}

struct Kept<K, V> {
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

    /// The value kept from `source` under a key that `answers` accepts, with its value: this
    /// thread's copy, made with `copy` at the first hit after the value was kept.
    fn get(
        &mut self,
        source: u64,
        hash: u64,
        answers: impl FnOnce(&K, &V) -> bool,
        copy: impl FnOnce(&V) -> V,
    ) -> Option<V> {
        let kept = self.slots.get_mut(slot_of(hash))?.kept.as_mut()?;
        if kept.source != source || !answers(&kept.key, &kept.value) {
            return None;
        }
        if !kept.copied {
            kept.value = copy(&kept.value);
            kept.copied = true;
        }
        Some(kept.value.clone())
    }

    /// Whether to keep a key hashed to `hash` that just missed: when it is the
    /// [`MISSES_TO_KEEP`]th miss in a row of that hash at its slot.
    fn admits(&mut self, hash: u64) -> bool {
        if self.slots.is_empty() {
            self.slots.resize_with(SLOTS, || Slot {
                missed: 0,
                misses: 0,
                kept: None,
            });
        }
        let slot = &mut self.slots[slot_of(hash)];
        if slot.missed == hash {
            slot.misses = slot.misses.saturating_add(1);
        } else {
            slot.missed = hash;
            slot.misses = 1;
        }
        slot.misses >= MISSES_TO_KEEP
    }

    /// Keeps the shared `value`, from `source`, under `key`, in place of what its slot held.
    fn put(&mut self, source: u64, hash: u64, key: K, value: V) {
        self.slots[slot_of(hash)].kept = Some(Kept {
            source,
            key,
            value,
            copied: false,
        });
    }
}

/// A lookup through this thread's `copies`: the copy kept from `source` that `answers` accepts
/// (its key is the one looked up, and the value still answers), else what `find` finds among
/// the shared values, kept under `key()` if the thread keeps meeting it. `copy` makes this
/// thread's copy of a value kept.
pub(crate) fn find_through<K, V: Clone>(
    copies: &'static LocalKey<RefCell<ThreadCopies<K, V>>>,
    source: u64,
    hash: u64,
    answers: impl FnOnce(&K, &V) -> bool,
    copy: impl FnOnce(&V) -> V,
    find: impl Fn() -> Option<V>,
    key: impl FnOnce() -> K,
) -> Option<V> {
    let found = copies.try_with(|copies| {
        let mut copies = copies.try_borrow_mut().ok()?;
        if let Some(copy) = copies.get(source, hash, answers, copy) {
            return Some(Some(copy));
        }
        let found = find();
        if let Some(value) = &found
            && copies.admits(hash)
        {
            copies.put(source, hash, key(), value.clone());
        }
        Some(found)
    });
    match found {
        Ok(Some(found)) => found,
        // This thread's copies are out of reach (being dropped, or in use further up the
        // stack): the shared values answer.
        _ => find(),
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
    use std::{cell::Cell, sync::Arc};

    use super::*;

    thread_local! {
        static NAMES: RefCell<ThreadCopies<String, Arc<str>>> =
            const { RefCell::new(ThreadCopies::new()) };
    }

    /// Looks `key` up through this thread's copies, the shared value being `shared`; counts the
    /// keys made in `keys_made`.
    fn find(source: u64, key: &str, shared: &Arc<str>, keys_made: &Cell<usize>) -> Arc<str> {
        find_through(
            &NAMES,
            source,
            hash_of(key),
            |kept, _| kept == key,
            |value| Arc::from(&**value),
            || Some(Arc::clone(shared)),
            || {
                keys_made.set(keys_made.get() + 1);
                key.to_owned()
            },
        )
        .unwrap()
    }

    #[test]
    fn a_key_met_again_and_again_is_served_a_copy_of_its_own() {
        let shared: Arc<str> = Arc::from("ada");
        let keys_made = Cell::new(0);
        let served: Vec<_> = (0..5).map(|_| find(1, "u1", &shared, &keys_made)).collect();
        assert!(served.iter().all(|name| **name == *shared));
        let missed = &served[..3];
        assert!(
            missed.iter().all(|name| Arc::ptr_eq(name, &shared)),
            "kept at the third"
        );
        assert!(!Arc::ptr_eq(&served[3], &shared), "the thread's own copy");
        assert!(Arc::ptr_eq(&served[3], &served[4]), "copied once");
        assert_eq!(keys_made.get(), 1);
    }

    #[test]
    fn another_source_is_not_served_what_one_kept() {
        let shared: Arc<str> = Arc::from("ada");
        let keys_made = Cell::new(0);
        for _ in 0..4 {
            find(2, "u2", &shared, &keys_made);
        }
        let newer: Arc<str> = Arc::from("ada lovelace");
        assert_eq!(&*find(3, "u2", &newer, &keys_made), "ada lovelace");
    }

    #[test]
    fn keys_that_take_turns_at_a_slot_are_never_kept() {
        let mut copies: ThreadCopies<String, Arc<str>> = ThreadCopies::new();
        let (a, b) = (hash_of("a"), hash_of("a") ^ 1);
        assert_eq!(slot_of(a), slot_of(b));
        for hash in [a, a, b, a, a, b] {
            assert!(!copies.admits(hash));
        }
        assert!(!copies.admits(a));
        assert!(!copies.admits(a));
        assert!(
            copies.admits(a),
            "the same key missing three times in a row"
        );
    }
}
