//! The store contract for the sync side, on both backends: connections (re-connect keeps
//! cursors, disconnect forgets tokens and optionally data), sync jobs, atomic sync batches
//! (samples + events + cursors + job counters together), idempotent events and single-use OAuth
//! states.

use chrono::{DateTime, Duration, NaiveDate, Utc};
use vitasync_engine::config::Config;
use vitasync_engine::cursor::Limit;
use vitasync_engine::domain::{
    ConnectionStatus, EventQuery, EventType, JobStatus, NewConnection, NewEvent, NewSample,
    NewUser, OAuthState, SyncTrigger, User,
};
use vitasync_engine::providers::{Cursors, SyncBatch};
use vitasync_engine::services::workspaces;
use vitasync_engine::store::{self, DynStore};
use vitasync_testkit::{Backend, FreshDb};

async fn open(backend: Backend) -> (DynStore, FreshDb) {
    let db = vitasync_testkit::fresh(backend).await;
    let env = [("DATABASE_URL".to_string(), db.url.clone())].into();
    let store = store::open(&Config::load(None, &env).unwrap())
        .await
        .unwrap();
    store.migrate().await.unwrap();
    (store, db)
}

async fn user(store: &DynStore, slug: &str) -> User {
    let (ws, _) = workspaces::create_with_admin_key(store.as_ref(), slug, None)
        .await
        .unwrap();
    let new = NewUser {
        external_id: format!("{slug}-user"),
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

fn new_conn(provider: &str, tokens: Option<&str>) -> NewConnection {
    NewConnection {
        provider: provider.into(),
        provider_user_id: Some("acct-1".into()),
        scopes: vec!["activity".into(), "heartrate".into()],
        sealed_tokens: tokens.map(str::to_string),
        token_expires_at: Some(at("2024-05-02T00:00:00Z")),
        backfill_days: 30,
    }
}

fn steps(value: f64, hour: u32) -> NewSample {
    NewSample {
        provider: "demo".into(),
        metric: "steps",
        value,
        unit: "count",
        recorded_at: at(&format!("2024-05-01T{hour:02}:00:00Z")),
        local_date: NaiveDate::from_ymd_opt(2024, 5, 1).unwrap(),
        utc_offset_minutes: 0,
        source: None,
        data: None,
    }
}

fn workout(id: &str, kcal: f64) -> NewEvent {
    NewEvent {
        provider_event_id: id.into(),
        event_type: EventType::Workout,
        activity_type: Some("running".into()),
        started_at: at("2024-05-01T07:00:00Z"),
        ended_at: Some(at("2024-05-01T07:45:00Z")),
        local_date: NaiveDate::from_ymd_opt(2024, 5, 1).unwrap(),
        duration_s: Some(2700.0),
        distance_m: Some(8000.0),
        energy_kcal: Some(kcal),
        avg_hr: Some(150.0),
        max_hr: Some(175.0),
        data: Some(serde_json::json!({"source": "watch"})),
    }
}

fn cursors(pairs: &[(&str, &str)]) -> Cursors {
    pairs.iter().map(|(k, v)| (k.to_string(), at(v))).collect()
}

async fn connections_reconnect_and_disconnect(backend: Backend) {
    let (store, _db) = open(backend).await;
    let u = user(&store, "conns").await;
    let t0 = at("2024-05-01T00:00:00Z");
    let c = store
        .upsert_connection(&u, &new_conn("fitbit", Some("sealed-1")), t0)
        .await
        .unwrap();
    assert_eq!(c.status, ConnectionStatus::Active);
    assert_eq!(c.workspace_id, u.workspace_id);
    assert_eq!(c.scopes, vec!["activity", "heartrate"]);
    assert_eq!(c.backfill_days, 30);

    // Progress, then an error, then a reconnect: same row, active again, cursors kept.
    let batch = SyncBatch {
        samples: vec![],
        events: vec![],
        cursors: cursors(&[("activities", "2024-05-01T12:00:00Z")]),
    };
    store
        .commit_sync_batch(&u, &c, None, &batch, t0)
        .await
        .unwrap();
    store
        .set_connection_status(c.id, ConnectionStatus::ReauthRequired, Some("401"), t0)
        .await
        .unwrap();
    let again = store
        .upsert_connection(&u, &new_conn("fitbit", Some("sealed-2")), t0)
        .await
        .unwrap();
    assert_eq!(again.id, c.id);
    assert_eq!(again.status, ConnectionStatus::Active);
    assert_eq!(again.last_error, None);
    assert_eq!(again.sealed_tokens.as_deref(), Some("sealed-2"));
    assert_eq!(again.cursors, batch.cursors);
    assert_eq!(store.runnable_connections().await.unwrap().len(), 1);
    assert_eq!(
        store
            .connections_for_account("fitbit", "acct-1")
            .await
            .unwrap()
            .len(),
        1
    );

    // Another user cannot see or disconnect it.
    let other = user(&store, "other").await;
    assert!(store.connection(&other, c.id).await.unwrap().is_none());
    assert!(
        store
            .disconnect_connection(&other, c.id, true, t0)
            .await
            .unwrap()
            .is_none()
    );

    // Disconnect without data deletion keeps samples; with it, removes them and the cursors.
    let d = store
        .upsert_connection(&u, &new_conn("demo", None), t0)
        .await
        .unwrap();
    let batch = SyncBatch {
        samples: vec![steps(10.0, 1), steps(20.0, 2)],
        events: vec![workout("w1", 400.0)],
        cursors: cursors(&[("all", "2024-05-01T03:00:00Z")]),
    };
    store
        .commit_sync_batch(&u, &d, None, &batch, t0)
        .await
        .unwrap();
    assert_eq!(
        store
            .disconnect_connection(&u, c.id, false, t0)
            .await
            .unwrap()
            .map(|removed| removed.len()),
        Some(0)
    );
    let gone = store.connection(&u, c.id).await.unwrap().unwrap();
    assert_eq!(gone.status, ConnectionStatus::Disconnected);
    assert_eq!(gone.sealed_tokens, None);
    assert_eq!(
        store
            .disconnect_connection(&u, d.id, true, t0)
            .await
            .unwrap()
            .map(|removed| removed.len()),
        Some(2)
    );
    let d = store.connection(&u, d.id).await.unwrap().unwrap();
    assert!(d.cursors.is_empty());
    let events = store
        .list_events(&u, &EventQuery::default(), Limit(50), None)
        .await
        .unwrap();
    assert!(events.items.is_empty());
    assert!(store.runnable_connections().await.unwrap().is_empty());
}

async fn sync_batches_are_atomic_and_idempotent(backend: Backend) {
    let (store, _db) = open(backend).await;
    let u = user(&store, "batches").await;
    let t0 = at("2024-05-01T00:00:00Z");
    let c = store
        .upsert_connection(&u, &new_conn("demo", None), t0)
        .await
        .unwrap();
    let job = store
        .create_sync_job(&c, SyncTrigger::Backfill, None, t0)
        .await
        .unwrap();
    assert_eq!(job.status, JobStatus::Queued);
    store.start_sync_job(job.id, t0).await.unwrap();

    let b1 = SyncBatch {
        samples: vec![steps(10.0, 1), steps(20.0, 2)],
        events: vec![workout("w1", 400.0)],
        cursors: cursors(&[("all", "2024-05-01T03:00:00Z")]),
    };
    let out = store
        .commit_sync_batch(&u, &c, Some(job.id), &b1, t0)
        .await
        .unwrap();
    assert_eq!((out.samples.inserted, out.events_written), (2, 1));
    // The same batch again (a resumed sync re-reading its overlap) changes nothing.
    let out = store
        .commit_sync_batch(&u, &c, Some(job.id), &b1, t0)
        .await
        .unwrap();
    assert_eq!((out.samples.unchanged, out.events_written), (2, 0));
    // A corrected workout updates in place.
    let b2 = SyncBatch {
        samples: vec![steps(25.0, 2)],
        events: vec![workout("w1", 420.0)],
        cursors: cursors(&[
            ("all", "2024-05-01T02:00:00Z"),
            ("sleep", "2024-05-01T00:00:00Z"),
        ]),
    };
    let out = store
        .commit_sync_batch(&u, &c, Some(job.id), &b2, t0)
        .await
        .unwrap();
    assert_eq!((out.samples.updated, out.events_written), (1, 1));
    store
        .finish_sync_job(
            job.id,
            JobStatus::Succeeded,
            None,
            t0 + Duration::seconds(5),
        )
        .await
        .unwrap();

    let job = store
        .sync_job(u.workspace_id, job.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (job.inserted, job.updated, job.unchanged, job.events_written),
        (2, 1, 2, 2)
    );
    assert_eq!(job.status, JobStatus::Succeeded);
    assert_eq!(job.provider, "demo");
    assert!(job.started_at.is_some() && job.finished_at.is_some());
    let other = user(&store, "other").await;
    assert!(
        store
            .sync_job(other.workspace_id, job.id)
            .await
            .unwrap()
            .is_none()
    );

    // Cursors only move forward, per data type.
    let c = store.connection(&u, c.id).await.unwrap().unwrap();
    assert_eq!(
        c.cursors,
        cursors(&[
            ("all", "2024-05-01T03:00:00Z"),
            ("sleep", "2024-05-01T00:00:00Z")
        ])
    );
    assert_eq!(c.last_synced_at, Some(t0));

    let events = store
        .list_events(
            &u,
            &EventQuery {
                event_type: Some(EventType::Workout),
                ..Default::default()
            },
            Limit(50),
            None,
        )
        .await
        .unwrap();
    assert_eq!(events.items.len(), 1);
    let e = &events.items[0];
    assert_eq!((e.energy_kcal, e.provider.as_str()), (Some(420.0), "demo"));
    assert_eq!(e.data, Some(serde_json::json!({"source": "watch"})));
    let sleeps = store
        .list_events(
            &u,
            &EventQuery {
                event_type: Some(EventType::Sleep),
                ..Default::default()
            },
            Limit(50),
            None,
        )
        .await
        .unwrap();
    assert!(sleeps.items.is_empty());

    // Jobs a previous process left running end as failed when the next one starts.
    let j2 = store
        .create_sync_job(&c, SyncTrigger::Schedule, None, t0)
        .await
        .unwrap();
    store.start_sync_job(j2.id, t0).await.unwrap();
    assert_eq!(store.fail_unfinished_jobs(t0).await.unwrap(), vec![c.id]);
    let j2 = store
        .sync_job(u.workspace_id, j2.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(j2.status, JobStatus::Failed);
    let page = store.list_sync_jobs(&u, Limit(1), None).await.unwrap();
    assert_eq!(page.items[0].id, j2.id, "newest first");
    let page2 = store.list_sync_jobs(&u, Limit(1), page.next).await.unwrap();
    assert_eq!(page2.items[0].id, job.id);
    assert!(page2.next.is_none());
    // A job queued after the start (a request served while start-up still ran) is this
    // process's own: it is not interrupted.
    let j3 = store
        .create_sync_job(
            &c,
            SyncTrigger::Manual,
            None,
            t0 + chrono::Duration::seconds(1),
        )
        .await
        .unwrap();
    assert!(store.fail_unfinished_jobs(t0).await.unwrap().is_empty());
    let j3 = store
        .sync_job(u.workspace_id, j3.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(j3.status, JobStatus::Queued);
}

async fn oauth_states_are_single_use(backend: Backend) {
    let (store, _db) = open(backend).await;
    let u = user(&store, "oauth").await;
    let now = Utc::now();
    let st = OAuthState {
        state_hash: "h1".into(),
        workspace_id: u.workspace_id,
        user_id: u.id,
        provider: "fitbit".into(),
        sealed_pkce_verifier: Some("sealed".into()),
        return_url: Some("https://app.example/done".into()),
        backfill_days: Some(14),
        created_at: now,
        expires_at: now + Duration::minutes(10),
    };
    store.insert_oauth_state(&st).await.unwrap();
    let stale = OAuthState {
        state_hash: "old".into(),
        expires_at: now - Duration::hours(2),
        ..st.clone()
    };
    store.insert_oauth_state(&stale).await.unwrap();
    let got = store.take_oauth_state("h1", now).await.unwrap().unwrap();
    assert_eq!(got.user_id, u.id);
    assert_eq!(got.backfill_days, Some(14));
    assert_eq!(got.return_url, st.return_url);
    assert!(
        store.take_oauth_state("h1", now).await.unwrap().is_none(),
        "single use"
    );
    assert!(
        store.take_oauth_state("old", now).await.unwrap().is_none(),
        "long-expired states are swept"
    );
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
    connections_reconnect_and_disconnect,
    sync_batches_are_atomic_and_idempotent,
    oauth_states_are_single_use
);
