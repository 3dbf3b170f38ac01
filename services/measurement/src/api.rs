//! The gRPC handlers: they find who is calling (a brand's tenant, or an influencer for their
//! own post metrics), check the scope, turn requests into checked values (INVALID_ARGUMENT
//! naming every bad field) and hand the work to the store and the ingest.

use chorus_kit::auth::{Caller, role};
use chorus_kit::clock::micros;
use chorus_kit::idempotency::{Claim, Idempotency, key_of};
use chorus_kit::names::{CampaignName, ContractName, DeliverableName, InfluencerName, ResourceName};
use chorus_kit::{Error, Violations, paging};
use chorus_proto::measurement::measurement_service_server::MeasurementService;
use chorus_proto::measurement::*;
use tonic::{Request, Response, Status};

use crate::conversions::{Ingest, OrderIn};
use std::sync::Arc;

use crate::domain::{codes, destination};
use crate::report::{self, RateCard};
use crate::store::owners::{Owned, contract_of};
use crate::store::{Filter, NewLink, Settings, Store, default_utm, id_of};

pub const READ: &str = "measurement.read";
pub const WRITE: &str = "measurement.write";
/// An influencer's scope: their own posts' metrics and duties.
pub const SELF: &str = "measurement.self";
/// Every measurement scope, for tokens that may do anything (`chorus up`'s dev token).
pub const SCOPES: &[&str] = &[READ, WRITE, SELF];

const PAGE: usize = 50;
const MAX_PAGE: usize = 1_000;
/// Orders per RecordConversions call.
pub const MAX_ORDERS: usize = 1_000;
#[derive(Debug, Clone)]
pub struct MeasurementApi {
    ingest: Ingest,
    rate_card: Arc<RateCard>,
    keys: Idempotency,
}

impl MeasurementApi {
    pub fn new(ingest: Ingest, rate_card: Arc<RateCard>, keys: Idempotency) -> Self {
        MeasurementApi {
            ingest,
            rate_card,
            keys,
        }
    }

    /// A mutating call, once per request id (the `request_id` field, else the
    /// `idempotency-key` header; kit::idempotency): a repeat with the same request answers as
    /// the first; with another request, FAILED_PRECONDITION. Without an id, `work` just runs.
    async fn once<Req, T, W, F>(
        &self,
        request: &Request<Req>,
        method: &str,
        request_id: &str,
        work: W,
    ) -> Result<Response<T>, Status>
    where
        Req: prost::Message,
        T: prost::Message + Default + Send + 'static,
        W: FnOnce(Claim) -> F + Send + 'static,
        F: std::future::Future<Output = Result<T, Error>> + Send + 'static,
    {
        let caller = Caller::of(request)?.clone();
        let key = key_of(request, request_id);
        let answer = self.keys.once(&caller, method, &key, request.get_ref(), work).await?;
        Ok(Response::new(answer))
    }

    /// The report of a campaign of `tenant`'s; NOT_FOUND when the tenant has nothing of it.
    pub async fn report(
        &self,
        tenant: &str,
        campaign: &CampaignName,
        metric: TestMetric,
    ) -> Result<CampaignReport, Error> {
        let facts = self.store().campaign_facts(tenant, campaign.id()).await?;
        if !facts.known {
            return Err(Error::not_found(campaign.to_string()));
        }
        let now = self.store().clock().now_micros();
        Ok(report::build(
            &campaign.to_string(),
            &facts,
            metric,
            &self.rate_card,
            now,
        ))
    }

    fn store(&self) -> &Store {
        &self.ingest.store
    }
}

/// A brand's tenant, for what only brands do, holding `scope`.
fn brand<T>(request: &Request<T>, scope: &str) -> Result<String, Error> {
    brand_of(Caller::of(request)?, scope)
}

/// A brand's tenant, for what only brands do, holding `scope` (gRPC and the HTTP listener).
pub fn brand_of(c: &Caller, scope: &str) -> Result<String, Error> {
    if c.role == role::INFLUENCER {
        return Err(Error::permission_denied("influencers cannot do this; their brand does"));
    }
    c.require(scope)?;
    if c.tenant.is_empty() {
        return Err(Error::permission_denied(
            "the token names no tenant; links and orders belong to one",
        ));
    }
    Ok(c.tenant.clone())
}

/// The campaign and influencer a list is narrowed to, each optional; INVALID_ARGUMENT naming
/// each malformed one.
fn filter(campaign: &str, influencer: &str) -> Result<Filter, Error> {
    fn id_in<N: ResourceName>(name: &str, field: &str, v: &mut Violations, id: fn(&N) -> &str) -> Option<String> {
        if name.is_empty() {
            return None;
        }
        v.take(N::from_field(name, field))
            .ok()
            .flatten()
            .map(|n| id(&n).to_owned())
    }
    let mut v = Violations::new();
    let f = Filter {
        campaign_id: id_in::<CampaignName>(campaign, "campaign", &mut v, CampaignName::id),
        influencer_id: id_in::<InfluencerName>(influencer, "influencer", &mut v, InfluencerName::id),
    };
    v.finish()?;
    Ok(f)
}

fn page<C: serde::de::DeserializeOwned>(
    size: i32,
    token: &str,
    query: &impl std::fmt::Debug,
) -> Result<(usize, Option<C>), Error> {
    let mut v = Violations::new();
    let limit = v.take(paging::page_size(size, PAGE, MAX_PAGE))?;
    let cursor = v.take(paging::decode::<C>(token, paging::fingerprint(query)))?;
    v.finish()?;
    Ok((limit.unwrap_or(PAGE), cursor.flatten()))
}

fn next_token(query: &impl std::fmt::Debug, last: Option<&str>, full: bool) -> String {
    match (full, last) {
        (true, Some(id)) => paging::encode(paging::fingerprint(query), &id),
        _ => String::new(),
    }
}

fn check_utm(u: Option<&Utm>, v: &mut Violations) -> destination::Utm {
    let u = u.cloned().unwrap_or_default();
    for (field, value) in [
        ("link.utm.source", &u.source),
        ("link.utm.medium", &u.medium),
        ("link.utm.campaign", &u.campaign),
        ("link.utm.content", &u.content),
    ] {
        v.check(value.chars().count() > 100, field, "at most 100 characters");
        v.check(value.chars().any(char::is_control), field, "no control characters");
    }
    destination::Utm {
        source: u.source,
        medium: u.medium,
        campaign: u.campaign,
        content: u.content,
    }
}

#[tonic::async_trait]
impl MeasurementService for MeasurementApi {
    async fn create_link(&self, request: Request<CreateLinkRequest>) -> Result<Response<CreateLinkResponse>, Status> {
        let tenant = brand(&request, WRITE)?;
        let Some(l) = request.get_ref().link.as_ref() else {
            return Err(Error::invalid_field("link", "required").into());
        };
        let mut v = Violations::new();
        let campaign = v.take(CampaignName::from_field(&l.campaign, "link.campaign"))?;
        let influencer = v.take(InfluencerName::from_field(&l.influencer, "link.influencer"))?;
        let deliverable = if l.deliverable.is_empty() {
            None
        } else {
            v.take(DeliverableName::from_field(&l.deliverable, "link.deliverable"))?
        };
        v.take(destination::check(&l.destination_url, "link.destination_url"))?;
        v.check(
            l.segment.chars().count() > 100,
            "link.segment",
            "at most 100 characters",
        );
        let utm = check_utm(l.utm.as_ref(), &mut v);
        v.finish()?;
        let (Some(campaign), Some(influencer)) = (campaign, influencer) else {
            return Err(Error::invalid_field("link", "required").into());
        };
        let new = NewLink {
            utm: default_utm(campaign.id(), influencer.id(), &utm),
            campaign_id: campaign.id().to_owned(),
            influencer_id: influencer.id().to_owned(),
            deliverable: deliverable.map(|d| d.to_string()).unwrap_or_default(),
            segment: l.segment.clone(),
            destination_url: l.destination_url.clone(),
        };
        let store = self.store().clone();
        let request_id = request.get_ref().request_id.clone();
        self.once(&request, "CreateLink", &request_id, move |claim| async move {
            let link = store.create_link(&tenant, &new, &claim).await?;
            Ok(CreateLinkResponse { link: Some(link) })
        })
        .await
    }

    async fn get_link(&self, request: Request<GetLinkRequest>) -> Result<Response<GetLinkResponse>, Status> {
        let tenant = brand(&request, READ)?;
        let id = link_id(&request.get_ref().name, "name")?;
        let link = self
            .store()
            .link(&tenant, &id)
            .await?
            .ok_or_else(|| Error::not_found(format!("links/{id}")))?;
        Ok(Response::new(GetLinkResponse { link: Some(link) }))
    }

    async fn list_links(&self, request: Request<ListLinksRequest>) -> Result<Response<ListLinksResponse>, Status> {
        let tenant = brand(&request, READ)?;
        let r = request.get_ref();
        let f = filter(&r.campaign, &r.influencer)?;
        let query = ("links", &f);
        let (limit, after) = page::<String>(r.page_size, &r.page_token, &query)?;
        let links = self.store().links(&tenant, &f, after.as_deref(), limit).await?;
        let last = links.last().map(|l| id_of(&l.name, "links").to_owned());
        Ok(Response::new(ListLinksResponse {
            next_page_token: next_token(&query, last.as_deref(), links.len() == limit),
            links,
        }))
    }

    async fn list_clicks(&self, request: Request<ListClicksRequest>) -> Result<Response<ListClicksResponse>, Status> {
        let tenant = brand(&request, READ)?;
        let r = request.get_ref();
        let id = link_id(&r.link, "link")?;
        if self.store().link(&tenant, &id).await?.is_none() {
            return Err(Error::not_found(format!("links/{id}")).into());
        }
        let query = ("clicks", &id);
        let (limit, after) = page::<String>(r.page_size, &r.page_token, &query)?;
        let clicks = self.store().clicks(&tenant, &id, after.as_deref(), limit).await?;
        let last = clicks.last().map(|c| c.id.clone());
        Ok(Response::new(ListClicksResponse {
            next_page_token: next_token(&query, last.as_deref(), clicks.len() == limit),
            clicks,
        }))
    }

    async fn create_promo_codes(
        &self,
        request: Request<CreatePromoCodesRequest>,
    ) -> Result<Response<CreatePromoCodesResponse>, Status> {
        let tenant = brand(&request, WRITE)?;
        let r = request.get_ref();
        let mut v = Violations::new();
        let campaign = v.take(CampaignName::from_field(&r.campaign, "campaign"))?;
        let influencer = v.take(InfluencerName::from_field(&r.influencer, "influencer"))?;
        let contract = if r.contract.is_empty() {
            None
        } else {
            v.take(ContractName::from_field(&r.contract, "contract"))?
        };
        v.check(
            !(0..=1_000).contains(&r.single_use_count),
            "single_use_count",
            "from 0 to 1000",
        );
        v.check(
            r.prefix.len() > 16 || !r.prefix.bytes().all(|b| b.is_ascii_alphanumeric()),
            "prefix",
            "at most 16 characters of A-Z a-z 0-9",
        );
        let code = if r.code.is_empty() {
            None
        } else {
            v.take(codes::promo(&r.code, "code"))?
        };
        v.check(
            r.single_use_count > 0 && code.is_some(),
            "code",
            "a batch of single-use codes is made from `prefix`, not `code`",
        );
        v.finish()?;
        let (Some(campaign), Some(influencer)) = (campaign, influencer) else {
            return Err(Error::invalid_field("campaign", "required").into());
        };
        let now = self.store().clock().now();
        let make = |code: String, single_use: bool| PromoCode {
            name: format!("promoCodes/{}", uuid::Uuid::now_v7().hyphenated()),
            code,
            campaign: campaign.to_string(),
            influencer: influencer.to_string(),
            contract: contract.as_ref().map(|c| c.to_string()).unwrap_or_default(),
            single_use,
            redemptions: 0,
            create_time: Some(now),
        };
        let mut made = Vec::new();
        if r.single_use_count == 0 {
            let code = match code {
                Some(c) => c,
                None => codes::new_promo(&r.prefix, 8)?,
            };
            made.push(make(code, false));
        } else {
            let mut seen = std::collections::HashSet::new();
            while made.len() < r.single_use_count as usize {
                let c = codes::new_promo(&r.prefix, 10)?;
                if seen.insert(c.clone()) {
                    made.push(make(c, true));
                }
            }
        }
        let store = self.store().clone();
        self.once(&request, "CreatePromoCodes", &r.request_id, move |claim| async move {
            store.create_promo_codes(&tenant, &made, "", &claim).await?;
            Ok(CreatePromoCodesResponse { promo_codes: made })
        })
        .await
    }

    async fn list_promo_codes(
        &self,
        request: Request<ListPromoCodesRequest>,
    ) -> Result<Response<ListPromoCodesResponse>, Status> {
        let tenant = brand(&request, READ)?;
        let r = request.get_ref();
        let f = filter(&r.campaign, &r.influencer)?;
        let query = ("promoCodes", &f);
        let (limit, after) = page::<String>(r.page_size, &r.page_token, &query)?;
        let codes = self.store().promo_codes(&tenant, &f, after.as_deref(), limit).await?;
        let last = codes.last().map(|c| id_of(&c.name, "promoCodes").to_owned());
        Ok(Response::new(ListPromoCodesResponse {
            next_page_token: next_token(&query, last.as_deref(), codes.len() == limit),
            promo_codes: codes,
        }))
    }

    async fn record_conversions(
        &self,
        request: Request<RecordConversionsRequest>,
    ) -> Result<Response<RecordConversionsResponse>, Status> {
        let tenant = brand(&request, WRITE)?;
        let r = request.get_ref();
        let mut v = Violations::new();
        v.check(
            r.orders.is_empty() || r.orders.len() > MAX_ORDERS,
            "orders",
            format!("1..{MAX_ORDERS} orders"),
        );
        let mut orders = Vec::with_capacity(r.orders.len());
        for (i, o) in r.orders.iter().enumerate() {
            let mut ov = Violations::new();
            let order = order_in(o, &mut ov);
            v.absorb(&format!("orders[{i}]"), ov.finish())?;
            orders.extend(order);
        }
        v.finish()?;
        let ingest = self.ingest.clone();
        // Orders count once by their ids whatever the request id; a request id makes a retry
        // answer as the first call did (not "duplicate").
        self.once(&request, "RecordConversions", &r.request_id, move |_| async move {
            let results = ingest
                .record(&tenant, orders, ConversionSource::Api, "", &[])
                .await?
                .unwrap_or_default();
            Ok(RecordConversionsResponse {
                results: results
                    .into_iter()
                    .map(|(conversion, duplicate)| RecordedConversion {
                        conversion: Some(conversion),
                        duplicate,
                    })
                    .collect(),
            })
        })
        .await
    }

    async fn record_refund(
        &self,
        request: Request<RecordRefundRequest>,
    ) -> Result<Response<RecordRefundResponse>, Status> {
        let tenant = brand(&request, WRITE)?;
        let r = request.get_ref();
        let mut v = Violations::new();
        v.check(
            !client_id_ok(&r.order_id),
            "order_id",
            "1..64 characters, no control characters",
        );
        v.check(
            !client_id_ok(&r.refund_id),
            "refund_id",
            "1..64 characters, no control characters",
        );
        match &r.amount {
            None => v.add("amount", "required"),
            Some(m) => {
                v.check(
                    !chorus_catalog::currency::is_currency(&m.currency_code),
                    "amount.currency_code",
                    "an ISO 4217 code",
                );
                v.check(m.amount_minor <= 0, "amount.amount_minor", "must be positive");
            }
        }
        v.finish()?;
        let amount = r.amount.clone().unwrap_or_default();
        let (store, order_id, refund_id) = (self.store().clone(), r.order_id.clone(), format!("api/{}", r.refund_id));
        self.once(&request, "RecordRefund", &r.request_id, move |_| async move {
            let conversion = store.refund(&tenant, &order_id, &refund_id, &amount, &[]).await?;
            Ok(RecordRefundResponse {
                conversion: Some(conversion),
            })
        })
        .await
    }

    async fn get_conversion(
        &self,
        request: Request<GetConversionRequest>,
    ) -> Result<Response<GetConversionResponse>, Status> {
        let tenant = brand(&request, READ)?;
        let name = &request.get_ref().name;
        let id = match name.strip_prefix("conversions/") {
            Some(id) if chorus_kit::names::is_canonical_id(id) => id.to_owned(),
            _ if name.is_empty() => return Err(Error::invalid_field("name", "required").into()),
            _ => return Err(Error::invalid_field("name", "must be conversions/{conversion} with a UUID id").into()),
        };
        let c = self
            .store()
            .conversion(&tenant, &id)
            .await?
            .ok_or_else(|| Error::not_found(format!("conversions/{id}")))?;
        Ok(Response::new(GetConversionResponse { conversion: Some(c) }))
    }

    async fn list_conversions(
        &self,
        request: Request<ListConversionsRequest>,
    ) -> Result<Response<ListConversionsResponse>, Status> {
        let tenant = brand(&request, READ)?;
        let r = request.get_ref();
        let f = filter(&r.campaign, &r.influencer)?;
        let query = ("conversions", &f);
        let (limit, after) = page::<String>(r.page_size, &r.page_token, &query)?;
        let conversions = self.store().conversions(&tenant, &f, after.as_deref(), limit).await?;
        let last = conversions.last().map(|c| id_of(&c.name, "conversions").to_owned());
        Ok(Response::new(ListConversionsResponse {
            next_page_token: next_token(&query, last.as_deref(), conversions.len() == limit),
            conversions,
        }))
    }

    async fn record_post_metrics(
        &self,
        request: Request<RecordPostMetricsRequest>,
    ) -> Result<Response<RecordPostMetricsResponse>, Status> {
        let r = request.get_ref();
        let deliverable = DeliverableName::from_field(&r.deliverable, "deliverable")?.to_string();
        let Some(s) = r.snapshot.as_ref() else {
            return Err(Error::invalid_field("snapshot", "required").into());
        };
        let mut v = Violations::new();
        v.check(s.observe_time.is_none(), "snapshot.observe_time", "required");
        let now = self.store().clock().now_micros();
        if let Some(t) = &s.observe_time {
            v.check(
                micros(t) > now + 300_000_000,
                "snapshot.observe_time",
                "must not be in the future",
            );
        }
        for (field, value) in observed(s) {
            v.check(value < 0, format!("snapshot.{field}"), "must not be negative");
        }
        v.check(observed(s).is_empty(), "snapshot", "observe at least one metric");
        v.finish()?;
        let (tenant, duty, source) = self.owner(&request, &deliverable, WRITE).await?;
        let mut snapshot = s.clone();
        snapshot.deliverable = deliverable;
        if snapshot.source == MetricsSource::Unspecified as i32 {
            snapshot.source = source as i32;
        }
        let have: Vec<&str> = observed(&snapshot).into_iter().map(|(f, _)| f).collect();
        let meets = duty
            .as_ref()
            .is_some_and(|d| d.metrics.iter().all(|m| covers(&have, m)));
        let store = self.store().clone();
        self.once(&request, "RecordPostMetrics", &r.request_id, move |claim| async move {
            let stored = store.add_snapshot(&tenant, &snapshot, meets, &claim).await?;
            Ok(RecordPostMetricsResponse { snapshot: Some(stored) })
        })
        .await
    }

    async fn list_post_metrics(
        &self,
        request: Request<ListPostMetricsRequest>,
    ) -> Result<Response<ListPostMetricsResponse>, Status> {
        let deliverable = DeliverableName::from_field(&request.get_ref().deliverable, "deliverable")?.to_string();
        let (tenant, _, _) = self.owner(&request, &deliverable, READ).await?;
        let snapshots = self.store().snapshots(&tenant, &deliverable).await?;
        Ok(Response::new(ListPostMetricsResponse { snapshots }))
    }

    async fn get_measurement_duty(
        &self,
        request: Request<GetMeasurementDutyRequest>,
    ) -> Result<Response<GetMeasurementDutyResponse>, Status> {
        let deliverable = DeliverableName::from_field(&request.get_ref().deliverable, "deliverable")?.to_string();
        let (_, duty, _) = self.owner(&request, &deliverable, READ).await?;
        let duty = duty.ok_or_else(|| Error::not_found(format!("{deliverable}/measurementDuty")))?;
        Ok(Response::new(GetMeasurementDutyResponse { duty: Some(duty) }))
    }

    async fn update_campaign_settings(
        &self,
        request: Request<UpdateCampaignSettingsRequest>,
    ) -> Result<Response<UpdateCampaignSettingsResponse>, Status> {
        let tenant = brand(&request, WRITE)?;
        let Some(s) = request.get_ref().settings.as_ref() else {
            return Err(Error::invalid_field("settings", "required").into());
        };
        let mut v = Violations::new();
        let campaign = v.take(settings_campaign(&s.name, "settings.name"))?;
        if !s.destination_url.is_empty() {
            v.take(destination::check(&s.destination_url, "settings.destination_url"))?;
        }
        v.check(
            !(0..=2_160).contains(&s.attribution_window_hours),
            "settings.attribution_window_hours",
            "from 1 to 2160, or 0 for the default",
        );
        v.check(
            !s.audience_country.is_empty()
                && (s.audience_country.len() != 2 || !s.audience_country.bytes().all(|b| b.is_ascii_uppercase())),
            "settings.audience_country",
            "ISO 3166-1 alpha-2, upper case",
        );
        v.finish()?;
        let Some(campaign) = campaign else {
            return Err(Error::invalid_field("settings.name", "required").into());
        };
        let settings = Settings {
            destination_url: s.destination_url.clone(),
            window_hours: i64::from(s.attribution_window_hours),
            audience_country: s.audience_country.clone(),
            update_time: 0,
        };
        let api = self.clone();
        let request_id = request.get_ref().request_id.clone();
        self.once(&request, "UpdateCampaignSettings", &request_id, move |_| async move {
            let stored = api.store().put_settings(&tenant, campaign.id(), &settings).await?;
            Ok(UpdateCampaignSettingsResponse {
                settings: Some(api.settings_of(&campaign, &stored)),
            })
        })
        .await
    }

    async fn get_campaign_settings(
        &self,
        request: Request<GetCampaignSettingsRequest>,
    ) -> Result<Response<GetCampaignSettingsResponse>, Status> {
        let tenant = brand(&request, READ)?;
        let campaign = settings_campaign(&request.get_ref().name, "name")?;
        let stored = self
            .store()
            .settings(&tenant, campaign.id())
            .await?
            .ok_or_else(|| Error::not_found(format!("{campaign}/measurementSettings")))?;
        Ok(Response::new(GetCampaignSettingsResponse {
            settings: Some(self.settings_of(&campaign, &stored)),
        }))
    }

    async fn get_campaign_report(
        &self,
        request: Request<GetCampaignReportRequest>,
    ) -> Result<Response<GetCampaignReportResponse>, Status> {
        let tenant = brand(&request, READ)?;
        let r = request.get_ref();
        let mut v = Violations::new();
        let campaign = v.take(CampaignName::from_field(&r.campaign, "campaign"))?;
        let metric = TestMetric::try_from(r.metric).ok();
        v.check(metric.is_none(), "metric", "one of the TestMetric values");
        v.finish()?;
        let (Some(campaign), Some(metric)) = (campaign, metric) else {
            return Err(Error::invalid_field("campaign", "required").into());
        };
        let report = self.report(&tenant, &campaign, metric).await?;
        Ok(Response::new(GetCampaignReportResponse { report: Some(report) }))
    }
}

impl MeasurementApi {
    fn settings_of(&self, campaign: &CampaignName, s: &Settings) -> CampaignSettings {
        CampaignSettings {
            name: format!("{campaign}/measurementSettings"),
            destination_url: s.destination_url.clone(),
            attribution_window_hours: i32::try_from(if s.window_hours > 0 {
                s.window_hours
            } else {
                self.store().default_window_hours()
            })
            .unwrap_or(i32::MAX),
            audience_country: s.audience_country.clone(),
            update_time: Some(chorus_kit::clock::timestamp(s.update_time)),
        }
    }

    /// Whose deliverable it is: the brand's tenant (holding `scope`), or the influencer it is
    /// owed by (measurement.self). The tenant, the duty when one is known, and who reports.
    async fn owner<T>(
        &self,
        request: &Request<T>,
        deliverable: &str,
        scope: &str,
    ) -> Result<(String, Option<MeasurementDuty>, MetricsSource), Error> {
        let c = Caller::of(request)?;
        if c.role == role::INFLUENCER {
            c.require(SELF)?;
            let me = c
                .influencer()
                .ok_or_else(|| Error::permission_denied("the token names no influencer"))?
                .to_owned();
            let (tenant, duty) = self
                .store()
                .duty(None, deliverable)
                .await?
                .ok_or_else(|| Error::not_found(deliverable.to_owned()))?;
            if id_of(&duty.influencer, "influencers") != me {
                // Another influencer's post: as if it did not exist.
                return Err(Error::not_found(deliverable.to_owned()));
            }
            return Ok((tenant, Some(duty), MetricsSource::Influencer));
        }
        let tenant = brand(request, scope)?;
        if let Some(contract) = contract_of(deliverable) {
            self.store().check_owner(&tenant, Owned::Contract, &contract).await?;
        }
        let duty = self.store().duty(Some(&tenant), deliverable).await?.map(|(_, d)| d);
        Ok((tenant, duty, MetricsSource::Integration))
    }
}

/// "campaigns/{id}/measurementSettings".
fn settings_campaign(name: &str, field: &str) -> Result<CampaignName, Error> {
    match name.strip_suffix("/measurementSettings").and_then(CampaignName::parse) {
        Some(c) => Ok(c),
        None if name.is_empty() => Err(Error::invalid_field(field, "required")),
        None => Err(Error::invalid_field(
            field,
            "must be campaigns/{campaign}/measurementSettings with a UUID id",
        )),
    }
}

/// "links/{id}", the id.
fn link_id(name: &str, field: &str) -> Result<String, Error> {
    match name.strip_prefix("links/") {
        Some(id) if chorus_kit::names::is_canonical_id(id) => Ok(id.to_owned()),
        _ if name.is_empty() => Err(Error::invalid_field(field, "required")),
        _ => Err(Error::invalid_field(field, "must be links/{link} with a UUID id")),
    }
}

fn client_id_ok(id: &str) -> bool {
    !id.trim().is_empty() && id.len() <= 64 && !id.chars().any(char::is_control)
}

/// An order of RecordConversions, checked; its violations (field names relative to it) in `v`.
fn order_in(o: &OrderInput, v: &mut Violations) -> Option<OrderIn> {
    v.check(
        !client_id_ok(&o.order_id),
        "order_id",
        "1..64 characters, no control characters",
    );
    v.check(o.order_time.is_none(), "order_time", "required");
    match &o.revenue {
        None => v.add("revenue", "required"),
        Some(m) => {
            v.check(
                !chorus_catalog::currency::is_currency(&m.currency_code),
                "revenue.currency_code",
                "an ISO 4217 code",
            );
            v.check(m.amount_minor < 0, "revenue.amount_minor", "must not be negative");
        }
    }
    v.check(o.discount_codes.len() > 20, "discount_codes", "at most 20");
    v.check(
        o.discount_codes.iter().any(|c| c.len() > 64),
        "discount_codes",
        "each at most 64 characters",
    );
    v.check(o.click_id.len() > 64, "click_id", "at most 64 characters");
    let country = o.country.to_ascii_uppercase();
    v.check(
        !country.is_empty() && (country.len() != 2 || !country.bytes().all(|b| b.is_ascii_uppercase())),
        "country",
        "ISO 3166-1 alpha-2, or empty",
    );
    v.check(
        o.landing_url.len() > destination::MAX_URL,
        "landing_url",
        "at most 2000 characters",
    );
    if !v.is_empty() {
        return None;
    }
    let revenue = o.revenue.clone().unwrap_or_default();
    let mut clicks: Vec<String> = Vec::new();
    if !o.click_id.is_empty() {
        clicks.push(o.click_id.clone());
    }
    if let Some(c) = destination::click_of(&o.landing_url)
        && !clicks.contains(&c)
    {
        clicks.push(c);
    }
    Some(OrderIn {
        order_id: o.order_id.clone(),
        order_time: o.order_time.as_ref().map_or(0, micros),
        currency: revenue.currency_code,
        revenue_minor: revenue.amount_minor,
        discount_codes: o.discount_codes.clone(),
        clicks,
        country,
    })
}

/// The metrics a snapshot observed, by name.
fn observed(s: &PostMetricsSnapshot) -> Vec<(&'static str, i64)> {
    [
        ("impressions", s.impressions),
        ("reach", s.reach),
        ("likes", s.likes),
        ("comments", s.comments),
        ("saves", s.saves),
        ("shares", s.shares),
        ("video_views", s.video_views),
        ("link_clicks", s.link_clicks),
        ("story_views", s.story_views),
    ]
    .into_iter()
    .filter_map(|(n, v)| v.map(|v| (n, v)))
    .collect()
}

/// Whether the observed metrics cover one the duty names ("engagements" needs at least likes
/// and comments; saves and shares are not shown on every platform).
fn covers(have: &[&str], metric: &str) -> bool {
    match metric {
        "engagements" => ["likes", "comments"].iter().all(|m| have.contains(m)),
        m => have.contains(&m),
    }
}
