//! The pipeline's data: what goes in (sample changes), what comes out (analytics rows with a
//! diff), and the fixed-point representation that makes results exact and deterministic.
//!
//! Values enter as integers in millionths of the metric's canonical unit: differential
//! dataflow consolidates updates by equality, so a retraction must cancel its insertion bit
//! for bit, which floats summed in different orders do not guarantee. Statistics are computed
//! from those integers by the same functions in the pipeline and in the batch oracle.

use serde::{Deserialize, Serialize};

/// Millionths of the canonical unit.
pub type Fixed = i64;
pub const SCALE: f64 = 1_000_000.0;

pub fn to_fixed(v: f64) -> Fixed {
    (v * SCALE).round() as Fixed
}

pub fn from_fixed(v: Fixed) -> f64 {
    v as f64 / SCALE
}

/// A local date as days since 1970-01-01.
pub type Day = i32;

pub fn day_of(d: chrono::NaiveDate) -> Day {
    (d - chrono::NaiveDate::from_ymd_opt(1970, 1, 1).expect("epoch")).num_days() as Day
}

pub fn date_of(day: Day) -> chrono::NaiveDate {
    chrono::NaiveDate::from_ymd_opt(1970, 1, 1).expect("epoch") + chrono::Duration::days(day as i64)
}

/// A user, as the 128 bits of their UUID (compact and cheap to hash and exchange).
pub type UserKey = u128;

/// A metric, as its position in the catalogue.
pub type MetricKey = u16;

pub fn metric_key(name: &str) -> Option<MetricKey> {
    vitasync_engine::catalogue::CATALOGUE
        .iter()
        .position(|m| m.name == name)
        .map(|i| i as MetricKey)
}

pub fn metric_name(key: MetricKey) -> &'static str {
    vitasync_engine::catalogue::CATALOGUE[key as usize].name
}

/// One stored sample as the pipeline sees it. Its identity in the store is (user, provider,
/// metric, recorded_at); the pipeline carries the whole row so an update is "retract the old
/// row, insert the new one".
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct SampleRow {
    pub user: UserKey,
    pub metric: MetricKey,
    pub day: Day,
    pub provider: String,
    /// Microseconds since the Unix epoch; orders samples for the `Last` rule.
    pub recorded_at: i64,
    pub value: Fixed,
}

/// A change to the stored samples: +1 inserts a row, −1 retracts one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SampleDelta {
    pub row: SampleRow,
    pub diff: isize,
}

/// An `f64` with a total order, so computed statistics can travel as dataflow data.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub struct F64(pub f64);

impl PartialEq for F64 {
    fn eq(&self, other: &Self) -> bool {
        self.0.to_bits() == other.0.to_bits()
    }
}
impl Eq for F64 {}
impl PartialOrd for F64 {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for F64 {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.0.total_cmp(&other.0)
    }
}

/// The daily value of one (user, metric, local date).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Daily {
    pub value: Fixed,
    /// Samples of the chosen provider that went into the value.
    pub count: u32,
    /// The provider whose samples were used (shared: a handful of names, one per daily value).
    pub provider: std::sync::Arc<str>,
}

/// Statistics of one (user, metric) over a window of local dates.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Baseline {
    /// The last date of the window: the user's latest date with data for the metric.
    pub as_of: Day,
    pub n: u32,
    pub mean: F64,
    /// Sample standard deviation (n − 1); None below two values.
    pub sd: Option<F64>,
    pub median: F64,
    pub p25: F64,
    pub p75: F64,
    pub min: F64,
    pub max: F64,
    /// Least-squares slope in units per day; None below two distinct dates.
    pub slope_per_day: Option<F64>,
    /// Mean of the window's last 7 dates against the whole window's mean, in percent; None
    /// when the window mean is zero.
    pub change_7d_pct: Option<F64>,
}

/// Baseline windows, in days.
pub const WINDOWS: [u32; 2] = [28, 90];

/// Anomalies compare a date with the dates before it, the date itself excluded.
pub const ANOMALY_WINDOW: Day = 28;
/// Fewer values than this in the window: no statistical verdict.
pub const ANOMALY_MIN_VALUES: usize = 7;

/// How an anomaly was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Method {
    Zscore,
    Iqr,
    Clinical,
    RhrElevation,
}

impl Method {
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Zscore => "zscore",
            Method::Iqr => "iqr",
            Method::Clinical => "clinical",
            Method::RhrElevation => "rhr_elevation",
        }
    }
}

/// An anomaly's severity is the notification severity it is announced with.
pub use vitasync_engine::notify::event::Severity;

/// Statistics of the window before a date, as anomaly detection needs them.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct WindowStats {
    pub n: u32,
    pub mean: F64,
    pub sd: Option<F64>,
    pub median: F64,
    pub p25: F64,
    pub p75: F64,
}

/// One finding on one (user, metric, date) by one method.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Anomaly {
    pub method: Method,
    pub severity: Severity,
    /// The day's value.
    pub value: Fixed,
    /// What the method expected: the window mean (zscore), median (iqr, rhr_elevation) or the
    /// clinical threshold.
    pub expected: F64,
    /// (value − mean) / sd of the window, where defined.
    pub z: Option<F64>,
}

/// A user's best daily value of a metric: the highest, or the lowest where lower is better
/// (resting heart rate); the earliest date on a tie.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Record {
    pub value: Fixed,
    pub day: Day,
}

/// Correlations use the daily values of the 90 dates ending at the user's latest date.
pub const CORRELATION_WINDOW: Day = 90;
/// Fewer paired dates than this: no correlation.
pub const CORRELATION_MIN_PAIRS: usize = 14;

/// A significant correlation between two metrics of one user (|r| > 0.3 and p < 0.05).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Correlation {
    pub n: u32,
    pub pearson_r: F64,
    pub pearson_p: F64,
    pub spearman_rho: Option<F64>,
    pub spearman_p: Option<F64>,
}

/// One day's health scores, each 0–100; a component without inputs is None.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Scores {
    pub overall: F64,
    pub sleep: Option<F64>,
    pub activity: Option<F64>,
    pub cardio: Option<F64>,
    pub recovery: Option<F64>,
}

/// What a day's scores are computed from.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum ScoreInput {
    /// The day's value of a metric.
    Value(MetricKey, Fixed),
    /// Median resting heart rate of the 28 dates before (at least 7 values).
    RhrMedian(F64),
    /// Mean and sample SD of ln(rMSSD) over the 60 dates before (at least 7 values).
    HrvReference(F64, F64),
}

/// The HRV reference window (HRV4Training's "normal range" over the past 60 days).
pub const HRV_REFERENCE_WINDOW: Day = 60;

/// What the analytics of a user's dates before their horizon boundary contribute to one
/// (user, metric) series: the best daily value among those dates, and the baselines of the
/// windows ending at the series' latest date before the boundary. Computed in batch; the
/// series uses them only where the dataflow's own values cannot stand in (see `pipeline`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Prefix {
    /// The user's boundary: every date before it is archived.
    pub below: Day,
    pub record: Option<Record>,
    pub baselines: Vec<(u32, Baseline)>,
}

/// The significant correlations of a user's dates before their boundary, over the 90 dates
/// ending at the latest of them; they are the user's correlations while no date at or after
/// the boundary has a value.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct PrefixCorrelations {
    pub below: Day,
    pub rows: Vec<(MetricKey, MetricKey, u8, Correlation)>,
}

/// Everything a user's archived dates contribute to the rows the dataflow derives, as a
/// whole: it replaces what the operator held (one per user and epoch at most, never
/// retracted). The horizon sends one when it archives in batch (a user's first dates, a change
/// before the boundary); a boundary that merely moves forward is archived by the operator
/// itself, from the values it holds.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ArchiveSummary {
    pub prefixes: Vec<(MetricKey, Prefix)>,
    pub correlations: Option<PrefixCorrelations>,
}

/// The dated outputs of one user over `[from, below)`, computed in batch: they replace
/// whatever the user's rows on those dates were.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ArchivedDates {
    pub user: UserKey,
    pub from: Day,
    pub below: Day,
    pub anomalies: Vec<((MetricKey, Day), Vec<Anomaly>)>,
    pub scores: Vec<(Day, Scores)>,
}

/// A change to one output row.
#[derive(Debug, Clone, PartialEq)]
pub enum OutputDelta {
    /// A held date's daily value (the pipeline's intermediate, which no table holds). The
    /// value of a date the horizon evicts is not retracted: read them from the user's held
    /// dates on (`Dataflow::held_from`).
    Daily {
        user: UserKey,
        metric: MetricKey,
        day: Day,
        daily: Daily,
        diff: isize,
    },
    Baseline {
        user: UserKey,
        metric: MetricKey,
        window: u32,
        baseline: Baseline,
        diff: isize,
    },
    Anomaly {
        user: UserKey,
        metric: MetricKey,
        day: Day,
        anomaly: Anomaly,
        diff: isize,
    },
    Record {
        user: UserKey,
        metric: MetricKey,
        record: Record,
        diff: isize,
    },
    Scores {
        user: UserKey,
        day: Day,
        scores: Scores,
        diff: isize,
    },
    /// The longest workout of an activity type, by distance or by duration.
    WorkoutRecord {
        user: UserKey,
        activity: String,
        kind: WorkoutKind,
        record: Record,
        diff: isize,
    },
    /// Metric `a` on date d against metric `b` on date d + `lag` (lag 0: a < b).
    Correlation {
        user: UserKey,
        a: MetricKey,
        b: MetricKey,
        lag: u8,
        correlation: Correlation,
        diff: isize,
    },
    /// The user's dated outputs before a boundary, computed in batch. Applied after the
    /// epoch's other deltas: it replaces the rows of its dates, which the dataflow stops
    /// producing in the same epoch. (A boundary that merely moves forward sends none: the
    /// rows the dataflow emitted for the dates it passes stay as they are, final.)
    Archived(ArchivedDates),
}

/// A workout as the records see it: its activity type, local date, and what it measured
/// (distance in millionths of a metre, duration in millionths of a second).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct WorkoutRow {
    pub activity: String,
    pub day: Day,
    /// The stored event's id, so two equal workouts stay two.
    pub id: u128,
    pub distance: Option<Fixed>,
    pub duration: Option<Fixed>,
}

/// Which per-activity record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum WorkoutKind {
    LongestDistance,
    LongestDuration,
}

impl WorkoutKind {
    pub const ALL: [WorkoutKind; 2] = [WorkoutKind::LongestDistance, WorkoutKind::LongestDuration];

    pub fn as_str(self) -> &'static str {
        match self {
            WorkoutKind::LongestDistance => "longest_distance",
            WorkoutKind::LongestDuration => "longest_duration",
        }
    }

    /// What the record measures, and its unit.
    pub fn measure(self) -> (&'static str, &'static str) {
        match self {
            WorkoutKind::LongestDistance => ("distance", "m"),
            WorkoutKind::LongestDuration => ("duration", "s"),
        }
    }
}
