//! WebhooksService: a tenant's endpoints and their deliveries. Every method needs
//! `webhooks.manage` and a tenant; another tenant's endpoint is NOT_FOUND, as if it did not
//! exist.

use std::sync::Arc;

use chorus_kit::auth::Caller;
use chorus_kit::clock::Clock;
use chorus_kit::names::{ResourceName, WebhookDeliveryName, WebhookEndpointName};
use chorus_kit::{Error, ErrorCode, Violations};
use chorus_proto::webhooks::webhooks_service_server::WebhooksService;
use chorus_proto::webhooks::*;
use tokio::sync::Notify;
use tonic::{Request, Response, Status};

use crate::rules::Rules;
use crate::signing;
use crate::store::{Changes, Endpoint, Store};

/// Manages the tenant's endpoints and reads their deliveries.
pub const MANAGE: &str = "webhooks.manage";
pub const SCOPES: &[&str] = &[MANAGE];

const DEFAULT_PAGE: usize = 50;
const MAX_PAGE: usize = 100;
/// The fields UpdateWebhookEndpoint changes.
const UPDATABLE: &[&str] = &["url", "description", "event_types", "disabled"];

#[derive(Debug, Clone)]
pub struct Webhooks {
    store: Store,
    clock: Clock,
    rules: Rules,
    /// Wakes the worker when a replay made a delivery due.
    wake: Arc<Notify>,
}

impl Webhooks {
    pub fn new(store: Store, clock: Clock, rules: Rules, wake: Arc<Notify>) -> Self {
        Webhooks {
            store,
            clock,
            rules,
            wake,
        }
    }

    async fn endpoint(&self, tenant: &str, name: &WebhookEndpointName) -> Result<Endpoint, Error> {
        self.store
            .endpoint(tenant, name.id())
            .await?
            .ok_or_else(|| Error::not_found(name))
    }
}

/// The caller's tenant, once it holds the scope.
fn tenant<T>(request: &Request<T>) -> Result<String, Error> {
    let caller = Caller::of(request)?;
    caller.require(MANAGE)?;
    if caller.tenant.is_empty() {
        return Err(
            Error::permission_denied("webhook endpoints belong to a tenant, and this caller acts for none")
                .with_reason("TENANT_REQUIRED"),
        );
    }
    Ok(caller.tenant.clone())
}

fn next_page<T>(items: &mut Vec<T>, size: usize, query: u64, key: impl Fn(&T) -> String) -> String {
    if items.len() <= size {
        return String::new();
    }
    items.truncate(size);
    items
        .last()
        .map(|i| chorus_kit::paging::encode(query, &key(i)))
        .unwrap_or_default()
}

#[tonic::async_trait]
impl WebhooksService for Webhooks {
    async fn create_webhook_endpoint(
        &self,
        request: Request<CreateWebhookEndpointRequest>,
    ) -> Result<Response<CreateWebhookEndpointResponse>, Status> {
        let tenant = tenant(&request)?;
        let Some(e) = request.get_ref().endpoint.as_ref() else {
            return Err(Error::invalid_field("endpoint", "required").into());
        };
        let mut v = Violations::new();
        let url = self.rules.url(&mut v, "endpoint.url", &e.url);
        self.rules.description(&mut v, "endpoint.description", &e.description);
        self.rules.event_types(&mut v, "endpoint.event_types", &e.event_types);
        v.finish()?;
        let now = self.clock.now_micros();
        let secret = signing::new_secret()?;
        let endpoint = Endpoint {
            id: WebhookEndpointName::generate().id().to_owned(),
            tenant,
            url: url.unwrap_or_default(),
            description: e.description.clone(),
            event_types: e.event_types.clone(),
            disabled: e.disabled,
            disabled_reason: String::new(),
            disable_time: e.disabled.then_some(now),
            secret: secret.clone(),
            previous_secret: None,
            previous_secret_expire_time: None,
            create_time: now,
            update_time: now,
        };
        self.store.create_endpoint(&endpoint).await?;
        Ok(Response::new(CreateWebhookEndpointResponse {
            endpoint: Some(endpoint.to_proto()),
            secret,
        }))
    }

    async fn get_webhook_endpoint(
        &self,
        request: Request<GetWebhookEndpointRequest>,
    ) -> Result<Response<GetWebhookEndpointResponse>, Status> {
        let tenant = tenant(&request)?;
        let name = WebhookEndpointName::from_field(&request.get_ref().name, "name")?;
        let endpoint = self.endpoint(&tenant, &name).await?;
        Ok(Response::new(GetWebhookEndpointResponse {
            endpoint: Some(endpoint.to_proto()),
        }))
    }

    async fn list_webhook_endpoints(
        &self,
        request: Request<ListWebhookEndpointsRequest>,
    ) -> Result<Response<ListWebhookEndpointsResponse>, Status> {
        let tenant = tenant(&request)?;
        let r = request.get_ref();
        let size = chorus_kit::paging::page_size(r.page_size, DEFAULT_PAGE, MAX_PAGE)?;
        let query = chorus_kit::paging::fingerprint(&("webhook endpoints", &tenant));
        let after: Option<String> = chorus_kit::paging::decode(&r.page_token, query)?;
        let mut endpoints = self
            .store
            .endpoints(&tenant, after.as_deref().unwrap_or_default(), size + 1)
            .await?;
        let next_page_token = next_page(&mut endpoints, size, query, |e| e.id.clone());
        Ok(Response::new(ListWebhookEndpointsResponse {
            endpoints: endpoints.iter().map(Endpoint::to_proto).collect(),
            next_page_token,
        }))
    }

    async fn update_webhook_endpoint(
        &self,
        request: Request<UpdateWebhookEndpointRequest>,
    ) -> Result<Response<UpdateWebhookEndpointResponse>, Status> {
        let tenant = tenant(&request)?;
        let r = request.get_ref();
        let Some(e) = r.endpoint.as_ref() else {
            return Err(Error::invalid_field("endpoint", "required").into());
        };
        let name = WebhookEndpointName::from_field(&e.name, "endpoint.name")?;
        let given = r.update_mask.as_ref().map(|m| m.paths.clone()).unwrap_or_default();
        let paths = chorus_kit::fieldmask::paths(&given, UPDATABLE)?;
        let mut v = Violations::new();
        let mut changes = Changes::default();
        for path in paths {
            match path {
                "url" => changes.url = self.rules.url(&mut v, "endpoint.url", &e.url),
                "description" => {
                    self.rules.description(&mut v, "endpoint.description", &e.description);
                    changes.description = Some(e.description.clone());
                }
                "event_types" => {
                    self.rules.event_types(&mut v, "endpoint.event_types", &e.event_types);
                    changes.event_types = Some(e.event_types.clone());
                }
                _ => changes.disabled = Some(e.disabled),
            }
        }
        v.finish()?;
        let endpoint = self
            .store
            .update_endpoint(&tenant, name.id(), &changes, self.clock.now_micros())
            .await?
            .ok_or_else(|| Error::not_found(&name))?;
        if changes.disabled == Some(false) {
            self.wake.notify_one();
        }
        Ok(Response::new(UpdateWebhookEndpointResponse {
            endpoint: Some(endpoint.to_proto()),
        }))
    }

    async fn delete_webhook_endpoint(
        &self,
        request: Request<DeleteWebhookEndpointRequest>,
    ) -> Result<Response<DeleteWebhookEndpointResponse>, Status> {
        let tenant = tenant(&request)?;
        let name = WebhookEndpointName::from_field(&request.get_ref().name, "name")?;
        if !self.store.delete_endpoint(&tenant, name.id()).await? {
            return Err(Error::not_found(&name).into());
        }
        Ok(Response::new(DeleteWebhookEndpointResponse {}))
    }

    async fn rotate_webhook_secret(
        &self,
        request: Request<RotateWebhookSecretRequest>,
    ) -> Result<Response<RotateWebhookSecretResponse>, Status> {
        let tenant = tenant(&request)?;
        let r = request.get_ref();
        let mut v = Violations::new();
        let name = v.take(WebhookEndpointName::from_field(&r.name, "name"))?;
        let overlap = v.take(chorus_kit::auth::rotation_overlap(r.overlap.as_ref()))?;
        v.finish()?;
        let (Some(name), Some(overlap)) = (name, overlap) else {
            return Err(Error::invalid_field("name", "required").into());
        };
        let now = self.clock.now_micros();
        let until = (!overlap.is_zero()).then(|| now + overlap.as_micros() as i64);
        let secret = signing::new_secret()?;
        let endpoint = self
            .store
            .rotate_secret(&tenant, name.id(), &secret, until, now)
            .await?
            .ok_or_else(|| Error::not_found(&name))?;
        Ok(Response::new(RotateWebhookSecretResponse {
            endpoint: Some(endpoint.to_proto()),
            secret,
        }))
    }

    async fn list_webhook_deliveries(
        &self,
        request: Request<ListWebhookDeliveriesRequest>,
    ) -> Result<Response<ListWebhookDeliveriesResponse>, Status> {
        let tenant = tenant(&request)?;
        let r = request.get_ref();
        let parent = WebhookEndpointName::from_field(&r.parent, "parent")?;
        let size = chorus_kit::paging::page_size(r.page_size, DEFAULT_PAGE, MAX_PAGE)?;
        let query = chorus_kit::paging::fingerprint(&("webhook deliveries", &tenant, parent.id()));
        let before: Option<String> = chorus_kit::paging::decode(&r.page_token, query)?;
        let mut deliveries = self
            .store
            .deliveries(&tenant, parent.id(), before.as_deref().unwrap_or_default(), size + 1)
            .await?
            .ok_or_else(|| Error::not_found(&parent))?;
        let next_page_token = next_page(&mut deliveries, size, query, |d| {
            d.name.rsplit('/').next().unwrap_or_default().to_owned()
        });
        Ok(Response::new(ListWebhookDeliveriesResponse {
            deliveries,
            next_page_token,
        }))
    }

    async fn replay_webhook_delivery(
        &self,
        request: Request<ReplayWebhookDeliveryRequest>,
    ) -> Result<Response<ReplayWebhookDeliveryResponse>, Status> {
        let tenant = tenant(&request)?;
        let name = WebhookDeliveryName::from_field(&request.get_ref().name, "name")?;
        let endpoint = self
            .store
            .endpoint(&tenant, name.endpoint().id())
            .await?
            .ok_or_else(|| Error::not_found(&name))?;
        if endpoint.disabled {
            return Err(Error::new(
                ErrorCode::FailedPrecondition,
                format!(
                    "{} is disabled: enable it before replaying its deliveries",
                    endpoint.name()
                ),
            )
            .with_reason("ENDPOINT_DISABLED")
            .into());
        }
        let delivery = self
            .store
            .replay(&tenant, name.endpoint().id(), name.event(), self.clock.now_micros())
            .await?
            .ok_or_else(|| Error::not_found(&name))?;
        self.wake.notify_one();
        Ok(Response::new(ReplayWebhookDeliveryResponse {
            delivery: Some(delivery),
        }))
    }
}
