//! Evidence for a failure.
