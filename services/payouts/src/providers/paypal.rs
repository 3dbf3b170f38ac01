//! PayPal Payouts: one batch per call, its `sender_batch_id` derived from the payouts' ids and
//! each item's `sender_item_id` the payout id, so a batch sent again is refused as a duplicate
//! and the original is read instead. Tokens are cached until they expire. A payout's reference
//! is its batch's `payout_batch_id`; items are found in it by `sender_item_id`.

use std::time::{Duration, Instant};

use async_trait::async_trait;
use chorus_kit::config::Secret;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tokio::sync::Mutex;

use super::client::{Answer, Client};
use super::{
    Destination, HttpSettings, LedgerView, Outcome, PayoutOrder, Period, Provider, ProviderError, ProviderRecord,
    RecordStatus, money,
};

/// PayPal takes at most this many items in one batch.
pub const MAX_BATCH: usize = 15_000;
const PAGE_SIZE: usize = 1_000;
/// A token this close to expiry is renewed rather than used.
const TOKEN_MARGIN: Duration = Duration::from_secs(60);

#[derive(Debug, Clone)]
pub struct PayPalConfig {
    /// `https://api-m.paypal.com`, the sandbox's, or the simulator's URL.
    pub base_url: String,
    pub client_id: String,
    pub client_secret: Secret<String>,
    pub http: HttpSettings,
}

#[derive(Debug)]
pub struct PayPal {
    base_url: String,
    client_id: String,
    client_secret: Secret<String>,
    client: Client,
    token: Mutex<Option<(Secret<String>, Instant)>>,
}

/// One item of a batch, as read back.
#[derive(Debug, Clone)]
struct Item {
    payout_item_id: String,
    sender_item_id: String,
    receiver: String,
    amount_minor: i64,
    currency: String,
    status: String,
    error: Option<String>,
}

impl PayPal {
    pub fn new(config: PayPalConfig) -> Result<PayPal, ProviderError> {
        Ok(PayPal {
            base_url: config.base_url.trim_end_matches('/').to_owned(),
            client_id: config.client_id,
            client_secret: config.client_secret,
            client: Client::new(config.http)?,
            token: Mutex::new(None),
        })
    }

    /// The batch id PayPal deduplicates on: a digest of the payouts' ids and first attempts,
    /// in any order. A batch sent again after a crash keeps it; a payout submitted anew after
    /// it failed (a new `first_attempt_at`) gets a new one, or PayPal would answer with the
    /// failed batch again.
    pub fn sender_batch_id(orders: &[PayoutOrder]) -> String {
        let mut ids: Vec<String> = orders
            .iter()
            .map(|o| format!("{}@{}", o.payout_id, o.first_attempt_at))
            .collect();
        ids.sort_unstable();
        let digest = Sha256::digest(ids.join("\n").as_bytes());
        let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
        format!("chorus-{hex}")
    }

    /// Cancels an UNCLAIMED item, which PayPal then RETURNs to us.
    pub async fn cancel_unclaimed(&self, order: &PayoutOrder, batch_id: &str) -> Result<Outcome, ProviderError> {
        let item = self
            .find_item(batch_id, &order.payout_id)
            .await?
            .ok_or_else(|| ProviderError::rejected("paypal batch has no item for this payout"))?;
        let url = format!(
            "{}/v1/payments/payouts-item/{}/cancel",
            self.base_url, item.payout_item_id
        );
        let answer = self
            .authed("paypal cancel item", |http, token| {
                http.post(&url).bearer_auth(token).json(&json!({}))
            })
            .await?;
        if answer.status != 200 {
            return Err(refusal(&answer));
        }
        item_outcome(batch_id, &parse_item(&answer.body)?)
    }

    async fn token(&self, renew: bool) -> Result<String, ProviderError> {
        let mut cached = self.token.lock().await;
        if let Some((token, expiry)) = cached.as_ref()
            && !renew
            && Instant::now() + TOKEN_MARGIN < *expiry
        {
            return Ok(token.expose().clone());
        }
        let url = format!("{}/v1/oauth2/token", self.base_url);
        let form = [("grant_type", "client_credentials")];
        let answer = self
            .client
            .send("paypal token", |http| {
                http.post(&url)
                    .basic_auth(&self.client_id, Some(self.client_secret.expose()))
                    .form(&form)
            })
            .await?;
        if answer.status != 200 {
            return Err(ProviderError::Config(format!(
                "paypal token: http {}: {}",
                answer.status, answer.body
            )));
        }
        let token = answer.body["access_token"]
            .as_str()
            .ok_or_else(|| ProviderError::transient("paypal token answer without access_token"))?
            .to_owned();
        let lifetime = Duration::from_secs(answer.body["expires_in"].as_u64().unwrap_or(0));
        *cached = Some((Secret::new(token.clone()), Instant::now() + lifetime));
        Ok(token)
    }

    /// Sends with the cached token, and once more with a new one if PayPal says it expired.
    async fn authed(
        &self,
        what: &str,
        build: impl Fn(&reqwest::Client, &str) -> reqwest::RequestBuilder,
    ) -> Result<Answer, ProviderError> {
        let token = self.token(false).await?;
        let answer = self.client.send(what, |http| build(http, &token)).await?;
        if answer.status != 401 {
            return Ok(answer);
        }
        let token = self.token(true).await?;
        self.client.send(what, |http| build(http, &token)).await
    }

    /// Sends the batch; returns its payout_batch_id, the original's for a duplicate.
    async fn create_batch(
        &self,
        orders: &[&PayoutOrder],
        items: Vec<Value>,
    ) -> Result<Result<String, String>, ProviderError> {
        let owned: Vec<PayoutOrder> = orders.iter().map(|o| (*o).clone()).collect();
        let body = json!({
            "sender_batch_header": {"sender_batch_id": Self::sender_batch_id(&owned), "recipient_type": "EMAIL",
                "email_subject": "You have a payout from Chorus"},
            "items": items,
        });
        let url = format!("{}/v1/payments/payouts", self.base_url);
        let answer = self
            .authed("paypal create batch", |http, token| {
                http.post(&url).bearer_auth(token).json(&body)
            })
            .await?;
        match answer.status {
            201 => answer.body["batch_header"]["payout_batch_id"]
                .as_str()
                .map(|id| Ok(id.to_owned()))
                .ok_or_else(|| ProviderError::transient("paypal batch without an id")),
            400 if answer.body["name"] == "USER_BUSINESS_ERROR" => match duplicate_of(&answer.body) {
                Some(id) => Ok(Ok(id)),
                None => Err(refusal(&answer)),
            },
            422 if answer.body["name"] == "INSUFFICIENT_FUNDS" => Ok(Err(error_text(&answer.body))),
            _ => Err(refusal(&answer)),
        }
    }

    /// Every item of a batch, page by page.
    async fn read_batch(&self, batch_id: &str) -> Result<Vec<Item>, ProviderError> {
        let url = format!("{}/v1/payments/payouts/{batch_id}", self.base_url);
        let mut items = Vec::new();
        for page in 1.. {
            let query = [("page", page.to_string()), ("page_size", PAGE_SIZE.to_string())];
            let answer = self
                .authed("paypal read batch", |http, token| {
                    http.get(&url).bearer_auth(token).query(&query)
                })
                .await?;
            if answer.status != 200 {
                return Err(refusal(&answer));
            }
            let page_items = answer.body["items"].as_array().cloned().unwrap_or_default();
            let full = page_items.len() == PAGE_SIZE;
            for item in &page_items {
                items.push(parse_item(item)?);
            }
            if !full {
                break;
            }
        }
        Ok(items)
    }

    async fn find_item(&self, batch_id: &str, payout_id: &str) -> Result<Option<Item>, ProviderError> {
        Ok(self
            .read_batch(batch_id)
            .await?
            .into_iter()
            .find(|i| i.sender_item_id == payout_id))
    }

    async fn submit_batch(&self, orders: &[PayoutOrder]) -> Vec<Result<Outcome, ProviderError>> {
        let mut results: Vec<Option<Result<Outcome, ProviderError>>> = vec![None; orders.len()];
        let mut sent: Vec<(usize, &PayoutOrder)> = Vec::new();
        let mut items = Vec::new();
        for (n, order) in orders.iter().enumerate() {
            match item_of(order) {
                Ok(item) => {
                    sent.push((n, order));
                    items.push(item);
                }
                Err(error) => results[n] = Some(Err(error)),
            }
        }
        if !sent.is_empty() {
            let batch: Vec<&PayoutOrder> = sent.iter().map(|(_, o)| *o).collect();
            let outcomes = self.send_and_read(&batch, items).await;
            for ((n, _), outcome) in sent.iter().zip(outcomes) {
                results[*n] = Some(outcome);
            }
        }
        results
            .into_iter()
            .map(|r| r.unwrap_or_else(|| Err(ProviderError::transient("paypal: no result"))))
            .collect()
    }

    async fn send_and_read(&self, batch: &[&PayoutOrder], items: Vec<Value>) -> Vec<Result<Outcome, ProviderError>> {
        let batch_id = match self.create_batch(batch, items).await {
            Ok(Ok(id)) => id,
            Ok(Err(reason)) => {
                return batch
                    .iter()
                    .map(|_| {
                        Ok(Outcome::Failed {
                            reference: None,
                            reason: reason.clone(),
                        })
                    })
                    .collect();
            }
            Err(error) => return batch.iter().map(|_| Err(error.clone())).collect(),
        };
        // The batch exists: if reading it fails, every payout is pending on it, never lost.
        let listed = self.read_batch(&batch_id).await.unwrap_or_default();
        batch
            .iter()
            .map(
                |order| match listed.iter().find(|i| i.sender_item_id == order.payout_id) {
                    Some(item) => item_outcome(&batch_id, item),
                    None => Ok(Outcome::Pending {
                        reference: batch_id.clone(),
                        reason: Some("not listed in the batch yet".into()),
                    }),
                },
            )
            .collect()
    }
}

#[async_trait]
impl Provider for PayPal {
    fn name(&self) -> &'static str {
        "paypal"
    }

    async fn submit(&self, orders: &[PayoutOrder], _now: i64) -> Vec<Result<Outcome, ProviderError>> {
        if orders.len() > MAX_BATCH {
            let error = ProviderError::Config(format!(
                "paypal takes at most {MAX_BATCH} payouts in a batch, got {}",
                orders.len()
            ));
            return orders.iter().map(|_| Err(error.clone())).collect();
        }
        if orders.is_empty() {
            return Vec::new();
        }
        self.submit_batch(orders).await
    }

    async fn status(&self, order: &PayoutOrder, reference: Option<&str>) -> Result<Outcome, ProviderError> {
        let batch_id = reference
            .ok_or_else(|| ProviderError::Config("paypal status needs the payout_batch_id submit returned".into()))?;
        match self.find_item(batch_id, &order.payout_id).await? {
            Some(item) => item_outcome(batch_id, &item),
            None => Ok(Outcome::Failed {
                reference: Some(batch_id.to_owned()),
                reason: "paypal batch has no item for this payout".into(),
            }),
        }
    }

    /// Every item of every batch our payouts name, including items we never sent.
    async fn records(&self, ours: &[LedgerView], _period: &Period) -> Result<Vec<ProviderRecord>, ProviderError> {
        let mut batches: Vec<&str> = ours.iter().filter_map(|v| v.reference.as_deref()).collect();
        batches.sort_unstable();
        batches.dedup();
        let mut records = Vec::new();
        for batch in batches {
            for item in self.read_batch(batch).await? {
                records.push(ProviderRecord {
                    payout_id: Some(item.sender_item_id.clone()),
                    reference: item.payout_item_id.clone(),
                    amount_minor: item.amount_minor,
                    currency: item.currency.clone(),
                    status: record_status(&item.status),
                    destination: item.receiver.clone(),
                });
            }
        }
        Ok(records)
    }
}

fn item_of(order: &PayoutOrder) -> Result<Value, ProviderError> {
    let Destination::PayPal { email } = &order.destination else {
        return Err(ProviderError::Config(format!(
            "payout {} is not for a paypal receiver",
            order.payout_id
        )));
    };
    if order.payout_id.len() > 63 || email.len() > 127 {
        return Err(ProviderError::rejected("paypal: sender_item_id or receiver too long"));
    }
    let value = money::to_paypal(order.amount_minor, &order.currency)?;
    Ok(
        json!({"recipient_type": "EMAIL", "receiver": email, "sender_item_id": order.payout_id,
        "amount": {"value": value, "currency": order.currency}, "note": order.description}),
    )
}

/// The original batch's id from the duplicate-batch error's link.
fn duplicate_of(body: &Value) -> Option<String> {
    let details = body["details"].as_array()?;
    let detail = details.iter().find(|d| d["field"] == "SENDER_BATCH_ID")?;
    let href = detail["link"].as_array()?.iter().find_map(|l| l["href"].as_str())?;
    // Only the id is taken: the token is never sent to a host the error names.
    let id = href.split('?').next()?.rsplit('/').next()?;
    (!id.is_empty()).then(|| id.to_owned())
}

fn parse_item(item: &Value) -> Result<Item, ProviderError> {
    let unreadable = || ProviderError::transient(format!("paypal sent an unreadable item: {item}"));
    let text = |v: &Value| v.as_str().map(str::to_owned);
    let currency = text(&item["payout_item"]["amount"]["currency"]).ok_or_else(unreadable)?;
    let value = item["payout_item"]["amount"]["value"].as_str().ok_or_else(unreadable)?;
    let error = item["errors"]["name"]
        .as_str()
        .map(|name| format!("{name}: {}", item["errors"]["message"].as_str().unwrap_or_default()));
    Ok(Item {
        payout_item_id: text(&item["payout_item_id"]).ok_or_else(unreadable)?,
        sender_item_id: text(&item["payout_item"]["sender_item_id"]).unwrap_or_default(),
        receiver: text(&item["payout_item"]["receiver"]).unwrap_or_default(),
        amount_minor: money::from_paypal(value, &currency)?,
        currency,
        status: text(&item["transaction_status"]).unwrap_or_default(),
        error,
    })
}

/// PayPal's item status as our outcome; a payout is paid only on SUCCESS.
fn item_outcome(batch_id: &str, item: &Item) -> Result<Outcome, ProviderError> {
    let reference = batch_id.to_owned();
    let reason = match &item.error {
        Some(error) => format!("paypal {}: {error}", item.status),
        None => format!("paypal {}", item.status),
    };
    Ok(match item.status.as_str() {
        "SUCCESS" => Outcome::Paid { reference },
        "PENDING" | "ONHOLD" => Outcome::Pending {
            reference,
            reason: None,
        },
        "UNCLAIMED" => Outcome::Pending {
            reference,
            reason: Some(reason),
        },
        "RETURNED" | "REFUNDED" | "REVERSED" => Outcome::Returned { reference, reason },
        "BLOCKED" | "FAILED" => Outcome::Failed {
            reference: Some(reference),
            reason,
        },
        other => Outcome::Pending {
            reference,
            reason: Some(format!("paypal status {other:?} not known")),
        },
    })
}

fn record_status(status: &str) -> RecordStatus {
    match status {
        "SUCCESS" => RecordStatus::Paid,
        "RETURNED" | "REFUNDED" | "REVERSED" => RecordStatus::Returned,
        "BLOCKED" | "FAILED" => RecordStatus::Failed,
        _ => RecordStatus::Pending,
    }
}

fn refusal(answer: &Answer) -> ProviderError {
    let text = error_text(&answer.body);
    match answer.status {
        401 | 403 => ProviderError::Config(format!("paypal: {text}")),
        409 => ProviderError::transient(format!("paypal: {text}")),
        status => ProviderError::rejected(format!("paypal http {status}: {text}")),
    }
}

fn error_text(body: &Value) -> String {
    let name = body["name"].as_str().unwrap_or("UNKNOWN");
    let message = body["message"].as_str().unwrap_or("no message");
    let issues: Vec<&str> = body["details"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|d| d["issue"].as_str())
        .collect();
    if issues.is_empty() {
        format!("{name}: {message}")
    } else {
        format!("{name}: {message} ({})", issues.join("; "))
    }
}
