//! Stripe Connect transfers: form-encoded requests, JSON answers, Stripe's error body, and its
//! idempotency keys (first answer replayed, other parameters refused, a key in flight is a 409,
//! keys forgotten on demand as after 24 h).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use axum::Form;
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::http::{Reply, basic, bearer, gate, new_id, now_secs, with_fault};
use crate::state;
use crate::{Endpoint, Provider, Shared};

type Params = Vec<(String, String)>;

/// A transfer as the simulator holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transfer {
    pub id: String,
    pub amount: i64,
    /// Lower case, as Stripe writes it.
    pub currency: String,
    pub destination: String,
    pub transfer_group: Option<String>,
    pub description: Option<String>,
    pub metadata: BTreeMap<String, String>,
    pub created: i64,
    pub amount_reversed: i64,
    pub reversed: bool,
    pub reversals: Vec<Reversal>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reversal {
    pub id: String,
    pub amount: i64,
    pub created: i64,
}

#[derive(Debug, Default)]
pub(crate) struct StripeState {
    pub(crate) transfers: Vec<Transfer>,
    pub(crate) keys: HashMap<String, Saved>,
    in_flight: HashSet<String>,
    /// Seconds added to the system clock for `created` (`Simulator::set_clock`), so tests
    /// whose services run on a manual clock see records made in their own time.
    pub(crate) clock_offset: i64,
}

/// What an idempotency key remembers: the request's parameters and the first answer.
#[derive(Debug, Clone)]
pub(crate) struct Saved {
    params: Params,
    reply: Reply,
}

impl StripeState {
    /// Now, in unix seconds, on the simulator's Stripe clock.
    pub(crate) fn now(&self) -> i64 {
        now_secs().saturating_add(self.clock_offset)
    }

    pub(crate) fn insert(
        &mut self,
        amount: i64,
        currency: &str,
        destination: &str,
        group: Option<String>,
        description: Option<String>,
    ) -> String {
        let id = new_id("tr_", 24);
        self.transfers.push(Transfer {
            id: id.clone(),
            amount,
            currency: currency.to_ascii_lowercase(),
            destination: destination.to_owned(),
            transfer_group: group,
            description,
            metadata: BTreeMap::new(),
            created: self.now(),
            amount_reversed: 0,
            reversed: false,
            reversals: Vec::new(),
        });
        id
    }
}

pub(crate) async fn create(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Form(params): Form<Params>,
) -> Response {
    idempotent(shared, Endpoint::StripeCreateTransfer, headers, params, create_transfer).await
}

pub(crate) async fn reverse(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    Form(mut params): Form<Params>,
) -> Response {
    // The transfer's id is part of what a key is bound to.
    params.push(("transfer".into(), id));
    idempotent(shared, Endpoint::StripeCreateReversal, headers, params, create_reversal).await
}

pub(crate) async fn get(State(shared): State<Arc<Shared>>, Path(id): Path<String>, headers: HeaderMap) -> Response {
    if let Err(reply) = admit(&shared, Endpoint::StripeGetTransfer, &headers) {
        return reply.into_response();
    }
    with_fault(&shared, Endpoint::StripeGetTransfer, || {
        let state = shared.state();
        match state.stripe.transfers.iter().find(|t| t.id == id) {
            Some(transfer) => Reply::new(200, transfer_json(transfer)),
            None => missing(&id),
        }
    })
    .await
    .into_response()
}

/// `GET /v1/transfers`: newest first, filtered by `transfer_group`, `destination`,
/// `created[gte]` and `created[lte]` (unix seconds, inclusive), paged by `limit` (at most 100)
/// and `starting_after`.
pub(crate) async fn list(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Query(query): Query<Params>,
) -> Response {
    if let Err(reply) = admit(&shared, Endpoint::StripeListTransfers, &headers) {
        return reply.into_response();
    }
    let param = |name: &str| query.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
    let group = param("transfer_group");
    let destination = param("destination");
    let since: i64 = param("created[gte]").and_then(|v| v.parse().ok()).unwrap_or(i64::MIN);
    let until: i64 = param("created[lte]").and_then(|v| v.parse().ok()).unwrap_or(i64::MAX);
    let limit: usize = param("limit").and_then(|v| v.parse().ok()).unwrap_or(10).clamp(1, 100);
    let after = param("starting_after");
    with_fault(&shared, Endpoint::StripeListTransfers, || {
        let state = shared.state();
        let matching = state.stripe.transfers.iter().rev().filter(|t| {
            group.as_ref().is_none_or(|g| t.transfer_group.as_ref() == Some(g))
                && destination.as_ref().is_none_or(|d| &t.destination == d)
                && t.created >= since
                && t.created <= until
        });
        let mut page: Vec<&Transfer> = match &after {
            Some(cursor) => matching
                .skip_while(|t| &t.id != cursor)
                .skip(1)
                .take(limit + 1)
                .collect(),
            None => matching.take(limit + 1).collect(),
        };
        let has_more = page.len() > limit;
        page.truncate(limit);
        let data: Vec<Value> = page.into_iter().map(transfer_json).collect();
        Reply::new(
            200,
            json!({"object": "list", "url": "/v1/transfers", "has_more": has_more, "data": data}),
        )
    })
    .await
    .into_response()
}

/// The POST path: rate limit, key check, then the work under the fault plan; the answer of a
/// request that began executing is saved under its key, a validation failure is not. The work
/// runs in its own task, as a server's would: a client that hangs up does not stop it, and the
/// key stays in flight until the (maybe slow) answer is done.
async fn idempotent(
    shared: Arc<Shared>,
    endpoint: Endpoint,
    headers: HeaderMap,
    mut params: Params,
    execute: fn(&mut state::State, &Params) -> Result<Reply, Reply>,
) -> Response {
    if let Err(reply) = admit(&shared, endpoint, &headers) {
        return reply.into_response();
    }
    params.sort();
    let key = headers
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    if let Some(key) = &key
        && let Some(reply) = claim(&shared, key, &params)
    {
        return reply.into_response();
    }
    let work = tokio::spawn(async move {
        let answer = with_fault(&shared, endpoint, || {
            let mut state = shared.state();
            match execute(&mut state, &params) {
                Ok(reply) => {
                    if let Some(key) = &key {
                        state.stripe.keys.insert(
                            key.clone(),
                            Saved {
                                params: params.clone(),
                                reply: reply.clone(),
                            },
                        );
                    }
                    reply
                }
                Err(refused) => refused,
            }
        })
        .await;
        if let Some(key) = &key {
            shared.state().stripe.in_flight.remove(key);
        }
        answer
    });
    match work.await {
        Ok(answer) => answer.into_response(),
        Err(_) => error(500, "api_error", None, "An unknown error occurred").into_response(),
    }
}

/// `Some` answer when the key decides it: a replay, a mismatch, or a key still in flight.
fn claim(shared: &Shared, key: &str, params: &Params) -> Option<Reply> {
    let mut state = shared.state();
    if state.stripe.in_flight.contains(key) {
        return Some(error(
            409,
            "invalid_request_error",
            Some("idempotency_key_in_use"),
            "There is currently another in-progress request using this Stripe API key and idempotency key.",
        ));
    }
    if let Some(saved) = state.stripe.keys.get(key) {
        if &saved.params == params {
            return Some(saved.reply.clone().with_header("idempotent-replayed", "true"));
        }
        return Some(error(
            400,
            "idempotency_error",
            None,
            &format!(
                "Keys for idempotent requests can only be used with the same parameters they were first used with. Try using a key other than '{key}' if you meant to execute a different request."
            ),
        ));
    }
    state.stripe.in_flight.insert(key.to_owned());
    None
}

fn create_transfer(state: &mut state::State, params: &Params) -> Result<Reply, Reply> {
    let amount = required(params, "amount")?
        .parse::<i64>()
        .ok()
        .filter(|a| *a > 0)
        .ok_or_else(|| invalid("amount", "Invalid integer"))?;
    let currency = required(params, "currency")?;
    if currency.len() != 3 || !currency.chars().all(|c| c.is_ascii_lowercase()) {
        return Err(invalid("currency", "Invalid currency"));
    }
    let destination = required(params, "destination")?;
    if !destination.starts_with("acct_") {
        return Err(invalid("destination", "No such destination"));
    }
    if !state.debit(Provider::Stripe, amount) {
        return Ok(error(
            400,
            "invalid_request_error",
            Some("balance_insufficient"),
            "You have insufficient funds in your Stripe account for this transfer.",
        ));
    }
    let group = param(params, "transfer_group");
    let id = state
        .stripe
        .insert(amount, &currency, &destination, group, param(params, "description"));
    let metadata: BTreeMap<String, String> = params
        .iter()
        .filter_map(|(k, v)| Some((k.strip_prefix("metadata[")?.strip_suffix(']')?.to_owned(), v.clone())))
        .collect();
    let transfer = state
        .stripe
        .transfers
        .iter_mut()
        .find(|t| t.id == id)
        .ok_or_else(|| missing(&id))?;
    transfer.metadata = metadata;
    Ok(Reply::new(200, transfer_json(transfer)))
}

fn create_reversal(state: &mut state::State, params: &Params) -> Result<Reply, Reply> {
    let id = required(params, "transfer")?;
    let now = state.stripe.now();
    let transfer = state
        .stripe
        .transfers
        .iter_mut()
        .find(|t| t.id == id)
        .ok_or_else(|| missing(&id))?;
    let remaining = transfer.amount - transfer.amount_reversed;
    let amount = match param(params, "amount") {
        Some(raw) => raw
            .parse::<i64>()
            .ok()
            .filter(|a| *a > 0)
            .ok_or_else(|| invalid("amount", "Invalid integer"))?,
        None => remaining,
    };
    if amount > remaining || remaining == 0 {
        return Err(invalid(
            "amount",
            "Refund amount is greater than the amount that can be reversed",
        ));
    }
    let reversal = Reversal {
        id: new_id("trr_", 24),
        amount,
        created: now,
    };
    transfer.amount_reversed += amount;
    transfer.reversed = transfer.amount_reversed == transfer.amount;
    transfer.reversals.push(reversal.clone());
    let currency = transfer.currency.clone();
    if let Some(balance) = state.balances.get_mut(&Provider::Stripe) {
        *balance += amount;
    }
    Ok(Reply::new(
        200,
        json!({"id": reversal.id, "object": "transfer_reversal", "amount": amount,
        "currency": currency, "transfer": id, "created": reversal.created}),
    ))
}

fn admit(shared: &Shared, endpoint: Endpoint, headers: &HeaderMap) -> Result<(), Reply> {
    gate(shared, endpoint)?;
    let key = &shared.config.stripe_key;
    let by_bearer = bearer(headers) == Some(key.as_str());
    let by_basic = basic(headers).is_some_and(|user| user.strip_suffix(':') == Some(key.as_str()));
    if by_bearer || by_basic {
        return Ok(());
    }
    Err(error(401, "invalid_request_error", None, "Invalid API Key provided"))
}

pub(crate) fn transfer_json(t: &Transfer) -> Value {
    let reversals: Vec<Value> = t
        .reversals
        .iter()
        .map(|r| json!({"id": r.id, "object": "transfer_reversal", "amount": r.amount, "currency": t.currency, "transfer": t.id, "created": r.created}))
        .collect();
    json!({
        "id": t.id, "object": "transfer", "amount": t.amount, "amount_reversed": t.amount_reversed,
        "balance_transaction": format!("txn_{}", &t.id[3..]), "created": t.created, "currency": t.currency,
        "description": t.description, "destination": t.destination, "destination_payment": format!("py_{}", &t.id[3..]),
        "metadata": t.metadata,
        "reversals": {"object": "list", "data": reversals, "has_more": false, "url": format!("/v1/transfers/{}/reversals", t.id)},
        "reversed": t.reversed, "source_transaction": null, "transfer_group": t.transfer_group,
    })
}

fn param(params: &Params, name: &str) -> Option<String> {
    params.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone())
}

fn required(params: &Params, name: &str) -> Result<String, Reply> {
    param(params, name).ok_or_else(|| {
        let mut reply = error(
            400,
            "invalid_request_error",
            Some("parameter_missing"),
            &format!("Missing required param: {name}."),
        );
        reply.body["error"]["param"] = json!(name);
        reply
    })
}

fn invalid(name: &str, message: &str) -> Reply {
    let mut reply = error(400, "invalid_request_error", Some("parameter_invalid"), message);
    reply.body["error"]["param"] = json!(name);
    reply
}

fn missing(id: &str) -> Reply {
    let mut reply = error(
        404,
        "invalid_request_error",
        Some("resource_missing"),
        &format!("No such transfer: '{id}'"),
    );
    reply.body["error"]["param"] = json!("id");
    reply
}

fn error(status: u16, kind: &str, code: Option<&str>, message: &str) -> Reply {
    let mut body = json!({"error": {"type": kind, "message": message}});
    if let Some(code) = code {
        body["error"]["code"] = json!(code);
    }
    Reply::new(status, body).with_header("request-id", new_id("req_", 14))
}
