//! When a promo code looks leaked: redeemed far beyond what its influencer's audience could
//! plausibly have done. The thresholds live here and nowhere else.
//!
//! Why these values:
//! - At least [`MIN_REDEMPTIONS`] (25): below that, a code shared among friends or a small
//!   group chat is ordinary and not worth a brand's attention; the ratios below are noise
//!   with so few orders.
//! - More than [`CLICK_RATIO`] (3) times the tracked clicks: many buyers type a code they saw
//!   in a post without clicking, so redemptions above clicks alone are normal; three times
//!   as many is not. A typical click converts at 1 to 5%, so even 3× means most redemptions
//!   came from somewhere other than the influencer's link.
//! - More than [`REACH_SHARE`] (5%) of the reach of the influencer's posts in the campaign:
//!   sales from reach run around 0.1 to 1% for a good post; 5% of everyone who saw the posts
//!   buying with the code is beyond what the audience explains. When no post has reported
//!   its reach yet (`reach == 0`) this test is skipped: a code posted to a coupon site is
//!   often redeemed before the first metrics arrive, and waiting would miss it.
//!
//! All three must hold. The "mostly outside the audience's country" rule needs an order's
//! country, which orders do not carry yet; it is not applied.

/// Redemptions below this are never a leak.
pub const MIN_REDEMPTIONS: i64 = 25;
/// Redemptions must exceed this many times the clicks.
pub const CLICK_RATIO: i64 = 3;
/// Redemptions must exceed this share of the reach (when a reach is known).
pub const REACH_SHARE: f64 = 0.05;

/// What a code's redemptions are compared with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Evidence {
    pub redemptions: i64,
    /// Human clicks on the influencer's links in the campaign (bots left out).
    pub clicks: i64,
    /// Summed reach of the newest snapshot of each of the influencer's posts in the
    /// campaign; 0 when none reported it.
    pub reach: i64,
}

/// Whether the code looks leaked.
pub fn suspected(e: Evidence) -> bool {
    e.redemptions >= MIN_REDEMPTIONS
        && e.redemptions > CLICK_RATIO.saturating_mul(e.clicks.max(0))
        && (e.reach <= 0 || e.redemptions as f64 > REACH_SHARE * e.reach as f64)
}

/// The evidence in words: "212 redemptions against 40 clicks and a reach of 900".
pub fn sentence(e: Evidence) -> String {
    let reach = if e.reach > 0 {
        format!("a reach of {}", e.reach)
    } else {
        "no reach reported yet".to_owned()
    };
    format!(
        "{} redemption{} against {} click{} and {reach}",
        e.redemptions,
        if e.redemptions == 1 { "" } else { "s" },
        e.clicks,
        if e.clicks == 1 { "" } else { "s" },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(redemptions: i64, clicks: i64, reach: i64) -> Evidence {
        Evidence {
            redemptions,
            clicks,
            reach,
        }
    }

    #[test]
    fn a_few_redemptions_are_never_a_leak() {
        assert!(!suspected(ev(MIN_REDEMPTIONS - 1, 0, 0)));
        assert!(!suspected(ev(3, 0, 10)));
        assert!(suspected(ev(MIN_REDEMPTIONS, 0, 0)));
    }

    #[test]
    fn redemptions_must_be_far_above_clicks() {
        assert!(!suspected(ev(30, 10, 0)), "exactly 3x is not more than 3x");
        assert!(suspected(ev(31, 10, 0)));
        assert!(!suspected(ev(30, 500, 0)), "many clicks explain the orders");
    }

    #[test]
    fn and_above_a_share_of_reach_when_there_is_one() {
        // 5% of 1000 is 50.
        assert!(!suspected(ev(50, 5, 1_000)));
        assert!(suspected(ev(51, 5, 1_000)));
        assert!(!suspected(ev(212, 40, 1_000_000)), "a big audience explains them");
        assert!(suspected(ev(212, 40, 900)));
    }

    #[test]
    fn the_evidence_reads_as_a_sentence() {
        assert_eq!(
            sentence(ev(212, 40, 900)),
            "212 redemptions against 40 clicks and a reach of 900"
        );
        assert_eq!(
            sentence(ev(30, 1, 0)),
            "30 redemptions against 1 click and no reach reported yet"
        );
    }
}
