use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::WorkspaceId;
use crate::error::{Error, Result};

/// An integrator's end user, identified in their system by `external_id`.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct User {
    pub id: uuid::Uuid,
    #[serde(skip)]
    pub workspace_id: WorkspaceId,
    pub external_id: String,
    pub email: Option<String>,
    pub display_name: Option<String>,
    /// IANA time zone used to place samples that carry no offset on a calendar date.
    pub timezone: Option<String>,
    #[schema(value_type = Object)]
    pub metadata: serde_json::Value,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl User {
    pub fn tz(&self) -> Option<chrono_tz::Tz> {
        self.timezone.as_deref().and_then(|t| t.parse().ok())
    }
}

/// `POST /v1/users` body.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewUser {
    pub external_id: String,
    pub email: Option<String>,
    pub display_name: Option<String>,
    /// IANA time zone name, e.g. `Europe/Oslo`.
    pub timezone: Option<String>,
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<serde_json::Value>,
}

/// `PATCH /v1/users/{id}` body: absent fields stay as they are; `null` clears an optional field.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UserPatch {
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<String>)]
    pub email: Option<Option<String>>,
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<String>)]
    pub display_name: Option<Option<String>>,
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<String>)]
    pub timezone: Option<Option<String>>,
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<serde_json::Value>,
}

pub fn double_option<'de, D, T>(d: D) -> std::result::Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}

const MAX_TEXT: usize = 255;

pub fn validate_external_id(v: &str) -> Result<()> {
    if v.trim().is_empty() || v.len() > MAX_TEXT {
        return Err(Error::invalid("external_id", "must be 1-255 characters"));
    }
    Ok(())
}

pub fn validate_email(v: &str) -> Result<()> {
    let ok = v.len() <= MAX_TEXT
        && v.split_once('@')
            .is_some_and(|(a, b)| !a.is_empty() && b.contains('.'));
    if ok {
        Ok(())
    } else {
        Err(Error::invalid("email", "must be an email address"))
    }
}

pub fn validate_display_name(v: &str) -> Result<()> {
    if v.len() > MAX_TEXT {
        return Err(Error::invalid(
            "display_name",
            "must be at most 255 characters",
        ));
    }
    Ok(())
}

pub fn validate_timezone(v: &str) -> Result<()> {
    v.parse::<chrono_tz::Tz>()
        .map(|_| ())
        .map_err(|_| Error::invalid("timezone", format!("'{v}' is not an IANA time zone name")))
}

pub fn validate_metadata(v: &serde_json::Value) -> Result<()> {
    if !v.is_object() {
        return Err(Error::invalid("metadata", "must be a JSON object"));
    }
    if v.to_string().len() > 16 * 1024 {
        return Err(Error::invalid("metadata", "must be at most 16 KiB"));
    }
    Ok(())
}

impl NewUser {
    pub fn validate(&self) -> Result<()> {
        validate_external_id(&self.external_id)?;
        if let Some(e) = &self.email {
            validate_email(e)?;
        }
        if let Some(d) = &self.display_name {
            validate_display_name(d)?;
        }
        if let Some(t) = &self.timezone {
            validate_timezone(t)?;
        }
        if let Some(m) = &self.metadata {
            validate_metadata(m)?;
        }
        Ok(())
    }
}

impl UserPatch {
    pub fn validate(&self) -> Result<()> {
        if let Some(Some(e)) = &self.email {
            validate_email(e)?;
        }
        if let Some(Some(d)) = &self.display_name {
            validate_display_name(d)?;
        }
        if let Some(Some(t)) = &self.timezone {
            validate_timezone(t)?;
        }
        if let Some(m) = &self.metadata {
            validate_metadata(m)?;
        }
        Ok(())
    }

    /// Applies the patch to `user` in memory (the store then writes the result).
    pub fn apply(&self, user: &mut User) {
        if let Some(v) = &self.email {
            user.email = v.clone();
        }
        if let Some(v) = &self.display_name {
            user.display_name = v.clone();
        }
        if let Some(v) = &self.timezone {
            user.timezone = v.clone();
        }
        if let Some(v) = &self.metadata {
            user.metadata = v.clone();
        }
    }
}
