//! What a flush changes and what that means. Every flush compares the rows as they were with
//! the rows as they are now ([`diff`]): only rows that differ are written, and each difference
//! is announced by one set of rules. The first flush after a start compares the hydrated
//! analytics with what the tables already hold ([`reconcile`]), so a restart rewrites nothing
//! that did not change, and what the data committed while the analytics were not running
//! changed (a crash between a write's commit and its materialisation) is still announced.

use std::collections::BTreeMap;

use serde_json::Value;
use uuid::Uuid;
use vitasync_engine::analytics::{AnalyticsTable, AnalyticsWrite};
use vitasync_engine::bus::{AnalyticsChange, AnomalyFact};
use vitasync_engine::catalogue;
use vitasync_engine::domain::{UserId, WorkspaceId};
use vitasync_engine::store::Store;

const TABLES: [AnalyticsTable; 5] = [
    AnalyticsTable::Baselines,
    AnalyticsTable::Anomalies,
    AnalyticsTable::Correlations,
    AnalyticsTable::Scores,
    AnalyticsTable::Records,
];

/// A row's identity: its table (by position in [`TABLES`]), user and natural key.
pub type Key = (u8, Uuid, String);

fn text(v: &Value, field: &str) -> String {
    v[field].as_str().unwrap_or_default().to_string()
}

/// The natural key of a stored body of `table` (what the table's primary key holds).
fn body_key(table: AnalyticsTable, body: &Value) -> String {
    match table {
        AnalyticsTable::Baselines => format!("{}|{}", text(body, "metric"), body["window_days"]),
        AnalyticsTable::Anomalies => text(body, "id"),
        AnalyticsTable::Correlations => format!(
            "{}|{}|{}",
            text(body, "metric_a"),
            text(body, "metric_b"),
            body["lag_days"]
        ),
        AnalyticsTable::Scores => text(body, "date"),
        AnalyticsTable::Records => record_key(body),
    }
}

/// Records are keyed by (metric, kind) in the table; a workout record's metric names its
/// activity type too.
fn record_key(body: &Value) -> String {
    let metric = match body["activity_type"].as_str() {
        Some(activity) => format!("{}:{activity}", text(body, "metric")),
        None => text(body, "metric"),
    };
    format!("{metric}|{}", text(body, "kind"))
}

fn table_index(table: AnalyticsTable) -> u8 {
    TABLES.iter().position(|t| *t == table).unwrap_or_default() as u8
}

/// The key and new body of a write (None for a deletion).
fn write_key(w: &AnalyticsWrite) -> (Key, Option<Value>) {
    let (table, user, body) = match w {
        AnalyticsWrite::Baseline { user_id, put, .. } => (
            AnalyticsTable::Baselines,
            *user_id,
            put.as_ref().map(|(_, b)| b.clone()),
        ),
        AnalyticsWrite::Anomaly { user_id, put, .. } => (
            AnalyticsTable::Anomalies,
            *user_id,
            put.as_ref().map(|a| a.body.clone()),
        ),
        AnalyticsWrite::Correlation { user_id, put, .. } => (
            AnalyticsTable::Correlations,
            *user_id,
            put.as_ref().map(|(_, b)| b.clone()),
        ),
        AnalyticsWrite::Score { user_id, put, .. } => {
            (AnalyticsTable::Scores, *user_id, put.clone())
        }
        AnalyticsWrite::Record { user_id, put, .. } => {
            (AnalyticsTable::Records, *user_id, put.clone())
        }
    };
    let key = match (w, &body) {
        (AnalyticsWrite::Anomaly { id, .. }, _) => id.to_string(),
        (_, Some(b)) => body_key(table, b),
        (
            AnalyticsWrite::Baseline {
                metric,
                window_days,
                ..
            },
            None,
        ) => {
            format!("{metric}|{window_days}")
        }
        (
            AnalyticsWrite::Correlation {
                metric_a,
                metric_b,
                lag_days,
                ..
            },
            None,
        ) => {
            format!("{metric_a}|{metric_b}|{lag_days}")
        }
        (AnalyticsWrite::Score { date, .. }, None) => date.to_string(),
        (AnalyticsWrite::Record { metric, kind, .. }, None) => format!("{metric}|{kind}"),
    };
    ((table_index(table), user, key), body)
}

/// The deletion of a stored row.
fn removal(table: AnalyticsTable, user_id: Uuid, body: &Value) -> Option<AnalyticsWrite> {
    Some(match table {
        AnalyticsTable::Baselines => AnalyticsWrite::Baseline {
            user_id,
            metric: text(body, "metric"),
            window_days: body["window_days"].as_u64()? as u32,
            put: None,
        },
        AnalyticsTable::Anomalies => AnalyticsWrite::Anomaly {
            id: text(body, "id").parse().ok()?,
            user_id,
            put: None,
        },
        AnalyticsTable::Correlations => AnalyticsWrite::Correlation {
            user_id,
            metric_a: text(body, "metric_a"),
            metric_b: text(body, "metric_b"),
            lag_days: body["lag_days"].as_u64()? as u8,
            put: None,
        },
        AnalyticsTable::Scores => AnalyticsWrite::Score {
            user_id,
            date: text(body, "date").parse().ok()?,
            put: None,
        },
        AnalyticsTable::Records => {
            let key = record_key(body);
            let (metric, kind) = key.split_once('|')?;
            AnalyticsWrite::Record {
                user_id,
                metric: metric.to_string(),
                kind: kind.to_string(),
                put: None,
            }
        }
    })
}

fn fact(body: &Value) -> Option<AnomalyFact> {
    Some(AnomalyFact {
        id: text(body, "id").parse().ok()?,
        metric: text(body, "metric"),
        date: text(body, "date").parse().ok()?,
        method: text(body, "method"),
        severity: text(body, "severity"),
        body: body.clone(),
    })
}

/// What a difference between a stored row (`before`) and the recomputed one (`after`) means,
/// by the same rules as the running materializer's events.
fn change(
    table: AnalyticsTable,
    before: Option<&Value>,
    after: Option<&Value>,
) -> Option<AnalyticsChange> {
    match (table, before, after) {
        (AnalyticsTable::Anomalies, None, Some(a)) => {
            Some(AnalyticsChange::AnomalyDetected { anomaly: fact(a)? })
        }
        (AnalyticsTable::Anomalies, Some(b), None) => {
            Some(AnalyticsChange::AnomalyResolved { anomaly: fact(b)? })
        }
        (AnalyticsTable::Scores, previous, Some(a)) => Some(AnalyticsChange::ScoreUpdated {
            date: text(a, "date").parse().ok()?,
            body: a.clone(),
            previous: previous.cloned(),
        }),
        (AnalyticsTable::Correlations, None, Some(a)) => {
            Some(AnalyticsChange::CorrelationDiscovered {
                metric_a: text(a, "metric_a"),
                metric_b: text(a, "metric_b"),
                lag_days: a["lag_days"].as_u64()? as u8,
                body: a.clone(),
            })
        }
        (AnalyticsTable::Correlations, Some(b), None) => {
            Some(AnalyticsChange::CorrelationDisappeared {
                metric_a: text(b, "metric_a"),
                metric_b: text(b, "metric_b"),
                lag_days: b["lag_days"].as_u64()? as u8,
                body: b.clone(),
            })
        }
        (AnalyticsTable::Records, Some(b), Some(a)) => {
            let (old, new) = (b["value"].as_f64()?, a["value"].as_f64()?);
            let lower = a["activity_type"].is_null()
                && catalogue::metric(&text(a, "metric")).is_some_and(|m| m.lower_is_better);
            let better = if lower { new < old } else { new > old };
            better.then(|| AnalyticsChange::RecordBroken {
                metric: record_key(a)
                    .split('|')
                    .next()
                    .unwrap_or_default()
                    .to_string(),
                body: a.clone(),
                previous: b.clone(),
            })
        }
        _ => None,
    }
}

/// The writes that bring the stored tables of `users` to `desired` (every row the hydrated
/// analytics hold for them, as the first flush computes them), and the changes that means per
/// user.
pub async fn reconcile(
    store: &dyn Store,
    users: &[(UserId, WorkspaceId)],
    desired: &[AnalyticsWrite],
) -> vitasync_engine::Result<(Vec<AnalyticsWrite>, Vec<(Uuid, AnalyticsChange)>)> {
    let mut stored: BTreeMap<Key, Value> = BTreeMap::new();
    for (user_id, workspace) in users {
        let Some(user) = store.user(*workspace, *user_id).await? else {
            continue;
        };
        for table in TABLES {
            for mut body in store.analytics_rows(&user, table).await? {
                if let Some(o) = body.as_object_mut() {
                    // User state, not analytics.
                    o.remove("status");
                }
                stored.insert((table_index(table), *user_id, body_key(table, &body)), body);
            }
        }
    }
    Ok(diff(stored, desired))
}

/// The rows `writes` put, by key (what the tables hold after them).
pub fn keyed(writes: &[AnalyticsWrite]) -> BTreeMap<Key, Value> {
    writes
        .iter()
        .filter_map(|w| {
            let (key, body) = write_key(w);
            Some((key, body?))
        })
        .collect()
}

/// Compares the rows as they were (`before`, by key) with `desired`: keeps the writes that
/// change something, deletes the rows `desired` no longer mentions, and says what each
/// difference means — one set of rules for the running materializer and the start-up
/// reconciliation.
pub fn diff(
    mut before: BTreeMap<Key, Value>,
    desired: &[AnalyticsWrite],
) -> (Vec<AnalyticsWrite>, Vec<(Uuid, AnalyticsChange)>) {
    // A key written twice (a retried flush carries older writes first) ends as its last write.
    let mut last: BTreeMap<Key, (&AnalyticsWrite, Option<Value>)> = BTreeMap::new();
    for w in desired {
        let (key, body) = write_key(w);
        last.insert(key, (w, body));
    }
    let mut writes = Vec::new();
    let mut changes = Vec::new();
    for (key, (w, body)) in last {
        let was = before.remove(&key);
        if was == body {
            continue;
        }
        let table = TABLES[key.0 as usize];
        if let Some(c) = change(table, was.as_ref(), body.as_ref()) {
            changes.push((key.1, c));
        }
        writes.push(w.clone());
    }
    for ((t, user, _), body) in before {
        let table = TABLES[t as usize];
        if let Some(w) = removal(table, user, &body) {
            if let Some(c) = change(table, Some(&body), None) {
                changes.push((user, c));
            }
            writes.push(w);
        }
    }
    (writes, changes)
}
