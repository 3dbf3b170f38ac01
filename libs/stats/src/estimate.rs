//! Estimates with the influencer as the unit: a ratio metric (conversions per click) by the
//! delta method on influencer totals, a mean metric (revenue per influencer) by the sample mean,
//! and the Welch test of the difference between two segments. All pure arithmetic on slices.

use serde::Serialize;
use statrs::distribution::{ContinuousCDF, StudentsT};

/// A segment's estimate of one metric with its standard error and confidence interval.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Estimate {
    /// The point estimate: sum of numerators over sum of denominators, or the mean.
    pub value: f64,
    /// Its standard error (influencer-level, so clustering is in it).
    pub std_error: f64,
    /// Influencers it rests on.
    pub n: usize,
    /// Degrees of freedom of its t interval (`n - 1`).
    pub df: f64,
    /// Lower bound of the confidence interval.
    pub ci_low: f64,
    /// Upper bound of the confidence interval.
    pub ci_high: f64,
}

/// The difference between two segments' estimates (`a - b`) and its Welch test.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Difference {
    /// `a - b`.
    pub value: f64,
    /// Standard error of the difference: `sqrt(se_a² + se_b²)`.
    pub std_error: f64,
    /// Welch–Satterthwaite degrees of freedom.
    pub df: f64,
    /// The t statistic.
    pub t: f64,
    /// Two-sided p-value, before any correction for multiple comparisons.
    pub p_value: f64,
    /// Lower bound of the confidence interval of the difference (not adjusted).
    pub ci_low: f64,
    /// Upper bound.
    pub ci_high: f64,
}

/// The quantile `t_{df}(q)`; `None` if `df` is not a positive number.
fn t_quantile(df: f64, q: f64) -> Option<f64> {
    let t = StudentsT::new(0.0, 1.0, df).ok()?;
    let x = t.inverse_cdf(q);
    x.is_finite().then_some(x)
}

/// The ratio `Σy / Σx` over influencers (`pairs` holds each influencer's `(x, y)`, e.g. clicks
/// and conversions), with the delta-method standard error that treats influencers as
/// independent clusters:
///
/// `Var(R) ≈ Σ (y_i − R·x_i)² / ((n − 1) · n · x̄²)`
///
/// (the same as `(s_y² − 2R·s_xy + R²·s_x²) / (n·x̄²)`, written with residuals so it cannot go
/// negative by rounding). The interval is `R ± t_{n−1} · se`, clamped at zero below since the
/// ratio metrics here cannot be negative. Influencers with no clicks stay in: they are clusters
/// of size zero. `None` with fewer than two influencers or no denominator at all.
pub fn ratio_estimate(pairs: &[(f64, f64)], confidence: f64) -> Option<Estimate> {
    let n = pairs.len();
    if n < 2 {
        return None;
    }
    let sum_x: f64 = pairs.iter().map(|p| p.0).sum();
    let sum_y: f64 = pairs.iter().map(|p| p.1).sum();
    if sum_x <= 0.0 {
        return None;
    }
    let r = sum_y / sum_x;
    let mean_x = sum_x / n as f64;
    let ss: f64 = pairs.iter().map(|&(x, y)| (y - r * x).powi(2)).sum();
    let var = ss / ((n - 1) as f64 * n as f64 * mean_x * mean_x);
    let std_error = var.sqrt();
    let df = (n - 1) as f64;
    let half = t_quantile(df, 0.5 + confidence / 2.0)? * std_error;
    Some(Estimate {
        value: r,
        std_error,
        n,
        df,
        ci_low: (r - half).max(0.0),
        ci_high: r + half,
    })
}

/// The mean of one value per influencer (e.g. revenue) with its standard error `s / sqrt(n)`
/// and the interval `mean ± t_{n−1} · se`. `None` with fewer than two influencers.
pub fn mean_estimate(values: &[f64], confidence: f64) -> Option<Estimate> {
    let n = values.len();
    if n < 2 {
        return None;
    }
    let mean = values.iter().sum::<f64>() / n as f64;
    let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1) as f64;
    let std_error = (var / n as f64).sqrt();
    let df = (n - 1) as f64;
    let half = t_quantile(df, 0.5 + confidence / 2.0)? * std_error;
    Some(Estimate {
        value: mean,
        std_error,
        n,
        df,
        ci_low: mean - half,
        ci_high: mean + half,
    })
}

/// Welch's test of `a − b` from two independent estimates: `t = (a − b) / sqrt(se_a² + se_b²)`
/// with Welch–Satterthwaite degrees of freedom
/// `(V_a + V_b)² / (V_a²/df_a + V_b²/df_b)`. For mean metrics this is exactly Welch's
/// unequal-variance t-test; for ratio metrics it is the same test on the delta method's
/// linearised influencer values, which keeps the false-positive rate near α with a few dozen
/// influencers where a z-test runs high. `None` when both standard errors are zero (nothing
/// varies, so nothing can be said).
pub fn welch_difference(a: &Estimate, b: &Estimate, confidence: f64) -> Option<Difference> {
    let va = a.std_error * a.std_error;
    let vb = b.std_error * b.std_error;
    let v = va + vb;
    if v.is_nan() || v <= 0.0 || v.is_infinite() {
        return None;
    }
    let df = v * v / (va * va / a.df + vb * vb / b.df);
    let dist = StudentsT::new(0.0, 1.0, df).ok()?;
    let value = a.value - b.value;
    let std_error = v.sqrt();
    let t = value / std_error;
    let p_value = (2.0 * dist.sf(t.abs())).min(1.0);
    let half = t_quantile(df, 0.5 + confidence / 2.0)? * std_error;
    Some(Difference {
        value,
        std_error,
        df,
        t,
        p_value,
        ci_low: value - half,
        ci_high: value + half,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ratio_matches_the_textbook_delta_method() {
        let pairs = [(100.0, 3.0), (50.0, 2.0), (200.0, 4.0), (80.0, 0.0)];
        let e = ratio_estimate(&pairs, 0.95).unwrap();
        let n = 4.0;
        let (mx, my) = (430.0 / n, 9.0 / n);
        let r = my / mx;
        let xs = pairs.map(|p| p.0);
        let ys = pairs.map(|p| p.1);
        let cov = |u: &[f64], mu: f64, v: &[f64], mv: f64| {
            u.iter().zip(v).map(|(a, b)| (a - mu) * (b - mv)).sum::<f64>() / (n - 1.0)
        };
        let var =
            (cov(&ys, my, &ys, my) - 2.0 * r * cov(&xs, mx, &ys, my) + r * r * cov(&xs, mx, &xs, mx)) / (n * mx * mx);
        assert!((e.value - r).abs() < 1e-15);
        assert!((e.std_error - var.sqrt()).abs() < 1e-12);
        assert!(e.ci_low < e.value && e.value < e.ci_high);
    }

    #[test]
    fn too_little_to_estimate_is_none_not_nan() {
        assert!(ratio_estimate(&[], 0.95).is_none());
        assert!(ratio_estimate(&[(10.0, 1.0)], 0.95).is_none());
        assert!(ratio_estimate(&[(0.0, 0.0), (0.0, 0.0)], 0.95).is_none());
        assert!(mean_estimate(&[5.0], 0.95).is_none());
        let flat = mean_estimate(&[5.0, 5.0, 5.0], 0.95).unwrap();
        assert!(welch_difference(&flat, &flat, 0.95).is_none());
    }

    #[test]
    fn welch_is_symmetric() {
        let a = mean_estimate(&[1.0, 2.0, 3.0, 4.0], 0.95).unwrap();
        let b = mean_estimate(&[2.0, 4.0, 6.0, 9.0, 1.0], 0.95).unwrap();
        let ab = welch_difference(&a, &b, 0.95).unwrap();
        let ba = welch_difference(&b, &a, 0.95).unwrap();
        assert!((ab.p_value - ba.p_value).abs() < 1e-15);
        assert!((ab.value + ba.value).abs() < 1e-15);
        assert!(ab.p_value > 0.0 && ab.p_value < 1.0);
    }
}
