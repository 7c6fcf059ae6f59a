//! Many hosts at once: one [`Session`] per host (one bastion login per bastion chain),
//! connected and driven in parallel with a bounded concurrency, stopped by one cancellation
//! token.

use std::future::Future;
use std::time::Instant;

use futures::stream::{self, StreamExt};
use tokio_util::sync::CancellationToken;

use crate::bastion::Jump;
use crate::host_keys::LearnedHostKey;
use crate::session::{ConnectError, HostSpec, Session};

/// Why a fleet operation failed.
#[derive(Debug, thiserror::Error)]
pub enum FleetError {
    /// Some hosts could not be connected; each cause is listed.
    #[error("{} of {total} hosts unreachable: {}", failed.len(),
        failed.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
    Connect {
        /// Hosts tried.
        total: usize,
        /// The failures, one per host.
        failed: Vec<ConnectError>,
    },
    /// Cancelled by the caller.
    #[error("cancelled")]
    Cancelled,
}

/// Identity of a bastion chain: address, port and user of each hop.
type ChainKey = Vec<(String, u16, String)>;

/// The identity of a host's bastion chain.
fn chain_key(spec: &HostSpec) -> ChainKey {
    spec.bastions
        .iter()
        .map(|b| (b.address.clone(), b.port, b.user.clone()))
        .collect()
}

/// Connected sessions, in the order the specs were given.
#[derive(Clone, Debug)]
pub struct Fleet {
    sessions: Vec<Session>,
    concurrency: usize,
}

impl Fleet {
    /// Connects every host, at most `concurrency` at a time; hosts behind the same bastion
    /// chain share one connection to it ([`Jump`]). Returns the fleet and every key learned
    /// under trust on first use (each bastion's once).
    ///
    /// # Errors
    /// [`FleetError::Connect`] naming every host that failed (after its own retries), or
    /// [`FleetError::Cancelled`].
    pub async fn connect_all(
        specs: &[HostSpec],
        concurrency: usize,
        cancel: &CancellationToken,
    ) -> Result<(Fleet, Vec<LearnedHostKey>), FleetError> {
        let concurrency = concurrency.max(1);
        let started = Instant::now();
        let mut learned = Vec::new();
        let mut failed = Vec::new();
        // One login per distinct bastion chain, shared by every host behind it.
        let mut jumps: Vec<(ChainKey, Option<Jump>)> = Vec::new();
        for spec in specs.iter().filter(|s| !s.bastions.is_empty()) {
            let key = chain_key(spec);
            if jumps.iter().any(|(k, _)| *k == key) {
                continue;
            }
            match Jump::connect(&spec.bastions, spec.connect_timeout, cancel).await {
                Ok((jump, keys)) => {
                    learned.extend(keys);
                    jumps.push((key, Some(jump)));
                }
                Err(e) => {
                    failed.push(e);
                    jumps.push((key, None));
                }
            }
        }
        let jump_of = |spec: &HostSpec| {
            let key = chain_key(spec);
            jumps.iter().find(|(k, _)| *k == key).and_then(|(_, j)| j.clone())
        };
        // Futures are collected before they are streamed, so the stream's type holds no
        // closure over borrowed arguments and the whole future stays `Send` for callers.
        let connects: Vec<_> = specs
            .iter()
            .map(|spec| {
                let jump = jump_of(spec);
                async move {
                    match (&jump, spec.bastions.is_empty()) {
                        (_, true) => Some(Session::connect_cancellable(spec, cancel).await),
                        (Some(j), false) => Some(Session::connect_via(spec, j, cancel).await),
                        // its bastion failed: reported once above
                        (None, false) => None,
                    }
                }
            })
            .collect();
        let results: Vec<_> = stream::iter(connects).buffered(concurrency).collect().await;
        if cancel.is_cancelled() {
            return Err(FleetError::Cancelled);
        }
        let mut sessions = Vec::with_capacity(specs.len());
        for r in results.into_iter().flatten() {
            match r {
                Ok((s, keys)) => {
                    sessions.push(s);
                    learned.extend(keys);
                }
                Err(e) => failed.push(e),
            }
        }
        tracing::debug!(hosts = specs.len(), elapsed = ?started.elapsed(), "fleet connected");
        if !failed.is_empty() {
            return Err(FleetError::Connect {
                total: specs.len(),
                failed,
            });
        }
        Ok((Fleet { sessions, concurrency }, learned))
    }

    /// The sessions, in spec order.
    pub fn sessions(&self) -> &[Session] {
        &self.sessions
    }

    /// Runs `op` on every host, at most the fleet's concurrency at a time; results in spec
    /// order, paired with the host name. Stops starting new work once `cancel` fires (work in
    /// flight is dropped, which the session operations tolerate).
    ///
    /// # Errors
    /// [`FleetError::Cancelled`] if cancelled before all hosts finished.
    pub async fn for_each<T, E, F, Fut>(
        &self,
        cancel: &CancellationToken,
        op: F,
    ) -> Result<Vec<(String, Result<T, E>)>, FleetError>
    where
        F: Fn(Session) -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        let ops: Vec<_> = self
            .sessions
            .iter()
            .map(|s| {
                let name = s.host().to_owned();
                let fut = op(s.clone());
                async move { (name, fut.await) }
            })
            .collect();
        let work = stream::iter(ops).buffered(self.concurrency).collect::<Vec<_>>();
        tokio::select! {
            r = work => Ok(r),
            () = cancel.cancelled() => Err(FleetError::Cancelled),
        }
    }

    /// Closes every connection.
    pub async fn close(&self) {
        futures::future::join_all(self.sessions.iter().map(Session::close)).await;
    }
}
