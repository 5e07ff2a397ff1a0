//! Test support shared by the workspace's integration tests: a fresh, empty database per test on
//! either backend. PostgreSQL comes from `TEST_DATABASE_URL` (a server where the test role may
//! create databases); `scripts/test.sh` starts a throwaway server and sets it. For the
//! benches: generated wearable data ([`generated`]) and this process's memory ([`process`]).

pub mod generated;
pub mod process;

use sqlx::Connection as _;
use tempfile::TempDir;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A database that exists only for one test. Keep it alive as long as the test runs.
pub struct FreshDb {
    /// `DATABASE_URL` for the test.
    pub url: String,
    /// Scratch directory (data dir; the SQLite file lives here).
    pub dir: TempDir,
    pub backend: Backend,
}

/// The PostgreSQL server tests run against.
pub fn pg_server_url() -> String {
    std::env::var("TEST_DATABASE_URL").unwrap_or_else(|_| {
        panic!(
            "TEST_DATABASE_URL is not set: run the suite with scripts/test.sh (it starts a throwaway \
             PostgreSQL), or point TEST_DATABASE_URL at a server where this role may CREATE DATABASE"
        )
    })
}

/// Replaces the database name in a `postgres://…/name` URL.
pub fn with_database(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let scheme_end = base.find("://").map(|i| i + 3).unwrap_or(0);
    let root = match base[scheme_end..].find('/') {
        Some(i) => &base[..scheme_end + i],
        None => base,
    };
    match query {
        Some(q) => format!("{root}/{name}?{q}"),
        None => format!("{root}/{name}"),
    }
}

/// A new empty database on `backend`.
pub async fn fresh(backend: Backend) -> FreshDb {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = match backend {
        Backend::Sqlite => format!("sqlite://{}", dir.path().join("test.db").display()),
        Backend::Postgres => {
            let server = pg_server_url();
            let name = format!("vs_test_{}", uuid::Uuid::new_v4().simple());
            let mut conn = sqlx::PgConnection::connect(&server)
                .await
                .expect("connect to TEST_DATABASE_URL");
            sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE \"{name}\"")))
                .execute(&mut conn)
                .await
                .expect("create test database");
            with_database(&server, &name)
        }
    };
    FreshDb { url, dir, backend }
}

#[cfg(test)]
mod tests {
    #[test]
    fn database_name_is_replaced() {
        assert_eq!(
            super::with_database("postgres://u@h:5/postgres", "x"),
            "postgres://u@h:5/x"
        );
        assert_eq!(
            super::with_database("postgres://u@h:5/postgres?sslmode=disable", "x"),
            "postgres://u@h:5/x?sslmode=disable"
        );
        assert_eq!(
            super::with_database("postgres://u@h:5", "x"),
            "postgres://u@h:5/x"
        );
    }
}
