//! The bounds of every request field, in one place (the proto comments say the same).

pub use chorus_kit::error::too_long;

/// Influencers offered in one CreateOffers call.
pub const MAX_TARGETS: usize = 10_000;
pub const MAX_SEGMENT: usize = 100;
pub const MAX_REASON: usize = 1_000;
pub const MAX_NAME: usize = 200;
pub const MAX_BRAND_NAMES: usize = 20;
pub const MAX_BRAND_NAME: usize = 100;
pub const DEFAULT_OFFER_VALID_DAYS: i32 = 14;
pub const MAX_OFFER_VALID_DAYS: i32 = 60;
pub const MAX_URL: usize = 2_000;
pub const MAX_CAPTION: usize = 10_000;
pub const MAX_FRAMES: usize = 50;
pub const MAX_FRAME_TEXT: usize = 2_000;
pub const MAX_IP: usize = 100;
pub const MAX_USER_AGENT: usize = 500;
pub const DEFAULT_PAGE: usize = 100;
pub const MAX_PAGE: usize = 1_000;
