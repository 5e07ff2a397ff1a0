//! Pearson and Spearman correlation with two-sided p-values computed as scipy computes them
//! (`scipy.stats.pearsonr` / `spearmanr`): Pearson's p from the exact Beta distribution of r
//! under independence, p = I_{1−r²}((n − 2)/2, 1/2); Spearman's ρ as Pearson's r of average
//! ranks, its p from Student's t with n − 2 degrees of freedom, which reduces to the same
//! incomplete-beta form. The regularised incomplete beta is evaluated directly — never as
//! 1 − cdf, which would collapse tiny p-values to zero.

use statrs::function::beta::checked_beta_reg;

/// Pearson's r and its two-sided p; None for fewer than two points or constant input (scipy
/// returns NaN there).
pub fn pearson(x: &[f64], y: &[f64]) -> Option<(f64, f64)> {
    pearson_r(x, y).map(|r| (r, p_value(r, x.len())))
}

/// Pearson's r alone (its p is the costly part, and most pairs fail |r| > 0.3 first).
pub fn pearson_r(x: &[f64], y: &[f64]) -> Option<f64> {
    let n = x.len();
    if n < 2 || n != y.len() {
        return None;
    }
    let mx = x.iter().sum::<f64>() / n as f64;
    let my = y.iter().sum::<f64>() / n as f64;
    // Scaling the centred values by their largest magnitude first keeps the norms from
    // overflowing or losing precision, as scipy does. Recomputed per pass instead of stored:
    // this runs for every pair of a user's metrics on every change.
    let sx = x.iter().fold(0.0f64, |m, v| m.max((v - mx).abs()));
    let sy = y.iter().fold(0.0f64, |m, v| m.max((v - my).abs()));
    if sx == 0.0 || sy == 0.0 {
        return None;
    }
    let (mut xx, mut yy, mut xy) = (0.0f64, 0.0f64, 0.0f64);
    for (a, b) in x.iter().zip(y) {
        let (a, b) = ((a - mx) / sx, (b - my) / sy);
        xx += a * a;
        yy += b * b;
        xy += a * b;
    }
    Some((xy / (xx.sqrt() * yy.sqrt())).clamp(-1.0, 1.0))
}

/// The two-sided p of a correlation coefficient over `n` points under independence.
pub fn p_value(r: f64, n: usize) -> f64 {
    if n <= 2 {
        return 1.0;
    }
    let x = (1.0 - r * r).max(0.0);
    if x == 0.0 {
        return 0.0;
    }
    checked_beta_reg((n as f64 - 2.0) / 2.0, 0.5, x)
        .unwrap_or(f64::NAN)
        .min(1.0)
}

/// Ranks starting at 1, ties sharing their average rank (scipy `rankdata(method="average")`).
pub fn average_ranks(x: &[f64]) -> Vec<f64> {
    let mut order: Vec<usize> = (0..x.len()).collect();
    order.sort_by(|a, b| x[*a].total_cmp(&x[*b]));
    let mut ranks = vec![0.0; x.len()];
    let mut i = 0;
    while i < order.len() {
        let mut j = i;
        while j + 1 < order.len() && x[order[j + 1]] == x[order[i]] {
            j += 1;
        }
        let avg = (i + j) as f64 / 2.0 + 1.0;
        for k in i..=j {
            ranks[order[k]] = avg;
        }
        i = j + 1;
    }
    ranks
}

/// Spearman's ρ and its two-sided p; None where Pearson's r of the ranks is undefined.
pub fn spearman(x: &[f64], y: &[f64]) -> Option<(f64, f64)> {
    pearson(&average_ranks(x), &average_ranks(y))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64, tol: f64) {
        assert!(
            (a - b).abs() <= tol * b.abs().max(1e-300),
            "{a} vs {b} (tolerance {tol})"
        );
    }

    /// x, y, Pearson r and p, Spearman ρ and p.
    type Vector = (&'static [f64], &'static [f64], f64, f64, f64, f64);

    /// The scipy 1.17.1 vectors of methods.md B9.
    #[test]
    fn matches_scipy() {
        let cases: &[Vector] = &[
            (
                &[1., 2., 3., 4., 5.],
                &[2., 4., 5., 4., 5.],
                0.7745966692414835,
                0.1240270626575546,
                0.7378647873726218,
                0.15461852312844926,
            ),
            (
                &[1., 2., 2., 3., 4., 4., 4., 5.],
                &[2., 1., 3., 3., 5., 4., 6., 6.],
                0.8767227853705734,
                0.00426132570253361,
                0.9007775105401477,
                0.0022640090646742616,
            ),
            (
                &[60., 62., 58., 70., 75., 64., 66., 59.],
                &[55., 50., 57., 40., 35., 48., 45., 56.],
                -0.9929703432754767,
                8.638728704815419e-07,
                -1.0,
                0.0,
            ),
            (
                &[1., 2., 3.],
                &[1., 3., 2.],
                0.5,
                0.6666666666666666,
                0.5,
                0.6666666666666666,
            ),
        ];
        for (x, y, r, p, rho, sp) in cases {
            let (got_r, got_p) = pearson(x, y).unwrap();
            close(got_r, *r, 1e-12);
            close(got_p, *p, 1e-9);
            let (got_rho, got_sp) = spearman(x, y).unwrap();
            close(got_rho, *rho, 1e-12);
            if *sp == 0.0 {
                assert_eq!(got_sp, 0.0, "ρ = ±1 gives p = 0 exactly");
            } else {
                close(got_sp, *sp, 1e-9);
            }
        }
        assert!(
            pearson(&[1., 1., 1., 1.], &[1., 2., 3., 4.]).is_none(),
            "constant input"
        );
        assert!(spearman(&[1., 1., 1., 1.], &[1., 2., 3., 4.]).is_none());
    }

    #[test]
    fn ties_get_average_ranks() {
        assert_eq!(
            average_ranks(&[10., 20., 20., 5.]),
            vec![2.0, 3.5, 3.5, 1.0]
        );
    }

    #[test]
    fn tiny_p_values_do_not_collapse() {
        let x: Vec<f64> = (0..200).map(f64::from).collect();
        // r ≈ 0.94 over 200 points: p ≈ 1e-90, far below what 1 − cdf can represent.
        let y: Vec<f64> = x.iter().map(|v| v + 30.0 * (v * 7.0).sin()).collect();
        let (r, p) = pearson(&x, &y).unwrap();
        assert!(r > 0.9 && r < 0.97, "{r}");
        assert!(p > 0.0 && p < 1e-60, "{p}");
    }
}
