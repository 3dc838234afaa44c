//! End users of an account (SPEC §8).

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::{Error, Result};
use crate::validate;

/// Longest user name.
pub const MAX_NAME: usize = 256;
/// Longest email address.
pub const MAX_EMAIL: usize = 254;

/// An end user of an account.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct User {
    /// `user_…`.
    pub id: String,
    /// Owning account.
    pub account_id: String,
    /// Display name.
    pub name: String,
    /// Email address, if known.
    pub email: Option<String>,
    /// Caller's metadata object.
    pub metadata: Value,
    /// Creation time (epoch ms).
    pub created_at: u64,
    /// Last change (epoch ms).
    pub updated_at: u64,
}

/// A request to create a user (`POST /api/v1/users`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateUser {
    /// Display name (1–256 characters).
    pub name: String,
    /// Email address.
    #[serde(default)]
    pub email: Option<String>,
    /// A JSON object of at most 4 KiB.
    #[serde(default)]
    pub metadata: Option<Value>,
}

/// A change to a user (`PATCH /api/v1/users/:id`); absent fields stay, `email: null` clears.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpdateUser {
    /// New name.
    #[serde(default)]
    pub name: Option<String>,
    /// New email; `Some(None)` clears it.
    #[serde(default, deserialize_with = "double_option")]
    pub email: Option<Option<String>>,
    /// New metadata object.
    #[serde(default)]
    pub metadata: Option<Value>,
}

fn double_option<'de, D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Option<Option<String>>, D::Error> {
    Option::<String>::deserialize(d).map(Some)
}

fn check_email(email: &str) -> Result<()> {
    validate::text("email", email, 3, MAX_EMAIL)?;
    match email.split_once('@') {
        Some((local, domain)) if !local.is_empty() && !domain.is_empty() && !domain.contains('@') => Ok(()),
        _ => Err(Error::invalid("email", "must be an email address")),
    }
}

impl CreateUser {
    /// Checks every field.
    pub fn validate(&self) -> Result<()> {
        validate::text("name", &self.name, 1, MAX_NAME)?;
        if let Some(email) = &self.email {
            check_email(email)?;
        }
        if let Some(metadata) = &self.metadata {
            validate::metadata("metadata", metadata)?;
        }
        Ok(())
    }
}

impl UpdateUser {
    /// Applies the change to `user` at `now`, after checking it.
    pub fn apply(&self, user: &mut User, now: u64) -> Result<()> {
        if let Some(name) = &self.name {
            validate::text("name", name, 1, MAX_NAME)?;
        }
        if let Some(Some(email)) = &self.email {
            check_email(email)?;
        }
        if let Some(metadata) = &self.metadata {
            validate::metadata("metadata", metadata)?;
        }
        if let Some(name) = &self.name {
            user.name.clone_from(name);
        }
        if let Some(email) = &self.email {
            user.email.clone_from(email);
        }
        if let Some(metadata) = &self.metadata {
            user.metadata.clone_from(metadata);
        }
        user.updated_at = now;
        Ok(())
    }
}
