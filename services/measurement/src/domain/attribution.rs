//! Why an order counts for whom. The rule, in order:
//! 1. an order that used an influencer's promo code is theirs (the code names them);
//! 2. else the last tracked, non-bot click the order carries back (`chorus_click` in its
//!    landing URL or note attributes) made no later than the order and within the campaign's
//!    attribution window (default 7 days) credits that click's influencer;
//! 3. else the order counts for the tenant and no influencer.
//!
//! Each decision carries its reason in words, stored with the conversion.

use chorus_kit::clock::{Micros, timestamp};
use chorus_proto::measurement::AttributionMethod;

/// A promo code the order used, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodeHit {
    pub promo_id: String,
    pub code: String,
    pub campaign_id: String,
    pub influencer_id: String,
    pub segment: String,
}

/// A tracked click the order carried back, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClickHit {
    pub click_id: String,
    pub link_id: String,
    pub campaign_id: String,
    pub influencer_id: String,
    pub segment: String,
    pub click_time: Micros,
    pub bot: bool,
    /// The campaign's attribution window.
    pub window: Micros,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub method: AttributionMethod,
    pub campaign_id: String,
    pub influencer_id: String,
    pub segment: String,
    pub promo_id: String,
    pub click_id: String,
    pub link_id: String,
    pub reason: String,
}

impl Decision {
    fn none(reason: String) -> Self {
        Decision {
            method: AttributionMethod::None,
            campaign_id: String::new(),
            influencer_id: String::new(),
            segment: String::new(),
            promo_id: String::new(),
            click_id: String::new(),
            link_id: String::new(),
            reason,
        }
    }
}

/// Decides whom an order placed at `order_time` counts for.
pub fn decide(code: Option<&CodeHit>, clicks: &[ClickHit], order_time: Micros) -> Decision {
    if let Some(c) = code {
        return Decision {
            method: AttributionMethod::PromoCode,
            campaign_id: c.campaign_id.clone(),
            influencer_id: c.influencer_id.clone(),
            segment: c.segment.clone(),
            promo_id: c.promo_id.clone(),
            click_id: String::new(),
            link_id: String::new(),
            reason: format!("promo code {}", c.code),
        };
    }
    let mut why_not = Vec::new();
    let mut best: Option<&ClickHit> = None;
    for c in clicks {
        let age = order_time - c.click_time;
        if c.bot {
            why_not.push(format!("click {} was a bot's", c.click_id));
        } else if age < 0 {
            why_not.push(format!("click {} came after the order", c.click_id));
        } else if age > c.window {
            why_not.push(format!(
                "click {} is {}, past the {} window",
                c.click_id,
                span(age),
                span(c.window)
            ));
        } else if best.is_none_or(|b| c.click_time > b.click_time) {
            best = Some(c);
        }
    }
    match best {
        Some(c) => Decision {
            method: AttributionMethod::Click,
            campaign_id: c.campaign_id.clone(),
            influencer_id: c.influencer_id.clone(),
            segment: c.segment.clone(),
            promo_id: String::new(),
            click_id: c.click_id.clone(),
            link_id: c.link_id.clone(),
            reason: format!(
                "click {} at {}, {} before the order",
                c.click_id,
                rfc3339(c.click_time),
                span(order_time - c.click_time)
            ),
        },
        None if why_not.is_empty() => Decision::none("no promo code of the tenant's and no tracked click".to_owned()),
        None => Decision::none(format!("no promo code; {}", why_not.join("; "))),
    }
}

/// A duration in words: "2 h", "9 days", "45 min".
fn span(micros: Micros) -> String {
    let mins = micros / 60_000_000;
    if mins < 120 {
        format!("{mins} min")
    } else if mins < 48 * 60 {
        format!("{} h", mins / 60)
    } else {
        format!("{} days", mins / (24 * 60))
    }
}

/// `2027-01-15T08:00:00Z`, to the second.
pub fn rfc3339(micros: Micros) -> String {
    let t = timestamp(micros);
    let days = t.seconds.div_euclid(86_400);
    let secs = t.seconds.rem_euclid(86_400);
    let (y, m, d) = civil(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

/// The civil date of a day since 1970-01-01 (Howard Hinnant's algorithm).
fn civil(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOUR: i64 = 3_600_000_000;
    const T: i64 = 1_800_000_000_000_000; // 2027-01-15T08:00:00Z

    fn click(id: &str, who: &str, at: i64, bot: bool) -> ClickHit {
        ClickHit {
            click_id: id.into(),
            link_id: format!("link-{id}"),
            campaign_id: "camp".into(),
            influencer_id: who.into(),
            segment: "austin".into(),
            click_time: at,
            bot,
            window: 168 * HOUR,
        }
    }

    #[test]
    fn a_promo_code_beats_a_click() {
        let code = CodeHit {
            promo_id: "p".into(),
            code: "BEN10".into(),
            campaign_id: "camp".into(),
            influencer_id: "ben".into(),
            segment: "denver".into(),
        };
        let d = decide(Some(&code), &[click("c", "ana", T - HOUR, false)], T);
        assert_eq!(d.method, AttributionMethod::PromoCode);
        assert_eq!(d.influencer_id, "ben");
        assert_eq!(d.reason, "promo code BEN10");
    }

    #[test]
    fn the_last_human_click_within_the_window_counts() {
        let clicks = [
            click("old", "ana", T - 3 * HOUR, false),
            click("new", "ben", T - 2 * HOUR, false),
            click("bot", "cara", T - HOUR, true),
            click("after", "dan", T + HOUR, false),
        ];
        let d = decide(None, &clicks, T);
        assert_eq!((d.method, d.influencer_id.as_str()), (AttributionMethod::Click, "ben"));
        assert_eq!(d.reason, "click new at 2027-01-15T06:00:00Z, 2 h before the order");
    }

    #[test]
    fn a_click_past_the_window_or_a_bots_does_not_count() {
        let d = decide(None, &[click("c", "ana", T - 169 * HOUR, false)], T);
        assert_eq!(d.method, AttributionMethod::None);
        assert_eq!(d.reason, "no promo code; click c is 7 days, past the 7 days window");
        let d = decide(None, &[click("b", "ana", T - HOUR, true)], T);
        assert_eq!(
            (d.method, d.reason.as_str()),
            (AttributionMethod::None, "no promo code; click b was a bot's")
        );
        assert_eq!(decide(None, &[], T).method, AttributionMethod::None);
        // Exactly at the window's end still counts.
        assert_eq!(
            decide(None, &[click("e", "ana", T - 168 * HOUR, false)], T).method,
            AttributionMethod::Click
        );
    }
}
