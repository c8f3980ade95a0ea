//! The current time, as an input.
//!
//! Protocol code never reads the system clock itself: it is handed a [`Clock`], so tests can
//! move time forward instead of sleeping.

use std::sync::{
    atomic::{AtomicI64, Ordering},
    Arc,
};

use time::OffsetDateTime;

/// A source of the current time.
pub trait Clock: Send + Sync + 'static {
    /// The current time, in UTC.
    fn now(&self) -> OffsetDateTime;
}

/// The operating system's clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    #[allow(clippy::disallowed_methods)] // the one place that may read the system clock
    fn now(&self) -> OffsetDateTime {
        OffsetDateTime::now_utc()
    }
}

/// A clock that stands still until told to move; for tests.
///
/// ```
/// use oauthost_core::clock::{Clock, ManualClock};
///
/// let clock = ManualClock::at_unix(1_000);
/// clock.advance(60);
/// assert_eq!(clock.now().unix_timestamp(), 1_060);
/// ```
#[derive(Debug, Clone)]
pub struct ManualClock {
    unix_seconds: Arc<AtomicI64>,
}

impl ManualClock {
    /// A clock showing `unix_seconds` seconds after the Unix epoch.
    pub fn at_unix(unix_seconds: i64) -> Self {
        Self {
            unix_seconds: Arc::new(AtomicI64::new(unix_seconds)),
        }
    }

    /// Moves the clock forward by `seconds`.
    pub fn advance(&self, seconds: i64) {
        self.unix_seconds.fetch_add(seconds, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(self.unix_seconds.load(Ordering::SeqCst))
            .unwrap_or(OffsetDateTime::UNIX_EPOCH)
    }
}
