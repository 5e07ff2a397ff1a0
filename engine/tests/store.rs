//! The store contract, run against both backends: the write path's change list (what a later
//! stage feeds to the analytics), idempotency, transactional batches and tenancy by signature.

use chrono::{DateTime, NaiveDate, Utc};
use vitasync_engine::config::Config;
use vitasync_engine::domain::{ChangedValue, NewSample, NewUser, User};
use vitasync_engine::services::{ingest, workspaces};
use vitasync_engine::store::{self, DynStore};
use vitasync_testkit::{Backend, FreshDb};

async fn open(backend: Backend) -> (DynStore, FreshDb) {
    let db = vitasync_testkit::fresh(backend).await;
    let env = [("DATABASE_URL".to_string(), db.url.clone())].into();
    let store = store::open(&Config::load(None, &env).unwrap())
        .await
        .unwrap();
    store.migrate().await.unwrap();
    store.migrate().await.expect("migrating twice is a no-op");
    store.ready().await.unwrap();
    (store, db)
}

async fn user(store: &DynStore, slug: &str) -> User {
    let (ws, _) = workspaces::create_with_admin_key(store.as_ref(), slug, None)
        .await
        .unwrap();
    let new = NewUser {
        external_id: "u".into(),
        email: None,
        display_name: None,
        timezone: None,
        metadata: None,
    };
    store.create_user(ws.id, &new).await.unwrap().0
}

fn at(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().to_utc()
}

fn sample(metric: &'static str, value: f64, recorded_at: &str, date: &str) -> NewSample {
    NewSample {
        provider: "api".into(),
        metric,
        value,
        unit: vitasync_engine::catalogue::metric(metric).unwrap().unit,
        recorded_at: at(recorded_at),
        local_date: NaiveDate::parse_from_str(date, "%Y-%m-%d").unwrap(),
        utc_offset_minutes: 0,
        source: None,
        data: Some(serde_json::json!({"device": "x"})),
    }
}

async fn write_path_reports_changes(backend: Backend) {
    let (store, _db) = open(backend).await;
    let u = user(&store, "changes").await;
    let d1 = NaiveDate::from_ymd_opt(2024, 5, 1).unwrap();
    let batch = vec![
        sample("steps", 10.0, "2024-05-01T10:00:00Z", "2024-05-01"),
        sample("steps", 20.0, "2024-05-01T11:00:00.123456Z", "2024-05-01"),
    ];
    let out = ingest::write(store.as_ref(), &u, batch.clone())
        .await
        .unwrap();
    assert_eq!((out.inserted, out.updated, out.unchanged), (2, 0, 0));
    assert!(
        out.changes
            .iter()
            .all(|c| c.old.is_none() && c.user_id == u.id)
    );
    let mut news: Vec<f64> = out.changes.iter().map(|c| c.new.unwrap().value).collect();
    news.sort_by(f64::total_cmp);
    assert_eq!(news, vec![10.0, 20.0]);

    let again = ingest::write(store.as_ref(), &u, batch).await.unwrap();
    assert_eq!((again.inserted, again.updated, again.unchanged), (0, 0, 2));
    assert!(
        again.changes.is_empty(),
        "an identical write changes nothing and emits nothing"
    );

    // A correction moves the value and the date: the change carries both old and new.
    let fix = vec![sample(
        "steps",
        25.0,
        "2024-05-01T11:00:00.123456Z",
        "2024-05-02",
    )];
    let out = ingest::write(store.as_ref(), &u, fix).await.unwrap();
    assert_eq!((out.inserted, out.updated, out.unchanged), (0, 1, 0));
    let c = &out.changes[0];
    assert_eq!(
        c.old,
        Some(ChangedValue {
            value: 20.0,
            local_date: d1
        })
    );
    assert_eq!(
        c.new,
        Some(ChangedValue {
            value: 25.0,
            local_date: NaiveDate::from_ymd_opt(2024, 5, 2).unwrap()
        })
    );
    assert_eq!(c.recorded_at, at("2024-05-01T11:00:00.123456Z"));
    assert_eq!((c.metric.as_str(), c.provider.as_str()), ("steps", "api"));

    // Deleting the user removes every sample in one go and reports how many.
    let removed = store
        .delete_user(u.workspace_id, u.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(removed.len(), 2);
    assert!(
        removed
            .iter()
            .all(|c| c.new.is_none() && c.old.is_some() && c.user_id == u.id)
    );
    assert_eq!(store.delete_user(u.workspace_id, u.id).await.unwrap(), None);
}

async fn users_are_only_found_in_their_workspace(backend: Backend) {
    let (store, _db) = open(backend).await;
    let a = user(&store, "ws-a").await;
    let b = user(&store, "ws-b").await;
    assert!(store.user(b.workspace_id, a.id).await.unwrap().is_none());
    assert!(store.user(a.workspace_id, a.id).await.unwrap().is_some());
    assert_eq!(store.delete_user(b.workspace_id, a.id).await.unwrap(), None);
    assert!(store.user(a.workspace_id, a.id).await.unwrap().is_some());
}

async fn large_batches_commit_whole(backend: Backend) {
    let (store, _db) = open(backend).await;
    let u = user(&store, "large").await;
    let base = at("2024-01-01T00:00:00Z");
    let batch: Vec<NewSample> = (0..25_000)
        .map(|i| {
            let t = base + chrono::Duration::seconds(i);
            NewSample {
                recorded_at: t,
                local_date: t.date_naive(),
                ..sample(
                    "heart_rate",
                    60.0 + (i % 40) as f64,
                    "2024-01-01T00:00:00Z",
                    "2024-01-01",
                )
            }
        })
        .collect();
    let out = ingest::write(store.as_ref(), &u, batch).await.unwrap();
    assert_eq!(out.inserted, 25_000);
    assert_eq!(out.changes.len(), 25_000);
    let summary = store.metric_summaries(&u).await.unwrap();
    assert_eq!(summary[0].count, 25_000);
}

macro_rules! both {
    ($($name:ident),*) => {$(
        mod $name {
            #[tokio::test]
            async fn sqlite() { super::$name(vitasync_testkit::Backend::Sqlite).await }
            #[tokio::test]
            async fn postgres() { super::$name(vitasync_testkit::Backend::Postgres).await }
        }
    )*};
}

both!(
    write_path_reports_changes,
    users_are_only_found_in_their_workspace,
    large_batches_commit_whole
);
