//! PayPal Payouts: OAuth client-credential tokens, batches deduplicated by `sender_batch_id`
//! (the documented 400 USER_BUSINESS_ERROR with a link to the original), batch reads with
//! items settled per receiver as a test chose, and cancelling unclaimed items.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::{Form, Json};
use serde_json::{Value, json};

use crate::http::{Reply, basic, bearer, debug_id, gate, new_id, with_fault};
use crate::state;
use crate::{Endpoint, Provider, Shared};

const MAX_ITEMS: usize = 15_000;

/// How PayPal settles the items sent to a receiver.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ItemOutcome {
    Success,
    Pending,
    OnHold,
    Unclaimed,
    Returned,
    Blocked,
    Refunded,
    Reversed,
    /// FAILED, with the error name PayPal gives (e.g. `RECEIVER_ACCOUNT_LOCKED`).
    Failed {
        error: String,
    },
}

impl ItemOutcome {
    fn status(&self) -> &'static str {
        match self {
            ItemOutcome::Success => "SUCCESS",
            ItemOutcome::Pending => "PENDING",
            ItemOutcome::OnHold => "ONHOLD",
            ItemOutcome::Unclaimed => "UNCLAIMED",
            ItemOutcome::Returned => "RETURNED",
            ItemOutcome::Blocked => "BLOCKED",
            ItemOutcome::Refunded => "REFUNDED",
            ItemOutcome::Reversed => "REVERSED",
            ItemOutcome::Failed { .. } => "FAILED",
        }
    }

    /// The `errors` object PayPal attaches to such an item: (name, message).
    fn error(&self) -> Option<(String, String)> {
        let (name, message) = match self {
            ItemOutcome::Unclaimed | ItemOutcome::Returned => ("RECEIVER_UNREGISTERED", "Receiver is unregistered"),
            ItemOutcome::Blocked => ("RECEIVER_ACCOUNT_LOCKED", "Receiver's account is locked or inactive"),
            ItemOutcome::Failed { error } => return Some((error.clone(), format!("Payout failed: {error}"))),
            _ => return None,
        };
        Some((name.to_owned(), message.to_owned()))
    }
}

/// A payout item as the simulator holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PayPalItem {
    pub payout_item_id: String,
    pub payout_batch_id: String,
    pub sender_item_id: String,
    pub receiver: String,
    pub amount_minor: i64,
    pub currency: String,
    pub status: String,
    /// PayPal's error (name, message), when the item has one.
    pub error: Option<(String, String)>,
    pub note: Option<String>,
}

#[derive(Debug, Clone)]
pub(crate) struct Batch {
    pub(crate) id: String,
    pub(crate) sender_batch_id: String,
    header: Value,
    time_created: i64,
    pub(crate) items: Vec<PayPalItem>,
}

#[derive(Debug, Default)]
pub(crate) struct PayPalState {
    pub(crate) batches: Vec<Batch>,
    pub(crate) outcomes: HashMap<String, ItemOutcome>,
    pub(crate) tokens: HashMap<String, Instant>,
    pub(crate) tokens_issued: usize,
}

impl PayPalState {
    pub(crate) fn item_mut(&mut self, reference: &str) -> Option<&mut PayPalItem> {
        self.batches
            .iter_mut()
            .flat_map(|b| b.items.iter_mut())
            .find(|i| i.sender_item_id == reference || i.payout_item_id == reference)
    }

    pub(crate) fn plant(
        &mut self,
        batch_id: &str,
        receiver: &str,
        amount_minor: i64,
        sender_item_id: &str,
    ) -> Option<String> {
        let batch = self.batches.iter_mut().find(|b| b.id == batch_id)?;
        let item = new_item(
            batch_id,
            sender_item_id,
            receiver,
            amount_minor,
            "USD",
            None,
            &ItemOutcome::Success,
        );
        let id = item.payout_item_id.clone();
        batch.items.push(item);
        Some(id)
    }
}

fn new_item(
    batch: &str,
    sender_item_id: &str,
    receiver: &str,
    amount_minor: i64,
    currency: &str,
    note: Option<String>,
    outcome: &ItemOutcome,
) -> PayPalItem {
    PayPalItem {
        payout_item_id: new_id("", 13),
        payout_batch_id: batch.to_owned(),
        sender_item_id: sender_item_id.to_owned(),
        receiver: receiver.to_owned(),
        amount_minor,
        currency: currency.to_owned(),
        status: outcome.status().to_owned(),
        error: outcome.error(),
        note,
    }
}

pub(crate) async fn token(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Form(form): Form<Vec<(String, String)>>,
) -> Response {
    if let Err(reply) = gate(&shared, Endpoint::PayPalToken) {
        return reply.into_response();
    }
    let expected = format!("{}:{}", shared.config.paypal_client_id, shared.config.paypal_secret);
    if basic(&headers).as_deref() != Some(expected.as_str()) {
        return Reply::new(
            401,
            json!({"error": "invalid_client", "error_description": "Client Authentication failed"}),
        )
        .into_response();
    }
    if !form.iter().any(|(k, v)| k == "grant_type" && v == "client_credentials") {
        return Reply::new(
            400,
            json!({"error": "unsupported_grant_type", "error_description": "Grant Type is NULL"}),
        )
        .into_response();
    }
    let ttl = shared.config.paypal_token_ttl;
    with_fault(&shared, Endpoint::PayPalToken, || {
        let token = format!("A21AA{}", uuid::Uuid::new_v4().simple());
        let mut state = shared.state();
        state.paypal.tokens.insert(token.clone(), Instant::now() + ttl);
        state.paypal.tokens_issued += 1;
        Reply::new(200, json!({"scope": "https://uri.paypal.com/services/payments/payouts", "access_token": token,
            "token_type": "Bearer", "app_id": "APP-80W284485P519543T", "expires_in": ttl.as_secs(), "nonce": debug_id()}))
    })
    .await
    .into_response()
}

pub(crate) async fn create(State(shared): State<Arc<Shared>>, headers: HeaderMap, Json(body): Json<Value>) -> Response {
    if let Err(reply) = admit(&shared, Endpoint::PayPalCreateBatch, &headers) {
        return reply.into_response();
    }
    let base = shared.base_url.clone();
    with_fault(&shared, Endpoint::PayPalCreateBatch, || {
        create_batch(&mut shared.state(), &base, &body)
    })
    .await
    .into_response()
}

pub(crate) async fn get(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    Query(query): Query<Vec<(String, String)>>,
) -> Response {
    if let Err(reply) = admit(&shared, Endpoint::PayPalGetBatch, &headers) {
        return reply.into_response();
    }
    let number = |name: &str, default: usize| {
        query
            .iter()
            .find(|(k, _)| k == name)
            .and_then(|(_, v)| v.parse().ok())
            .unwrap_or(default)
    };
    let page = number("page", 1).max(1);
    let page_size = number("page_size", 1000).clamp(1, 1000);
    let base = shared.base_url.clone();
    with_fault(&shared, Endpoint::PayPalGetBatch, || {
        let state = shared.state();
        match state.paypal.batches.iter().find(|b| b.id == id) {
            Some(batch) => Reply::new(200, batch_json(batch, &base, page, page_size)),
            None => error(404, "RESOURCE_NOT_FOUND", "The specified resource does not exist."),
        }
    })
    .await
    .into_response()
}

pub(crate) async fn cancel(State(shared): State<Arc<Shared>>, Path(id): Path<String>, headers: HeaderMap) -> Response {
    if let Err(reply) = admit(&shared, Endpoint::PayPalCancelItem, &headers) {
        return reply.into_response();
    }
    let base = shared.base_url.clone();
    with_fault(&shared, Endpoint::PayPalCancelItem, || {
        let mut state = shared.state();
        match state
            .paypal
            .batches
            .iter_mut()
            .flat_map(|b| b.items.iter_mut())
            .find(|i| i.payout_item_id == id)
        {
            Some(item) if item.status == "UNCLAIMED" => {
                item.status = "RETURNED".into();
                Reply::new(200, item_json(item, &base))
            }
            Some(_) => error(422, "UNPROCESSABLE_ENTITY", "Only an unclaimed item can be cancelled."),
            None => error(404, "RESOURCE_NOT_FOUND", "The specified resource does not exist."),
        }
    })
    .await
    .into_response()
}

fn create_batch(state: &mut state::State, base: &str, body: &Value) -> Reply {
    let header = &body["sender_batch_header"];
    let Some(sender_batch_id) = header["sender_batch_id"]
        .as_str()
        .filter(|s| !s.is_empty() && s.len() <= 256)
    else {
        return validation(
            "sender_batch_header.sender_batch_id",
            "Sender batch id is required and at most 256 characters",
        );
    };
    if let Some(existing) = state
        .paypal
        .batches
        .iter()
        .find(|b| b.sender_batch_id == sender_batch_id)
    {
        let mut reply = error(400, "USER_BUSINESS_ERROR", "User business error.");
        reply.body["details"] = json!([{"field": "SENDER_BATCH_ID", "issue": "Batch with given sender_batch_id already exists",
            "link": [{"href": format!("{base}/v1/payments/payouts/{}", existing.id), "rel": "self", "method": "GET"}]}]);
        return reply;
    }
    let items = match parse_items(body) {
        Ok(items) => items,
        Err(reply) => return reply,
    };
    let total: i64 = items.iter().map(|i| i.2).sum();
    if !state.debit(Provider::PayPal, total) {
        return error(
            422,
            "INSUFFICIENT_FUNDS",
            "Sender does not have sufficient funds. Please add funds and retry.",
        );
    }
    let id = new_id("", 13);
    let items = items
        .into_iter()
        .map(|(sender_item_id, receiver, amount, currency, note)| {
            let outcome = state
                .paypal
                .outcomes
                .get(&receiver)
                .cloned()
                .unwrap_or(ItemOutcome::Success);
            new_item(&id, &sender_item_id, &receiver, amount, &currency, note, &outcome)
        })
        .collect();
    let batch = Batch {
        id: id.clone(),
        sender_batch_id: sender_batch_id.to_owned(),
        header: header.clone(),
        time_created: crate::http::now_secs(),
        items,
    };
    state.paypal.batches.push(batch);
    Reply::new(
        201,
        json!({
            "batch_header": {"payout_batch_id": id, "batch_status": "PENDING", "sender_batch_header": header},
            "links": [{"href": format!("{base}/v1/payments/payouts/{id}"), "rel": "self", "method": "GET"}],
        }),
    )
}

type NewItem = (String, String, i64, String, Option<String>);

fn parse_items(body: &Value) -> Result<Vec<NewItem>, Reply> {
    let items = body["items"].as_array().map(Vec::as_slice).unwrap_or_default();
    if items.is_empty() || items.len() > MAX_ITEMS {
        return Err(validation("items", "Between 1 and 15000 items are required"));
    }
    items
        .iter()
        .enumerate()
        .map(|(n, item)| {
            let field = |name: &str| format!("items[{n}].{name}");
            let sender_item_id = item["sender_item_id"]
                .as_str()
                .filter(|s| s.len() <= 63)
                .ok_or_else(|| validation(&field("sender_item_id"), "Invalid sender_item_id"))?;
            let receiver = item["receiver"]
                .as_str()
                .filter(|s| !s.is_empty() && s.len() <= 127)
                .ok_or_else(|| validation(&field("receiver"), "Invalid receiver"))?;
            let currency = item["amount"]["currency"]
                .as_str()
                .ok_or_else(|| validation(&field("amount.currency"), "Currency is required"))?;
            let amount = item["amount"]["value"]
                .as_str()
                .and_then(|v| decimal_to_minor(v, exponent(currency)))
                .filter(|a| *a > 0)
                .ok_or_else(|| validation(&field("amount.value"), "Invalid amount value"))?;
            let note = item["note"].as_str().map(str::to_owned);
            Ok((
                sender_item_id.to_owned(),
                receiver.to_owned(),
                amount,
                currency.to_owned(),
                note,
            ))
        })
        .collect()
}

fn batch_json(batch: &Batch, base: &str, page: usize, page_size: usize) -> Value {
    let settling = batch
        .items
        .iter()
        .any(|i| matches!(i.status.as_str(), "PENDING" | "ONHOLD"));
    let total: i64 = batch.items.iter().map(|i| i.amount_minor).sum();
    let currency = batch
        .items
        .first()
        .map(|i| i.currency.clone())
        .unwrap_or_else(|| "USD".into());
    let items: Vec<Value> = batch
        .items
        .iter()
        .skip((page - 1) * page_size)
        .take(page_size)
        .map(|i| item_json(i, base))
        .collect();
    let mut links = vec![
        json!({"href": format!("{base}/v1/payments/payouts/{}?page={page}&page_size={page_size}", batch.id), "rel": "self", "method": "GET"}),
    ];
    if page * page_size < batch.items.len() {
        links.push(json!({"href": format!("{base}/v1/payments/payouts/{}?page={}&page_size={page_size}", batch.id, page + 1), "rel": "next", "method": "GET"}));
    }
    json!({
        "batch_header": {"payout_batch_id": batch.id, "batch_status": if settling { "PROCESSING" } else { "SUCCESS" },
            "time_created": batch.time_created.to_string(), "sender_batch_header": batch.header,
            "amount": {"currency": currency, "value": minor_to_decimal(total, exponent(&currency))}},
        "items": items,
        "links": links,
    })
}

fn item_json(item: &PayPalItem, base: &str) -> Value {
    let mut value = json!({
        "payout_item_id": item.payout_item_id, "payout_batch_id": item.payout_batch_id,
        "transaction_status": item.status,
        "payout_item": {"recipient_type": "EMAIL", "receiver": item.receiver, "sender_item_id": item.sender_item_id, "note": item.note,
            "amount": {"currency": item.currency, "value": minor_to_decimal(item.amount_minor, exponent(&item.currency))}},
        "links": [{"href": format!("{base}/v1/payments/payouts-item/{}", item.payout_item_id), "rel": "item", "method": "GET"}],
    });
    if item.status == "SUCCESS" {
        value["transaction_id"] = json!(format!("{}T", item.payout_item_id));
    }
    if let Some((name, message)) = &item.error {
        value["errors"] = json!({"name": name, "message": message, "details": []});
    }
    value
}

fn admit(shared: &Shared, endpoint: Endpoint, headers: &HeaderMap) -> Result<(), Reply> {
    gate(shared, endpoint)?;
    let state = shared.state();
    let valid = bearer(headers)
        .and_then(|t| state.paypal.tokens.get(t))
        .is_some_and(|expiry| *expiry > Instant::now());
    if valid {
        return Ok(());
    }
    Err(error(
        401,
        "AUTHENTICATION_FAILURE",
        "Authentication failed due to invalid authentication credentials or a missing Authorization header.",
    ))
}

fn validation(field: &str, issue: &str) -> Reply {
    let mut reply = error(400, "VALIDATION_ERROR", "Invalid request - see details.");
    reply.body["details"] = json!([{"field": field, "location": "body", "issue": issue}]);
    reply
}

fn error(status: u16, name: &str, message: &str) -> Reply {
    Reply::new(
        status,
        json!({"name": name, "message": message, "debug_id": debug_id(),
        "information_link": "https://developer.paypal.com/docs/api/payments.payouts-batch/"}),
    )
}

/// Digits after the point PayPal uses for a currency.
fn exponent(currency: &str) -> u32 {
    match currency {
        "JPY" | "HUF" | "TWD" => 0,
        _ => 2,
    }
}

fn decimal_to_minor(value: &str, exponent: u32) -> Option<i64> {
    let (whole, fraction) = value.split_once('.').unwrap_or((value, ""));
    if whole.is_empty()
        || fraction.len() > exponent as usize
        || !whole.chars().chain(fraction.chars()).all(|c| c.is_ascii_digit())
    {
        return None;
    }
    let padded = format!("{fraction:0<width$}", width = exponent as usize);
    let whole: i64 = whole.parse().ok()?;
    let fraction: i64 = if padded.is_empty() { 0 } else { padded.parse().ok()? };
    whole.checked_mul(10_i64.pow(exponent))?.checked_add(fraction)
}

fn minor_to_decimal(minor: i64, exponent: u32) -> String {
    if exponent == 0 {
        return minor.to_string();
    }
    let unit = 10_i64.pow(exponent);
    format!("{}.{:0width$}", minor / unit, minor % unit, width = exponent as usize)
}
