//! How much more data a segment needs: the per-segment sample size that detects a given
//! relative difference with a given power at α (two-sided), with the variance taken from the
//! campaign itself at the influencer level, so clustering is in it (the design effect).

use serde::Serialize;
use statrs::distribution::{ContinuousCDF, Normal};

/// The sample size a two-segment comparison needs, in the metric's unit (clicks,
/// impressions or influencers).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct SampleSize {
    /// The pooled estimate the difference is relative to.
    pub baseline: f64,
    /// The absolute difference to detect: `relative × baseline`.
    pub detectable_difference: f64,
    /// Variance of one unit's contribution, clustering included: for a ratio metric
    /// `Var(R) × Σx` pooled over segments, for a mean metric the pooled influencer variance.
    pub unit_variance: f64,
    /// For rates between 0 and 1: `unit_variance / (p(1 − p))`, how many times the variance
    /// of independent clicks clustering makes it (1 when influencers do not differ).
    pub design_effect: Option<f64>,
    /// Units per segment for the power asked.
    pub required_per_segment: u64,
}

/// Units per segment to detect `relative × baseline` with `power` at two-sided `alpha`:
/// `n = (z_{1−α/2} + z_{power})² · 2σ² / Δ²`, the normal-approximation formula for two
/// independent means with a common unit variance σ². More units are assumed to come from
/// more influencers like the ones so far (so the design effect stays what it is). `None` when
/// the baseline is zero or the variance unknown.
pub fn required_per_segment(
    unit_variance: f64,
    baseline: f64,
    relative: f64,
    alpha: f64,
    power: f64,
) -> Option<SampleSize> {
    let delta = (relative * baseline).abs();
    if !(delta > 0.0 && unit_variance > 0.0 && unit_variance.is_finite()) {
        return None;
    }
    let normal = Normal::standard();
    let z = normal.inverse_cdf(1.0 - alpha / 2.0) + normal.inverse_cdf(power);
    let n = z * z * 2.0 * unit_variance / (delta * delta);
    if !n.is_finite() {
        return None;
    }
    let design_effect = (baseline > 0.0 && baseline < 1.0).then(|| unit_variance / (baseline * (1.0 - baseline)));
    Some(SampleSize {
        baseline,
        detectable_difference: delta,
        unit_variance,
        design_effect,
        // Saturating float-to-int conversion; n is finite and positive here.
        required_per_segment: n.ceil() as u64,
    })
}

#[cfg(test)]
mod tests {
    use super::required_per_segment;

    #[test]
    fn binomial_textbook_value_without_clustering() {
        // p = 0.05, 20% relative (Δ = 0.01), σ² = p(1 − p): (1.959964 + 0.841621)² · 2 ·
        // 0.0475 / 0.0001 = 7.848861 · 950 = 7456.4 → 7457 per segment.
        let s = required_per_segment(0.05 * 0.95, 0.05, 0.2, 0.05, 0.8).unwrap();
        assert_eq!(s.required_per_segment, 7457);
        assert!((s.design_effect.unwrap() - 1.0).abs() < 1e-12);
        assert!(required_per_segment(0.0, 0.05, 0.2, 0.05, 0.8).is_none());
        assert!(required_per_segment(0.1, 0.0, 0.2, 0.05, 0.8).is_none());
    }
}
