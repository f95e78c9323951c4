//! A [`RedisStore`]'s revocation feed: announcements on its pub/sub channel.

use std::{fmt, future::Future, time::Duration};

use futures_util::StreamExt as _;
use redis::aio::{PubSubSink, PubSubStream};
use tokio::time::{Interval, MissedTickBehavior};

use super::{RedisStore, errors::within};
use crate::store::{Announcement, RevocationFeed, RevocationSubscription, StoreError};

/// How often an idle revocation subscription is checked with a `PING`, and how long the answer
/// may take.
const HEARTBEAT: Duration = Duration::from_secs(5);
const HEARTBEAT_TIMEOUT: Duration = Duration::from_secs(2);

#[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
impl RevocationFeed for RedisStore {
    type Subscription = RedisRevocations;

    /// Opens a pub/sub connection of its own, subscribed to the
    /// [revocation channel](RedisStore::revocation_channel).
    fn subscribe(&self) -> impl Future<Output = Result<RedisRevocations, StoreError>> + Send {
        let channel = self.revocation_channel();
        let subscribing = async move {
            let mut pubsub = self.client.get_async_pubsub().await?;
            pubsub.subscribe(&channel).await?;
            Ok(pubsub)
        };
        async move {
            let (sink, messages) = within(self.timeout, "subscribe to revocations", subscribing)
                .await?
                .split();
            let mut heartbeat = tokio::time::interval(HEARTBEAT);
            heartbeat.set_missed_tick_behavior(MissedTickBehavior::Delay);
            heartbeat.reset();
            Ok(RedisRevocations {
                sink,
                messages,
                heartbeat,
            })
        }
    }
}

/// Revocations announced on a [`RedisStore`]'s channel, on a pub/sub connection that is checked
/// with a `PING` every 5 seconds when idle, so a silently dropped connection is noticed.
#[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
pub struct RedisRevocations {
    sink: PubSubSink,
    messages: PubSubStream,
    heartbeat: Interval,
}

impl fmt::Debug for RedisRevocations {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisRevocations").finish_non_exhaustive()
    }
}

impl RevocationSubscription for RedisRevocations {
    async fn next(&mut self) -> Result<Announcement, StoreError> {
        loop {
            tokio::select! {
                message = self.messages.next() => {
                    let Some(message) = message else {
                        return Err(StoreError::Backend(
                            "redis: the revocation subscription was closed".to_owned(),
                        ));
                    };
                    let payload = std::str::from_utf8(message.get_payload_bytes()).unwrap_or("");
                    return Ok(Announcement::parse(payload));
                }
                _ = self.heartbeat.tick() => {
                    let ping = self.sink.ping::<redis::Value>();
                    within(HEARTBEAT_TIMEOUT, "check the revocation subscription", ping).await?;
                }
            }
        }
    }
}
