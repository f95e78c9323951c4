//! A service's work run to its end even when its caller stops waiting, so that a change made in
//! the store always reaches the audit trail.

use std::future::Future;

/// Runs `work` to its end even if the returned future is dropped first (a client that went away):
/// as a task of the running tokio runtime, or inline where there is none (then dropping the
/// future drops the work). A task that panics or is cancelled answers `failed()`.
pub(crate) async fn run_to_end<T, W, F>(work: W, failed: F) -> T
where
    T: Send + 'static,
    W: Future<Output = T> + Send + 'static,
    F: FnOnce() -> T,
{
    if let Ok(runtime) = tokio::runtime::Handle::try_current() {
        use tracing::{Instrument as _, instrument::WithSubscriber as _};
        // In the caller's span and subscriber, as if inline. Dropping a JoinHandle detaches its
        // task; it never cancels it.
        let work = work.in_current_span().with_current_subscriber();
        return match runtime.spawn(work).await {
            Ok(answer) => answer,
            Err(error) => {
                // Not the panic's message: nothing says it holds no secret.
                let panicked = error.is_panic();
                tracing::error!(target: "tower_impersonation", panicked, "a service's work failed");
                failed()
            }
        };
    }
    work.await
}

#[cfg(test)]
mod tests {
    use std::{
        future::Future as _,
        pin::pin,
        sync::{
            Arc,
            atomic::{AtomicBool, Ordering},
        },
        task::{Context, Waker},
        time::Duration,
    };

    use tokio::sync::{Notify, oneshot};
    use tracing::{Instrument as _, Span};

    use super::run_to_end;

    #[tokio::test]
    async fn work_dropped_by_its_caller_still_runs_to_its_end() {
        let (started_tx, started) = oneshot::channel();
        let (finished_tx, finished) = oneshot::channel();
        let release = Arc::new(Notify::new());
        let held = Arc::clone(&release);
        let work = async move {
            let _ = started_tx.send(());
            held.notified().await;
            let _ = finished_tx.send(());
        };
        let caller = tokio::spawn(run_to_end(work, || ()));
        started.await.unwrap();
        caller.abort();
        assert!(caller.await.unwrap_err().is_cancelled());

        release.notify_one();
        tokio::time::timeout(Duration::from_secs(60), finished)
            .await
            .expect("the work went on after its caller left")
            .unwrap();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn work_runs_in_the_callers_span_and_subscriber() {
        let _subscriber = tracing::subscriber::set_default(tracing_subscriber::registry());
        let work = async { Span::current().metadata().map(|span| span.name()) };
        let seen = run_to_end(work, || None)
            .instrument(tracing::info_span!("request"))
            .await;
        assert_eq!(seen, Some("request"));
    }

    #[tokio::test]
    async fn work_that_panics_answers_the_failure() {
        let answer = run_to_end(async { panic!("a bug in the work") }, || "failed").await;
        assert_eq!(answer, "failed");
    }

    #[test]
    fn without_a_runtime_the_work_runs_inline() {
        let ran = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&ran);
        let work = async move { flag.store(true, Ordering::SeqCst) };
        let mut answer = pin!(run_to_end(work, || ()));
        let polled = answer
            .as_mut()
            .poll(&mut Context::from_waker(Waker::noop()));
        assert!(polled.is_ready());
        assert!(ran.load(Ordering::SeqCst));
    }
}
