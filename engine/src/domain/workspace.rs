use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;

use crate::error::{Error, Result};

/// A tenant. Every other row belongs to exactly one workspace, directly or through its user.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Workspace {
    pub id: uuid::Uuid,
    pub slug: String,
    pub name: String,
    /// Providers in the order their data wins when several report the same metric for the same
    /// user and date; providers not listed follow in the default order. Empty = the default.
    pub provider_priority: Vec<String>,
    pub created_at: DateTime<Utc>,
}

/// Slugs are 2–63 characters of lowercase letters, digits and inner hyphens.
pub fn validate_slug(slug: &str) -> Result<()> {
    let ok_len = (2..=63).contains(&slug.len());
    let ok_chars = slug
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    let ok_ends = !slug.starts_with('-') && !slug.ends_with('-');
    if ok_len && ok_chars && ok_ends {
        Ok(())
    } else {
        Err(Error::invalid(
            "slug",
            "must be 2-63 characters of lowercase letters, digits and inner hyphens",
        ))
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn slugs() {
        assert!(super::validate_slug("acme-health").is_ok());
        assert!(super::validate_slug("a").is_err());
        assert!(super::validate_slug("-acme").is_err());
        assert!(super::validate_slug("Acme").is_err());
    }
}
