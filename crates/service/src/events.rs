//! Build events: written to SQLite in batches, and announced to the log streams that wait for
//! them.
//!
//! A builder emits events through a synchronous [`EventSink`]; a per-build writer task takes
//! them off a channel, stores each batch in one transaction (offsets `0, 1, 2, ...`), then
//! bumps the build's [`Hub`] counter. A log stream subscribes before it reads, so it never
//! misses the bump for events it did not read.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use imagespec_core::build::EventSink;
use imagespec_protocol::WireEvent;
use tokio::sync::{mpsc, oneshot, watch};
use tokio_util::sync::CancellationToken;

use crate::store::Store;

/// Most events stored in one transaction.
const BATCH: usize = 512;

/// Change notifications per build.
#[derive(Default)]
pub struct Hub {
    channels: Mutex<HashMap<String, watch::Sender<u64>>>,
}

impl Hub {
    /// A receiver that sees every later [`Hub::bump`] of `id`.
    pub fn subscribe(&self, id: &str) -> watch::Receiver<u64> {
        let mut map = self.channels.lock().unwrap_or_else(|p| p.into_inner());
        map.entry(id.to_string())
            .or_insert_with(|| watch::channel(0).0)
            .subscribe()
    }

    /// Something changed for `id` (events stored, status changed).
    pub fn bump(&self, id: &str) {
        let map = self.channels.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(tx) = map.get(id) {
            tx.send_modify(|v| *v += 1);
        }
    }

    /// Forgets a finished build (after its final bump); late subscribers read the final state.
    pub fn forget(&self, id: &str) {
        self.channels
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(id);
    }
}

enum Message {
    Event(WireEvent),
    Flush(oneshot::Sender<()>),
}

/// The writing end of one build's events.
#[derive(Clone)]
pub struct LogWriter {
    tx: mpsc::UnboundedSender<Message>,
}

impl LogWriter {
    /// Starts the writer task of build `id`, whose next offset is `next`. It stops when `kill`
    /// fires (a simulated crash: nothing more is written).
    pub fn start(
        store: Store,
        hub: Arc<Hub>,
        id: String,
        next: u64,
        kill: CancellationToken,
    ) -> LogWriter {
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            tokio::select! {
                () = run(store, hub, id, next, rx) => {}
                () = kill.cancelled() => {}
            }
        });
        LogWriter { tx }
    }

    pub fn emit(&self, event: WireEvent) {
        let _ = self.tx.send(Message::Event(event));
    }

    /// A sink for builders.
    pub fn sink(&self) -> EventSink {
        let tx = self.tx.clone();
        EventSink::new(move |e| {
            let _ = tx.send(Message::Event(e.into()));
        })
    }

    /// Waits until everything emitted so far is stored.
    pub async fn flush(&self) {
        let (done, wait) = oneshot::channel();
        if self.tx.send(Message::Flush(done)).is_ok() {
            let _ = wait.await;
        }
    }
}

async fn run(
    store: Store,
    hub: Arc<Hub>,
    id: String,
    mut next: u64,
    mut rx: mpsc::UnboundedReceiver<Message>,
) {
    while let Some(first) = rx.recv().await {
        let mut batch = Vec::new();
        let mut flushes = Vec::new();
        let mut message = Some(first);
        while let Some(m) = message.take() {
            match m {
                Message::Event(e) => batch.push(e),
                Message::Flush(done) => flushes.push(done),
            }
            if batch.len() < BATCH {
                message = rx.try_recv().ok();
            }
        }
        if !batch.is_empty() {
            let count = batch.len() as u64;
            match store.append_events(&id, next, batch).await {
                Ok(()) => next += count,
                Err(e) => tracing::error!(build = %id, "cannot store build events: {e}"),
            }
            hub.bump(&id);
        }
        for done in flushes {
            let _ = done.send(());
        }
    }
}
