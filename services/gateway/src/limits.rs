//! Rate limits per API key and per tenant, shared by every gateway replica through Redis:
//! GCRA (the generic cell rate algorithm), one theoretical arrival time per limited thing, all
//! checked and advanced by one Lua script, so a call counts against its key and its tenant
//! together or not at all, and replicas never race. Time is Redis's own (`TIME`), so the
//! replicas' clocks do not matter.
//!
//! If Redis cannot be reached the gateway lets calls through (fail open), counts them in
//! `gateway_rate_limit_unavailable_total` and logs at most once a minute: the limits protect
//! the services from a runaway client, and an outage of the limiter should not become an
//! outage of the API.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use redis::aio::{ConnectionManager, ConnectionManagerConfig};

use crate::policy::Limit;

/// GCRA over several keys at once. ARGV: for each key, its emission interval and its
/// capacity (interval × burst), in microseconds. Returns: allowed (1/0), the wait until the
/// call would be allowed (µs), the remaining calls and the time until the tightest limit is
/// whole again (µs), and the (1-based) index of the tightest key.
const SCRIPT: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local allowed, wait, remaining, reset, tightest = 1, 0, nil, 0, 1
local tats = {}
for i, key in ipairs(KEYS) do
  local interval = tonumber(ARGV[2 * i - 1])
  local capacity = tonumber(ARGV[2 * i])
  local tat = tonumber(redis.call('GET', key) or now)
  if tat < now then tat = now end
  local new_tat = tat + interval
  local over = new_tat - now - capacity
  if over > 0 then
    allowed = 0
    if over > wait then wait = over end
  end
  tats[i] = new_tat
  local left = math.floor((capacity - (new_tat - now)) / interval)
  if left < 0 then left = 0 end
  if remaining == nil or left < remaining then remaining = left; tightest = i end
  if new_tat - now > reset then reset = new_tat - now end
end
if allowed == 1 then
  for i, key in ipairs(KEYS) do
    redis.call('SET', key, tats[i], 'PX', math.ceil((tats[i] - now) / 1000) + 1)
  end
end
return {allowed, wait, remaining or 0, reset, tightest}
";

/// What the limiter said about one call.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Decision {
    pub(crate) allowed: bool,
    /// How long until the call would be allowed (zero when allowed).
    pub(crate) retry_after: Duration,
    /// The burst of the tightest limit.
    pub(crate) limit: u32,
    /// Calls left under the tightest limit.
    pub(crate) remaining: u64,
    /// Until every limit is whole again.
    pub(crate) reset: Duration,
}

/// The shared limiter.
#[derive(Debug)]
pub(crate) struct Limiter {
    client: redis::Client,
    connection: tokio::sync::OnceCell<ConnectionManager>,
    script: redis::Script,
    prefix: String,
    /// Unix seconds of the last "Redis unreachable" log line.
    last_logged: AtomicU64,
    /// Unix milliseconds before which Redis is not tried again after a failure, so an outage
    /// costs each call nothing rather than a connection attempt.
    down_until: AtomicU64,
}

/// Seconds between two log lines about an unreachable Redis.
const LOG_EVERY_S: u64 = 60;
/// The longest a decision may take; past it the call goes through.
const REDIS_TIMEOUT: Duration = Duration::from_millis(500);
/// How long Redis is left alone after it failed.
const RETRY_AFTER_FAILURE: Duration = Duration::from_secs(1);

impl Limiter {
    pub(crate) fn new(url: &str, prefix: String) -> Result<Limiter, String> {
        Ok(Limiter {
            client: redis::Client::open(url).map_err(|e| format!("CHORUS_GATEWAY_REDIS_URL: {e}"))?,
            connection: tokio::sync::OnceCell::new(),
            script: redis::Script::new(SCRIPT),
            prefix,
            last_logged: AtomicU64::new(0),
            down_until: AtomicU64::new(0),
        })
    }

    /// Counts one call against each `(name, limit)`; `None` when Redis could not say (the call
    /// goes through).
    pub(crate) async fn check(&self, limits: &[(String, Limit)]) -> Option<Decision> {
        let now_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_millis() as u64;
        let outcome = match now_ms < self.down_until.load(Ordering::Relaxed) {
            true => Err("still unreachable".to_owned()),
            false => match tokio::time::timeout(REDIS_TIMEOUT, self.try_check(limits)).await {
                Ok(Ok(d)) => Ok(d),
                Ok(Err(e)) => Err(e.to_string()),
                Err(_) => Err(format!("no answer within {} ms", REDIS_TIMEOUT.as_millis())),
            },
        };
        match outcome {
            Ok(d) => Some(d),
            Err(e) => {
                self.down_until
                    .fetch_max(now_ms + RETRY_AFTER_FAILURE.as_millis() as u64, Ordering::Relaxed);
                metrics::counter!("gateway_rate_limit_unavailable_total").increment(1);
                let now = now_ms / 1000;
                let last = self.last_logged.load(Ordering::Relaxed);
                if now >= last + LOG_EVERY_S
                    && self
                        .last_logged
                        .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                        .is_ok()
                {
                    tracing::warn!(error = %e, "rate limits not applied: redis unreachable (calls pass)");
                }
                None
            }
        }
    }

    async fn try_check(&self, limits: &[(String, Limit)]) -> Result<Decision, redis::RedisError> {
        let mut connection = self
            .connection
            .get_or_try_init(|| async {
                let config = ConnectionManagerConfig::new()
                    .set_number_of_retries(1)
                    .set_connection_timeout(Some(REDIS_TIMEOUT))
                    .set_response_timeout(Some(REDIS_TIMEOUT));
                ConnectionManager::new_with_config(self.client.clone(), config).await
            })
            .await?
            .clone();
        let mut invocation = self.script.prepare_invoke();
        for (name, limit) in limits {
            let interval = (1_000_000.0 / limit.rate).ceil().max(1.0) as u64;
            invocation
                .key(format!("{}{name}", self.prefix))
                .arg(interval)
                .arg(interval.saturating_mul(u64::from(limit.burst)));
        }
        let (allowed, wait, remaining, reset, tightest): (i64, u64, u64, u64, usize) =
            invocation.invoke_async(&mut connection).await?;
        Ok(Decision {
            allowed: allowed == 1,
            retry_after: Duration::from_micros(wait),
            limit: limits
                .get(tightest.saturating_sub(1))
                .map(|(_, l)| l.burst)
                .unwrap_or_default(),
            remaining,
            reset: Duration::from_micros(reset),
        })
    }
}

impl Decision {
    /// The IETF draft's `RateLimit-Limit`, `-Remaining` and `-Reset` (whole seconds, up), and
    /// `Retry-After` when refused.
    pub(crate) fn headers(&self, headers: &mut http::HeaderMap) {
        let secs_up = |d: Duration| d.as_micros().div_ceil(1_000_000);
        let mut put = |name: &'static str, value: String| {
            if let Ok(v) = http::HeaderValue::from_str(&value) {
                headers.insert(name, v);
            }
        };
        put("ratelimit-limit", self.limit.to_string());
        put("ratelimit-remaining", self.remaining.to_string());
        put("ratelimit-reset", secs_up(self.reset).to_string());
        if !self.allowed {
            put("retry-after", secs_up(self.retry_after).max(1).to_string());
        }
    }
}
