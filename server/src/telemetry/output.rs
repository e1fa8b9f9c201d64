//! Where log lines go: a buffer in front of stderr (or a file), written
//! out in bursts rather than one system call per line.
//!
//! A line is appended to the buffer under a lock, by the thread that logs
//! it. A warning or an error is written out at once, with everything before
//! it; other lines are written out by a background thread at most
//! [`FLUSH_EVERY`] later (or sooner, when the buffer fills). So a session's
//! `info` lines cost the server no system call and no thread wake-up each,
//! and the log keeps their order. What is buffered is written out when the
//! [`LogOutput`] is flushed at exit; a crash loses at most the last
//! [`FLUSH_EVERY`] of `info` lines.

use std::io::{BufWriter, Write};
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::Duration;

use tracing::{Level, Metadata};
use tracing_subscriber::fmt::MakeWriter;

/// The longest an `info` line waits in the buffer.
pub const FLUSH_EVERY: Duration = Duration::from_millis(100);

/// The buffer's size.
const CAPACITY: usize = 64 * 1024;

type Shared = Mutex<BufWriter<Box<dyn Write + Send>>>;

/// The log's destination (see the module's documentation). Cheap to clone.
#[derive(Clone)]
pub struct LogOutput {
    buffer: Arc<Shared>,
}

impl std::fmt::Debug for LogOutput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogOutput").finish_non_exhaustive()
    }
}

impl LogOutput {
    /// Lines written to `output`, flushed by a background thread until the
    /// last clone of this is dropped.
    pub fn new(output: impl Write + Send + 'static) -> Self {
        let buffer: Arc<Shared> = Arc::new(Mutex::new(BufWriter::with_capacity(
            CAPACITY,
            Box::new(output),
        )));
        let weak = Arc::downgrade(&buffer);
        let _ = std::thread::Builder::new()
            .name("sessiond-log".to_owned())
            .spawn(move || flush_periodically(&weak));
        Self { buffer }
    }

    /// Writes out what is buffered.
    pub fn flush(&self) {
        let _ = lock(&self.buffer).flush();
    }
}

/// Flushes `buffer` every [`FLUSH_EVERY`] while it exists.
fn flush_periodically(buffer: &Weak<Shared>) {
    loop {
        std::thread::sleep(FLUSH_EVERY);
        let Some(buffer) = buffer.upgrade() else {
            return;
        };
        let _ = lock(&buffer).flush();
    }
}

fn lock(buffer: &Shared) -> std::sync::MutexGuard<'_, BufWriter<Box<dyn Write + Send>>> {
    buffer.lock().unwrap_or_else(PoisonError::into_inner)
}

/// One line's writer.
pub struct Line<'a> {
    buffer: &'a Shared,
    /// Whether the line is written out at once (a warning or an error).
    urgent: bool,
}

impl Write for Line<'_> {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        lock(self.buffer).write(bytes)
    }

    fn write_all(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        lock(self.buffer).write_all(bytes)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        lock(self.buffer).flush()
    }
}

impl Drop for Line<'_> {
    fn drop(&mut self) {
        if self.urgent {
            let _ = lock(self.buffer).flush();
        }
    }
}

impl<'a> MakeWriter<'a> for LogOutput {
    type Writer = Line<'a>;

    fn make_writer(&'a self) -> Self::Writer {
        Line {
            buffer: &self.buffer,
            urgent: true,
        }
    }

    fn make_writer_for(&'a self, meta: &Metadata<'_>) -> Self::Writer {
        Line {
            buffer: &self.buffer,
            urgent: *meta.level() <= Level::WARN,
        }
    }
}
