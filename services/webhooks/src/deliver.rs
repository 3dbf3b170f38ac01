//! The delivery worker: takes due deliveries (a lease per row, `SKIP LOCKED` on PostgreSQL, so
//! replicas share the work), POSTs each signed, records the attempt and what follows it
//! ([`next`]: the retry schedule, then failure and perhaps disabling the endpoint). Due times
//! are business time, so a test or the simulator that moves the clock moves the retries; a
//! delivery waits in the database, so it survives a restart.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use chorus_kit::Error;
use chorus_kit::clock::Clock;
use futures::StreamExt;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use url::{Host, Url};

use crate::guard::{Policy, Refused, Resolver};
use crate::signing;
use crate::store::{Disable, Due, Next, Outcome, Store};

/// Waits before each attempt: immediately, then the Standard Webhooks / Svix schedule.
/// Eight attempts over about 27.5 hours.
pub const SCHEDULE: [Duration; 8] = [
    Duration::ZERO,
    Duration::from_secs(5),
    Duration::from_secs(5 * 60),
    Duration::from_secs(30 * 60),
    Duration::from_secs(2 * 3600),
    Duration::from_secs(5 * 3600),
    Duration::from_secs(10 * 3600),
    Duration::from_secs(10 * 3600),
];

/// Deliveries claimed at once.
const BATCH: usize = 64;
/// How long a claimed delivery is left alone (its process may have died): longer than any
/// attempt can take.
const LEASE: Duration = Duration::from_secs(120);
/// The worker also looks every second, for deliveries other replicas made due.
const POLL: Duration = Duration::from_secs(1);

fn micros(d: Duration) -> i64 {
    i64::try_from(d.as_micros()).unwrap_or(i64::MAX)
}

/// What follows an attempt that made `attempts_made` attempts in the current schedule. A
/// success ends it; 410 Gone fails it and disables the endpoint at once (Standard Webhooks);
/// another failure waits for the next step of [`SCHEDULE`], and once the schedule has run
/// out the delivery has failed, and its endpoint is disabled if it has failed without a
/// success for `disable_after` or longer.
pub fn next(attempts_made: usize, outcome: &Outcome, now: i64, disable_after: Duration) -> Next {
    if outcome.succeeded() {
        return Next::Succeeded;
    }
    if outcome.gone() {
        return Next::Failed {
            reason: "the endpoint answered 410 Gone".into(),
            disable: Disable::Now,
        };
    }
    match SCHEDULE.get(attempts_made) {
        Some(wait) => Next::RetryAt(now.saturating_add(micros(*wait))),
        None => Next::Failed {
            reason: format!(
                "every attempt failed for {} hours or more; the last: {}",
                disable_after.as_secs() / 3600,
                outcome.error
            ),
            disable: Disable::IfFailingSince(now.saturating_sub(micros(disable_after))),
        },
    }
}

/// Sends deliveries as they fall due.
#[derive(Debug, Clone)]
pub struct Worker {
    store: Store,
    clock: Clock,
    client: reqwest::Client,
    policy: Arc<Policy>,
    timeout: Duration,
    disable_after: Duration,
    concurrency: usize,
    wake: Arc<Notify>,
}

impl Worker {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        store: Store,
        clock: Clock,
        policy: Arc<Policy>,
        timeout: Duration,
        disable_after: Duration,
        concurrency: usize,
        wake: Arc<Notify>,
    ) -> Result<Worker, Error> {
        // No redirects (a 3xx is a failure), no proxy (it would resolve the host itself, past
        // the guard), no idle connections (every delivery resolves and checks afresh).
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .dns_resolver(Arc::new(Resolver(policy.clone())))
            .pool_max_idle_per_host(0)
            .timeout(timeout)
            .user_agent(concat!("Chorus-Webhooks/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| Error::internal("build the webhook HTTP client", e))?;
        Ok(Worker {
            store,
            clock,
            client,
            policy,
            timeout,
            disable_after,
            concurrency,
            wake,
        })
    }

    /// Delivers until `stop`: wakes when a delivery is added here, when the next one falls due
    /// on the clock (however the clock got there), and every second.
    pub async fn run(self, stop: CancellationToken) -> Result<(), Error> {
        loop {
            let woken = self.wake.notified();
            if let Err(e) = self.deliver_due().await {
                tracing::warn!(error = %e, "webhook deliveries failed, retrying");
            }
            let next = self.store.next_due().await.unwrap_or_else(|e| {
                tracing::warn!(error = %e, "reading the next webhook delivery failed");
                None
            });
            tokio::select! {
                () = stop.cancelled() => return Ok(()),
                () = woken => {}
                () = self.clock.sleep_until(next.unwrap_or(i64::MAX)) => {}
                () = tokio::time::sleep(POLL) => {}
            }
        }
    }

    /// Makes every attempt due now; how many.
    pub async fn deliver_due(&self) -> Result<usize, Error> {
        let mut made = 0;
        loop {
            let wall = wall_micros();
            let due = self
                .store
                .claim(self.clock.now_micros(), wall, wall + micros(LEASE), BATCH)
                .await?;
            let n = due.len();
            let results: Vec<Result<(), Error>> = futures::stream::iter(due)
                .map(|d| self.attempt(d))
                .buffer_unordered(self.concurrency)
                .collect()
                .await;
            for r in results {
                r?;
            }
            made += n;
            if n < BATCH {
                return Ok(made);
            }
        }
    }

    async fn attempt(&self, due: Due) -> Result<(), Error> {
        let outcome = self.post(&due).await;
        let now = self.clock.now_micros();
        let attempts_made = usize::try_from(due.attempts).unwrap_or(0) + 1;
        let next = next(attempts_made, &outcome, now, self.disable_after);
        if self.store.record(&due, &outcome, &next, now).await? {
            tracing::warn!(endpoint = %due.endpoint_id, error = %outcome.error, "webhook endpoint disabled");
        }
        Ok(())
    }

    /// One POST: signed with every secret still signing, to an address the guard allowed.
    async fn post(&self, due: &Due) -> Outcome {
        let started = Instant::now();
        let outcome = |error: String, status_code: i64| Outcome {
            status_code,
            error,
            duration_ms: i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX),
        };
        let url = match Url::parse(&due.url) {
            Ok(url) => url,
            Err(e) => return outcome(format!("the URL does not parse: {e}"), 0),
        };
        // The resolver checks names; an address written in the URL is never resolved.
        let literal = match url.host() {
            Some(Host::Ipv4(ip)) => Some(ip.into()),
            Some(Host::Ipv6(ip)) => Some(ip.into()),
            _ => None,
        };
        if let Some(why) = literal.and_then(|ip| self.policy.check(ip)) {
            return outcome(format!("refused: {why}"), 0);
        }
        let now = self.clock.now_micros();
        let mut secrets = vec![due.secret.as_str()];
        if let (Some(old), Some(until)) = (&due.previous_secret, due.previous_secret_expire_time)
            && until > now
        {
            secrets.push(old);
        }
        // The receiver checks the timestamp against its own clock (within 5 minutes), so it
        // is the wall clock's, not business time.
        let timestamp = wall_micros() / 1_000_000;
        let signature = signing::header(&secrets, &due.event_id, timestamp, &due.body);
        let sent = self
            .client
            .post(url)
            .header("content-type", "application/json")
            .header("webhook-id", &due.event_id)
            .header("webhook-timestamp", timestamp.to_string())
            .header("webhook-signature", signature)
            .body(due.body.clone())
            .send()
            .await;
        match sent {
            Ok(answer) => {
                let status = answer.status();
                let code = i64::from(status.as_u16());
                if status.is_success() {
                    outcome(String::new(), code)
                } else if status.is_redirection() {
                    outcome(format!("answered {status} (redirects are not followed)"), code)
                } else {
                    outcome(format!("answered {status}"), code)
                }
            }
            Err(e) if e.is_timeout() => outcome(format!("timed out after {} ms", self.timeout.as_millis()), 0),
            Err(e) => outcome(describe(&e), 0),
        }
    }
}

/// The refusal when the guard refused, or the error and its causes.
fn describe(e: &reqwest::Error) -> String {
    let mut parts = vec![e.to_string()];
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        if let Some(refused) = s.downcast_ref::<Refused>() {
            return refused.to_string();
        }
        parts.push(s.to_string());
        source = s.source();
    }
    parts.join(": ")
}

fn wall_micros() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, micros)
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOUR: i64 = 3_600_000_000;

    fn failed(code: i64) -> Outcome {
        Outcome {
            status_code: code,
            error: format!("answered {code}"),
            duration_ms: 3,
        }
    }

    #[test]
    fn failures_follow_the_schedule_then_fail_and_disable_after_the_streak() {
        let after = Duration::from_secs(120 * 3600);
        let mut waits = Vec::new();
        for made in 1..SCHEDULE.len() {
            match next(made, &failed(500), 0, after) {
                Next::RetryAt(at) => waits.push(at / 1_000_000),
                other => panic!("attempt {made}: {other:?}"),
            }
        }
        assert_eq!(waits, [5, 300, 1800, 7200, 18_000, 36_000, 36_000]);
        match next(SCHEDULE.len(), &failed(500), 200 * HOUR, after) {
            Next::Failed {
                reason,
                disable: Disable::IfFailingSince(t),
            } => {
                assert_eq!(t, 80 * HOUR);
                assert!(reason.ends_with("the last: answered 500"), "{reason}");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn success_ends_and_gone_disables_at_once() {
        let ok = Outcome {
            status_code: 204,
            error: String::new(),
            duration_ms: 1,
        };
        assert!(matches!(next(3, &ok, 0, Duration::ZERO), Next::Succeeded));
        assert!(matches!(
            next(1, &failed(410), 0, Duration::from_secs(1)),
            Next::Failed {
                disable: Disable::Now,
                ..
            }
        ));
    }
}
