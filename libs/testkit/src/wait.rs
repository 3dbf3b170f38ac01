//! Waiting for a condition in a test: poll a probe until it holds, rather than sleep for a time
//! that is too long on a fast machine and too short on a loaded one.

use std::fmt::{self, Debug};
use std::future::Future;
use std::panic::Location;
use std::time::Duration;

use tokio::time::Instant;

/// The pause after the first failed try; it doubles after each try, up to [`LONGEST_PAUSE`].
const FIRST_PAUSE: Duration = Duration::from_millis(5);
const LONGEST_PAUSE: Duration = Duration::from_millis(100);

/// Runs `probe` until it returns `Ok`, and gives back that value. Between tries it pauses 5 ms,
/// then twice as long each time, up to 100 ms. When `deadline` has passed it panics with the
/// caller's location, the number of tries and the last error, so the error should say what was
/// awaited and what was seen instead. A try still running at the deadline is cancelled.
///
/// The probe returns `Result` rather than `Option` so that the failure message can say why;
/// for a probe that has nothing to say, `.ok_or("...")` turns an `Option` into one.
///
/// ```no_run
/// # async fn demo(pool: sqlx::PgPool) {
/// use std::time::Duration;
/// use chorus_testkit::eventually;
///
/// // Wait for the relay to have published every event of the outbox.
/// eventually(Duration::from_secs(5), || async {
///     let left: i64 = sqlx::query_scalar("SELECT count(*) FROM outbox")
///         .fetch_one(&pool)
///         .await
///         .map_err(|e| format!("count the outbox: {e}"))?;
///     if left == 0 { Ok(()) } else { Err(format!("{left} events still in the outbox")) }
/// })
/// .await;
/// # }
/// ```
///
/// (A function returning the future, rather than an `async fn`, so that the panic can name the
/// line that called it.)
#[track_caller]
pub fn eventually<T, E, F, Fut>(deadline: Duration, probe: F) -> impl Future<Output = T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
    E: Debug,
{
    let caller = Location::caller();
    async move {
        match retry(deadline, probe).await {
            Ok(value) => value,
            Err(gave_up) => panic!("eventually (at {caller}): {gave_up}"),
        }
    }
}

/// [`eventually`] without the panic, for helpers that add their own context (a server's log).
pub(crate) async fn retry<T, E, F, Fut>(deadline: Duration, mut probe: F) -> Result<T, GaveUp<E>>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    let start = Instant::now();
    let end = start + deadline;
    let mut pause = FIRST_PAUSE;
    let mut tries = 0;
    let mut last = None;
    loop {
        tries += 1;
        let still_running = match tokio::time::timeout_at(end, probe()).await {
            Ok(Ok(value)) => return Ok(value),
            Ok(Err(error)) => {
                last = Some(error);
                false
            }
            Err(_elapsed) => true,
        };
        let now = Instant::now();
        // No try is started that would have no time left to run.
        if still_running || now + pause >= end {
            return Err(GaveUp {
                waited: now - start,
                tries,
                last,
                still_running,
            });
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(LONGEST_PAUSE);
    }
}

/// Why a [`retry`] stopped: what it tried and the last error it saw.
#[derive(Debug)]
pub(crate) struct GaveUp<E> {
    waited: Duration,
    tries: u32,
    last: Option<E>,
    /// The last try was cancelled at the deadline.
    still_running: bool,
}

impl<E: Debug> fmt::Display for GaveUp<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "still not there after {:?} and {} tries", self.waited, self.tries)?;
        if self.still_running {
            write!(f, "; the last try was still running at the deadline")?;
        }
        match &self.last {
            Some(error) => write!(f, "; last error: {error:?}"),
            None => write!(f, "; no try finished"),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;

    /// The message of the panic that ended `task`.
    async fn panic_message(task: tokio::task::JoinHandle<()>) -> String {
        let payload = task.await.expect_err("the task panics").into_panic();
        payload
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| payload.downcast_ref::<&str>().map(|s| (*s).to_owned()))
            .unwrap_or_default()
    }

    #[tokio::test]
    async fn returns_the_value_once_the_probe_succeeds() {
        let tries = AtomicU32::new(0);
        let value = eventually(Duration::from_secs(5), || async {
            match tries.fetch_add(1, Ordering::SeqCst) {
                n @ 0..3 => Err(format!("try {n}")),
                _ => Ok("there"),
            }
        })
        .await;
        assert_eq!(value, "there");
        assert_eq!(tries.load(Ordering::SeqCst), 4);
    }

    #[tokio::test]
    async fn backs_off_between_tries() {
        let tries = Arc::new(AtomicU32::new(0));
        let counted = tries.clone();
        let started = Instant::now();
        let result = retry(Duration::from_millis(400), move || {
            let counted = counted.clone();
            async move { Err::<(), _>(counted.fetch_add(1, Ordering::SeqCst)) }
        })
        .await;
        assert!(result.is_err());
        // 5, 10, 20, 40, 80, 100, 100 ms: about eight tries, not eighty.
        let tries = tries.load(Ordering::SeqCst);
        assert!((4..=12).contains(&tries), "{tries} tries");
        assert!(started.elapsed() <= Duration::from_millis(450));
    }

    #[tokio::test]
    async fn panics_with_the_caller_and_the_last_error() {
        let task = tokio::spawn(async {
            let mut n = 0;
            eventually(Duration::from_millis(100), || {
                n += 1;
                let seen = format!("queue length {n}, want 0");
                async move { Err::<(), _>(seen) }
            })
            .await;
        });
        let message = panic_message(task).await;
        assert!(
            message.starts_with("eventually (at libs/testkit/src/wait.rs:"),
            "{message}"
        );
        assert!(message.contains("still not there after"), "{message}");
        assert!(message.contains("; last error: \"queue length"), "{message}");
    }

    #[tokio::test]
    async fn cancels_a_try_that_outlives_the_deadline() {
        let task = tokio::spawn(async {
            let mut first = true;
            eventually(Duration::from_millis(200), || {
                let hang = !std::mem::take(&mut first);
                async move {
                    if hang {
                        tokio::time::sleep(Duration::from_secs(3600)).await;
                    }
                    Err::<(), _>("refused")
                }
            })
            .await;
        });
        let started = Instant::now();
        let message = panic_message(task).await;
        assert!(started.elapsed() < Duration::from_secs(5));
        assert!(
            message.contains("the last try was still running at the deadline; last error: \"refused\""),
            "{message}"
        );
    }
}
