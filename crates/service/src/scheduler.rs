//! The build queue: first in, first out, onto a pool of workers.
//!
//! A build goes to the least busy worker with a free slot, as long as fewer than `concurrency`
//! builds run in all. Cancelling a queued build just takes it out of the queue; a running one
//! has its cancellation token fired (the runner then records it as cancelled).

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

/// What a cancellation did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cancelled {
    /// It was waiting; it will never run.
    Dequeued,
    /// It is running; the builder was told to stop.
    Signalled,
    /// It is not queued or running here.
    NotActive,
}

/// A build to start now.
#[derive(Debug)]
pub struct Assignment {
    pub build_id: String,
    pub worker: usize,
    pub cancel: CancellationToken,
}

pub struct Scheduler {
    state: Mutex<State>,
    /// Woken when a build is queued or a slot frees up.
    pub wake: Notify,
    slots: Vec<usize>,
    concurrency: usize,
}

struct State {
    queue: VecDeque<String>,
    busy: Vec<usize>,
    running: HashMap<String, CancellationToken>,
}

impl Scheduler {
    /// `slots[i]`: builds worker `i` runs at once; `concurrency`: builds at once in all.
    pub fn new(slots: Vec<usize>, concurrency: usize) -> Self {
        Scheduler {
            state: Mutex::new(State {
                queue: VecDeque::new(),
                busy: vec![0; slots.len()],
                running: HashMap::new(),
            }),
            wake: Notify::new(),
            slots,
            concurrency: concurrency.max(1),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn enqueue(&self, id: &str) {
        self.lock().queue.push_back(id.to_string());
        self.wake.notify_one();
    }

    /// 0 for the next build to start; `None` when not queued.
    pub fn position(&self, id: &str) -> Option<usize> {
        self.lock().queue.iter().position(|q| q == id)
    }

    pub fn cancel(&self, id: &str) -> Cancelled {
        let mut s = self.lock();
        if let Some(i) = s.queue.iter().position(|q| q == id) {
            s.queue.remove(i);
            return Cancelled::Dequeued;
        }
        match s.running.get(id) {
            Some(token) => {
                token.cancel();
                Cancelled::Signalled
            }
            None => Cancelled::NotActive,
        }
    }

    /// Fires every running build's token (graceful shutdown); returns how many.
    pub fn cancel_all_running(&self) -> usize {
        let s = self.lock();
        for token in s.running.values() {
            token.cancel();
        }
        s.running.len()
    }

    /// Builds waiting for a worker.
    pub fn queued(&self) -> usize {
        self.lock().queue.len()
    }

    pub fn running(&self) -> usize {
        self.lock().running.len()
    }

    /// The next build to start, if there is one and room for it.
    pub fn next(&self) -> Option<Assignment> {
        let mut s = self.lock();
        if s.queue.is_empty() || s.running.len() >= self.concurrency {
            return None;
        }
        let worker = (0..self.slots.len())
            .filter(|&w| s.busy[w] < self.slots[w])
            .min_by_key(|&w| (s.busy[w] * 1000) / self.slots[w])?;
        let build_id = s.queue.pop_front()?;
        let cancel = CancellationToken::new();
        s.busy[worker] += 1;
        s.running.insert(build_id.clone(), cancel.clone());
        Some(Assignment {
            build_id,
            worker,
            cancel,
        })
    }

    /// A build finished on `worker`.
    pub fn done(&self, id: &str, worker: usize) {
        {
            let mut s = self.lock();
            s.running.remove(id);
            s.busy[worker] = s.busy[worker].saturating_sub(1);
        }
        self.wake.notify_one();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fifo_within_slots_and_concurrency() {
        let s = Scheduler::new(vec![1, 2], 2);
        for id in ["a", "b", "c", "d"] {
            s.enqueue(id);
        }
        let first = s.next().expect("a");
        let second = s.next().expect("b");
        assert_eq!(
            (first.build_id.as_str(), second.build_id.as_str()),
            ("a", "b")
        );
        assert_ne!(first.worker, second.worker);
        assert!(s.next().is_none(), "concurrency 2 reached");
        assert_eq!(s.position("d"), Some(1));
        assert_eq!(s.cancel("d"), Cancelled::Dequeued);
        assert_eq!(s.cancel("a"), Cancelled::Signalled);
        assert!(first.cancel.is_cancelled());
        s.done("a", first.worker);
        assert_eq!(s.next().expect("c").build_id, "c");
        assert_eq!(s.cancel("zz"), Cancelled::NotActive);
    }
}
