//! The simulator's memory: every provider's records, the fault plans, rate limiters, balances
//! and request counts, behind one mutex (handlers never hold it across an await).

use std::collections::{HashMap, VecDeque};
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};

use crate::paypal::PayPalState;
use crate::stripe::StripeState;
use crate::tremendous::TremendousState;
use crate::{Endpoint, Fault, Provider};

#[derive(Debug, Default)]
pub(crate) struct State {
    pub(crate) faults: HashMap<Endpoint, VecDeque<Fault>>,
    pub(crate) requests: HashMap<Endpoint, usize>,
    pub(crate) balances: HashMap<Provider, i64>,
    limiters: HashMap<Provider, Arc<DefaultDirectRateLimiter>>,
    pub(crate) stripe: StripeState,
    pub(crate) paypal: PayPalState,
    pub(crate) tremendous: TremendousState,
    /// EasyPost events sent, by id, so they can be sent again byte for byte.
    pub(crate) sent_events: HashMap<String, Vec<u8>>,
}

impl State {
    pub(crate) fn set_rate_limit(&mut self, provider: Provider, per_second: Option<u32>) {
        match per_second.and_then(NonZeroU32::new) {
            Some(rate) => {
                self.limiters
                    .insert(provider, Arc::new(RateLimiter::direct(Quota::per_second(rate))));
            }
            None => {
                self.limiters.remove(&provider);
            }
        }
    }

    /// Counts the request and, when over the provider's rate, says how long to wait.
    pub(crate) fn admit(&mut self, endpoint: Endpoint) -> Result<(), Duration> {
        *self.requests.entry(endpoint).or_default() += 1;
        match self.limiters.get(&endpoint.provider()) {
            Some(limiter) => limiter
                .check()
                .map_err(|not_until| not_until.wait_time_from(DefaultClock::default().now())),
            None => Ok(()),
        }
    }

    pub(crate) fn next_fault(&mut self, endpoint: Endpoint) -> Option<Fault> {
        self.faults.get_mut(&endpoint).and_then(VecDeque::pop_front)
    }

    /// Takes `amount` from the provider's balance; false (and nothing taken) when too low.
    pub(crate) fn debit(&mut self, provider: Provider, amount: i64) -> bool {
        match self.balances.get_mut(&provider) {
            Some(balance) if *balance < amount => false,
            Some(balance) => {
                *balance -= amount;
                true
            }
            None => true,
        }
    }

    pub(crate) fn record_count(&self) -> usize {
        self.stripe.transfers.len()
            + self.paypal.batches.iter().map(|b| b.items.len()).sum::<usize>()
            + self.tremendous.orders.len()
    }
}
