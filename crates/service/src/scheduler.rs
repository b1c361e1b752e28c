//! The build queue: fair shares between projects, onto a pool of workers.
//!
//! Each project has its own first-in-first-out queue. When a slot frees up, the next build
//! comes from the project with the fewest builds running, and among those from the one whose
//! last build started longest ago (a project never served goes first). With one slot this is
//! plain round-robin between the projects that wait; with more, each waiting project holds
//! about an equal share of the slots. So a project that queues fifty builds delays another
//! project's one build by at most one build per slot, not fifty.
//!
//! Why not deficit or weighted round-robin: those share out a cost, and a build's cost (its
//! minutes on a worker) is unknown until it has run; the number of builds running is what the
//! scheduler knows for sure. An optional cap (`max_running_per_project`) keeps one project from
//! holding every slot while the others are idle and then making a newcomer wait for a long
//! build to end.
//!
//! A build goes to the least busy worker with a free slot among the workers that can build it
//! (all of them unless the submission said otherwise: a platform only some workers build), as
//! long as fewer than `concurrency` builds run in all. A project whose next build waits for a
//! busy worker is passed over for one whose next build can start; its own builds keep their
//! order. Cancelling a queued build just takes it out of the queue; a running one
//! has its cancellation token fired (the runner then records it as cancelled).

use std::collections::{BTreeMap, HashMap, VecDeque};
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
    /// Most builds of one project running at once; `None`: no cap.
    per_project: Option<usize>,
}

#[derive(Clone, Default)]
struct State {
    /// Per project, its waiting builds in arrival order (no empty queues).
    queues: BTreeMap<String, VecDeque<String>>,
    busy: Vec<usize>,
    /// Running build → its project and cancellation token.
    running: HashMap<String, (String, CancellationToken)>,
    /// Builds running per project (no zeros).
    running_per_project: HashMap<String, usize>,
    /// When each project last had a build started, as a count of starts (not a clock).
    last_start: HashMap<String, u64>,
    starts: u64,
    /// Arrival order of queued builds, to break the last ties.
    arrival: HashMap<String, u64>,
    arrivals: u64,
    /// Queued builds that only some workers can run: their workers.
    eligible: HashMap<String, Vec<usize>>,
}

impl State {
    /// The project whose build starts next (`cap` as in [`Scheduler`]), among those whose next
    /// build `can_start`.
    fn pick(&self, cap: Option<usize>, can_start: impl Fn(&str) -> bool) -> Option<String> {
        self.queues
            .iter()
            .filter_map(|(project, queue)| {
                let running = self.running_per_project.get(project).copied().unwrap_or(0);
                if cap.is_some_and(|cap| running >= cap) {
                    return None;
                }
                let front = queue.front()?;
                if !can_start(front) {
                    return None;
                }
                let last = self.last_start.get(project).copied().unwrap_or(0);
                let first = self.arrival.get(front).copied();
                Some(((running, last, first), project))
            })
            .min_by_key(|(key, _)| *key)
            .map(|(_, project)| project.clone())
    }

    /// Whether build `id` may run on worker `w`.
    fn may_run_on(&self, id: &str, w: usize) -> bool {
        self.eligible.get(id).is_none_or(|ws| ws.contains(&w))
    }

    /// Takes `project`'s next build off its queue and counts it as started.
    fn start(&mut self, project: &str) -> Option<String> {
        let queue = self.queues.get_mut(project)?;
        let id = queue.pop_front()?;
        if queue.is_empty() {
            self.queues.remove(project);
        }
        self.arrival.remove(&id);
        *self
            .running_per_project
            .entry(project.to_string())
            .or_default() += 1;
        self.starts += 1;
        self.last_start.insert(project.to_string(), self.starts);
        Some(id)
    }
}

impl Scheduler {
    /// `slots[i]`: builds worker `i` runs at once; `concurrency`: builds at once in all.
    pub fn new(slots: Vec<usize>, concurrency: usize) -> Self {
        Scheduler {
            state: Mutex::new(State {
                busy: vec![0; slots.len()],
                ..State::default()
            }),
            wake: Notify::new(),
            slots,
            concurrency: concurrency.max(1),
            per_project: None,
        }
    }

    /// At most `cap` builds of one project run at once (`None`: no cap).
    #[must_use]
    pub fn with_project_cap(mut self, cap: Option<usize>) -> Self {
        self.per_project = cap.map(|c| c.max(1));
        self
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Queues a build any worker can run.
    pub fn enqueue(&self, project: &str, id: &str) {
        self.queue(project, id, None);
    }

    /// Queues a build for `workers` only (by index; every worker is no restriction).
    pub fn enqueue_for(&self, project: &str, id: &str, workers: &[usize]) {
        let all = (0..self.slots.len()).all(|w| workers.contains(&w));
        self.queue(project, id, (!all).then(|| workers.to_vec()));
    }

    fn queue(&self, project: &str, id: &str, only: Option<Vec<usize>>) {
        {
            let mut s = self.lock();
            if let Some(workers) = only {
                s.eligible.insert(id.to_string(), workers);
            }
            s.arrivals += 1;
            let n = s.arrivals;
            s.arrival.insert(id.to_string(), n);
            s.queues
                .entry(project.to_string())
                .or_default()
                .push_back(id.to_string());
        }
        self.wake.notify_one();
    }

    /// How many builds start before this one if none finishes first (0: it is next), ignoring
    /// the per-project cap; `None` when not queued. An estimate: finishing builds change it.
    pub fn position(&self, id: &str) -> Option<usize> {
        let mut s = self.lock().clone();
        let mut ahead = 0;
        while let Some(project) = s.pick(None, |_| true) {
            if s.start(&project)? == id {
                return Some(ahead);
            }
            ahead += 1;
        }
        None
    }

    pub fn cancel(&self, id: &str) -> Cancelled {
        let mut s = self.lock();
        let queued = s
            .queues
            .iter()
            .find_map(|(p, q)| q.iter().position(|q| q == id).map(|i| (p.clone(), i)));
        if let Some((project, i)) = queued {
            if let Some(queue) = s.queues.get_mut(&project) {
                queue.remove(i);
                if queue.is_empty() {
                    s.queues.remove(&project);
                }
            }
            s.arrival.remove(id);
            s.eligible.remove(id);
            return Cancelled::Dequeued;
        }
        match s.running.get(id) {
            Some((_, token)) => {
                token.cancel();
                Cancelled::Signalled
            }
            None => Cancelled::NotActive,
        }
    }

    /// Fires every running build's token (graceful shutdown); returns how many.
    pub fn cancel_all_running(&self) -> usize {
        let s = self.lock();
        for (_, token) in s.running.values() {
            token.cancel();
        }
        s.running.len()
    }

    /// Builds waiting for a worker.
    pub fn queued(&self) -> usize {
        self.lock().queues.values().map(VecDeque::len).sum()
    }

    /// Builds waiting for a worker, per project (projects with none are left out).
    pub fn queued_by_project(&self) -> BTreeMap<String, usize> {
        self.lock()
            .queues
            .iter()
            .map(|(p, q)| (p.clone(), q.len()))
            .collect()
    }

    pub fn running(&self) -> usize {
        self.lock().running.len()
    }

    /// The next build to start, if there is one and room for it on a worker that can run it.
    pub fn next(&self) -> Option<Assignment> {
        let mut s = self.lock();
        if s.queues.is_empty() || s.running.len() >= self.concurrency {
            return None;
        }
        let free: Vec<usize> = (0..self.slots.len())
            .filter(|&w| s.busy[w] < self.slots[w])
            .collect();
        let least_busy = |s: &State, id: &str| {
            free.iter()
                .copied()
                .filter(|&w| s.may_run_on(id, w))
                .min_by_key(|&w| (s.busy[w] * 1000) / self.slots[w])
        };
        let project = s.pick(self.per_project, |id| least_busy(&s, id).is_some())?;
        let worker = least_busy(&s, s.queues.get(&project)?.front()?)?;
        let build_id = s.start(&project)?;
        s.eligible.remove(&build_id);
        let cancel = CancellationToken::new();
        s.busy[worker] += 1;
        s.running
            .insert(build_id.clone(), (project, cancel.clone()));
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
            if let Some((project, _)) = s.running.remove(id)
                && let Some(n) = s.running_per_project.get_mut(&project)
            {
                *n -= 1;
                if *n == 0 {
                    s.running_per_project.remove(&project);
                }
            }
            s.busy[worker] = s.busy[worker].saturating_sub(1);
        }
        self.wake.notify_one();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Starts builds until none may start; returns their ids.
    fn start_all(s: &Scheduler) -> Vec<Assignment> {
        std::iter::from_fn(|| s.next()).collect()
    }

    #[test]
    fn fifo_within_slots_and_concurrency() {
        let s = Scheduler::new(vec![1, 2], 2);
        for id in ["a", "b", "c", "d"] {
            s.enqueue("p", id);
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

    /// One slot, project A queues five builds and starts the first, then B queues one: B's
    /// build starts second, not sixth.
    #[test]
    fn a_later_project_is_not_stuck_behind_an_earlier_ones_queue() {
        let s = Scheduler::new(vec![1], 1);
        for id in ["a1", "a2", "a3", "a4", "a5"] {
            s.enqueue("project-a", id);
        }
        let first = s.next().expect("a1 starts");
        assert_eq!(first.build_id, "a1");
        s.enqueue("project-b", "b1");
        assert_eq!(s.position("b1"), Some(0));
        assert_eq!(
            s.queued_by_project(),
            BTreeMap::from([("project-a".into(), 4), ("project-b".into(), 1)])
        );
        let mut order = vec![first.build_id.clone()];
        let mut running = first;
        while {
            s.done(&running.build_id, running.worker);
            match s.next() {
                Some(next) => {
                    order.push(next.build_id.clone());
                    running = next;
                    true
                }
                None => false,
            }
        } {}
        assert_eq!(order, ["a1", "b1", "a2", "a3", "a4", "a5"]);
        assert_eq!(s.queued(), 0);
    }

    /// Queued before anything starts: the projects take turns.
    #[test]
    fn projects_take_turns_and_share_slots() {
        let s = Scheduler::new(vec![2], 2);
        for id in ["a1", "a2", "a3"] {
            s.enqueue("a", id);
        }
        s.enqueue("b", "b1");
        s.enqueue("c", "c1");
        assert_eq!(s.position("a2"), Some(3));
        let started: Vec<String> = start_all(&s).into_iter().map(|a| a.build_id).collect();
        // Two slots: one for a, one for b (c waits; a does not get both).
        assert_eq!(started, ["a1", "b1"]);
        s.done("a1", 0);
        // a and c have none running now; c was never served.
        assert_eq!(s.next().expect("c1").build_id, "c1");
    }

    #[test]
    fn a_build_for_some_workers_waits_for_them_and_others_pass_it() {
        // Worker 0 builds amd64 only; worker 1 also arm64. One slot each.
        let s = Scheduler::new(vec![1, 1], 2);
        s.enqueue_for("a", "a-arm", &[1]);
        let first = s.next().expect("a starts");
        assert_eq!(
            (first.build_id.as_str(), first.worker),
            ("a-arm", 1),
            "on the worker that can, though worker 0 is less busy"
        );
        s.enqueue_for("b", "b-arm", &[1]);
        s.enqueue("c", "c-any");
        // b is first in line (same share, earlier), but its worker is busy: c goes first.
        let second = s.next().expect("c starts");
        assert_eq!((second.build_id.as_str(), second.worker), ("c-any", 0));
        assert!(s.next().is_none(), "b waits for worker 1");
        s.done("a-arm", 1);
        let third = s.next().expect("b starts");
        assert_eq!((third.build_id.as_str(), third.worker), ("b-arm", 1));
    }

    #[test]
    fn the_per_project_cap_leaves_slots_for_others() {
        let s = Scheduler::new(vec![3], 3).with_project_cap(Some(1));
        for id in ["a1", "a2", "a3"] {
            s.enqueue("a", id);
        }
        let started = start_all(&s);
        assert_eq!(started.len(), 1, "a may run one build at once");
        s.enqueue("b", "b1");
        assert_eq!(s.next().expect("b1 takes a free slot").build_id, "b1");
        assert!(s.next().is_none());
        s.done("a1", started[0].worker);
        assert_eq!(s.next().expect("a2").build_id, "a2");
    }
}
