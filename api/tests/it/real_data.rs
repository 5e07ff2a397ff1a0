//! Real data through the whole platform, checked against an independent computation: PMData
//! (16 people, Fitbit Versa 2 exports, Nov 2019 – Mar 2020) and Fitabase (33 Fitbit users,
//! Apr – May 2016) are pushed through the API as samples; the baselines, anomalies,
//! correlations and records the API then serves must equal what numpy and scipy compute from
//! the same files (`api/tests/realdata/reference.py`, run by this test).
//!
//! The reference needs a Python with numpy and scipy: `VITASYNC_TEST_PYTHON` (scripts/test.sh
//! points it at the venv it prepares).

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde_json::{Value, json};

use crate::common::TestApp;
use crate::on_both_backends;

fn data_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/data")
}

fn us_date(s: &str) -> String {
    let mut p = s.split(' ').next().unwrap().split('/');
    let (m, d, y): (u32, u32, u32) = (
        p.next().unwrap().parse().unwrap(),
        p.next().unwrap().parse().unwrap(),
        p.next().unwrap().parse().unwrap(),
    );
    format!("{y:04}-{m:02}-{d:02}")
}

fn csv_rows(path: PathBuf) -> Vec<BTreeMap<String, String>> {
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path:?}: {e}"));
    let mut lines = text.lines().map(|l| l.trim_end_matches('\r'));
    let header: Vec<String> = lines.next().unwrap().split(',').map(String::from).collect();
    lines
        .filter(|l| !l.is_empty())
        .map(|l| {
            header
                .iter()
                .cloned()
                .zip(l.split(',').map(String::from))
                .collect()
        })
        .collect()
}

/// A sample of a whole local date (`seq` keeps several samples of one date distinct).
fn on_date(metric: &str, date: &str, seq: u32, value: f64) -> Value {
    json!({"metric": metric, "value": value, "local_date": date,
           "recorded_at": format!("{date}T12:00:{seq:02}Z")})
}

/// The PMData participants' samples, as their files give them.
fn pmdata() -> Vec<(String, Vec<Value>)> {
    let mut users = Vec::new();
    for n in 1..=16 {
        let dir = data_root().join(format!("pmdata/p{n:02}/fitbit"));
        let mut samples = Vec::new();
        let json_file = |name: &str| -> Option<Vec<Value>> {
            let text = std::fs::read_to_string(dir.join(name)).ok()?;
            Some(serde_json::from_str(&text).unwrap())
        };
        for row in json_file("resting_heart_rate.json").unwrap_or_default() {
            let v = row["value"]["value"].as_f64().unwrap();
            // Fitbit writes 0 when it computed no resting heart rate that day.
            if v > 0.0 {
                let date = &row["dateTime"].as_str().unwrap()[..10];
                samples.push(on_date("resting_heart_rate", date, 0, v));
            }
        }
        // Fitbit's active minutes are the fairly (moderately) and very active minutes; two
        // samples per date that the catalogue's rule sums.
        for (seq, name) in [
            (1, "moderately_active_minutes.json"),
            (2, "very_active_minutes.json"),
        ] {
            for row in json_file(name).unwrap_or_default() {
                let date = &row["dateTime"].as_str().unwrap()[..10];
                let v: f64 = row["value"].as_str().unwrap().parse().unwrap();
                samples.push(on_date("active_minutes", date, seq, v));
            }
        }
        let scores = dir.join("sleep_score.csv");
        if scores.exists() {
            // UTC instants: the platform places them on the user's (Oslo) local date.
            for row in csv_rows(scores) {
                samples.push(json!({"metric": "sleep_score",
                    "value": row["overall_score"].parse::<f64>().unwrap(),
                    "recorded_at": row["timestamp"]}));
            }
        }
        users.push((format!("pmdata/p{n:02}"), samples));
    }
    users
}

/// Fitabase's daily activity and sleep files, per user.
fn fitabase() -> Vec<(String, Vec<Value>)> {
    let base = data_root().join("fitabase-fitbit-2016/2016-04-12_2016-05-12");
    let mut users: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    for r in csv_rows(base.join("dailyActivity_merged.csv")) {
        let date = us_date(&r["ActivityDate"]);
        let s = users.entry(format!("fitabase/{}", r["Id"])).or_default();
        let num = |k: &str| r[k].parse::<f64>().unwrap();
        s.push(on_date("steps", &date, 0, num("TotalSteps")));
        let mut distance = on_date("distance", &date, 0, num("TotalDistance"));
        distance["unit"] = json!("km");
        s.push(distance);
        s.push(on_date(
            "active_minutes",
            &date,
            1,
            num("VeryActiveMinutes"),
        ));
        s.push(on_date(
            "active_minutes",
            &date,
            2,
            num("FairlyActiveMinutes"),
        ));
        s.push(on_date("total_energy", &date, 0, num("Calories")));
    }
    for r in csv_rows(base.join("sleepDay_merged.csv")) {
        let date = us_date(&r["SleepDay"]);
        let minutes = r["TotalMinutesAsleep"].parse::<f64>().unwrap();
        users
            .entry(format!("fitabase/{}", r["Id"]))
            .or_default()
            .push(on_date("sleep_duration", &date, 0, minutes));
    }
    users.into_iter().collect()
}

/// What numpy and scipy make of the same files.
fn reference() -> Value {
    let python = std::env::var("VITASYNC_TEST_PYTHON").unwrap_or_else(|_| "python3".into());
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/realdata/reference.py");
    let out = std::process::Command::new(&python)
        .arg(&script)
        .arg(data_root())
        .output()
        .unwrap_or_else(|e| panic!("running {python}: {e}"));
    assert!(
        out.status.success(),
        "the numpy/scipy reference failed (scripts/test.sh prepares a Python with numpy and \
         scipy and sets VITASYNC_TEST_PYTHON):\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn close(got: &Value, want: &Value, rel: f64, what: &str) {
    match (got.as_f64(), want.as_f64()) {
        (Some(g), Some(w)) => assert!(
            (g - w).abs() <= 1e-6_f64.max(rel * w.abs()),
            "{what}: {g} against numpy/scipy's {w}"
        ),
        _ => assert_eq!(got, want, "{what}"),
    }
}

/// p-values span hundreds of orders of magnitude: compared relatively. Below 1e-100 they only
/// say |r| is 1 to within rounding (identical ranks give ρ = 1 exactly here, and p = 0, where
/// scipy's floating-point ρ can land an ulp short of 1 with p ≈ 1e-196), so both count as 0.
fn close_p(got: &Value, want: &Value, what: &str) {
    let (g, w) = (got.as_f64().unwrap(), want.as_f64().unwrap());
    assert!(
        (g < 1e-100 && w < 1e-100) || (g - w).abs() <= 1e-6 * w.abs(),
        "{what}: p = {g} against scipy's {w}"
    );
}

async fn real_data_matches_numpy_and_scipy(app: TestApp) {
    let reference = reference();
    let mut ids = BTreeMap::new();
    let mut epoch = 0;
    for (external, samples) in pmdata().into_iter().chain(fitabase()) {
        if samples.is_empty() {
            continue;
        }
        let tz = external.starts_with("pmdata").then_some("Europe/Oslo");
        let user = app.create_user(&external, tz).await;
        let w = app.ingest(&user, json!(samples)).await;
        epoch = epoch.max(w["epoch"].as_u64().unwrap());
        ids.insert(external, user);
    }
    assert_eq!(
        ids.keys().collect::<Vec<_>>(),
        reference
            .as_object()
            .unwrap()
            .keys()
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect::<Vec<_>>(),
        "the same people on both sides"
    );
    let (mut baselines, mut anomalies, mut correlations) = (0, 0, 0);
    for (external, user) in &ids {
        let want = &reference[external.as_str()];
        let base = format!("/v1/users/{user}/analytics");
        let get = |what: &str| format!("{base}/{what}?min_epoch={epoch}");

        let got = app.get_json(&get("baselines")).await["data"].clone();
        let got: BTreeMap<(String, u64), &Value> = got
            .as_array()
            .unwrap()
            .iter()
            .map(|b| {
                (
                    (
                        b["metric"].as_str().unwrap().to_string(),
                        b["window_days"].as_u64().unwrap(),
                    ),
                    b,
                )
            })
            .collect();
        let want_b = want["baselines"].as_array().unwrap();
        assert_eq!(got.len(), want_b.len(), "{external}: baselines");
        for w in want_b {
            let key = (
                w["metric"].as_str().unwrap().to_string(),
                w["window_days"].as_u64().unwrap(),
            );
            let g = got
                .get(&key)
                .unwrap_or_else(|| panic!("{external}: no baseline {key:?}"));
            for f in [
                "n",
                "mean",
                "sd",
                "median",
                "p25",
                "p75",
                "min",
                "max",
                "slope_per_day",
                "change_7d_pct",
            ] {
                close(&g[f], &w[f], 1e-9, &format!("{external} {key:?} {f}"));
            }
            assert_eq!(g["as_of_date"], w["as_of_date"]);
            baselines += 1;
        }

        let page = app
            .get_json(&format!("{}&limit=1000", get("anomalies")))
            .await;
        assert!(page["next_cursor"].is_null());
        let got = page["data"].clone();
        let got: BTreeMap<(String, String, String), &Value> = got
            .as_array()
            .unwrap()
            .iter()
            .map(|a| {
                let s = |f: &str| a[f].as_str().unwrap().to_string();
                ((s("metric"), s("date"), s("method")), a)
            })
            .collect();
        let want_a: BTreeMap<(String, String, String), &Value> = want["anomalies"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| {
                let s = |f: &str| a[f].as_str().unwrap().to_string();
                ((s("metric"), s("date"), s("method")), a)
            })
            .collect();
        assert_eq!(
            got.keys().collect::<Vec<_>>(),
            want_a.keys().collect::<Vec<_>>(),
            "{external}: anomalies"
        );
        for (key, w) in &want_a {
            if key.2 == "zscore" {
                close(
                    &got[key]["z"],
                    &w["z"],
                    1e-9,
                    &format!("{external} {key:?} z"),
                );
            }
            anomalies += 1;
        }

        let got = app.get_json(&get("correlations")).await["data"].clone();
        // Lag-0 pairs appear once per unordered pair; compare them by name order.
        let key_of = |c: &Value| {
            let (mut a, mut b) = (
                c["metric_a"].as_str().unwrap().to_string(),
                c["metric_b"].as_str().unwrap().to_string(),
            );
            let lag = c["lag_days"].as_u64().unwrap();
            if lag == 0 && a > b {
                std::mem::swap(&mut a, &mut b);
            }
            (a, b, lag)
        };
        let got: BTreeMap<_, &Value> = got
            .as_array()
            .unwrap()
            .iter()
            .map(|c| (key_of(c), c))
            .collect();
        let want_c: BTreeMap<_, &Value> = want["correlations"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| (key_of(c), c))
            .collect();
        assert_eq!(
            got.keys().collect::<Vec<_>>(),
            want_c.keys().collect::<Vec<_>>(),
            "{external}: correlations"
        );
        for (key, w) in &want_c {
            let g = got[key];
            assert_eq!(g["n"], w["n"], "{external} {key:?} n");
            close(
                &g["pearson_r"],
                &w["pearson_r"],
                1e-9,
                &format!("{external} {key:?} r"),
            );
            close(
                &g["spearman_rho"],
                &w["spearman_rho"],
                1e-9,
                &format!("{external} {key:?} rho"),
            );
            close_p(
                &g["pearson_p"],
                &w["pearson_p"],
                &format!("{external} {key:?} pearson"),
            );
            close_p(
                &g["spearman_p"],
                &w["spearman_p"],
                &format!("{external} {key:?} spearman"),
            );
            correlations += 1;
        }

        let got = app.get_json(&get("records")).await["data"].clone();
        let got: BTreeMap<String, &Value> = got
            .as_array()
            .unwrap()
            .iter()
            .map(|r| (r["metric"].as_str().unwrap().to_string(), r))
            .collect();
        for w in want["records"].as_array().unwrap() {
            let g = got[w["metric"].as_str().unwrap()];
            close(
                &g["value"],
                &w["value"],
                1e-12,
                &format!("{external} record"),
            );
            assert_eq!(
                g["date"], w["date"],
                "{external} {} record date",
                w["metric"]
            );
        }
    }
    // The data is rich enough for every comparison to mean something.
    assert_eq!(ids.len(), 49);
    assert!(baselines >= 300, "{baselines} baselines");
    assert!(anomalies >= 1_000, "{anomalies} anomalies");
    assert!(correlations >= 200, "{correlations} correlations");
}

on_both_backends!(real_data_matches_numpy_and_scipy);
