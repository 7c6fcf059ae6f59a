//! Many hosts at once: one [`Session`] per host, connected and driven in parallel with a bounded
//! concurrency, stopped by one cancellation token.

use std::future::Future;
use std::time::Instant;

use futures::stream::{self, StreamExt};
use tokio_util::sync::CancellationToken;

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

/// Connected sessions, in the order the specs were given.
#[derive(Clone, Debug)]
pub struct Fleet {
    sessions: Vec<Session>,
    concurrency: usize,
}

impl Fleet {
    /// Connects every host, at most `concurrency` at a time. Returns the fleet and every key
    /// learned under trust on first use.
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
        let results: Vec<_> = stream::iter(specs.iter().map(|spec| Session::connect_cancellable(spec, cancel)))
            .buffered(concurrency)
            .collect()
            .await;
        if cancel.is_cancelled() {
            return Err(FleetError::Cancelled);
        }
        let mut sessions = Vec::with_capacity(specs.len());
        let mut learned = Vec::new();
        let mut failed = Vec::new();
        for r in results {
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
        let work = stream::iter(self.sessions.iter().map(|s| {
            let name = s.host().to_owned();
            let fut = op(s.clone());
            async move { (name, fut.await) }
        }))
        .buffered(self.concurrency)
        .collect::<Vec<_>>();
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
