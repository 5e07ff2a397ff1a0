//! WHOOP v2 wire types (the fields VitaSync reads). Sleep and workout ids are UUID strings,
//! cycle ids integers; `score` is present only when `score_state` is `SCORED`.

use chrono::{DateTime, Utc};
use serde::Deserialize;

/// Every collection: `{"records": [...], "next_token": "..."}`, newest first.
#[derive(Debug, Deserialize)]
pub struct Page<T> {
    pub records: Vec<T>,
    #[serde(default)]
    pub next_token: Option<String>,
}

/// `GET /v2/user/profile/basic`
#[derive(Debug, Deserialize)]
pub struct Profile {
    pub user_id: u64,
}

/// `GET /v2/user/measurement/body`
#[derive(Debug, Deserialize)]
pub struct Body {
    #[serde(default)]
    pub height_meter: Option<f64>,
    #[serde(default)]
    pub weight_kilogram: Option<f64>,
    #[serde(default)]
    pub max_heart_rate: Option<f64>,
}

pub const SCORED: &str = "SCORED";
pub const PENDING: &str = "PENDING_SCORE";

#[derive(Debug, Deserialize)]
pub struct Cycle {
    pub id: i64,
    pub start: DateTime<Utc>,
    /// Absent while the cycle is the current one.
    #[serde(default)]
    pub end: Option<DateTime<Utc>>,
    #[serde(default)]
    pub timezone_offset: Option<String>,
    pub score_state: String,
    #[serde(default)]
    pub score: Option<CycleScore>,
}

#[derive(Debug, Deserialize)]
pub struct CycleScore {
    #[serde(default)]
    pub strain: Option<f64>,
    #[serde(default)]
    pub kilojoule: Option<f64>,
    #[serde(default)]
    pub average_heart_rate: Option<f64>,
    #[serde(default)]
    pub max_heart_rate: Option<f64>,
}

#[derive(Debug, Deserialize)]
pub struct Recovery {
    pub cycle_id: i64,
    #[serde(default)]
    pub sleep_id: Option<String>,
    pub created_at: DateTime<Utc>,
    pub score_state: String,
    #[serde(default)]
    pub score: Option<RecoveryScore>,
}

#[derive(Debug, Deserialize)]
pub struct RecoveryScore {
    #[serde(default)]
    pub user_calibrating: Option<bool>,
    #[serde(default)]
    pub recovery_score: Option<f64>,
    #[serde(default)]
    pub resting_heart_rate: Option<f64>,
    #[serde(default)]
    pub hrv_rmssd_milli: Option<f64>,
    /// WHOOP 4.0 and later only.
    #[serde(default)]
    pub spo2_percentage: Option<f64>,
    /// Absolute skin temperature, WHOOP 4.0 and later only.
    #[serde(default)]
    pub skin_temp_celsius: Option<f64>,
}

#[derive(Debug, Deserialize)]
pub struct Sleep {
    pub id: String,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    #[serde(default)]
    pub timezone_offset: Option<String>,
    #[serde(default)]
    pub nap: bool,
    pub score_state: String,
    #[serde(default)]
    pub score: Option<SleepScore>,
}

#[derive(Debug, Deserialize)]
pub struct SleepScore {
    pub stage_summary: StageSummary,
    #[serde(default)]
    pub sleep_needed: Option<serde_json::Value>,
    #[serde(default)]
    pub respiratory_rate: Option<f64>,
    #[serde(default)]
    pub sleep_performance_percentage: Option<f64>,
    #[serde(default)]
    pub sleep_consistency_percentage: Option<f64>,
    #[serde(default)]
    pub sleep_efficiency_percentage: Option<f64>,
}

#[derive(Debug, Deserialize)]
pub struct StageSummary {
    pub total_in_bed_time_milli: f64,
    pub total_awake_time_milli: f64,
    #[serde(default)]
    pub total_no_data_time_milli: f64,
    pub total_light_sleep_time_milli: f64,
    pub total_slow_wave_sleep_time_milli: f64,
    pub total_rem_sleep_time_milli: f64,
    #[serde(default)]
    pub sleep_cycle_count: Option<u32>,
    #[serde(default)]
    pub disturbance_count: Option<u32>,
}

#[derive(Debug, Deserialize)]
pub struct Workout {
    pub id: String,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    #[serde(default)]
    pub timezone_offset: Option<String>,
    #[serde(default)]
    pub sport_name: Option<String>,
    #[serde(default)]
    pub sport_id: Option<i64>,
    pub score_state: String,
    #[serde(default)]
    pub score: Option<WorkoutScore>,
}

#[derive(Debug, Deserialize)]
pub struct WorkoutScore {
    #[serde(default)]
    pub strain: Option<f64>,
    #[serde(default)]
    pub average_heart_rate: Option<f64>,
    #[serde(default)]
    pub max_heart_rate: Option<f64>,
    #[serde(default)]
    pub kilojoule: Option<f64>,
    #[serde(default)]
    pub percent_recorded: Option<f64>,
    #[serde(default)]
    pub distance_meter: Option<f64>,
    #[serde(default)]
    pub altitude_gain_meter: Option<f64>,
    #[serde(default)]
    pub altitude_change_meter: Option<f64>,
    #[serde(default)]
    pub zone_durations: Option<serde_json::Value>,
}

/// A webhook notification. v2 ids are UUID strings; integers are tolerated.
#[derive(Debug, Deserialize)]
pub struct Notification {
    pub user_id: serde_json::Value,
    #[serde(default)]
    pub id: Option<serde_json::Value>,
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub trace_id: Option<String>,
}
