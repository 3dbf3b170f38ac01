//! What healthy engagement looks like per tier.

use chorus_proto::types::Tier;

/// Healthy engagement (by followers) per tier, as fractions `(low, high)`. DOMAIN.md: nano
/// 5-10% at 1k-5k followers and 3-5% at 5k-10k (Heartbeat 2020), micro about a point lower,
/// celebrities about 1.7%.
pub fn engagement_norm(tier: Tier) -> (f64, f64) {
    match tier {
        Tier::Emerging => (0.03, 0.15),
        Tier::Nano | Tier::Unspecified => (0.03, 0.10),
        Tier::Micro => (0.02, 0.08),
        Tier::Mid => (0.015, 0.06),
        Tier::Macro => (0.01, 0.05),
        Tier::Mega => (0.008, 0.04),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn norms_fall_as_tiers_grow() {
        let order = [Tier::Nano, Tier::Micro, Tier::Mid, Tier::Macro, Tier::Mega];
        for pair in order.windows(2) {
            let (a, b) = (engagement_norm(pair[0]), engagement_norm(pair[1]));
            assert!(b.0 < a.0 && b.1 < a.1, "{:?} vs {:?}", pair[0], pair[1]);
        }
        assert_eq!(engagement_norm(Tier::Nano), (0.03, 0.10));
    }
}
