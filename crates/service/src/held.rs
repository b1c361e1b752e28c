//! What a submission computed for a queued build, held in memory until the build runs: its plan
//! (so the files are read and hashed once, at submission) and its build secrets, which are
//! never written anywhere (not the database, the blob store, a log or an error).
//!
//! A restart loses both. The restarted service plans its queued builds again from the stored
//! requests, and a build that needs secrets fails, asking for a new submission, rather than
//! building without them.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use imagespec_core::build::{Planned, SecretBytes};

/// One queued build's plan and secrets.
#[derive(Debug, Clone)]
pub struct Held {
    pub planned: Planned,
    /// By plan id (`pip_secret_0`, ...); empty when the spec mounts none.
    pub secrets: Arc<BTreeMap<String, SecretBytes>>,
    /// The workers that can run it (its platforms), by index: where a retry may go.
    pub workers: Vec<usize>,
}

/// The held builds, by build id.
#[derive(Debug, Default)]
pub struct HeldBuilds(Mutex<HashMap<String, Held>>);

impl HeldBuilds {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Held>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn hold(&self, id: &str, held: Held) {
        self.lock().insert(id.to_string(), held);
    }

    /// Takes a build's plan and secrets out: the secrets live no longer than its run.
    pub fn take(&self, id: &str) -> Option<Held> {
        self.lock().remove(id)
    }

    /// Builds held now (for tests: a finished build holds nothing).
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.lock().is_empty()
    }
}
