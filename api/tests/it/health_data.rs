//! Sample ingest and queries: idempotency, unit conversion, local dates, validation, cursor
//! pagination under concurrent inserts, daily aggregation and summaries.

use std::collections::HashSet;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::common::{TestApp, expect_error, json_ok};
use crate::on_both_backends;

fn steps(day: u32, hour: u32, value: f64) -> Value {
    json!({"metric": "steps", "value": value, "recorded_at": format!("2024-03-{day:02}T{hour:02}:00:00Z")})
}

async fn ingest_is_idempotent_and_updates_changed_values(app: TestApp) {
    let user = app.create_user("idem", None).await;
    let batch = json!([steps(1, 8, 100.0), steps(1, 9, 200.0), steps(1, 10, 300.0)]);
    let first = app.ingest(&user, batch.clone()).await;
    assert!(first["epoch"].as_u64().unwrap() > 0, "{first}");
    assert_eq!(
        first,
        json!({"inserted": 3, "updated": 0, "unchanged": 0, "epoch": first["epoch"]})
    );
    // Nothing changed, so the analytics were not asked to do anything.
    assert_eq!(
        app.ingest(&user, batch).await,
        json!({"inserted": 0, "updated": 0, "unchanged": 3, "epoch": 0})
    );

    // A day's total growing, plus one new sample: one update, one insert, one unchanged.
    let next = json!([steps(1, 8, 100.0), steps(1, 9, 250.0), steps(1, 11, 50.0)]);
    let second = app.ingest(&user, next).await;
    assert_eq!(
        second,
        json!({"inserted": 1, "updated": 1, "unchanged": 1, "epoch": first["epoch"].as_u64().unwrap() + 1})
    );
    let rows = app
        .get_json(&format!("/v1/users/{user}/health?metric=steps"))
        .await;
    let values: Vec<f64> = rows["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["value"].as_f64().unwrap())
        .collect();
    assert_eq!(
        values,
        vec![50.0, 300.0, 250.0, 100.0],
        "newest first; the old 200 is gone"
    );

    // A change of source or data alone is an update too.
    let with_source = json!([{"metric": "steps", "value": 100, "recorded_at": "2024-03-01T08:00:00Z", "source": "Pixel Watch"}]);
    assert_eq!(app.ingest(&user, with_source.clone()).await["updated"], 1);
    assert_eq!(app.ingest(&user, with_source).await["unchanged"], 1);

    // Duplicates inside one batch: the last one wins.
    let dup = json!([steps(2, 8, 1.0), steps(2, 8, 2.0)]);
    assert_eq!(
        app.ingest(&user, dup).await,
        json!({"inserted": 1, "updated": 0, "unchanged": 0, "epoch": first["epoch"].as_u64().unwrap() + 3})
    );
    let rows = app
        .get_json(&format!(
            "/v1/users/{user}/health?from=2024-03-02&to=2024-03-02"
        ))
        .await;
    assert_eq!(rows["data"][0]["value"], 2.0);
}

async fn units_convert_to_the_catalogue(app: TestApp) {
    let user = app.create_user("units", None).await;
    let at = "2024-03-01T07:00:00Z";
    app.ingest(
        &user,
        json!([
            {"metric": "weight", "value": 154.0, "unit": "lbs", "recorded_at": at},
            {"metric": "body_temperature", "value": 98.6, "unit": "°F", "recorded_at": at},
            {"metric": "distance", "value": 5.0, "unit": "km", "recorded_at": at},
            {"metric": "active_energy", "value": 836.8, "unit": "kJ", "recorded_at": at},
            {"metric": "blood_glucose", "value": 5.5, "unit": "mmol/L", "recorded_at": at},
            {"metric": "sleep_duration", "value": 7.5, "unit": "h", "recorded_at": at},
            {"metric": "heart_rate", "value": 61, "recorded_at": at}
        ]),
    )
    .await;
    let rows = app.get_json(&format!("/v1/users/{user}/health")).await;
    let get = |m: &str| {
        rows["data"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["metric"] == m)
            .unwrap()
            .clone()
    };
    let close = |a: f64, b: f64| (a - b).abs() < 1e-6;
    assert!(close(get("weight")["value"].as_f64().unwrap(), 69.853_225));
    assert_eq!(get("weight")["unit"], "kg");
    assert!(close(
        get("body_temperature")["value"].as_f64().unwrap(),
        37.0
    ));
    assert_eq!(get("body_temperature")["unit"], "°C");
    assert_eq!(get("distance")["value"], 5000.0);
    assert!(close(
        get("active_energy")["value"].as_f64().unwrap(),
        200.0
    ));
    assert!(close(
        get("blood_glucose")["value"].as_f64().unwrap(),
        99.0858
    ));
    assert_eq!(get("sleep_duration")["value"], 450.0);
    assert_eq!(get("heart_rate")["unit"], "bpm");

    let e = expect_error(
        app.post(&format!("/v1/users/{user}/health"), json!({"samples": [{"metric": "weight", "value": 10, "unit": "stone", "recorded_at": at}]})).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    )
    .await;
    assert_eq!(e["field"], "samples[0].unit");
    assert!(
        e["message"].as_str().unwrap().contains("lbs"),
        "lists the accepted units: {e}"
    );
}

/// A user in New York flies to Tokyo: explicit offsets win, the home zone fills in (across the
/// DST change), and each sample lands on the calendar date the user lived it.
async fn local_dates_follow_offsets_and_timezones(app: TestApp) {
    let user = app.create_user("traveller", Some("America/New_York")).await;
    app.ingest(
        &user,
        json!([
            // 2024-03-10 06:30Z is 01:30 EST (-05:00) on the 10th.
            {"metric": "steps", "value": 1, "recorded_at": "2024-03-10T06:30:00Z"},
            // 2024-03-11 03:30Z is 23:30 EDT (-04:00) on the 10th: DST started in between.
            {"metric": "steps", "value": 2, "recorded_at": "2024-03-11T03:30:00Z"},
            // In Tokyo (+09:00): 2024-03-12 16:00Z is 01:00 on the 13th.
            {"metric": "steps", "value": 4, "recorded_at": "2024-03-12T16:00:00Z", "utc_offset": "+09:00"},
            // An explicit local date always wins.
            {"metric": "steps", "value": 8, "recorded_at": "2024-03-12T17:00:00Z", "utc_offset": "+09:00", "local_date": "2024-03-12"}
        ]),
    )
    .await;
    let daily = app
        .get_json(&format!("/v1/users/{user}/health/daily?metric=steps"))
        .await;
    let days: Vec<(String, f64)> = daily["data"]
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
        days,
        vec![
            ("2024-03-10".to_string(), 3.0),
            ("2024-03-12".to_string(), 8.0),
            ("2024-03-13".to_string(), 4.0)
        ]
    );

    // Without a time zone or offset, UTC decides.
    let utc_user = app.create_user("utc", None).await;
    app.ingest(
        &utc_user,
        json!([{"metric": "steps", "value": 1, "recorded_at": "2024-03-11T03:30:00Z"}]),
    )
    .await;
    let d = app.get_json(&format!("/v1/users/{utc_user}/health")).await;
    assert_eq!(d["data"][0]["local_date"], "2024-03-11");
}

async fn invalid_samples_reject_the_whole_request(app: TestApp) {
    let user = app.create_user("strict", None).await;
    let path = format!("/v1/users/{user}/health");
    let ok = steps(1, 1, 1.0);
    let cases: Vec<(Value, StatusCode, &str)> = vec![
        (
            json!({"samples": [ok.clone(), {"metric": "stepz", "value": 1, "recorded_at": "2024-03-01T00:00:00Z"}]}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "samples[1].metric",
        ),
        (
            json!({"samples": [ok.clone(), {"metric": "steps", "value": "many", "recorded_at": "2024-03-01T00:00:00Z"}]}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "samples[1].value",
        ),
        (
            json!({"samples": [{"metric": "steps", "value": 1, "recorded_at": "yesterday"}]}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "samples[0].recorded_at",
        ),
        (
            json!({"samples": [{"metric": "steps", "value": 1, "recorded_at": "2024-03-01T00:00:00Z", "utc_offset": "+25:00"}]}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "samples[0].utc_offset",
        ),
        (
            json!({"samples": [{"metric": "steps", "value": 1, "recorded_at": "2024-03-01T00:00:00Z", "local_date": "03/01/2024"}]}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "samples[0].local_date",
        ),
        (
            json!({"samples": [{"metric": "steps", "recorded_at": "2024-03-01T00:00:00Z"}]}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "samples[0]",
        ),
        (
            json!({"samples": [{"metric": "steps", "value": 1, "recorded_at": "2024-03-01T00:00:00Z", "colour": "red"}]}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "samples[0]",
        ),
        (
            json!({"samples": []}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "samples",
        ),
        (
            json!({"sample": [ok.clone()]}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "sample",
        ),
    ];
    for (body, status, field) in cases {
        let code = if status == StatusCode::BAD_REQUEST {
            "bad_request"
        } else {
            "validation_failed"
        };
        let e = expect_error(app.post(&path, body.clone()).await, status, code).await;
        assert!(
            e["field"].as_str().unwrap().starts_with(field),
            "{body}: {e}"
        );
    }
    // Too many samples.
    let many: Vec<Value> = (0..10_001).map(|i| json!({"metric": "steps", "value": 1, "recorded_at": format!("2024-01-01T00:00:{:02}.{:06}Z", i % 60, i)})).collect();
    let e = expect_error(
        app.post(&path, json!({"samples": many})).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    )
    .await;
    assert_eq!(e["field"], "samples");
    // Syntax errors are 400s.
    let res = app
        .client
        .post(app.url(&path))
        .bearer_auth(&app.key)
        .body("{\"samples\": [")
        .send()
        .await
        .unwrap();
    expect_error(res, StatusCode::BAD_REQUEST, "bad_request").await;
    let res = app
        .client
        .post(app.url(&path))
        .bearer_auth(&app.key)
        .send()
        .await
        .unwrap();
    expect_error(res, StatusCode::BAD_REQUEST, "bad_request").await;
    // Nothing at all was written.
    assert!(
        app.get_json(&path).await["data"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    // Query validation.
    let e = expect_error(
        app.get(&format!("{path}?metric=bogus")).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    )
    .await;
    assert_eq!(e["field"], "metric");
    let e = expect_error(
        app.get(&format!("{path}?from=tomorrow")).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    )
    .await;
    assert_eq!(e["field"], "from");
    let e = expect_error(
        app.get(&format!("{path}/daily?from=2024-03-05&to=2024-03-01"))
            .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    )
    .await;
    assert_eq!(e["field"], "from");
}

/// Pages through a user's samples while other requests insert both newer and older samples:
/// every sample that existed at the start is returned exactly once, nothing is repeated.
async fn cursor_pagination_is_stable_under_concurrent_inserts(app: TestApp) {
    let user = app.create_user("pager", None).await;
    // 300 samples; three metrics share each timestamp, so ordering must break ties by id.
    let initial: Vec<Value> = (0..100)
        .flat_map(|i| {
            let at = format!("2024-02-01T00:{:02}:{:02}Z", i / 60, i % 60);
            ["steps", "heart_rate", "floors"]
                .into_iter()
                .map(move |m| json!({"metric": m, "value": i, "recorded_at": at.clone()}))
        })
        .collect();
    app.ingest(&user, json!(initial)).await;
    let all = app
        .get_json(&format!("/v1/users/{user}/health?limit=1000"))
        .await;
    let before: HashSet<String> = all["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(before.len(), 300);

    let writer = {
        let client = app.client.clone();
        let url = app.url(&format!("/v1/users/{user}/health"));
        let key = app.key.clone();
        actix_web::rt::spawn(async move {
            for round in 0..20 {
                // One newer and one older than everything above, plus one in the middle.
                let batch = json!({"samples": [
                    {"metric": "steps", "value": round, "recorded_at": format!("2024-03-01T00:00:{round:02}Z")},
                    {"metric": "steps", "value": round, "recorded_at": format!("2024-01-01T00:00:{round:02}Z")},
                    {"metric": "spo2", "value": 97, "recorded_at": format!("2024-02-01T00:00:{round:02}.5Z")}
                ]});
                let res = client
                    .post(&url)
                    .bearer_auth(&key)
                    .json(&batch)
                    .send()
                    .await
                    .unwrap();
                assert_eq!(res.status(), StatusCode::OK);
            }
        })
    };

    let mut seen: Vec<String> = Vec::new();
    let mut cursor: Option<String> = None;
    let mut last: Option<(chrono::DateTime<chrono::Utc>, String)> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/v1/users/{user}/health?limit=7&cursor={c}"),
            None => format!("/v1/users/{user}/health?limit=7"),
        };
        let page = app.get_json(&path).await;
        for s in page["data"].as_array().unwrap() {
            let at = chrono::DateTime::parse_from_rfc3339(s["recorded_at"].as_str().unwrap())
                .unwrap()
                .to_utc();
            let key = (at, s["id"].as_str().unwrap().to_string());
            if let Some(prev) = &last {
                assert!(key < *prev, "order is (recorded_at, id) descending");
            }
            last = Some(key.clone());
            seen.push(key.1);
        }
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => break,
        }
        actix_web::rt::task::yield_now().await;
    }
    writer.await.unwrap();
    let unique: HashSet<String> = seen.iter().cloned().collect();
    assert_eq!(unique.len(), seen.len(), "no sample is repeated");
    assert!(
        before.is_subset(&unique),
        "no pre-existing sample is skipped"
    );
}

async fn daily_aggregation_follows_the_catalogue(app: TestApp) {
    let user = app.create_user("daily", None).await;
    app.ingest(
        &user,
        json!([
            {"metric": "steps", "value": 1000, "recorded_at": "2024-03-01T08:00:00Z"},
            {"metric": "steps", "value": 2500, "recorded_at": "2024-03-01T18:00:00Z"},
            {"metric": "heart_rate", "value": 60, "recorded_at": "2024-03-01T08:00:00Z"},
            {"metric": "heart_rate", "value": 90, "recorded_at": "2024-03-01T09:00:00Z"},
            {"metric": "heart_rate", "value": 75, "recorded_at": "2024-03-01T10:00:00Z"},
            {"metric": "weight", "value": 80.2, "recorded_at": "2024-03-01T07:00:00Z"},
            {"metric": "weight", "value": 79.9, "recorded_at": "2024-03-01T21:00:00Z"},
            {"metric": "weight", "value": 80.0, "recorded_at": "2024-03-01T12:00:00Z"},
            {"metric": "steps", "value": 4000, "recorded_at": "2024-03-02T08:00:00Z"}
        ]),
    )
    .await;
    let daily = app
        .get_json(&format!(
            "/v1/users/{user}/health/daily?from=2024-03-01&to=2024-03-01"
        ))
        .await;
    let get = |m: &str| {
        daily["data"]
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["metric"] == m)
            .unwrap()
            .clone()
    };
    assert_eq!(daily["data"].as_array().unwrap().len(), 3);
    let s = get("steps");
    assert_eq!(
        (
            s["value"].as_f64(),
            s["count"].as_i64(),
            s["min"].as_f64(),
            s["max"].as_f64()
        ),
        (Some(3500.0), Some(2), Some(1000.0), Some(2500.0))
    );
    assert_eq!(s["unit"], "count");
    assert_eq!(get("heart_rate")["value"], 75.0);
    assert_eq!(
        get("weight")["value"],
        79.9,
        "last by time, not by insertion"
    );
    let only = app
        .get_json(&format!("/v1/users/{user}/health/daily?metric=steps"))
        .await;
    assert_eq!(only["data"].as_array().unwrap().len(), 2);

    let summary = app
        .get_json(&format!("/v1/users/{user}/health/summary"))
        .await;
    let w = summary["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["metric"] == "weight")
        .unwrap();
    assert_eq!(
        (w["count"].as_i64(), w["last_value"].as_f64()),
        (Some(3), Some(79.9))
    );
    let st = summary["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["metric"] == "steps")
        .unwrap();
    assert_eq!(
        (
            st["first_date"].as_str(),
            st["last_date"].as_str(),
            st["last_value"].as_f64()
        ),
        (Some("2024-03-01"), Some("2024-03-02"), Some(4000.0))
    );

    let types = app.get_json("/v1/metric-types").await;
    let hr = types["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["metric"] == "resting_heart_rate")
        .unwrap();
    assert_eq!(
        (hr["unit"].as_str(), hr["aggregation"].as_str()),
        (Some("bpm"), Some("mean"))
    );
    assert!(types["data"].as_array().unwrap().len() >= 31);
}

async fn list_filters(app: TestApp) {
    let user = app.create_user("filters", None).await;
    app.ingest(&user, json!([steps(1, 1, 1.0), steps(2, 1, 2.0), steps(3, 1, 3.0), {"metric": "spo2", "value": 97, "recorded_at": "2024-03-02T05:00:00Z"}])).await;
    let p = format!("/v1/users/{user}/health");
    let r = json_ok(
        app.get(&format!(
            "{p}?metric=steps&from=2024-03-02T00:00:00Z&to=2024-03-03T01:00:00Z"
        ))
        .await,
    )
    .await;
    let v: Vec<f64> = r["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["value"].as_f64().unwrap())
        .collect();
    assert_eq!(v, vec![2.0], "`to` as an instant is exclusive");
    let r = app
        .get_json(&format!("{p}?from=2024-03-02&to=2024-03-02"))
        .await;
    assert_eq!(
        r["data"].as_array().unwrap().len(),
        2,
        "`to` as a date includes that day"
    );
    let r = app.get_json(&format!("{p}?provider=api&metric=spo2")).await;
    assert_eq!(r["data"][0]["provider"], "api");
    let r = app.get_json(&format!("{p}?provider=fitbit")).await;
    assert!(r["data"].as_array().unwrap().is_empty());
}

on_both_backends!(
    ingest_is_idempotent_and_updates_changed_values,
    units_convert_to_the_catalogue,
    local_dates_follow_offsets_and_timezones,
    invalid_samples_reject_the_whole_request,
    cursor_pagination_is_stable_under_concurrent_inserts,
    daily_aggregation_follows_the_catalogue,
    list_filters,
);
