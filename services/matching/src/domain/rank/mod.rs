//! Ranking: a brief becomes a [`Plan`] (its filters turned into numbers the index holds), the
//! plan scans the index once, counts what each hard filter removes, and scores the rest.
//!
//! The score is 0..100: six parts, each 0..1 times its weight ([`PARTS`]), minus a penalty for
//! feeds saturated with sponsored posts. The scan computes numbers only; sentences are written
//! for the candidates returned.
//!
//! - `plan`: what a brief asks, as numbers the index holds, and the hard filters;
//! - `scan`: the pass over the index (in parallel slices) that keeps the best;
//! - `score`: the parts of the score, cost and expected engagements;
//! - `explain`: the candidates as the API returns them, in words.

mod explain;
mod plan;
mod scan;
mod score;

pub use plan::{FILTERS, Plan, Settings};
pub use scan::Ranking;
pub use score::{
    AUDIENCE_QUALITY, COST_EFFICIENCY, DEMOGRAPHIC_FIT, EFFICIENCY_MIDPOINT, ENGAGEMENT, LOCATION, NICHE_FIT, PARTS,
    SPONSORED_FREE, SPONSORED_FULL, SPONSORED_PENALTY_POINTS, SPONSORED_SATURATION, Scored, engagement_fit,
};

#[cfg(test)]
pub(crate) mod tests_support {
    use std::collections::HashSet;

    use chorus_proto::matching::{Brief, Objective};
    use chorus_proto::registry::RateCardEntry;
    use chorus_proto::types::{CompensationKind, DeliverableKind, Money};

    use super::*;
    use crate::domain::brief::tests::dog_treats;
    use crate::domain::index::tests::influencer;
    use crate::domain::index::{Hot, Index};

    /// The dog-treats brief of `brief::tests`.
    pub(crate) fn brief() -> Brief {
        dog_treats().brief.unwrap()
    }

    /// Six nano creators in Austin and Denver who take product, $50 a feed post.
    pub(crate) fn index() -> Index {
        let mut ix = Index::new();
        for n in 1..=6u128 {
            let city = if n % 2 == 0 { "Austin" } else { "Denver" };
            let mut inf = influencer(n, city, 2_000 + n as i64 * 1_000, 10);
            inf.compensation_accepted = vec![CompensationKind::Product as i32];
            inf.rate_card = vec![RateCardEntry {
                kind: DeliverableKind::FeedPost as i32,
                price: Some(Money {
                    currency_code: "USD".into(),
                    amount_minor: 5_000,
                }),
            }];
            ix.upsert(&inf);
        }
        ix
    }

    /// An awareness plan with nobody rejected.
    pub(crate) fn plan<'a>(ix: &'a Index, b: &Brief) -> Plan<'a> {
        Plan::new(ix, b, Objective::Awareness, &HashSet::new(), Settings::default(), 0)
    }

    /// A scored candidate with only what selection reads.
    pub(crate) fn scored(id: u128, engagements: f64, cost: i64, city: u32, niche: u32, segment: Option<u16>) -> Scored {
        Scored {
            slot: 0,
            id,
            score: 50.0,
            cost,
            cost_estimated: false,
            engagements,
            conversions: engagements * 0.01,
            segment,
            niche,
            city,
            parts: [0.0; 6],
            penalty: 0.0,
            hot: Hot::default(),
        }
    }
}
