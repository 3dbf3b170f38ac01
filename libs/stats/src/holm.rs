//! Holm's step-down correction: with several segments there are several pairwise tests, and
//! the chance that at least one crosses α by luck grows with their number. Holm keeps that
//! family-wise error at α, is never less powerful than Bonferroni, and needs no assumption about
//! how the tests depend on each other (pairs sharing a segment are dependent).

/// Holm-adjusted p-values, in the order given: sort ascending, multiply the `i`-th smallest
/// (from 0) by `m − i`, carry the running maximum forward (so adjusted values keep the raw
/// order) and cap at 1. A hypothesis is rejected at α when its adjusted p-value is ≤ α.
pub fn holm_adjust(p_values: &[f64]) -> Vec<f64> {
    let m = p_values.len();
    let mut order: Vec<usize> = (0..m).collect();
    order.sort_by(|&i, &j| p_values[i].total_cmp(&p_values[j]));
    let mut adjusted = vec![0.0; m];
    let mut running = 0.0_f64;
    for (rank, &i) in order.iter().enumerate() {
        let scaled = ((m - rank) as f64 * p_values[i]).min(1.0);
        running = running.max(scaled);
        adjusted[i] = running;
    }
    adjusted
}

#[cfg(test)]
mod tests {
    use super::holm_adjust;

    #[test]
    fn matches_a_worked_example() {
        // m = 4: sorted 0.01, 0.02, 0.03, 0.04 → 0.04, 0.06, 0.06 (max carried), 0.06.
        let adj = holm_adjust(&[0.03, 0.01, 0.04, 0.02]);
        let want = [0.06, 0.04, 0.06, 0.06];
        for (a, w) in adj.iter().zip(want) {
            assert!((a - w).abs() < 1e-15, "{adj:?}");
        }
        assert_eq!(holm_adjust(&[0.9, 0.8]), vec![1.0, 1.0]);
        assert!(holm_adjust(&[]).is_empty());
    }
}
