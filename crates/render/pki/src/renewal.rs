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

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn due_exactly_at_the_window_start() {
        let end = datetime!(2027-01-01 00:00 UTC);
        let w = Duration::days(30);
        assert!(!renewal_due(end, w, datetime!(2026-12-01 23:59:59 UTC)));
        assert!(renewal_due(end, w, datetime!(2026-12-02 00:00 UTC)));
        assert!(renewal_due(end, w, end + Duration::days(1)));
        assert_eq!(renewal_time(end, w), datetime!(2026-12-02 00:00 UTC));
        // A zero window renews only once expired.
        assert!(!renewal_due(end, Duration::ZERO, end - Duration::seconds(1)));
    }
}
