//! Where the daemon looks: every (account, region) it watches, with how to reach it (the
//! role to assume) and what to read there. Pure: built from the config once at start; the
//! sources, limiters, checkpoints and labels of one scope are its own.

use crate::config::{Config, Secret};

/// The account name used when the config has no `[[accounts]]`.
pub const DEFAULT_ACCOUNT: &str = crate::model::DEFAULT_ACCOUNT;

/// One (account, region) the daemon watches.
#[derive(Debug, Clone, PartialEq)]
pub struct Scope {
    /// The account's name (the `account` label).
    pub account: String,
    /// The region (the `region` label); empty: the SDK's default region.
    pub region: String,
    /// Role to assume; empty: the default credentials.
    pub role_arn: String,
    pub external_id: Secret,
    pub session_name: String,
    /// Env of events nothing more specific attributes (empty: none).
    pub env: String,
    pub logs_enabled: bool,
    pub log_groups: Vec<String>,
    pub log_group_prefixes: Vec<String>,
    pub xray_enabled: bool,
    /// The one scope of a config without `[[accounts]]`: its checkpoints, stream states and
    /// keys keep the form they had before accounts existed, so upgrading re-reads nothing
    /// and stores nothing twice.
    pub unscoped: bool,
}

impl Scope {
    pub fn is_default(&self) -> bool {
        self.unscoped
    }

    /// `name` made unique to this scope (a log group, a function, a trace id, a key): as it
    /// is for the default scope, else prefixed with account and region.
    pub fn key(&self, name: &str) -> String {
        if self.is_default() { name.to_string() } else { format!("{}|{}|{}", self.account, self.region, name) }
    }

    /// For logs and readiness: `account/region`.
    pub fn label(&self) -> String {
        format!("{}/{}", self.account, if self.region.is_empty() { "-" } else { &self.region })
    }
}

/// Every scope of `config`, in config order (accounts, then their regions).
pub fn scopes(config: &Config) -> Vec<Scope> {
    if config.accounts.is_empty() {
        return vec![Scope {
            account: DEFAULT_ACCOUNT.to_string(),
            region: config.aws.region.clone(),
            role_arn: String::new(),
            external_id: Secret::default(),
            session_name: String::new(),
            env: String::new(),
            logs_enabled: config.logs.enabled,
            log_groups: config.logs.log_groups.clone(),
            log_group_prefixes: config.logs.log_group_prefixes.clone(),
            xray_enabled: config.xray.enabled,
            unscoped: true,
        }];
    }
    let mut out = Vec::new();
    for a in &config.accounts {
        let regions = if a.regions.is_empty() { vec![config.aws.region.clone()] } else { a.regions.clone() };
        for region in regions {
            out.push(Scope {
                account: a.name.clone(),
                region,
                role_arn: a.role_arn.clone(),
                external_id: a.external_id.clone(),
                session_name: if a.session_name.is_empty() { "latency-sentinel".to_string() } else { a.session_name.clone() },
                env: a.env.clone(),
                logs_enabled: a.logs.enabled.unwrap_or(config.logs.enabled),
                log_groups: a.logs.log_groups.clone().unwrap_or_else(|| config.logs.log_groups.clone()),
                log_group_prefixes: a.logs.log_group_prefixes.clone().unwrap_or_else(|| config.logs.log_group_prefixes.clone()),
                xray_enabled: a.xray.enabled.unwrap_or(config.xray.enabled),
                unscoped: false,
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{AccountConfig, AccountLogsConfig};

    #[test]
    fn no_accounts_is_one_default_scope_whose_keys_are_unchanged() {
        let mut c = Config::default();
        c.aws.region = "eu-west-1".into();
        let s = scopes(&c);
        assert_eq!(s.len(), 1);
        assert!(s[0].is_default());
        assert_eq!((s[0].account.as_str(), s[0].region.as_str()), ("default", "eu-west-1"));
        assert_eq!(s[0].key("/aws/lambda/f"), "/aws/lambda/f");
    }

    #[test]
    fn accounts_expand_to_their_regions_with_their_overrides() {
        let mut c = Config::default();
        c.aws.region = "us-east-1".into();
        c.logs.log_group_prefixes = vec!["/aws/lambda/".into()];
        c.accounts = vec![
            AccountConfig {
                name: "prod".into(),
                role_arn: "arn:aws:iam::111111111111:role/reader".into(),
                regions: vec!["us-east-1".into(), "eu-west-1".into()],
                env: "PROD".into(),
                logs: AccountLogsConfig { log_group_prefixes: Some(vec!["/aws/lambda/prod-".into()]), ..Default::default() },
                ..Default::default()
            },
            AccountConfig { name: "dev".into(), env: "Dev".into(), ..Default::default() },
        ];
        let s = scopes(&c);
        let names: Vec<String> = s.iter().map(Scope::label).collect();
        assert_eq!(names, ["prod/us-east-1", "prod/eu-west-1", "dev/us-east-1"]);
        assert_eq!(s[0].log_group_prefixes, ["/aws/lambda/prod-"]);
        assert_eq!(s[2].log_group_prefixes, ["/aws/lambda/"], "as [logs] when not overridden");
        assert_eq!(s[0].session_name, "latency-sentinel");
        assert!(s.iter().all(|s| !s.is_default()), "named accounts key everything by account and region");
        assert_eq!(s[1].key("/aws/lambda/f"), "prod|eu-west-1|/aws/lambda/f");
        assert_ne!(s[0].key("f"), s[2].key("f"), "the same function in two accounts is two functions");
    }
}
