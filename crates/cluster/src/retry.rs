//! Which API errors are worth retrying, and the back-off between tries.
//!
//! Retry only what is known to be transient: connection-level failures (refused, reset, TLS
//! handshake cut short while an apiserver starts), `429 Too Many Requests` and `5xx`. A `4xx`
//! such as `403 Forbidden` or `422 Invalid` will not change by asking again.

use std::time::Duration;

/// Whether a kube client error is transient (worth another try after a back-off).
pub fn is_retryable(err: &kube::Error) -> bool {
    match err {
        kube::Error::Api(status) => status.code == 429 || status.code >= 500,
        kube::Error::HyperError(_) | kube::Error::Service(_) => true,
        _ => false,
    }
}

/// Whether a watcher error is transient; the watcher re-lists by itself after `410 Gone`.
pub fn is_watch_retryable(err: &kube::runtime::watcher::Error) -> bool {
    use kube::runtime::watcher::Error as W;
    match err {
        W::InitialListFailed(e) | W::WatchStartFailed(e) | W::WatchFailed(e) => is_retryable(e),
        W::WatchError(status) => status.code == 410 || status.code == 429 || status.code >= 500,
        W::NoResourceVersion => false,
    }
}

/// The API's own message for an error (the `Status` message when there is one).
pub fn api_message(err: &kube::Error) -> String {
    match err {
        kube::Error::Api(status) if !status.message.is_empty() => {
            format!("{} ({} {})", status.message, status.code, status.reason)
        }
        other => error_chain(other),
    }
}

/// An error and its causes, joined with `: ` (kube's top-level messages such as
/// "client error (Connect)" hide the reason, e.g. the TLS certificate error, in the chain).
pub fn error_chain(err: &dyn std::error::Error) -> String {
    let mut out = err.to_string();
    let mut cur = err.source();
    while let Some(e) = cur {
        let s = e.to_string();
        if !out.contains(&s) {
            out.push_str(": ");
            out.push_str(&s);
        }
        cur = e.source();
    }
    out
}

/// Exponential back-off: `initial`, doubled each try, capped at `max`. Endless: the caller's
/// deadline bounds the total.
#[derive(Debug, Clone)]
pub struct Backoff {
    next: Duration,
    max: Duration,
}

impl Backoff {
    /// A back-off starting at `initial` and never waiting more than `max`.
    pub fn new(initial: Duration, max: Duration) -> Self {
        Self { next: initial, max }
    }

    /// The default for API probes: 100 ms doubling to 2 s.
    pub fn probe() -> Self {
        Self::new(Duration::from_millis(100), Duration::from_secs(2))
    }

    /// The delay before the next try.
    pub fn next_delay(&mut self) -> Duration {
        let d = self.next;
        self.next = (self.next * 2).min(self.max);
        d
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn api_err(code: u16) -> kube::Error {
        kube::Error::Api(Box::new(kube::core::Status::failure("x", "Reason").with_code(code)))
    }

    #[test]
    fn only_transient_api_errors_are_retried() {
        assert!(is_retryable(&api_err(500)));
        assert!(is_retryable(&api_err(503)));
        assert!(is_retryable(&api_err(429)));
        assert!(!is_retryable(&api_err(403)));
        assert!(!is_retryable(&api_err(422)));
        assert!(!is_retryable(&api_err(404)));
    }

    #[test]
    fn error_chain_shows_the_causes() {
        let io = std::io::Error::other("certificate unknown");
        let top = kube::Error::Service(Box::new(io));
        assert!(
            error_chain(&top).ends_with("certificate unknown"),
            "{}",
            error_chain(&top)
        );
    }

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let mut b = Backoff::new(Duration::from_millis(100), Duration::from_millis(350));
        let d: Vec<_> = (0..4).map(|_| b.next_delay().as_millis()).collect();
        assert_eq!(d, vec![100, 200, 350, 350]);
    }

    #[test]
    fn api_message_prefers_the_status_message() {
        let m = api_message(&api_err(422));
        assert!(m.starts_with("x (422 Reason)"), "{m}");
    }
}
