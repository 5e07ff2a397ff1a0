//! Strava wire types (the fields VitaSync reads; everything else is ignored).

use chrono::{DateTime, NaiveDateTime, Utc};
use serde::{Deserialize, Deserializer};

/// `GET /athlete` (and the athlete embedded in webhook events).
#[derive(Debug, Deserialize)]
pub struct Athlete {
    pub id: u64,
}

/// `SummaryActivity` from `GET /athlete/activities`, and the shared part of
/// `DetailedActivity` from `GET /activities/{id}`.
#[derive(Debug, Clone, Deserialize)]
pub struct Activity {
    pub id: u64,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub sport_type: Option<String>,
    /// Legacy activity type, used only when `sport_type` is missing.
    #[serde(rename = "type", default)]
    pub legacy_type: Option<String>,
    pub start_date: DateTime<Utc>,
    /// Wall-clock time at the activity's location, serialised with a misleading `Z`.
    #[serde(deserialize_with = "wall_clock")]
    pub start_date_local: NaiveDateTime,
    #[serde(default)]
    pub timezone: Option<String>,
    /// Seconds east of UTC at the activity's date.
    #[serde(default)]
    pub utc_offset: Option<f64>,
    #[serde(default)]
    pub distance: Option<f64>,
    #[serde(default)]
    pub moving_time: Option<f64>,
    #[serde(default)]
    pub elapsed_time: Option<f64>,
    #[serde(default)]
    pub total_elevation_gain: Option<f64>,
    #[serde(default)]
    pub average_speed: Option<f64>,
    #[serde(default)]
    pub max_speed: Option<f64>,
    #[serde(default)]
    pub has_heartrate: bool,
    #[serde(default)]
    pub average_heartrate: Option<f64>,
    #[serde(default)]
    pub max_heartrate: Option<f64>,
    #[serde(default)]
    pub average_watts: Option<f64>,
    #[serde(default)]
    pub weighted_average_watts: Option<f64>,
    #[serde(default)]
    pub max_watts: Option<f64>,
    #[serde(default)]
    pub device_watts: Option<bool>,
    /// Mechanical work in kJ (not metabolic energy).
    #[serde(default)]
    pub kilojoules: Option<f64>,
    /// Metabolic energy in kcal; only on the detailed representation.
    #[serde(default)]
    pub calories: Option<f64>,
    #[serde(default)]
    pub device_name: Option<String>,
    #[serde(default)]
    pub manual: bool,
    #[serde(default)]
    pub trainer: bool,
    #[serde(default)]
    pub suffer_score: Option<f64>,
}

/// `GET /activities/{id}/streams?key_by_type=true`: only the streams that exist are present.
#[derive(Debug, Default, Deserialize)]
pub struct Streams {
    #[serde(default)]
    pub time: Option<Stream>,
    #[serde(default)]
    pub heartrate: Option<Stream>,
}

#[derive(Debug, Deserialize)]
pub struct Stream {
    pub data: Vec<Option<f64>>,
}

/// Strava writes local wall-clock times as `2018-05-02T05:15:09Z`; the `Z` is not a zone.
fn wall_clock<'de, D: Deserializer<'de>>(d: D) -> Result<NaiveDateTime, D::Error> {
    let s = String::deserialize(d)?;
    let trimmed = s.trim_end_matches(['Z', 'z']);
    NaiveDateTime::parse_from_str(trimmed, "%Y-%m-%dT%H:%M:%S%.f")
        .map_err(|e| serde::de::Error::custom(format!("start_date_local '{s}': {e}")))
}

/// A webhook event (activity create/update/delete, athlete deauthorization).
#[derive(Debug, Deserialize)]
pub struct PushEvent {
    pub object_type: String,
    pub object_id: u64,
    pub aspect_type: String,
    pub owner_id: u64,
    #[serde(default)]
    pub subscription_id: Option<u64>,
    #[serde(default)]
    pub event_time: Option<i64>,
    #[serde(default)]
    pub updates: serde_json::Map<String, serde_json::Value>,
}
