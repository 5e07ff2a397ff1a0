//! Real data: Fitabase's Fitbit export (CC0) through the API. Daily aggregates must equal the
//! file's own totals: the hourly file's per-day sums, and the daily-activity file's columns after
//! unit conversion (km → m).

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde_json::{Value, json};

use crate::common::TestApp;
use crate::on_both_backends;

fn data_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/data/fitabase-fitbit-2016/2016-04-12_2016-05-12")
}

/// "4/12/2016" or "4/12/2016 1:00:00 PM" → ("2016-04-12", hour 13).
fn parse_us(s: &str) -> (String, u32) {
    let mut parts = s.split(' ');
    let date = parts.next().unwrap();
    let mut dp = date.split('/').map(|p| p.parse::<u32>().unwrap());
    let (m, d, y) = (dp.next().unwrap(), dp.next().unwrap(), dp.next().unwrap());
    let hour = match (parts.next(), parts.next()) {
        (Some(t), Some(ampm)) => {
            let h: u32 = t.split(':').next().unwrap().parse().unwrap();
            match (h, ampm) {
                (12, "AM") => 0,
                (12, "PM") => 12,
                (h, "PM") => h + 12,
                (h, _) => h,
            }
        }
        _ => 0,
    };
    (format!("{y:04}-{m:02}-{d:02}"), hour)
}

fn rows(file: &str) -> Vec<Vec<String>> {
    let text =
        std::fs::read_to_string(data_dir().join(file)).unwrap_or_else(|e| panic!("{file}: {e}"));
    text.lines()
        .skip(1)
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            l.trim_end_matches('\r')
                .split(',')
                .map(String::from)
                .collect()
        })
        .collect()
}

/// Three users with different wear patterns (one with zero-step days).
const USERS: [&str; 3] = ["1503960366", "1624580081", "4020332650"];

async fn fitabase_daily_totals_match_the_files(app: TestApp) {
    let hourly = rows("hourlySteps_merged.csv");
    let daily_activity = rows("dailyActivity_merged.csv");
    for fitbit_id in USERS {
        let user = app.create_user(fitbit_id, Some("America/New_York")).await;

        // Hourly steps at local wall-clock hours (EDT, UTC−4, throughout the period).
        let mut expected_hourly: BTreeMap<String, f64> = BTreeMap::new();
        let samples: Vec<Value> = hourly
            .iter()
            .filter(|r| r[0] == fitbit_id)
            .map(|r| {
                let (date, hour) = parse_us(&r[1]);
                let steps: f64 = r[2].parse().unwrap();
                *expected_hourly.entry(date.clone()).or_default() += steps;
                json!({"metric": "steps", "value": steps, "recorded_at": format!("{date}T{hour:02}:00:00-04:00"), "source": "fitabase-hourly"})
            })
            .collect();
        assert!(
            samples.len() > 500,
            "{fitbit_id}: {} hourly rows",
            samples.len()
        );
        let w = app.ingest(&user, json!(samples)).await;
        assert_eq!(w["inserted"].as_u64().unwrap() as usize, samples.len());

        let daily = app
            .get_json(&format!("/v1/users/{user}/health/daily?metric=steps"))
            .await;
        let got: BTreeMap<String, f64> = daily["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| {
                (
                    d["date"].as_str().unwrap().to_string(),
                    d["value"].as_f64().unwrap(),
                )
            })
            .collect();
        assert_eq!(
            got, expected_hourly,
            "{fitbit_id}: daily step sums of the hourly file"
        );

        // The daily-activity file as a second source (a different provider would compete for
        // the same dates; pushed as a separate user keeps the comparison exact).
        let daily_user = app
            .create_user(&format!("{fitbit_id}-daily"), Some("America/New_York"))
            .await;
        let mut expected: BTreeMap<(String, String), f64> = BTreeMap::new();
        let mut samples = Vec::new();
        for r in daily_activity.iter().filter(|r| r[0] == fitbit_id) {
            let (date, _) = parse_us(&r[1]);
            let at = format!("{date}T23:59:00-04:00");
            let steps: f64 = r[2].parse().unwrap();
            let km: f64 = r[3].parse().unwrap();
            let active: f64 = r[10].parse::<f64>().unwrap() + r[11].parse::<f64>().unwrap();
            let kcal: f64 = r[14].parse().unwrap();
            samples.push(json!({"metric": "steps", "value": steps, "recorded_at": at}));
            samples
                .push(json!({"metric": "distance", "value": km, "unit": "km", "recorded_at": at}));
            samples.push(json!({"metric": "active_minutes", "value": active, "recorded_at": at}));
            samples.push(json!({"metric": "total_energy", "value": kcal, "recorded_at": at}));
            expected.insert((date.clone(), "steps".into()), steps);
            expected.insert((date.clone(), "distance".into()), km * 1000.0);
            expected.insert((date.clone(), "active_minutes".into()), active);
            expected.insert((date, "total_energy".into()), kcal);
        }
        app.ingest(&daily_user, json!(samples)).await;
        let daily = app
            .get_json(&format!("/v1/users/{daily_user}/health/daily"))
            .await;
        let got: BTreeMap<(String, String), f64> = daily["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| {
                (
                    (
                        d["date"].as_str().unwrap().to_string(),
                        d["metric"].as_str().unwrap().to_string(),
                    ),
                    d["value"].as_f64().unwrap(),
                )
            })
            .collect();
        assert_eq!(got.len(), expected.len(), "{fitbit_id}");
        for (k, v) in &expected {
            assert!(
                (got[k] - v).abs() < 1e-6,
                "{fitbit_id} {k:?}: {} vs {v}",
                got[k]
            );
        }
    }
}

on_both_backends!(fitabase_daily_totals_match_the_files);
