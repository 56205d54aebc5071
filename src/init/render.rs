//! The config `init` writes (pure): commented TOML a person reads before running the
//! daemon, with every choice explained by what was seen.

use super::propose::{BUDGET_MULTIPLE, MIN_SAMPLES, Observed, config_duration};

/// What `init` found in the account.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Findings {
    /// The region looked at.
    pub region: String,
    /// The caller's identity (ARN), if STS told it.
    pub identity: Option<String>,
    pub functions: Vec<Function>,
    /// Operations seen in the sample, most frequent first.
    pub operations: Vec<Observed>,
    /// A name pattern when function names carry the env.
    pub env_pattern: Option<String>,
    /// Log events read and traces fetched for the sample.
    pub events_read: usize,
    pub traces_read: usize,
    /// Whether any trace was listed in the last hour.
    pub traces_seen: bool,
    /// Limits that cut the sample short (said in the file).
    pub notes: Vec<String>,
}

/// One Lambda function as found.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Function {
    pub name: String,
    /// (alias, version) pairs.
    pub aliases: Vec<(String, String)>,
    /// Its log group, when it exists.
    pub log_group: Option<String>,
    /// X-Ray traces named it in the last hour.
    pub traced: bool,
}

/// Log groups listed one by one up to this many; beyond, the `/aws/lambda/` prefix.
pub const MAX_LISTED_GROUPS: usize = 25;

fn toml_string(s: &str) -> String {
    toml::Value::String(s.to_string()).to_string()
}

/// The config text.
pub fn render(f: &Findings, today: &str) -> String {
    let mut out = String::new();
    let line = |out: &mut String, s: &str| {
        out.push_str(s);
        out.push('\n');
    };
    line(&mut out, &format!("# Written by `latency-sentinel init` on {today} from what region {} holds", f.region));
    if let Some(who) = &f.identity {
        line(&mut out, &format!("# (seen as {who})."));
    }
    line(&mut out, "# Review it, then: latency-sentinel doctor --config <this file>; latency-sentinel run --config <this file>.");
    line(&mut out, "# Every key not written here has its default (config/example.toml lists them all).");
    for n in &f.notes {
        line(&mut out, &format!("# Note: {n}"));
    }
    line(&mut out, "");
    line(&mut out, "[aws]");
    line(&mut out, &format!("region = {}", toml_string(&f.region)));
    line(&mut out, "");
    line(&mut out, "[storage]");
    line(&mut out, "# Relative to the daemon's working directory; /var/lib/latency-sentinel/ under systemd.");
    line(&mut out, "path = \"latency-sentinel.db\"");
    line(&mut out, "");

    line(&mut out, "[logs]");
    let groups: Vec<&Function> = f.functions.iter().filter(|x| x.log_group.is_some()).collect();
    let without: Vec<&str> = f.functions.iter().filter(|x| x.log_group.is_none()).map(|x| x.name.as_str()).collect();
    if groups.is_empty() || groups.len() > MAX_LISTED_GROUPS {
        line(&mut out, &format!("# {} function(s) with a log group: every group under the prefix is watched, new ones too.", groups.len()));
        line(&mut out, "log_group_prefixes = [\"/aws/lambda/\"]");
    } else {
        line(&mut out, "# One group per function found (function: aliases; whether X-Ray traced it in the last hour).");
        line(&mut out, "# To watch every function, new ones too: log_group_prefixes = [\"/aws/lambda/\"] instead.");
        line(&mut out, "log_groups = [");
        for x in &groups {
            let aliases = if x.aliases.is_empty() {
                "no aliases".to_string()
            } else {
                x.aliases.iter().map(|(a, v)| format!("{a}→{v}")).collect::<Vec<_>>().join(", ")
            };
            let traced = if x.traced { "traced" } else { "no traces" };
            line(&mut out, &format!("    {},  # {}: {aliases}; {traced}", toml_string(x.log_group.as_deref().unwrap_or_default()), x.name));
        }
        line(&mut out, "]");
    }
    if !without.is_empty() {
        line(&mut out, &format!("# No log group (never invoked?): {}", without.join(", ")));
    }
    line(&mut out, "");

    line(&mut out, "[xray]");
    if f.traces_seen {
        line(&mut out, "# Traces were listed in the last hour.");
        line(&mut out, "enabled = true");
    } else {
        line(&mut out, "# No trace in the last hour: turn X-Ray on for your functions (active tracing), or leave this off.");
        line(&mut out, "enabled = false");
    }
    line(&mut out, "");

    line(&mut out, "[environments]");
    let aliased = f.functions.iter().filter(|x| !x.aliases.is_empty()).count();
    if aliased > 0 {
        line(&mut out, &format!("# {aliased} function(s) have aliases: an event's env is the alias that pointed at its version."));
        line(&mut out, "lambda_aliases = true");
    } else {
        line(&mut out, "# No function has an alias.");
        line(&mut out, "lambda_aliases = false");
    }
    if let Some(p) = &f.env_pattern {
        line(&mut out, "# Function names carry their env (seen in the names found):");
        line(&mut out, &format!("function_name_pattern = {}", toml_string(p)));
    }
    line(&mut out, "");

    line(&mut out, &format!(
        "# Budgets: {} log events and {} traces of the last 24 h were read; each budget is the observed p95 × {BUDGET_MULTIPLE},",
        f.events_read, f.traces_read
    ));
    line(&mut out, "# rounded up to 1, 1.5, 2, 2.5, 3, 4, 5, 6 or 7.5 × a power of ten ms. Tighten or loosen them as you see fit.");
    let mut budgets = 0;
    for o in &f.operations {
        let Some(b) = o.budget else { continue };
        budgets += 1;
        line(&mut out, "");
        line(&mut out, "[[budgets]]");
        line(&mut out, &format!("name = {}", toml_string(&budget_name(&o.operation))));
        line(&mut out, &format!("operation = {}", toml_string(&o.operation)));
        line(&mut out, &format!("p95 = {}  # observed p95 {} over {} calls", toml_string(&config_duration(b)), seconds(o.p95_s), thousands(o.count)));
    }
    let few: Vec<String> = f.operations.iter().filter(|o| o.budget.is_none()).map(|o| format!("{} ({})", o.operation, o.count)).collect();
    if budgets == 0 {
        line(&mut out, "# No operation was seen often enough for a budget; add them once traffic flows.");
    }
    if !few.is_empty() {
        line(&mut out, "");
        line(&mut out, &format!("# Seen fewer than {MIN_SAMPLES} times, no budget proposed: {}", few.join(", ")));
    }
    out
}

/// `Bedrock.InvokeModel` → `bedrock-invokemodel-p95`.
fn budget_name(operation: &str) -> String {
    let mut name: String = operation.chars().map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_lowercase() } else { '-' }).collect();
    name.push_str("-p95");
    name
}

fn seconds(s: f64) -> String {
    if s >= 1.0 { format!("{s:.1} s") } else { format!("{:.0} ms", s * 1000.0) }
}

fn thousands(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::init::propose::observe;

    fn findings() -> Findings {
        let mut samples: Vec<(String, f64)> = (0..1204).map(|i| ("Bedrock.InvokeModel".to_string(), 1.0 + (i % 100) as f64 * 0.023)).collect();
        samples.extend((0..3).map(|_| ("dynamodb.GetItem".to_string(), 0.02)));
        Findings {
            region: "eu-west-1".into(),
            identity: Some("arn:aws:iam::123456789012:user/alice".into()),
            functions: vec![
                Function {
                    name: "GenerateDynamicScenarioHandler".into(),
                    aliases: vec![("Dev".into(), "13".into()), ("PROD".into(), "12".into())],
                    log_group: Some("/aws/lambda/GenerateDynamicScenarioHandler".into()),
                    traced: true,
                },
                Function { name: "Unused".into(), ..Function::default() },
            ],
            operations: observe(samples),
            env_pattern: None,
            events_read: 5000,
            traces_read: 40,
            traces_seen: true,
            notes: vec![],
        }
    }

    #[test]
    fn the_written_config_is_valid_and_says_why() {
        let text = render(&findings(), "2026-11-27");
        let c = crate::config::load_str(&text, &|_| None).unwrap_or_else(|e| panic!("{e:?}\n{text}"));
        assert_eq!(c.aws.region, "eu-west-1");
        assert_eq!(c.logs.log_groups, ["/aws/lambda/GenerateDynamicScenarioHandler"]);
        assert!(c.environments.lambda_aliases && c.xray.enabled);
        assert_eq!(c.budgets.len(), 1);
        assert_eq!(c.budgets[0].operation, "Bedrock.InvokeModel");
        assert_eq!(c.budgets[0].p95, Some(std::time::Duration::from_secs(5)));
        assert!(text.contains("p95 = \"5s\"  # observed p95 3.2 s over 1,204 calls"), "{text}");
        assert!(text.contains("Dev→13, PROD→12; traced"), "{text}");
        assert!(text.contains("No log group (never invoked?): Unused"), "{text}");
        assert!(text.contains("dynamodb.GetItem (3)"), "{text}");
    }

    #[test]
    fn many_groups_become_the_prefix_and_a_name_pattern_is_written() {
        let mut f = findings();
        f.functions = (0..30).map(|i| Function { name: format!("f{i}-dev"), log_group: Some(format!("/aws/lambda/f{i}-dev")), ..Function::default() }).collect();
        f.env_pattern = Some("(?i)[-_](?P<env>dev|prod)$".into());
        f.traces_seen = false;
        let text = render(&f, "2026-11-27");
        let c = crate::config::load_str(&text, &|_| None).unwrap_or_else(|e| panic!("{e:?}\n{text}"));
        assert_eq!(c.logs.log_group_prefixes, ["/aws/lambda/"]);
        assert!(c.logs.log_groups.is_empty() && !c.xray.enabled && !c.environments.lambda_aliases);
        assert_eq!(c.environments.function_name_pattern, "(?i)[-_](?P<env>dev|prod)$");
    }
}
