//! The time source. Renewal decisions depend on "now"; resources take a
//! [`Clock`] instead of reading the system time so tests can move it.

use std::sync::Arc;

use time::OffsetDateTime;

/// A source of the current time.
pub type Clock = Arc<dyn Fn() -> OffsetDateTime + Send + Sync>;

/// The system clock, truncated to whole seconds (certificates carry seconds).
pub fn system() -> Clock {
    Arc::new(|| {
        let now = OffsetDateTime::now_utc();
        now.replace_nanosecond(0).unwrap_or(now)
    })
}

/// A clock that always answers `at` (tests).
pub fn fixed(at: OffsetDateTime) -> Clock {
    Arc::new(move || at)
}
