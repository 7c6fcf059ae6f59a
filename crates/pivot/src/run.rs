//! Runs the pivot or the upgrade: preflight, then the procedure's phases on
//! the connected fleet, bounded by the deadline and Terraform's Ctrl-C, and
//! ended at once when an SSH connection drops. The one module that knows
//! both procedures, so that [`crate::pivot`] and [`crate::upgrade`] stay
//! siblings.

use std::time::Duration;

use selfhosted_transport::{CancellationToken, Session};
use tokio::time::Instant;

use crate::inventory::Inventory;
use crate::phase::{self, Phase, PivotError};
use crate::pivot;
use crate::preflight::{self, Ready};
use crate::procedure::{Outcome, PivotParams, Procedure};
use crate::upgrade;

/// Runs the whole pivot. On failure returns what was done so far with the error.
///
/// # Errors
/// The failed phase, host and evidence, with the [`Outcome`] reached.
pub async fn create(
    inventory: &Inventory,
    params: &PivotParams,
    cancel: &CancellationToken,
) -> Result<Outcome, Box<(Outcome, PivotError)>> {
    run(inventory, params, cancel, Procedure::Pivot).await
}

/// Runs the upgrade. On failure returns what was done so far with the error.
///
/// # Errors
/// The failed phase, host and evidence, with the [`Outcome`] reached.
pub async fn update(
    inventory: &Inventory,
    params: &PivotParams,
    cancel: &CancellationToken,
) -> Result<Outcome, Box<(Outcome, PivotError)>> {
    run(inventory, params, cancel, Procedure::Upgrade).await
}

/// Preflight, then `procedure`'s phases on the connected fleet; on failure, what was done
/// so far with the error.
async fn run(
    inventory: &Inventory,
    params: &PivotParams,
    cancel: &CancellationToken,
    procedure: Procedure,
) -> Result<Outcome, Box<(Outcome, PivotError)>> {
    let mut outcome = Outcome::default();
    let work = Box::pin(on_fleet(inventory, params, cancel, procedure, &mut outcome));
    match bound(work, params.deadline, cancel).await {
        Ok(Ok(())) => Ok(outcome),
        Ok(Err(e)) => Box::pin(async { Err(Box::new((outcome, e))) }).await,
        Err(why) => {
            let phase = procedure.after(outcome.reached);
            Err(Box::new((outcome, PivotError::new(phase, why))))
        }
    }
}

/// How long past the deadline the work may still gather evidence of what it waited for.
const EVIDENCE_GRACE: Duration = Duration::from_secs(30);
/// How long a cancelled operation may take to stop by itself, with its own error.
const CANCEL_GRACE: Duration = Duration::from_secs(5);

/// Runs `work` until it ends, or stops it (dropping every SSH command and API call in
/// flight) once it outlives the deadline by [`EVIDENCE_GRACE`], or [`CANCEL_GRACE`] after
/// Terraform asked the provider to stop. `Err` says which.
async fn bound<F: std::future::Future + Unpin>(
    work: F,
    deadline: Instant,
    cancel: &CancellationToken,
) -> Result<F::Output, String> {
    bound_within(work, deadline + EVIDENCE_GRACE, cancel, CANCEL_GRACE).await
}

async fn bound_within<F: std::future::Future + Unpin>(
    mut work: F,
    hard: Instant,
    cancel: &CancellationToken,
    cancel_grace: Duration,
) -> Result<F::Output, String> {
    tokio::select! {
        biased;
        out = &mut work => return Ok(out),
        () = cancel.cancelled() => {}
        () = tokio::time::sleep_until(hard) => {
            return Err(format!(
                "not done {}s after the deadline (`timeouts`); stopped. Rerun apply to continue from here, with a longer timeout if the hosts are slow",
                EVIDENCE_GRACE.as_secs()
            ))
        }
    }
    match tokio::time::timeout(cancel_grace, &mut work).await {
        Ok(out) => Ok(out),
        Err(_) => Err("stopped: Terraform asked the provider to stop (Ctrl-C). Every step is idempotent: rerun apply to continue from here".into()),
    }
}

async fn on_fleet(
    inventory: &Inventory,
    params: &PivotParams,
    cancel: &CancellationToken,
    procedure: Procedure,
    outcome: &mut Outcome,
) -> Result<(), PivotError> {
    let ready: Ready = phase::run(Phase::Preflight, preflight::preflight(inventory, cancel)).await?;
    outcome.learned = ready.learned.clone();
    outcome.reached = Some(Phase::Preflight);
    // Boxed: the phases' state machines are large; kept off the worker's stack.
    let phases = async {
        match procedure {
            Procedure::Pivot => Box::pin(pivot::pivot_phases(inventory, params, cancel, &mut *outcome, &ready)).await,
            Procedure::Upgrade => {
                Box::pin(upgrade::upgrade_phases(
                    inventory,
                    params,
                    cancel,
                    &mut *outcome,
                    &ready,
                ))
                .await
            }
        }
    };
    // A dropped SSH connection fails every later step on that host, and the waits that go
    // through it (the API, over the tunnel) would retry until the deadline: end at once.
    let ended = tokio::select! {
        result = phases => Ok(result),
        host = connection_lost(ready.fleet.sessions()) => Err(host),
    };
    let lost = |host: &str| {
        PivotError::on(
            procedure.after(outcome.reached),
            host,
            format!(
                "the SSH connection to {host} closed (sshd restarted, the host rebooted, or a NAT or firewall dropped it); nothing done is lost and every step is idempotent: rerun apply to continue from here"
            ),
        )
    };
    let result = match ended {
        Err(host) => Err(lost(&host)),
        // A step that went through the connection can fail before the watcher looks (an API
        // call through the tunnel, say): if a connection closed, that is the cause to name.
        Ok(Err(e)) if e.host.is_none() => match closed_soon(ready.fleet.sessions()).await {
            Some(host) => Err(lost(&host).with_evidence(format!("the step then failed with: {}", e.message))),
            None => Err(e),
        },
        Ok(r) => r,
    };
    ready.fleet.close().await;
    result
}

/// The first host whose SSH connection is closed, or closes within two of the watcher's looks.
async fn closed_soon(sessions: &[Session]) -> Option<String> {
    tokio::time::timeout(2 * CONNECTION_CHECK, connection_lost(sessions))
        .await
        .ok()
}

/// How often the fleet's SSH connections are checked while a procedure runs.
const CONNECTION_CHECK: Duration = Duration::from_millis(500);

/// The name of the first host whose SSH connection closed (never, while all stay open).
async fn connection_lost(sessions: &[Session]) -> String {
    loop {
        if let Some(s) = sessions.iter().find(|s| s.is_closed()) {
            return s.host().to_owned();
        }
        tokio::time::sleep(CONNECTION_CHECK).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(50);

    #[tokio::test]
    async fn work_that_ends_is_never_stopped() {
        let cancel = CancellationToken::new();
        let out = bound_within(Box::pin(async { 7 }), Instant::now() + MS, &cancel, MS).await;
        assert_eq!(out, Ok(7));
    }

    #[tokio::test]
    async fn a_hung_command_is_stopped_after_the_deadline() {
        let cancel = CancellationToken::new();
        let started = Instant::now();
        let out = bound_within(Box::pin(std::future::pending::<()>()), started + MS, &cancel, MS).await;
        assert!(out.unwrap_err().contains("after the deadline"));
        assert!(started.elapsed() < Duration::from_secs(2));
    }

    #[tokio::test]
    async fn ctrl_c_stops_hung_work_within_the_grace() {
        let cancel = CancellationToken::new();
        let trigger = cancel.clone();
        tokio::spawn(async move {
            tokio::time::sleep(MS).await;
            trigger.cancel();
        });
        let started = Instant::now();
        let far = started + Duration::from_secs(3600);
        let out = bound_within(Box::pin(std::future::pending::<()>()), far, &cancel, MS).await;
        assert!(out.unwrap_err().contains("Ctrl-C"));
        assert!(started.elapsed() < Duration::from_secs(2));
    }

    #[tokio::test]
    async fn cancelled_work_that_stops_by_itself_keeps_its_own_result() {
        let cancel = CancellationToken::new();
        let inner = cancel.clone();
        cancel.cancel();
        let work = Box::pin(async move {
            inner.cancelled().await;
            "its own error"
        });
        let far = Instant::now() + Duration::from_secs(3600);
        assert_eq!(bound_within(work, far, &cancel, MS).await, Ok("its own error"));
    }
}
