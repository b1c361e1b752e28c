//! Captures the `tracing` output of the current thread, to check that retries are visible.

use std::io::Write;
use std::sync::{Arc, Mutex};

use tracing_subscriber::fmt::MakeWriter;

#[derive(Clone, Default)]
pub struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if let Ok(mut b) = self.0.lock() {
            b.extend_from_slice(buf);
        }
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for Captured {
    type Writer = Captured;
    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

/// The capture and the guard that keeps it installed (for this thread, so a
/// `#[tokio::test]`'s current-thread runtime is covered and parallel tests are not mixed in).
pub struct Logs {
    captured: Captured,
    _guard: tracing::subscriber::DefaultGuard,
}

pub fn capture() -> Logs {
    let captured = Captured::default();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(captured.clone())
        .with_max_level(tracing::Level::INFO)
        .with_ansi(false)
        .without_time()
        .finish();
    Logs {
        _guard: tracing::subscriber::set_default(subscriber),
        captured,
    }
}

impl Logs {
    /// The WARN lines so far.
    pub fn warnings(&self) -> Vec<String> {
        let bytes = self
            .captured
            .0
            .lock()
            .map(|b| b.clone())
            .unwrap_or_default();
        String::from_utf8_lossy(&bytes)
            .lines()
            .filter(|l| l.contains("WARN"))
            .map(str::to_string)
            .collect()
    }
}
