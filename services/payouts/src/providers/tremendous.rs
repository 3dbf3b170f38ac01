//! Tremendous gift cards: one order per payout with `external_id` = the payout id, delivered as
//! a LINK. Tremendous answers a repeat with the existing order and a changed payload with a
//! 409, so a retry cannot buy a second card. Order statuses may contain spaces or be new.

use async_trait::async_trait;
use chorus_kit::config::Secret;
use serde_json::{Value, json};

use super::client::{Answer, Client};
use super::{
    Destination, HttpSettings, LedgerView, Outcome, PayoutOrder, Period, Provider, ProviderError, ProviderRecord,
    RecordStatus, each_bounded, money,
};

const PAGE: usize = 100;

#[derive(Debug, Clone)]
pub struct TremendousConfig {
    /// `https://api.tremendous.com/api/v2`, the sandbox's, or the simulator's URL.
    pub base_url: String,
    pub api_key: Secret<String>,
    /// Where the money comes from; Tremendous's own balance is "balance".
    pub funding_source_id: String,
    pub http: HttpSettings,
}

#[derive(Debug)]
pub struct Tremendous {
    base_url: String,
    api_key: Secret<String>,
    funding_source_id: String,
    client: Client,
}

impl Tremendous {
    pub fn new(config: TremendousConfig) -> Result<Tremendous, ProviderError> {
        Ok(Tremendous {
            base_url: config.base_url.trim_end_matches('/').to_owned(),
            api_key: config.api_key,
            funding_source_id: config.funding_source_id,
            client: Client::new(config.http)?,
        })
    }

    /// The order's request: the same for every retry of a payout.
    fn order_body(&self, order: &PayoutOrder) -> Result<Value, ProviderError> {
        let Destination::GiftCard { name, email, product } = &order.destination else {
            return Err(ProviderError::Config(format!(
                "payout {} is not a gift card",
                order.payout_id
            )));
        };
        let denomination = money::to_tremendous(order.amount_minor, &order.currency)?;
        Ok(json!({
            "external_id": order.payout_id,
            "payment": {"funding_source_id": self.funding_source_id},
            "reward": {"value": {"denomination": denomination, "currency_code": order.currency},
                "delivery": {"method": "LINK"}, "recipient": {"name": name, "email": email}, "products": [product]},
        }))
    }

    async fn submit_one(&self, order: &PayoutOrder) -> Result<Outcome, ProviderError> {
        let body = self.order_body(order)?;
        let url = format!("{}/orders", self.base_url);
        let answer = self
            .client
            .send("tremendous create order", |http| {
                http.post(&url).bearer_auth(self.api_key.expose()).json(&body)
            })
            .await?;
        match answer.status {
            200 | 201 => order_outcome(&answer.body["order"]),
            402 => Ok(Outcome::Failed {
                reference: None,
                reason: format!("tremendous: {}", error_text(&answer.body)),
            }),
            _ => Err(refusal(&answer)),
        }
    }
}

#[async_trait]
impl Provider for Tremendous {
    fn name(&self) -> &'static str {
        "tremendous"
    }

    async fn submit(&self, orders: &[PayoutOrder], _now: i64) -> Vec<Result<Outcome, ProviderError>> {
        let calls: Vec<_> = orders.iter().map(|order| self.submit_one(order)).collect();
        each_bounded(calls, self.client.settings.concurrency).await
    }

    /// By the order id when known, else by the external id (which Tremendous also accepts).
    async fn status(&self, order: &PayoutOrder, reference: Option<&str>) -> Result<Outcome, ProviderError> {
        let id = reference.unwrap_or(&order.payout_id);
        let url = format!("{}/orders/{id}", self.base_url);
        let answer = self
            .client
            .send("tremendous get order", |http| {
                http.get(&url).bearer_auth(self.api_key.expose())
            })
            .await?;
        match answer.status {
            200 => order_outcome(&answer.body["order"]),
            404 => Ok(Outcome::Failed {
                reference: reference.map(str::to_owned),
                reason: "tremendous has no order for this payout".into(),
            }),
            _ => Err(refusal(&answer)),
        }
    }

    /// Every order of the account, page by page.
    async fn records(&self, _ours: &[LedgerView], _period: &Period) -> Result<Vec<ProviderRecord>, ProviderError> {
        let url = format!("{}/orders", self.base_url);
        let mut records = Vec::new();
        loop {
            let query = [("offset", records.len().to_string()), ("limit", PAGE.to_string())];
            let answer = self
                .client
                .send("tremendous list orders", |http| {
                    http.get(&url).bearer_auth(self.api_key.expose()).query(&query)
                })
                .await?;
            if answer.status != 200 {
                return Err(refusal(&answer));
            }
            let page = answer.body["orders"].as_array().cloned().unwrap_or_default();
            for order in &page {
                records.push(record(order)?);
            }
            if page.len() < PAGE {
                return Ok(records);
            }
        }
    }
}

/// An order's status as our outcome: EXECUTED is paid, CANCELED and FAILED are final, the rest
/// (OPEN, CART, the PENDING ones, values we do not know yet) wait.
fn order_outcome(order: &Value) -> Result<Outcome, ProviderError> {
    let reference = order["id"]
        .as_str()
        .ok_or_else(|| ProviderError::transient(format!("tremendous sent an order without an id: {order}")))?
        .to_owned();
    let status = order["status"].as_str().unwrap_or("");
    let delivery = order["rewards"][0]["delivery"]["status"].as_str().unwrap_or("");
    Ok(match (status, delivery) {
        (_, "FAILED") => Outcome::Failed {
            reference: Some(reference),
            reason: "tremendous: reward delivery failed".into(),
        },
        ("EXECUTED", _) => Outcome::Paid { reference },
        ("CANCELED" | "FAILED", _) => Outcome::Failed {
            reference: Some(reference),
            reason: format!("tremendous order {status}"),
        },
        _ => Outcome::Pending {
            reference,
            reason: Some(format!("tremendous order {status}")),
        },
    })
}

fn record(order: &Value) -> Result<ProviderRecord, ProviderError> {
    let reward = &order["rewards"][0];
    let currency = reward["value"]["currency_code"].as_str().unwrap_or("USD").to_owned();
    let amount = reward["value"]["denomination"]
        .as_f64()
        .ok_or_else(|| ProviderError::transient(format!("tremendous order without a denomination: {order}")))?;
    let status = match order_outcome(order)? {
        Outcome::Paid { .. } => RecordStatus::Paid,
        Outcome::Pending { .. } => RecordStatus::Pending,
        Outcome::Failed { .. } => RecordStatus::Failed,
        Outcome::Returned { .. } => RecordStatus::Returned,
    };
    Ok(ProviderRecord {
        payout_id: order["external_id"].as_str().map(str::to_owned),
        reference: order["id"].as_str().unwrap_or_default().to_owned(),
        amount_minor: money::from_tremendous(amount, &currency),
        currency,
        status,
        destination: reward["recipient"]["email"].as_str().unwrap_or_default().to_owned(),
    })
}

fn refusal(answer: &Answer) -> ProviderError {
    let text = error_text(&answer.body);
    match answer.status {
        401 | 403 => ProviderError::Config(format!("tremendous: {text}")),
        409 => ProviderError::rejected(format!(
            "tremendous: external_id already used with another payload: {text}"
        )),
        status => ProviderError::rejected(format!("tremendous http {status}: {text}")),
    }
}

fn error_text(body: &Value) -> String {
    body["errors"]["message"].as_str().unwrap_or("no message").to_owned()
}
