//! The Garmin summary types VitaSync reads: their data-type names (the pull paths, also the
//! cursor keys), the keys notifications use for them, their backfill paths, and the decoding
//! of each into samples and events.

use super::api;
use super::mapping::{MapContext, Mapped, Summary, map_all, map_per_user};
use crate::providers::ProviderError;
use crate::providers::http::parse_json;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Dailies,
    Sleeps,
    Hrv,
    PulseOx,
    Respiration,
    SkinTemp,
    StressDetails,
    BodyComps,
    UserMetrics,
    BloodPressures,
    Activities,
    ManuallyUpdatedActivities,
}

/// One summary type.
#[derive(Debug, Clone, Copy)]
pub struct SummaryType {
    pub kind: Kind,
    /// Data-type name and cursor key: the pull path under the API base.
    pub name: &'static str,
    /// The list key in push and ping notifications (differs from the path for a few types).
    pub notification_key: &'static str,
    /// Backfill path and the longest window one backfill request may cover, in days.
    pub backfill: Option<(&'static str, i64)>,
}

const fn st(
    kind: Kind,
    name: &'static str,
    notification_key: &'static str,
    backfill: Option<(&'static str, i64)>,
) -> SummaryType {
    SummaryType {
        kind,
        name,
        notification_key,
        backfill,
    }
}

/// Health API backfill accepts 90 days per request; the Activity API is reported to cap
/// activities at 30.
pub const TYPES: &[SummaryType] = &[
    st(Kind::Dailies, "dailies", "dailies", Some(("dailies", 90))),
    st(Kind::Sleeps, "sleeps", "sleeps", Some(("sleeps", 90))),
    st(Kind::Hrv, "hrv", "hrv", Some(("hrv", 90))),
    st(Kind::PulseOx, "pulseOx", "pulseox", Some(("pulseOx", 90))),
    st(
        Kind::Respiration,
        "respiration",
        "allDayRespiration",
        Some(("respiration", 90)),
    ),
    st(
        Kind::SkinTemp,
        "skinTemp",
        "skinTemp",
        Some(("skinTemp", 90)),
    ),
    st(
        Kind::StressDetails,
        "stressDetails",
        "stressDetails",
        Some(("stressDetails", 90)),
    ),
    st(
        Kind::BodyComps,
        "bodyComps",
        "bodyComps",
        Some(("bodyComps", 90)),
    ),
    st(
        Kind::UserMetrics,
        "userMetrics",
        "userMetrics",
        Some(("userMetrics", 90)),
    ),
    st(
        Kind::BloodPressures,
        "bloodPressures",
        "bloodPressures",
        Some(("bloodPressures", 90)),
    ),
    st(
        Kind::Activities,
        "activities",
        "activities",
        Some(("activities", 30)),
    ),
    // User edits of activities have no backfill: the edited activity is in `activities`.
    st(
        Kind::ManuallyUpdatedActivities,
        "manuallyUpdatedActivities",
        "manuallyUpdatedActivities",
        None,
    ),
];

/// The summary type a notification list key names, if VitaSync reads it.
pub fn by_notification_key(key: &str) -> Option<&'static SummaryType> {
    TYPES.iter().find(|t| t.notification_key == key)
}

fn pulled<T: Summary>(body: &[u8], cx: &MapContext<'_>) -> Result<Mapped, ProviderError> {
    let items: Vec<T> = parse_json(body)?;
    Ok(map_all(&items, cx))
}

fn pushed<T: Summary>(
    items: serde_json::Value,
    cx: &MapContext<'_>,
) -> Result<Vec<(String, Mapped)>, serde_json::Error> {
    let items: Vec<T> = serde_json::from_value(items)?;
    Ok(map_per_user(&items, cx))
}

/// Decodes a pull response (a JSON array of summaries) and maps it.
pub fn map_pulled(kind: Kind, body: &[u8], cx: &MapContext<'_>) -> Result<Mapped, ProviderError> {
    match kind {
        Kind::Dailies => pulled::<api::Daily>(body, cx),
        Kind::Sleeps => pulled::<api::Sleep>(body, cx),
        Kind::Hrv => pulled::<api::Hrv>(body, cx),
        Kind::PulseOx => pulled::<api::PulseOx>(body, cx),
        Kind::Respiration => pulled::<api::Respiration>(body, cx),
        Kind::SkinTemp => pulled::<api::SkinTemp>(body, cx),
        Kind::StressDetails => pulled::<api::StressDetails>(body, cx),
        Kind::BodyComps => pulled::<api::BodyComp>(body, cx),
        Kind::UserMetrics => pulled::<api::UserMetrics>(body, cx),
        Kind::BloodPressures => pulled::<api::BloodPressure>(body, cx),
        Kind::Activities | Kind::ManuallyUpdatedActivities => pulled::<api::Activity>(body, cx),
    }
}

/// Decodes a pushed list and maps it per user.
pub fn map_pushed(
    kind: Kind,
    items: serde_json::Value,
    cx: &MapContext<'_>,
) -> Result<Vec<(String, Mapped)>, serde_json::Error> {
    match kind {
        Kind::Dailies => pushed::<api::Daily>(items, cx),
        Kind::Sleeps => pushed::<api::Sleep>(items, cx),
        Kind::Hrv => pushed::<api::Hrv>(items, cx),
        Kind::PulseOx => pushed::<api::PulseOx>(items, cx),
        Kind::Respiration => pushed::<api::Respiration>(items, cx),
        Kind::SkinTemp => pushed::<api::SkinTemp>(items, cx),
        Kind::StressDetails => pushed::<api::StressDetails>(items, cx),
        Kind::BodyComps => pushed::<api::BodyComp>(items, cx),
        Kind::UserMetrics => pushed::<api::UserMetrics>(items, cx),
        Kind::BloodPressures => pushed::<api::BloodPressure>(items, cx),
        Kind::Activities | Kind::ManuallyUpdatedActivities => pushed::<api::Activity>(items, cx),
    }
}
