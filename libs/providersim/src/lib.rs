//! A local simulator of the payout providers' HTTP APIs, as /work/shared/PROVIDERS.md documents
//! them: Stripe Connect transfers, PayPal Payouts and Tremendous orders on one loopback port,
//! with their idempotency rules, rate limits and error bodies, plus faults, tampering and
//! inspection driven from Rust. It serves the adapters' tests and `chorus up` without credentials.

mod easypost;
mod http;
mod paypal;
mod state;
mod stripe;
mod tremendous;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub use easypost::{SendError, signature as easypost_signature};
pub use paypal::{ItemOutcome, PayPalItem};
pub use stripe::{Reversal, Transfer};
pub use tremendous::Order;

use state::State;

/// Which provider a setting or a record belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Provider {
    Stripe,
    PayPal,
    Tremendous,
}

/// An endpoint a fault plan can target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Endpoint {
    StripeCreateTransfer,
    StripeGetTransfer,
    StripeListTransfers,
    StripeCreateReversal,
    PayPalToken,
    PayPalCreateBatch,
    PayPalGetBatch,
    PayPalCancelItem,
    TremendousCreateOrder,
    TremendousGetOrder,
    TremendousListOrders,
}

impl Endpoint {
    pub fn provider(self) -> Provider {
        use Endpoint::*;
        match self {
            StripeCreateTransfer | StripeGetTransfer | StripeListTransfers | StripeCreateReversal => Provider::Stripe,
            PayPalToken | PayPalCreateBatch | PayPalGetBatch | PayPalCancelItem => Provider::PayPal,
            TremendousCreateOrder | TremendousGetOrder | TremendousListOrders => Provider::Tremendous,
        }
    }
}

/// What goes wrong with one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// A 500 in the provider's error shape; nothing is executed.
    ServerError,
    /// The request is executed, then answered after this long (a client timeout's case).
    Slow(Duration),
    /// The request is executed, then the connection is dropped unanswered: the "crash after
    /// the provider call" case, seen from the client.
    DropAfter,
    /// The connection is dropped before anything is executed.
    DropBefore,
}

/// How to start a simulator: where to listen, the credentials it accepts, the rate limits.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// `127.0.0.1:0` picks a free port.
    pub addr: SocketAddr,
    pub stripe_key: String,
    pub paypal_client_id: String,
    pub paypal_secret: String,
    pub paypal_token_ttl: Duration,
    pub tremendous_key: String,
    /// Requests per second per provider; a provider absent here is not limited.
    pub rate_limits: HashMap<Provider, u32>,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            stripe_key: "sk_test_chorus".into(),
            paypal_client_id: "chorus-client".into(),
            paypal_secret: "chorus-secret".into(),
            paypal_token_ttl: Duration::from_secs(32_400),
            tremendous_key: "TEST_chorus".into(),
            rate_limits: HashMap::new(),
        }
    }
}

/// What the handlers share: the credentials, the records and the control settings.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) config: SimConfig,
    pub(crate) base_url: String,
    pub(crate) state: Mutex<State>,
}

impl Shared {
    /// The state; a handler that panicked mid-update leaves it usable for the next test step.
    pub(crate) fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A running simulator. It stops when dropped or on [`Simulator::shutdown`].
#[derive(Debug)]
pub struct Simulator {
    addr: SocketAddr,
    shared: Arc<Shared>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl Simulator {
    /// Binds `config.addr` and serves until dropped.
    pub async fn start(config: SimConfig) -> std::io::Result<Simulator> {
        let listener = tokio::net::TcpListener::bind(config.addr).await?;
        let addr = listener.local_addr()?;
        let mut state = State::default();
        for (provider, rate) in &config.rate_limits {
            state.set_rate_limit(*provider, Some(*rate));
        }
        let shared = Arc::new(Shared {
            config,
            base_url: format!("http://{addr}"),
            state: Mutex::new(state),
        });
        let app = http::router(shared.clone());
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let serve = axum::serve(listener, app).with_graceful_shutdown(async {
                let _ = stopped.await;
            });
            if let Err(error) = serve.await {
                tracing::warn!(%error, "provider simulator stopped");
            }
        });
        Ok(Simulator {
            addr,
            shared,
            stop: Some(stop),
            task: Some(task),
        })
    }

    /// Stops serving and waits for the server task to end.
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stripe's base URL (paths `/v1/transfers...`).
    pub fn stripe_url(&self) -> String {
        self.shared.base_url.clone()
    }

    /// PayPal's base URL (paths `/v1/oauth2/token`, `/v1/payments/...`).
    pub fn paypal_url(&self) -> String {
        self.shared.base_url.clone()
    }

    /// Tremendous's base URL, with its `/api/v2` prefix.
    pub fn tremendous_url(&self) -> String {
        format!("{}/api/v2", self.shared.base_url)
    }

    pub fn config(&self) -> &SimConfig {
        &self.shared.config
    }

    // --- control -------------------------------------------------------------------------

    /// Sets the clock Stripe's records are made by (`created`, what `created[gte]` and
    /// `created[lte]` filter on) to `unix_secs` now, advancing with the system's from there:
    /// tests whose services run on a manual clock set it to the same time.
    pub fn set_clock(&self, unix_secs: i64) {
        self.shared.state().stripe.clock_offset = unix_secs - http::now_secs();
    }

    /// The next `times` requests to `endpoint` meet `fault` (plans queue up in order).
    pub fn fault(&self, endpoint: Endpoint, fault: Fault, times: usize) {
        let mut state = self.shared.state();
        let plan = state.faults.entry(endpoint).or_default();
        plan.extend(std::iter::repeat_n(fault, times));
    }

    /// Requests per second for a provider, or `None` for no limit.
    pub fn set_rate_limit(&self, provider: Provider, per_second: Option<u32>) {
        self.shared.state().set_rate_limit(provider, per_second);
    }

    /// The money a provider holds for us, in minor units; `None` is unlimited (the default).
    pub fn set_balance(&self, provider: Provider, minor: Option<i64>) {
        let mut state = self.shared.state();
        match minor {
            Some(amount) => state.balances.insert(provider, amount),
            None => state.balances.remove(&provider),
        };
    }

    pub fn balance(&self, provider: Provider) -> Option<i64> {
        self.shared.state().balances.get(&provider).copied()
    }

    /// Stripe forgets its idempotency keys, as it may after 24 h.
    pub fn forget_idempotency_keys(&self) {
        self.shared.state().stripe.keys.clear();
    }

    /// How PayPal settles items sent to this receiver from now on (default: SUCCESS).
    pub fn set_paypal_outcome(&self, receiver: &str, outcome: ItemOutcome) {
        self.shared.state().paypal.outcomes.insert(receiver.to_owned(), outcome);
    }

    /// PayPal tokens issued so far, to check that a client caches them.
    pub fn paypal_tokens_issued(&self) -> usize {
        self.shared.state().paypal.tokens_issued
    }

    /// Every PayPal token stops working, as when they expire.
    pub fn expire_paypal_tokens(&self) {
        self.shared.state().paypal.tokens.clear();
    }

    /// Requests received by an endpoint (including rejected and faulted ones).
    pub fn requests(&self, endpoint: Endpoint) -> usize {
        self.shared.state().requests.get(&endpoint).copied().unwrap_or(0)
    }

    // --- inspection ----------------------------------------------------------------------

    pub fn transfers(&self) -> Vec<Transfer> {
        self.shared.state().stripe.transfers.clone()
    }

    pub fn payout_items(&self) -> Vec<PayPalItem> {
        self.shared
            .state()
            .paypal
            .batches
            .iter()
            .flat_map(|b| b.items.clone())
            .collect()
    }

    /// PayPal batches made, as (payout_batch_id, sender_batch_id, item count).
    pub fn paypal_batches(&self) -> Vec<(String, String, usize)> {
        let state = self.shared.state();
        state
            .paypal
            .batches
            .iter()
            .map(|b| (b.id.clone(), b.sender_batch_id.clone(), b.items.len()))
            .collect()
    }

    pub fn orders(&self) -> Vec<Order> {
        self.shared.state().tremendous.orders.clone()
    }

    /// Money movements towards one destination (a Stripe account, a PayPal receiver or a
    /// Tremendous recipient's email) across all providers: what "paid twice" would show.
    pub fn movements(&self, destination: &str) -> usize {
        let state = self.shared.state();
        let stripe = state
            .stripe
            .transfers
            .iter()
            .filter(|t| t.destination == destination)
            .count();
        let paypal = state
            .paypal
            .batches
            .iter()
            .flat_map(|b| &b.items)
            .filter(|i| i.receiver == destination)
            .count();
        let gift = state
            .tremendous
            .orders
            .iter()
            .filter(|o| o.recipient_email == destination)
            .count();
        stripe + paypal + gift
    }

    // --- tampering, for reconciliation tests --------------------------------------------

    /// Changes a record's amount: a Stripe transfer's (`tr_…`), a PayPal item's
    /// (`sender_item_id`) or a Tremendous order's (id or external id). False when not found.
    pub fn tamper_amount(&self, reference: &str, amount_minor: i64) -> bool {
        let mut state = self.shared.state();
        if let Some(t) = state.stripe.transfers.iter_mut().find(|t| t.id == reference) {
            t.amount = amount_minor;
            return true;
        }
        if let Some(i) = state.paypal.item_mut(reference) {
            i.amount_minor = amount_minor;
            return true;
        }
        if let Some(o) = state.tremendous.order_mut(reference) {
            o.amount_minor = amount_minor;
            return true;
        }
        false
    }

    /// Changes a record's currency (upper-case ISO code). False when not found.
    pub fn tamper_currency(&self, reference: &str, currency: &str) -> bool {
        let mut state = self.shared.state();
        if let Some(t) = state.stripe.transfers.iter_mut().find(|t| t.id == reference) {
            t.currency = currency.to_ascii_lowercase();
            return true;
        }
        if let Some(i) = state.paypal.item_mut(reference) {
            i.currency = currency.to_owned();
            return true;
        }
        if let Some(o) = state.tremendous.order_mut(reference) {
            o.currency = currency.to_owned();
            return true;
        }
        false
    }

    /// Sets a PayPal item's `transaction_status` (by `sender_item_id`) or a Tremendous order's
    /// status (by id or external id); a Stripe transfer is reversed in full by `"reversed"`.
    pub fn tamper_status(&self, reference: &str, status: &str) -> bool {
        let mut state = self.shared.state();
        if let Some(t) = state.stripe.transfers.iter_mut().find(|t| t.id == reference) {
            t.reversed = status == "reversed";
            t.amount_reversed = if t.reversed { t.amount } else { 0 };
            return true;
        }
        if let Some(i) = state.paypal.item_mut(reference) {
            i.status = status.to_owned();
            return true;
        }
        if let Some(o) = state.tremendous.order_mut(reference) {
            o.status = status.to_owned();
            return true;
        }
        false
    }

    /// Deletes a record, as if the provider had never made it. False when not found.
    pub fn tamper_delete(&self, reference: &str) -> bool {
        let mut state = self.shared.state();
        let before = state.record_count();
        state.stripe.transfers.retain(|t| t.id != reference);
        for batch in &mut state.paypal.batches {
            batch
                .items
                .retain(|i| i.sender_item_id != reference && i.payout_item_id != reference);
        }
        state
            .tremendous
            .orders
            .retain(|o| o.id != reference && o.external_id.as_deref() != Some(reference));
        state.record_count() != before
    }

    /// Adds a Stripe transfer nobody asked for; returns its id.
    pub fn plant_transfer(
        &self,
        destination: &str,
        amount: i64,
        currency: &str,
        transfer_group: Option<&str>,
    ) -> String {
        let mut state = self.shared.state();
        state
            .stripe
            .insert(amount, currency, destination, transfer_group.map(str::to_owned), None)
    }

    /// Adds an item nobody asked for to an existing PayPal batch; returns its payout_item_id.
    pub fn plant_paypal_item(
        &self,
        payout_batch_id: &str,
        receiver: &str,
        amount_minor: i64,
        sender_item_id: &str,
    ) -> Option<String> {
        self.shared
            .state()
            .paypal
            .plant(payout_batch_id, receiver, amount_minor, sender_item_id)
    }

    /// Adds a Tremendous order nobody asked for; returns its id.
    pub fn plant_order(&self, email: &str, amount_minor: i64, external_id: Option<&str>) -> String {
        self.shared.state().tremendous.plant(email, amount_minor, external_id)
    }

    // --- EasyPost ------------------------------------------------------------------------

    /// POSTs a `tracker.updated` Event signed with `secret` to `url`; returns the event id.
    pub async fn send_tracker_event(
        &self,
        url: &str,
        secret: &str,
        tracking_code: &str,
        status: &str,
    ) -> Result<String, SendError> {
        let (id, body) = easypost::tracker_event(tracking_code, status);
        self.shared.state().sent_events.insert(id.clone(), body.clone());
        easypost::post(url, secret, body).await?;
        Ok(id)
    }

    /// Sends an event sent before once more, byte for byte (delivery is at least once).
    pub async fn resend_tracker_event(&self, url: &str, secret: &str, event_id: &str) -> Result<(), SendError> {
        let body = self.shared.state().sent_events.get(event_id).cloned();
        let body = body.ok_or_else(|| SendError::UnknownEvent(event_id.to_owned()))?;
        easypost::post(url, secret, body).await
    }
}

impl Drop for Simulator {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}
