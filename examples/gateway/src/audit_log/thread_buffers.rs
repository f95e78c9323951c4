//! The log's non-blocking writer: every thread appends its lines to a buffer of its own, and one
//! writer thread takes each buffer in turn every [`GATHER_FOR`] and writes it out in one piece.
//!
//! A thread's buffer sits behind a lock only the writer thread ever contends for, and only for
//! the moment it swaps the buffer for an empty one. So a request never waits on a write, and no
//! line crosses threads on its own: a queue of lines (tracing-appender's, say) costs an
//! allocation, a channel send and a free on another core for every line.

use std::{
    cell::RefCell,
    io::Write,
    mem,
    sync::{
        Arc, Mutex, MutexGuard, PoisonError,
        atomic::{self, AtomicBool, AtomicUsize, Ordering},
    },
    thread::{self, JoinHandle},
    time::Duration,
};

/// How often the writer thread takes the lines waiting: at most this long after its request,
/// plus the time to write the lines before it, a line reaches the sink.
pub const GATHER_FOR: Duration = Duration::from_millis(10);

/// Where the log's lines go: the subscriber appends through it, the writer thread takes from it.
#[derive(Clone)]
pub struct Lines(Arc<Shared>);

struct Shared {
    /// Tells this log's buffers from those of another log made earlier on the same thread.
    id: usize,
    /// Every thread's buffer; the writer thread drops those of threads that have ended.
    buffers: Mutex<Vec<Arc<Mutex<Buffer>>>>,
    /// Lines a thread may have waiting before it drops new ones.
    limit: usize,
    dropped: AtomicUsize,
    /// Set when the log is finished: lines after that are dropped, and counted.
    closed: AtomicBool,
    /// Where the writer thread is to write from its next pass on; set and taken under `buffers`'
    /// lock, so no line appended after it was set is written to the sink before.
    next_sink: Mutex<Option<Sink>>,
}

/// Where the writer thread writes.
type Sink = Box<dyn Write + Send>;

/// One thread's lines, not yet written.
#[derive(Default)]
struct Buffer {
    text: String,
    lines: usize,
}

thread_local! {
    /// This thread's buffer, and the id of the log it belongs to.
    static BUFFER: RefCell<Option<(usize, Arc<Mutex<Buffer>>)>> = const { RefCell::new(None) };
}

impl Lines {
    /// Appends the line `write` makes to this thread's buffer. The line is dropped, and counted,
    /// when the thread already has `limit` lines waiting (the writer is behind), when the log is
    /// finished, or when an event is logged while this thread's line is being made.
    pub fn append(&self, write: impl FnOnce(&mut String)) {
        let appended = BUFFER.try_with(|slot| {
            let Ok(mut slot) = slot.try_borrow_mut() else {
                return false;
            };
            let buffer = match &*slot {
                Some((id, buffer)) if *id == self.0.id => buffer,
                _ => &slot.insert((self.0.id, self.register())).1,
            };
            let mut buffer = lock(buffer);
            // Read under the buffer's lock: the writer's last pass takes the buffer after
            // closing, so a line either is taken by it or sees the log closed.
            if buffer.lines >= self.0.limit || self.0.closed.load(Ordering::Relaxed) {
                return false;
            }
            write(&mut buffer.text);
            buffer.lines += 1;
            true
        });
        if appended != Ok(true) {
            self.0.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Lines dropped so far.
    pub fn dropped(&self) -> usize {
        self.0.dropped.load(Ordering::Relaxed)
    }

    /// Has the writer thread write to `sink` from its next pass on: every line appended after this
    /// returns goes there. The sink before is flushed and dropped once the lines the writer had
    /// taken for it are written, so no line is lost in the switch.
    pub fn switch_to(&self, sink: impl Write + Send + 'static) {
        let _buffers = lock(&self.0.buffers);
        *lock(&self.0.next_sink) = Some(Box::new(sink));
    }

    fn register(&self) -> Arc<Mutex<Buffer>> {
        let buffer = Arc::default();
        lock(&self.0.buffers).push(Arc::clone(&buffer));
        buffer
    }
}

/// The thread that writes the lines out.
pub struct Writer {
    lines: Lines,
    thread: JoinHandle<()>,
}

impl Writer {
    /// Starts the writer thread, writing to `sink`; each thread may have `limit` lines waiting.
    pub fn spawn(sink: impl Write + Send + 'static, limit: usize) -> std::io::Result<Self> {
        static LOGS: AtomicUsize = AtomicUsize::new(0);
        let lines = Lines(Arc::new(Shared {
            id: LOGS.fetch_add(1, Ordering::Relaxed),
            buffers: Mutex::default(),
            limit,
            dropped: AtomicUsize::new(0),
            closed: AtomicBool::new(false),
            next_sink: Mutex::default(),
        }));
        let shared = Arc::clone(&lines.0);
        let thread = thread::Builder::new()
            .name("audit-log".into())
            .spawn(move || write_until_closed(&shared, Box::new(sink)))?;
        Ok(Self { lines, thread })
    }

    /// The handle lines are appended through.
    pub fn lines(&self) -> &Lines {
        &self.lines
    }

    /// Closes the log, waits for the writer thread to write every line appended until then, and
    /// returns how many lines were dropped in all.
    pub fn finish(self) -> usize {
        self.lines.0.closed.store(true, Ordering::Relaxed);
        self.thread.thread().unpark();
        // A writer thread that panicked has lost its lines; they are not counted.
        let _ = self.thread.join();
        self.lines.dropped()
    }
}

/// The writer thread: takes every buffer, writes each, waits [`GATHER_FOR`], until the log is
/// closed; then one last pass. A pass that finds a sink switched to writes there, and from then on.
fn write_until_closed(shared: &Shared, mut sink: Sink) {
    let mut taken = Vec::new();
    loop {
        let closing = shared.closed.load(Ordering::Relaxed);
        if let Some(next) = shared.take_all(&mut taken) {
            // Every line taken before was written and flushed by the pass before.
            sink = next;
        }
        for batch in &mut taken {
            if !batch.text.is_empty() && sink.write_all(batch.text.as_bytes()).is_err() {
                // A sink that refuses lines (a full disk) loses them: counted, never silent.
                shared.dropped.fetch_add(batch.lines, Ordering::Relaxed);
            }
            batch.text.clear();
            // After a stall, do not keep a stall's worth of lines' room for good.
            batch.text.shrink_to(1 << 20);
            batch.lines = 0;
        }
        let _ = sink.flush();
        if closing {
            return;
        }
        thread::park_timeout(GATHER_FOR);
    }
}

impl Shared {
    /// Swaps every thread's buffer for one of `taken`'s emptied ones, and forgets the buffers
    /// of threads that had ended before their lines were taken; returns the sink switched to
    /// since the last pass, if any, where these lines go.
    fn take_all(&self, taken: &mut Vec<Buffer>) -> Option<Sink> {
        let mut buffers = lock(&self.buffers);
        let next_sink = lock(&self.next_sink).take();
        taken.resize_with(buffers.len(), Buffer::default);
        let mut batches = taken.iter_mut();
        buffers.retain(|buffer| {
            // An ended thread has dropped its handle, so only this list holds its buffer. The
            // count is read before the swap, so an ended thread appends nothing after it, and a
            // thread that ends after the swap keeps its buffer for the next pass. The fence pairs
            // with the handle's release on drop, so the thread's last line is seen.
            let ended = Arc::strong_count(buffer) == 1;
            atomic::fence(Ordering::Acquire);
            if let Some(batch) = batches.next() {
                mem::swap(&mut *lock(buffer), batch);
            }
            !ended
        });
        next_sink
    }
}

/// A panic while a line was made leaves the buffer usable: keep logging.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}
