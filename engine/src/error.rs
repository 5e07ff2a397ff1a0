//! The engine's one error type. Variants are grouped by meaning, not by origin, so the API can map
//! each to exactly one HTTP status and stable code (see `vitasync-api`'s `error` module).

use std::borrow::Cow;

/// Result alias used across the engine.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The input is well-formed but a field's value is not acceptable (→ 422).
    #[error("{field}: {message}")]
    Invalid {
        field: Cow<'static, str>,
        message: String,
    },

    /// The input could not be parsed at all (→ 400).
    #[error("{field}: {message}")]
    Malformed {
        field: Cow<'static, str>,
        message: String,
    },

    /// The thing does not exist in the caller's workspace. Foreign ids land here too, so a
    /// caller can never tell "someone else's" from "nobody's".
    #[error("{0} not found")]
    NotFound(&'static str),

    /// The request conflicts with existing state (e.g. a duplicate slug) (→ 409).
    #[error("{0}")]
    Conflict(String),

    /// No usable credentials (→ 401).
    #[error("{0}")]
    Unauthenticated(&'static str),

    /// Authenticated, but the key lacks the scope (→ 403).
    #[error("this operation requires the '{0}' scope")]
    MissingScope(&'static str),

    /// Too many requests for this key; retry after the given number of seconds (→ 429).
    #[error("rate limit exceeded")]
    RateLimited { retry_after_secs: u64 },

    /// The store is unreachable or misbehaving (→ 503 / 500). Details go to the log only.
    #[error("store error: {0}")]
    Store(#[from] sqlx::Error),

    /// Migrations could not be applied.
    #[error("migration error: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),

    /// Configuration is missing or contradictory (start-up only).
    #[error("configuration error: {0}")]
    Config(String),

    /// A provider refused or failed a call made on the caller's behalf (→ 502).
    #[error("provider error: {0}")]
    Upstream(String),

    /// Anything else that is our fault (→ 500). Details go to the log only.
    #[error("internal error: {0}")]
    Internal(String),
}

impl Error {
    /// A 422 for `field` with a message a person can act on.
    pub fn invalid(field: impl Into<Cow<'static, str>>, message: impl Into<String>) -> Self {
        Error::Invalid {
            field: field.into(),
            message: message.into(),
        }
    }

    /// A 400 for `field` that could not be parsed.
    pub fn malformed(field: impl Into<Cow<'static, str>>, message: impl Into<String>) -> Self {
        Error::Malformed {
            field: field.into(),
            message: message.into(),
        }
    }

    pub fn internal(message: impl Into<String>) -> Self {
        Error::Internal(message.into())
    }

    /// True when the store is unreachable or saturated (worth retrying later), as opposed to a
    /// bug or a bad query.
    pub fn is_unavailable(&self) -> bool {
        matches!(
            self,
            Error::Store(sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_))
        )
    }

    /// True when a unique constraint rejected the write.
    pub fn is_unique_violation(&self) -> bool {
        matches!(self, Error::Store(sqlx::Error::Database(db)) if db.is_unique_violation())
    }
}
