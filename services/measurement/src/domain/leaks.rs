//! When a promo code looks leaked: redeemed far beyond what its influencer's audience could
//! plausibly have done, or mostly by buyers outside the audience's country. The thresholds
//! live here and nowhere else.
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
//! The first rule: all three hold. The second, on its own: the campaign names its audience's
//! country, at least [`MIN_LOCATED`] (10) of the redemptions have a known country (the
//! order's shipping, else billing, address), and more than [`OUTSIDE_SHARE`] (half) of those
//! are from elsewhere. A nano's audience is local (that is why brands send them by city), so
//! most orders from abroad mean the code travelled beyond it; orders without a country are
//! left out of the share rather than counted either way.

/// Redemptions below this are never a leak.
pub const MIN_REDEMPTIONS: i64 = 25;
/// Redemptions must exceed this many times the clicks.
pub const CLICK_RATIO: i64 = 3;
/// Redemptions must exceed this share of the reach (when a reach is known).
pub const REACH_SHARE: f64 = 0.05;

/// Redemptions with a known country below this never make the country rule.
pub const MIN_LOCATED: i64 = 10;
/// The country rule: more than this share of the located redemptions outside the audience's
/// country.
pub const OUTSIDE_SHARE: f64 = 0.5;

/// What a code's redemptions are compared with.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Evidence {
    pub redemptions: i64,
    /// Human clicks on the influencer's links in the campaign (bots left out).
    pub clicks: i64,
    /// Summed reach of the newest snapshot of each of the influencer's posts in the
    /// campaign; 0 when none reported it.
    pub reach: i64,
    /// The campaign's audience country (ISO 3166-1 alpha-2); '' when it names none.
    pub audience_country: String,
    /// Redemptions whose order had a country.
    pub located: i64,
    /// Of those, the ones outside the audience's country.
    pub outside: i64,
}

impl Evidence {
    /// The share of located redemptions outside the audience's country, 0..1; 0 when the
    /// campaign names no country or no redemption has one.
    pub fn outside_share(&self) -> f64 {
        if self.audience_country.is_empty() || self.located <= 0 {
            return 0.0;
        }
        self.outside as f64 / self.located as f64
    }

    fn beyond_the_audience(&self) -> bool {
        self.redemptions > CLICK_RATIO.saturating_mul(self.clicks.max(0))
            && (self.reach <= 0 || self.redemptions as f64 > REACH_SHARE * self.reach as f64)
    }

    fn mostly_abroad(&self) -> bool {
        !self.audience_country.is_empty() && self.located >= MIN_LOCATED && self.outside_share() > OUTSIDE_SHARE
    }
}

/// Whether the code looks leaked.
pub fn suspected(e: &Evidence) -> bool {
    e.redemptions >= MIN_REDEMPTIONS && (e.beyond_the_audience() || e.mostly_abroad())
}

/// The evidence in words: "212 redemptions against 40 clicks and a reach of 900", and when the
/// campaign names its audience's country and orders had one, "; 24 of 28 with a known country
/// (86%) outside US".
pub fn sentence(e: &Evidence) -> String {
    let reach = if e.reach > 0 {
        format!("a reach of {}", e.reach)
    } else {
        "no reach reported yet".to_owned()
    };
    let mut s = format!(
        "{} redemption{} against {} click{} and {reach}",
        e.redemptions,
        if e.redemptions == 1 { "" } else { "s" },
        e.clicks,
        if e.clicks == 1 { "" } else { "s" },
    );
    if !e.audience_country.is_empty() && e.located > 0 {
        s.push_str(&format!(
            "; {} of {} with a known country ({:.0}%) outside {}",
            e.outside,
            e.located,
            100.0 * e.outside_share(),
            e.audience_country
        ));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(redemptions: i64, clicks: i64, reach: i64) -> Evidence {
        Evidence {
            redemptions,
            clicks,
            reach,
            ..Evidence::default()
        }
    }

    fn abroad(redemptions: i64, located: i64, outside: i64) -> Evidence {
        Evidence {
            audience_country: "US".into(),
            located,
            outside,
            // Many clicks: the first rule does not hold.
            ..ev(redemptions, 1_000, 0)
        }
    }

    #[test]
    fn a_few_redemptions_are_never_a_leak() {
        assert!(!suspected(&ev(MIN_REDEMPTIONS - 1, 0, 0)));
        assert!(!suspected(&ev(3, 0, 10)));
        assert!(suspected(&ev(MIN_REDEMPTIONS, 0, 0)));
    }

    #[test]
    fn redemptions_must_be_far_above_clicks() {
        assert!(!suspected(&ev(30, 10, 0)), "exactly 3x is not more than 3x");
        assert!(suspected(&ev(31, 10, 0)));
        assert!(!suspected(&ev(30, 500, 0)), "many clicks explain the orders");
    }

    #[test]
    fn and_above_a_share_of_reach_when_there_is_one() {
        // 5% of 1000 is 50.
        assert!(!suspected(&ev(50, 5, 1_000)));
        assert!(suspected(&ev(51, 5, 1_000)));
        assert!(!suspected(&ev(212, 40, 1_000_000)), "a big audience explains them");
        assert!(suspected(&ev(212, 40, 900)));
    }

    #[test]
    fn or_mostly_outside_the_audience_country() {
        assert!(suspected(&abroad(30, 20, 11)), "11 of 20 is more than half");
        assert!(!suspected(&abroad(30, 20, 10)), "exactly half is not mostly");
        assert!(
            !suspected(&abroad(30, MIN_LOCATED - 1, MIN_LOCATED - 1)),
            "too few orders had a country"
        );
        assert!(!suspected(&abroad(MIN_REDEMPTIONS - 1, 24, 24)), "too few redemptions");
        let no_country = Evidence {
            audience_country: String::new(),
            ..abroad(30, 20, 20)
        };
        assert!(!suspected(&no_country), "a campaign without an audience country");
        assert_eq!(no_country.outside_share(), 0.0);
        assert_eq!(abroad(30, 20, 15).outside_share(), 0.75);
    }

    #[test]
    fn the_evidence_reads_as_a_sentence() {
        assert_eq!(
            sentence(&abroad(30, 28, 24)),
            "30 redemptions against 1000 clicks and no reach reported yet; 24 of 28 with a known country (86%) outside US"
        );
        assert_eq!(
            sentence(&ev(212, 40, 900)),
            "212 redemptions against 40 clicks and a reach of 900"
        );
        assert_eq!(
            sentence(&ev(30, 1, 0)),
            "30 redemptions against 1 click and no reach reported yet"
        );
    }
}
