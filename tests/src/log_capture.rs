//! The log of this test process's own imagespec code (an in-process build service and its
//! workers), captured at every level so a scenario can check that no secret reaches it.
//!
//! One subscriber per process (tracing's global default): every backend of the process shares
//! the capture, which only makes a search for a leaked value wider.

use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};

use tracing_subscriber::EnvFilter;

/// A process-wide capture of log lines.
#[derive(Clone, Default)]
pub struct LogCapture(Arc<Mutex<Vec<u8>>>);

impl LogCapture {
    /// Everything logged so far.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap_or_else(|p| p.into_inner())).into_owned()
    }
}

impl Write for LogCapture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The capture, installed on first use; `None` when another subscriber was installed first.
pub fn capture() -> Option<LogCapture> {
    static CAPTURE: OnceLock<Option<LogCapture>> = OnceLock::new();
    CAPTURE
        .get_or_init(|| {
            let capture = LogCapture::default();
            let writer = capture.clone();
            // Every level of imagespec's crates; the HTTP stack's trace lines add nothing.
            let filter = EnvFilter::new("imagespec=trace,imagespec_service=trace,imagespec_builder_local=trace,imagespec_builder_remote=trace,imagespec_core=trace,imagespec_registry=trace,info");
            let subscriber = tracing_subscriber::fmt()
                .with_env_filter(filter)
                .with_ansi(false)
                .with_writer(move || writer.clone())
                .finish();
            tracing::subscriber::set_global_default(subscriber)
                .ok()
                .map(|()| capture)
        })
        .clone()
}
