//! Fitbit Web API wire types: exactly the fields VitaSync reads, as Fitbit spells them. Every
//! field that a tracker without the matching sensor (or a day without data) leaves out is
//! optional, so a sparse day decodes instead of failing the sync.
//!
//! Local times are kept as `NaiveDateTime`/`NaiveTime`: Fitbit writes them in the user's profile
//! time zone without an offset, and only the mapping knows which zone that is.

use std::collections::BTreeMap;

use chrono::{DateTime, FixedOffset, NaiveDate, NaiveDateTime, NaiveTime};
use serde::Deserialize;

/// `GET /1/user/-/profile.json`
#[derive(Debug, Clone, Deserialize)]
pub struct ProfileResponse {
    pub user: Profile,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Profile {
    pub encoded_id: String,
    #[serde(default)]
    pub timezone: Option<String>,
    #[serde(default)]
    pub offset_from_utc_millis: Option<i64>,
}

/// `GET /1/user/-/activities/date/{date}.json`
#[derive(Debug, Clone, Deserialize)]
pub struct DailyActivity {
    pub summary: ActivitySummary,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ActivitySummary {
    #[serde(default)]
    pub steps: Option<f64>,
    #[serde(default)]
    pub calories_out: Option<f64>,
    #[serde(default, rename = "caloriesBMR")]
    pub calories_bmr: Option<f64>,
    #[serde(default)]
    pub activity_calories: Option<f64>,
    #[serde(default)]
    pub distances: Vec<ActivityDistance>,
    /// Absent for trackers without an altimeter.
    #[serde(default)]
    pub floors: Option<f64>,
    #[serde(default)]
    pub fairly_active_minutes: Option<f64>,
    #[serde(default)]
    pub very_active_minutes: Option<f64>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ActivityDistance {
    pub activity: String,
    pub distance: f64,
}

/// `GET /1/user/-/activities/heart/date/{date}/1d/1min.json` and the daily range form (which
/// has no intraday block).
#[derive(Debug, Clone, Deserialize)]
pub struct HeartResponse {
    #[serde(rename = "activities-heart", default)]
    pub days: Vec<HeartDay>,
    #[serde(rename = "activities-heart-intraday", default)]
    pub intraday: Option<Intraday>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HeartDay {
    pub date_time: NaiveDate,
    pub value: HeartDayValue,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HeartDayValue {
    #[serde(default)]
    pub resting_heart_rate: Option<f64>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Intraday {
    #[serde(default)]
    pub dataset: Vec<IntradayPoint>,
}

/// `time` is the wall-clock time on the requested date.
#[derive(Debug, Clone, Deserialize)]
pub struct IntradayPoint {
    pub time: NaiveTime,
    pub value: f64,
}

/// `GET /1/user/-/hrv/date/{start}/{end}.json`
#[derive(Debug, Clone, Deserialize)]
pub struct HrvResponse {
    #[serde(default)]
    pub hrv: Vec<HrvDay>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HrvDay {
    pub date_time: NaiveDate,
    pub value: HrvValue,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HrvValue {
    #[serde(default)]
    pub daily_rmssd: Option<f64>,
    #[serde(default)]
    pub deep_rmssd: Option<f64>,
}

/// `GET /1/user/-/spo2/date/{start}/{end}.json`: an array for a range, a bare object for one
/// date; both are accepted so a one-day window decodes either way.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum Spo2Response {
    Range(Vec<Spo2Day>),
    Single(Spo2Day),
}

impl Spo2Response {
    pub fn into_days(self) -> Vec<Spo2Day> {
        match self {
            Spo2Response::Range(v) => v,
            Spo2Response::Single(d) => vec![d],
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Spo2Day {
    pub date_time: NaiveDate,
    /// Missing on nights without a reading.
    #[serde(default)]
    pub value: Option<Spo2Value>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Spo2Value {
    pub avg: f64,
    #[serde(default)]
    pub min: Option<f64>,
    #[serde(default)]
    pub max: Option<f64>,
}

/// `GET /1/user/-/br/date/{start}/{end}.json`
#[derive(Debug, Clone, Deserialize)]
pub struct BreathingResponse {
    #[serde(default)]
    pub br: Vec<BreathingDay>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BreathingDay {
    pub date_time: NaiveDate,
    pub value: BreathingValue,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BreathingValue {
    #[serde(default)]
    pub breathing_rate: Option<f64>,
}

/// `GET /1/user/-/temp/skin/date/{start}/{end}.json`
#[derive(Debug, Clone, Deserialize)]
pub struct SkinTempResponse {
    #[serde(rename = "tempSkin", default)]
    pub temp_skin: Vec<SkinTempDay>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SkinTempDay {
    pub date_time: NaiveDate,
    pub value: SkinTempValue,
    #[serde(default)]
    pub log_type: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SkinTempValue {
    #[serde(default)]
    pub nightly_relative: Option<f64>,
}

/// `GET /1.2/user/-/sleep/date/{start}/{end}.json`
#[derive(Debug, Clone, Deserialize)]
pub struct SleepResponse {
    #[serde(default)]
    pub sleep: Vec<SleepLog>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SleepLog {
    pub log_id: u64,
    /// The date the sleep ended on.
    pub date_of_sleep: NaiveDate,
    pub start_time: NaiveDateTime,
    pub end_time: NaiveDateTime,
    /// Milliseconds.
    pub duration: u64,
    #[serde(default)]
    pub efficiency: Option<f64>,
    #[serde(default)]
    pub is_main_sleep: bool,
    #[serde(default)]
    pub log_type: Option<String>,
    /// `stages` or `classic`.
    #[serde(rename = "type", default)]
    pub kind: Option<String>,
    #[serde(default)]
    pub info_code: Option<i64>,
    #[serde(default)]
    pub minutes_asleep: Option<f64>,
    #[serde(default)]
    pub minutes_awake: Option<f64>,
    #[serde(default)]
    pub minutes_to_fall_asleep: Option<f64>,
    #[serde(default)]
    pub time_in_bed: Option<f64>,
    #[serde(default)]
    pub levels: Option<SleepLevels>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct SleepLevels {
    /// Keyed by level: deep/light/rem/wake for `stages`, asleep/restless/awake for `classic`.
    #[serde(default)]
    pub summary: BTreeMap<String, SleepLevelSummary>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct SleepLevelSummary {
    #[serde(default)]
    pub count: Option<f64>,
    pub minutes: f64,
}

/// `GET /1/user/-/activities/list.json`
#[derive(Debug, Clone, Deserialize)]
pub struct ActivityListResponse {
    #[serde(default)]
    pub activities: Vec<ActivityLog>,
    pub pagination: Pagination,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Pagination {
    /// Absolute URL of the next page; empty on the last page.
    #[serde(default)]
    pub next: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ActivityLog {
    pub log_id: u64,
    pub activity_name: String,
    #[serde(default)]
    pub activity_type_id: Option<u64>,
    /// The one common Fitbit timestamp that carries its UTC offset.
    pub start_time: DateTime<FixedOffset>,
    /// Milliseconds, pauses included.
    #[serde(default)]
    pub duration: Option<u64>,
    /// Milliseconds of movement.
    #[serde(default)]
    pub active_duration: Option<u64>,
    #[serde(default)]
    pub calories: Option<f64>,
    #[serde(default)]
    pub distance: Option<f64>,
    #[serde(default)]
    pub distance_unit: Option<String>,
    #[serde(default)]
    pub average_heart_rate: Option<f64>,
    #[serde(default)]
    pub steps: Option<f64>,
    #[serde(default)]
    pub elevation_gain: Option<f64>,
    #[serde(default)]
    pub log_type: Option<String>,
    #[serde(default)]
    pub last_modified: Option<String>,
}

/// `GET /1/user/-/body/log/weight/date/{start}/{end}.json`
#[derive(Debug, Clone, Deserialize)]
pub struct WeightResponse {
    #[serde(default)]
    pub weight: Vec<WeightLog>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct WeightLog {
    #[serde(rename = "logId")]
    pub log_id: u64,
    pub date: NaiveDate,
    pub time: NaiveTime,
    pub weight: f64,
    #[serde(default)]
    pub bmi: Option<f64>,
    #[serde(default)]
    pub source: Option<String>,
}

/// `GET /1/user/-/body/log/fat/date/{start}/{end}.json`
#[derive(Debug, Clone, Deserialize)]
pub struct FatResponse {
    #[serde(default)]
    pub fat: Vec<FatLog>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct FatLog {
    #[serde(rename = "logId")]
    pub log_id: u64,
    pub date: NaiveDate,
    pub time: NaiveTime,
    pub fat: f64,
    #[serde(default)]
    pub source: Option<String>,
}

/// One entry of a subscription notification (the body is an array of these).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Notification {
    pub collection_type: String,
    #[serde(default)]
    pub date: Option<NaiveDate>,
    pub owner_id: String,
    #[serde(default)]
    pub owner_type: Option<String>,
    #[serde(default)]
    pub subscription_id: Option<String>,
}
