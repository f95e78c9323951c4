//! The gateway's log, audit events included: each event is formatted into one line on the thread
//! that emits it, by a formatter written for speed (no colours, no `Debug` round trip for plain
//! strings), and handed to `tracing-appender`'s writer thread, which writes in batches to
//! standard output or a file. A request never waits on a write: when the writer falls behind by
//! more than [`BUFFERED_LINES`], lines are dropped, counted, and the count is reported in the log
//! itself and on standard error.

use std::{
    cell::RefCell,
    fmt::{self, Write as _},
    fs::OpenOptions,
    io::{self, BufWriter, Write},
    path::Path,
    sync::atomic::{AtomicUsize, Ordering},
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use clap::ValueEnum;
use tracing::{Event, Level, Subscriber, field::Field};
use tracing_appender::non_blocking::{ErrorCounter, NonBlocking, NonBlockingBuilder, WorkerGuard};
use tracing_subscriber::{
    field::{RecordFields, Visit},
    fmt::{FmtContext, FormatEvent, FormatFields, FormattedFields, MakeWriter, format::Writer},
    registry::LookupSpan,
};

/// Lines the writer thread may fall behind by before new ones are dropped (and counted): about
/// 50 MB of audit lines, a second and a half of the gateway's best rate on two cores.
pub const BUFFERED_LINES: usize = 128_000;

/// How long the writer thread waits after writing a batch, so the lines of the next one gather
/// in its queue instead of each waking it (a futex wake and wait per line otherwise).
const GATHER_FOR: Duration = Duration::from_millis(10);

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
    writer: NonBlocking,
    guard: WorkerGuard,
    dropped: ErrorCounter,
}

/// The log's subscriber: events and spans at `INFO` and above, as lines in `format`, handed to
/// `writer`.
pub fn subscriber(
    format: LogFormat,
    writer: impl for<'w> MakeWriter<'w> + Send + Sync + 'static,
) -> impl Subscriber + Send + Sync + 'static {
    let lines = Lines {
        json: format == LogFormat::Json,
    };
    tracing_subscriber::fmt()
        .with_max_level(Level::INFO)
        .fmt_fields(lines)
        .event_format(lines)
        .with_writer(writer)
        .finish()
}

impl AuditLog {
    /// Installs the log as the process's subscriber, at `INFO` and above, writing to `file`
    /// (appended to) or standard output.
    pub fn install(format: LogFormat, file: Option<&Path>) -> io::Result<Self> {
        let sink: Box<dyn Write + Send> = match file {
            Some(path) => Box::new(OpenOptions::new().create(true).append(true).open(path)?),
            None => Box::new(io::stdout()),
        };
        let log = Self::writing_to(sink, BUFFERED_LINES);
        tracing::subscriber::set_global_default(subscriber(format, log.writer()))
            .map_err(io::Error::other)?;
        Ok(log)
    }

    /// The writer thread, writing to `sink`, dropping lines past `limit` waiting.
    pub fn writing_to(sink: impl Write + Send + 'static, limit: usize) -> Self {
        // The writer thread writes every line waiting, then flushes: one write per batch.
        let (writer, guard) = NonBlockingBuilder::default()
            .lossy(true)
            .buffered_lines_limit(limit)
            .thread_name("audit-log")
            .finish(Batches(BufWriter::with_capacity(1 << 16, sink)));
        Self {
            dropped: writer.error_counter(),
            writer,
            guard,
        }
    }

    /// What hands lines to the writer thread.
    pub fn writer(&self) -> impl for<'w> MakeWriter<'w> + Send + Sync + 'static {
        PerThread::new(self.writer.clone())
    }

    /// Says, in the log and on standard error, how many lines were dropped since it last looked,
    /// once a second for as long as the task runs. Needs a tokio runtime.
    pub fn report_drops(&self) -> tokio::task::JoinHandle<()> {
        let dropped = self.dropped.clone();
        tokio::spawn(async move {
            let mut reported = 0;
            loop {
                tokio::time::sleep(DROP_REPORT_EVERY).await;
                let total = dropped.dropped_lines();
                if total > reported {
                    report(total - reported, total);
                    reported = total;
                }
            }
        })
    }

    /// Writes out every line still waiting, then says how many were dropped in all, if any, and
    /// returns that count.
    pub fn finish(self) -> usize {
        let Self {
            writer,
            guard,
            dropped,
        } = self;
        drop(writer);
        drop(guard);
        let total = dropped.dropped_lines();
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

/// The writer thread's output: buffered, and paused for [`GATHER_FOR`] after each flush, which
/// `tracing-appender`'s worker calls once it has emptied its queue. Without the pause the worker
/// would empty the queue of its one line, park, and be woken by the next line's sender: under
/// load, a futex wake on the request's thread and a futex wait on the writer's for every line.
/// With it, senders find the worker busy and only queue their line.
struct Batches<W: Write>(BufWriter<W>);

impl<W: Write> Write for Batches<W> {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        self.0.write(bytes)
    }

    fn write_all(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.0.write_all(bytes)
    }

    fn flush(&mut self) -> io::Result<()> {
        let flushed = self.0.flush();
        std::thread::sleep(GATHER_FOR);
        flushed
    }
}

/// Hands each line to the thread's own clone of the writer, made on the thread's first line.
/// `NonBlocking` itself makes a clone per line, and a clone of its channel's sender increments
/// and then decrements a count every thread shares: contended atomic writes on every event.
struct PerThread {
    writer: NonBlocking,
    /// Tells this log's clones from those of another log made earlier on the same thread.
    id: usize,
}

impl PerThread {
    fn new(writer: NonBlocking) -> Self {
        static LOGS: AtomicUsize = AtomicUsize::new(0);
        Self {
            writer,
            id: LOGS.fetch_add(1, Ordering::Relaxed),
        }
    }
}

thread_local! {
    static THREAD_WRITER: RefCell<Option<(usize, NonBlocking)>> = const { RefCell::new(None) };
}

impl<'a> MakeWriter<'a> for PerThread {
    type Writer = ThreadWriter<'a>;

    fn make_writer(&'a self) -> Self::Writer {
        ThreadWriter(self)
    }
}

/// Writes to the thread's clone of the writer.
struct ThreadWriter<'a>(&'a PerThread);

impl Write for ThreadWriter<'_> {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        THREAD_WRITER.with(|writer| {
            let mut writer = writer.borrow_mut();
            let clone = match &mut *writer {
                Some((id, clone)) if *id == self.0.id => clone,
                other => &mut other.insert((self.0.id, self.0.writer.clone())).1,
            };
            clone.write(bytes)
        })
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// The line formatter, for events and for the fields of their spans.
#[derive(Clone, Copy)]
struct Lines {
    json: bool,
}

impl<S, N> FormatEvent<S, N> for Lines
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        // Built in a buffer of the thread's own, with no dynamic call per piece, then handed on
        // in one piece.
        LINE.with(|line| {
            let mut line = line.borrow_mut();
            line.clear();
            self.line(ctx, event, &mut line)?;
            writer.write_str(&line)
        })
    }
}

thread_local! {
    /// The line being formatted.
    static LINE: RefCell<String> = const { RefCell::new(String::new()) };
    /// The fields of a span being formatted.
    static FIELDS: RefCell<String> = const { RefCell::new(String::new()) };
}

impl Lines {
    fn line<S, N>(
        &self,
        ctx: &FmtContext<'_, S, N>,
        event: &Event<'_>,
        writer: &mut String,
    ) -> fmt::Result
    where
        S: Subscriber + for<'a> LookupSpan<'a>,
        N: for<'a> FormatFields<'a> + 'static,
    {
        let metadata = event.metadata();
        let level = metadata.level().as_str();
        if self.json {
            writer.write_str("{\"timestamp\":\"")?;
            write_timestamp(writer, SystemTime::now())?;
            writer.write_str("\",\"level\":\"")?;
            writer.write_str(level)?;
            writer.write_str("\",\"target\":")?;
            write_json_str(writer, metadata.target())?;
            writer.write_str(",\"spans\":[")?;
            if let Some(scope) = ctx.event_scope() {
                for (i, span) in scope.from_root().enumerate() {
                    writer.write_str(if i == 0 { "{\"name\":" } else { ",{\"name\":" })?;
                    write_json_str(writer, span.name())?;
                    let extensions = span.extensions();
                    if let Some(fields) = extensions.get::<FormattedFields<N>>()
                        && !fields.is_empty()
                    {
                        writer.write_char(',')?;
                        writer.write_str(fields)?;
                    }
                    writer.write_char('}')?;
                }
            }
            writer.write_str("],\"fields\":{")?;
            event.record(&mut Visitor::new(writer, true));
            writer.write_str("}}\n")
        } else {
            write_timestamp(writer, SystemTime::now())?;
            writer.write_str(match *metadata.level() {
                Level::ERROR => " ERROR ",
                Level::WARN => "  WARN ",
                Level::INFO => "  INFO ",
                Level::DEBUG => " DEBUG ",
                Level::TRACE => " TRACE ",
            })?;
            if let Some(scope) = ctx.event_scope() {
                for span in scope.from_root() {
                    writer.write_str(span.name())?;
                    let extensions = span.extensions();
                    if let Some(fields) = extensions.get::<FormattedFields<N>>()
                        && !fields.is_empty()
                    {
                        writer.write_char('{')?;
                        writer.write_str(fields)?;
                        writer.write_char('}')?;
                    }
                    writer.write_str(": ")?;
                }
            }
            writer.write_str(metadata.target())?;
            writer.write_str(": ")?;
            event.record(&mut Visitor::new(writer, false));
            writer.write_char('\n')
        }
    }
}

impl<'writer> FormatFields<'writer> for Lines {
    fn format_fields<R: RecordFields>(
        &self,
        mut writer: Writer<'writer>,
        fields: R,
    ) -> fmt::Result {
        FIELDS.with(|formatted| {
            let mut formatted = formatted.borrow_mut();
            formatted.clear();
            fields.record(&mut Visitor::new(&mut formatted, self.json));
            writer.write_str(&formatted)
        })
    }
}

/// Writes fields as `name=value` separated by spaces (strings quoted and escaped as `Debug`
/// does), or as the members of a JSON object.
struct Visitor<'a> {
    writer: &'a mut String,
    json: bool,
    first: bool,
}

impl<'a> Visitor<'a> {
    fn new(writer: &'a mut String, json: bool) -> Self {
        Self {
            writer,
            json,
            first: true,
        }
    }

    /// The separator and the field's name, up to where its value goes.
    fn name(&mut self, field: &Field) -> fmt::Result {
        let first = std::mem::replace(&mut self.first, false);
        if self.json {
            if !first {
                self.writer.write_char(',')?;
            }
            self.writer.write_char('"')?;
            self.writer.write_str(field.name())?;
            self.writer.write_str("\":")
        } else {
            if !first {
                self.writer.write_char(' ')?;
            }
            // The message goes first and bare, as tracing-subscriber writes it.
            if field.name() == "message" {
                return Ok(());
            }
            self.writer.write_str(field.name())?;
            self.writer.write_char('=')
        }
    }
}

impl Visit for Visitor<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        let _ = self.name(field).and_then(|()| {
            if self.json {
                write_json_str(self.writer, value)
            } else if field.name() == "message" {
                LineEscaped(self.writer).write_str(value)
            } else if is_plain(value) {
                self.writer.write_char('"')?;
                self.writer.write_str(value)?;
                self.writer.write_char('"')
            } else {
                write!(self.writer, "{value:?}")
            }
        });
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        let _ = self
            .name(field)
            .and_then(|()| write!(self.writer, "{value}"));
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        let _ = self
            .name(field)
            .and_then(|()| write!(self.writer, "{value}"));
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        let _ = self
            .name(field)
            .and_then(|()| self.writer.write_str(if value { "true" } else { "false" }));
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        let _ = self.name(field).and_then(|()| {
            if self.json {
                self.writer.write_char('"')?;
                write!(JsonEscaped(self.writer), "{value:?}")?;
                self.writer.write_char('"')
            } else {
                write!(LineEscaped(self.writer), "{value:?}")
            }
        });
    }
}

/// Escapes control characters (`\n`, `\r`, `\t`, `\u{1b}`, ...) in what it is given, so no value
/// written bare in a text line can start a line of its own.
struct LineEscaped<'a, W>(&'a mut W);

impl<W: fmt::Write> fmt::Write for LineEscaped<'_, W> {
    fn write_str(&mut self, text: &str) -> fmt::Result {
        let mut plain = 0;
        for (i, byte) in text.bytes().enumerate() {
            if byte >= 0x20 && byte != 0x7f {
                continue;
            }
            self.0.write_str(&text[plain..i])?;
            write!(self.0, "{}", char::from(byte).escape_default())?;
            plain = i + 1;
        }
        self.0.write_str(&text[plain..])
    }
}

/// Whether `text` is printable ASCII without quotes or backslashes: written as it is between
/// quotes. One pass over every byte, without an early exit, so the compiler vectorises it.
fn is_plain(text: &str) -> bool {
    text.bytes().fold(true, |plain, byte| {
        plain & (0x20..0x7f).contains(&byte) & (byte != b'"') & (byte != b'\\')
    })
}

/// `text` as a JSON string.
fn write_json_str(writer: &mut impl fmt::Write, text: &str) -> fmt::Result {
    writer.write_char('"')?;
    JsonEscaped(writer).write_str(text)?;
    writer.write_char('"')
}

/// Escapes what it is given as the inside of a JSON string.
struct JsonEscaped<'a, W>(&'a mut W);

impl<W: fmt::Write> fmt::Write for JsonEscaped<'_, W> {
    fn write_str(&mut self, text: &str) -> fmt::Result {
        if is_plain(text) {
            return self.0.write_str(text);
        }
        let mut plain = 0;
        for (i, byte) in text.bytes().enumerate() {
            let escape = match byte {
                b'"' => "\\\"",
                b'\\' => "\\\\",
                b'\n' => "\\n",
                b'\r' => "\\r",
                b'\t' => "\\t",
                0..=0x1f | 0x7f => "",
                _ => continue,
            };
            self.0.write_str(&text[plain..i])?;
            if escape.is_empty() {
                write!(self.0, "\\u{byte:04x}")?;
            } else {
                self.0.write_str(escape)?;
            }
            plain = i + 1;
        }
        self.0.write_str(&text[plain..])
    }
}

/// `at` in RFC 3339, UTC, to the microsecond: `2026-01-02T03:04:05.000006Z`. Digits are placed
/// by hand: `write!` with seven padded numbers costs ten times as much.
fn write_timestamp(writer: &mut impl fmt::Write, at: SystemTime) -> fmt::Result {
    let since_epoch = at.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = since_epoch.as_secs();
    let (year, month, day) = civil_from_days((secs / 86_400) as i64);
    let in_day = secs % 86_400;
    let mut text = *b"0000-00-00T00:00:00.000000Z";
    let mut put = |at: usize, width: usize, mut value: u64| {
        for digit in text[at..at + width].iter_mut().rev() {
            *digit = b'0' + (value % 10) as u8;
            value /= 10;
        }
    };
    put(0, 4, year.clamp(0, 9999) as u64);
    put(5, 2, month.into());
    put(8, 2, day.into());
    put(11, 2, in_day / 3600);
    put(14, 2, in_day / 60 % 60);
    put(17, 2, in_day % 60);
    put(20, 6, since_epoch.subsec_micros().into());
    writer.write_str(std::str::from_utf8(&text).map_err(|_| fmt::Error)?)
}

/// The proleptic Gregorian date of a count of days since 1970-01-01 (Howard Hinnant's
/// `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let shifted_month = (5 * day_of_year + 2) / 153;
    let day = (day_of_year - (153 * shifted_month + 2) / 5 + 1) as u32;
    let month = if shifted_month < 10 {
        shifted_month + 3
    } else {
        shifted_month - 9
    } as u32;
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}
