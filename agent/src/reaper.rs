//! The one reaper of the agent. As PID 1 (or a child subreaper in tests) the agent inherits
//! every orphan, so exactly one thread calls wait: it peeks at a terminated child with
//! `waitid(P_ALL, WNOWAIT)`, takes the lock, reaps that pid and hands its status to whoever
//! registered for it.
//!
//! Races handled:
//! - A child that exits before its spawner registers: `spawn` holds the lock across
//!   `Command::spawn` and the registration, and the reaper only reaps under the lock, so it
//!   cannot miss the waiter. (It also keeps std's own wait on a failed exec working: the zombie
//!   is still there when std waits for it.)
//! - A process we learn about only later (a container's init, whose pid crun writes to a file):
//!   statuses nobody waits for are kept for a while, and `watch` picks them up.
//!
//! Nothing else in the agent may wait for children (no `Child::wait`, no `Command::output`).

use crate::sys::{self, ExitStatus};
use std::collections::HashMap;
use std::process::{Child, Command};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// How long an exit status nobody asked for is kept for a late `watch`.
const UNCLAIMED_TTL: Duration = Duration::from_secs(60);
const UNCLAIMED_MAX: usize = 4096;

struct Inner {
    waiters: HashMap<i32, Sender<ExitStatus>>,
    unclaimed: HashMap<i32, (ExitStatus, Instant)>,
    /// Bumped by every spawn, so the idle reaper does not sleep through a spawn's wake-up.
    spawn_seq: u64,
}

pub struct Reaper {
    inner: Mutex<Inner>,
    /// Signalled when a child is spawned, so an idle reaper (no children) wakes up.
    spawned: Condvar,
}

/// Receives the exit status of one pid.
pub struct Waiter {
    pub pid: i32,
    rx: Receiver<ExitStatus>,
}

impl Waiter {
    /// Waits until the process ends or `timeout` passes (`None`).
    pub fn wait_timeout(&self, timeout: Duration) -> Option<ExitStatus> {
        match self.rx.recv_timeout(timeout) {
            Ok(s) => Some(s),
            Err(RecvTimeoutError::Timeout) | Err(RecvTimeoutError::Disconnected) => None,
        }
    }

    /// Waits without a deadline: used for container processes, whose lifetime is the user's.
    pub fn wait(&self) -> Option<ExitStatus> {
        self.rx.recv().ok()
    }
}

fn lock(m: &Mutex<Inner>) -> MutexGuard<'_, Inner> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Reaper {
    /// Creates the reaper and starts its thread.
    pub fn start() -> std::io::Result<Arc<Reaper>> {
        let r = Arc::new(Reaper {
            inner: Mutex::new(Inner {
                waiters: HashMap::new(),
                unclaimed: HashMap::new(),
                spawn_seq: 0,
            }),
            spawned: Condvar::new(),
        });
        let r2 = Arc::clone(&r);
        std::thread::Builder::new().name("reaper".into()).spawn(move || r2.run())?;
        Ok(r)
    }

    fn run(&self) {
        loop {
            let seq = lock(&self.inner).spawn_seq;
            match sys::wait_any_nowait() {
                Ok(Some(pid)) => {
                    let mut g = lock(&self.inner);
                    match sys::reap(pid) {
                        Ok(Some(status)) => self.dispatch(&mut g, pid, status),
                        Ok(None) => {} // std reaped it after a failed exec; nothing to do
                        Err(e) => crate::warn!("reaper: waitpid({}) failed: {}", pid, e),
                    }
                }
                Ok(None) => {
                    // No children: sleep until one is spawned (or a second passes, in case an
                    // orphan is handed to us some other way).
                    let g = lock(&self.inner);
                    if g.spawn_seq == seq {
                        let _ = self.spawned.wait_timeout(g, Duration::from_secs(1));
                    }
                }
                Err(e) => {
                    crate::error!("reaper: waitid failed: {}", e);
                    std::thread::sleep(Duration::from_millis(100));
                }
            }
        }
    }

    fn dispatch(&self, g: &mut Inner, pid: i32, status: ExitStatus) {
        match g.waiters.remove(&pid) {
            Some(tx) => {
                crate::debug!("reaper: pid {} ended ({})", pid, status);
                let _ = tx.send(status);
            }
            None => {
                crate::debug!("reaper: reaped unregistered pid {} ({})", pid, status);
                let now = Instant::now();
                g.unclaimed.retain(|_, (_, t)| now.duration_since(*t) < UNCLAIMED_TTL);
                if g.unclaimed.len() >= UNCLAIMED_MAX {
                    if let Some(oldest) =
                        g.unclaimed.iter().min_by_key(|(_, (_, t))| *t).map(|(p, _)| *p)
                    {
                        g.unclaimed.remove(&oldest);
                    }
                }
                g.unclaimed.insert(pid, (status, now));
            }
        }
    }

    /// Spawns `cmd` and registers for its exit status atomically with respect to the reaper.
    /// Never call `wait` on the returned `Child`: use the `Waiter`.
    pub fn spawn(&self, cmd: &mut Command) -> std::io::Result<(Child, Waiter)> {
        let mut g = lock(&self.inner);
        let child = cmd.spawn()?;
        let pid = child.id() as i32;
        let (tx, rx) = mpsc::channel();
        // A fresh pid cannot have a stale unclaimed status that belongs to it.
        g.unclaimed.remove(&pid);
        g.waiters.insert(pid, tx);
        g.spawn_seq = g.spawn_seq.wrapping_add(1);
        drop(g);
        self.spawned.notify_all();
        Ok((child, Waiter { pid, rx }))
    }

    /// Registers for the exit of a process we did not spawn directly (a container's init,
    /// re-parented to us). If it already ended, the status is delivered at once.
    pub fn watch(&self, pid: i32) -> Waiter {
        let (tx, rx) = mpsc::channel();
        let mut g = lock(&self.inner);
        match g.unclaimed.remove(&pid) {
            Some((status, _)) => {
                let _ = tx.send(status);
            }
            None => {
                g.waiters.insert(pid, tx);
            }
        }
        Waiter { pid, rx }
    }
}

#[cfg(test)]
mod tests {
    // The reaper waits for ANY child of the process, so its tests run in the integration test
    // binary's child (the agent), not here: a reaper in the unit-test process would steal the
    // children of other tests.
}
