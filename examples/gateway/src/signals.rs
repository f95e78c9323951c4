//! The signals the gateway answers: SIGTERM and Ctrl-C end it gracefully; SIGHUP reopens the
//! audit log and reloads the users file.

use std::{path::PathBuf, sync::Arc};

use crate::{app::accounts::Accounts, audit_log::log_file::LogFile};

/// Completes on the first SIGTERM or Ctrl-C (SIGINT).
pub async fn shutdown_signal() {
    let interrupt = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            eprintln!("gateway: cannot listen for Ctrl-C: {e}");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut terminate) => {
                terminate.recv().await;
            }
            Err(e) => {
                eprintln!("gateway: cannot listen for SIGTERM: {e}");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => {}
        () = terminate => {}
    }
    tracing::info!(
        target: "gateway",
        "shutting down: no new connections; finishing the requests in flight"
    );
}

/// What SIGHUP makes the gateway do: reopen `--audit-log FILE` at its path, as logrotate expects
/// after renaming it, then read the `--users` file again. The gateway goes on serving: SIGHUP
/// never stops it.
pub struct Reload {
    pub log_file: Option<LogFile>,
    pub users: Option<UsersFile>,
}

impl Reload {
    /// Reloads on every SIGHUP from now on, in a task of its own, returned; `None` where there are
    /// no signals to listen for.
    pub fn on_hangup(self) -> Option<tokio::task::JoinHandle<()>> {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            match signal(SignalKind::hangup()) {
                Ok(mut hangups) => Some(tokio::spawn(async move {
                    while hangups.recv().await.is_some() {
                        self.reload();
                    }
                })),
                Err(e) => {
                    eprintln!("gateway: cannot listen for SIGHUP: {e}");
                    None
                }
            }
        }
        #[cfg(not(unix))]
        None
    }

    fn reload(&self) {
        if let Some(log_file) = &self.log_file {
            reopen(log_file);
        }
        if let Some(users) = &self.users {
            users.reload();
        }
    }
}

/// The `--users` file and the accounts read from it.
pub struct UsersFile {
    pub path: PathBuf,
    pub accounts: Arc<Accounts>,
}

impl UsersFile {
    /// Replaces the members and their keys with the file's, and says so; a file that cannot be
    /// read or is refused leaves them as they were, and the error names the file and the problem.
    fn reload(&self) {
        let path = self.path.display();
        let replaced = std::fs::read_to_string(&self.path)
            .map_err(|e| e.to_string())
            .and_then(|json| self.accounts.replace_from_json(&json));
        match replaced {
            Ok(()) => tracing::info!(target: "gateway", "SIGHUP: reloaded the users file {path}"),
            Err(e) => {
                tracing::error!(
                    target: "gateway",
                    "SIGHUP: cannot reload the users file {path}: {e}; the members and keys stay \
                     as they were"
                );
                eprintln!(
                    "gateway: SIGHUP: cannot reload --users {path}: {e}; the members and keys \
                     stay as they were"
                );
            }
        }
    }
}

/// Reopens the log file, and says so in the new file, or on failure in the old one and on
/// standard error.
fn reopen(log_file: &LogFile) {
    match log_file.reopen() {
        Ok(()) => tracing::info!(target: "gateway", "SIGHUP: reopened the log file"),
        Err(e) => {
            let path = log_file.path().display();
            tracing::error!(
                target: "gateway",
                "SIGHUP: cannot reopen the log file {path}: {e}; the log goes on in the file it had"
            );
            eprintln!(
                "gateway: SIGHUP: cannot reopen --audit-log {path}: {e}; the log goes on in the \
                 file it had"
            );
        }
    }
}
