//! Every bound on matching's input, in one place. Each is quoted in the proto comment of the
//! field it bounds (matching.proto), and the validators enforce exactly these: a string's length
//! counts characters (Unicode scalar values), a list's its entries. A list over its bound is one
//! violation on the list; only its first entries are checked one by one, so neither the work
//! nor the error grows with what a caller sends.

pub use chorus_kit::error::too_long;

/// Display names, shortlist names, regions, cities: at most 200 characters.
pub const MAX_TEXT: usize = 200;
/// A segment's label, carried forward to contracts and measurement.
pub const MAX_SEGMENT_LABEL: usize = 100;
/// A BCP 47 tag: RFC 5646 asks implementations to take at least 35 characters.
pub const MAX_LANGUAGE_TAG: usize = 35;
/// A niche id of the taxonomy (docs/niches.md), or an exclusivity category.
pub const MAX_SLUG: usize = 64;

/// Lists in a brief.
pub const MAX_NICHES: usize = 20;
pub const MAX_LOCATIONS: usize = 100;
pub const MAX_LANGUAGES: usize = 20;
/// Enum lists (tiers, compensation kinds, age buckets, statuses): more than every value.
pub const MAX_ENUM_VALUES: usize = 10;
pub const MAX_DELIVERABLES: usize = 20;
pub const MAX_EXCLUDED_INFLUENCERS: usize = 10_000;
pub const MAX_EXCLUSIVITY_CATEGORIES: usize = 20;
pub const MAX_SEGMENTS: usize = 50;
pub const MAX_AUDIENCE_COUNTRIES: usize = 50;

/// Largest headcount one campaign may ask for.
pub const MAX_HEADCOUNT: i32 = 10_000;
/// Largest count of one deliverable per influencer.
pub const MAX_DELIVERABLE_COUNT: i32 = 50;
/// Largest relative niche weight.
pub const MAX_NICHE_WEIGHT: f64 = 100.0;
/// Largest budget in minor units: ten trillion dollars' worth of cents, far above any
/// campaign and far below where sums of costs could overflow.
pub const MAX_BUDGET_MINOR: i64 = 1_000_000_000_000_000;

/// Paths in UpdateCampaign's update_mask: one per updatable field (`kit::fieldmask` refuses more,
/// and a repeated path).
pub const MAX_MASK_PATHS: usize = 21;
/// Page size of ListCampaigns and ListShortlists.
pub const MAX_PAGE: usize = 1_000;
/// Page size of MatchInfluencers.
pub const MAX_MATCH: usize = 5_000;
/// Candidates one SelectInfluencers considers.
pub const MAX_SELECT_CANDIDATES: usize = 100_000;
/// Members of one shortlist, and decisions in one DecideShortlistMembers.
pub const MAX_SHORTLIST: usize = 10_000;
