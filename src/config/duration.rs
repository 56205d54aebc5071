//! Humantime durations in config files (`"30s"`, `"15m"`, `"30d"`), with an error message
//! that shows the user what was expected and what they wrote.

use serde::{Deserialize, Deserializer, Serializer, de};
use std::time::Duration;

/// Parses a humantime duration, or explains what went wrong in the words config errors use.
pub fn parse(text: &str) -> Result<Duration, String> {
    humantime::parse_duration(text.trim())
        .map_err(|_| format!("expected a duration like \"30s\", got {text:?}"))
}

pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&humantime::format_duration(*d).to_string())
}

pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    let value = toml::Value::deserialize(d)?;
    match value {
        toml::Value::String(s) => parse(&s).map_err(de::Error::custom),
        other => Err(de::Error::custom(format!(
            "expected a duration like \"30s\", got {other}"
        ))),
    }
}

/// The same for optional durations (budget thresholds).
pub mod option {
    use super::*;

    pub fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => super::serialize(d, s),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        super::deserialize(d).map(Some)
    }
}
