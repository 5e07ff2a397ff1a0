//! The metric catalogue: the one canonical list of metric names, each with one unit and one daily
//! aggregation rule, and the input units each accepts. Providers and the ingest API convert to it
//! at the edge; nothing downstream ever sees a provider's names or units.

use serde::Serialize;
use utoipa::ToSchema;

/// How a metric's samples of one local date collapse into that date's value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Aggregation {
    Sum,
    Mean,
    Min,
    Max,
    /// The value of the sample recorded last that day.
    Last,
}

impl Aggregation {
    pub fn as_str(self) -> &'static str {
        match self {
            Aggregation::Sum => "sum",
            Aggregation::Mean => "mean",
            Aggregation::Min => "min",
            Aggregation::Max => "max",
            Aggregation::Last => "last",
        }
    }
}

/// Canonical units. Each metric has exactly one.
pub mod unit {
    pub const COUNT: &str = "count";
    pub const METRE: &str = "m";
    pub const KCAL: &str = "kcal";
    pub const MINUTE: &str = "min";
    pub const BPM: &str = "bpm";
    pub const MS: &str = "ms";
    pub const PERCENT: &str = "%";
    pub const BRPM: &str = "brpm";
    pub const CELSIUS: &str = "°C";
    pub const SCORE: &str = "score";
    pub const KG: &str = "kg";
    pub const KG_M2: &str = "kg/m²";
    pub const MMHG: &str = "mmHg";
    pub const MG_DL: &str = "mg/dL";
    pub const ML_KG_MIN: &str = "mL/kg/min";
}

/// A conversion from an accepted input unit to the canonical one.
#[derive(Debug, Clone, Copy)]
pub enum Conversion {
    Identity,
    /// canonical = input × factor
    Scale(f64),
    /// canonical = (input − offset) × factor
    Affine {
        offset: f64,
        factor: f64,
    },
}

impl Conversion {
    pub fn apply(self, v: f64) -> f64 {
        match self {
            Conversion::Identity => v,
            Conversion::Scale(f) => v * f,
            Conversion::Affine { offset, factor } => (v - offset) * factor,
        }
    }
}

/// One catalogue entry.
#[derive(Debug, Clone, Copy)]
pub struct MetricDef {
    pub name: &'static str,
    pub unit: &'static str,
    pub aggregation: Aggregation,
    pub description: &'static str,
    /// Input units accepted besides the canonical one (spelling variants included).
    pub accepts: &'static [(&'static str, Conversion)],
    /// Sleep metrics belong to the local date on which the sleep ends.
    pub is_sleep: bool,
    /// For personal records: true when a lower daily value is the better one.
    pub lower_is_better: bool,
}

impl MetricDef {
    /// Converts `value` given in `input_unit` (None = canonical) to the canonical unit.
    /// Returns None when the unit is not accepted for this metric.
    pub fn convert(&self, value: f64, input_unit: Option<&str>) -> Option<f64> {
        let Some(u) = input_unit else {
            return Some(value);
        };
        let u = u.trim();
        if u.eq_ignore_ascii_case(self.unit)
            || ALIASES_OF_CANONICAL
                .iter()
                .any(|(c, a)| *c == self.unit && a.eq_ignore_ascii_case(u))
        {
            return Some(value);
        }
        self.accepts
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case(u))
            .map(|(_, c)| c.apply(value))
    }

    /// Every unit spelling this metric accepts, canonical first (for error messages and docs).
    pub fn accepted_units(&self) -> Vec<&'static str> {
        let mut v = vec![self.unit];
        v.extend(
            ALIASES_OF_CANONICAL
                .iter()
                .filter(|(c, _)| *c == self.unit)
                .map(|(_, a)| *a),
        );
        v.extend(self.accepts.iter().map(|(n, _)| *n));
        v
    }
}

/// Alternative spellings of canonical units that need no conversion.
const ALIASES_OF_CANONICAL: &[(&str, &str)] = &[
    (unit::COUNT, "steps"),
    (unit::COUNT, "floors"),
    (unit::METRE, "meters"),
    (unit::METRE, "metres"),
    (unit::MINUTE, "minutes"),
    (unit::BPM, "beats/min"),
    (unit::BRPM, "breaths/min"),
    (unit::CELSIUS, "C"),
    (unit::CELSIUS, "celsius"),
    (unit::CELSIUS, "degC"),
    (unit::KG, "kilograms"),
    (unit::KG_M2, "kg/m2"),
    (unit::MG_DL, "mg/dl"),
    (unit::ML_KG_MIN, "ml/kg/min"),
    (unit::PERCENT, "percent"),
];

const KJ_TO_KCAL: f64 = 1.0 / 4.184;
const LB_TO_KG: f64 = 0.453_592_37;
const MI_TO_M: f64 = 1_609.344;
/// Glucose: 1 mmol/L = 18.0156 mg/dL (molar mass of glucose 180.156 g/mol).
const MMOL_TO_MGDL: f64 = 18.0156;

const DISTANCE: &[(&str, Conversion)] = &[
    ("km", Conversion::Scale(1000.0)),
    ("mi", Conversion::Scale(MI_TO_M)),
    ("miles", Conversion::Scale(MI_TO_M)),
    ("ft", Conversion::Scale(0.3048)),
];
const ENERGY: &[(&str, Conversion)] = &[
    ("kJ", Conversion::Scale(KJ_TO_KCAL)),
    ("cal", Conversion::Identity),
];
const DURATION: &[(&str, Conversion)] = &[
    ("s", Conversion::Scale(1.0 / 60.0)),
    ("sec", Conversion::Scale(1.0 / 60.0)),
    ("h", Conversion::Scale(60.0)),
    ("hr", Conversion::Scale(60.0)),
];
const TEMPERATURE: &[(&str, Conversion)] = &[
    (
        "°F",
        Conversion::Affine {
            offset: 32.0,
            factor: 5.0 / 9.0,
        },
    ),
    (
        "F",
        Conversion::Affine {
            offset: 32.0,
            factor: 5.0 / 9.0,
        },
    ),
    (
        "degF",
        Conversion::Affine {
            offset: 32.0,
            factor: 5.0 / 9.0,
        },
    ),
    (
        "K",
        Conversion::Affine {
            offset: 273.15,
            factor: 1.0,
        },
    ),
];
/// A temperature *difference*: °F deviations scale without the 32° offset.
const TEMPERATURE_DELTA: &[(&str, Conversion)] = &[
    ("°F", Conversion::Scale(5.0 / 9.0)),
    ("F", Conversion::Scale(5.0 / 9.0)),
    ("degF", Conversion::Scale(5.0 / 9.0)),
];
const MASS: &[(&str, Conversion)] = &[
    ("lbs", Conversion::Scale(LB_TO_KG)),
    ("lb", Conversion::Scale(LB_TO_KG)),
    ("g", Conversion::Scale(0.001)),
];
const GLUCOSE: &[(&str, Conversion)] = &[("mmol/L", Conversion::Scale(MMOL_TO_MGDL))];
const FRACTION: &[(&str, Conversion)] = &[];
const NONE: &[(&str, Conversion)] = &[];

macro_rules! metric {
    ($name:literal, $unit:expr, $agg:ident, $accepts:expr, $desc:literal) => {
        metric!(
            $name,
            $unit,
            $agg,
            $accepts,
            $desc,
            sleep = false,
            lower = false
        )
    };
    ($name:literal, $unit:expr, $agg:ident, $accepts:expr, $desc:literal, sleep = $sleep:literal, lower = $lower:literal) => {
        MetricDef {
            name: $name,
            unit: $unit,
            aggregation: Aggregation::$agg,
            description: $desc,
            accepts: $accepts,
            is_sleep: $sleep,
            lower_is_better: $lower,
        }
    };
}

/// The catalogue. Order is the order `GET /v1/metric-types` lists them in.
pub static CATALOGUE: &[MetricDef] = &[
    metric!("steps", unit::COUNT, Sum, NONE, "Steps taken."),
    metric!(
        "distance",
        unit::METRE,
        Sum,
        DISTANCE,
        "Distance covered on foot or by activity."
    ),
    metric!(
        "active_energy",
        unit::KCAL,
        Sum,
        ENERGY,
        "Energy burned through activity, above resting."
    ),
    metric!(
        "total_energy",
        unit::KCAL,
        Sum,
        ENERGY,
        "Total energy burned, resting included."
    ),
    metric!(
        "active_minutes",
        unit::MINUTE,
        Sum,
        DURATION,
        "Minutes of moderate or vigorous activity."
    ),
    metric!("floors", unit::COUNT, Sum, NONE, "Floors climbed."),
    metric!(
        "heart_rate",
        unit::BPM,
        Mean,
        NONE,
        "Heart rate measurements."
    ),
    metric!(
        "resting_heart_rate",
        unit::BPM,
        Mean,
        NONE,
        "Resting heart rate.",
        sleep = false,
        lower = true
    ),
    metric!(
        "hrv_rmssd",
        unit::MS,
        Mean,
        NONE,
        "Heart rate variability as RMSSD."
    ),
    metric!(
        "spo2",
        unit::PERCENT,
        Mean,
        FRACTION,
        "Blood oxygen saturation."
    ),
    metric!(
        "respiratory_rate",
        unit::BRPM,
        Mean,
        NONE,
        "Breaths per minute."
    ),
    metric!(
        "body_temperature",
        unit::CELSIUS,
        Mean,
        TEMPERATURE,
        "Body temperature."
    ),
    metric!(
        "skin_temperature_deviation",
        unit::CELSIUS,
        Mean,
        TEMPERATURE_DELTA,
        "Skin temperature deviation from the personal baseline."
    ),
    metric!(
        "sleep_duration",
        unit::MINUTE,
        Sum,
        DURATION,
        "Time asleep.",
        sleep = true,
        lower = false
    ),
    metric!(
        "sleep_efficiency",
        unit::PERCENT,
        Mean,
        FRACTION,
        "Time asleep as a share of time in bed.",
        sleep = true,
        lower = false
    ),
    metric!(
        "sleep_deep",
        unit::MINUTE,
        Sum,
        DURATION,
        "Deep sleep.",
        sleep = true,
        lower = false
    ),
    metric!(
        "sleep_light",
        unit::MINUTE,
        Sum,
        DURATION,
        "Light sleep.",
        sleep = true,
        lower = false
    ),
    metric!(
        "sleep_rem",
        unit::MINUTE,
        Sum,
        DURATION,
        "REM sleep.",
        sleep = true,
        lower = false
    ),
    metric!(
        "sleep_awake",
        unit::MINUTE,
        Sum,
        DURATION,
        "Time awake during the sleep period.",
        sleep = true,
        lower = true
    ),
    metric!(
        "sleep_score",
        unit::SCORE,
        Last,
        NONE,
        "Sleep score reported by the device.",
        sleep = true,
        lower = false
    ),
    metric!("weight", unit::KG, Last, MASS, "Body weight."),
    metric!(
        "body_fat",
        unit::PERCENT,
        Last,
        FRACTION,
        "Body fat percentage."
    ),
    metric!("bmi", unit::KG_M2, Last, NONE, "Body mass index."),
    metric!(
        "blood_pressure_systolic",
        unit::MMHG,
        Mean,
        NONE,
        "Systolic blood pressure."
    ),
    metric!(
        "blood_pressure_diastolic",
        unit::MMHG,
        Mean,
        NONE,
        "Diastolic blood pressure."
    ),
    metric!(
        "blood_glucose",
        unit::MG_DL,
        Mean,
        GLUCOSE,
        "Blood glucose."
    ),
    metric!(
        "stress",
        unit::SCORE,
        Mean,
        NONE,
        "Stress level reported by the device.",
        sleep = false,
        lower = true
    ),
    metric!(
        "recovery_score",
        unit::PERCENT,
        Last,
        NONE,
        "Recovery score reported by the device."
    ),
    metric!(
        "readiness_score",
        unit::SCORE,
        Last,
        NONE,
        "Readiness score reported by the device."
    ),
    metric!(
        "strain",
        unit::SCORE,
        Last,
        NONE,
        "Day strain reported by the device."
    ),
    metric!(
        "vo2max",
        unit::ML_KG_MIN,
        Last,
        NONE,
        "Estimated maximal oxygen uptake."
    ),
];

/// Looks a metric up by its canonical name (exact, case-sensitive: names are identifiers).
pub fn metric(name: &str) -> Option<&'static MetricDef> {
    CATALOGUE.iter().find(|m| m.name == name)
}

/// Providers in the order their data wins when several report the same metric for the same user
/// and local date (dedicated devices first, manual pushes last). Unknown providers come after
/// these, alphabetically.
pub const DEFAULT_PROVIDER_PRIORITY: &[&str] = &[
    "garmin",
    "oura",
    "whoop",
    "fitbit",
    "withings",
    "polar",
    "apple_health",
    "strava",
    "demo",
    "api",
];

/// Rank of `provider` in the default priority (lower wins).
pub fn provider_rank(provider: &str) -> usize {
    DEFAULT_PROVIDER_PRIORITY
        .iter()
        .position(|p| *p == provider)
        .unwrap_or(DEFAULT_PROVIDER_PRIORITY.len())
}

/// A workspace's order of providers for choosing a day's source: the providers it lists come
/// first, in its order; then the others in the default order; then unknown ones, and ties, by
/// name. An empty list is the default order.
#[derive(
    Debug,
    Clone,
    Default,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    serde::Serialize,
    serde::Deserialize,
)]
pub struct ProviderPriority(pub Vec<String>);

impl ProviderPriority {
    /// Lower wins; compare `(rank, name)` to break ties.
    pub fn rank(&self, provider: &str) -> usize {
        self.0
            .iter()
            .position(|p| p == provider)
            .unwrap_or_else(|| self.0.len() + provider_rank(provider))
    }

    /// The winner among `providers`, if any.
    pub fn first<'a>(&self, providers: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
        providers
            .into_iter()
            .min_by(|a, b| (self.rank(a), *a).cmp(&(self.rank(b), *b)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_snake_case() {
        let mut names: Vec<_> = CATALOGUE.iter().map(|m| m.name).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), CATALOGUE.len());
        assert!(CATALOGUE.iter().all(|m| {
            m.name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        }));
    }

    #[test]
    fn conversions() {
        let close = |a: f64, b: f64| (a - b).abs() < 1e-9;
        assert!(close(
            metric("weight")
                .unwrap()
                .convert(150.0, Some("lbs"))
                .unwrap(),
            68.0388555
        ));
        assert!(close(
            metric("body_temperature")
                .unwrap()
                .convert(98.6, Some("°F"))
                .unwrap(),
            37.0
        ));
        assert!(close(
            metric("distance")
                .unwrap()
                .convert(1.5, Some("km"))
                .unwrap(),
            1500.0
        ));
        assert!(close(
            metric("distance")
                .unwrap()
                .convert(1.0, Some("mi"))
                .unwrap(),
            1609.344
        ));
        assert!(close(
            metric("active_energy")
                .unwrap()
                .convert(418.4, Some("kJ"))
                .unwrap(),
            100.0
        ));
        assert!(close(
            metric("blood_glucose")
                .unwrap()
                .convert(5.0, Some("mmol/L"))
                .unwrap(),
            90.078
        ));
        assert!(close(
            metric("sleep_duration")
                .unwrap()
                .convert(7.5, Some("h"))
                .unwrap(),
            450.0
        ));
        assert!(close(
            metric("sleep_duration")
                .unwrap()
                .convert(90.0, Some("s"))
                .unwrap(),
            1.5
        ));
        assert!(close(
            metric("skin_temperature_deviation")
                .unwrap()
                .convert(1.8, Some("°F"))
                .unwrap(),
            1.0
        ));
        assert_eq!(
            metric("steps").unwrap().convert(10.0, Some("steps")),
            Some(10.0)
        );
        assert_eq!(metric("steps").unwrap().convert(10.0, Some("kg")), None);
        assert_eq!(
            metric("heart_rate").unwrap().convert(60.0, None),
            Some(60.0)
        );
    }
}
