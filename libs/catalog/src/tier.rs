//! Tiers by followers on one platform. Raw counts are stored; the tier is derived at read time
//! from a configurable table (DOMAIN.md: nano 1k-10k, micro 10k-100k, mid 100k-250k, macro
//! 250k-1M, mega over 1M, Built In 2020; other firms draw the lines elsewhere).

use chorus_proto::types::Tier;

/// Lower follower bound of each tier, ascending: nano, micro, mid, macro, mega.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TierTable {
    lower: [i64; 5],
}

const ORDER: [Tier; 5] = [Tier::Nano, Tier::Micro, Tier::Mid, Tier::Macro, Tier::Mega];
const NAMES: [&str; 5] = ["nano", "micro", "mid", "macro", "mega"];

impl Default for TierTable {
    fn default() -> Self {
        TierTable {
            lower: [1_000, 10_000, 100_000, 250_000, 1_000_000],
        }
    }
}

impl TierTable {
    pub fn classify(&self, followers: i64) -> Tier {
        let mut tier = Tier::Emerging;
        for (i, lower) in self.lower.iter().enumerate() {
            if followers >= *lower {
                tier = ORDER[i];
            }
        }
        tier
    }

    /// The follower range `[low, high)` of `tier`; `high` is `None` for the top tier.
    pub fn range(&self, tier: Tier) -> Option<(i64, Option<i64>)> {
        if tier == Tier::Emerging {
            return Some((0, Some(self.lower[0])));
        }
        let i = ORDER.iter().position(|t| *t == tier)?;
        Some((self.lower[i], self.lower.get(i + 1).copied()))
    }
}

impl std::str::FromStr for TierTable {
    type Err = String;

    /// `nano=1000,micro=10000,mid=100000,macro=250000,mega=1000000`: every tier, ascending.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut lower = [0i64; 5];
        let mut seen = [false; 5];
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (name, value) = part
                .split_once('=')
                .ok_or_else(|| format!("expected tier=followers, got {part:?}"))?;
            let i = NAMES
                .iter()
                .position(|n| *n == name.trim())
                .ok_or_else(|| format!("unknown tier {name:?}; expected one of {}", NAMES.join(", ")))?;
            lower[i] = value
                .trim()
                .parse()
                .map_err(|_| format!("{name}: {value:?} is not a whole number"))?;
            seen[i] = true;
        }
        if let Some(i) = seen.iter().position(|s| !s) {
            return Err(format!("missing tier {}", NAMES[i]));
        }
        if lower[0] < 1 || lower.windows(2).any(|w| w[0] >= w[1]) {
            return Err("boundaries must be positive and strictly ascending".to_owned());
        }
        Ok(TierTable { lower })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_boundaries_follow_built_in() {
        let t = TierTable::default();
        assert_eq!(t.classify(999), Tier::Emerging);
        assert_eq!(t.classify(1_000), Tier::Nano);
        assert_eq!(t.classify(9_999), Tier::Nano);
        assert_eq!(t.classify(10_000), Tier::Micro);
        assert_eq!(t.classify(100_000), Tier::Mid);
        assert_eq!(t.classify(250_000), Tier::Macro);
        assert_eq!(t.classify(5_000_000), Tier::Mega);
        assert_eq!(t.range(Tier::Nano), Some((1_000, Some(10_000))));
        assert_eq!(t.range(Tier::Mega), Some((1_000_000, None)));
    }

    #[test]
    fn hypeauditor_boundaries_can_be_configured() {
        let t: TierTable = "nano=1000,micro=5000,mid=20000,macro=100000,mega=1000000"
            .parse()
            .unwrap();
        assert_eq!(t.classify(6_000), Tier::Micro);
    }

    #[test]
    fn bad_tables_are_refused() {
        assert!("nano=1000".parse::<TierTable>().is_err());
        assert!("nano=10,micro=5,mid=20,macro=30,mega=40".parse::<TierTable>().is_err());
        assert!("nano=1,micro=2,mid=3,macro=4,giga=5".parse::<TierTable>().is_err());
    }
}
