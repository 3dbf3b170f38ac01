//! Stripe Connect: a payout is a transfer to the payee's connected account, created once per
//! payout id (its `Idempotency-Key` and `transfer_group`). Stripe may forget keys after 24 h, so
//! an older payout is first looked up by its transfer_group; a transfer is paid when created.

use async_trait::async_trait;
use chorus_kit::config::Secret;
use serde_json::Value;

use super::client::{Answer, Client};
use super::{
    Destination, HttpSettings, LedgerView, Outcome, PayoutOrder, Period, Provider, ProviderError, ProviderRecord,
    RecordStatus, each_bounded, money,
};

/// Keys younger than this are still remembered by Stripe (it prunes after 24 h); an hour of
/// margin covers clock skew between us and Stripe.
const KEY_TRUSTED_MICROS: i64 = 23 * 3_600 * 1_000_000;

#[derive(Debug, Clone)]
pub struct StripeConfig {
    /// `https://api.stripe.com`, or the simulator's URL.
    pub base_url: String,
    pub api_key: Secret<String>,
    pub http: HttpSettings,
}

#[derive(Debug)]
pub struct Stripe {
    base_url: String,
    api_key: Secret<String>,
    client: Client,
}

/// The transfer fields we read.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Transfer {
    id: String,
    amount_minor: i64,
    currency: String,
    destination: String,
    transfer_group: Option<String>,
    reversed: bool,
}

impl Stripe {
    pub fn new(config: StripeConfig) -> Result<Stripe, ProviderError> {
        let client = Client::new(config.http)?;
        Ok(Stripe {
            base_url: config.base_url.trim_end_matches('/').to_owned(),
            api_key: config.api_key,
            client,
        })
    }

    /// The idempotency key of a payout's transfer: its id and first attempt. A submission sent
    /// again after a crash keeps it; a payout submitted anew after it failed gets a new one,
    /// since Stripe keeps a refusal under its key too (and refuses other parameters, such as
    /// the payee's new account, under it).
    pub fn transfer_key(order: &PayoutOrder) -> String {
        format!("chorus-payout-{}-{}", order.payout_id, order.first_attempt_at)
    }

    /// Reverses a payout's transfer, in full (`None`) or in part; once per payout. Returns the
    /// reversal's id.
    pub async fn reverse(
        &self,
        order: &PayoutOrder,
        transfer_id: &str,
        amount_minor: Option<i64>,
    ) -> Result<String, ProviderError> {
        let mut form: Vec<(&str, String)> = Vec::new();
        if let Some(amount) = amount_minor {
            form.push(("amount", money::to_stripe(amount, &order.currency)?.0.to_string()));
        }
        let url = format!("{}/v1/transfers/{transfer_id}/reversals", self.base_url);
        let key = format!("chorus-reversal-{}", order.payout_id);
        let answer = self
            .client
            .send("stripe reverse transfer", |http| {
                http.post(&url)
                    .bearer_auth(self.api_key.expose())
                    .header("Idempotency-Key", &key)
                    .form(&form)
            })
            .await?;
        match answer.status {
            200 => text(&answer.body, "id").ok_or_else(|| ProviderError::transient("stripe reversal without an id")),
            _ => Err(refusal(&answer)),
        }
    }

    async fn submit_one(&self, order: &PayoutOrder, now: i64) -> Result<Outcome, ProviderError> {
        let Destination::StripeAccount(account) = &order.destination else {
            return Err(ProviderError::Config(format!(
                "payout {} is not for a stripe account",
                order.payout_id
            )));
        };
        let (amount, currency) = money::to_stripe(order.amount_minor, &order.currency)?;
        if now - order.first_attempt_at >= KEY_TRUSTED_MICROS
            && let Some(transfer) = self.find_by_group(&order.payout_id).await?
        {
            return transfer_outcome(&transfer);
        }
        let form = [
            ("amount", amount.to_string()),
            ("currency", currency),
            ("destination", account.clone()),
            ("transfer_group", order.payout_id.clone()),
            ("description", order.description.clone()),
            ("metadata[payout_id]", order.payout_id.clone()),
            ("metadata[tenant]", order.tenant.clone()),
        ];
        let url = format!("{}/v1/transfers", self.base_url);
        let key = Self::transfer_key(order);
        let answer = self
            .client
            .send("stripe create transfer", |http| {
                http.post(&url)
                    .bearer_auth(self.api_key.expose())
                    .header("Idempotency-Key", &key)
                    .form(&form)
            })
            .await?;
        match answer.status {
            200 => transfer_outcome(&parse_transfer(&answer.body)?),
            400 if error_code(&answer.body) == Some("balance_insufficient") => Ok(Outcome::Failed {
                reference: None,
                reason: format!("stripe: {}", error_message(&answer.body)),
            }),
            // The key made a transfer with other parameters. The same amount to another
            // account: the payee changed their account after a send whose answer was lost, and
            // that transfer is the payment. Another amount stays a refusal.
            400 if error_code(&answer.body) == Some("idempotency_error") => {
                match self.find_by_group(&order.payout_id).await? {
                    Some(t)
                        if t.amount_minor == order.amount_minor && t.currency.eq_ignore_ascii_case(&order.currency) =>
                    {
                        transfer_outcome(&t)
                    }
                    _ => Err(refusal(&answer)),
                }
            }
            _ => Err(refusal(&answer)),
        }
    }

    /// The oldest transfer made for a payout, if any.
    async fn find_by_group(&self, payout_id: &str) -> Result<Option<Transfer>, ProviderError> {
        let url = format!("{}/v1/transfers", self.base_url);
        let query = [("transfer_group", payout_id), ("limit", "100")];
        let answer = self
            .client
            .send("stripe list transfers", |http| {
                http.get(&url).bearer_auth(self.api_key.expose()).query(&query)
            })
            .await?;
        if answer.status != 200 {
            return Err(refusal(&answer));
        }
        let transfers = parse_list(&answer.body)?;
        Ok(transfers.into_iter().last())
    }

    async fn get(&self, id: &str) -> Result<Option<Transfer>, ProviderError> {
        let url = format!("{}/v1/transfers/{id}", self.base_url);
        let answer = self
            .client
            .send("stripe get transfer", |http| {
                http.get(&url).bearer_auth(self.api_key.expose())
            })
            .await?;
        match answer.status {
            200 => parse_transfer(&answer.body).map(Some),
            404 => Ok(None),
            _ => Err(refusal(&answer)),
        }
    }
}

#[async_trait]
impl Provider for Stripe {
    fn name(&self) -> &'static str {
        "stripe"
    }

    async fn submit(&self, orders: &[PayoutOrder], now: i64) -> Vec<Result<Outcome, ProviderError>> {
        let calls: Vec<_> = orders.iter().map(|order| self.submit_one(order, now)).collect();
        each_bounded(calls, self.client.settings.concurrency).await
    }

    async fn status(&self, order: &PayoutOrder, reference: Option<&str>) -> Result<Outcome, ProviderError> {
        let transfer = match reference {
            Some(id) => self.get(id).await?,
            None => self.find_by_group(&order.payout_id).await?,
        };
        match transfer {
            Some(transfer) => transfer_outcome(&transfer),
            None => Ok(Outcome::Failed {
                reference: reference.map(str::to_owned),
                reason: "stripe has no transfer for this payout".into(),
            }),
        }
    }

    /// The platform's transfers created within `period` (`created[gte]` and `created[lte]`,
    /// so a large live account is not read whole), newest first, paged 100 at a time.
    async fn records(&self, _ours: &[LedgerView], period: &Period) -> Result<Vec<ProviderRecord>, ProviderError> {
        let url = format!("{}/v1/transfers", self.base_url);
        let mut records = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let mut query = vec![
                ("limit", "100".to_owned()),
                ("created[gte]", period.from_secs.to_string()),
                ("created[lte]", period.to_secs.to_string()),
            ];
            if let Some(cursor) = &after {
                query.push(("starting_after", cursor.clone()));
            }
            let answer = self
                .client
                .send("stripe list transfers", |http| {
                    http.get(&url).bearer_auth(self.api_key.expose()).query(&query)
                })
                .await?;
            if answer.status != 200 {
                return Err(refusal(&answer));
            }
            let page = parse_list(&answer.body)?;
            after = page.last().map(|t| t.id.clone());
            records.extend(page.into_iter().map(record));
            if answer.body["has_more"] != Value::Bool(true) || after.is_none() {
                return Ok(records);
            }
        }
    }
}

fn transfer_outcome(transfer: &Transfer) -> Result<Outcome, ProviderError> {
    if transfer.reversed {
        return Ok(Outcome::Returned {
            reference: transfer.id.clone(),
            reason: "stripe: transfer reversed".into(),
        });
    }
    Ok(Outcome::Paid {
        reference: transfer.id.clone(),
    })
}

fn record(transfer: Transfer) -> ProviderRecord {
    ProviderRecord {
        payout_id: transfer.transfer_group,
        reference: transfer.id,
        amount_minor: transfer.amount_minor,
        currency: transfer.currency,
        status: if transfer.reversed {
            RecordStatus::Returned
        } else {
            RecordStatus::Paid
        },
        destination: transfer.destination,
    }
}

fn parse_transfer(body: &Value) -> Result<Transfer, ProviderError> {
    let unreadable = || ProviderError::transient(format!("stripe sent an unreadable transfer: {body}"));
    let id = text(body, "id").ok_or_else(unreadable)?;
    let amount = body["amount"].as_i64().ok_or_else(unreadable)?;
    let (amount_minor, currency) = money::from_stripe(amount, &text(body, "currency").ok_or_else(unreadable)?)?;
    Ok(Transfer {
        id,
        amount_minor,
        currency,
        destination: text(body, "destination").unwrap_or_default(),
        transfer_group: text(body, "transfer_group"),
        reversed: body["reversed"].as_bool().unwrap_or(false),
    })
}

fn parse_list(body: &Value) -> Result<Vec<Transfer>, ProviderError> {
    body["data"]
        .as_array()
        .into_iter()
        .flatten()
        .map(parse_transfer)
        .collect()
}

/// A non-success answer as an error: keys in flight are retried later, auth is ours to fix,
/// anything else Stripe will answer the same way again.
fn refusal(answer: &Answer) -> ProviderError {
    let message = error_message(&answer.body);
    match answer.status {
        409 => ProviderError::Transient {
            reason: format!("stripe: {message}"),
            retry_after: Some(std::time::Duration::from_secs(1)),
        },
        401 | 403 => ProviderError::Config(format!("stripe: {message}")),
        status => ProviderError::rejected(format!("stripe http {status}: {message}")),
    }
}

fn error_code(body: &Value) -> Option<&str> {
    body["error"]["code"]
        .as_str()
        .or_else(|| body["error"]["type"].as_str())
}

fn error_message(body: &Value) -> String {
    let code = error_code(body).unwrap_or("unknown");
    let message = body["error"]["message"].as_str().unwrap_or("no message");
    format!("{code}: {message}")
}

fn text(body: &Value, field: &str) -> Option<String> {
    body[field].as_str().map(str::to_owned)
}
