//! How a Redis failure becomes a [`StoreError`], without the URL or a secret.

use std::{future::Future, time::Duration};

use redis::{ErrorKind, RedisError, RedisResult};

use crate::store::StoreError;

/// Runs a Redis operation within `timeout`, mapping every failure to [`StoreError::Backend`].
pub(super) async fn within<T>(
    timeout: Duration,
    action: &str,
    operation: impl Future<Output = RedisResult<T>>,
) -> Result<T, StoreError> {
    match tokio::time::timeout(timeout, operation).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(error)) => Err(backend(action, &error)),
        Err(_) => Err(StoreError::Backend(format!(
            "redis: could not {action}: timed out after {} ms",
            timeout.as_millis()
        ))),
    }
}

/// A message for a Redis failure: its category, and the server's own words for server errors.
/// Client-side details (which may name the URL, and with it a password) are left out; token
/// secrets never reach Redis, so no message can hold one.
pub(super) fn backend(action: &str, error: &RedisError) -> StoreError {
    let mut why = error.category().to_owned();
    if error.is_timeout() {
        why.push_str(", timed out");
    } else if error.is_connection_refusal() {
        why.push_str(", connection refused");
    } else if error.is_connection_dropped() {
        why.push_str(", connection dropped");
    }
    let from_server = matches!(error.kind(), ErrorKind::Server(_) | ErrorKind::Extension);
    if from_server {
        if let Some(code) = error.code() {
            why.push_str(": ");
            why.push_str(code);
        }
        if let Some(detail) = error.detail() {
            why.push(' ');
            why.push_str(detail);
        }
    }
    StoreError::Backend(format!("redis: could not {action}: {why}"))
}

#[cfg(test)]
mod tests {
    use redis::Client;

    use super::*;

    #[test]
    fn client_errors_do_not_repeat_the_url() {
        let error = Client::open("redis://:hunter2@[not a host/").unwrap_err();
        let StoreError::Backend(message) = backend("read the Redis URL", &error) else {
            unreachable!()
        };
        assert!(!message.contains("hunter2"), "{message}");
        assert!(message.starts_with("redis: could not read the Redis URL"));
    }
}
