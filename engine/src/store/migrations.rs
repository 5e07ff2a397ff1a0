//! Migrations embedded in the binary, one list per backend. A test checks that every file in
//! `migrations/<backend>/` is listed here, so a new file cannot be forgotten.

use std::borrow::Cow;

use sqlx::SqlSafeStr as _;
use sqlx::migrate::{Migration, MigrationType, Migrator};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    pub fn as_str(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }
}

type Embedded = (i64, &'static str, &'static str);

const SQLITE: &[Embedded] = &[
    (
        1,
        "foundation",
        include_str!("../../../migrations/sqlite/0001_foundation.sql"),
    ),
    (
        2,
        "connections",
        include_str!("../../../migrations/sqlite/0002_connections.sql"),
    ),
    (
        3,
        "oauth",
        include_str!("../../../migrations/sqlite/0003_oauth.sql"),
    ),
    (
        4,
        "analytics",
        include_str!("../../../migrations/sqlite/0004_analytics.sql"),
    ),
    (
        5,
        "notifications",
        include_str!("../../../migrations/sqlite/0005_notifications.sql"),
    ),
    (
        6,
        "provider_priority",
        include_str!("../../../migrations/sqlite/0006_provider_priority.sql"),
    ),
];
const POSTGRES: &[Embedded] = &[
    (
        1,
        "foundation",
        include_str!("../../../migrations/postgres/0001_foundation.sql"),
    ),
    (
        2,
        "connections",
        include_str!("../../../migrations/postgres/0002_connections.sql"),
    ),
    (
        3,
        "oauth",
        include_str!("../../../migrations/postgres/0003_oauth.sql"),
    ),
    (
        4,
        "analytics",
        include_str!("../../../migrations/postgres/0004_analytics.sql"),
    ),
    (
        5,
        "notifications",
        include_str!("../../../migrations/postgres/0005_notifications.sql"),
    ),
    (
        6,
        "provider_priority",
        include_str!("../../../migrations/postgres/0006_provider_priority.sql"),
    ),
];

fn embedded(backend: Backend) -> &'static [Embedded] {
    match backend {
        Backend::Sqlite => SQLITE,
        Backend::Postgres => POSTGRES,
    }
}

/// The migrator for `backend`.
pub fn migrations_for(backend: Backend) -> Migrator {
    let migrations: Vec<Migration> = embedded(backend)
        .iter()
        .map(|(version, desc, sql)| {
            Migration::new(
                *version,
                Cow::Borrowed(*desc),
                MigrationType::Simple,
                sql.into_sql_str(),
                false,
            )
        })
        .collect();
    Migrator {
        migrations: Cow::Owned(migrations),
        ..Migrator::DEFAULT
    }
}

/// Highest embedded version, which `ready` compares with the database.
pub fn latest_version(backend: Backend) -> i64 {
    embedded(backend).iter().map(|m| m.0).max().unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_migration_file_is_embedded() {
        for backend in [Backend::Sqlite, Backend::Postgres] {
            let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../migrations")
                .join(backend.as_str());
            let mut files: Vec<String> = std::fs::read_dir(&dir)
                .unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .filter(|n| n.ends_with(".sql"))
                .collect();
            files.sort();
            let listed = embedded(backend);
            assert_eq!(files.len(), listed.len(), "{backend:?}: files {files:?}");
            for (file, (version, desc, _)) in files.iter().zip(listed) {
                assert_eq!(file, &format!("{version:04}_{desc}.sql"));
            }
        }
    }
}
