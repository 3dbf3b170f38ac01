//! The payout port: what the payout runner asks of any provider (submit, status, records) and
//! the adapters that speak each provider's documented HTTP API behind it. Each adapter derives
//! the provider's own idempotency key from the payout id, so a retry can never pay twice.

mod client;
mod config;
pub mod easypost;
pub mod money;
pub mod paypal;
mod reconcile;
pub mod stripe;
pub mod tremendous;

use std::fmt::Debug;
use std::time::Duration;

use async_trait::async_trait;

pub use client::HttpSettings;
pub use config::ProvidersConfig;
pub use reconcile::{Difference, LedgerView, reconcile};

/// One payout as a provider is asked to make it. Everything in it is stable across retries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PayoutOrder {
    /// UUIDv7, the root of every idempotency key sent to the provider.
    pub payout_id: String,
    pub tenant: String,
    /// In the currency's ISO 4217 minor units (cents for USD, yen for JPY).
    pub amount_minor: i64,
    /// Upper-case ISO 4217 code, e.g. "USD".
    pub currency: String,
    pub destination: Destination,
    pub description: String,
    /// Unix micros of the first submission: Stripe may forget a key after 24 h.
    pub first_attempt_at: i64,
}

/// Where the money or the gift card goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Destination {
    /// A Stripe connected account, `acct_…`.
    StripeAccount(String),
    PayPal {
        email: String,
    },
    /// A Tremendous reward delivered as a link; `product` is the Tremendous product id.
    GiftCard {
        name: String,
        email: String,
        product: String,
    },
}

impl Destination {
    /// The key a provider's record names: account id or email.
    pub fn key(&self) -> &str {
        match self {
            Destination::StripeAccount(account) => account,
            Destination::PayPal { email } | Destination::GiftCard { email, .. } => email,
        }
    }
}

/// What the provider says became of a payout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Accepted, not final (PayPal PENDING/ONHOLD/UNCLAIMED, a Tremendous order awaiting
    /// approval); `reason` says why when the provider gives one (UNCLAIMED's).
    Pending { reference: String, reason: Option<String> },
    /// Final: the money or the card reached the payee's side.
    Paid { reference: String },
    /// Final: nothing was paid.
    Failed { reference: Option<String>, reason: String },
    /// Final: it was paid and came back (PayPal RETURNED/REFUNDED/REVERSED, a reversed transfer).
    Returned { reference: String, reason: String },
}

/// Why a call gave no outcome.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProviderError {
    /// Try again later (the same payout, the same keys): 429, 5xx, timeouts, dropped connections.
    #[error("provider unavailable: {reason}")]
    Transient {
        reason: String,
        retry_after: Option<Duration>,
    },
    /// The provider refused this payout for good: never retry it as is.
    #[error("provider rejected the payout: {reason}")]
    Rejected { reason: String },
    /// Our side is wrong: credentials, a destination of the wrong kind, an unsupported currency.
    #[error("provider configuration: {0}")]
    Config(String),
}

impl ProviderError {
    pub(crate) fn transient(reason: impl Into<String>) -> ProviderError {
        ProviderError::Transient {
            reason: reason.into(),
            retry_after: None,
        }
    }

    pub(crate) fn rejected(reason: impl Into<String>) -> ProviderError {
        ProviderError::Rejected { reason: reason.into() }
    }
}

/// A provider's final-or-not view of one record, for reconciliation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordStatus {
    Pending,
    Paid,
    Failed,
    Returned,
}

/// What a provider says it did: one transfer, payout item or order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderRecord {
    /// The payout it was made for, when the record names one (transfer_group, sender_item_id,
    /// external_id); `None` for a record nothing of ours asked for.
    pub payout_id: Option<String>,
    /// The provider's id of the record.
    pub reference: String,
    pub amount_minor: i64,
    pub currency: String,
    pub status: RecordStatus,
    /// Account id or email.
    pub destination: String,
}

/// A payout provider behind one port.
#[async_trait]
pub trait Provider: Send + Sync + Debug {
    /// "stripe", "paypal" or "tremendous".
    fn name(&self) -> &'static str;

    /// Submits payouts; one result per order, in order. PayPal sends them as one batch
    /// (at most 15,000); Stripe and Tremendous pace single calls at the configured rate with
    /// bounded concurrency. Submitting the same orders again never pays twice.
    async fn submit(&self, orders: &[PayoutOrder], now: i64) -> Vec<Result<Outcome, ProviderError>>;

    /// The provider's current view of one payout; `reference` is what `submit` returned.
    async fn status(&self, order: &PayoutOrder, reference: Option<&str>) -> Result<Outcome, ProviderError>;

    /// What the provider did around these payouts, including records unknown to us, for
    /// [`reconcile`]. Stripe lists the account's transfers created within `period`
    /// (`created[gte]`, `created[lte]`, paged); Tremendous lists its orders (its list has no
    /// date filter in the documented API); PayPal, which has no list, reads every batch the
    /// views reference.
    async fn records(&self, ours: &[LedgerView], period: &Period) -> Result<Vec<ProviderRecord>, ProviderError>;
}

/// The time a reconciliation covers, in unix seconds, both ends included.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Period {
    pub from_secs: i64,
    pub to_secs: i64,
}

impl Period {
    /// Slack on both sides of what our own clock says: a provider's clock may differ from ours,
    /// and a record is made after the submission we committed before calling.
    pub const SLACK_SECS: i64 = 86_400;

    /// The provider records that can belong to payouts first submitted from `from_micros`
    /// until `now_micros`, with [`Period::SLACK_SECS`] on both sides.
    pub fn around(from_micros: i64, now_micros: i64) -> Period {
        Period {
            from_secs: from_micros.div_euclid(1_000_000).saturating_sub(Self::SLACK_SECS),
            to_secs: now_micros.div_euclid(1_000_000).saturating_add(Self::SLACK_SECS),
        }
    }

    /// Everything: for callers that want the whole account.
    pub const ALL: Period = Period {
        from_secs: 0,
        to_secs: i64::MAX,
    };
}

/// Runs the calls with at most `concurrency` in flight, results in order. (The futures are
/// made before the stream so no closure is held across an await: async_trait needs `Send`.)
pub(crate) async fn each_bounded<Fut>(calls: Vec<Fut>, concurrency: usize) -> Vec<Result<Outcome, ProviderError>>
where
    Fut: std::future::Future<Output = Result<Outcome, ProviderError>>,
{
    use futures::StreamExt;
    futures::stream::iter(calls)
        .buffered(concurrency.max(1))
        .collect()
        .await
}
