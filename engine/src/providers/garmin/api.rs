//! Garmin Health/Activity API wire types: the summaries as the pull endpoints return them and
//! as push notifications carry them (the same models; pushed items add `userId`). Every field
//! is optional because Garmin omits whatever a device did not measure, and a summary missing
//! one value must still deliver the others.

use std::collections::BTreeMap;

use serde::Deserialize;

/// `GET /user/id`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UserId {
    pub user_id: String,
}

/// Values keyed by seconds from the summary's start (`"15": 75`). Garmin sends the keys as
/// strings; keys that are not integers are dropped when mapped.
pub type TimeOffsetValues = BTreeMap<String, f64>;

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Daily {
    pub user_id: Option<String>,
    pub calendar_date: Option<String>,
    pub start_time_in_seconds: Option<i64>,
    pub start_time_offset_in_seconds: Option<i64>,
    pub steps: Option<f64>,
    pub distance_in_meters: Option<f64>,
    pub active_kilocalories: Option<f64>,
    pub bmr_kilocalories: Option<f64>,
    pub moderate_intensity_duration_in_seconds: Option<f64>,
    pub vigorous_intensity_duration_in_seconds: Option<f64>,
    pub floors_climbed: Option<f64>,
    pub resting_heart_rate_in_beats_per_minute: Option<f64>,
    pub time_offset_heart_rate_samples: Option<TimeOffsetValues>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SleepSpan {
    pub start_time_in_seconds: i64,
    pub end_time_in_seconds: i64,
}

#[derive(Debug, Deserialize)]
pub struct SleepScore {
    pub value: Option<f64>,
    #[serde(rename = "qualifierKey")]
    pub qualifier_key: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Sleep {
    pub user_id: Option<String>,
    pub summary_id: Option<String>,
    pub calendar_date: Option<String>,
    pub start_time_in_seconds: Option<i64>,
    pub start_time_offset_in_seconds: Option<i64>,
    pub duration_in_seconds: Option<f64>,
    /// One of Garmin's own examples spells it `unmeasurableSleepDurationInSeconds`.
    #[serde(alias = "unmeasurableSleepDurationInSeconds")]
    pub unmeasurable_sleep_in_seconds: Option<f64>,
    pub deep_sleep_duration_in_seconds: Option<f64>,
    pub light_sleep_duration_in_seconds: Option<f64>,
    pub rem_sleep_in_seconds: Option<f64>,
    pub awake_duration_in_seconds: Option<f64>,
    pub sleep_levels_map: Option<BTreeMap<String, Vec<SleepSpan>>>,
    pub validation: Option<String>,
    pub overall_sleep_score: Option<SleepScore>,
    pub naps: Option<serde_json::Value>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Hrv {
    pub user_id: Option<String>,
    pub calendar_date: Option<String>,
    pub start_time_in_seconds: Option<i64>,
    pub start_time_offset_in_seconds: Option<i64>,
    pub last_night_avg: Option<f64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PulseOx {
    pub user_id: Option<String>,
    pub calendar_date: Option<String>,
    pub start_time_in_seconds: Option<i64>,
    pub start_time_offset_in_seconds: Option<i64>,
    pub time_offset_spo2_values: Option<TimeOffsetValues>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Respiration {
    pub user_id: Option<String>,
    pub start_time_in_seconds: Option<i64>,
    pub start_time_offset_in_seconds: Option<i64>,
    pub time_offset_epoch_to_breaths: Option<TimeOffsetValues>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SkinTemp {
    pub user_id: Option<String>,
    pub calendar_date: Option<String>,
    pub start_time_in_seconds: Option<i64>,
    pub start_time_offset_in_seconds: Option<i64>,
    pub avg_deviation_celsius: Option<f64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StressDetails {
    pub user_id: Option<String>,
    pub calendar_date: Option<String>,
    pub start_time_in_seconds: Option<i64>,
    pub start_time_offset_in_seconds: Option<i64>,
    pub time_offset_stress_level_values: Option<TimeOffsetValues>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BodyComp {
    pub user_id: Option<String>,
    pub measurement_time_in_seconds: Option<i64>,
    pub measurement_time_offset_in_seconds: Option<i64>,
    pub weight_in_grams: Option<f64>,
    pub body_fat_in_percent: Option<f64>,
    pub body_mass_index: Option<f64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UserMetrics {
    pub user_id: Option<String>,
    pub calendar_date: Option<String>,
    pub vo2_max: Option<f64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BloodPressure {
    pub user_id: Option<String>,
    pub systolic: Option<f64>,
    pub diastolic: Option<f64>,
    pub pulse: Option<f64>,
    pub measurement_time_in_seconds: Option<i64>,
    pub measurement_time_offset_in_seconds: Option<i64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Activity {
    pub user_id: Option<String>,
    pub summary_id: Option<String>,
    pub activity_id: Option<serde_json::Value>,
    pub activity_name: Option<String>,
    pub activity_type: Option<String>,
    pub device_name: Option<String>,
    pub start_time_in_seconds: Option<i64>,
    pub start_time_offset_in_seconds: Option<i64>,
    pub duration_in_seconds: Option<f64>,
    pub distance_in_meters: Option<f64>,
    pub active_kilocalories: Option<f64>,
    pub average_heart_rate_in_beats_per_minute: Option<f64>,
    pub max_heart_rate_in_beats_per_minute: Option<f64>,
    pub average_speed_in_meters_per_second: Option<f64>,
    pub total_elevation_gain_in_meters: Option<f64>,
    pub total_elevation_loss_in_meters: Option<f64>,
    pub average_run_cadence_in_steps_per_minute: Option<f64>,
    pub steps: Option<f64>,
    pub manual: Option<bool>,
}

/// One item of a ping notification.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Ping {
    pub user_id: String,
    #[serde(rename = "callbackURL")]
    pub callback_url: String,
}

/// One item of `deregistrations` / `userPermissionsChange`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UserNotice {
    pub user_id: String,
}
