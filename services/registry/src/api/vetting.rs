//! The VettingService handlers: reports, samples and the follower classifier. The scoring
//! lives in `domain::vetting`, storage in `store::vetting`.

use chorus_kit::auth::Caller;
use chorus_kit::idempotency::{self, Idempotency, check_key};
use chorus_kit::{Error, ErrorCode, Violations, paging};
use chorus_proto::registry::vetting_service_server::VettingService;
use chorus_proto::registry::*;
use futures::StreamExt;
use tonic::{Request, Response, Status, Streaming};

use super::{READ, WRITE, account, authorize, optional_account, parse_name};
use crate::domain::influencer::AccountKey;
use crate::domain::limits::{
    DEFAULT_MAX_AUDIENCE_SAMPLE, DEFAULT_MAX_COMMENT_SAMPLE, MAX_FOLLOWER_KEY, MAX_REPORT_PAGE, too_long,
};
use crate::domain::vetting::classifier::{Features, Model, Prior};
use crate::domain::vetting::comments;
use crate::domain::vetting::explain::classify;
use crate::domain::vetting::report::{AudienceSummary, MIN_AUDIENCE_SAMPLE};
use crate::store::{Sample, Store};

pub use crate::domain::limits::{MAX_CLASSIFY, MAX_COMMENT_CHARS};
/// Most violations reported for one sample; the first ones are enough to fix a file.
const MAX_REPORTED_VIOLATIONS: usize = 50;

/// How large samples may be (`CHORUS_VETTING_MAX_AUDIENCE_SAMPLE`,
/// `CHORUS_VETTING_MAX_COMMENT_SAMPLE`). A sample over the bound is refused, never truncated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SampleLimits {
    pub max_audience: usize,
    pub max_comments: usize,
}

impl Default for SampleLimits {
    fn default() -> Self {
        SampleLimits {
            max_audience: DEFAULT_MAX_AUDIENCE_SAMPLE,
            max_comments: DEFAULT_MAX_COMMENT_SAMPLE,
        }
    }
}

/// The vetting gRPC service.
#[derive(Debug, Clone)]
pub struct Vetting {
    store: Store,
    limits: SampleLimits,
    keys: Idempotency,
}

impl Vetting {
    pub fn new(store: Store, limits: SampleLimits, keys: Idempotency) -> Self {
        Vetting { store, limits, keys }
    }
}

/// A follower row's features, every one present and in range, or violations under `at`
/// (e.g. `followers[12]`).
pub fn features(a: &FollowerAccount, at: &str, v: &mut Violations) -> Option<Features> {
    let before = v.len();
    v.check(
        too_long(&a.key, MAX_FOLLOWER_KEY),
        format!("{at}.key"),
        format!("at most {MAX_FOLLOWER_KEY} characters"),
    );
    let mut count = |name: &str, value: Option<i64>, max: i64| -> u64 {
        match value {
            None => v.add(format!("{at}.{name}"), "required"),
            Some(x) if !(0..=max).contains(&x) => v.add(format!("{at}.{name}"), format!("must be between 0 and {max}")),
            Some(_) => {}
        }
        value.unwrap_or(0).clamp(0, max) as u64
    };
    let posts = count("posts_count", a.posts_count, 100_000_000);
    let followers = count("followers_count", a.followers_count, 10_000_000_000);
    let following = count("following_count", a.following_count, 100_000_000);
    let mut small = |name: &str, value: Option<i32>, min: i32, max: i32, required: bool| -> Option<u32> {
        match value {
            None if required => v.add(format!("{at}.{name}"), "required"),
            Some(x) if !(min..=max).contains(&x) => {
                v.add(format!("{at}.{name}"), format!("must be between {min} and {max}"))
            }
            _ => {}
        }
        value.map(|x| x.clamp(min, max) as u32)
    };
    let biography_length = small("biography_length", a.biography_length, 0, 10_000, true).unwrap_or(0);
    let username_length = small("username_length", a.username_length, 1, 1_000, true).unwrap_or(1);
    let username_digits = small("username_digit_count", a.username_digit_count, 0, 1_000, true).unwrap_or(0);
    let account_age_days = small("account_age_days", a.account_age_days, 0, 36_500, false);
    if username_digits > username_length {
        v.add(format!("{at}.username_digit_count"), "must not exceed username_length");
    }
    for (name, value) in [
        ("has_profile_picture", a.has_profile_picture),
        ("is_private", a.is_private),
    ] {
        if value.is_none() {
            v.add(format!("{at}.{name}"), "required");
        }
    }
    (v.len() == before).then_some(Features {
        posts,
        followers,
        following,
        has_profile_picture: a.has_profile_picture.unwrap_or(false),
        is_private: a.is_private.unwrap_or(false),
        biography_length,
        username_length,
        username_digits,
        account_age_days,
    })
}

/// A SubmitCommentSample request's account, once the request is checked: 1..`max_comments`
/// comments of at most MAX_COMMENT_CHARS characters each.
pub fn check_comment_sample(r: &SubmitCommentSampleRequest, limits: &SampleLimits) -> Result<AccountKey, Error> {
    let mut v = Violations::new();
    let key = account(r.platform, &r.handle, &mut v);
    v.take(check_key(&r.request_id))?;
    if r.comments.is_empty() {
        v.add("comments", "required: at least one comment");
    } else if r.comments.len() > limits.max_comments {
        v.add(
            "comments",
            format!(
                "the sample has {} comments, over the bound of {} per report (CHORUS_VETTING_MAX_COMMENT_SAMPLE)",
                r.comments.len(),
                limits.max_comments
            ),
        );
    }
    for (i, c) in r.comments.iter().enumerate().take(limits.max_comments) {
        if too_long(c, MAX_COMMENT_CHARS) {
            v.add(
                format!("comments[{i}]"),
                format!("longer than {MAX_COMMENT_CHARS} characters"),
            );
        }
    }
    v.finish()?;
    key.ok_or_else(|| Error::new(ErrorCode::Internal, "checked above"))
}

/// A ClassifyAccounts request checked: the prior it is for (`default` when unset) and every
/// account's features, in order. At most MAX_REPORTED_VIOLATIONS violations are reported.
pub fn check_classify(r: &ClassifyAccountsRequest, default: Prior) -> Result<(Prior, Vec<Features>), Error> {
    let mut v = Violations::new();
    if r.accounts.is_empty() {
        v.add("accounts", "required: at least one account");
    }
    if r.accounts.len() > MAX_CLASSIFY {
        v.add("accounts", format!("at most {MAX_CLASSIFY} per request"));
    }
    let prior = match r.prior.map(Prior::new) {
        None => Some(default),
        Some(Ok(p)) => Some(p),
        Some(Err(_)) => {
            v.add(
                "prior",
                "must be strictly between 0 and 1: the share of fakes expected among the accounts",
            );
            None
        }
    };
    std::mem::take(&mut v).finish()?;
    let prior = prior.ok_or_else(|| Error::new(ErrorCode::Internal, "checked above"))?;
    let mut rows = Vec::with_capacity(r.accounts.len());
    for (i, a) in r.accounts.iter().enumerate() {
        if v.len() >= MAX_REPORTED_VIOLATIONS {
            break;
        }
        if let Some(f) = features(a, &format!("accounts[{i}]"), &mut v) {
            rows.push(f);
        }
    }
    v.finish()?;
    Ok((prior, rows))
}

fn required_account(platform: i32, handle: &str) -> Result<AccountKey, Error> {
    let mut v = Violations::new();
    let key = account(platform, handle, &mut v);
    v.finish()?;
    key.ok_or_else(|| Error::new(ErrorCode::Internal, "checked above"))
}

#[tonic::async_trait]
impl VettingService for Vetting {
    async fn get_vetting_report(
        &self,
        request: Request<GetVettingReportRequest>,
    ) -> Result<Response<GetVettingReportResponse>, Status> {
        authorize(&request, READ)?;
        let r = request.get_ref();
        let key = required_account(r.platform, &r.handle)?;
        match self.store.latest_report(&key).await? {
            Some(report) => Ok(Response::new(GetVettingReportResponse { report: Some(report) })),
            None => Err(Error::not_found(format!(
                "vetting report of {}: the account has no metrics or samples yet",
                key.handle
            ))
            .into()),
        }
    }

    async fn list_vetting_reports(
        &self,
        request: Request<ListVettingReportsRequest>,
    ) -> Result<Response<ListVettingReportsResponse>, Status> {
        authorize(&request, READ)?;
        let r = request.get_ref();
        let mut v = Violations::new();
        let id = v.take(parse_name(&r.parent, "parent"))?;
        let size = v.take(paging::page_size(r.page_size, 20, MAX_REPORT_PAGE))?;
        let account = optional_account(r.platform, &r.handle, &mut v);
        v.finish()?;
        let (Some(id), Some(size)) = (id, size) else {
            return Err(Error::new(ErrorCode::Internal, "checked above").into());
        };
        let id = id.id();
        let fingerprint = paging::fingerprint(&("vetting", id, &account));
        let after: Option<(i64, String)> = paging::decode(&r.page_token, fingerprint)?;
        if !self.store.exists(id).await? {
            return Err(Error::not_found(&r.parent).into());
        }
        let mut rows = self
            .store
            .reports(id, account.as_ref(), size + 1, after.as_ref())
            .await?;
        let more = rows.len() > size;
        rows.truncate(size);
        let next_page_token = match rows.last() {
            Some((_, c)) if more => paging::encode(fingerprint, c),
            _ => String::new(),
        };
        Ok(Response::new(ListVettingReportsResponse {
            reports: rows.into_iter().map(|(r, _)| r).collect(),
            next_page_token,
        }))
    }

    async fn submit_audience_sample(
        &self,
        request: Request<Streaming<SubmitAudienceSampleRequest>>,
    ) -> Result<Response<SubmitAudienceSampleResponse>, Status> {
        let caller = Caller::of(&request)?.clone();
        caller.require(WRITE)?;
        let header_key = idempotency::key_of(&request, "");
        let decision = Model::current().decision(self.store.vetting().fake_prior);
        let mut input = request.into_inner();
        let mut key: Option<AccountKey> = None;
        let mut v = Violations::new();
        let (mut size, mut fake) = (0usize, 0usize);
        // The whole stream, once read, is the request a repeat must match (bounded by the
        // sample limit); the first message's request id (or the header) is its key.
        let mut whole = SubmitAudienceSampleRequest::default();
        while let Some(message) = input.next().await {
            let m = message?;
            match &key {
                None => {
                    check_key(&m.request_id)?;
                    key = Some(required_account(m.platform, &m.handle)?);
                    whole.platform = m.platform;
                    whole.handle = m.handle.clone();
                    whole.request_id = m.request_id.clone();
                }
                Some(k) => {
                    let unset = m.platform == 0 && m.handle.is_empty();
                    let same = m.platform == k.platform
                        && crate::domain::influencer::normalize_handle(&m.handle).is_ok_and(|h| h == k.handle);
                    if !unset && !same {
                        return Err(Error::invalid_field(
                            "handle",
                            "every message must name the first message's account, or none",
                        )
                        .into());
                    }
                }
            }
            if size + m.followers.len() > self.limits.max_audience {
                return Err(Error::invalid_field(
                    "followers",
                    format!(
                        "the sample has more than {} accounts, the bound per report (CHORUS_VETTING_MAX_AUDIENCE_SAMPLE); send a smaller random sample",
                        self.limits.max_audience
                    ),
                )
                .into());
            }
            for a in &m.followers {
                if v.len() < MAX_REPORTED_VIOLATIONS
                    && let Some(f) = features(a, &format!("followers[{size}]"), &mut v)
                    && decision.is_fake(&f)
                {
                    fake += 1;
                }
                size += 1;
            }
            whole.followers.extend(m.followers);
        }
        v.finish()?;
        let Some(key) = key else {
            return Err(Error::invalid_field("platform", "required: the stream was empty").into());
        };
        if size < MIN_AUDIENCE_SAMPLE as usize {
            return Err(Error::invalid_field(
                "followers",
                format!("at least {MIN_AUDIENCE_SAMPLE} accounts are needed for a meaningful share; got {size}"),
            )
            .into());
        }
        let summary = AudienceSummary {
            sample_size: size as u32,
            real: (size - fake) as u32,
            sample_time_micros: self.store.now_micros(),
            prior: decision.prior(),
            rates: decision.rates(),
        };
        let request_id = if whole.request_id.is_empty() {
            header_key
        } else {
            whole.request_id.clone()
        };
        let store = self.store.clone();
        let answer = self
            .keys
            .once(
                &caller,
                "SubmitAudienceSample",
                &request_id,
                &whole,
                move |claim| async move {
                    let respond = |report| SubmitAudienceSampleResponse {
                        report: Some(report),
                        sample_size: size as i64,
                        fake_count: fake as i64,
                    };
                    store
                        .submit_sample(&key, Sample::Audience(summary), &claim, respond)
                        .await
                },
            )
            .await?;
        Ok(Response::new(answer))
    }

    async fn submit_comment_sample(
        &self,
        request: Request<SubmitCommentSampleRequest>,
    ) -> Result<Response<SubmitCommentSampleResponse>, Status> {
        let limits = self.limits;
        let store = self.store.clone();
        let answer = self
            .keys
            .serve(
                request,
                WRITE,
                "SubmitCommentSample",
                |r| &r.request_id,
                move |_, r, claim| async move {
                    let key = check_comment_sample(&r, &limits)?;
                    let (summary, _) = comments::classify(&r.comments);
                    let respond = |report| SubmitCommentSampleResponse { report: Some(report) };
                    store
                        .submit_sample(&key, Sample::Comments(summary), &claim, respond)
                        .await
                },
            )
            .await?;
        Ok(Response::new(answer))
    }

    async fn classify_accounts(
        &self,
        request: Request<ClassifyAccountsRequest>,
    ) -> Result<Response<ClassifyAccountsResponse>, Status> {
        authorize(&request, READ)?;
        let r = request.into_inner();
        let (prior, rows) = check_classify(&r, self.store.vetting().fake_prior)?;
        let model = Model::current();
        let decision = model.decision(prior);
        let out = r
            .accounts
            .into_iter()
            .zip(&rows)
            .map(|(a, f)| classify(model, &decision, a.key, f))
            .collect();
        Ok(Response::new(ClassifyAccountsResponse {
            classifications: out,
            model_version: model.version().to_owned(),
            prior: prior.get(),
        }))
    }
}
