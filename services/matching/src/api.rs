//! The gRPC handlers: they check the caller's scope and tenant, translate requests into
//! domain calls and results into responses. Rules live in `domain`, storage in `store`.

use std::collections::HashSet;
use std::sync::{Arc, RwLock};

use chorus_catalog::money::Money;
use chorus_kit::auth::Caller;
use chorus_kit::idempotency::{Claim, Idempotency};
use chorus_kit::names::{CampaignName, ResourceName, ShortlistName};
use chorus_kit::{Error, ErrorCode, Violations, fieldmask, paging};
use chorus_proto::matching::matching_service_server::MatchingService;
use chorus_proto::matching::*;
use tonic::{Request, Response, Status};

use crate::domain::brief::{check_campaign, normalize_campaign, status_change_allowed};
use crate::domain::index::{Index, parse_id};
use crate::domain::limits::{
    MAX_ENUM_VALUES, MAX_MASK_PATHS, MAX_MATCH, MAX_PAGE, MAX_SEGMENT_LABEL, MAX_SELECT_CANDIDATES, MAX_SHORTLIST,
    MAX_TEXT, too_long,
};
use crate::domain::rank::{Plan, Ranking, Settings};
use crate::domain::select::{Limits, Shortfall, select};
use crate::domain::shortlist::is_final;
use crate::error::{MatchingError, status_name};
use crate::store::{Store, timestamp};

pub const READ: &str = "matching.read";
pub const WRITE: &str = "matching.write";
/// Every matching scope, for tokens that may do anything (`chorus up`'s dev token).
pub const SCOPES: &[&str] = &[READ, WRITE];

/// The index and whether its start-up read has finished.
#[derive(Debug, Default)]
pub struct SharedIndex {
    pub index: RwLock<Index>,
    pub loaded: std::sync::atomic::AtomicBool,
    /// Wakes whoever waits for the load (the health gate).
    pub on_loaded: tokio::sync::Notify,
}

impl SharedIndex {
    /// Resolves once the start-up read is complete.
    pub async fn wait_loaded(&self) {
        loop {
            let notified = self.on_loaded.notified();
            if self.loaded.load(std::sync::atomic::Ordering::Acquire) {
                return;
            }
            notified.await;
        }
    }
}

#[derive(Debug, Clone)]
pub struct Matching {
    store: Store,
    shared: Arc<SharedIndex>,
    settings: Settings,
    /// Threads a scan and its explanations may use: the machine's cores.
    threads: usize,
    /// First answers of mutating calls, by request id.
    keys: Idempotency,
}

impl Matching {
    pub fn new(store: Store, shared: Arc<SharedIndex>, settings: Settings, keys: Idempotency) -> Self {
        Matching {
            store,
            shared,
            settings,
            threads: std::thread::available_parallelism().map_or(1, std::num::NonZero::get),
            keys,
        }
    }

    /// Runs `f` on the index once its start-up read is done, off the async threads.
    async fn with_index<T: Send + 'static>(&self, f: impl FnOnce(&Index) -> T + Send + 'static) -> Result<T, Error> {
        if !self.shared.loaded.load(std::sync::atomic::Ordering::Acquire) {
            return Err(MatchingError::IndexLoading.into());
        }
        let shared = self.shared.clone();
        let span = tracing::Span::current();
        tokio::task::spawn_blocking(move || {
            let _entered = span.enter();
            let index = shared
                .index
                .read()
                .map_err(|_| Error::new(ErrorCode::Internal, "index lock poisoned"))?;
            Ok(f(&index))
        })
        .await
        .map_err(|e| Error::internal("match task", e))?
    }

    /// Stores a new shortlist, then erases anyone on it whose deletion reached the index
    /// while it was being made: the deletion's own erasure may have run before this commit.
    /// (The index learns of a deletion before its erasure runs, so one of the two sees it.)
    async fn save_shortlist(
        &self,
        tenant: &str,
        campaign_id: &str,
        mut s: Shortlist,
        claim: &Claim,
    ) -> Result<Shortlist, Error> {
        self.store.create_shortlist(tenant, campaign_id, &s, claim).await?;
        let members: Vec<String> = s.members.iter().map(|m| m.influencer.clone()).collect();
        let gone: Vec<String> = self
            .with_index(move |index| {
                members
                    .into_iter()
                    .filter(|m| {
                        m.strip_prefix("influencers/")
                            .and_then(parse_id)
                            .is_some_and(|id| index.get(id).is_none())
                    })
                    .collect()
            })
            .await?;
        for name in &gone {
            self.store.forget(name.trim_start_matches("influencers/")).await?;
        }
        s.members.retain(|m| !gone.contains(&m.influencer));
        Ok(s)
    }

    /// The caller's campaign, or NOT_FOUND (another tenant's campaign is not found either).
    async fn campaign(&self, tenant: &str, name: &str, field: &str) -> Result<(String, Campaign), Error> {
        let id = campaign_id(name, field)?;
        let c = self
            .store
            .campaign(tenant, &id)
            .await?
            .ok_or_else(|| Error::not_found(name))?;
        Ok((id, c))
    }

    /// Ranks for a campaign, keeping the best `keep`, then hands the plan and the ranking to
    /// `finish` (still on the index, so it can explain the candidates it keeps).
    async fn rank<T: Send + 'static>(
        &self,
        id: &str,
        c: &Campaign,
        keep: usize,
        finish: impl FnOnce(&Plan<'_>, Ranking) -> T + Send + 'static,
    ) -> Result<T, Error> {
        if is_final(c.status) {
            return Err(MatchingError::CampaignFinal(c.status).into());
        }
        let rejected = self.store.rejected(id).await?;
        let brief = c.brief.clone().unwrap_or_default();
        let objective = Objective::try_from(c.objective).unwrap_or(Objective::Awareness);
        let settings = self.settings;
        let now = self.store.now_micros();
        let threads = self.threads;
        self.with_index(move |index| {
            let plan = Plan::new(index, &brief, objective, &rejected, settings, now);
            let ranking = plan.run(keep, threads);
            finish(&plan, ranking)
        })
        .await
    }
}

/// What a selection found, explained.
#[derive(Debug)]
struct Selected {
    chosen: Vec<Candidate>,
    cost: i64,
    matched: u64,
    /// Whether someone affordable was left out (by caps or quotas rather than money).
    affordable_left: bool,
    labels: Vec<String>,
    per_segment: Vec<usize>,
}

fn caller<T>(request: &Request<T>, scope: &str) -> Result<String, Error> {
    let c = Caller::of(request)?;
    c.require(scope)?;
    tenant_of(c)
}

/// The caller's tenant: campaigns belong to one.
fn tenant_of(c: &Caller) -> Result<String, Error> {
    if c.tenant.is_empty() {
        return Err(Error::permission_denied(
            "the token names no tenant; campaigns belong to one",
        ));
    }
    Ok(c.tenant.clone())
}

/// `campaigns/{id}` to its id, or INVALID_ARGUMENT naming `field`.
pub fn campaign_id(name: &str, field: &str) -> Result<String, Error> {
    Ok(CampaignName::from_field(name, field)?.id().to_owned())
}

/// `campaigns/{c}/shortlists/{s}` to both ids, or INVALID_ARGUMENT naming `field`.
pub fn shortlist_id(name: &str, field: &str) -> Result<(String, String), Error> {
    let name = ShortlistName::from_field(name, field)?;
    Ok((name.campaign().id().to_owned(), name.id().to_owned()))
}

/// Fields UpdateCampaign may change: the campaign's own, the whole brief, or one of its fields.
const UPDATABLE: &[&str] = &[
    "display_name",
    "objective",
    "status",
    "brief",
    "brief.niches",
    "brief.locations",
    "brief.languages",
    "brief.tiers",
    "brief.min_quality_score",
    "brief.min_engagement_rate",
    "brief.max_engagement_rate",
    "brief.deliverables",
    "brief.compensation_offered",
    "brief.budget",
    "brief.headcount",
    "brief.schedule",
    "brief.disclosure_jurisdiction",
    "brief.exclusions",
    "brief.diversity_caps",
    "brief.segments",
    "brief.audience",
];
const _: () = assert!(
    UPDATABLE.len() == MAX_MASK_PATHS,
    "the mask limit is one path per updatable field"
);

/// Copies the fields named by `mask` from `from` into `to`. Paths: display_name, objective,
/// status, brief, and brief.<field>.
pub fn apply_mask(to: &mut Campaign, from: &Campaign, paths: &[String]) -> Result<(), Error> {
    let paths = fieldmask::paths(paths, UPDATABLE)?;
    let empty = Brief::default();
    let src = from.brief.as_ref().unwrap_or(&empty);
    for path in paths {
        match path {
            "display_name" => to.display_name = from.display_name.clone(),
            "objective" => to.objective = from.objective,
            "status" => to.status = from.status,
            "brief" => to.brief = from.brief.clone(),
            p => {
                let dst = to.brief.get_or_insert_with(Brief::default);
                match p.trim_start_matches("brief.") {
                    "niches" => dst.niches = src.niches.clone(),
                    "locations" => dst.locations = src.locations.clone(),
                    "languages" => dst.languages = src.languages.clone(),
                    "tiers" => dst.tiers = src.tiers.clone(),
                    "min_quality_score" => dst.min_quality_score = src.min_quality_score,
                    "min_engagement_rate" => dst.min_engagement_rate = src.min_engagement_rate,
                    "max_engagement_rate" => dst.max_engagement_rate = src.max_engagement_rate,
                    "deliverables" => dst.deliverables = src.deliverables.clone(),
                    "compensation_offered" => dst.compensation_offered = src.compensation_offered.clone(),
                    "budget" => dst.budget = src.budget.clone(),
                    "headcount" => dst.headcount = src.headcount,
                    "schedule" => dst.schedule = src.schedule,
                    "disclosure_jurisdiction" => dst.disclosure_jurisdiction = src.disclosure_jurisdiction.clone(),
                    "exclusions" => dst.exclusions = src.exclusions.clone(),
                    "diversity_caps" => dst.diversity_caps = src.diversity_caps,
                    "segments" => dst.segments = src.segments.clone(),
                    "audience" => dst.audience = src.audience.clone(),
                    // fieldmask::paths let only UPDATABLE through.
                    _ => {}
                }
            }
        }
    }
    Ok(())
}

#[tonic::async_trait]
impl MatchingService for Matching {
    async fn create_campaign(
        &self,
        request: Request<CreateCampaignRequest>,
    ) -> Result<Response<CreateCampaignResponse>, Status> {
        let store = self.store.clone();
        let stored = self
            .keys
            .serve(
                request,
                WRITE,
                "CreateCampaign",
                |r| &r.request_id,
                |caller, r, claim| async move {
                    let tenant = tenant_of(&caller)?;
                    let mut c = r.campaign.ok_or_else(|| Error::invalid_field("campaign", "required"))?;
                    if c.status == CampaignStatus::Unspecified as i32 {
                        c.status = CampaignStatus::Draft as i32;
                    }
                    normalize_campaign(&mut c);
                    let mut v = Violations::new();
                    check_campaign(&c, &mut v);
                    v.check(
                        is_final(c.status),
                        "campaign.status",
                        "a new campaign cannot start completed or cancelled",
                    );
                    v.finish()?;
                    let now = timestamp(store.now_micros());
                    c.name = format!("campaigns/{}", uuid::Uuid::now_v7());
                    c.tenant = tenant;
                    c.create_time = Some(now);
                    c.update_time = Some(now);
                    store.create_campaign(&c, &claim).await
                },
            )
            .await?;
        Ok(Response::new(CreateCampaignResponse { campaign: Some(stored) }))
    }

    async fn get_campaign(
        &self,
        request: Request<GetCampaignRequest>,
    ) -> Result<Response<GetCampaignResponse>, Status> {
        let tenant = caller(&request, READ)?;
        let (_, c) = self.campaign(&tenant, &request.get_ref().name, "name").await?;
        Ok(Response::new(GetCampaignResponse { campaign: Some(c) }))
    }

    async fn update_campaign(
        &self,
        request: Request<UpdateCampaignRequest>,
    ) -> Result<Response<UpdateCampaignResponse>, Status> {
        let store = self.store.clone();
        let updated = self
            .keys
            .serve(
                request,
                WRITE,
                "UpdateCampaign",
                |r| &r.request_id,
                |caller, r, claim| async move {
                    let tenant = tenant_of(&caller)?;
                    let from = r.campaign.ok_or_else(|| Error::invalid_field("campaign", "required"))?;
                    let id = campaign_id(&from.name, "campaign.name")?;
                    let paths: Vec<String> = match r.update_mask {
                        Some(m) if !m.paths.is_empty() => m.paths,
                        _ => vec!["display_name".into(), "objective".into(), "brief".into()],
                    };
                    store
                        .change_campaign(&tenant, &id, &claim, |c| {
                            if is_final(c.status) {
                                return Err(MatchingError::CampaignFinal(c.status).into());
                            }
                            let before = CampaignStatus::try_from(c.status).unwrap_or(CampaignStatus::Draft);
                            apply_mask(c, &from, &paths)?;
                            normalize_campaign(c);
                            let mut v = Violations::new();
                            check_campaign(c, &mut v);
                            v.check(
                                c.status == CampaignStatus::Unspecified as i32,
                                "campaign.status",
                                "required when in the mask",
                            );
                            v.finish()?;
                            let after = CampaignStatus::try_from(c.status).unwrap_or(CampaignStatus::Draft);
                            if !status_change_allowed(before, after) {
                                return Err(Error::invalid_field(
                                    "campaign.status",
                                    format!(
                                        "cannot move from {} to {} (statuses move forward; cancel with CancelCampaign)",
                                        status_name(before as i32),
                                        status_name(after as i32)
                                    ),
                                ));
                            }
                            Ok(())
                        })
                        .await
                },
            )
            .await?;
        Ok(Response::new(UpdateCampaignResponse {
            campaign: Some(updated),
        }))
    }

    async fn list_campaigns(
        &self,
        request: Request<ListCampaignsRequest>,
    ) -> Result<Response<ListCampaignsResponse>, Status> {
        let tenant = caller(&request, READ)?;
        let r = request.get_ref();
        let mut v = Violations::new();
        let size = v.take(paging::page_size(r.page_size, 50, MAX_PAGE))?;
        v.check(
            r.statuses.len() > MAX_ENUM_VALUES,
            "statuses",
            format!("at most {MAX_ENUM_VALUES}"),
        );
        for (i, s) in r.statuses.iter().enumerate().take(MAX_ENUM_VALUES) {
            v.check(
                CampaignStatus::try_from(*s).is_err() || *s == 0,
                format!("statuses[{i}]"),
                format!("unknown status {s}"),
            );
        }
        v.finish()?;
        let size = size.unwrap_or(50);
        let fingerprint = paging::fingerprint(&(&tenant, &r.statuses));
        let before: Option<String> = paging::decode(&r.page_token, fingerprint)?;
        if before.as_deref().is_some_and(|id| parse_id(id).is_none()) {
            return Err(Error::invalid_field("page_token", "malformed or from another query").into());
        }
        let mut campaigns = self
            .store
            .campaigns(&tenant, &r.statuses, before.as_deref(), size + 1)
            .await?;
        let next_page_token = if campaigns.len() > size {
            campaigns.truncate(size);
            campaigns
                .last()
                .map(|c| paging::encode(fingerprint, &c.name.trim_start_matches("campaigns/")))
                .unwrap_or_default()
        } else {
            String::new()
        };
        Ok(Response::new(ListCampaignsResponse {
            campaigns,
            next_page_token,
        }))
    }

    async fn cancel_campaign(
        &self,
        request: Request<CancelCampaignRequest>,
    ) -> Result<Response<CancelCampaignResponse>, Status> {
        let store = self.store.clone();
        let c = self
            .keys
            .serve(
                request,
                WRITE,
                "CancelCampaign",
                |r| &r.request_id,
                |caller, r, claim| async move {
                    let tenant = tenant_of(&caller)?;
                    let id = campaign_id(&r.name, "name")?;
                    store
                        .change_campaign(&tenant, &id, &claim, |c| {
                            if c.status == CampaignStatus::Completed as i32 {
                                return Err(MatchingError::CampaignFinal(c.status).into());
                            }
                            c.status = CampaignStatus::Cancelled as i32;
                            Ok(())
                        })
                        .await
                },
            )
            .await?;
        Ok(Response::new(CancelCampaignResponse { campaign: Some(c) }))
    }

    async fn match_influencers(
        &self,
        request: Request<MatchInfluencersRequest>,
    ) -> Result<Response<MatchInfluencersResponse>, Status> {
        let tenant = caller(&request, READ)?;
        let r = request.get_ref();
        let mut v = Violations::new();
        let size = v.take(paging::page_size(r.page_size, 100, MAX_MATCH))?;
        let id = v.take(campaign_id(&r.campaign, "campaign"))?;
        v.finish()?;
        let (Some(size), Some(_)) = (size, id) else {
            return Err(Error::new(ErrorCode::Internal, "checked above").into());
        };
        let (id, c) = self.campaign(&tenant, &r.campaign, "campaign").await?;
        let threads = self.threads;
        let response = self
            .rank(&id, &c, size, move |plan, ranking| MatchInfluencersResponse {
                candidates: plan.candidates(&ranking.top, threads),
                matched_count: ranking.matched as i64,
                considered_count: ranking.considered as i64,
                filter_counts: ranking.filter_counts(),
            })
            .await?;
        Ok(Response::new(response))
    }

    async fn select_influencers(
        &self,
        request: Request<SelectInfluencersRequest>,
    ) -> Result<Response<SelectInfluencersResponse>, Status> {
        let this = self.clone();
        // A selection saved as a shortlist is a write; one that is not can still be keyed.
        let answer = self
            .keys
            .serve(
                request,
                WRITE,
                "SelectInfluencers",
                |r| &r.request_id,
                |caller, r, _| async move { this.select(tenant_of(&caller)?, r).await },
            )
            .await?;
        Ok(Response::new(answer))
    }

    async fn create_shortlist(
        &self,
        request: Request<CreateShortlistRequest>,
    ) -> Result<Response<CreateShortlistResponse>, Status> {
        let this = self.clone();
        let s = self
            .keys
            .serve(
                request,
                WRITE,
                "CreateShortlist",
                |r| &r.request_id,
                |caller, r, claim| async move { this.create_shortlist_once(tenant_of(&caller)?, r, claim).await },
            )
            .await?;
        Ok(Response::new(CreateShortlistResponse { shortlist: Some(s) }))
    }

    async fn get_shortlist(
        &self,
        request: Request<GetShortlistRequest>,
    ) -> Result<Response<GetShortlistResponse>, Status> {
        let tenant = caller(&request, READ)?;
        let name = &request.get_ref().name;
        let (c, s) = shortlist_id(name, "name")?;
        let shortlist = self
            .store
            .shortlist(&tenant, &c, &s)
            .await?
            .ok_or_else(|| Error::not_found(name))?;
        Ok(Response::new(GetShortlistResponse {
            shortlist: Some(shortlist),
        }))
    }

    async fn list_shortlists(
        &self,
        request: Request<ListShortlistsRequest>,
    ) -> Result<Response<ListShortlistsResponse>, Status> {
        let tenant = caller(&request, READ)?;
        let r = request.get_ref();
        let mut v = Violations::new();
        let size = v.take(paging::page_size(r.page_size, 50, MAX_PAGE))?;
        let id = v.take(campaign_id(&r.parent, "parent"))?;
        v.finish()?;
        let (Some(size), Some(id)) = (size, id) else {
            return Err(Error::new(ErrorCode::Internal, "checked above").into());
        };
        self.campaign(&tenant, &r.parent, "parent").await?;
        let fingerprint = paging::fingerprint(&(&tenant, &id));
        let before: Option<String> = paging::decode(&r.page_token, fingerprint)?;
        let mut shortlists = self.store.shortlists(&tenant, &id, before.as_deref(), size + 1).await?;
        let next_page_token = if shortlists.len() > size {
            shortlists.truncate(size);
            shortlists
                .last()
                .and_then(|s| s.name.rsplit('/').next())
                .map(|last| paging::encode(fingerprint, &last))
                .unwrap_or_default()
        } else {
            String::new()
        };
        Ok(Response::new(ListShortlistsResponse {
            shortlists,
            next_page_token,
        }))
    }

    async fn decide_shortlist_members(
        &self,
        request: Request<DecideShortlistMembersRequest>,
    ) -> Result<Response<DecideShortlistMembersResponse>, Status> {
        let store = self.store.clone();
        let shortlist = self
            .keys
            .serve(
                request,
                WRITE,
                "DecideShortlistMembers",
                |r| &r.request_id,
                |caller, r, claim| async move {
                    let tenant = tenant_of(&caller)?;
                    let (c, s) = check_decisions(&r)?;
                    store.decide(&tenant, &c, &s, &r.decisions, &claim).await
                },
            )
            .await?;
        Ok(Response::new(DecideShortlistMembersResponse {
            shortlist: Some(shortlist),
        }))
    }
}

/// A DecideShortlistMembers request checked: the campaign's and the shortlist's ids, then
/// 1..MAX_SHORTLIST decisions, each naming `influencers/{id}` and a decision.
pub fn check_decisions(r: &DecideShortlistMembersRequest) -> Result<(String, String), Error> {
    let mut v = Violations::new();
    let ids = v.take(shortlist_id(&r.name, "name"))?;
    v.check(r.decisions.is_empty(), "decisions", "at least one");
    v.check(
        r.decisions.len() > MAX_SHORTLIST,
        "decisions",
        format!("at most {MAX_SHORTLIST}"),
    );
    for (i, d) in r.decisions.iter().enumerate().take(MAX_SHORTLIST) {
        v.check(
            d.influencer.strip_prefix("influencers/").and_then(parse_id).is_none(),
            format!("decisions[{i}].influencer"),
            "must be influencers/{id}",
        );
        v.check(
            !matches!(
                Decision::try_from(d.decision),
                Ok(Decision::Accepted | Decision::Rejected | Decision::Pending)
            ),
            format!("decisions[{i}].decision"),
            "ACCEPTED, REJECTED or PENDING",
        );
    }
    v.finish()?;
    ids.ok_or_else(|| Error::new(ErrorCode::Internal, "checked above"))
}

/// A SelectInfluencers request checked: the campaign's id and how many candidates to consider.
pub fn check_select(r: &SelectInfluencersRequest) -> Result<(String, usize), Error> {
    let mut v = Violations::new();
    let limit = match r.candidate_limit {
        0 => 50_000,
        n if n < 0 || n as usize > MAX_SELECT_CANDIDATES => {
            v.add("candidate_limit", format!("from 1 to {MAX_SELECT_CANDIDATES}"));
            0
        }
        n => n as usize,
    };
    v.check(
        too_long(&r.save_as, MAX_TEXT),
        "save_as",
        format!("at most {MAX_TEXT} characters"),
    );
    let id = v.take(campaign_id(&r.campaign, "campaign"))?;
    v.finish()?;
    let id = id.ok_or_else(|| Error::new(ErrorCode::Internal, "checked above"))?;
    Ok((id, limit))
}

/// A CreateShortlist request checked as far as it can be without the campaign: the campaign's
/// id, a display name of 1..MAX_TEXT characters, at most MAX_SHORTLIST distinct members named
/// `influencers/{id}`, segment labels of at most MAX_SEGMENT_LABEL characters.
pub fn check_new_shortlist(r: &CreateShortlistRequest) -> Result<String, Error> {
    let mut v = Violations::new();
    let id = v.take(campaign_id(&r.parent, "parent"))?;
    let empty = Shortlist::default();
    let given = r.shortlist.as_ref().unwrap_or(&empty);
    v.check(
        given.display_name.trim().is_empty(),
        "shortlist.display_name",
        "required",
    );
    v.check(
        too_long(&given.display_name, MAX_TEXT),
        "shortlist.display_name",
        format!("at most {MAX_TEXT} characters"),
    );
    v.check(
        given.members.len() > MAX_SHORTLIST,
        "shortlist.members",
        format!("at most {MAX_SHORTLIST}"),
    );
    let mut seen = HashSet::new();
    for (i, m) in given.members.iter().enumerate().take(MAX_SHORTLIST) {
        let ok = m.influencer.strip_prefix("influencers/").and_then(parse_id).is_some();
        if !ok {
            v.add(format!("shortlist.members[{i}].influencer"), "must be influencers/{id}");
        } else if !seen.insert(m.influencer.as_str()) {
            v.add(format!("shortlist.members[{i}].influencer"), "listed twice");
        }
        v.check(
            too_long(&m.segment, MAX_SEGMENT_LABEL),
            format!("shortlist.members[{i}].segment"),
            format!("at most {MAX_SEGMENT_LABEL} characters"),
        );
    }
    v.finish()?;
    id.ok_or_else(|| Error::new(ErrorCode::Internal, "checked above"))
}

fn new_shortlist(now_micros: i64, campaign_id: &str, display_name: &str, members: &[Candidate]) -> Shortlist {
    let now = timestamp(now_micros);
    Shortlist {
        name: format!("campaigns/{campaign_id}/shortlists/{}", uuid::Uuid::now_v7()),
        display_name: display_name.to_owned(),
        members: members
            .iter()
            .map(|c| ShortlistMember {
                influencer: c.influencer.clone(),
                display_name: c.display_name.clone(),
                segment: c.segment.clone(),
                decision: Decision::Pending as i32,
                candidate: Some(c.clone()),
            })
            .collect(),
        create_time: Some(now),
        update_time: Some(now),
    }
}

/// The work of the mutating calls that do more than one store call, run once per request id.
impl Matching {
    async fn select(&self, tenant: String, r: SelectInfluencersRequest) -> Result<SelectInfluencersResponse, Error> {
        let r = &r;
        let (_, limit) = check_select(r)?;
        let (id, c) = self.campaign(&tenant, &r.campaign, "campaign").await?;
        let brief = c.brief.clone().unwrap_or_default();
        let caps = brief.diversity_caps.unwrap_or_default();
        // A stored brief's budget was checked when it was written.
        let budget = Money::from_proto(&brief.budget.clone().unwrap_or_default())
            .map_err(|e| Error::internal("the stored brief's budget", e))?;
        let audience_test = c.objective == Objective::AudienceTest as i32;
        let segments = if audience_test { brief.segments.len() } else { 0 };
        let limits = Limits::new(
            budget.minor,
            brief.headcount.max(0) as usize,
            caps.max_city_share,
            caps.max_niche_share,
            segments,
        );
        let headcount = limits.headcount;
        let found = self
            .rank(&id, &c, limit, move |plan, ranking| {
                let sales = plan.sales();
                let chosen = select(
                    &ranking.top,
                    |s| if sales { s.conversions } else { s.engagements },
                    &limits,
                );
                let left = limits.budget - chosen.cost;
                let mut taken = vec![false; ranking.top.len()];
                for i in &chosen.chosen {
                    taken[*i] = true;
                }
                let mut picked = chosen.chosen.clone();
                picked.sort_unstable();
                Selected {
                    chosen: picked.iter().map(|i| plan.candidate(&ranking.top[*i])).collect(),
                    cost: chosen.cost,
                    matched: ranking.matched,
                    // Someone worth nothing to the objective was never a choice, so does not
                    // count as left out by caps.
                    affordable_left: ranking.top.iter().zip(&taken).any(|(s, taken)| {
                        let value = if sales { s.conversions } else { s.engagements };
                        !taken && value > 0.0 && s.cost <= left
                    }),
                    labels: plan.segment_labels(),
                    per_segment: limits.per_segment.clone(),
                }
            })
            .await?;
        let selected = found.chosen;
        let shortfall = Shortfall::of(selected.len(), headcount, found.matched, found.affordable_left).to_string();
        let segment_counts = found
            .labels
            .iter()
            .enumerate()
            .filter(|_| segments > 0)
            .map(|(i, label)| SegmentCount {
                label: label.clone(),
                selected_count: selected.iter().filter(|c| &c.segment == label).count() as i32,
                target_count: found.per_segment.get(i).copied().unwrap_or(0) as i32,
            })
            .collect();
        let spent = Money::new(budget.currency, found.cost);
        let leftover = budget
            .checked_sub(spent)
            .map_err(|e| Error::internal("the leftover budget", e))?;
        let shortlist = if r.save_as.is_empty() {
            None
        } else {
            let s = new_shortlist(self.store.now_micros(), &id, &r.save_as, &selected);
            Some(self.save_shortlist(&tenant, &id, s, &Claim::none()).await?)
        };
        Ok(SelectInfluencersResponse {
            expected_engagements: selected.iter().map(|c| c.expected_engagements).sum(),
            expected_conversions: selected.iter().map(|c| c.expected_conversions).sum(),
            total_cost: Some(spent.to_proto()),
            leftover_budget: Some(leftover.to_proto()),
            selected,
            shortfall,
            segments: segment_counts,
            shortlist,
        })
    }

    async fn create_shortlist_once(
        &self,
        tenant: String,
        r: CreateShortlistRequest,
        claim: Claim,
    ) -> Result<Shortlist, Error> {
        let id = check_new_shortlist(&r)?;
        let given = r.shortlist.unwrap_or_default();
        let (_, c) = self.campaign(&tenant, &r.parent, "parent").await?;
        // Members are scored against the campaign's brief, as a match would have.
        let brief = c.brief.clone().unwrap_or_default();
        // A segment label travels to contracts and measurement: it must be one of the brief's.
        let labels: HashSet<&str> = brief.segments.iter().map(|s| s.label.as_str()).collect();
        let mut v = Violations::new();
        for (i, m) in given.members.iter().enumerate() {
            v.check(
                !m.segment.is_empty() && !labels.contains(m.segment.as_str()),
                format!("shortlist.members[{i}].segment"),
                format!("\"{}\" is not a segment of the campaign's brief", m.segment),
            );
        }
        v.finish()?;
        let objective = Objective::try_from(c.objective).unwrap_or(Objective::Awareness);
        let settings = self.settings;
        let now = self.store.now_micros();
        let wanted: Vec<u128> = given
            .members
            .iter()
            .filter_map(|m| m.influencer.strip_prefix("influencers/").and_then(parse_id))
            .collect();
        let found = self
            .with_index(move |index| {
                let plan = Plan::new(index, &brief, objective, &HashSet::new(), settings, now);
                wanted.iter().map(|id| plan.assess(*id)).collect::<Vec<_>>()
            })
            .await?;
        let mut v = Violations::new();
        for (i, f) in found.iter().enumerate() {
            v.check(
                f.is_none(),
                format!("shortlist.members[{i}].influencer"),
                "not in the catalogue",
            );
        }
        v.finish()?;
        let candidates: Vec<Candidate> = found.into_iter().flatten().collect();
        let mut s = new_shortlist(self.store.now_micros(), &id, &given.display_name, &candidates);
        for (m, g) in s.members.iter_mut().zip(&given.members) {
            if !g.segment.is_empty() {
                m.segment = g.segment.clone();
            }
        }
        self.save_shortlist(&tenant, &id, s, &claim).await
    }
}
