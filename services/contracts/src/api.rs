//! The gRPC handlers: they find who is calling (a brand's tenant or an influencer), check the
//! scope, parse requests into domain values and hand the moves to the store. The states and
//! moves are `domain::lifecycle`'s; what each move emits and schedules is `flows`'.

use std::sync::Arc;

use chorus_kit::auth::{Caller, SigningKey, role};
use chorus_kit::batch::{Batcher, Outcome, Writer};
use chorus_kit::clock::{Clock, micros, timestamp};
use chorus_kit::idempotency::{Idempotency, key_of};
use chorus_kit::names::{
    CampaignName, ContractName, DeliverableName, InfluencerName, OfferName, ResourceName, ShortlistName,
};
use chorus_kit::{Error, Violations, paging};
use chorus_proto::contracts::contracts_service_server::ContractsService;
use chorus_proto::contracts::disclosure_service_server::DisclosureService;
use chorus_proto::contracts::*;
use tonic::{Request, Response, Status};

use crate::domain::disclosure::Checker;
use crate::domain::lifecycle::{self, Signed};
use crate::domain::limits::*;
use crate::domain::terms::Terms;
use crate::error::ContractsError;
use crate::flows::{self, DAY_MICROS, Deadlines};
use crate::paper;
use crate::store::{NewOffer, Store, Target, Who, Writes};

pub const READ: &str = "contracts.read";
pub const WRITE: &str = "contracts.write";
/// An influencer's scope: answer their own offers, sign, submit.
pub const RESPOND: &str = "contracts.respond";
/// Every contracts scope, for tokens that may do anything (`chorus up`'s dev token).
pub const SCOPES: &[&str] = &[READ, WRITE, RESPOND];

/// Who is calling, for a read: an influencer (scope contracts.respond) sees their own, a brand
/// (contracts.read) its tenant's.
fn reader(c: &Caller) -> Result<Who, Error> {
    if c.role == role::INFLUENCER {
        c.require(RESPOND)?;
        let id = c
            .influencer()
            .ok_or_else(|| Error::permission_denied("the token names no influencer"))?;
        return Ok(Who::Influencer(id.to_owned()));
    }
    c.require(READ)?;
    brand(c)
}

fn brand(c: &Caller) -> Result<Who, Error> {
    if c.tenant.is_empty() {
        return Err(Error::permission_denied(
            "the token names no tenant; offers and contracts belong to one",
        ));
    }
    Ok(Who::Brand(c.tenant.clone()))
}

/// Who is calling, for a party's move: the influencer (contracts.respond) or the brand
/// (contracts.write).
fn party(c: &Caller) -> Result<(Who, Party), Error> {
    if c.role == role::INFLUENCER {
        let who = reader(c)?;
        return Ok((who, Party::Influencer));
    }
    c.require(WRITE)?;
    Ok((brand(c)?, Party::Brand))
}

/// A brand's own move (contracts.write); an influencer may not make it.
fn brand_only(c: &Caller) -> Result<Who, Error> {
    if c.role == role::INFLUENCER {
        return Err(ContractsError::WrongParty(Party::Brand).into());
    }
    c.require(WRITE)?;
    brand(c)
}

fn tenant_of(who: &Who) -> &str {
    match who {
        Who::Brand(t) => t,
        _ => "",
    }
}

/// Most calls applied in one transaction by a group-commit queue (SignContract,
/// AcceptOffer): enough to share a commit among the calls of a busy moment, few enough that
/// one transaction stays short.
pub const BATCH_MAX: usize = 64;

/// A SignContract call, as its queue applies it.
#[derive(Debug, Clone)]
pub struct SignItem {
    pub target: Target,
    pub by: Party,
    /// The caller's subject, who signs.
    pub signer: String,
    pub request: SignContractRequest,
}

/// An AcceptOffer call, as its queue applies it.
#[derive(Debug, Clone)]
pub struct AcceptItem {
    pub target: Target,
    pub by: Party,
    pub version: i32,
}

/// The writers of the service's group-commit queues, to run as its tasks.
#[derive(Debug)]
pub struct Writers {
    pub signatures: Writer<SignItem, Contract>,
    pub acceptances: Writer<AcceptItem, AcceptOfferResponse>,
}

/// The contracts service.
#[derive(Debug, Clone)]
pub struct Contracts {
    store: Store,
    keys: Idempotency,
    checker: Arc<Checker>,
    sealing: Arc<SigningKey>,
    deadlines: Deadlines,
    signatures: Batcher<SignItem, Contract>,
    acceptances: Batcher<AcceptItem, AcceptOfferResponse>,
}

impl Contracts {
    /// The service, and the writers of its queues: run them ([`Writer::run`]) for as long as
    /// it serves.
    pub fn new(
        store: Store,
        keys: Idempotency,
        checker: Arc<Checker>,
        sealing: Arc<SigningKey>,
        deadlines: Deadlines,
    ) -> (Self, Writers) {
        let (signatures, signing) = Batcher::new("contracts.signatures", BATCH_MAX, {
            let (store, sealing) = (store.clone(), sealing.clone());
            move |items: Vec<SignItem>| sign_all(store.clone(), sealing.clone(), deadlines, items)
        });
        let (acceptances, accepting) = Batcher::new("contracts.acceptances", BATCH_MAX, {
            let store = store.clone();
            move |items: Vec<AcceptItem>| accept_all(store.clone(), deadlines, items)
        });
        (
            Contracts {
                store,
                keys,
                checker,
                sealing,
                deadlines,
                signatures,
                acceptances,
            },
            Writers {
                signatures: signing,
                acceptances: accepting,
            },
        )
    }

    /// Runs a mutating call once per request id (the `idempotency-key` header: these requests
    /// have no request_id field), after `who` was established.
    async fn once<Req: prost::Message, T, W, F>(
        &self,
        request: &Request<Req>,
        method: &str,
        work: W,
    ) -> Result<T, Status>
    where
        T: prost::Message + Default + Send + 'static,
        W: FnOnce(chorus_kit::idempotency::Claim) -> F + Send + 'static,
        F: std::future::Future<Output = Result<T, Error>> + Send + 'static,
    {
        let caller = Caller::of(request)?.clone();
        let key = key_of(request, "");
        self.keys.once(&caller, method, &key, request.get_ref(), work).await
    }

    fn offer_id(name: &str, field: &str) -> Result<String, Error> {
        Ok(OfferName::from_field(name, field)?.id().to_owned())
    }

    fn contract_id(name: &str, field: &str) -> Result<String, Error> {
        Ok(ContractName::from_field(name, field)?.id().to_owned())
    }
}

/// The disclosure check a submitted post gets: the contract's jurisdiction and language, the
/// connections its compensation makes, and conditions attached (the brand asked for the post).
fn check_request(c: &Contract, s: &Submission) -> CheckDisclosureRequest {
    let terms = c.terms.clone().unwrap_or_default();
    let comp = terms.compensation.unwrap_or_default();
    let mut connections = Vec::new();
    if comp.cash.as_ref().is_some_and(|m| m.amount_minor > 0) {
        connections.push(Connection::Cash as i32);
    }
    if !comp.gift_cards.is_empty() {
        connections.push(Connection::GiftCard as i32);
    }
    if !comp.products.is_empty() {
        connections.push(Connection::FreeProduct as i32);
    }
    let mut media = s.media.clone().unwrap_or_default();
    if media.kind == 0 {
        media.kind = s.kind;
    }
    CheckDisclosureRequest {
        text: s.caption.clone(),
        platform: s.platform,
        jurisdiction: terms.disclosure_jurisdiction,
        language: terms.disclosure_language,
        connections,
        conditions_attached: true,
        brand_names: vec![c.brand_display_name.clone()],
        platform_label_used: s.platform_label_used,
        media: Some(media),
    }
}

fn check_submission(s: &Submission, v: &mut Violations) {
    v.check(s.url.is_empty(), "submission.url", "required");
    v.check(
        !(s.url.is_empty() || s.url.starts_with("https://") && s.url.len() > 8),
        "submission.url",
        "must be an https URL",
    );
    v.check(
        too_long(&s.url, MAX_URL),
        "submission.url",
        format!("at most {MAX_URL} characters"),
    );
    v.check(s.platform == 0, "submission.platform", "required");
    v.check(s.kind == 0, "submission.kind", "required");
    v.check(
        too_long(&s.caption, MAX_CAPTION),
        "submission.caption",
        format!("at most {MAX_CAPTION} characters"),
    );
    if let Some(m) = &s.media {
        v.check(
            m.frames.len() > MAX_FRAMES,
            "submission.media.frames",
            format!("at most {MAX_FRAMES} frames"),
        );
        for (i, f) in m.frames.iter().enumerate() {
            v.check(
                too_long(f, MAX_FRAME_TEXT),
                format!("submission.media.frames[{i}]"),
                format!("at most {MAX_FRAME_TEXT} characters"),
            );
        }
    }
}

fn page_of<T>(mut items: Vec<T>, size: usize, query: u64, id: impl Fn(&T) -> String) -> (Vec<T>, String) {
    let next = if items.len() > size {
        items.truncate(size);
        items
            .last()
            .map(|last| paging::encode(query, &id(last)))
            .unwrap_or_default()
    } else {
        String::new()
    };
    (items, next)
}

#[tonic::async_trait]
impl ContractsService for Contracts {
    async fn set_offer_template(
        &self,
        request: Request<SetOfferTemplateRequest>,
    ) -> Result<Response<SetOfferTemplateResponse>, Status> {
        let who = brand_only(Caller::of(&request)?)?;
        let store = self.store.clone();
        let r = request.get_ref().clone();
        let template = self
            .once(&request, "SetOfferTemplate", move |claim| async move {
                let mut t = r.template.ok_or_else(|| Error::invalid_field("template", "required"))?;
                let mut v = Violations::new();
                let campaign = v.take(CampaignName::from_field(&t.campaign, "template.campaign"))?;
                let terms = v.take(Terms::parse(&t.terms.clone().unwrap_or_default(), "template.terms"))?;
                if t.offer_valid_days == 0 {
                    t.offer_valid_days = DEFAULT_OFFER_VALID_DAYS;
                }
                v.check(
                    !(1..=MAX_OFFER_VALID_DAYS).contains(&t.offer_valid_days),
                    "template.offer_valid_days",
                    format!("from 1 to {MAX_OFFER_VALID_DAYS}"),
                );
                v.check(
                    t.brand_display_name.trim().is_empty(),
                    "template.brand_display_name",
                    "required",
                );
                v.check(
                    too_long(&t.brand_display_name, MAX_NAME),
                    "template.brand_display_name",
                    format!("at most {MAX_NAME} characters"),
                );
                v.check(
                    t.brand_names.len() > MAX_BRAND_NAMES,
                    "template.brand_names",
                    format!("at most {MAX_BRAND_NAMES}"),
                );
                for (i, n) in t.brand_names.iter().enumerate() {
                    v.check(
                        n.trim().is_empty() || too_long(n, MAX_BRAND_NAME),
                        format!("template.brand_names[{i}]"),
                        format!("1 to {MAX_BRAND_NAME} characters"),
                    );
                }
                v.finish()?;
                let (Some(campaign), Some(terms)) = (campaign, terms) else {
                    return Err(Error::invalid_field("template", "invalid"));
                };
                t.campaign = campaign.to_string();
                t.terms = Some(terms.to_proto());
                t.update_time = Some(store.clock().now());
                store.set_template(tenant_of(&who), &t, &claim).await?;
                Ok(t)
            })
            .await?;
        Ok(Response::new(SetOfferTemplateResponse {
            template: Some(template),
        }))
    }

    async fn get_offer_template(
        &self,
        request: Request<GetOfferTemplateRequest>,
    ) -> Result<Response<GetOfferTemplateResponse>, Status> {
        let caller = Caller::of(&request)?;
        caller.require(READ)?;
        let who = brand(caller)?;
        let campaign = CampaignName::from_field(&request.get_ref().campaign, "campaign")?;
        let t = self
            .store
            .template(tenant_of(&who), campaign.id())
            .await?
            .ok_or_else(|| Error::not_found(format!("{campaign}/offerTemplate")))?;
        Ok(Response::new(GetOfferTemplateResponse { template: Some(t) }))
    }

    async fn create_offers(
        &self,
        request: Request<CreateOffersRequest>,
    ) -> Result<Response<CreateOffersResponse>, Status> {
        let store = self.store.clone();
        let deadlines = self.deadlines;
        let answer = self
            .keys
            .serve(
                request,
                WRITE,
                "CreateOffers",
                |r| &r.request_id,
                move |caller, r, claim| async move {
                    let who = brand_only(&caller)?;
                    let tenant = tenant_of(&who).to_owned();
                    let campaign = CampaignName::from_field(&r.campaign, "campaign")?;
                    let mut v = Violations::new();
                    v.check(
                        r.shortlist.is_empty() == r.targets.is_empty(),
                        if r.shortlist.is_empty() { "targets" } else { "shortlist" },
                        "give either a shortlist or targets, not both",
                    );
                    v.check(
                        r.targets.len() > MAX_TARGETS,
                        "targets",
                        format!("at most {MAX_TARGETS}"),
                    );
                    let mut seen = std::collections::HashSet::new();
                    let mut targets = Vec::new();
                    for (i, t) in r.targets.iter().enumerate() {
                        let field = format!("targets[{i}].influencer");
                        if let Some(name) = v.take(InfluencerName::from_field(&t.influencer, &field))? {
                            v.check(!seen.insert(name.id().to_owned()), field, "repeated in this request");
                            targets.push((name.id().to_owned(), t.segment.clone()));
                        }
                        v.check(
                            too_long(&t.segment, MAX_SEGMENT),
                            format!("targets[{i}].segment"),
                            format!("at most {MAX_SEGMENT} characters"),
                        );
                    }
                    let shortlist = if r.shortlist.is_empty() {
                        None
                    } else {
                        let s = v.take(ShortlistName::from_field(&r.shortlist, "shortlist"))?;
                        if let Some(s) = &s {
                            v.check(
                                s.campaign() != &campaign,
                                "shortlist",
                                "must be a shortlist of the campaign",
                            );
                        }
                        s
                    };
                    v.finish()?;
                    let template = store
                        .template(&tenant, campaign.id())
                        .await?
                        .ok_or_else(|| ContractsError::NoTemplate(campaign.to_string()))?;
                    if let Some(s) = shortlist {
                        let members = store.accepted_members(&tenant, &s.to_string()).await?;
                        if members.is_empty() {
                            return Err(ContractsError::UnknownShortlist(s.to_string()).into());
                        }
                        targets = members.into_iter().map(|m| (m.influencer_id, m.segment)).collect();
                    }
                    let now = store.now_micros();
                    let expire = now + i64::from(template.offer_valid_days.max(1)) * DAY_MICROS;
                    let offers: Vec<NewOffer> = targets
                        .into_iter()
                        .map(|(influencer_id, segment)| NewOffer {
                            offer: Offer {
                                name: OfferName::generate().to_string(),
                                campaign: campaign.to_string(),
                                influencer: format!("influencers/{influencer_id}"),
                                state: OfferState::Open as i32,
                                terms: template.terms.clone(),
                                version: 1,
                                versions: vec![OfferVersion {
                                    version: 1,
                                    proposed_by: Party::Brand as i32,
                                    terms: template.terms.clone(),
                                    message: String::new(),
                                    create_time: Some(timestamp(now)),
                                }],
                                expire_time: Some(timestamp(expire)),
                                segment,
                                contract: String::new(),
                                brand_display_name: template.brand_display_name.clone(),
                                reason: String::new(),
                                create_time: Some(timestamp(now)),
                                update_time: Some(timestamp(now)),
                            },
                            influencer_id,
                        })
                        .collect();
                    let clock = store.clock().clone();
                    store
                        .create_offers(
                            &tenant,
                            campaign.id(),
                            offers,
                            |made| flows::offers_sent(&clock, &deadlines, &tenant, made),
                            &claim,
                        )
                        .await
                },
            )
            .await?;
        Ok(Response::new(answer))
    }

    async fn get_offer(&self, request: Request<GetOfferRequest>) -> Result<Response<GetOfferResponse>, Status> {
        let who = reader(Caller::of(&request)?)?;
        let id = Self::offer_id(&request.get_ref().name, "name")?;
        let o = self
            .store
            .offer(&who, &id)
            .await?
            .ok_or_else(|| Error::not_found(&request.get_ref().name))?;
        Ok(Response::new(GetOfferResponse { offer: Some(o) }))
    }

    async fn list_offers(&self, request: Request<ListOffersRequest>) -> Result<Response<ListOffersResponse>, Status> {
        let who = reader(Caller::of(&request)?)?;
        let r = request.get_ref();
        let size = paging::page_size(r.page_size, DEFAULT_PAGE, MAX_PAGE)?;
        let campaign = if r.campaign.is_empty() {
            None
        } else {
            Some(CampaignName::from_field(&r.campaign, "campaign")?)
        };
        let query = paging::fingerprint(&(&who, &r.campaign, r.state));
        let before: Option<String> = paging::decode(&r.page_token, query)?;
        let state = (r.state != 0).then_some(r.state);
        let offers = self
            .store
            .offers(
                &who,
                campaign.as_ref().map(CampaignName::id),
                state,
                before.as_deref(),
                size + 1,
            )
            .await?;
        let (offers, next) = page_of(offers, size, query, |o: &Offer| {
            o.name.trim_start_matches("offers/").to_owned()
        });
        Ok(Response::new(ListOffersResponse {
            offers,
            next_page_token: next,
        }))
    }

    async fn accept_offer(
        &self,
        request: Request<AcceptOfferRequest>,
    ) -> Result<Response<AcceptOfferResponse>, Status> {
        let (who, by) = party(Caller::of(&request)?)?;
        let id = Self::offer_id(&request.get_ref().name, "name")?;
        let version = request.get_ref().version;
        if version < 1 {
            return Err(Error::invalid_field("version", "required: the version accepted").into());
        }
        let acceptances = self.acceptances.clone();
        let answer = self
            .once(&request, "AcceptOffer", move |claim| async move {
                let target = Target { who, id, claim };
                acceptances.submit(AcceptItem { target, by, version }).await
            })
            .await?;
        Ok(Response::new(answer))
    }

    async fn decline_offer(
        &self,
        request: Request<DeclineOfferRequest>,
    ) -> Result<Response<DeclineOfferResponse>, Status> {
        let (who, by) = party(Caller::of(&request)?)?;
        let id = Self::offer_id(&request.get_ref().name, "name")?;
        let reason = request.get_ref().reason.clone();
        if too_long(&reason, MAX_REASON) {
            return Err(Error::invalid_field("reason", format!("at most {MAX_REASON} characters")).into());
        }
        let store = self.store.clone();
        let offer = self
            .once(&request, "DeclineOffer", move |claim| async move {
                let clock = store.clock().clone();
                store
                    .change_offer(
                        &who,
                        &id,
                        &claim,
                        |o, tenant, w| {
                            lifecycle::decline_offer(o, by, &reason, clock.now())?;
                            flows::offer_declined(w, &clock, tenant, o, by);
                            Ok(None)
                        },
                        |o, _| o.clone(),
                    )
                    .await
            })
            .await?;
        Ok(Response::new(DeclineOfferResponse { offer: Some(offer) }))
    }

    async fn counter_offer(
        &self,
        request: Request<CounterOfferRequest>,
    ) -> Result<Response<CounterOfferResponse>, Status> {
        let (who, by) = party(Caller::of(&request)?)?;
        let r = request.get_ref().clone();
        let mut v = Violations::new();
        let id = v.take(Self::offer_id(&r.name, "name"))?;
        v.check(r.version < 1, "version", "required: the version countered");
        let terms = v.take(Terms::parse(&r.terms.clone().unwrap_or_default(), "terms"))?;
        v.check(
            too_long(&r.message, MAX_REASON),
            "message",
            format!("at most {MAX_REASON} characters"),
        );
        v.finish()?;
        let (Some(id), Some(terms)) = (id, terms) else {
            return Err(Error::invalid_field("terms", "invalid").into());
        };
        let store = self.store.clone();
        let deadlines = self.deadlines;
        let offer = self
            .once(&request, "CounterOffer", move |claim| async move {
                let clock = store.clock().clone();
                store
                    .change_offer(
                        &who,
                        &id,
                        &claim,
                        |o, tenant, w| {
                            // The other party gets as long to answer as the first offer gave.
                            let validity =
                                o.expire_time.as_ref().map_or(0, micros) - o.create_time.as_ref().map_or(0, micros);
                            let now = clock.now_micros();
                            lifecycle::counter_offer(
                                o,
                                by,
                                r.version,
                                terms.to_proto(),
                                &r.message,
                                timestamp(now),
                                timestamp(now + validity.max(DAY_MICROS)),
                            )?;
                            flows::offer_countered(w, &clock, &deadlines, tenant, o);
                            Ok(None)
                        },
                        |o, _| o.clone(),
                    )
                    .await
            })
            .await?;
        Ok(Response::new(CounterOfferResponse { offer: Some(offer) }))
    }

    async fn withdraw_offer(
        &self,
        request: Request<WithdrawOfferRequest>,
    ) -> Result<Response<WithdrawOfferResponse>, Status> {
        let who = brand_only(Caller::of(&request)?)?;
        let id = Self::offer_id(&request.get_ref().name, "name")?;
        let reason = request.get_ref().reason.clone();
        if too_long(&reason, MAX_REASON) {
            return Err(Error::invalid_field("reason", format!("at most {MAX_REASON} characters")).into());
        }
        let store = self.store.clone();
        let offer = self
            .once(&request, "WithdrawOffer", move |claim| async move {
                let clock = store.clock().clone();
                store
                    .change_offer(
                        &who,
                        &id,
                        &claim,
                        |o, tenant, w| {
                            lifecycle::withdraw_offer(o, &reason, clock.now())?;
                            flows::offer_declined(w, &clock, tenant, o, Party::Brand);
                            Ok(None)
                        },
                        |o, _| o.clone(),
                    )
                    .await
            })
            .await?;
        Ok(Response::new(WithdrawOfferResponse { offer: Some(offer) }))
    }

    async fn get_contract(
        &self,
        request: Request<GetContractRequest>,
    ) -> Result<Response<GetContractResponse>, Status> {
        let who = reader(Caller::of(&request)?)?;
        let id = Self::contract_id(&request.get_ref().name, "name")?;
        let (c, _) = self
            .store
            .contract(&who, &id)
            .await?
            .ok_or_else(|| Error::not_found(&request.get_ref().name))?;
        Ok(Response::new(GetContractResponse { contract: Some(c) }))
    }

    async fn list_contracts(
        &self,
        request: Request<ListContractsRequest>,
    ) -> Result<Response<ListContractsResponse>, Status> {
        let who = reader(Caller::of(&request)?)?;
        let r = request.get_ref();
        let size = paging::page_size(r.page_size, DEFAULT_PAGE, MAX_PAGE)?;
        let campaign = if r.campaign.is_empty() {
            None
        } else {
            Some(CampaignName::from_field(&r.campaign, "campaign")?)
        };
        let query = paging::fingerprint(&(&who, &r.campaign, r.state, "contracts"));
        let before: Option<String> = paging::decode(&r.page_token, query)?;
        let state = (r.state != 0).then_some(r.state);
        let contracts = self
            .store
            .contracts(
                &who,
                campaign.as_ref().map(CampaignName::id),
                state,
                before.as_deref(),
                size + 1,
            )
            .await?;
        let (contracts, next) = page_of(contracts, size, query, |c: &Contract| {
            c.name.trim_start_matches("contracts/").to_owned()
        });
        Ok(Response::new(ListContractsResponse {
            contracts,
            next_page_token: next,
        }))
    }

    async fn sign_contract(
        &self,
        request: Request<SignContractRequest>,
    ) -> Result<Response<SignContractResponse>, Status> {
        let caller = Caller::of(&request)?.clone();
        let (who, by) = party(&caller)?;
        let r = request.get_ref().clone();
        let mut v = Violations::new();
        let id = v.take(Self::contract_id(&r.name, "name"))?;
        v.check(r.terms_version < 1, "terms_version", "required: the version signed");
        v.check(
            r.terms_sha256.len() != 64 || !r.terms_sha256.bytes().all(|b| b.is_ascii_hexdigit()),
            "terms_sha256",
            "the 64 hex digits of the SHA-256 of the terms signed",
        );
        v.check(
            too_long(&r.ip_address, MAX_IP),
            "ip_address",
            format!("at most {MAX_IP} characters"),
        );
        v.check(
            too_long(&r.user_agent, MAX_USER_AGENT),
            "user_agent",
            format!("at most {MAX_USER_AGENT} characters"),
        );
        v.finish()?;
        let Some(id) = id else {
            return Err(Error::invalid_field("name", "invalid").into());
        };
        let signatures = self.signatures.clone();
        let contract = self
            .once(&request, "SignContract", move |claim| async move {
                let target = Target { who, id, claim };
                let signer = caller.subject.clone();
                signatures
                    .submit(SignItem {
                        target,
                        by,
                        signer,
                        request: r,
                    })
                    .await
            })
            .await?;
        Ok(Response::new(SignContractResponse {
            contract: Some(contract),
        }))
    }

    async fn amend_contract(
        &self,
        request: Request<AmendContractRequest>,
    ) -> Result<Response<AmendContractResponse>, Status> {
        let who = brand_only(Caller::of(&request)?)?;
        let r = request.get_ref().clone();
        let mut v = Violations::new();
        let id = v.take(Self::contract_id(&r.name, "name"))?;
        let terms = v.take(Terms::parse(&r.terms.clone().unwrap_or_default(), "terms"))?;
        v.finish()?;
        let (Some(id), Some(terms)) = (id, terms) else {
            return Err(Error::invalid_field("terms", "invalid").into());
        };
        let store = self.store.clone();
        let contract = self
            .once(&request, "AmendContract", move |claim| async move {
                let clock = store.clock().clone();
                store
                    .change_contract(
                        &who,
                        &id,
                        &claim,
                        |c, tenant, _, _| {
                            let mut next = c.clone();
                            next.terms_version += 1;
                            paper::write_terms(&mut next, tenant, &terms)?;
                            lifecycle::amend_contract(
                                c,
                                terms.to_proto(),
                                next.terms_json,
                                next.terms_sha256,
                                clock.now(),
                            )?;
                            Ok(true)
                        },
                        |c, _| c.clone(),
                    )
                    .await
            })
            .await?;
        Ok(Response::new(AmendContractResponse {
            contract: Some(contract),
        }))
    }

    async fn send_contract(
        &self,
        request: Request<SendContractRequest>,
    ) -> Result<Response<SendContractResponse>, Status> {
        let who = brand_only(Caller::of(&request)?)?;
        let id = Self::contract_id(&request.get_ref().name, "name")?;
        let store = self.store.clone();
        let contract = self
            .once(&request, "SendContract", move |claim| async move {
                let clock = store.clock().clone();
                store
                    .change_contract(
                        &who,
                        &id,
                        &claim,
                        |c, _, _, _| {
                            lifecycle::send_contract(c, clock.now())?;
                            Ok(true)
                        },
                        |c, _| c.clone(),
                    )
                    .await
            })
            .await?;
        Ok(Response::new(SendContractResponse {
            contract: Some(contract),
        }))
    }

    async fn cancel_contract(
        &self,
        request: Request<CancelContractRequest>,
    ) -> Result<Response<CancelContractResponse>, Status> {
        let who = brand_only(Caller::of(&request)?)?;
        let r = request.get_ref().clone();
        let mut v = Violations::new();
        let id = v.take(Self::contract_id(&r.name, "name"))?;
        v.check(r.reason.trim().is_empty(), "reason", "required");
        v.check(
            too_long(&r.reason, MAX_REASON),
            "reason",
            format!("at most {MAX_REASON} characters"),
        );
        v.finish()?;
        let Some(id) = id else {
            return Err(Error::invalid_field("name", "invalid").into());
        };
        let store = self.store.clone();
        let contract = self
            .once(&request, "CancelContract", move |claim| async move {
                let clock = store.clock().clone();
                store
                    .change_contract(
                        &who,
                        &id,
                        &claim,
                        |c, tenant, deliverables, w| {
                            let was_active = lifecycle::cancel_contract(c, &r.reason, clock.now())?;
                            flows::contract_cancelled(w, &clock, tenant, c, was_active, deliverables);
                            Ok(true)
                        },
                        |c, _| c.clone(),
                    )
                    .await
            })
            .await?;
        Ok(Response::new(CancelContractResponse {
            contract: Some(contract),
        }))
    }

    async fn get_contract_document(
        &self,
        request: Request<GetContractDocumentRequest>,
    ) -> Result<Response<GetContractDocumentResponse>, Status> {
        let who = reader(Caller::of(&request)?)?;
        let r = request.get_ref();
        let id = Self::contract_id(&r.name, "name")?;
        let (c, tenant) = self
            .store
            .contract(&who, &id)
            .await?
            .ok_or_else(|| Error::not_found(&r.name))?;
        let format = DocumentFormat::try_from(r.format).unwrap_or(DocumentFormat::Unspecified);
        let document = match format {
            DocumentFormat::SealedJson => {
                if c.seal.is_none() {
                    return Err(Error::new(
                        chorus_kit::ErrorCode::FailedPrecondition,
                        format!(
                            "contract is {}: it is sealed once both parties have signed",
                            crate::error::contract_state_name(
                                ContractState::try_from(c.state).unwrap_or(ContractState::Unspecified)
                            )
                        ),
                    )
                    .with_reason("CONTRACT_STATE")
                    .into());
                }
                let record = paper::record(&c, &tenant)?
                    .ok_or_else(|| Error::new(chorus_kit::ErrorCode::Internal, "sealed contract without its record"))?;
                ContractDocument {
                    content_type: "application/json".into(),
                    content: record.to_json()?,
                    terms_sha256: c.terms_sha256.clone(),
                }
            }
            _ => ContractDocument {
                content_type: "application/pdf".into(),
                content: paper::pdf(&c, &tenant)?,
                terms_sha256: c.terms_sha256.clone(),
            },
        };
        Ok(Response::new(GetContractDocumentResponse {
            document: Some(document),
        }))
    }

    async fn get_sealing_keys(
        &self,
        _request: Request<GetSealingKeysRequest>,
    ) -> Result<Response<GetSealingKeysResponse>, Status> {
        let jwk = self.sealing.public_jwk();
        Ok(Response::new(GetSealingKeysResponse {
            keys: vec![SealingKey {
                kty: jwk.kty,
                crv: jwk.crv,
                x: jwk.x,
                kid: jwk.kid,
            }],
        }))
    }

    async fn submit_deliverable(
        &self,
        request: Request<SubmitDeliverableRequest>,
    ) -> Result<Response<SubmitDeliverableResponse>, Status> {
        let caller = Caller::of(&request)?;
        if caller.role != role::INFLUENCER {
            return Err(Error::from(ContractsError::WrongParty(Party::Influencer)).into());
        }
        let who = reader(caller)?;
        let r = request.get_ref().clone();
        let mut v = Violations::new();
        let name = v.take(DeliverableName::from_field(&r.name, "name"))?;
        let mut submission = r.submission.unwrap_or_default();
        check_submission(&submission, &mut v);
        v.finish()?;
        let Some(name) = name else {
            return Err(Error::invalid_field("name", "invalid").into());
        };
        let store = self.store.clone();
        let checker = self.checker.clone();
        let deliverable = self
            .once(&request, "SubmitDeliverable", move |claim| async move {
                let clock = store.clock().clone();
                let target = name.to_string();
                store
                    .change_contract(
                        &who,
                        name.contract().id(),
                        &claim,
                        |c, tenant, deliverables, w| {
                            let now = clock.now();
                            submission.submit_time = Some(now);
                            submission.check = Some(checker.check(&check_request(c, &submission))?);
                            let review = c.terms.as_ref().is_some_and(|t| t.content_review);
                            let d = deliverable_mut(deliverables, &target)?;
                            let state = lifecycle::submit_deliverable(c, d, submission, review, now)?;
                            let d = d.clone();
                            flows::deliverable_submitted(w, &clock, tenant, c, &d);
                            if state == DeliverableState::Approved {
                                approve(w, &clock, tenant, c, deliverables, &d)?;
                            }
                            Ok(true)
                        },
                        |_, all| answered(all, &name),
                    )
                    .await
            })
            .await?;
        Ok(Response::new(SubmitDeliverableResponse {
            deliverable: Some(deliverable),
        }))
    }

    async fn review_deliverable(
        &self,
        request: Request<ReviewDeliverableRequest>,
    ) -> Result<Response<ReviewDeliverableResponse>, Status> {
        let who = brand_only(Caller::of(&request)?)?;
        let r = request.get_ref().clone();
        let mut v = Violations::new();
        let name = v.take(DeliverableName::from_field(&r.name, "name"))?;
        let decision = ReviewDecision::try_from(r.decision).unwrap_or(ReviewDecision::Unspecified);
        v.check(
            decision == ReviewDecision::Unspecified,
            "decision",
            "required: approve or request changes",
        );
        v.check(
            decision == ReviewDecision::RequestChanges && r.reason.trim().is_empty(),
            "reason",
            "required when asking for changes",
        );
        v.check(
            too_long(&r.reason, MAX_REASON),
            "reason",
            format!("at most {MAX_REASON} characters"),
        );
        v.finish()?;
        let Some(name) = name else {
            return Err(Error::invalid_field("name", "invalid").into());
        };
        let store = self.store.clone();
        let deliverable = self
            .once(&request, "ReviewDeliverable", move |claim| async move {
                let clock = store.clock().clone();
                let target = name.to_string();
                store
                    .change_contract(
                        &who,
                        name.contract().id(),
                        &claim,
                        |c, tenant, deliverables, w| {
                            let d = deliverable_mut(deliverables, &target)?;
                            let state = lifecycle::review_deliverable(c, d, decision, &r.reason, clock.now())?;
                            let d = d.clone();
                            if state == DeliverableState::Approved {
                                approve(w, &clock, tenant, c, deliverables, &d)?;
                            } else {
                                flows::deliverable_changes_requested(w, &clock, tenant, c, &d);
                            }
                            Ok(true)
                        },
                        |_, all| answered(all, &name),
                    )
                    .await
            })
            .await?;
        Ok(Response::new(ReviewDeliverableResponse {
            deliverable: Some(deliverable),
        }))
    }

    async fn get_deliverable(
        &self,
        request: Request<GetDeliverableRequest>,
    ) -> Result<Response<GetDeliverableResponse>, Status> {
        let who = reader(Caller::of(&request)?)?;
        let name = DeliverableName::from_field(&request.get_ref().name, "name")?;
        let d = self
            .store
            .deliverables(&who, name.contract().id())
            .await?
            .and_then(|all| all.into_iter().find(|d| d.name == name.to_string()))
            .ok_or_else(|| Error::not_found(&name))?;
        Ok(Response::new(GetDeliverableResponse { deliverable: Some(d) }))
    }

    async fn list_deliverables(
        &self,
        request: Request<ListDeliverablesRequest>,
    ) -> Result<Response<ListDeliverablesResponse>, Status> {
        let who = reader(Caller::of(&request)?)?;
        let contract = ContractName::from_field(&request.get_ref().parent, "parent")?;
        let deliverables = self
            .store
            .deliverables(&who, contract.id())
            .await?
            .ok_or_else(|| Error::not_found(&contract))?;
        Ok(Response::new(ListDeliverablesResponse { deliverables }))
    }
}

/// Applies queued SignContract calls in one transaction ([`Store::change_contracts`]).
async fn sign_all(
    store: Store,
    sealing: Arc<SigningKey>,
    deadlines: Deadlines,
    items: Vec<SignItem>,
) -> Outcome<Contract> {
    let clock = store.clock().clone();
    let targets: Vec<Target> = items.iter().map(|i| i.target.clone()).collect();
    store
        .change_contracts(
            &targets,
            |i, c, tenant, _, w| sign(&items[i], c, tenant, w, &clock, &deadlines, &sealing),
            |_, c, _| c.clone(),
        )
        .await
}

/// One signature. The second one activates the contract: sealed, its deliverables made,
/// their timers set, its signing timers gone. Whether the contract changed (a party signing
/// again changes nothing).
fn sign(
    item: &SignItem,
    c: &mut Contract,
    tenant: &str,
    w: &mut Writes,
    clock: &Clock,
    deadlines: &Deadlines,
    sealing: &SigningKey,
) -> Result<bool, Error> {
    let now = clock.now_micros();
    let r = &item.request;
    let signature = Signature {
        party: item.by as i32,
        signer: item.signer.clone(),
        sign_time: Some(timestamp(now)),
        ip_address: r.ip_address.clone(),
        user_agent: r.user_agent.clone(),
        terms_version: r.terms_version,
        terms_sha256: r.terms_sha256.to_ascii_lowercase(),
    };
    match lifecycle::sign_contract(c, signature, timestamp(now))? {
        Signed::Again => Ok(false),
        Signed::First => {
            flows::contract_signed(w, clock, tenant, c);
            Ok(true)
        }
        Signed::Both => {
            let terms = paper::terms_of(c)?;
            paper::seal(c, tenant, &terms, sealing, now)?;
            let deliverables = flows::deliverables_of(c, &terms);
            let exclusivity = c.terms.as_ref().and_then(|t| t.exclusivity.clone());
            flows::contract_activated(
                w,
                clock,
                deadlines,
                tenant,
                c,
                terms.total_value(),
                deliverables,
                exclusivity.as_ref(),
            );
            Ok(true)
        }
    }
}

/// Applies queued AcceptOffer calls in one transaction ([`Store::change_offers`]).
async fn accept_all(store: Store, deadlines: Deadlines, items: Vec<AcceptItem>) -> Outcome<AcceptOfferResponse> {
    let clock = store.clock().clone();
    let targets: Vec<Target> = items.iter().map(|i| i.target.clone()).collect();
    store
        .change_offers(
            &targets,
            |i, o, tenant, w| accept(&items[i], o, tenant, w, &clock, &deadlines).map(Some),
            |_, o, c| AcceptOfferResponse {
                offer: Some(o.clone()),
                contract: c.cloned(),
            },
        )
        .await
}

/// An acceptance: the offer is accepted and its contract made, sent for signature.
fn accept(
    item: &AcceptItem,
    o: &mut Offer,
    tenant: &str,
    w: &mut Writes,
    clock: &Clock,
    deadlines: &Deadlines,
) -> Result<Contract, Error> {
    let now = clock.now_micros();
    let contract_name = ContractName::generate().to_string();
    lifecycle::accept_offer(o, item.by, item.version, &contract_name, timestamp(now))?;
    let terms = Terms::parse(&o.terms.clone().unwrap_or_default(), "terms")?;
    let mut c = Contract {
        name: contract_name,
        offer: o.name.clone(),
        campaign: o.campaign.clone(),
        influencer: o.influencer.clone(),
        state: ContractState::Sent as i32,
        terms_version: 1,
        segment: o.segment.clone(),
        brand_display_name: o.brand_display_name.clone(),
        sign_by_time: Some(timestamp(now + deadlines.sign_within_micros)),
        create_time: Some(timestamp(now)),
        update_time: Some(timestamp(now)),
        ..Default::default()
    };
    paper::write_terms(&mut c, tenant, &terms)?;
    flows::offer_accepted(w, clock, deadlines, tenant, o, &c);
    Ok(c)
}

/// The deliverable `name` among a contract's, to change; NOT_FOUND when it has no such one.
fn deliverable_mut<'a>(all: &'a mut [Deliverable], name: &str) -> Result<&'a mut Deliverable, Error> {
    all.iter_mut()
        .find(|d| d.name == name)
        .ok_or_else(|| Error::not_found(name))
}

/// The answer of a deliverable move: the deliverable as it now stands.
fn answered(all: &[Deliverable], name: &DeliverableName) -> Deliverable {
    let name = name.to_string();
    all.iter().find(|d| d.name == name).cloned().unwrap_or_default()
}

/// An approved deliverable: the money it releases and, with the last, the contract's end.
fn approve(
    w: &mut crate::store::Writes,
    clock: &chorus_kit::clock::Clock,
    tenant: &str,
    c: &mut Contract,
    deliverables: &[Deliverable],
    approved: &Deliverable,
) -> Result<(), Error> {
    let terms = paper::terms_of(c)?;
    let releases = terms.cash_releases();
    let reporting = c.terms.as_ref().and_then(|t| t.reporting.clone());
    flows::deliverable_approved(w, clock, tenant, c, deliverables, approved, &releases, reporting);
    Ok(())
}

/// The disclosure checker, for drafts (from the CLI and partner apps).
#[derive(Debug, Clone)]
pub struct Disclosure {
    checker: Arc<Checker>,
}

impl Disclosure {
    pub fn new(checker: Arc<Checker>) -> Self {
        Disclosure { checker }
    }
}

/// Anyone who works with contracts may check a draft: a brand (contracts.read) or an
/// influencer (contracts.respond).
fn may_check(c: &Caller) -> Result<(), Error> {
    if c.scopes.contains(READ) || c.scopes.contains(RESPOND) {
        Ok(())
    } else {
        c.require(READ)
    }
}

#[tonic::async_trait]
impl DisclosureService for Disclosure {
    async fn check_disclosure(
        &self,
        request: Request<CheckDisclosureRequest>,
    ) -> Result<Response<CheckDisclosureResponse>, Status> {
        may_check(Caller::of(&request)?)?;
        Ok(Response::new(self.checker.check(request.get_ref())?))
    }

    async fn list_rule_sets(
        &self,
        request: Request<ListRuleSetsRequest>,
    ) -> Result<Response<ListRuleSetsResponse>, Status> {
        may_check(Caller::of(&request)?)?;
        Ok(Response::new(ListRuleSetsResponse {
            rule_sets: self.checker.rule_sets(),
        }))
    }
}
