//! The tenant-isolation matrix. On one `chorus up` (every service, real gRPC on loopback),
//! tenant A ("demo", the dev token) makes one of everything: an influencer in the shared
//! catalogue, a campaign and its shortlist, an offer, a contract and its deliverable, ledger
//! accounts and a payout, a tracked link, a promo code and a conversion. Then tenant B (every
//! scope) and a second influencer call every RPC of every service, directly over gRPC and
//! through the gateway's HTTP/JSON, naming A's resources: each answer is NOT_FOUND or
//! PERMISSION_DENIED, or (for what acts on the caller's own data, such as lists) an answer
//! without any of A's ids or names. The RPCs come from the descriptor set, so a new RPC that is
//! neither in the matrix nor listed as not tenant-scoped (with the reason) fails the test.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::BTreeMap;
use std::path::Path;

use chorus_e2e::free_port;
use common::*;
use prost::bytes::Bytes;
use prost_reflect::{DescriptorPool, DynamicMessage, MethodDescriptor};
use serde_json::{Value, json};
use tonic::Code;

/// Services whose RPCs are not tenant-scoped, and why.
const NOT_TENANT_SCOPED: &[(&str, &str)] = &[
    (
        "chorus.registry.v1.RegistryService",
        "the shared catalogue: every brand reads it, curators and the person write it \
         (services/registry/tests/ownership.rs)",
    ),
    (
        "chorus.registry.v1.VettingService",
        "evidence about public accounts of the shared catalogue",
    ),
    (
        "chorus.admin.v1.EventAdminService",
        "operators' dead letters (events.admin), not a brand's",
    ),
    (
        "chorus.admin.v1.ClockService",
        "the business clock of a simulated chorus up (admin.clock), nobody's data",
    ),
];

/// Single RPCs that are not tenant-scoped, and why.
const NOT_TENANT_SCOPED_RPCS: &[(&str, &str)] = &[
    (
        "chorus.identity.v1.IdentityService/IssueToken",
        "a token for credentials the caller holds",
    ),
    ("chorus.identity.v1.IdentityService/GetJwks", "the issuer's public keys"),
    (
        "chorus.identity.v1.IdentityService/CreateInvitation",
        "a sign-in code for the named person, made for the caller; it reads nothing of others",
    ),
    (
        "chorus.contracts.v1.ContractsService/GetSealingKeys",
        "public keys, for anyone to verify a sealed record",
    ),
    (
        "chorus.contracts.v1.DisclosureService/CheckDisclosure",
        "a stateless check of a caption",
    ),
    (
        "chorus.contracts.v1.DisclosureService/ListRuleSets",
        "the published disclosure rules",
    ),
];

/// What a caller outside tenant A may get.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Expect {
    /// The request names A's resource: NOT_FOUND or PERMISSION_DENIED.
    Hidden,
    /// The request acts on the caller's own data (a list, a create): any answer, as long as
    /// nothing of A's is in it.
    Own,
}
use Expect::{Hidden, Own};

/// Tenant A's resources, by placeholder.
#[derive(Debug, Default)]
struct Made {
    names: BTreeMap<&'static str, String>,
    /// A's contract terms, as JSON, for `"{terms}"`.
    terms: Value,
}

impl Made {
    /// `template` with each `{key}` replaced by A's resource.
    fn fill(&self, template: &Value) -> Value {
        let mut text = template.to_string().replace("\"{terms}\"", &self.terms.to_string());
        for (key, value) in &self.names {
            text = text.replace(&format!("{{{key}}}"), value);
        }
        assert!(!text.contains("{{"), "an unknown placeholder in {text}");
        serde_json::from_str(&text).unwrap()
    }
}

/// Every tenant-scoped RPC, the request it is called with (A's names as `{placeholders}`), and
/// what an outsider may get.
fn matrix() -> Vec<(&'static str, Value, Expect)> {
    vec![
        // identity: a tenant's API keys and its audit log
        (
            "chorus.identity.v1.IdentityService/CreateApiKey",
            json!({"display_name": "b key", "scopes": ["registry.read"]}),
            Own,
        ),
        ("chorus.identity.v1.IdentityService/ListApiKeys", json!({}), Own),
        (
            "chorus.identity.v1.IdentityService/RotateApiKey",
            json!({"name": "{api_key}"}),
            Hidden,
        ),
        (
            "chorus.identity.v1.IdentityService/RevokeApiKey",
            json!({"name": "{api_key}"}),
            Hidden,
        ),
        ("chorus.identity.v1.IdentityService/ListAuditEvents", json!({}), Own),
        // matching
        (
            "chorus.matching.v1.MatchingService/GetCampaign",
            json!({"name": "{campaign}"}),
            Hidden,
        ),
        (
            "chorus.matching.v1.MatchingService/UpdateCampaign",
            json!({"campaign": {"name": "{campaign}", "display_name": "taken over"}, "update_mask": "displayName"}),
            Hidden,
        ),
        ("chorus.matching.v1.MatchingService/ListCampaigns", json!({}), Own),
        (
            "chorus.matching.v1.MatchingService/CancelCampaign",
            json!({"name": "{campaign}"}),
            Hidden,
        ),
        (
            "chorus.matching.v1.MatchingService/MatchInfluencers",
            json!({"campaign": "{campaign}"}),
            Hidden,
        ),
        (
            "chorus.matching.v1.MatchingService/SelectInfluencers",
            json!({"campaign": "{campaign}"}),
            Hidden,
        ),
        (
            "chorus.matching.v1.MatchingService/CreateShortlist",
            json!({"parent": "{campaign}", "shortlist": {"display_name": "x", "members": [{"influencer": "{influencer}"}]}}),
            Hidden,
        ),
        (
            "chorus.matching.v1.MatchingService/GetShortlist",
            json!({"name": "{shortlist}"}),
            Hidden,
        ),
        (
            "chorus.matching.v1.MatchingService/ListShortlists",
            json!({"parent": "{campaign}"}),
            Hidden,
        ),
        (
            "chorus.matching.v1.MatchingService/DecideShortlistMembers",
            json!({"name": "{shortlist}", "decisions": [{"influencer": "{influencer}", "decision": "DECISION_REJECTED"}]}),
            Hidden,
        ),
        (
            "chorus.matching.v1.MatchingService/CreateCampaign",
            json!({"campaign": {"display_name": "B's own"}}),
            Own,
        ),
        // contracts
        (
            "chorus.contracts.v1.ContractsService/GetOfferTemplate",
            json!({"campaign": "{campaign}"}),
            Hidden,
        ),
        (
            "chorus.contracts.v1.ContractsService/SetOfferTemplate",
            json!({"template": {"campaign": "{campaign}"}}),
            Own,
        ),
        (
            "chorus.contracts.v1.ContractsService/CreateOffers",
            json!({"campaign": "{campaign}", "targets": [{"influencer": "{influencer}"}]}),
            Own,
        ),
        (
            "chorus.contracts.v1.ContractsService/GetOffer",
            json!({"name": "{offer}"}),
            Hidden,
        ),
        (
            "chorus.contracts.v1.ContractsService/ListOffers",
            json!({"campaign": "{campaign}"}),
            Own,
        ),
        (
            "chorus.contracts.v1.ContractsService/AcceptOffer",
            json!({"name": "{offer}", "version": "1"}),
            Hidden,
        ),
        (
            "chorus.contracts.v1.ContractsService/DeclineOffer",
            json!({"name": "{offer}"}),
            Hidden,
        ),
        (
            "chorus.contracts.v1.ContractsService/CounterOffer",
            json!({"name": "{offer}", "version": "1", "terms": "{terms}", "message": "more"}),
            Hidden,
        ),
        (
            "chorus.contracts.v1.ContractsService/WithdrawOffer",
            json!({"name": "{offer}"}),
            Hidden,
        ),
        (
            "chorus.contracts.v1.ContractsService/GetContract",
            json!({"name": "{contract}"}),
            Hidden,
        ),
        (
            "chorus.contracts.v1.ContractsService/ListContracts",
            json!({"campaign": "{campaign}"}),
            Own,
        ),
        (
            "chorus.contracts.v1.ContractsService/SignContract",
            json!({"name": "{contract}", "terms_version": "{terms_version}", "terms_sha256": "{sha}", "ip_address": "203.0.113.9"}),
            Hidden,
        ),
        (
            "chorus.contracts.v1.ContractsService/AmendContract",
            json!({"name": "{contract}", "terms": "{terms}"}),
            Hidden,
        ),
        (
            "chorus.contracts.v1.ContractsService/SendContract",
            json!({"name": "{contract}"}),
            Hidden,
        ),
        (
            "chorus.contracts.v1.ContractsService/CancelContract",
            json!({"name": "{contract}", "reason": "x"}),
            Hidden,
        ),
        (
            "chorus.contracts.v1.ContractsService/GetContractDocument",
            json!({"name": "{contract}"}),
            Hidden,
        ),
        (
            "chorus.contracts.v1.ContractsService/SubmitDeliverable",
            json!({"name": "{deliverable}", "submission": {"url": "https://instagram.com/p/b", "caption": "#ad b",
                "platform": "PLATFORM_INSTAGRAM", "kind": "DELIVERABLE_KIND_FEED_POST"}}),
            Hidden,
        ),
        (
            "chorus.contracts.v1.ContractsService/ReviewDeliverable",
            json!({"name": "{deliverable}", "decision": "REVIEW_DECISION_APPROVE"}),
            Hidden,
        ),
        (
            "chorus.contracts.v1.ContractsService/GetDeliverable",
            json!({"name": "{deliverable}"}),
            Hidden,
        ),
        (
            "chorus.contracts.v1.ContractsService/ListDeliverables",
            json!({"parent": "{contract}"}),
            Hidden,
        ),
        // payouts: ledger
        (
            "chorus.payouts.v1.LedgerService/FundCampaign",
            json!({"campaign": "{campaign}", "deposit_id": "b-1", "amount": {"currency_code": "USD", "amount_minor": "100"}}),
            Own,
        ),
        (
            "chorus.payouts.v1.LedgerService/GetCampaignBudget",
            json!({"campaign": "{campaign}"}),
            Own,
        ),
        ("chorus.payouts.v1.LedgerService/ListAccounts", json!({}), Own),
        (
            "chorus.payouts.v1.LedgerService/GetAccountBalance",
            json!({"account": "{account}"}),
            Hidden,
        ),
        (
            "chorus.payouts.v1.LedgerService/ListAccountTransfers",
            json!({"account": "{account}"}),
            Hidden,
        ),
        // payouts
        (
            "chorus.payouts.v1.PayoutsService/GetPayout",
            json!({"name": "{payout}"}),
            Hidden,
        ),
        (
            "chorus.payouts.v1.PayoutsService/ListPayouts",
            json!({"campaign": "{campaign}"}),
            Own,
        ),
        (
            "chorus.payouts.v1.PayoutsService/RunPayouts",
            json!({"campaign": "{campaign}"}),
            Own,
        ),
        (
            "chorus.payouts.v1.PayoutsService/ReversePayout",
            json!({"name": "{payout}", "reason": "x"}),
            Hidden,
        ),
        (
            "chorus.payouts.v1.PayoutsService/UpdateShipment",
            json!({"name": "{payout}", "carrier": "ups", "tracking_code": "1Z", "status": "in_transit"}),
            Hidden,
        ),
        (
            "chorus.payouts.v1.PayoutsService/GetStatement",
            json!({"influencer": "{influencer}"}),
            Own,
        ),
        (
            "chorus.payouts.v1.PayoutsService/Reconcile",
            json!({"campaign": "{campaign}"}),
            Own,
        ),
        (
            "chorus.payouts.v1.PayoutsService/GetTaxReport",
            json!({"year": 2026}),
            Own,
        ),
        (
            "chorus.payouts.v1.PayoutsService/GetPayee",
            json!({"name": "{payee}"}),
            Hidden,
        ),
        (
            "chorus.payouts.v1.PayoutsService/UpdatePayee",
            json!({"payee": {"name": "{payee}", "legal_name": "Taken Over"}}),
            Hidden,
        ),
        // measurement
        (
            "chorus.measurement.v1.MeasurementService/CreateLink",
            json!({"link": {"campaign": "{campaign}", "influencer": "{influencer}", "destination_url": "https://b.example.com/"}}),
            Hidden,
        ),
        (
            "chorus.measurement.v1.MeasurementService/GetLink",
            json!({"name": "{link}"}),
            Hidden,
        ),
        (
            "chorus.measurement.v1.MeasurementService/ListLinks",
            json!({"campaign": "{campaign}"}),
            Own,
        ),
        (
            "chorus.measurement.v1.MeasurementService/ListClicks",
            json!({"link": "{link}"}),
            Hidden,
        ),
        (
            "chorus.measurement.v1.MeasurementService/CreatePromoCodes",
            json!({"campaign": "{campaign}", "influencer": "{influencer}", "code": "BCODE10"}),
            Hidden,
        ),
        (
            "chorus.measurement.v1.MeasurementService/ListPromoCodes",
            json!({"campaign": "{campaign}"}),
            Own,
        ),
        (
            "chorus.measurement.v1.MeasurementService/RecordConversions",
            json!({"orders": [{"order_id": "b-order-1", "order_time": "2026-11-20T10:00:00Z",
                "revenue": {"currency_code": "USD", "amount_minor": "1000"}, "discount_codes": ["{code}"]}]}),
            Own,
        ),
        (
            "chorus.measurement.v1.MeasurementService/RecordRefund",
            json!({"order_id": "{order}", "refund_id": "b-refund-1", "amount": {"currency_code": "USD", "amount_minor": "100"}}),
            Hidden,
        ),
        (
            "chorus.measurement.v1.MeasurementService/GetConversion",
            json!({"name": "{conversion}"}),
            Hidden,
        ),
        (
            "chorus.measurement.v1.MeasurementService/ListConversions",
            json!({"campaign": "{campaign}"}),
            Own,
        ),
        (
            "chorus.measurement.v1.MeasurementService/RecordPostMetrics",
            json!({"deliverable": "{deliverable}", "snapshot": {"observe_time": "2026-11-20T10:00:00Z", "likes": "10"}}),
            Hidden,
        ),
        (
            "chorus.measurement.v1.MeasurementService/ListPostMetrics",
            json!({"deliverable": "{deliverable}"}),
            Hidden,
        ),
        (
            "chorus.measurement.v1.MeasurementService/GetMeasurementDuty",
            json!({"deliverable": "{deliverable}"}),
            Hidden,
        ),
        (
            "chorus.measurement.v1.MeasurementService/UpdateCampaignSettings",
            json!({"settings": {"name": "{campaign}/measurementSettings"}}),
            Hidden,
        ),
        (
            "chorus.measurement.v1.MeasurementService/GetCampaignSettings",
            json!({"name": "{campaign}/measurementSettings"}),
            Hidden,
        ),
        (
            "chorus.measurement.v1.MeasurementService/GetCampaignReport",
            json!({"campaign": "{campaign}"}),
            Own,
        ),
        // webhooks: a tenant's endpoints and their deliveries
        (
            "chorus.webhooks.v1.WebhooksService/CreateWebhookEndpoint",
            json!({"endpoint": {"url": "https://b.example.com/hooks", "description": "b hooks"}}),
            Own,
        ),
        (
            "chorus.webhooks.v1.WebhooksService/GetWebhookEndpoint",
            json!({"name": "{webhook_endpoint}"}),
            Hidden,
        ),
        (
            "chorus.webhooks.v1.WebhooksService/ListWebhookEndpoints",
            json!({}),
            Own,
        ),
        (
            "chorus.webhooks.v1.WebhooksService/UpdateWebhookEndpoint",
            json!({"endpoint": {"name": "{webhook_endpoint}", "description": "taken"}, "update_mask": "description"}),
            Hidden,
        ),
        (
            "chorus.webhooks.v1.WebhooksService/DeleteWebhookEndpoint",
            json!({"name": "{webhook_endpoint}"}),
            Hidden,
        ),
        (
            "chorus.webhooks.v1.WebhooksService/RotateWebhookSecret",
            json!({"name": "{webhook_endpoint}"}),
            Hidden,
        ),
        (
            "chorus.webhooks.v1.WebhooksService/ListWebhookDeliveries",
            json!({"parent": "{webhook_endpoint}"}),
            Hidden,
        ),
        (
            "chorus.webhooks.v1.WebhooksService/ReplayWebhookDelivery",
            json!({"name": "{webhook_delivery}"}),
            Hidden,
        ),
    ]
}

/// An RPC's outcome: the answer as JSON, or the status.
#[derive(Debug)]
enum Answer {
    Ok(String),
    Err(Code, String),
}

struct Suite {
    rt: tokio::runtime::Runtime,
    pool: DescriptorPool,
    http: reqwest::Client,
    ports: BTreeMap<&'static str, u16>,
    gateway: u16,
}

impl Suite {
    fn method(&self, full: &str) -> MethodDescriptor {
        let (service, method) = full.split_once('/').unwrap();
        self.pool
            .get_service_by_name(service)
            .and_then(|s| s.methods().find(|m| m.name() == method))
            .unwrap_or_else(|| panic!("no RPC {full}"))
    }

    /// `full` called over gRPC on the owning service's port, `body` as proto3 JSON.
    fn grpc(&self, token: &str, full: &str, body: &Value) -> Answer {
        let method = self.method(full);
        let request = DynamicMessage::deserialize(method.input(), body.clone())
            .unwrap_or_else(|e| panic!("{full}: the request {body} does not parse: {e}"));
        let context = method.parent_service().package_name().split('.').nth(1).unwrap();
        let port = self.ports[context];
        let path = format!("/{full}");
        self.rt.block_on(async move {
            let channel = tonic::transport::Channel::from_shared(format!("http://127.0.0.1:{port}"))
                .unwrap()
                .connect()
                .await
                .unwrap();
            let mut client = tonic::client::Grpc::new(channel);
            client.ready().await.unwrap();
            let mut call = tonic::Request::new(Bytes::from(prost::Message::encode_to_vec(&request)));
            call.metadata_mut()
                .insert("authorization", format!("Bearer {token}").parse().unwrap());
            match client
                .unary(call, path.parse().unwrap(), chorus_gateway::RawCodec)
                .await
            {
                Ok(reply) => {
                    let message = DynamicMessage::decode(method.output(), reply.into_inner()).unwrap();
                    Answer::Ok(serde_json::to_string(&message).unwrap())
                }
                Err(status) => Answer::Err(status.code(), status.message().to_owned()),
            }
        })
    }

    /// `full` called through the gateway's HTTP/JSON, by its `google.api.http` rule: the path's
    /// variables from `body`, the rest as the body or the query.
    fn http(&self, token: &str, full: &str, body: &Value) -> Answer {
        let method = self.method(full);
        let http = self.pool.get_extension_by_name("google.api.http").unwrap();
        let options = method.options();
        assert!(options.has_extension(&http), "{full} has no HTTP rule");
        let rule = options.get_extension(&http);
        let rule = rule.as_message().unwrap();
        let (verb, template) = ["get", "put", "post", "delete", "patch"]
            .into_iter()
            .find_map(|verb| {
                let t = rule.get_field_by_name(verb)?.as_str()?.to_owned();
                (!t.is_empty()).then_some((verb, t))
            })
            .unwrap_or_else(|| panic!("{full}: no verb in its HTTP rule"));
        let body_field = rule
            .get_field_by_name("body")
            .and_then(|b| b.as_str().map(str::to_owned))
            .unwrap_or_default();
        let mut rest = body.clone();
        let mut path = String::new();
        let mut tail = template.as_str();
        while let Some(open) = tail.find('{') {
            let close = tail.find('}').unwrap();
            path.push_str(&tail[..open]);
            let variable = &tail[open + 1..close];
            let field = variable.split('=').next().unwrap();
            path.push_str(&take(&mut rest, field));
            tail = &tail[close + 1..];
        }
        path.push_str(tail);
        let url = format!("http://127.0.0.1:{}{path}", self.gateway);
        // What is neither in the path nor the body goes in the query (an update mask beside a
        // `body: "endpoint"`, every field of a GET).
        let query: Vec<(String, String)> = match body_field.as_str() {
            "*" => Vec::new(),
            field => rest
                .as_object()
                .map(|o| {
                    o.iter()
                        .filter(|(k, _)| k.as_str() != field)
                        .map(|(k, v)| (k.clone(), v.as_str().map_or_else(|| v.to_string(), str::to_owned)))
                        .collect()
                })
                .unwrap_or_default(),
        };
        let request = match verb {
            "get" | "delete" => {
                let m = if verb == "get" {
                    reqwest::Method::GET
                } else {
                    reqwest::Method::DELETE
                };
                self.http.request(m, url).query(&query)
            }
            _ => {
                let payload = if body_field == "*" {
                    rest
                } else {
                    rest[body_field.as_str()].clone()
                };
                self.http
                    .request(verb.to_uppercase().parse().unwrap(), url)
                    .query(&query)
                    .json(&payload)
            }
        };
        self.rt.block_on(async move {
            let response = request.bearer_auth(token).send().await.unwrap();
            let status = response.status().as_u16();
            let text = response.text().await.unwrap();
            if status == 200 {
                return Answer::Ok(text);
            }
            let code = serde_json::from_str::<Value>(&text)
                .ok()
                .and_then(|v| v["code"].as_i64());
            let code = code.map_or(Code::Unknown, |c| Code::from_i32(c as i32));
            Answer::Err(code, format!("HTTP {status}: {text}"))
        })
    }
}

/// Removes the field at the dotted `path` from `value` and returns it as text.
fn take(value: &mut Value, path: &str) -> String {
    let mut parts: Vec<&str> = path.split('.').collect();
    let last = parts.pop().unwrap();
    let mut at = value;
    for p in parts {
        at = &mut at[p];
    }
    let taken = at.as_object_mut().and_then(|o| o.remove(last)).unwrap_or(Value::Null);
    taken.as_str().map_or_else(|| taken.to_string(), str::to_owned)
}

/// Mints a token with the data directory's issuer key.
fn mint(up: &Up, data_dir: &Path, args: &[&str]) -> String {
    let minted = client(up.port, data_dir, &[&["token"], args].concat());
    assert!(minted.status.success(), "{}", minted.describe());
    minted.stdout.trim().to_owned()
}

/// Tenant A's data, everywhere; the names of what was made.
fn make_tenant_a(up: &Up, data_dir: &Path, suite: &Suite, a: &str) -> (Made, Vec<String>) {
    let mut made = Made::default();
    let call = |full: &str, body: Value| match suite.grpc(a, full, &body) {
        Answer::Ok(text) => serde_json::from_str::<Value>(&text).unwrap(),
        Answer::Err(code, message) => panic!("{full} as A: {code:?} {message}"),
    };
    let created = call(
        "chorus.registry.v1.RegistryService/CreateInfluencer",
        json!({"influencer": {"display_name": "Ana Matrixa", "accounts": [{"platform": "PLATFORM_INSTAGRAM", "handle": "ana.matrixa"}],
            "niches": ["pets"], "location": {"country_code": "US", "city": "Austin"}, "languages": ["en"],
            "rate_card": [{"kind": "DELIVERABLE_KIND_FEED_POST", "price": {"currency_code": "USD", "amount_minor": "25000"}}],
            "compensation_accepted": ["COMPENSATION_KIND_CASH"]}}),
    );
    let influencer = created["influencer"]["name"].as_str().unwrap().to_owned();
    let key = call(
        "chorus.identity.v1.IdentityService/CreateApiKey",
        json!({"display_name": "Key-A-secret", "scopes": ["registry.read"]}),
    );
    let api_key = key["apiKey"]["name"].as_str().unwrap().to_owned();
    // An endpoint subscribed to campaign changes: the campaign made below gives it a delivery.
    let hook = call(
        "chorus.webhooks.v1.WebhooksService/CreateWebhookEndpoint",
        json!({"endpoint": {"url": "https://a-secret.example.com/hooks", "description": "Hook-A-secret",
            "event_types": ["chorus.matching.v1.CampaignChanged"]}}),
    );
    let webhook_endpoint = hook["endpoint"]["name"].as_str().unwrap().to_owned();
    let brand = |args: &[&str]| {
        let r = contracts(up, data_dir, None, args);
        assert!(r.status.success(), "{}", r.describe());
        r
    };
    let made_campaign = campaigns(
        up,
        data_dir,
        &[
            "create",
            "--name",
            "Campaign-A-secret",
            "--niche",
            "pets",
            "--city",
            "US:Austin",
            "--deliverable",
            "instagram:feed-post",
            "--compensation",
            "cash",
            "--budget",
            "1500 USD",
            "--headcount",
            "2",
        ],
    );
    assert!(made_campaign.status.success(), "{}", made_campaign.describe());
    let campaign = made_campaign
        .stdout
        .split_whitespace()
        .find(|w| w.starts_with("campaigns/"))
        .unwrap_or_else(|| panic!("no campaign name\n{}", made_campaign.describe()))
        .to_owned();
    // The matching index hears of the influencer by event: shortlist once it has.
    let shortlist = wait_until(|| {
        let body = json!({"parent": campaign, "shortlist": {"display_name": "Shortlist-A-secret", "members": [{"influencer": influencer}]}});
        match suite.grpc(a, "chorus.matching.v1.MatchingService/CreateShortlist", &body) {
            Answer::Ok(text) => serde_json::from_str::<Value>(&text).unwrap()["shortlist"]["name"]
                .as_str()
                .map(str::to_owned),
            Answer::Err(..) => None,
        }
    });
    brand(&offer_template(&campaign));
    let bare_id = influencer.trim_start_matches("influencers/");
    let offers = brand(&["offers", "create", &campaign, "--influencer", bare_id, "--json"]).json();
    let offer = offers["offers"][0].as_str().unwrap().to_owned();
    let ana = influencer_token(up, data_dir, &influencer);
    let as_ana = |args: &[&str]| {
        let r = contracts(up, data_dir, Some(&ana), args);
        assert!(r.status.success(), "{}", r.describe());
        r
    };
    let accepted = as_ana(&["offers", "accept", &offer, "--json"]).json();
    let contract = accepted["contract"]["name"].as_str().unwrap().to_owned();
    as_ana(&["contracts", "sign", &contract, "--ip", "203.0.113.7"]);
    brand(&["contracts", "sign", &contract, "--ip", "198.51.100.4"]);
    fund_until_held(&brand, &campaign, &contract, "wire-a");
    onboard_payee(&as_ana, "Ana Lima-Secret", "ana.secret@example.com");
    let deliverable = format!("{contract}/deliverables/1");
    as_ana(&[
        "deliverables",
        "submit",
        &deliverable,
        "--url",
        "https://instagram.com/p/a-secret",
        "--caption",
        "#ad Morning walk with @pawsome",
    ]);
    let payout = wait_until(|| {
        brand(&["payouts", "run", "--campaign", &campaign]);
        let listed = call(
            "chorus.payouts.v1.PayoutsService/ListPayouts",
            json!({"campaign": campaign}),
        );
        listed["payouts"][0]["name"].as_str().map(str::to_owned)
    });
    let accounts = call("chorus.payouts.v1.LedgerService/ListAccounts", json!({}));
    let account = accounts["accounts"][0]["name"].as_str().unwrap().to_owned();
    let link = call(
        "chorus.measurement.v1.MeasurementService/CreateLink",
        json!({"link": {"campaign": campaign, "influencer": influencer, "destination_url": "https://a-secret.example.com/spring"}}),
    );
    let link = link["link"]["name"].as_str().unwrap().to_owned();
    call(
        "chorus.measurement.v1.MeasurementService/CreatePromoCodes",
        json!({"campaign": campaign, "influencer": influencer, "code": "ASECRET10"}),
    );
    let recorded = call(
        "chorus.measurement.v1.MeasurementService/RecordConversions",
        json!({"orders": [{"order_id": "a-order-secret", "order_time": "2026-11-20T10:00:00Z",
            "revenue": {"currency_code": "USD", "amount_minor": "5000"}, "discount_codes": ["ASECRET10"]}]}),
    );
    let conversion = recorded["results"][0]["conversion"]["name"]
        .as_str()
        .unwrap_or_else(|| panic!("no conversion: {recorded}"))
        .to_owned();
    // The report is made on demand; it must exist for A.
    call(
        "chorus.measurement.v1.MeasurementService/GetCampaignReport",
        json!({"campaign": campaign}),
    );

    // The campaign's event became a delivery of A's endpoint (it fails: the host does not
    // resolve, and that is recorded too).
    let webhook_delivery = {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        loop {
            let listed = call(
                "chorus.webhooks.v1.WebhooksService/ListWebhookDeliveries",
                json!({"parent": webhook_endpoint}),
            );
            if let Some(name) = listed["deliveries"][0]["name"].as_str() {
                break name.to_owned();
            }
            assert!(
                std::time::Instant::now() < deadline,
                "no delivery for A's endpoint: {listed}"
            );
            std::thread::sleep(std::time::Duration::from_millis(200));
        }
    };

    let signed = call(
        "chorus.contracts.v1.ContractsService/GetContract",
        json!({"name": contract}),
    );
    made.terms = signed["contract"]["terms"].clone();
    let terms_version = signed["contract"]["termsVersion"].to_string();
    let sha = signed["contract"]["termsSha256"].as_str().unwrap().to_owned();
    let payee = format!("payees/{bare_id}");
    for (key, value) in [
        ("influencer", influencer),
        ("campaign", campaign),
        ("shortlist", shortlist),
        ("offer", offer),
        ("contract", contract),
        ("deliverable", deliverable),
        ("payout", payout),
        ("account", account),
        ("payee", payee),
        ("link", link),
        ("conversion", conversion),
        ("code", "ASECRET10".to_owned()),
        ("order", "a-order-secret".to_owned()),
        ("terms_version", terms_version),
        ("sha", sha),
        ("api_key", api_key),
        ("webhook_endpoint", webhook_endpoint),
        ("webhook_delivery", webhook_delivery),
    ] {
        made.names.insert(key, value);
    }
    // What must never reach an outsider: A's ids (but the influencer's, which the catalogue
    // shares) and the texts only A's data holds.
    let mut secrets: Vec<String> = made
        .names
        .iter()
        .filter(|(k, _)| {
            !matches!(
                **k,
                "influencer" | "code" | "order" | "deliverable" | "payee" | "terms_version"
            )
        })
        .map(|(_, v)| v.rsplit('/').next().unwrap().to_owned())
        .collect();
    secrets.extend(
        [
            "Campaign-A-secret",
            "Shortlist-A-secret",
            "Key-A-secret",
            "Hook-A-secret",
            "Ana Lima-Secret",
            "ana.secret@example.com",
            "a-secret.example.com",
            "instagram.com/p/a-secret",
        ]
        .map(str::to_owned),
    );
    (made, secrets)
}

#[test]
fn another_tenant_and_another_influencer_find_nothing_of_tenant_a() {
    let tmp = tempfile::tempdir().unwrap();
    let data_dir = tmp.path().join("data");
    let mut up = Up::start(&data_dir, free_port(), tmp.path().join("up.stderr"));
    up.wait_up();
    let suite = Suite {
        rt: tokio::runtime::Runtime::new().unwrap(),
        pool: DescriptorPool::decode(chorus_proto::FILE_DESCRIPTOR_SET).unwrap(),
        http: reqwest::Client::new(),
        ports: BTreeMap::from([
            ("registry", up.port),
            ("matching", up.matching_port),
            ("contracts", up.contracts_port),
            ("payouts", up.payouts_port),
            ("measurement", up.measurement_port),
            ("webhooks", up.webhooks_port),
            ("identity", up.identity_port),
        ]),
        gateway: up.gateway_port,
    };
    let a = std::fs::read_to_string(data_dir.join("dev-token"))
        .unwrap()
        .trim()
        .to_owned();
    let (made, secrets) = make_tenant_a(&up, &data_dir, &suite, &a);
    let tenant_b = mint(&up, &data_dir, &["--tenant", "brand-b", "--subject", "b-app"]);
    let other_influencer = mint(
        &up,
        &data_dir,
        &[
            "--role",
            "influencer",
            "--subject",
            &format!("influencers/{}", uuid::Uuid::now_v7()),
            "--tenant",
            "",
            "--scopes",
            "contracts.respond,registry.self,payouts.self,measurement.self",
        ],
    );

    // Every RPC of every Chorus service is in the matrix or listed as not tenant-scoped.
    let matrix = matrix();
    let mut unlisted = Vec::new();
    for service in suite.pool.services().filter(|s| s.full_name().starts_with("chorus.")) {
        if NOT_TENANT_SCOPED.iter().any(|(s, _)| *s == service.full_name()) {
            continue;
        }
        for method in service.methods() {
            let full = format!("{}/{}", service.full_name(), method.name());
            let known =
                matrix.iter().any(|(m, ..)| *m == full) || NOT_TENANT_SCOPED_RPCS.iter().any(|(m, _)| *m == full);
            if !known {
                unlisted.push(full);
            }
        }
    }
    assert!(
        unlisted.is_empty(),
        "RPCs neither in the tenant matrix nor listed as not tenant-scoped: {unlisted:?}"
    );

    let unparsed: Vec<String> = matrix
        .iter()
        .filter_map(|(full, template, _)| {
            DynamicMessage::deserialize(suite.method(full).input(), made.fill(template))
                .err()
                .map(|e| format!("{full}: {e}"))
        })
        .collect();
    assert!(unparsed.is_empty(), "requests that do not parse: {unparsed:#?}");

    let mut leaks = Vec::new();
    for (full, template, expect) in &matrix {
        let body = made.fill(template);
        for (who, token) in [("tenant B", &tenant_b), ("another influencer", &other_influencer)] {
            for (way, answer) in [
                ("gRPC", suite.grpc(token, full, &body)),
                ("HTTP", suite.http(token, full, &body)),
            ] {
                let case = format!("{full} as {who} over {way}");
                let text = match &answer {
                    Answer::Ok(text) => text.clone(),
                    Answer::Err(_, message) => message.clone(),
                };
                // What the request names may come back (a NOT_FOUND names it): the rest may not.
                let asked = body.to_string();
                let leaked = secrets
                    .iter()
                    .find(|s| !asked.contains(s.as_str()) && text.contains(s.as_str()));
                if let Some(secret) = leaked {
                    leaks.push(format!("{case}: answered A's {secret:?}: {text}"));
                    continue;
                }
                match (&answer, expect) {
                    (Answer::Err(Code::NotFound | Code::PermissionDenied, _), _) => {}
                    (Answer::Ok(_), Own) => {}
                    (Answer::Err(code, message), Own) if *code != Code::Internal && *code != Code::Unknown => {
                        let _ = message;
                    }
                    (other, _) => leaks.push(format!(
                        "{case}: expected NOT_FOUND or PERMISSION_DENIED, got {other:?}"
                    )),
                }
            }
        }
    }
    assert!(leaks.is_empty(), "{} problems:\n{}", leaks.len(), leaks.join("\n"));
}
