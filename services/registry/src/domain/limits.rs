//! Every bound on the registry's input, in one place. Each is quoted in the proto comment of the
//! field it bounds (registry.proto, vetting.proto), and the validators enforce exactly these: a
//! string's length counts characters (Unicode scalar values), a list's its entries. A list over
//! its bound is one violation on the list; only its first entries are checked one by one, so
//! neither the work nor the error grows with what a caller sends.

pub use chorus_kit::error::too_long;

/// Display names, regions, cities: 1..200 characters.
pub const MAX_TEXT: usize = 200;
/// A social handle, without the "@".
pub const MAX_HANDLE: usize = 100;
/// A social account's URL.
pub const MAX_URL: usize = 2_048;
/// RFC 5321's longest address.
pub const MAX_EMAIL: usize = 254;
pub const MAX_PHONE: usize = 32;
/// A BCP 47 tag: RFC 5646 asks implementations to take at least 35 characters.
pub const MAX_LANGUAGE_TAG: usize = 35;
/// A niche id of the taxonomy (docs/niches.md); the longest is far shorter.
pub const MAX_NICHE_ID: usize = 64;

/// Lists in a profile.
pub const MAX_ACCOUNTS: usize = 20;
pub const MAX_NICHES: usize = 10;
pub const MAX_LANGUAGES: usize = 10;
/// One per age bucket.
pub const MAX_AGE_BUCKETS: usize = 6;
pub const MAX_TOP_COUNTRIES: usize = 50;
/// One entry per deliverable kind; room for kinds to come.
pub const MAX_RATE_CARD: usize = 20;
pub const MAX_COMPENSATION_KINDS: usize = 10;

/// Paths in UpdateInfluencer's update_mask: one per updatable field (`kit::fieldmask` refuses more,
/// and a repeated path).
pub const MAX_MASK_PATHS: usize = 11;
/// Values in each list filter of ListInfluencers.
pub const MAX_FILTER_VALUES: usize = 50;
/// ListInfluencers' order_by.
pub const MAX_ORDER_BY: usize = 100;
/// Names in one BatchGetInfluencers.
pub const MAX_BATCH_GET: usize = 1_000;
/// Rows in one ImportInfluencers or RecordMetrics message.
pub const MAX_ROWS_PER_MESSAGE: usize = 5_000;
/// Page sizes of ListInfluencers, ListMetricsSnapshots and ExportInfluencers.
pub const MAX_PAGE: usize = 1_000;
/// Page size of ListVettingReports.
pub const MAX_REPORT_PAGE: usize = 100;

/// Accounts in one ClassifyAccounts request.
pub const MAX_CLASSIFY: usize = 10_000;
/// A comment's length (Instagram's own limit).
pub const MAX_COMMENT_CHARS: usize = 2_200;
/// A follower row's own label, echoed back.
pub const MAX_FOLLOWER_KEY: usize = 200;
/// Default bounds of one sample (configurable: `CHORUS_VETTING_MAX_AUDIENCE_SAMPLE`,
/// `CHORUS_VETTING_MAX_COMMENT_SAMPLE`).
pub const DEFAULT_MAX_AUDIENCE_SAMPLE: usize = 20_000;
pub const DEFAULT_MAX_COMMENT_SAMPLE: usize = 2_000;
