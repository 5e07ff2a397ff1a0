//! The analytics' arithmetic as pure functions over fixed-point inputs, shared by the pipeline
//! and the batch oracle so that both produce identical bits. Definitions follow
//! `docs/analytics.md`: sample standard deviation (n − 1), quantiles by linear interpolation
//! between closest ranks (numpy's and R's default), least-squares slope per day.

use crate::corr::to_f64;
use vitasync_engine::catalogue::{self, Aggregation};

use crate::model::{
    ANOMALY_MIN_VALUES, Anomaly, Baseline, CORRELATION_MIN_PAIRS, Correlation, Daily, Day, F64,
    Fixed, Method, MetricKey, Record, SCALE, ScoreInput, Scores, Severity, WindowStats, from_fixed,
    metric_name,
};

/// One sample of a (user, metric, date) group: provider, recorded_at (µs), value.
pub type DayEntry<'a> = (&'a str, i64, Fixed);

/// The day's value: the samples of the highest-priority provider (never a sum across
/// devices), aggregated by the metric's catalogue rule. `entries` may come in any order.
pub fn daily_value(
    metric: MetricKey,
    priority: &catalogue::ProviderPriority,
    entries: &[(DayEntry<'_>, isize)],
) -> Option<Daily> {
    let winner = priority.first(
        entries
            .iter()
            .filter(|(_, n)| *n > 0)
            .map(|((p, _, _), _)| *p),
    )?;
    provider_daily(metric, winner, entries)
}

/// Each provider's value of the day (its samples aggregated by the catalogue rule) and how
/// many samples went into it, ordered by provider. `P` is whatever names the provider (the
/// pipeline uses interned ids).
pub fn provider_dailies<P: Ord + Copy>(
    metric: MetricKey,
    entries: &[((P, i64, Fixed), isize)],
) -> Vec<(P, Fixed, u32)> {
    let mut providers: Vec<P> = entries
        .iter()
        .filter(|(_, n)| *n > 0)
        .map(|((p, _, _), _)| *p)
        .collect();
    providers.sort_unstable();
    providers.dedup();
    providers
        .into_iter()
        .filter_map(|p| aggregate(metric, p, entries).map(|(v, count)| (p, v, count)))
        .collect()
}

/// One provider's samples of the day aggregated by the metric's catalogue rule.
fn provider_daily(
    metric: MetricKey,
    winner: &str,
    entries: &[(DayEntry<'_>, isize)],
) -> Option<Daily> {
    aggregate(metric, winner, entries).map(|(value, count)| Daily {
        value,
        count,
        provider: winner.into(),
    })
}

/// The value of `winner`'s samples by the metric's rule, and their number.
fn aggregate<P: PartialEq>(
    metric: MetricKey,
    winner: P,
    entries: &[((P, i64, Fixed), isize)],
) -> Option<(Fixed, u32)> {
    let mut count: u32 = 0;
    let mut sum: i128 = 0;
    let mut min = Fixed::MAX;
    let mut max = Fixed::MIN;
    let mut last: Option<(i64, Fixed)> = None;
    for ((p, at, v), n) in entries {
        if *p != winner || *n <= 0 {
            continue;
        }
        for _ in 0..*n {
            count += 1;
            sum += i128::from(*v);
        }
        min = min.min(*v);
        max = max.max(*v);
        if last.is_none_or(|(t, lv)| (*at, *v) > (t, lv)) {
            last = Some((*at, *v));
        }
    }
    let rule = catalogue::CATALOGUE[metric as usize].aggregation;
    let value = match rule {
        Aggregation::Sum => sum.clamp(i128::from(Fixed::MIN), i128::from(Fixed::MAX)) as Fixed,
        Aggregation::Mean => div_round(sum, i128::from(count)),
        Aggregation::Min => min,
        Aggregation::Max => max,
        Aggregation::Last => last.map(|(_, v)| v).unwrap_or_default(),
    };
    Some((value, count))
}

/// Integer division rounding half away from zero.
fn div_round(num: i128, den: i128) -> Fixed {
    if den == 0 {
        return 0;
    }
    let q = num / den;
    let r = num % den;
    let q = if 2 * r.abs() >= den.abs() {
        q + num.signum() * den.signum()
    } else {
        q
    };
    q as Fixed
}

/// The `q` quantile of sorted, non-empty fixed-point values in the canonical unit: the same
/// numbers as [`quantile`] over the converted values (the conversion is monotone), without
/// converting them all.
fn quantile_fixed(sorted: &[Fixed], q: f64) -> f64 {
    let h = (sorted.len() - 1) as f64 * q;
    let lo = h.floor() as usize;
    let hi = (lo + 1).min(sorted.len() - 1);
    let (a, b) = (from_fixed(sorted[lo]), from_fixed(sorted[hi]));
    a + (h - lo as f64) * (b - a)
}

/// Exact sums over the (date, value) points of a window: everything a baseline needs besides
/// the order of the values. Kept as integers so a window that slides (one date in, one out)
/// holds the same sums as one summed afresh, and the statistics derived from them are the same
/// bits either way. Dates enter as they are (days since 1970): the slope's co-moments
/// n·Σdv − Σd·Σv and n·Σd² − (Σd)² do not depend on where the dates are counted from.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WindowSums {
    pub n: i64,
    pub sum: i128,
    pub squares: i128,
    pub days: i128,
    pub day_squares: i128,
    pub day_values: i128,
}

impl WindowSums {
    pub fn of(values: &[(Day, Fixed)]) -> WindowSums {
        let mut sums = WindowSums::default();
        for (d, v) in values {
            sums.add(*d, *v);
        }
        sums
    }

    pub fn add(&mut self, day: Day, value: Fixed) {
        self.step(day, value, 1);
    }

    pub fn remove(&mut self, day: Day, value: Fixed) {
        self.step(day, value, -1);
    }

    fn step(&mut self, day: Day, value: Fixed, sign: i128) {
        let (d, v) = (i128::from(day), i128::from(value));
        self.n += sign as i64;
        self.sum += sign * v;
        self.squares += sign * v * v;
        self.days += sign * d;
        self.day_squares += sign * d * d;
        self.day_values += sign * d * v;
    }
}

/// Statistics of a window. `values` are (day, value) sorted by day, one per day, all within
/// the window ending at `as_of`; at least one.
pub fn baseline(as_of: Day, values: &[(Day, Fixed)]) -> Baseline {
    let mut sorted: Vec<Fixed> = values.iter().map(|(_, v)| *v).collect();
    sorted.sort_unstable();
    baseline_of(
        as_of,
        &WindowSums::of(values),
        &sorted,
        recent(as_of, values),
    )
}

/// The number and exact sum of the values of the 7 dates ending at `as_of` (the values sorted
/// by day and none after `as_of`).
pub fn recent(as_of: Day, values: &[(Day, Fixed)]) -> (i64, i128) {
    let from = values.partition_point(|(d, _)| *d <= as_of - 7);
    let last = &values[from..];
    (
        last.len() as i64,
        last.iter().map(|(_, v)| i128::from(*v)).sum(),
    )
}

/// A window's statistics from its exact sums, its values in ascending order (at least one) and
/// the count and sum of its last 7 dates. Every moment is an exact integer until the final
/// division, so the result does not depend on how the sums were accumulated.
pub fn baseline_of(
    as_of: Day,
    sums: &WindowSums,
    sorted: &[Fixed],
    (recent_n, recent_sum): (i64, i128),
) -> Baseline {
    let n = sums.n;
    let mean = to_f64(sums.sum) / n as f64 / SCALE;
    let wide = i128::from(n);
    // n²·variance, in millionths squared: exact, and never negative.
    let spread = wide * sums.squares - sums.sum * sums.sum;
    let sd = (n >= 2).then(|| F64((to_f64(spread) / (n as f64 * (n as f64 - 1.0))).sqrt() / SCALE));
    let day_spread = wide * sums.day_squares - sums.days * sums.days;
    let co_spread = wide * sums.day_values - sums.days * sums.sum;
    let slope_per_day =
        (day_spread > 0).then(|| F64(to_f64(co_spread) / to_f64(day_spread) / SCALE));
    // (recent mean − mean) / |mean| = (n·Σrecent − k·Σ) / (k·|Σ|).
    let change_7d_pct = (recent_n > 0 && sums.sum != 0).then(|| {
        let num = wide * recent_sum - i128::from(recent_n) * sums.sum;
        let den = i128::from(recent_n) * sums.sum.abs();
        F64(to_f64(num) / to_f64(den) * 100.0)
    });
    Baseline {
        as_of,
        n: n as u32,
        mean: F64(mean),
        sd,
        median: F64(quantile_fixed(sorted, 0.5)),
        p25: F64(quantile_fixed(sorted, 0.25)),
        p75: F64(quantile_fixed(sorted, 0.75)),
        min: F64(from_fixed(sorted[0])),
        max: F64(from_fixed(sorted[sorted.len() - 1])),
        slope_per_day,
        change_7d_pct,
    }
}

/// Statistics of the window before a date; None below the minimum number of values.
/// `values` are the window's daily values in date order.
pub fn window_stats(values: &[Fixed]) -> Option<WindowStats> {
    if values.len() < ANOMALY_MIN_VALUES {
        return None;
    }
    let n = values.len();
    let sum: i128 = values.iter().map(|v| i128::from(*v)).sum();
    let mean = to_f64(sum) / n as f64 / SCALE;
    let ss: f64 = values
        .iter()
        .map(|v| (from_fixed(*v) - mean) * (from_fixed(*v) - mean))
        .sum();
    let sd = ss / (n as f64 - 1.0);
    // On the stack: every date of every metric asks for one of these (28 values).
    let mut sorted: smallvec::SmallVec<[Fixed; 32]> = values.into();
    sorted.sort_unstable();
    Some(WindowStats {
        n: n as u32,
        mean: F64(mean),
        sd: Some(F64(sd.sqrt())),
        median: F64(quantile_fixed(&sorted, 0.5)),
        p25: F64(quantile_fixed(&sorted, 0.25)),
        p75: F64(quantile_fixed(&sorted, 0.75)),
    })
}

/// Clinical thresholds (checked on the day's value, no window needed): metric, threshold,
/// and whether values above (true) or below (false) it are alarming.
pub const CLINICAL: &[(&str, f64, bool)] = &[
    ("spo2", 92.0, false),
    ("resting_heart_rate", 120.0, true),
    ("body_temperature", 39.5, true),
];

/// How far above its window's median a resting heart rate must be to count as elevated (bpm).
pub const RHR_ELEVATION_BPM: f64 = 4.0;

/// The clinical finding for one day's value, if its metric has a threshold and it is crossed.
pub fn detect_clinical(metric: MetricKey, value: Fixed) -> Option<Anomaly> {
    let v = from_fixed(value);
    let name = metric_name(metric);
    CLINICAL
        .iter()
        .find(|(m, threshold, above)| {
            *m == name && ((*above && v > *threshold) || (!*above && v < *threshold))
        })
        .map(|(_, threshold, _)| Anomaly {
            method: Method::Clinical,
            severity: Severity::Critical,
            value,
            expected: F64(*threshold),
            z: None,
        })
}

/// The z-score and IQR findings for one day's value against the window before it
/// (rhr_elevation needs two days and is decided by [`rhr_elevated`]).
pub fn detect_window(value: Fixed, w: &WindowStats) -> Vec<Anomaly> {
    let v = from_fixed(value);
    let mut out = Vec::new();
    let z =
        w.sd.filter(|sd| sd.0 > 0.0)
            .map(|sd| F64((v - w.mean.0) / sd.0));
    if let Some(z) = z
        && z.0.abs() >= 2.5
    {
        out.push(Anomaly {
            method: Method::Zscore,
            severity: if z.0.abs() >= 3.5 {
                Severity::Warning
            } else {
                Severity::Info
            },
            value,
            expected: w.mean,
            z: Some(z),
        });
    }
    let iqr = w.p75.0 - w.p25.0;
    let (low, high) = (w.p25.0 - 1.5 * iqr, w.p75.0 + 1.5 * iqr);
    if v < low || v > high {
        let extreme = v < w.p25.0 - 3.0 * iqr || v > w.p75.0 + 3.0 * iqr;
        out.push(Anomaly {
            method: Method::Iqr,
            severity: if extreme {
                Severity::Warning
            } else {
                Severity::Info
            },
            value,
            expected: w.median,
            z,
        });
    }
    out
}

/// Whether a day's resting heart rate is elevated against its window (Alavi et al. 2022: at
/// least 4 bpm above the median of the preceding 28 days).
pub fn rhr_elevated(value: Fixed, window: &WindowStats) -> bool {
    from_fixed(value) - window.median.0 >= RHR_ELEVATION_BPM
}

/// The rhr_elevation finding for a day whose value and the previous day's are both elevated.
pub fn rhr_anomaly(value: Fixed, window: &WindowStats) -> Anomaly {
    let v = from_fixed(value);
    Anomaly {
        method: Method::RhrElevation,
        severity: Severity::Warning,
        value,
        expected: window.median,
        z: window
            .sd
            .filter(|sd| sd.0 > 0.0)
            .map(|sd| F64((v - window.mean.0) / sd.0)),
    }
}

/// The correlation of paired daily values (in date order), if there are enough pairs and it is
/// significant: |r| > 0.3 and Pearson's p < 0.05.
pub fn correlation(pairs: &[(Fixed, Fixed)]) -> Option<Correlation> {
    if pairs.len() < CORRELATION_MIN_PAIRS {
        return None;
    }
    let mut m = crate::corr::Moments::default();
    for (x, y) in pairs {
        m.add(*x, *y);
    }
    significant(&m, || {
        let x: Vec<Fixed> = pairs.iter().map(|(a, _)| *a).collect();
        let y: Vec<Fixed> = pairs.iter().map(|(_, b)| *b).collect();
        crate::corr::Moments::of(
            &crate::corr::doubled_ranks(&x),
            &crate::corr::doubled_ranks(&y),
        )
    })
}

/// The correlation of pairs with exact moments `m` (at least the minimum number of pairs), if
/// significant; `ranks` gives the moments of their doubled average ranks, asked for only
/// then (Spearman is the costly part and most pairs fail |r| > 0.3 first).
pub fn significant(
    m: &crate::corr::Moments,
    ranks: impl FnOnce() -> crate::corr::Moments,
) -> Option<Correlation> {
    significant_r(m.r()?, m.n as usize, ranks)
}

/// The correlation of `n` pairs with Pearson's `r`, if significant (see [`significant`]).
pub fn significant_r(
    r: f64,
    n: usize,
    ranks: impl FnOnce() -> crate::corr::Moments,
) -> Option<Correlation> {
    if r.abs() <= 0.3 {
        return None;
    }
    let p = crate::corr::p_value(r, n);
    if p >= 0.05 {
        return None;
    }
    let rho = ranks().r();
    Some(Correlation {
        n: n as u32,
        pearson_r: F64(r),
        pearson_p: F64(p),
        spearman_rho: rho.map(F64),
        spearman_p: rho.map(|rho| F64(crate::corr::p_value(rho, n))),
    })
}

/// ln(rMSSD) reference statistics (mean, sample SD) of the values before a date; None below
/// the minimum number of values or for non-positive readings only.
pub fn hrv_reference(values: &[Fixed]) -> Option<(F64, F64)> {
    // On the stack: a score date asks for one of these, and the window is 60 dates.
    let logs: smallvec::SmallVec<[f64; 64]> = values
        .iter()
        .map(|v| from_fixed(*v))
        .filter(|v| *v > 0.0)
        .map(f64::ln)
        .collect();
    if logs.len() < ANOMALY_MIN_VALUES {
        return None;
    }
    let n = logs.len() as f64;
    let mean = logs.iter().sum::<f64>() / n;
    let sd = (logs.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / (n - 1.0)).sqrt();
    Some((F64(mean), F64(sd)))
}

/// The metrics whose daily values feed the scores.
pub const SCORE_METRICS: &[&str] = &[
    "sleep_duration",
    "sleep_efficiency",
    "sleep_deep",
    "sleep_rem",
    "sleep_awake",
    "steps",
    "active_minutes",
    "resting_heart_rate",
    "hrv_rmssd",
];

fn clamp100(v: f64) -> f64 {
    v.clamp(0.0, 100.0)
}

/// The day's scores (see docs/analytics.md for each formula and its source); None when no
/// component has inputs.
pub fn scores(inputs: &[ScoreInput]) -> Option<Scores> {
    let value = |name: &str| {
        let key = crate::model::metric_key(name)?;
        inputs.iter().find_map(|i| match i {
            ScoreInput::Value(m, v) if *m == key => Some(from_fixed(*v)),
            _ => None,
        })
    };
    let duration = value("sleep_duration");
    let efficiency = value("sleep_efficiency");
    let deep = value("sleep_deep");
    let rem = value("sleep_rem");
    let awake = value("sleep_awake");
    let steps = value("steps");
    let active = value("active_minutes");
    let rhr = value("resting_heart_rate");
    let hrv = value("hrv_rmssd");
    let rhr_median = inputs.iter().find_map(|i| match i {
        ScoreInput::RhrMedian(m) => Some(m.0),
        _ => None,
    });
    let hrv_ref = inputs.iter().find_map(|i| match i {
        ScoreInput::HrvReference(m, sd) => Some((m.0, sd.0)),
        _ => None,
    });

    // Sleep, after Fitbit's composition: duration 50 points (full at 8 h), quality 25 (deep +
    // REM reaching 40 % of the sleep, else efficiency from 70 % to 95 %), restoration 25
    // (no points lost up to 10 min awake, none left at 60 min). Parts without inputs are left
    // out and the rest rescaled to 100.
    let sleep = duration.filter(|d| *d > 0.0).map(|d| {
        let mut points = 50.0 * (d / 480.0).min(1.0);
        let mut max = 50.0;
        let quality = match (deep, rem) {
            (Some(deep), Some(rem)) => Some(((deep + rem) / d / 0.40).min(1.0)),
            _ => efficiency.map(|e| ((e - 70.0) / 25.0).clamp(0.0, 1.0)),
        };
        if let Some(q) = quality {
            points += 25.0 * q;
            max += 25.0;
        }
        if let Some(a) = awake {
            points += 25.0 * (1.0 - ((a - 10.0) / 50.0).clamp(0.0, 1.0));
            max += 25.0;
        }
        F64(clamp100(points / max * 100.0))
    });
    // Activity: 10,000 steps and 30 active minutes a day (WHO's 150 min a week) are full marks,
    // 60 / 40 points.
    let activity = match (steps, active) {
        (None, None) => None,
        (s, a) => {
            let mut points = 0.0;
            let mut max = 0.0;
            if let Some(s) = s {
                points += 60.0 * (s / 10_000.0).clamp(0.0, 1.0);
                max += 60.0;
            }
            if let Some(a) = a {
                points += 40.0 * (a / 30.0).clamp(0.0, 1.0);
                max += 40.0;
            }
            Some(F64(clamp100(points / max * 100.0)))
        }
    };
    // Cardio: resting heart rate against the median of the 28 dates before: 75 at the median,
    // 12.5 points per bpm (100 at 2 bpm below; 25 at the 4 bpm elevation of Alavi et al.).
    let cardio = rhr
        .zip(rhr_median)
        .map(|(r, m)| F64(clamp100(75.0 - 12.5 * (r - m))));
    // Recovery: ln(rMSSD) against its 60-day reference (HRV4Training / Plews): 50 at the
    // reference mean, 25 points per reference SD.
    let recovery = hrv
        .filter(|h| *h > 0.0)
        .zip(hrv_ref)
        .filter(|(_, (_, sd))| *sd > 0.0)
        .map(|(h, (m, sd))| F64(clamp100(50.0 + 25.0 * (h.ln() - m) / sd)));

    let weighted = [
        (sleep, 0.30),
        (activity, 0.20),
        (cardio, 0.25),
        (recovery, 0.25),
    ];
    let total: f64 = weighted
        .iter()
        .filter(|(s, _)| s.is_some())
        .map(|(_, w)| w)
        .sum();
    if total == 0.0 {
        return None;
    }
    let overall = weighted
        .iter()
        .filter_map(|(s, w)| s.map(|s| s.0 * w))
        .sum::<f64>()
        / total;
    Some(Scores {
        overall: F64(overall),
        sleep,
        activity,
        cardio,
        recovery,
    })
}

/// The best of a metric's daily values (`values` are (day, value), any order, non-empty).
pub fn record(metric: MetricKey, values: &[(Day, Fixed)]) -> Option<Record> {
    let lower = catalogue::CATALOGUE[metric as usize].lower_is_better;
    values
        .iter()
        .map(|(d, v)| Record { value: *v, day: *d })
        .min_by(|a, b| {
            let by_value = if lower {
                a.value.cmp(&b.value)
            } else {
                b.value.cmp(&a.value)
            };
            by_value.then(a.day.cmp(&b.day))
        })
}

/// The longest workouts of one activity type, by distance and by duration (each where some
/// workout measured it; the earliest date on a tie).
pub fn workout_records(
    rows: &[&crate::model::WorkoutRow],
) -> Vec<(crate::model::WorkoutKind, Record)> {
    use crate::model::WorkoutKind;
    WorkoutKind::ALL
        .into_iter()
        .filter_map(|kind| {
            rows.iter()
                .filter_map(|w| {
                    let v = match kind {
                        WorkoutKind::LongestDistance => w.distance,
                        WorkoutKind::LongestDuration => w.duration,
                    }?;
                    Some(Record {
                        value: v,
                        day: w.day,
                    })
                })
                .min_by(|a, b| b.value.cmp(&a.value).then(a.day.cmp(&b.day)))
                .map(|r| (kind, r))
        })
        .collect()
}

/// The `q` quantile of sorted, non-empty `xs` by linear interpolation between closest ranks
/// (numpy `percentile(..., method="linear")`, R type 7).
pub fn quantile(xs: &[f64], q: f64) -> f64 {
    let h = (xs.len() - 1) as f64 * q;
    let lo = h.floor() as usize;
    let hi = (lo + 1).min(xs.len() - 1);
    xs[lo] + (h - lo as f64) * (xs[hi] - xs[lo])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{F64, Record, ScoreInput, metric_key, to_fixed};

    fn close(a: f64, b: f64) {
        assert!((a - b).abs() < 1e-9, "{a} != {b}");
    }

    #[test]
    fn quantiles_match_numpy_linear() {
        // numpy.percentile([1, 2, 3, 4], [25, 50, 75]) = [1.75, 2.5, 3.25]
        let xs = [1.0, 2.0, 3.0, 4.0];
        close(quantile(&xs, 0.25), 1.75);
        close(quantile(&xs, 0.5), 2.5);
        close(quantile(&xs, 0.75), 3.25);
        close(quantile(&[7.0], 0.25), 7.0);
    }

    #[test]
    fn baseline_statistics() {
        // values 10, 12, 11, 15 on days 0..4 (as_of = 3):
        // mean 12, sd (n-1) = sqrt(14/3), slope = 7/5 = 1.4 (numpy.polyfit), last-7 mean = all.
        let v: Vec<(Day, Fixed)> = [10.0, 12.0, 11.0, 15.0]
            .iter()
            .enumerate()
            .map(|(i, x)| (i as Day, to_fixed(*x)))
            .collect();
        let b = baseline(3, &v);
        assert_eq!(b.n, 4);
        close(b.mean.0, 12.0);
        close(b.sd.unwrap().0, (14.0f64 / 3.0).sqrt());
        close(b.median.0, 11.5);
        close(b.p25.0, 10.75);
        close(b.p75.0, 12.75);
        close(b.slope_per_day.unwrap().0, 1.4);
        close(b.change_7d_pct.unwrap().0, 0.0);
        let one = baseline(3, &v[3..]);
        assert_eq!((one.sd, one.slope_per_day), (None, None));
    }

    #[test]
    fn daily_value_picks_one_provider_and_applies_the_rule() {
        let steps = metric_key("steps").unwrap();
        let entries = [
            (("api", 1, to_fixed(100.0)), 1),
            (("fitbit", 1, to_fixed(4000.0)), 1),
            (("fitbit", 2, to_fixed(1000.0)), 1),
        ];
        let d = daily_value(steps, &Default::default(), &entries).unwrap();
        assert_eq!(
            (d.value, d.count, &*d.provider),
            (to_fixed(5000.0), 2, "fitbit")
        );
        // A workspace that trusts manual entries first.
        let api_first = catalogue::ProviderPriority(vec!["api".into()]);
        let d = daily_value(steps, &api_first, &entries).unwrap();
        assert_eq!((d.value, &*d.provider), (to_fixed(100.0), "api"));
        let hr = metric_key("heart_rate").unwrap();
        let d = daily_value(
            hr,
            &Default::default(),
            &[
                (("demo", 1, to_fixed(60.0)), 1),
                (("demo", 2, to_fixed(61.0)), 1),
            ],
        )
        .unwrap();
        assert_eq!(d.value, to_fixed(60.5));
        let w = metric_key("weight").unwrap();
        let d = daily_value(
            w,
            &Default::default(),
            &[
                (("demo", 9, to_fixed(70.0)), 1),
                (("demo", 2, to_fixed(71.0)), 1),
            ],
        )
        .unwrap();
        assert_eq!(d.value, to_fixed(70.0), "the latest recorded sample wins");
        assert!(daily_value(w, &Default::default(), &[]).is_none());
    }

    #[test]
    fn records_respect_lower_is_better_and_ties() {
        let steps = metric_key("steps").unwrap();
        let rhr = metric_key("resting_heart_rate").unwrap();
        let v = [(3, 500), (1, 900), (2, 900), (4, 100)];
        assert_eq!(
            record(steps, &v),
            Some(Record { value: 900, day: 1 }),
            "earliest of the tied best"
        );
        assert_eq!(
            record(rhr, &v),
            Some(Record { value: 100, day: 4 }),
            "lower is better"
        );
        assert_eq!(record(rhr, &[]), None);
    }

    #[test]
    fn scores_follow_the_documented_formulas() {
        let v = |name: &str, x: f64| ScoreInput::Value(metric_key(name).unwrap(), to_fixed(x));
        let s = scores(&[
            v("sleep_duration", 480.0),
            v("sleep_deep", 96.0),
            v("sleep_rem", 96.0),
            v("sleep_awake", 10.0),
            v("steps", 5_000.0),
            v("resting_heart_rate", 62.0),
            ScoreInput::RhrMedian(F64(60.0)),
        ])
        .unwrap();
        close(s.sleep.unwrap().0, 100.0);
        close(s.activity.unwrap().0, 50.0);
        close(s.cardio.unwrap().0, 50.0);
        assert_eq!(s.recovery, None, "no HRV reference, no recovery component");
        close(
            s.overall.0,
            (100.0 * 0.30 + 50.0 * 0.20 + 50.0 * 0.25) / 0.75,
        );

        let hrv = scores(&[
            v("hrv_rmssd", (3.0f64 + 0.2).exp()),
            ScoreInput::HrvReference(F64(3.0), F64(0.2)),
        ])
        .unwrap();
        // rMSSD travels in millionths of a ms, so ln of it is exact to about 1e-7.
        assert!((hrv.recovery.unwrap().0 - 75.0).abs() < 1e-4);
        assert_eq!(hrv.overall, hrv.recovery.unwrap());
        assert!(
            scores(&[v("weight", 70.0)]).is_none(),
            "a day without score inputs has no row"
        );
    }

    #[test]
    fn rounding_is_half_away_from_zero() {
        assert_eq!(div_round(5, 2), 3);
        assert_eq!(div_round(-5, 2), -3);
        assert_eq!(div_round(4, 3), 1);
    }
}
