//! Tremendous gift-card orders: JSON with `external_id` semantics (the same payload again is a
//! 201 with the existing order, a different one a 409), reads by id or external id, and a list.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::http::{Reply, bearer, gate, new_id, now_secs, with_fault};
use crate::state;
use crate::{Endpoint, Provider, Shared};

/// An order as the simulator holds it (one reward each, as Chorus sends them).
#[derive(Debug, Clone, PartialEq)]
pub struct Order {
    pub id: String,
    pub external_id: Option<String>,
    pub recipient_name: String,
    pub recipient_email: String,
    pub amount_minor: i64,
    pub currency: String,
    pub products: Vec<String>,
    /// `EXECUTED` when made; tests set others (`PENDING APPROVAL`, `FAILED`, unknown ones).
    pub status: String,
    pub created_at: i64,
    /// The request as received, to tell a repeat from a conflicting reuse of `external_id`.
    request: Value,
}

#[derive(Debug, Default)]
pub(crate) struct TremendousState {
    pub(crate) orders: Vec<Order>,
}

impl TremendousState {
    pub(crate) fn order_mut(&mut self, reference: &str) -> Option<&mut Order> {
        self.orders
            .iter_mut()
            .find(|o| o.id == reference || o.external_id.as_deref() == Some(reference))
    }

    pub(crate) fn plant(&mut self, email: &str, amount_minor: i64, external_id: Option<&str>) -> String {
        let order = Order {
            id: new_id("", 12),
            external_id: external_id.map(str::to_owned),
            recipient_name: "planted".into(),
            recipient_email: email.to_owned(),
            amount_minor,
            currency: "USD".into(),
            products: vec!["OKMHM2X2OHYV".into()],
            status: "EXECUTED".into(),
            created_at: now_secs(),
            request: Value::Null,
        };
        let id = order.id.clone();
        self.orders.push(order);
        id
    }
}

pub(crate) async fn create(State(shared): State<Arc<Shared>>, headers: HeaderMap, Json(body): Json<Value>) -> Response {
    if let Err(reply) = admit(&shared, Endpoint::TremendousCreateOrder, &headers) {
        return reply.into_response();
    }
    with_fault(&shared, Endpoint::TremendousCreateOrder, || {
        create_order(&mut shared.state(), body)
    })
    .await
    .into_response()
}

pub(crate) async fn get(State(shared): State<Arc<Shared>>, Path(id): Path<String>, headers: HeaderMap) -> Response {
    if let Err(reply) = admit(&shared, Endpoint::TremendousGetOrder, &headers) {
        return reply.into_response();
    }
    with_fault(&shared, Endpoint::TremendousGetOrder, || {
        match shared.state().tremendous.order_mut(&id) {
            Some(order) => Reply::new(200, json!({"order": order_json(order)})),
            None => error(404, "Order not found", Value::Null),
        }
    })
    .await
    .into_response()
}

/// `GET /orders?offset=&limit=` (at most 500 a page), oldest first.
pub(crate) async fn list(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Query(query): Query<Vec<(String, String)>>,
) -> Response {
    if let Err(reply) = admit(&shared, Endpoint::TremendousListOrders, &headers) {
        return reply.into_response();
    }
    let number = |name: &str, default: usize| {
        query
            .iter()
            .find(|(k, _)| k == name)
            .and_then(|(_, v)| v.parse().ok())
            .unwrap_or(default)
    };
    let (offset, limit) = (number("offset", 0), number("limit", 100).clamp(1, 500));
    with_fault(&shared, Endpoint::TremendousListOrders, || {
        let state = shared.state();
        let orders: Vec<Value> = state
            .tremendous
            .orders
            .iter()
            .skip(offset)
            .take(limit)
            .map(order_json)
            .collect();
        Reply::new(
            200,
            json!({"orders": orders, "total_count": state.tremendous.orders.len()}),
        )
    })
    .await
    .into_response()
}

fn create_order(state: &mut state::State, body: Value) -> Reply {
    let external_id = body["external_id"].as_str().map(str::to_owned);
    if let Some(existing) = external_id.as_deref().and_then(|id| state.tremendous.order_mut(id)) {
        if existing.request == body {
            return Reply::new(201, json!({"order": order_json(existing)}));
        }
        return error(
            409,
            "An order with this external_id already exists with different parameters",
            json!({"external_id": external_id}),
        );
    }
    let reward = &body["reward"];
    let Some(denomination) = reward["value"]["denomination"].as_f64().filter(|d| *d > 0.0) else {
        return error(
            422,
            "Invalid denomination",
            json!({"reward": {"value": {"denomination": reward["value"]["denomination"]}}}),
        );
    };
    let products: Vec<String> = reward["products"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|p| p.as_str().map(str::to_owned))
        .collect();
    if products.is_empty() && reward["campaign_id"].as_str().is_none() {
        return error(
            400,
            "products or campaign_id is required",
            json!({"reward": {"products": null}}),
        );
    }
    let Some(email) = reward["recipient"]["email"].as_str() else {
        return error(
            422,
            "Recipient email is required",
            json!({"reward": {"recipient": {"email": null}}}),
        );
    };
    let amount_minor = (denomination * 100.0).round() as i64;
    if !state.debit(Provider::Tremendous, amount_minor) {
        return error(402, "Insufficient funds in the funding source", Value::Null);
    }
    let order = Order {
        id: new_id("", 12),
        external_id,
        recipient_name: reward["recipient"]["name"].as_str().unwrap_or_default().to_owned(),
        recipient_email: email.to_owned(),
        amount_minor,
        currency: reward["value"]["currency_code"].as_str().unwrap_or("USD").to_owned(),
        products,
        status: "EXECUTED".into(),
        created_at: now_secs(),
        request: body,
    };
    let reply = Reply::new(200, json!({"order": order_json(&order)}));
    state.tremendous.orders.push(order);
    reply
}

fn order_json(order: &Order) -> Value {
    let reward_id = format!("R{}", &order.id);
    json!({
        "id": order.id, "external_id": order.external_id, "created_at": order.created_at.to_string(), "status": order.status,
        "payment": {"subtotal": order.amount_minor as f64 / 100.0, "total": order.amount_minor as f64 / 100.0},
        "rewards": [{
            "id": reward_id, "order_id": order.id,
            "value": {"denomination": order.amount_minor as f64 / 100.0, "currency_code": order.currency},
            "recipient": {"name": order.recipient_name, "email": order.recipient_email},
            "products": order.products,
            "delivery": {"method": "LINK", "status": if order.status == "EXECUTED" { "SUCCEEDED" } else { "PENDING" },
                "link": format!("https://testflight.tremendous.com/rewards/payout/{reward_id}")},
        }],
    })
}

fn admit(shared: &Shared, endpoint: Endpoint, headers: &HeaderMap) -> Result<(), Reply> {
    gate(shared, endpoint)?;
    if bearer(headers) == Some(shared.config.tremendous_key.as_str()) {
        return Ok(());
    }
    Err(error(401, "Invalid API key", Value::Null))
}

fn error(status: u16, message: &str, payload: Value) -> Reply {
    Reply::new(
        status,
        json!({"status": status, "errors": {"message": message, "payload": payload}}),
    )
}
