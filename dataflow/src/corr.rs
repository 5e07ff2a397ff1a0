//! Pearson and Spearman correlation with two-sided p-values computed as scipy computes them
//! (`scipy.stats.pearsonr` / `spearmanr`): Pearson's p from the exact Beta distribution of r
//! under independence, p = I_{1−r²}((n − 2)/2, 1/2); Spearman's ρ as Pearson's r of average
//! ranks, its p from Student's t with n − 2 degrees of freedom, which reduces to the same
//! incomplete-beta form. The regularised incomplete beta is evaluated directly — never as
//! 1 − cdf, which would collapse tiny p-values to zero.

use statrs::function::beta::checked_beta_reg;

use crate::model::Fixed;

/// Exact sums over paired integer observations. Pearson's r is computed from them alone, so
/// it does not depend on the order the pairs were added in: the pipeline (which assembles a
/// user's pairs from bit masks and per-metric sums) and the oracle (which walks the dates)
/// get the same bits. The sums are exact in `i128` for |values| below ~10^16, far beyond
/// any catalogue range in millionths.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Moments {
    pub n: i64,
    pub sx: i128,
    pub sy: i128,
    pub sxx: i128,
    pub syy: i128,
    pub sxy: i128,
}

impl Moments {
    pub fn add(&mut self, x: i64, y: i64) {
        let (x, y) = (i128::from(x), i128::from(y));
        self.n += 1;
        self.sx += x;
        self.sy += y;
        self.sxx += x * x;
        self.syy += y * y;
        self.sxy += x * y;
    }

    pub fn of(x: &[i64], y: &[i64]) -> Moments {
        let mut m = Moments::default();
        for (a, b) in x.iter().zip(y) {
            m.add(*a, *b);
        }
        m
    }

    /// Pearson's r; None for fewer than two points or constant input (scipy returns NaN
    /// there). The co-moments n·Σxy − Σx·Σy etc. are exact integers; the only roundings are
    /// their conversions, the square roots, the product and the division.
    pub fn r(&self) -> Option<f64> {
        if self.n < 2 {
            return None;
        }
        let n = i128::from(self.n);
        let x = Spread::of(n, self.sx, self.sxx)?;
        let y = Spread::of(n, self.sy, self.syy)?;
        Some(self.r_with(&x, &y))
    }

    /// Pearson's r given both sides' spreads (`Spread::of` over these sums), for callers that
    /// share a side among many pairs.
    pub fn r_with(&self, x: &Spread, y: &Spread) -> f64 {
        r_from(i128::from(self.n) * self.sxy - self.sx * self.sy, x, y)
    }
}

/// n·Σx² − (Σx)² for n values with these exact sums (n² times their variance), and its root.
/// A pair's r divides by the roots of both sides, so a side shared by many pairs (a metric
/// over the same dates) is computed once.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Spread {
    exact: i128,
    root: f64,
}

impl Spread {
    /// None when the values are all equal.
    pub fn of(n: i128, sum: i128, squares: i128) -> Option<Spread> {
        let exact = n * squares - sum * sum;
        (exact > 0).then(|| Spread {
            exact,
            root: to_f64(exact).sqrt(),
        })
    }
}

/// Pearson's r from the exact co-moment n·Σxy − Σx·Σy and both sides' spreads. A perfect
/// correlation (co² = spread_x·spread_y, checked exactly where it fits in 128 bits, as it does
/// for ranks) is ±1 exactly, so its p is 0 as scipy's is, whatever the roots round to.
fn r_from(co: i128, x: &Spread, y: &Spread) -> f64 {
    let r = (to_f64(co) / (x.root * y.root)).clamp(-1.0, 1.0);
    // Only a quotient within rounding of ±1 can be a perfect correlation (each of the four
    // roundings is relative, below 2^-52): the exact test, two 128-bit products, is for those.
    if r.abs() > 1.0 - 1e-9 {
        let perfect = co
            .checked_mul(co)
            .zip(x.exact.checked_mul(y.exact))
            .is_some_and(|(c, v)| c == v);
        if perfect {
            return if co > 0 { 1.0 } else { -1.0 };
        }
    }
    r
}

/// `v as f64` (the same correctly rounded value), through the one-instruction conversion from
/// 64 bits when `v` fits: the 128-bit one is a library call, and r takes three per pair.
pub(crate) fn to_f64(v: i128) -> f64 {
    match i64::try_from(v) {
        Ok(small) => small as f64,
        Err(_) => v as f64,
    }
}

/// Pearson's r and its two-sided p.
pub fn pearson(x: &[Fixed], y: &[Fixed]) -> Option<(f64, f64)> {
    Moments::of(x, y).r().map(|r| (r, p_value(r, x.len())))
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

/// Twice the average ranks (ranks start at 1; ties share their average, scipy
/// `rankdata(method="average")`), as integers so Spearman's ρ is exact moments of them.
pub fn doubled_ranks(x: &[Fixed]) -> Vec<i64> {
    let mut order: Vec<usize> = (0..x.len()).collect();
    order.sort_unstable_by_key(|i| (x[*i], *i));
    let mut ranks = vec![0; x.len()];
    let mut i = 0;
    while i < order.len() {
        let mut j = i;
        while j + 1 < order.len() && x[order[j + 1]] == x[order[i]] {
            j += 1;
        }
        // Positions i..=j (0-based) share rank ((i + 1) + (j + 1)) / 2.
        let doubled = (i + j + 2) as i64;
        for k in i..=j {
            ranks[order[k]] = doubled;
        }
        i = j + 1;
    }
    ranks
}

/// Spearman's ρ and its two-sided p; None where Pearson's r of the ranks is undefined.
pub fn spearman(x: &[Fixed], y: &[Fixed]) -> Option<(f64, f64)> {
    let rho = Moments::of(&doubled_ranks(x), &doubled_ranks(y)).r()?;
    Some((rho, p_value(rho, x.len())))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::to_fixed;

    fn fixed(xs: &[f64]) -> Vec<Fixed> {
        xs.iter().map(|v| to_fixed(*v)).collect()
    }

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
            let (x, y) = (fixed(x), fixed(y));
            let (x, y) = (&x[..], &y[..]);
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
        let (ones, steps) = (fixed(&[1., 1., 1., 1.]), fixed(&[1., 2., 3., 4.]));
        assert!(pearson(&ones, &steps).is_none(), "constant input");
        assert!(spearman(&ones, &steps).is_none());
    }

    /// r = ±1 exactly (so p = 0) for every length, not only where the roots of the spreads
    /// happen to round back to them.
    #[test]
    fn perfect_correlations_are_exact() {
        for n in 3..60 {
            let x: Vec<Fixed> = (0..n).map(|i| to_fixed(f64::from(i) * 1.5)).collect();
            let up: Vec<Fixed> = x.iter().map(|v| 3 * v + 7_000_000).collect();
            let down: Vec<Fixed> = x.iter().map(|v| 11_000_000 - 2 * v).collect();
            assert_eq!(pearson(&x, &up), Some((1.0, 0.0)), "n = {n}");
            assert_eq!(pearson(&x, &down), Some((-1.0, 0.0)), "n = {n}");
            assert_eq!(spearman(&x, &up), Some((1.0, 0.0)), "n = {n}");
            assert_eq!(spearman(&x, &down), Some((-1.0, 0.0)), "n = {n}");
        }
    }

    #[test]
    fn ties_get_average_ranks() {
        assert_eq!(doubled_ranks(&[10, 20, 20, 5]), vec![4, 7, 7, 2]);
    }

    #[test]
    fn tiny_p_values_do_not_collapse() {
        let x: Vec<f64> = (0..200).map(f64::from).collect();
        // r ≈ 0.94 over 200 points: p ≈ 1e-90, far below what 1 − cdf can represent.
        let y: Vec<f64> = x.iter().map(|v| v + 30.0 * (v * 7.0).sin()).collect();
        let (r, p) = pearson(&fixed(&x), &fixed(&y)).unwrap();
        assert!(r > 0.9 && r < 0.97, "{r}");
        assert!(p > 0.0 && p < 1e-60, "{p}");
    }
}
