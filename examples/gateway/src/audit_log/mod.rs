//! The gateway's log, audit events included: each event is formatted into one line on the thread
//! that emits it (`line_format`) and appended to a buffer of that thread's own, which a writer
//! thread takes and writes out every few milliseconds (`thread_buffers`), to standard output or
//! a file. A request never waits on a write: when the writer falls behind by more than
//! [`LINES_PER_THREAD`] lines of one thread, that thread's new lines are dropped, counted, and the
//! count is reported in the log itself and on standard error. A log written to a file can be
//! pointed at a new file at the same path ([`log_file`]), as log rotation needs.

mod decision_lines;
mod line_format;
pub mod log_file;
pub mod request_client;
mod thread_buffers;

use std::{
    io::{self, Write},
    path::{Path, PathBuf},
    time::Duration,
};

use clap::ValueEnum;
use tracing::Subscriber;
use tracing_subscriber::{filter::LevelFilter, layer::SubscriberExt};

pub use decision_lines::DecisionLines;
use line_format::LineFormat;
pub(crate) use line_format::is_plain;
use log_file::{LogFile, open_for_appending};
pub use thread_buffers::Lines;
use thread_buffers::Writer;

/// Lines each thread may have waiting for the writer thread before its new ones are dropped
/// (and counted): about 25 MB of audit lines a thread, room for the writer to pause a moment
/// while the gateway serves at its busiest.
pub const LINES_PER_THREAD: usize = 64_000;

/// How often the count of dropped lines is looked at.
const DROP_REPORT_EVERY: Duration = Duration::from_secs(1);

/// How the log is written.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// One line an event: time, level, spans, target, then its fields as name="value"
    #[default]
    Text,
    /// One JSON object an event: timestamp, level, target, spans, fields
    Json,
}

/// The running log: keep it until the end, then [`AuditLog::finish`] it.
pub struct AuditLog {
    writer: Writer,
    /// Where the log is written, if to a file.
    file: Option<PathBuf>,
}

/// The log's subscriber: events and spans at `INFO` and above, as lines in `format`, appended
/// to `lines`.
pub fn subscriber(format: LogFormat, lines: Lines) -> impl Subscriber + Send + Sync + 'static {
    tracing_subscriber::registry()
        .with(LineFormat::new(format == LogFormat::Json, lines))
        .with(LevelFilter::INFO)
}

impl AuditLog {
    /// Installs the log as the process's subscriber, at `INFO` and above, writing to `file`
    /// (appended to) or standard output.
    pub fn install(format: LogFormat, file: Option<&Path>) -> io::Result<Self> {
        let sink: Box<dyn Write + Send> = match file {
            Some(path) => Box::new(open_for_appending(path)?),
            None => Box::new(io::stdout()),
        };
        let mut log = Self::writing_to(sink, LINES_PER_THREAD)?;
        log.file = file.map(Path::to_owned);
        tracing::subscriber::set_global_default(subscriber(format, log.lines()))
            .map_err(io::Error::other)?;
        Ok(log)
    }

    /// Starts the writer thread, writing to `sink`; each thread may have `limit` lines waiting.
    pub fn writing_to(sink: impl Write + Send + 'static, limit: usize) -> io::Result<Self> {
        Ok(Self {
            writer: Writer::spawn(sink, limit)?,
            file: None,
        })
    }

    /// The file the log is written to, to reopen after a rotation; `None` when the log goes to
    /// standard output.
    pub fn file(&self) -> Option<LogFile> {
        let path = self.file.as_deref()?;
        Some(LogFile::new(path, self.lines()))
    }

    /// The audit of the impersonation layer and the services, writing their entries in `format`
    /// straight into the log, as the subscriber would write the crate's `TracingAudit` events,
    /// only cheaper.
    pub fn decision_lines(&self, format: LogFormat) -> DecisionLines {
        DecisionLines::new(format == LogFormat::Json, self.lines())
    }

    /// What the subscriber appends lines to.
    pub fn lines(&self) -> Lines {
        self.writer.lines().clone()
    }

    /// Says, in the log and on standard error, how many lines were dropped since it last looked,
    /// once a second for as long as the task runs. Needs a tokio runtime.
    pub fn report_drops(&self) -> tokio::task::JoinHandle<()> {
        let lines = self.lines();
        tokio::spawn(async move {
            let mut reported = 0;
            loop {
                tokio::time::sleep(DROP_REPORT_EVERY).await;
                let total = lines.dropped();
                if total > reported {
                    report(total - reported, total);
                    reported = total;
                }
            }
        })
    }

    /// Writes out every line logged until now, then says how many were dropped in all, if any,
    /// and returns that count. Lines logged after this are dropped.
    pub fn finish(self) -> usize {
        let total = self.writer.finish();
        if total > 0 {
            eprintln!("gateway: the log writer fell behind and dropped {total} lines in all");
        }
        total
    }
}

fn report(dropped: usize, total: usize) {
    // The event may itself be dropped if the writer is still behind; standard error is not.
    tracing::warn!(
        target: "gateway::audit_log",
        dropped,
        total,
        "the log writer fell behind and dropped lines"
    );
    eprintln!("gateway: the log writer fell behind and dropped {dropped} lines ({total} in all)");
}
