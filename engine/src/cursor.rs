//! Opaque, stable pagination cursors.
//!
//! A cursor is the (time, id) position of the last row returned, base64url-encoded. Lists are
//! ordered by (time, id) — never by time alone — so rows sharing a timestamp are neither skipped
//! nor repeated, and rows inserted concurrently never shift a page boundary.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::error::{Error, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cursor {
    pub at: DateTime<Utc>,
    pub id: Uuid,
}

impl Cursor {
    pub fn encode(&self) -> String {
        let raw = format!("{}|{}", self.at.timestamp_micros(), self.id.simple());
        URL_SAFE_NO_PAD.encode(raw)
    }

    pub fn decode(s: &str) -> Result<Self> {
        let bad = || Error::malformed("cursor", "not a cursor returned by this API");
        let raw = URL_SAFE_NO_PAD.decode(s).map_err(|_| bad())?;
        let raw = std::str::from_utf8(&raw).map_err(|_| bad())?;
        let (t, id) = raw.split_once('|').ok_or_else(bad)?;
        let micros: i64 = t.parse().map_err(|_| bad())?;
        Ok(Cursor {
            at: DateTime::from_timestamp_micros(micros).ok_or_else(bad)?,
            id: Uuid::parse_str(id).map_err(|_| bad())?,
        })
    }
}

/// Page size: default 50, at most 1000.
#[derive(Debug, Clone, Copy)]
pub struct Limit(pub u32);

impl Limit {
    pub const DEFAULT: u32 = 50;
    pub const MAX: u32 = 1000;

    pub fn parse(v: Option<i64>) -> Result<Self> {
        match v {
            None => Ok(Limit(Self::DEFAULT)),
            Some(n) if (1..=Self::MAX as i64).contains(&n) => Ok(Limit(n as u32)),
            Some(_) => Err(Error::invalid("limit", "must be between 1 and 1000")),
        }
    }
}

/// A page of results plus where to continue.
#[derive(Debug, Clone)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next: Option<Cursor>,
}

impl<T> Page<T> {
    /// Builds a page from `limit + 1` fetched rows: the extra row only signals that more exist.
    pub fn from_overfetch(mut rows: Vec<T>, limit: Limit, position: impl Fn(&T) -> Cursor) -> Self {
        let more = rows.len() > limit.0 as usize;
        rows.truncate(limit.0 as usize);
        let next = if more {
            rows.last().map(position)
        } else {
            None
        };
        Page { items: rows, next }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_rejects_garbage() {
        let c = Cursor {
            at: DateTime::from_timestamp_micros(1_700_000_000_123_456).unwrap(),
            id: Uuid::now_v7(),
        };
        assert_eq!(Cursor::decode(&c.encode()).unwrap(), c);
        assert!(Cursor::decode("nope").is_err());
        assert!(Cursor::decode("").is_err());
    }
}
