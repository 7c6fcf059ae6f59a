//! Prompt exits on `SIGTERM` and `SIGINT` for the long-running subcommands (`standby`,
//! `hand-back`), which are plain threads: without it, each recovery pod the kubelet stops
//! lingers for its whole grace period, since a process that is PID 1 of its container has no
//! default action for `SIGTERM`.
//!
//! [`Stop::on_signals`] blocks both signals in the calling thread (so in every thread it
//! starts afterwards) and takes them in a thread of its own with `sigwait`: no signal handler,
//! no `unsafe`. The loops wait with [`Stop::sleep`], which returns at once when asked to stop,
//! and leave at their next safe point (a round of probes, never in the middle of a rename).
//! `approve-csrs` runs on tokio and listens with tokio's own signal streams instead.

use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::time::{Duration, Instant};

use nix::sys::signal::{SigSet, Signal};

/// A stop request shared by the loops of one process; cloning shares it.
#[derive(Debug, Clone, Default)]
pub struct Stop {
    inner: Arc<(Mutex<Option<String>>, Condvar)>,
}

impl Stop {
    /// A stop that only [`Stop::stop`] triggers.
    pub fn new() -> Self {
        Self::default()
    }

    /// A stop triggered by `SIGTERM` or `SIGINT`. Call it before starting any thread: the
    /// signals are blocked in the calling thread and taken by a thread of their own.
    ///
    /// # Errors
    /// When the signals cannot be blocked (then they keep their default action).
    pub fn on_signals() -> nix::Result<Self> {
        let mut signals = SigSet::empty();
        signals.add(Signal::SIGTERM);
        signals.add(Signal::SIGINT);
        signals.thread_block()?;
        let stop = Stop::new();
        let taken = stop.clone();
        std::thread::spawn(move || loop {
            if let Ok(signal) = signals.wait() {
                taken.stop(signal.as_str());
                return;
            }
        });
        Ok(stop)
    }

    /// Asks every loop sharing this stop to end; `why` is said by [`Stop::reason`].
    pub fn stop(&self, why: &str) {
        let (lock, woken) = &*self.inner;
        let mut reason = lock.lock().unwrap_or_else(PoisonError::into_inner);
        reason.get_or_insert_with(|| why.to_owned());
        woken.notify_all();
    }

    /// Why it was stopped, once it was.
    pub fn reason(&self) -> Option<String> {
        self.inner.0.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// Whether it was stopped.
    pub fn is_stopped(&self) -> bool {
        self.reason().is_some()
    }

    /// Waits `pause`, or less when stopped meanwhile; whether to go on (`false`: stopped).
    pub fn sleep(&self, pause: Duration) -> bool {
        let until = Instant::now() + pause;
        let (lock, woken) = &*self.inner;
        let mut reason = lock.lock().unwrap_or_else(PoisonError::into_inner);
        while reason.is_none() {
            let now = Instant::now();
            if now >= until {
                return true;
            }
            reason = woken
                .wait_timeout(reason, until - now)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
        false
    }
}
