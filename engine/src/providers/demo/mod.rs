//! The demo provider: deterministic, realistic data for any user, no credentials needed.
//!
//! Every value is a pure function of (user external id, local date, connection date), so
//! re-syncing a day reproduces it exactly (and the write path reports it unchanged), while the
//! current day keeps growing as time passes, like a real device. The data has the structure the
//! analytics look for: a circadian heart rate, weekday/weekend step patterns, sleep with stages,
//! resting heart rate and HRV that move against each other, 3–4 workouts a week, and one
//! illness episode (ten days before the connection was made, lasting four days) during which
//! resting HR rises ~7 bpm, HRV drops ~30 %, temperature rises, sleep worsens and steps fall.

mod generator;

use chrono::Duration;
use futures::StreamExt as _;

use super::{AuthKind, BatchStream, Provider, ProviderInfo, SyncBatch, SyncRequest};
use crate::domain::EventType;

pub use generator::{DemoDay, generate_day};

/// The data type name used for the demo's single cursor.
pub const CURSOR: &str = "all";

pub struct DemoProvider {
    info: ProviderInfo,
}

impl DemoProvider {
    pub fn new() -> Self {
        DemoProvider {
            info: ProviderInfo {
                id: "demo",
                name: "Demo device",
                auth: AuthKind::None,
                metrics: generator::METRICS,
                event_types: &[EventType::Workout, EventType::Sleep],
                default_backfill_days: 90,
            },
        }
    }
}

impl Default for DemoProvider {
    fn default() -> Self {
        Self::new()
    }
}

#[async_trait::async_trait]
impl Provider for DemoProvider {
    fn info(&self) -> &ProviderInfo {
        &self.info
    }

    fn configured(&self) -> bool {
        true
    }

    fn sync(&self, req: SyncRequest) -> BatchStream<'_> {
        // Whole local days that intersect the window are regenerated: a day's running totals
        // are recorded at its start, so a partial day must be re-emitted to grow.
        let start = req.start_for(CURSOR, Duration::hours(2));
        let end = req.end();
        let offset_at = |t| crate::time::resolve_offset(t, None, req.user.timezone);
        let first = crate::time::local_date(start, offset_at(start));
        let last = crate::time::local_date(end, offset_at(end));
        let days: Vec<_> = first.iter_days().take_while(|d| *d <= last).collect();
        let total = days.len();
        futures::stream::iter(days.into_iter().enumerate())
            .map(move |(i, date)| {
                let day = generate_day(&req.user, date, req.connected_at, end);
                let mut cursors = req.cursors.clone();
                // The cursor only moves forward, and only to what is now complete.
                let reached = if i + 1 == total {
                    end
                } else {
                    day.ends_at.min(end)
                };
                let entry = cursors.entry(CURSOR.to_string()).or_insert(reached);
                if *entry < reached {
                    *entry = reached;
                }
                Ok(SyncBatch {
                    samples: day.samples,
                    events: day.events,
                    cursors,
                })
            })
            .boxed()
    }
}
