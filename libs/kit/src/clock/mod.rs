//! Business time. Every timestamp a service stores or compares (creation times, due dates,
//! expiries, retention) comes from a [`Clock`], never from the system directly, so tests and the
//! lifecycle simulator can drive time: a due date passes in a second instead of a week.
//!
//! Three kinds: the system clock (production), a clock offset from the system by an amount that
//! only grows (a running `chorus up` whose simulator skips days ahead), and a manual clock that
//! moves only when told (tests). Waiting on a clock ([`Clock::sleep_until`]) wakes when the time
//! is reached, however it got there. Monotonic durations (poll intervals, timeouts) are not
//! business time and stay on tokio's timer.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::sync::Notify;

pub mod admin;

/// Microseconds since the Unix epoch: the unit every service stores times in.
pub type Micros = i64;

/// A source of business time; clones share it.
#[derive(Debug, Clone)]
pub struct Clock {
    kind: Kind,
}

#[derive(Debug, Clone)]
enum Kind {
    System,
    /// System time plus `offset` microseconds (never negative, only grows).
    Offset(Arc<Driven>),
    /// Exactly `at` microseconds, moved by hand.
    Manual(Arc<Driven>),
}

#[derive(Debug, Default)]
struct Driven {
    value: AtomicI64,
    moved: Notify,
}

impl Default for Clock {
    fn default() -> Self {
        Clock::system()
    }
}

fn system_micros() -> Micros {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as i64)
        .unwrap_or_default()
}

impl Clock {
    /// The system's wall clock.
    pub fn system() -> Self {
        Clock { kind: Kind::System }
    }

    /// System time, moved ahead by [`Clock::advance`]: time keeps flowing, and can jump.
    pub fn offset() -> Self {
        Clock {
            kind: Kind::Offset(Arc::default()),
        }
    }

    /// A clock stopped at `at` until it is advanced or set.
    pub fn manual(at: Micros) -> Self {
        let driven = Driven {
            value: AtomicI64::new(at),
            moved: Notify::new(),
        };
        Clock {
            kind: Kind::Manual(Arc::new(driven)),
        }
    }

    /// Now, in microseconds since the Unix epoch.
    pub fn now_micros(&self) -> Micros {
        match &self.kind {
            Kind::System => system_micros(),
            Kind::Offset(d) => system_micros().saturating_add(d.value.load(Ordering::Acquire)),
            Kind::Manual(d) => d.value.load(Ordering::Acquire),
        }
    }

    /// Now, as a protobuf timestamp.
    pub fn now(&self) -> prost_types::Timestamp {
        timestamp(self.now_micros())
    }

    /// Whether this clock can be moved (a test's or a simulator's).
    pub fn is_driven(&self) -> bool {
        !matches!(self.kind, Kind::System)
    }

    /// Moves a driven clock ahead by `by`; the system clock cannot be moved and says so.
    pub fn advance(&self, by: Duration) -> Result<Micros, crate::Error> {
        let by = i64::try_from(by.as_micros()).unwrap_or(i64::MAX);
        match &self.kind {
            Kind::System => Err(crate::Error::new(
                crate::ErrorCode::FailedPrecondition,
                "the system clock cannot be moved; run with a driven clock",
            )),
            Kind::Offset(d) | Kind::Manual(d) => {
                d.value.fetch_add(by, Ordering::AcqRel);
                d.moved.notify_waiters();
                Ok(self.now_micros())
            }
        }
    }

    /// Sets a manual clock to `at` (never backwards: business time does not rewind).
    pub fn set(&self, at: Micros) -> Result<(), crate::Error> {
        match &self.kind {
            Kind::Manual(d) => {
                d.value.fetch_max(at, Ordering::AcqRel);
                d.moved.notify_waiters();
                Ok(())
            }
            _ => Err(crate::Error::new(
                crate::ErrorCode::FailedPrecondition,
                "only a manual clock can be set",
            )),
        }
    }

    /// Resolves once the clock reads `at` or later: on the system's time passing, or on a
    /// driven clock being moved there.
    pub async fn sleep_until(&self, at: Micros) {
        loop {
            let moved = match &self.kind {
                Kind::System => None,
                Kind::Offset(d) | Kind::Manual(d) => Some(d.moved.notified()),
            };
            let now = self.now_micros();
            if now >= at {
                return;
            }
            let wait = Duration::from_micros((at - now) as u64);
            match (&self.kind, moved) {
                // A manual clock does not move with real time: wait for it to be moved.
                (Kind::Manual(_), Some(moved)) => moved.await,
                (_, Some(moved)) => {
                    tokio::select! {
                        () = moved => {}
                        () = tokio::time::sleep(wait) => {}
                    }
                }
                (_, None) => tokio::time::sleep(wait).await,
            }
        }
    }

    /// Resolves once `d` of this clock's time has passed.
    pub async fn sleep(&self, d: Duration) {
        let at = self
            .now_micros()
            .saturating_add(i64::try_from(d.as_micros()).unwrap_or(i64::MAX));
        self.sleep_until(at).await;
    }
}

/// Microseconds as a protobuf timestamp.
pub fn timestamp(micros: Micros) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: micros.div_euclid(1_000_000),
        nanos: (micros.rem_euclid(1_000_000) * 1_000) as i32,
    }
}

/// A protobuf timestamp as microseconds (sub-microsecond nanos are dropped).
pub fn micros(t: &prost_types::Timestamp) -> Micros {
    t.seconds
        .saturating_mul(1_000_000)
        .saturating_add(i64::from(t.nanos) / 1_000)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_round_trip_including_before_the_epoch() {
        for m in [0, 1, 999_999, 1_000_000, -1, -1_500_000, 1_764_000_000_123_456] {
            assert_eq!(micros(&timestamp(m)), m, "{m}");
            assert!((0..1_000_000_000).contains(&timestamp(m).nanos));
        }
    }

    #[test]
    fn a_manual_clock_moves_only_when_told() {
        let c = Clock::manual(1_000);
        assert_eq!(c.now_micros(), 1_000);
        c.advance(Duration::from_millis(2)).unwrap();
        assert_eq!(c.now_micros(), 3_000);
        c.set(2_000).unwrap();
        assert_eq!(c.now_micros(), 3_000, "never backwards");
        c.set(10_000).unwrap();
        assert_eq!(c.now_micros(), 10_000);
    }

    #[test]
    fn the_system_clock_refuses_to_move() {
        let c = Clock::system();
        assert!(c.advance(Duration::from_secs(1)).is_err());
        assert!(!c.is_driven());
    }

    #[test]
    fn an_offset_clock_runs_ahead_of_the_system() {
        let c = Clock::offset();
        c.advance(Duration::from_secs(86_400)).unwrap();
        let ahead = c.now_micros() - system_micros();
        assert!((86_399_000_000..=86_401_000_000).contains(&ahead), "{ahead}");
    }

    #[tokio::test]
    async fn sleeping_on_a_manual_clock_wakes_when_it_is_moved_past() {
        let c = Clock::manual(0);
        let sleeper = tokio::spawn({
            let c = c.clone();
            async move { c.sleep_until(5_000_000).await }
        });
        tokio::task::yield_now().await;
        c.advance(Duration::from_secs(4)).unwrap();
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!sleeper.is_finished(), "4 s of 5 have passed");
        c.advance(Duration::from_secs(1)).unwrap();
        tokio::time::timeout(Duration::from_secs(5), sleeper)
            .await
            .expect("woken by the move")
            .unwrap();
    }
}
