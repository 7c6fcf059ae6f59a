//! The renewal rule, once: a certificate is due when `now` is inside its
//! early-renewal window. Plan and read both use it.

use time::{Duration, OffsetDateTime};

/// Whether a certificate expiring at `not_after` is due for renewal at `now`.
pub fn renewal_due(not_after: OffsetDateTime, early_renewal: Duration, now: OffsetDateTime) -> bool {
    now >= not_after.saturating_sub(early_renewal)
}

/// When a certificate expiring at `not_after` becomes due.
pub fn renewal_time(not_after: OffsetDateTime, early_renewal: Duration) -> OffsetDateTime {
    not_after.saturating_sub(early_renewal)
}
