//! Selection: among ranked candidates, the set with the most expected value (engagements, or
//! conversions for a sales objective) whose total cost fits the budget, whose size fits the
//! headcount, no city or niche above its cap, and, for an audience test, the same number of
//! people per segment.
//!
//! That is a knapsack with side constraints, NP-hard in general; we solve its Lagrangian
//! relaxation instead. For a price `λ` on money, a greedy pass takes candidates by
//! `value - λ·cost` while they fit. `λ = 0` is "best value first" (right when headcount binds),
//! a large `λ` is "most value per unit of money" (right when budget binds); a bisection
//! between them finds the price at which both bind, and the best of the passes wins.
//! Everything is ordered by (key, rank), so the same inputs give the same set.

use std::collections::HashMap;

use super::rank::Scored;

/// Halvings of the search for the price of money: the last pass is within 1/1024 of the range
/// of value per unit of cost, finer than the estimates it prices.
const BISECTIONS: usize = 10;

/// Constraints of one selection.
#[derive(Debug, Clone)]
pub struct Limits {
    pub budget: i64,
    pub headcount: usize,
    /// Most people per city and per best-fitting niche (`usize::MAX`: no cap).
    pub per_city: usize,
    pub per_niche: usize,
    /// People wanted per segment, for an audience test (empty otherwise).
    pub per_segment: Vec<usize>,
}

impl Limits {
    /// Turns shares into counts: a cap of 0.3 over 50 people allows 15 per city; any cap
    /// allows at least one.
    pub fn new(budget: i64, headcount: usize, city_share: f64, niche_share: f64, segments: usize) -> Limits {
        let cap = |share: f64| {
            if share <= 0.0 {
                usize::MAX
            } else {
                // The epsilon keeps 0.29 x 100 (28.999999999999996 in floating point) at 29.
                ((share * headcount as f64 + 1e-9).floor() as usize).max(1)
            }
        };
        let per_segment = (0..segments)
            .map(|i| headcount / segments + usize::from(i < headcount % segments))
            .collect();
        Limits {
            budget,
            headcount,
            per_city: cap(city_share),
            per_niche: cap(niche_share),
            per_segment,
        }
    }
}

/// A chosen set: indexes into the candidate slice, in the order they were taken.
#[derive(Debug, Clone, Default)]
pub struct Selection {
    pub chosen: Vec<usize>,
    pub cost: i64,
    pub value: f64,
}

/// Picks the best set from `candidates`; `value` says what each one is worth.
pub fn select(candidates: &[Scored], value: impl Fn(&Scored) -> f64, limits: &Limits) -> Selection {
    let values: Vec<f64> = candidates.iter().map(&value).collect();
    let eligible: Vec<usize> = (0..candidates.len())
        .filter(|i| values[*i] > 0.0 && candidates[*i].cost <= limits.budget)
        .collect();
    if eligible.is_empty() || limits.headcount == 0 {
        return Selection::default();
    }
    let mut best = greedy(candidates, &values, &eligible, limits, 0.0);
    // The price of money at which spending the whole budget is just worth it lies between 0
    // and the highest value per unit of cost.
    let mut hi = eligible
        .iter()
        .map(|i| values[*i] / (candidates[*i].cost.max(1) as f64))
        .fold(0.0, f64::max);
    let mut lo = 0.0;
    let mut consider = |s: Selection| {
        if better(&s, &best) {
            best = s;
        }
    };
    consider(greedy(candidates, &values, &eligible, limits, hi));
    for _ in 0..BISECTIONS {
        let mid = (lo + hi) / 2.0;
        let s = greedy(candidates, &values, &eligible, limits, mid);
        // Headcount full with money left: money was priced too high (cheap people won).
        // Otherwise the budget bound first: money was priced too low.
        if s.chosen.len() == limits.headcount && s.cost < limits.budget {
            hi = mid;
        } else {
            lo = mid;
        }
        consider(s);
    }
    best
}

fn better(a: &Selection, b: &Selection) -> bool {
    a.value > b.value + 1e-9 || ((a.value - b.value).abs() <= 1e-9 && a.cost < b.cost)
}

/// Takes candidates by `value - lambda·cost`, best first, while everything fits.
fn greedy(candidates: &[Scored], values: &[f64], eligible: &[usize], limits: &Limits, lambda: f64) -> Selection {
    // Ties go to the better-ranked candidate (candidates come ranked, best first, ties by id).
    let mut order: Vec<(f64, u32)> = eligible
        .iter()
        .map(|i| (values[*i] - lambda * candidates[*i].cost as f64, *i as u32))
        .collect();
    order.sort_unstable_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
    let mut s = Selection::default();
    let mut cities: HashMap<u32, usize> = HashMap::new();
    let mut niches: HashMap<u32, usize> = HashMap::new();
    let mut segments = vec![0usize; limits.per_segment.len()];
    for (_, i) in order {
        let i = i as usize;
        if s.chosen.len() == limits.headcount {
            break;
        }
        let c = &candidates[i];
        if s.cost.checked_add(c.cost).is_none_or(|total| total > limits.budget) {
            continue;
        }
        if c.city != 0 && cities.get(&c.city).copied().unwrap_or(0) >= limits.per_city {
            continue;
        }
        if c.niche != 0 && niches.get(&c.niche).copied().unwrap_or(0) >= limits.per_niche {
            continue;
        }
        if !limits.per_segment.is_empty() {
            match c.segment.map(usize::from) {
                Some(g) if g < segments.len() && segments[g] < limits.per_segment[g] => segments[g] += 1,
                _ => continue,
            }
        }
        if c.city != 0 {
            *cities.entry(c.city).or_default() += 1;
        }
        if c.niche != 0 {
            *niches.entry(c.niche).or_default() += 1;
        }
        s.cost += c.cost;
        s.value += values[i];
        s.chosen.push(i);
    }
    s
}

/// Why a selection holds fewer people than the brief's headcount, in the words
/// SelectInfluencers answers with (empty when it holds enough).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shortfall {
    None,
    /// Fewer people pass the brief's filters than it wants.
    TooFewMatch(u64),
    /// Someone affordable and worth something was left: caps or quotas kept them out.
    CapsOrQuotas,
    /// Nobody worth anything is affordable with what is left.
    BudgetSpent,
}

impl Shortfall {
    /// `matched` passed the filters; `affordable_left` says whether anyone not chosen is
    /// worth something to the objective and costs no more than the budget left.
    pub fn of(selected: usize, headcount: usize, matched: u64, affordable_left: bool) -> Shortfall {
        if selected >= headcount {
            Shortfall::None
        } else if matched < headcount as u64 {
            Shortfall::TooFewMatch(matched)
        } else if affordable_left {
            Shortfall::CapsOrQuotas
        } else {
            Shortfall::BudgetSpent
        }
    }
}

impl std::fmt::Display for Shortfall {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Shortfall::None => Ok(()),
            Shortfall::TooFewMatch(n) => write!(
                f,
                "only {n} influencers pass the brief's filters; see MatchInfluencers' filter counts"
            ),
            Shortfall::CapsOrQuotas => f.write_str("diversity caps or segment quotas left the rest out"),
            Shortfall::BudgetSpent => f.write_str("the budget is spent"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::rank::tests_support::scored;

    #[test]
    fn a_shortfall_names_its_first_cause() {
        assert_eq!(Shortfall::of(10, 10, 5, false), Shortfall::None);
        assert_eq!(Shortfall::of(12, 10, 50, true).to_string(), "");
        assert_eq!(Shortfall::of(5, 10, 5, true), Shortfall::TooFewMatch(5));
        assert_eq!(
            Shortfall::of(5, 10, 5, true).to_string(),
            "only 5 influencers pass the brief's filters; see MatchInfluencers' filter counts"
        );
        assert_eq!(
            Shortfall::of(5, 10, 50, true).to_string(),
            "diversity caps or segment quotas left the rest out"
        );
        assert_eq!(Shortfall::of(5, 10, 50, false).to_string(), "the budget is spent");
    }

    fn by_value(s: &Scored) -> f64 {
        s.engagements
    }

    #[test]
    fn caps_turn_shares_into_counts() {
        let l = Limits::new(100, 50, 0.3, 0.0, 3);
        assert_eq!(l.per_city, 15);
        assert_eq!(l.per_niche, usize::MAX);
        assert_eq!(l.per_segment, vec![17, 17, 16]);
        assert_eq!(Limits::new(100, 2, 0.1, 0.1, 0).per_city, 1);
        // Shares that land on a whole number in decimal but not in binary floating point.
        assert_eq!(Limits::new(100, 100, 0.29, 0.57, 0).per_city, 29);
        assert_eq!(Limits::new(100, 100, 0.29, 0.57, 0).per_niche, 57);
        assert_eq!(Limits::new(100, 50, 0.58, 0.0, 0).per_city, 29);
    }

    #[test]
    fn budget_and_headcount_bind_and_value_is_maximised() {
        // Budget 100: one star (value 100, cost 90) or three solid ones (40 each, cost 30):
        // the three give more.
        let c = vec![
            scored(1, 100.0, 90, 1, 1, None),
            scored(2, 40.0, 30, 2, 1, None),
            scored(3, 40.0, 30, 3, 1, None),
            scored(4, 40.0, 30, 4, 1, None),
        ];
        let s = select(&c, by_value, &Limits::new(100, 10, 0.0, 0.0, 0));
        let mut ids: Vec<u128> = s.chosen.iter().map(|i| c[*i].id).collect();
        ids.sort();
        assert_eq!(ids, vec![2, 3, 4]);
        assert_eq!((s.cost, s.value), (90, 120.0));
        // With room for one person only, the star.
        let s = select(&c, by_value, &Limits::new(100, 1, 0.0, 0.0, 0));
        assert_eq!(s.chosen.iter().map(|i| c[*i].id).collect::<Vec<_>>(), vec![1]);
    }

    #[test]
    fn city_caps_and_segments_hold_and_the_result_is_deterministic() {
        let mut c = Vec::new();
        for n in 0..40u128 {
            let city = 1 + (n % 2) as u32; // two cities
            c.push(scored(n + 1, 10.0 + (n % 7) as f64, 10, city, 1, Some((n % 2) as u16)));
        }
        let limits = Limits::new(1_000, 10, 0.5, 0.0, 2);
        let a = select(&c, by_value, &limits);
        let b = select(&c, by_value, &limits);
        assert_eq!(a.chosen, b.chosen);
        assert_eq!(a.chosen.len(), 10);
        let in_city1 = a.chosen.iter().filter(|i| c[**i].city == 1).count();
        assert_eq!(in_city1, 5);
        let seg0 = a.chosen.iter().filter(|i| c[**i].segment == Some(0)).count();
        assert_eq!(seg0, 5);
        assert!(a.cost <= 1_000);
    }

    #[test]
    fn nothing_affordable_selects_nobody() {
        let c = vec![scored(1, 10.0, 500, 1, 1, None)];
        let s = select(&c, by_value, &Limits::new(100, 5, 0.0, 0.0, 0));
        assert!(s.chosen.is_empty());
        assert_eq!(s.cost, 0);
    }
}
