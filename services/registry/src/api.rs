//! The gRPC handlers: they check the caller's scope, translate requests into domain calls and
//! domain results into responses. Rules live in `domain`, storage in `store`.

use std::collections::{HashSet, VecDeque};
use std::pin::Pin;

use chorus_kit::auth::Caller;
use chorus_kit::idempotency::{Claim, Idempotency, key_of};
use chorus_kit::names::{InfluencerName, ResourceName};
use chorus_kit::{Error, ErrorCode, Violations, fieldmask, paging};
use chorus_proto::registry::registry_service_server::RegistryService;
use chorus_proto::registry::*;
use chorus_proto::types::{Platform, Tier};
use futures::{Stream, StreamExt};
use prost::Message;
use tonic::{Request, Response, Status, Streaming};

use crate::domain::influencer::{
    AccountKey, LANGUAGE_TAG, check_niche, normalize, normalize_handle, normalize_language, normalize_snapshot,
};
use crate::domain::limits::{
    MAX_BATCH_GET, MAX_FILTER_VALUES, MAX_MASK_PATHS, MAX_ORDER_BY, MAX_PAGE, MAX_TEXT, too_long,
};
use crate::domain::tier::TierTable;
use crate::store::{Cursor, ListQuery, Order, Outcome, Store, WriteMode, id_of};

pub mod vetting;

/// Reading the catalogue: profiles without contact details, metrics, vetting reports.
pub const READ: &str = "registry.read";
/// Evidence from integrations: metrics snapshots and vetting samples. Not profiles: the
/// catalogue is shared, so one brand's app must not rewrite what every brand reads.
pub const WRITE: &str = "registry.write";
/// Writing profiles (create, update, import, block and unblock): the catalogue's curators.
pub const CURATE: &str = "registry.curate";
/// Contact details (email, phone) of the people who consented to be contacted.
pub const CONTACTS: &str = "registry.contacts";
/// An influencer's own profile: reading it whole and changing what a person may change about
/// themselves ([`SELF_UPDATABLE`]).
pub const SELF: &str = "registry.self";
/// Erasure of a person's data.
pub const ADMIN: &str = "registry.admin";
/// Every registry scope, for tokens that may do anything (`chorus up`'s dev token).
pub const SCOPES: &[&str] = &[READ, WRITE, CURATE, CONTACTS, SELF, ADMIN];

pub use crate::domain::limits::MAX_ROWS_PER_MESSAGE;
/// ImportInfluencers messages stored at the same time on one stream.
const IMPORT_PIPELINE: usize = 3;

/// The registry's gRPC service.
#[derive(Debug, Clone)]
pub struct Registry {
    store: Store,
    /// First answers of mutating calls, by request id.
    keys: Idempotency,
}

impl Registry {
    pub fn new(store: Store, keys: Idempotency) -> Self {
        Registry { store, keys }
    }
}

fn authorize<T>(request: &Request<T>, scope: &str) -> Result<(), Error> {
    Caller::of(request)?.require(scope)
}

/// What a caller may see of the profiles it reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum View {
    /// The catalogue as a brand reads it: contact details only with [`CONTACTS`] and only of the
    /// people whose consent allows contact.
    Catalogue { contacts: bool },
    /// The person reading their own profile: all of it.
    Own,
}

impl View {
    /// The view of a catalogue reader: [`READ`] required.
    pub fn catalogue(caller: &Caller) -> Result<View, Error> {
        caller.require(READ)?;
        Ok(View::Catalogue {
            contacts: caller.scopes.contains(CONTACTS),
        })
    }

    /// The view of a caller reading profile `id`: the influencer themselves (with [`SELF`])
    /// see it whole; anyone else reads it from the catalogue.
    pub fn of(caller: &Caller, id: &str) -> Result<View, Error> {
        if is_self(caller, id) {
            return Ok(View::Own);
        }
        View::catalogue(caller)
    }

    /// `inf` as this view shows it: contact details removed unless allowed.
    pub fn show(self, mut inf: Influencer) -> Influencer {
        let consented = inf.consent.as_ref().is_some_and(|c| c.contact_allowed);
        let shown = match self {
            View::Own => true,
            View::Catalogue { contacts } => contacts && consented,
        };
        if !shown {
            inf.contact = None;
        }
        inf
    }
}

/// Whether `caller` is influencer `id` acting on their own profile (role influencer, subject
/// `influencers/{id}`, scope [`SELF`]).
fn is_self(caller: &Caller, id: &str) -> bool {
    caller.influencer() == Some(id) && caller.scopes.contains(SELF)
}

/// `influencers/{uuid}` as a name, or INVALID_ARGUMENT naming `field`.
pub fn parse_name(name: &str, field: &str) -> Result<InfluencerName, Error> {
    InfluencerName::from_field(name, field)
}

/// An optional account filter: neither platform nor handle, or both and valid.
pub fn optional_account(platform: i32, handle: &str, v: &mut Violations) -> Option<AccountKey> {
    if platform == Platform::Unspecified as i32 && handle.is_empty() {
        return None;
    }
    account(platform, handle, v)
}

/// A required account: a known platform and a valid handle.
pub fn account(platform: i32, handle: &str, v: &mut Violations) -> Option<AccountKey> {
    let known = Platform::try_from(platform).is_ok_and(|p| p != Platform::Unspecified);
    match Platform::try_from(platform) {
        Err(_) => v.add("platform", format!("unknown platform {platform}")),
        Ok(Platform::Unspecified) => v.add("platform", "required"),
        Ok(_) => {}
    }
    let handle = if handle.is_empty() {
        v.add("handle", "required");
        None
    } else {
        match normalize_handle(handle) {
            Ok(h) => Some(h),
            Err(e) => {
                v.add("handle", e);
                None
            }
        }
    };
    handle.filter(|_| known).map(|handle| AccountKey { platform, handle })
}

/// A row error as the `google.rpc.Status` message carried in import results.
fn rpc_status(e: Error) -> chorus_proto::google::rpc::Status {
    let status: Status = e.into();
    if !status.details().is_empty()
        && let Ok(s) = chorus_proto::google::rpc::Status::decode(status.details())
    {
        return s;
    }
    chorus_proto::google::rpc::Status {
        code: status.code() as i32,
        message: status.message().to_owned(),
        details: vec![],
    }
}

/// Fields UpdateInfluencer may change.
pub const UPDATABLE: &[&str] = &[
    "display_name",
    "accounts",
    "niches",
    "location",
    "languages",
    "audience",
    "rate_card",
    "compensation_accepted",
    "contact",
    "consent",
    "status",
];
const _: () = assert!(
    UPDATABLE.len() == MAX_MASK_PATHS,
    "the mask limit is one path per updatable field"
);

/// Fields an influencer may change about themselves: not their accounts (the vetting evidence
/// is kept by account), nor the measured audience, nor the status (blocking is the curators').
pub const SELF_UPDATABLE: &[&str] = &[
    "display_name",
    "niches",
    "location",
    "languages",
    "rate_card",
    "compensation_accepted",
    "contact",
    "consent",
];

/// The fields an update may change for `caller` on profile `id`: any updatable one for a
/// curator, the [`SELF_UPDATABLE`] ones for the influencer themselves (an empty mask means
/// those); PERMISSION_DENIED naming the missing scope otherwise.
pub fn update_paths(caller: &Caller, id: &str, given: &[String]) -> Result<Vec<&'static str>, Error> {
    if caller.scopes.contains(CURATE) {
        return fieldmask::paths(given, UPDATABLE);
    }
    if !is_self(caller, id) {
        // Neither a curator nor this person: PERMISSION_DENIED naming the curators' scope.
        caller.require(CURATE)?;
    }
    let paths = fieldmask::paths(given, UPDATABLE)?;
    if given.is_empty() {
        return Ok(SELF_UPDATABLE.to_vec());
    }
    match paths.iter().find(|p| !SELF_UPDATABLE.contains(p)) {
        Some(p) => Err(Error::permission_denied(format!(
            "an influencer may not change their own {p}; scope {CURATE} required"
        ))
        .with_reason("SCOPE_REQUIRED")),
        None => Ok(paths),
    }
}

/// Copies the fields named by `paths` (every updatable one when empty) from `patch`.
pub fn apply_mask(current: &mut Influencer, patch: Influencer, paths: &[String]) -> Result<(), Error> {
    let paths = fieldmask::paths(paths, UPDATABLE)?;
    let Influencer {
        display_name,
        accounts,
        niches,
        location,
        languages,
        audience,
        rate_card,
        compensation_accepted,
        contact,
        consent,
        status,
        ..
    } = patch;
    for p in paths {
        match p {
            "display_name" => current.display_name = display_name.clone(),
            "accounts" => current.accounts = accounts.clone(),
            "niches" => current.niches = niches.clone(),
            "location" => current.location = location.clone(),
            "languages" => current.languages = languages.clone(),
            "audience" => current.audience = audience.clone(),
            "rate_card" => current.rate_card = rate_card.clone(),
            "compensation_accepted" => current.compensation_accepted = compensation_accepted.clone(),
            "contact" => current.contact = contact.clone(),
            "consent" => current.consent = consent,
            "status" => current.status = status,
            _ => {}
        }
    }
    Ok(())
}

/// A ListInfluencers request's filters and order, checked; tiers become follower ranges by
/// `tiers`. Each list filter holds at most MAX_FILTER_VALUES values.
pub fn list_query(r: &ListInfluencersRequest, tiers: &TierTable) -> Result<ListQuery, Error> {
    let mut v = Violations::new();
    let order = if too_long(&r.order_by, MAX_ORDER_BY) {
        v.add("order_by", format!("at most {MAX_ORDER_BY} characters"));
        None
    } else {
        v.take(Order::parse(&r.order_by))?
    };
    for (field, len) in [
        ("niches", r.niches.len()),
        ("languages", r.languages.len()),
        ("tiers", r.tiers.len()),
        ("statuses", r.statuses.len()),
        ("verdicts", r.verdicts.len()),
    ] {
        v.check(
            len > MAX_FILTER_VALUES,
            field,
            format!("at most {MAX_FILTER_VALUES} values"),
        );
    }
    let platform = match Platform::try_from(r.platform) {
        Ok(Platform::Unspecified) => None,
        Ok(_) => Some(r.platform),
        Err(_) => {
            v.add("platform", format!("unknown platform {}", r.platform));
            None
        }
    };
    let mut niches = Vec::new();
    for (i, n) in r.niches.iter().enumerate().take(MAX_FILTER_VALUES) {
        match check_niche(n) {
            Ok(n) => niches.push(n),
            Err(e) => v.add(format!("niches[{i}]"), e),
        }
    }
    let country_code = Some(r.country_code.trim().to_ascii_uppercase()).filter(|c| !c.is_empty());
    if let Some(c) = &country_code {
        v.check(
            c.len() != 2 || !c.chars().all(|ch| ch.is_ascii_uppercase()),
            "country_code",
            "must be ISO 3166-1 alpha-2",
        );
    }
    for (field, text) in [("region", &r.region), ("city", &r.city)] {
        v.check(
            too_long(text.trim(), MAX_TEXT) || text.chars().any(char::is_control),
            field,
            format!("at most {MAX_TEXT} characters, no control characters"),
        );
    }
    let mut languages = Vec::new();
    for (i, l) in r.languages.iter().enumerate().take(MAX_FILTER_VALUES) {
        match normalize_language(l) {
            Some(l) => languages.push(l),
            None => v.add(format!("languages[{i}]"), LANGUAGE_TAG),
        }
    }
    let mut tier_ranges = Vec::new();
    for (i, t) in r.tiers.iter().enumerate().take(MAX_FILTER_VALUES) {
        match Tier::try_from(*t)
            .ok()
            .filter(|t| *t != Tier::Unspecified)
            .and_then(|t| tiers.range(t))
        {
            Some(range) => tier_ranges.push(range),
            None => v.add(format!("tiers[{i}]"), format!("unknown or unspecified tier {t}")),
        }
    }
    for (field, value) in [("min_followers", r.min_followers), ("max_followers", r.max_followers)] {
        v.check(value.is_some_and(|x| x < 0), field, "must not be negative");
    }
    if let (Some(lo), Some(hi)) = (r.min_followers, r.max_followers) {
        v.check(lo > hi, "max_followers", "must not be less than min_followers");
    }
    for (field, value) in [
        ("min_engagement_rate", r.min_engagement_rate),
        ("max_engagement_rate", r.max_engagement_rate),
    ] {
        v.check(
            value.is_some_and(|x| !x.is_finite() || x < 0.0),
            field,
            "must be a fraction of at least 0",
        );
    }
    if let (Some(lo), Some(hi)) = (r.min_engagement_rate, r.max_engagement_rate) {
        v.check(
            lo > hi,
            "max_engagement_rate",
            "must not be less than min_engagement_rate",
        );
    }
    for (i, s) in r.statuses.iter().enumerate().take(MAX_FILTER_VALUES) {
        v.check(
            InfluencerStatus::try_from(*s).map_or(true, |s| s == InfluencerStatus::Unspecified),
            format!("statuses[{i}]"),
            format!("unknown or unspecified status {s}"),
        );
    }
    v.check(
        r.min_quality_score.is_some_and(|x| !(0.0..=100.0).contains(&x)),
        "min_quality_score",
        "must be between 0 and 100",
    );
    for (i, s) in r.verdicts.iter().enumerate().take(MAX_FILTER_VALUES) {
        v.check(
            Verdict::try_from(*s).map_or(true, |s| s == Verdict::Unspecified),
            format!("verdicts[{i}]"),
            format!("unknown or unspecified verdict {s}"),
        );
    }
    v.finish()?;
    Ok(ListQuery {
        platform,
        niches,
        country_code,
        region: Some(r.region.trim().to_owned()).filter(|s| !s.is_empty()),
        city: Some(r.city.trim().to_owned()).filter(|s| !s.is_empty()),
        languages,
        tier_ranges,
        min_followers: r.min_followers,
        max_followers: r.max_followers,
        min_engagement_rate: r.min_engagement_rate,
        max_engagement_rate: r.max_engagement_rate,
        statuses: r.statuses.clone(),
        min_quality_score: r.min_quality_score,
        verdicts: r.verdicts.clone(),
        order: order.unwrap_or(Order {
            key: crate::store::OrderKey::CreateTime,
            descending: false,
        }),
    })
}

/// BatchGetInfluencers' names as ids: 1..MAX_BATCH_GET of them, each `influencers/{id}`.
pub fn batch_ids(names: &[String]) -> Result<Vec<String>, Error> {
    let mut v = Violations::new();
    v.check(names.is_empty(), "names", "at least one name");
    v.check(
        names.len() > MAX_BATCH_GET,
        "names",
        format!("at most {MAX_BATCH_GET} names"),
    );
    let mut ids = Vec::with_capacity(names.len().min(MAX_BATCH_GET));
    for (i, n) in names.iter().enumerate().take(MAX_BATCH_GET) {
        match parse_name(n, &format!("names[{i}]")) {
            Ok(name) => ids.push(name.id().to_owned()),
            Err(e) => v.absorb("", Err(e))?,
        }
    }
    v.finish()?;
    Ok(ids)
}

type ImportStream = Pin<Box<dyn Stream<Item = Result<ImportInfluencersResponse, Status>> + Send>>;
type ExportStream = Pin<Box<dyn Stream<Item = Result<ExportInfluencersResponse, Status>> + Send>>;

#[tonic::async_trait]
impl RegistryService for Registry {
    async fn create_influencer(
        &self,
        request: Request<CreateInfluencerRequest>,
    ) -> Result<Response<CreateInfluencerResponse>, Status> {
        let view = View::catalogue(Caller::of(&request)?).unwrap_or(View::Catalogue { contacts: false });
        let store = self.store.clone();
        let stored = self
            .keys
            .serve(
                request,
                CURATE,
                "CreateInfluencer",
                |r| &r.request_id,
                |_, r, claim| async move {
                    let influencer = r
                        .influencer
                        .ok_or_else(|| Error::invalid_field("influencer", "required"))?;
                    let inf = normalize(influencer).map_err(|e| e.nest("influencer"))?;
                    let mut results = store.write(vec![inf], WriteMode::Create, &claim).await?;
                    let (_, stored) = results
                        .pop()
                        .unwrap_or_else(|| Err(Error::new(ErrorCode::Internal, "no result")))?;
                    Ok(stored)
                },
            )
            .await?;
        Ok(Response::new(CreateInfluencerResponse {
            influencer: Some(view.show(stored)),
        }))
    }

    async fn get_influencer(
        &self,
        request: Request<GetInfluencerRequest>,
    ) -> Result<Response<GetInfluencerResponse>, Status> {
        let id = parse_name(&request.get_ref().name, "name")?.id().to_owned();
        let view = View::of(Caller::of(&request)?, &id)?;
        let found = self.store.get(std::slice::from_ref(&id)).await?.pop();
        let inf = found.ok_or_else(|| Error::not_found(format!("influencers/{id}")))?;
        Ok(Response::new(GetInfluencerResponse {
            influencer: Some(view.show(inf)),
        }))
    }

    async fn batch_get_influencers(
        &self,
        request: Request<BatchGetInfluencersRequest>,
    ) -> Result<Response<BatchGetInfluencersResponse>, Status> {
        let view = View::catalogue(Caller::of(&request)?)?;
        let names = &request.get_ref().names;
        let ids = batch_ids(names)?;
        let found = self.store.get(&ids).await?;
        if found.len() != ids.len() {
            let have: std::collections::HashSet<&str> = found.iter().map(|i| i.name.as_str()).collect();
            if let Some(missing) = names.iter().find(|n| !have.contains(n.as_str())) {
                return Err(Error::not_found(missing).into());
            }
        }
        Ok(Response::new(BatchGetInfluencersResponse {
            influencers: found.into_iter().map(|i| view.show(i)).collect(),
        }))
    }

    async fn update_influencer(
        &self,
        request: Request<UpdateInfluencerRequest>,
    ) -> Result<Response<UpdateInfluencerResponse>, Status> {
        let caller = Caller::of(&request)?.clone();
        let r = request.get_ref();
        let patch = r
            .influencer
            .clone()
            .ok_or_else(|| Error::invalid_field("influencer", "required"))?;
        let id = parse_name(&patch.name, "influencer.name")?.id().to_owned();
        // Who may change what is decided before the request id is taken: a refusal is not an
        // answer to keep.
        let given = r.update_mask.as_ref().map(|m| m.paths.as_slice()).unwrap_or_default();
        let paths: Vec<String> = update_paths(&caller, &id, given)?
            .into_iter()
            .map(str::to_owned)
            .collect();
        let view = View::of(&caller, &id).unwrap_or(View::Catalogue { contacts: false });
        let key = key_of(&request, &r.request_id);
        let store = self.store.clone();
        let stored = self
            .keys
            .once(
                &caller,
                "UpdateInfluencer",
                &key,
                request.get_ref(),
                move |claim| async move {
                    // The fields outside the mask are kept as stored, so read them from the
                    // database: a cached copy may miss another replica's write whose event has not
                    // arrived yet.
                    store.evict(&id);
                    let mut current = store
                        .get(std::slice::from_ref(&id))
                        .await?
                        .pop()
                        .ok_or_else(|| Error::not_found(format!("influencers/{id}")))?;
                    apply_mask(&mut current, patch, &paths)?;
                    let inf = normalize(current).map_err(|e| e.nest("influencer"))?;
                    let mut results = store.write(vec![inf], WriteMode::Replace(id), &claim).await?;
                    let (_, stored) = results
                        .pop()
                        .unwrap_or_else(|| Err(Error::new(ErrorCode::Internal, "no result")))?;
                    Ok(stored)
                },
            )
            .await?;
        Ok(Response::new(UpdateInfluencerResponse {
            influencer: Some(view.show(stored)),
        }))
    }

    async fn delete_influencer(
        &self,
        request: Request<DeleteInfluencerRequest>,
    ) -> Result<Response<DeleteInfluencerResponse>, Status> {
        let store = self.store.clone();
        let answer = self
            .keys
            .serve(
                request,
                ADMIN,
                "DeleteInfluencer",
                |r| &r.request_id,
                |_, r, claim| async move {
                    let name = parse_name(&r.name, "name")?;
                    if !store.delete(name.id(), &claim).await? {
                        return Err(Error::not_found(&r.name));
                    }
                    Ok(DeleteInfluencerResponse {})
                },
            )
            .await?;
        Ok(Response::new(answer))
    }

    async fn list_influencers(
        &self,
        request: Request<ListInfluencersRequest>,
    ) -> Result<Response<ListInfluencersResponse>, Status> {
        let view = View::catalogue(Caller::of(&request)?)?;
        let r = request.get_ref();
        let mut v = Violations::new();
        let size = v.take(paging::page_size(r.page_size, 50, MAX_PAGE))?;
        let query = v.take(list_query(r, self.store.tiers()))?;
        v.finish()?;
        let (Some(size), Some(query)) = (size, query) else {
            return Err(Error::new(ErrorCode::Internal, "checked above").into());
        };
        let fingerprint = paging::fingerprint(&query);
        let after: Option<Cursor> = paging::decode(&r.page_token, fingerprint)?;
        if after.as_ref().is_some_and(|c| !c.fits(query.order.key)) {
            return Err(Error::invalid_field("page_token", "malformed or from another query").into());
        }
        let (influencers, next) = self.store.list(&query, size, after.as_ref()).await?;
        let next_page_token = next.map(|c| paging::encode(fingerprint, &c)).unwrap_or_default();
        Ok(Response::new(ListInfluencersResponse {
            influencers: influencers.into_iter().map(|i| view.show(i)).collect(),
            next_page_token,
        }))
    }

    type ImportInfluencersStream = ImportStream;

    async fn import_influencers(
        &self,
        request: Request<Streaming<ImportInfluencersRequest>>,
    ) -> Result<Response<Self::ImportInfluencersStream>, Status> {
        authorize(&request, CURATE)?;
        let deadline = chorus_kit::server::deadline(&request);
        let input = request.into_inner();
        let store = self.store.clone();
        let (tx, rx) = tokio::sync::mpsc::channel(IMPORT_PIPELINE);
        // The stream is served by its own task, still inside the call's span (and trace).
        let span = tracing::Span::current();
        tokio::spawn(tracing::Instrument::instrument(
            async move {
                // The caller's deadline covers the whole stream, not just its start.
                match deadline {
                    Some(at) => {
                        let tx_late = tx.clone();
                        if tokio::time::timeout_at(at, import_stream(store, input, tx))
                            .await
                            .is_err()
                        {
                            let _ = tx_late.send(Err(Status::deadline_exceeded("deadline exceeded"))).await;
                        }
                    }
                    None => import_stream(store, input, tx).await,
                }
            },
            span,
        ));
        Ok(Response::new(Box::pin(tokio_stream::wrappers::ReceiverStream::new(rx))))
    }

    async fn record_metrics(
        &self,
        request: Request<Streaming<RecordMetricsRequest>>,
    ) -> Result<Response<RecordMetricsResponse>, Status> {
        authorize(&request, WRITE)?;
        let mut input = request.into_inner();
        let mut next_row: i64 = 0;
        let mut reply = RecordMetricsResponse::default();
        while let Some(message) = input.next().await {
            let snapshots = message?.snapshots;
            if snapshots.len() > MAX_ROWS_PER_MESSAGE {
                return Err(
                    Error::invalid_field("snapshots", format!("at most {MAX_ROWS_PER_MESSAGE} per message")).into(),
                );
            }
            let now = self.store.now_micros();
            let mut valid = Vec::with_capacity(snapshots.len());
            let mut rows = Vec::with_capacity(snapshots.len());
            for s in snapshots {
                let row = next_row;
                next_row += 1;
                match normalize_snapshot(s, now) {
                    Ok(s) => {
                        valid.push(s);
                        rows.push(row);
                    }
                    Err(e) => reply.errors.push(RowError {
                        row,
                        error: Some(rpc_status(e)),
                    }),
                }
            }
            for (row, result) in rows.into_iter().zip(self.store.record_metrics(valid).await?) {
                match result {
                    Ok(()) => reply.recorded_count += 1,
                    Err(e) => reply.errors.push(RowError {
                        row,
                        error: Some(rpc_status(e)),
                    }),
                }
            }
        }
        reply.errors.sort_by_key(|e| e.row);
        Ok(Response::new(reply))
    }

    type ExportInfluencersStream = ExportStream;

    async fn export_influencers(
        &self,
        request: Request<ExportInfluencersRequest>,
    ) -> Result<Response<Self::ExportInfluencersStream>, Status> {
        let view = View::catalogue(Caller::of(&request)?)?;
        let size = paging::page_size(request.get_ref().page_size, 500, MAX_PAGE)?;
        let store = self.store.clone();
        // Pages are read as the client takes them: a slow reader holds at most two in memory.
        let (tx, rx) = tokio::sync::mpsc::channel(2);
        tokio::spawn(async move {
            let mut after = String::new();
            loop {
                let influencers = match store.export_page(&after, size).await {
                    Ok(page) => page,
                    Err(e) => {
                        let _ = tx.send(Err(Status::from(e))).await;
                        return;
                    }
                };
                let Some(last) = influencers.last() else { return };
                after = id_of(&last.name).unwrap_or_default().to_owned();
                let full = influencers.len() == size;
                let influencers = influencers.into_iter().map(|i| view.show(i)).collect();
                if tx.send(Ok(ExportInfluencersResponse { influencers })).await.is_err() || !full {
                    return;
                }
            }
        });
        let pages = futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|page| (page, rx)) });
        Ok(Response::new(Box::pin(pages)))
    }

    async fn list_metrics_snapshots(
        &self,
        request: Request<ListMetricsSnapshotsRequest>,
    ) -> Result<Response<ListMetricsSnapshotsResponse>, Status> {
        authorize(&request, READ)?;
        let r = request.get_ref();
        let mut v = Violations::new();
        let id = v.take(parse_name(&r.parent, "parent"))?;
        let size = v.take(paging::page_size(r.page_size, 100, MAX_PAGE))?;
        let account = optional_account(r.platform, &r.handle, &mut v);
        v.finish()?;
        let (Some(id), Some(size)) = (id, size) else {
            return Err(Error::new(ErrorCode::Internal, "checked above").into());
        };
        let id = id.id();
        let fingerprint = paging::fingerprint(&(id, &account));
        let after: Option<(i64, String)> = paging::decode(&r.page_token, fingerprint)?;
        if !self.store.exists(id).await? {
            return Err(Error::not_found(&r.parent).into());
        }
        let mut rows = self
            .store
            .snapshots(id, account.as_ref(), size + 1, after.as_ref())
            .await?;
        let more = rows.len() > size;
        rows.truncate(size);
        let next_page_token = if more {
            rows.last()
                .map(|(_, c)| paging::encode(fingerprint, c))
                .unwrap_or_default()
        } else {
            String::new()
        };
        Ok(Response::new(ListMetricsSnapshotsResponse {
            snapshots: rows.into_iter().map(|(s, _)| s).collect(),
            next_page_token,
        }))
    }
}

type Reply = Result<ImportInfluencersResponse, Status>;

/// Serves one ImportInfluencers stream. Up to IMPORT_PIPELINE messages are stored at once,
/// but a message that shares an account with one still in flight waits for it, so rows about
/// the same account apply in stream order; replies leave in stream order.
async fn import_stream(
    store: Store,
    mut input: Streaming<ImportInfluencersRequest>,
    tx: tokio::sync::mpsc::Sender<Reply>,
) {
    type InFlight = (HashSet<AccountKey>, tokio::task::JoinHandle<Reply>);
    let mut in_flight: VecDeque<InFlight> = VecDeque::new();
    let mut next_row: i64 = 0;

    /// Sends the oldest batch's reply; false when the stream is over.
    async fn finish_oldest(in_flight: &mut VecDeque<InFlight>, tx: &tokio::sync::mpsc::Sender<Reply>) -> bool {
        let Some((_, handle)) = in_flight.pop_front() else {
            return true;
        };
        let reply = handle
            .await
            .unwrap_or_else(|e| Err(Error::internal("import batch", e).into()));
        let failed = reply.is_err();
        tx.send(reply).await.is_ok() && !failed
    }

    loop {
        while in_flight.front().is_some_and(|(_, h)| h.is_finished()) || in_flight.len() >= IMPORT_PIPELINE {
            if !finish_oldest(&mut in_flight, &tx).await {
                return;
            }
        }
        let message = match input.next().await {
            None => break,
            Some(Ok(m)) => m,
            Some(Err(status)) => {
                while !in_flight.is_empty() {
                    if !finish_oldest(&mut in_flight, &tx).await {
                        return;
                    }
                }
                let _ = tx.send(Err(status)).await;
                return;
            }
        };
        let keys: HashSet<AccountKey> = message
            .influencers
            .iter()
            .flat_map(|i| &i.accounts)
            .filter_map(|a| {
                normalize_handle(&a.handle).ok().map(|handle| AccountKey {
                    platform: a.platform,
                    handle,
                })
            })
            .collect();
        while in_flight.iter().any(|(k, _)| !k.is_disjoint(&keys)) {
            if !finish_oldest(&mut in_flight, &tx).await {
                return;
            }
        }
        let first = next_row;
        next_row += message.influencers.len() as i64;
        let store = store.clone();
        let batch = tokio::spawn(tracing::Instrument::instrument(
            async move { import_batch(&store, message.influencers, first).await },
            tracing::Span::current(),
        ));
        in_flight.push_back((keys, batch));
    }
    while !in_flight.is_empty() {
        if !finish_oldest(&mut in_flight, &tx).await {
            return;
        }
    }
}

/// One ImportInfluencers message: every row checked, the good ones written together.
async fn import_batch(store: &Store, rows: Vec<Influencer>, first: i64) -> Result<ImportInfluencersResponse, Status> {
    if rows.len() > MAX_ROWS_PER_MESSAGE {
        return Err(Error::invalid_field(
            "influencers",
            format!("at most {MAX_ROWS_PER_MESSAGE} rows per message"),
        )
        .into());
    }
    let mut results: Vec<ImportResult> = (0..rows.len() as i64)
        .map(|i| ImportResult {
            row: first + i,
            outcome: ImportOutcome::Failed as i32,
            name: String::new(),
            error: None,
        })
        .collect();
    let mut valid = Vec::with_capacity(rows.len());
    let mut valid_rows = Vec::with_capacity(rows.len());
    for (i, inf) in rows.into_iter().enumerate() {
        match normalize(inf) {
            Ok(n) => {
                valid.push(n);
                valid_rows.push(i);
            }
            Err(e) => results[i].error = Some(rpc_status(e)),
        }
    }
    for (i, written) in valid_rows
        .into_iter()
        .zip(store.write(valid, WriteMode::Upsert, &Claim::none()).await?)
    {
        match written {
            Ok((outcome, inf)) => {
                results[i].outcome = if outcome == Outcome::Created {
                    ImportOutcome::Created
                } else {
                    ImportOutcome::Updated
                } as i32;
                results[i].name = inf.name;
            }
            Err(e) => results[i].error = Some(rpc_status(e)),
        }
    }
    Ok(ImportInfluencersResponse { results })
}
