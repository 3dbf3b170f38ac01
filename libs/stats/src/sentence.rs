//! Every sentence an audience test writes, in one place, so their wording can be read and
//! changed together. Figures are formatted here too: rates as percentages, differences of rates
//! in percentage points, money in major units with the currency code.

use crate::report::Metric;

/// How figures of one metric are written.
#[derive(Debug, Clone)]
pub(crate) struct Style {
    pub(crate) metric: Metric,
    pub(crate) currency: String,
    pub(crate) currency_exponent: u32,
    pub(crate) confidence: f64,
}

impl Style {
    /// A value of the metric: "4.1%" or "USD 12.34".
    pub(crate) fn value(&self, v: f64) -> String {
        if self.metric.is_ratio() {
            format!("{}%", percent(v))
        } else {
            self.money(v)
        }
    }

    /// A difference of the metric: "1.8 points" or "USD 3.10".
    pub(crate) fn difference(&self, d: f64) -> String {
        if self.metric.is_ratio() {
            format!("{} points", percent(d))
        } else {
            self.money(d)
        }
    }

    /// An interval: "0.6-3.0" (points) or "-0.4 to 1.2" when a bound is negative.
    pub(crate) fn interval(&self, low: f64, high: f64) -> String {
        let (l, h) = if self.metric.is_ratio() {
            let decimals = decimals(low.abs().max(high.abs()));
            (percent_with(low, decimals), percent_with(high, decimals))
        } else {
            (self.money(low), self.money(high))
        };
        if low < 0.0 || high < 0.0 || !self.metric.is_ratio() {
            format!("{l} to {h}")
        } else {
            format!("{l}-{h}")
        }
    }

    /// "USD 1,234.56", "USD -67.84".
    fn money(&self, minor: f64) -> String {
        let major = minor / 10f64.powi(self.currency_exponent as i32);
        let digits = format!("{:.*}", self.currency_exponent as usize, major.abs());
        let (whole, fraction) = digits.split_once('.').unwrap_or((&digits, ""));
        let whole = whole.parse::<u64>().map_or_else(|_| whole.to_owned(), count);
        let sign = if major < 0.0 && digits.bytes().any(|b| b.is_ascii_digit() && b != b'0') {
            "-"
        } else {
            ""
        };
        let point = if fraction.is_empty() { "" } else { "." };
        format!("{} {sign}{whole}{point}{fraction}", self.currency)
    }

    fn level(&self) -> String {
        format!("{}%", trim(self.confidence * 100.0))
    }
}

/// A rate (0.041) as percentage digits ("4.1"); two decimals below 1%, so small rates keep
/// their meaning.
fn percent(rate: f64) -> String {
    percent_with(rate, decimals(rate.abs()))
}

/// Two decimals for rates below 1%, one otherwise.
fn decimals(largest: f64) -> usize {
    if largest < 0.01 && largest > 0.0 { 2 } else { 1 }
}

fn percent_with(rate: f64, decimals: usize) -> String {
    format!("{:.*}", decimals, rate * 100.0)
}

fn trim(v: f64) -> String {
    let s = format!("{v:.1}");
    s.strip_suffix(".0").map(str::to_owned).unwrap_or(s)
}

/// A p-value: "p < 0.001", "p = 0.004", "p = 0.62"; three decimals below 0.1, so values near
/// α are not rounded onto it.
pub(crate) fn p_value(p: f64) -> String {
    if p < 0.001 {
        "p < 0.001".to_owned()
    } else if p < 0.1 {
        format!("p = {p:.3}")
    } else {
        format!("p = {p:.2}")
    }
}

/// A count with thousands separators: 42000 → "42,000".
pub(crate) fn count(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// "About N": rounded up to two significant digits (41,734 → 42,000), since the estimate is
/// no more precise than that.
pub(crate) fn about(n: u64) -> String {
    let mut scale = 1u64;
    while n / scale >= 100 {
        scale *= 10;
    }
    count(n.div_ceil(scale) * scale)
}

/// The adjusted p-value with what it was adjusted for.
fn adjusted(p: f64, comparisons: usize) -> String {
    if comparisons > 1 {
        format!("{} (Holm-adjusted over {comparisons} comparisons)", p_value(p))
    } else {
        p_value(p)
    }
}

/// A significant difference, written from the better segment:
/// "Austin converts better than Denver: 4.1% vs 2.3%, difference 1.8 points, 95% CI 0.6-3.0,
/// p = 0.004".
#[allow(clippy::too_many_arguments)]
pub(crate) fn better(
    style: &Style,
    high: &str,
    low: &str,
    high_value: f64,
    low_value: f64,
    difference: f64,
    ci: (f64, f64),
    p: f64,
    comparisons: usize,
) -> String {
    format!(
        "{high} {} {low}: {} vs {}, difference {}, {} CI {}, {}",
        style.metric.better_verb(),
        style.value(high_value),
        style.value(low_value),
        style.difference(difference),
        style.level(),
        style.interval(ci.0, ci.1),
        adjusted(p, comparisons),
    )
}

/// What more data would settle, after a difference that is not significant.
pub(crate) enum Outlook {
    /// About this many more units per segment for the detectable difference.
    More(u64),
    /// Each segment already has that much: a difference, if any, is smaller.
    AlreadyEnough,
    /// The variance cannot be estimated yet.
    Unknown,
}

/// A difference that is not significant: "No clear difference in conversions per click between
/// Austin and Denver: 4.1% vs 3.8%, difference 0.3 points, 95% CI -0.9 to 1.5, p = 0.62; about
/// 4,000 more clicks per segment to detect a 20% difference".
#[allow(clippy::too_many_arguments)]
pub(crate) fn no_clear_difference(
    style: &Style,
    a: &str,
    b: &str,
    a_value: f64,
    b_value: f64,
    difference: f64,
    ci: (f64, f64),
    p: f64,
    comparisons: usize,
    outlook: &Outlook,
    relative: f64,
) -> String {
    // The interval is per comparison; after Holm's adjustment a difference whose interval
    // excludes zero can still be not significant, and the sentence must not read as a
    // contradiction.
    let interval = if comparisons > 1 && (ci.0 > 0.0 || ci.1 < 0.0) {
        format!("{} before adjustment", style.interval(ci.0, ci.1))
    } else {
        style.interval(ci.0, ci.1)
    };
    let tail = match outlook {
        Outlook::More(n) => format!(
            "; about {} more {} per segment to detect a {} difference",
            about(*n),
            style.metric.unit(),
            relative_percent(relative)
        ),
        Outlook::AlreadyEnough => format!(
            "; with this much data a {} difference would likely have shown, so any difference is probably smaller",
            relative_percent(relative)
        ),
        Outlook::Unknown => String::new(),
    };
    format!(
        "No clear difference in {} between {a} and {b}: {} vs {}, difference {}, {} CI {}, {}{tail}",
        style.metric.label(),
        style.value(a_value),
        style.value(b_value),
        style.difference(difference),
        style.level(),
        interval,
        adjusted(p, comparisons),
    )
}

/// A pair that cannot be judged yet: "Austin vs Denver: not enough data yet; about 4,000 more
/// clicks per segment to detect a 20% difference".
pub(crate) fn pair_not_enough(
    metric: Metric,
    a: &str,
    b: &str,
    more: Option<u64>,
    relative: f64,
    minimum: &str,
) -> String {
    match more {
        Some(n) if n > 0 => format!(
            "{a} vs {b} ({}): not enough data yet; about {} more {} per segment to detect a {} difference",
            metric.label(),
            about(n),
            metric.unit(),
            relative_percent(relative)
        ),
        _ => format!(
            "{a} vs {b} ({}): not enough data yet; each segment needs {minimum} first",
            metric.label()
        ),
    }
}

/// What a segment needs before anything is claimed: "at least 10 influencers with clicks and
/// 10 conversions".
pub(crate) fn minimum(metric: Metric, min_influencers: usize, min_events: u64) -> String {
    match metric.event() {
        Some(event) => format!(
            "at least {min_influencers} influencers with {} and {min_events} {event}",
            metric.unit()
        ),
        None => format!("at least {min_influencers} influencers whose revenue differs"),
    }
}

/// A segment's estimate: "Austin: 4.1% conversions per click (95% CI 3.2-5.0) from 24
/// influencers, 5,230 clicks; 71% chance of being the best".
pub(crate) fn segment_estimate(
    style: &Style,
    segment: &str,
    value: f64,
    ci: (f64, f64),
    influencers: usize,
    denominator: f64,
    best: Option<f64>,
) -> String {
    let amount = if style.metric.is_ratio() {
        format!(", {} {}", count(denominator as u64), style.metric.unit())
    } else {
        String::new()
    };
    let best = best
        .map(|p| format!("; {} chance of being the best", chance(p)))
        .unwrap_or_default();
    format!(
        "{segment}: {} {} ({} CI {}) from {} influencers{amount}{best}",
        style.value(value),
        style.metric.label(),
        style.level(),
        style.interval(ci.0, ci.1),
        count(influencers as u64),
    )
}

/// A segment without enough data: "Denver: not enough data yet for conversions per click (4
/// influencers with clicks, 3 conversions; needs at least 10 influencers with clicks and 10
/// conversions)".
pub(crate) fn segment_not_enough(
    metric: Metric,
    segment: &str,
    influencers: usize,
    events: Option<f64>,
    minimum: &str,
) -> String {
    let have = match metric.event() {
        Some(event) => format!(
            "{} influencers with {}, {} {event}",
            count(influencers as u64),
            metric.unit(),
            count(events.unwrap_or(0.0) as u64)
        ),
        None => format!("{} influencers", count(influencers as u64)),
    };
    format!(
        "{segment}: not enough data yet for {} ({have}; needs {minimum})",
        metric.label()
    )
}

/// A probability as people say it: "71%", "under 1%", "over 99%".
fn chance(p: f64) -> String {
    let pct = p * 100.0;
    if pct > 0.0 && pct < 0.5 {
        "under 1%".to_owned()
    } else if (99.5..100.0).contains(&pct) {
        "over 99%".to_owned()
    } else {
        format!("{pct:.0}%")
    }
}

fn relative_percent(relative: f64) -> String {
    format!("{}%", trim(relative * 100.0))
}

/// The allocation check's findings.
pub(crate) mod allocation {
    use super::{count, p_value};

    /// "Influencers are not spread across segments as planned (chi-square 9.10, 2 df, p = 0.011)".
    pub(crate) fn shares_off(statistic: f64, df: usize, p: f64, rough: bool) -> String {
        let rough = if rough {
            "; few influencers, so the test is rough"
        } else {
            ""
        };
        format!(
            "Influencers are not spread across segments as planned (chi-square {statistic:.2}, {df} df, {}{rough})",
            p_value(p)
        )
    }

    /// "Denver got 7 of the 12 influencers planned".
    pub(crate) fn fewer_influencers(segment: &str, got: usize, planned: u32) -> String {
        format!(
            "{segment} got {} of the {} influencers planned",
            count(got as u64),
            count(u64::from(planned))
        )
    }

    /// "Austin got 15 influencers; 12 were planned".
    pub(crate) fn more_influencers(segment: &str, got: usize, planned: u32) -> String {
        format!(
            "{segment} got {} influencers; {} were planned",
            count(got as u64),
            count(u64::from(planned))
        )
    }

    /// "Denver got 18% of the spend against 33% planned".
    pub(crate) fn spend_share_off(segment: &str, share: f64, planned: f64) -> String {
        format!(
            "{segment} got {:.0}% of the spend against {:.0}% planned",
            share * 100.0,
            planned * 100.0
        )
    }

    /// "Boise has data but was not in the plan".
    pub(crate) fn unplanned(segment: &str) -> String {
        format!("{segment} has data but was not in the plan")
    }

    /// "Denver has no data yet".
    pub(crate) fn no_data(segment: &str) -> String {
        format!("{segment} has no data yet")
    }

    /// "Influencer inf-7 appears in 2 segments (Austin, Denver); segments should not share
    /// influencers".
    pub(crate) fn shared_influencer(influencer: &str, segments: &[&str]) -> String {
        format!(
            "Influencer {influencer} appears in {} segments ({}); segments should not share influencers",
            segments.len(),
            segments.join(", ")
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn style(metric: Metric) -> Style {
        Style {
            metric,
            currency: "USD".into(),
            currency_exponent: 2,
            confidence: 0.95,
        }
    }

    #[test]
    fn the_issue_example_reads_as_written() {
        let s = better(
            &style(Metric::ConversionsPerClick),
            "Austin",
            "Denver",
            0.041,
            0.023,
            0.018,
            (0.006, 0.030),
            0.004,
            1,
        );
        assert_eq!(
            s,
            "Austin converts better than Denver: 4.1% vs 2.3%, difference 1.8 points, 95% CI 0.6-3.0, p = 0.004"
        );
    }

    #[test]
    fn numbers_are_rounded_as_people_read_them() {
        assert_eq!(about(41_734), "42,000");
        assert_eq!(about(870), "870");
        assert_eq!(about(1_001), "1,100");
        assert_eq!(count(1_234_567), "1,234,567");
        assert_eq!(p_value(0.0004), "p < 0.001");
        assert_eq!(p_value(0.0496), "p = 0.050");
        assert_eq!(p_value(0.62), "p = 0.62");
        let money = style(Metric::RevenuePerInfluencer);
        assert_eq!(money.value(123_456.0), "USD 1,234.56");
        assert_eq!(money.value(-6_784.0), "USD -67.84");
        assert_eq!(money.value(-0.2), "USD 0.00");
        assert_eq!(chance(0.004), "under 1%");
        assert_eq!(chance(0.999), "over 99%");
        assert_eq!(chance(0.0), "0%");
        assert_eq!(chance(0.71), "71%");
        assert_eq!(
            style(Metric::ConversionsPerClick).interval(-0.009, 0.015),
            "-0.9 to 1.5"
        );
    }
}
