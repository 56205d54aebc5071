//! Reading a config file: TOML syntax, then every section and key checked on its own so that
//! all mistakes are reported together, then secrets expanded from the environment, then
//! `validate`.

use super::{AccountConfig, BudgetConfig, Config, Secret};
use serde::de::DeserializeOwned;
use std::path::Path;

/// One problem with the configuration, named by its key path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// Key path such as `logs.poll_interval` or `budgets[1].p95` (empty for the whole file).
    pub key: String,
    pub reason: String,
}

impl ConfigError {
    pub fn new(key: impl Into<String>, reason: impl Into<String>) -> Self {
        ConfigError { key: key.into(), reason: reason.into() }
    }
}

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.key.is_empty() {
            f.write_str(&self.reason)
        } else {
            write!(f, "{}: {}", self.key, self.reason)
        }
    }
}

/// What a config is loaded for: the checks that only matter to a running daemon (something
/// to tail, a safe listener) are not asked of a command that reads or feeds the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// `run` and `check-config`: every check.
    Daemon,
    /// `ingest`, `report`, `simulate`: the values they use must be right; nothing is tailed
    /// or served.
    Offline,
}

/// Reads and validates a config file for the daemon; every error found, or the config.
pub fn load_file(path: &Path) -> Result<Config, Vec<ConfigError>> {
    load_file_for(path, Purpose::Daemon)
}

/// Reads and validates a config file for `purpose`.
pub fn load_file_for(path: &Path, purpose: Purpose) -> Result<Config, Vec<ConfigError>> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        vec![ConfigError::new("", format!("cannot read {}: {e}", path.display()))]
    })?;
    load_str_for(&text, &|name| std::env::var(name).ok(), purpose)
}

/// Parses and validates config text for the daemon; `env` looks up environment variables
/// (a parameter so tests need not touch the process environment).
pub fn load_str(text: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<Config, Vec<ConfigError>> {
    load_str_for(text, env, Purpose::Daemon)
}

/// Parses and validates config text for `purpose`.
pub fn load_str_for(text: &str, env: &dyn Fn(&str) -> Option<String>, purpose: Purpose) -> Result<Config, Vec<ConfigError>> {
    let table: toml::Table = text
        .parse()
        .map_err(|e: toml::de::Error| vec![ConfigError::new("", format!("invalid TOML: {}", e.message()))])?;
    let mut errors = Vec::new();
    let mut config = Config::default();
    for (key, value) in &table {
        macro_rules! section {
            ($field:ident) => {{
                match value.as_table() {
                    Some(t) => {
                        if let Some(v) = check_table(key, t, &mut errors) {
                            config.$field = v;
                        }
                    }
                    None => errors.push(ConfigError::new(key.as_str(), "expected a table ([section])")),
                }
            }};
        }
        match key.as_str() {
            "aws" => section!(aws),
            "storage" => section!(storage),
            "http" => section!(http),
            "logs" => section!(logs),
            "xray" => section!(xray),
            "cloudwatch" => section!(cloudwatch),
            "environments" => section!(environments),
            "alerts" => section!(alerts),
            "metrics" => section!(metrics),
            "shard" => section!(shard),
            "cluster" => section!(cluster),
            "anomaly" => section!(anomaly),
            "accounts" => config.accounts = check_tables::<AccountConfig>("accounts", value, &mut errors),
            "budgets" => config.budgets = check_tables::<BudgetConfig>("budgets", value, &mut errors),
            "operations" => config.operations = check_tables::<super::OperationConfig>("operations", value, &mut errors),
            other => errors.push(ConfigError::new(
                other,
                "unknown section (expected one of aws, storage, http, logs, xray, cloudwatch, environments, alerts, metrics, shard, cluster, anomaly, budgets, accounts, operations)",
            )),
        }
    }
    expand_secret(&mut config.alerts.webhook_url, "alerts.webhook_url", "SENTINEL_WEBHOOK_URL", env, &mut errors);
    expand_secret(&mut config.http.api_token, "http.api_token", "SENTINEL_API_TOKEN", env, &mut errors);
    expand_secret(&mut config.alerts.alertmanager_url, "alerts.alertmanager_url", "SENTINEL_ALERTMANAGER_URL", env, &mut errors);
    expand_secret(&mut config.storage.url, "storage.url", "", env, &mut errors);
    expand_secret(&mut config.storage.password, "storage.password", "SENTINEL_DB_PASSWORD", env, &mut errors);
    for (i, a) in config.accounts.iter_mut().enumerate() {
        let key = format!("accounts[{i}].external_id");
        // No fallback variable: each account's id is its own.
        expand_secret(&mut a.external_id, &key, "", env, &mut errors);
    }
    errors.extend(super::validate::validate(&config, purpose));
    if errors.is_empty() { Ok(config) } else { Err(errors) }
}

/// An array of tables (`[[name]]`), each checked like a section; every bad entry named.
fn check_tables<T: DeserializeOwned>(name: &str, value: &toml::Value, errors: &mut Vec<ConfigError>) -> Vec<T> {
    let Some(items) = value.as_array() else {
        errors.push(ConfigError::new(name, format!("expected an array of tables ([[{name}]])")));
        return Vec::new();
    };
    let mut out = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let path = format!("{name}[{i}]");
        match item.as_table() {
            Some(t) => out.extend(check_table::<T>(&path, t, errors)),
            None => errors.push(ConfigError::new(path, format!("expected a table ([[{name}]])"))),
        }
    }
    out
}

/// Deserializes a section; when that fails, retries key by key so every bad key is named,
/// and keeps the good keys so later checks see what the user meant.
fn check_table<T: DeserializeOwned>(path: &str, table: &toml::Table, errors: &mut Vec<ConfigError>) -> Option<T> {
    match T::deserialize(toml::Value::Table(table.clone())) {
        Ok(v) => Some(v),
        Err(whole) => {
            let mut good = toml::Table::new();
            for (k, v) in table {
                let mut single = toml::Table::new();
                single.insert(k.clone(), v.clone());
                match T::deserialize(toml::Value::Table(single)) {
                    Ok(_) => {
                        good.insert(k.clone(), v.clone());
                    }
                    Err(e) => errors.push(ConfigError::new(format!("{path}.{k}"), e.message().to_string())),
                }
            }
            if good.len() == table.len() {
                errors.push(ConfigError::new(path, whole.message().to_string()));
                return None;
            }
            T::deserialize(toml::Value::Table(good)).ok()
        }
    }
}

/// `"${NAME}"` is replaced by the variable's value; an empty value falls back to `fallback_var`.
fn expand_secret(
    secret: &mut Secret,
    key: &str,
    fallback_var: &str,
    env: &dyn Fn(&str) -> Option<String>,
    errors: &mut Vec<ConfigError>,
) {
    let raw = secret.0.trim();
    if let Some(name) = raw.strip_prefix("${").and_then(|r| r.strip_suffix('}')) {
        match env(name) {
            Some(v) if !v.is_empty() => secret.0 = v,
            _ => errors.push(ConfigError::new(key, format!("environment variable {name} is not set"))),
        }
    } else if raw.is_empty() {
        if let Some(v) = env(fallback_var) {
            secret.0 = v;
        }
    }
}
