//! The [`RevocationListener`]: applies a shared store's [`RevocationFeed`] to the
//! [`CachingStore`] in front of it.

use std::{
    fmt,
    sync::{
        Arc, Weak,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use tokio::task::JoinHandle;

use super::{CachingStore, Shared};
use crate::store::{Announcement, RevocationFeed, RevocationSubscription, StoreError, TokenStore};

/// First wait before subscribing again after a failure; doubled up to [`MAX_RETRY_DELAY`].
const MIN_RETRY_DELAY: Duration = Duration::from_millis(100);
const MAX_RETRY_DELAY: Duration = Duration::from_secs(5);

#[cfg_attr(docsrs, doc(cfg(any(feature = "redis", feature = "postgres"))))]
impl<Cache: TokenStore, Store: RevocationFeed> CachingStore<Cache, Store> {
    /// Drops tokens revoked on other instances from this cache as soon as the store announces
    /// them, instead of within the cache lifetime.
    ///
    /// Spawns a Tokio task (call it from within a runtime) that subscribes to the store's
    /// [`RevocationFeed`]. When the subscription fails, the task subscribes again with a growing
    /// delay (100 ms up to 5 s) and, once subscribed, empties the cache, since announcements may
    /// have been lost meanwhile. Even so, a lost announcement delays a revocation by at most the
    /// cache lifetime.
    ///
    /// The task stops when the returned listener is dropped or every clone of the store is.
    pub fn listen_for_revocations(&self) -> RevocationListener {
        let subscribed = Arc::new(AtomicBool::new(false));
        let task = tokio::spawn(listen(
            Arc::downgrade(&self.shared),
            self.shared.store.clone(),
            Arc::clone(&subscribed),
        ));
        RevocationListener { task, subscribed }
    }
}

/// The task that applies revocations announced by a shared store to a [`CachingStore`]; stops
/// when dropped.
#[must_use = "the listener stops when dropped"]
#[cfg_attr(docsrs, doc(cfg(any(feature = "redis", feature = "postgres"))))]
pub struct RevocationListener {
    task: JoinHandle<()>,
    subscribed: Arc<AtomicBool>,
}

impl RevocationListener {
    /// Whether the listener is subscribed right now: announcements are being applied.
    pub fn is_subscribed(&self) -> bool {
        self.subscribed.load(Ordering::SeqCst)
    }

    /// Stops listening.
    pub fn stop(self) {
        // Dropping aborts the task.
    }
}

impl Drop for RevocationListener {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl fmt::Debug for RevocationListener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RevocationListener")
            .field("subscribed", &self.is_subscribed())
            .finish()
    }
}

/// Why relaying announcements stopped.
enum Ended {
    /// The subscription failed: subscribe again.
    Lost(StoreError),
    /// Every clone of the caching store is gone: stop.
    StoreGone,
}

async fn listen<Cache: TokenStore, Store: RevocationFeed>(
    shared: Weak<Shared<Cache, Store>>,
    store: Store,
    subscribed: Arc<AtomicBool>,
) {
    let mut delay = MIN_RETRY_DELAY;
    loop {
        match store.subscribe().await {
            Ok(subscription) => {
                delay = MIN_RETRY_DELAY;
                // Subscribed first, emptied second: what was revoked before the subscription is
                // no longer cached, and what is revoked after it will be announced.
                let Some(cache) = shared.upgrade() else {
                    return;
                };
                cache.invalidate_all().await;
                drop(cache);
                subscribed.store(true, Ordering::SeqCst);
                tracing::info!(target: "tower_impersonation", "listening for revocations");
                let ended = relay(subscription, &shared).await;
                subscribed.store(false, Ordering::SeqCst);
                match ended {
                    Ended::StoreGone => return,
                    Ended::Lost(error) => tracing::warn!(
                        target: "tower_impersonation",
                        %error,
                        "revocation subscription lost; subscribing again"
                    ),
                }
            }
            Err(error) => tracing::warn!(
                target: "tower_impersonation",
                %error,
                "could not subscribe to revocations; retrying"
            ),
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(MAX_RETRY_DELAY);
        if shared.strong_count() == 0 {
            return;
        }
    }
}

/// Applies announcements until the subscription fails or the caching store is gone.
async fn relay<Cache: TokenStore, Store: TokenStore>(
    mut subscription: impl RevocationSubscription,
    shared: &Weak<Shared<Cache, Store>>,
) -> Ended {
    loop {
        let announcement = match subscription.next().await {
            Ok(announcement) => announcement,
            Err(error) => return Ended::Lost(error),
        };
        let Some(cache) = shared.upgrade() else {
            return Ended::StoreGone;
        };
        match announcement {
            Announcement::Token(digest) => cache.invalidate(&digest).await,
            Announcement::JwtRevocations => cache.forget_jwt_revocations(),
            Announcement::Unreadable => {
                tracing::warn!(
                    target: "tower_impersonation",
                    "unreadable revocation announcement; emptying the token cache"
                );
                cache.invalidate_all().await;
            }
        }
    }
}
