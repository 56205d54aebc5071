//! What a run is asked to do, parsed and checked: latency distributions, the rules that set
//! an operation's latency or slow it down for a while, rates, the TOML profile, and the
//! settings they make together.

use super::*;

/// A latency distribution, in seconds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Dist {
    /// Always this value.
    Fixed(f64),
    /// exp(N(ln median, sigma²)): the usual shape of a remote call's latency.
    LogNormal { median: f64, sigma: f64 },
    /// N(mean, sd²), cut at 1 ms.
    Normal { mean: f64, sd: f64 },
    /// Uniform between `lo` and `hi`.
    Uniform { lo: f64, hi: f64 },
}

/// Shortest and longest latency drawn (1 ms .. 15 min, Lambda's own limit).
const MIN_LATENCY_S: f64 = 0.001;
const MAX_LATENCY_S: f64 = 900.0;

impl Dist {
    /// One draw, in seconds, rounded to whole milliseconds (the seed prints 3 decimals, and
    /// the trace then shows exactly what the log line says).
    pub fn sample(&self, rng: &mut StdRng) -> f64 {
        let v = match *self {
            Dist::Fixed(v) => v,
            Dist::LogNormal { median, sigma } => median * (sigma * std_normal(rng)).exp(),
            Dist::Normal { mean, sd } => mean + sd * std_normal(rng),
            Dist::Uniform { lo, hi } => lo + (hi - lo) * rng.random::<f64>(),
        };
        (v.clamp(MIN_LATENCY_S, MAX_LATENCY_S) * 1000.0).round() / 1000.0
    }

    /// The median of the distribution.
    pub fn median(&self) -> f64 {
        match *self {
            Dist::Fixed(v) => v,
            Dist::LogNormal { median, .. } => median,
            Dist::Normal { mean, .. } => mean,
            Dist::Uniform { lo, hi } => (lo + hi) / 2.0,
        }
    }

    /// The same shape moved so its median is `m` (spreads scale with it).
    pub fn with_median(&self, m: f64) -> Dist {
        let k = if self.median() > 0.0 { m / self.median() } else { 1.0 };
        match *self {
            Dist::Fixed(_) => Dist::Fixed(m),
            Dist::LogNormal { sigma, .. } => Dist::LogNormal { median: m, sigma },
            Dist::Normal { sd, .. } => Dist::Normal { mean: m, sd: sd * k },
            Dist::Uniform { lo, hi } => Dist::Uniform { lo: lo * k, hi: hi * k },
        }
    }

    /// Parses `lognormal(2.5s, 0.2)`, `normal(2.5s, 300ms)`, `uniform(1s, 2s)` or `fixed(9s)`.
    pub fn parse(s: &str) -> Result<Dist, String> {
        let s = s.trim();
        let (name, args) = s
            .strip_suffix(')')
            .and_then(|r| r.split_once('('))
            .ok_or_else(|| format!("expected a distribution like lognormal(2.5s, 0.2), got {s:?}"))?;
        let args: Vec<&str> = args.split(',').map(str::trim).collect();
        let want = |n: usize| {
            if args.len() == n { Ok(()) } else { Err(format!("{name}(...) takes {n} argument(s), got {}", args.len())) }
        };
        let d = match name.trim().to_ascii_lowercase().as_str() {
            "fixed" => {
                want(1)?;
                Dist::Fixed(parse_secs(args[0])?)
            }
            "lognormal" => {
                want(2)?;
                let sigma: f64 = args[1].parse().map_err(|_| format!("lognormal sigma: expected a number like 0.2, got {:?}", args[1]))?;
                if !(0.0..=3.0).contains(&sigma) {
                    return Err(format!("lognormal sigma must be between 0 and 3, got {sigma}"));
                }
                Dist::LogNormal { median: parse_secs(args[0])?, sigma }
            }
            "normal" => {
                want(2)?;
                Dist::Normal { mean: parse_secs(args[0])?, sd: parse_secs(args[1])? }
            }
            "uniform" => {
                want(2)?;
                let (lo, hi) = (parse_secs(args[0])?, parse_secs(args[1])?);
                if lo > hi {
                    return Err(format!("uniform({}, {}): the low end is above the high end", args[0], args[1]));
                }
                Dist::Uniform { lo, hi }
            }
            other => return Err(format!("unknown distribution {other:?} (fixed, lognormal, normal, uniform)")),
        };
        Ok(d)
    }
}

impl std::fmt::Display for Dist {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match *self {
            Dist::Fixed(v) => write!(f, "fixed({v}s)"),
            Dist::LogNormal { median, sigma } => write!(f, "lognormal({median}s, {sigma})"),
            Dist::Normal { mean, sd } => write!(f, "normal({mean}s, {sd}s)"),
            Dist::Uniform { lo, hi } => write!(f, "uniform({lo}s, {hi}s)"),
        }
    }
}

/// A standard normal draw (Box–Muller; rand's distributions crate is not a dependency).
pub(super) fn std_normal(rng: &mut StdRng) -> f64 {
    let u1: f64 = 1.0 - rng.random::<f64>(); // (0, 1]
    let u2: f64 = rng.random::<f64>();
    (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
}

/// Parses `2.5s`, `300ms`, `1.5m`, `2h` (a bare number is seconds) into seconds.
pub fn parse_secs(s: &str) -> Result<f64, String> {
    let s = s.trim();
    let split = s.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: f64 = num.parse().map_err(|_| format!("expected a duration like 2.5s or 300ms, got {s:?}"))?;
    let k = match unit.trim() {
        "" | "s" | "sec" => 1.0,
        "ms" => 0.001,
        "m" | "min" => 60.0,
        "h" => 3600.0,
        "d" => 86_400.0,
        other => return Err(format!("unknown unit {other:?} in {s:?} (ms, s, m, h, d)")),
    };
    let v = n * k;
    if !v.is_finite() {
        return Err(format!("{s:?} is not a finite duration"));
    }
    Ok(v)
}

/// Parses a rate: `2/s`, `30/m`, `100/h` or a bare number per second.
pub fn parse_rate(s: &str) -> Result<f64, String> {
    let (n, per) = s.trim().split_once('/').unwrap_or((s.trim(), "s"));
    let n: f64 = n.trim().parse().map_err(|_| format!("expected a rate like 2/s, got {s:?}"))?;
    let per = match per.trim() {
        "s" | "sec" => 1.0,
        "m" | "min" => 60.0,
        "h" => 3600.0,
        other => return Err(format!("unknown rate unit {other:?} in {s:?} (s, m, h)")),
    };
    let r = n / per;
    if !(r.is_finite() && r > 0.0 && r <= 1000.0) {
        return Err(format!("rate {s:?} must be above 0 and at most 1000/s"));
    }
    Ok(r)
}

/// Parses a time relative to the start of the command: `-3m` (before it) or `+2m` (after).
pub fn parse_relative(s: &str) -> Result<i64, String> {
    let s = s.trim();
    let (sign, rest) = match s.as_bytes().first() {
        Some(b'-') => (-1.0, &s[1..]),
        Some(b'+') => (1.0, &s[1..]),
        _ => return Err(format!("expected a time relative to now like -3m or +2m, got {s:?}")),
    };
    Ok((sign * parse_secs(rest)? * 1e6).round() as i64)
}

/// Which calls a rule applies to: `[Function/]Operation[@Env]`. The function may be its
/// abbreviation (`GDSH`); the operation its subsegment name (`Bedrock.InvokeModel`) or its
/// TIMING metric (`BedrockCallDuration`).
#[derive(Debug, Clone, PartialEq)]
pub struct Selector {
    pub function: Option<&'static str>,
    pub operation: String,
    pub env: Option<String>,
}

impl Selector {
    pub fn parse(s: &str) -> Result<Selector, String> {
        let (rest, env) = match s.rsplit_once('@') {
            Some((r, e)) if !e.trim().is_empty() => (r, Some(e.trim().to_string())),
            Some(_) => return Err(format!("{s:?}: empty environment after '@'")),
            None => (s, None),
        };
        let (function, operation) = match rest.split_once('/') {
            Some((f, o)) => {
                let i = find_function(f.trim()).ok_or_else(|| {
                    format!(
                        "{s:?}: unknown function {:?} (one of {})",
                        f.trim(),
                        ATLAS.iter().map(|f| format!("{} ({})", f.name, f.abbr)).collect::<Vec<_>>().join(", ")
                    )
                })?;
                (Some(ATLAS[i].name), o.trim())
            }
            None => (None, rest.trim()),
        };
        let sel = Selector { function, operation: operation.to_string(), env };
        if !ATLAS.iter().any(|f| f.ops.iter().any(|o| sel.matches_op(f, o))) {
            let known: Vec<String> = ATLAS
                .iter()
                .filter(|f| function.is_none_or(|n| n == f.name))
                .flat_map(|f| f.ops.iter().map(move |o| format!("{}/{} ({})", f.name, o.name, o.metric)))
                .collect();
            return Err(format!("{s:?}: no such operation; known: {}", known.join(", ")));
        }
        Ok(sel)
    }

    /// 0 (operation only) to 2 (function and env given).
    pub(super) fn specificity(&self) -> u8 {
        self.function.is_some() as u8 + self.env.is_some() as u8
    }

    fn matches_op(&self, f: &FunctionSpec, o: &OpSpec) -> bool {
        self.function.is_none_or(|n| n == f.name) && (self.operation == o.name || self.operation == o.metric)
    }

    fn matches(&self, f: &FunctionSpec, o: &OpSpec, env: &str) -> bool {
        self.matches_op(f, o) && self.env.as_deref().is_none_or(|e| e == env)
    }
}

/// What a rule sets: a whole distribution, or only the median (a bare `9s`: the default
/// shape moved to that median).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum LatencySpec {
    Median(f64),
    Dist(Dist),
}

impl LatencySpec {
    pub fn parse(s: &str) -> Result<LatencySpec, String> {
        if s.contains('(') { Dist::parse(s).map(LatencySpec::Dist) } else { parse_secs(s).map(LatencySpec::Median) }
    }

    fn apply(&self, base: Dist) -> Dist {
        match *self {
            LatencySpec::Median(m) => base.with_median(m),
            LatencySpec::Dist(d) => d,
        }
    }
}

/// `--latency 'SELECTOR=SPEC'`: the normal latency of the calls it selects.
#[derive(Debug, Clone, PartialEq)]
pub struct LatencyRule {
    pub selector: Selector,
    pub spec: LatencySpec,
}

impl LatencyRule {
    pub fn parse(s: &str) -> Result<LatencyRule, String> {
        let (sel, spec) = s.split_once('=').ok_or_else(|| format!("expected SELECTOR=LATENCY, got {s:?}"))?;
        Ok(LatencyRule { selector: Selector::parse(sel)?, spec: LatencySpec::parse(spec).map_err(|e| format!("{s:?}: {e}"))? })
    }
}

/// `--slow 'SELECTOR=SPEC[,from=-3m][,until=+5m]'`: a slowdown between two moments
/// (relative to the command's start; open-ended when not given).
#[derive(Debug, Clone, PartialEq)]
pub struct SlowRule {
    pub selector: Selector,
    pub spec: LatencySpec,
    /// Offset from the start of the command, µs.
    pub from: Option<i64>,
    pub until: Option<i64>,
}

impl SlowRule {
    pub fn parse(s: &str) -> Result<SlowRule, String> {
        let (sel, rest) = s.split_once('=').ok_or_else(|| format!("expected SELECTOR=LATENCY[,from=-3m], got {s:?}"))?;
        // The latency may hold commas itself (`lognormal(9s, 0.1)`): split after its ')'.
        let (spec, opts) = match rest.find(')') {
            Some(p) => (&rest[..=p], rest[p + 1..].trim_start_matches(',')),
            None => rest.split_once(',').unwrap_or((rest, "")),
        };
        let mut rule = SlowRule {
            selector: Selector::parse(sel)?,
            spec: LatencySpec::parse(spec).map_err(|e| format!("{s:?}: {e}"))?,
            from: None,
            until: None,
        };
        for opt in opts.split(',').map(str::trim).filter(|o| !o.is_empty()) {
            match opt.split_once('=') {
                Some(("from", v)) => rule.from = Some(parse_relative(v).map_err(|e| format!("{s:?}: from: {e}"))?),
                Some(("until", v)) => rule.until = Some(parse_relative(v).map_err(|e| format!("{s:?}: until: {e}"))?),
                _ => return Err(format!("{s:?}: unknown option {opt:?} (from=-3m, until=+2m)")),
            }
        }
        if let (Some(a), Some(b)) = (rule.from, rule.until)
            && a >= b
        {
            return Err(format!("{s:?}: from must come before until"));
        }
        Ok(rule)
    }

    fn active(&self, offset_us: i64) -> bool {
        self.from.is_none_or(|f| offset_us >= f) && self.until.is_none_or(|u| offset_us < u)
    }
}

/// A TOML profile (`--profile FILE`); command-line flags win over it.
///
/// ```toml
/// rate = "2/s"                 # workflow executions per second, per environment
/// envs = ["PROD", "Dev"]
/// error_rate = 0.002           # share of invocations that raise
/// timeout_rate = 0.001         # share of invocations that hit the function timeout
/// malformed_rate = 0.001       # share of TIMING lines printed with "value_sec": NaN
/// slow = ["GenerateDynamicScenarioHandler/Bedrock.InvokeModel@Dev=9s,from=-3m"]
///
/// [latency]                    # SELECTOR = LATENCY; the more specific selector wins
/// "Bedrock.InvokeModel" = "lognormal(2.5s, 0.2)"
/// "LFH/Bedrock.InvokeModel" = "lognormal(600ms, 0.25)"
/// "Connect.StartOutboundCall@Dev" = "1.2s"
/// ```
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Profile {
    pub rate: Option<String>,
    pub envs: Option<Vec<String>>,
    pub error_rate: Option<f64>,
    pub timeout_rate: Option<f64>,
    pub malformed_rate: Option<f64>,
    pub slow: Vec<String>,
    /// `SELECTOR = LATENCY`; the more specific selectors (with a function, with an env) win.
    pub latency: toml::Table,
}

/// Everything that decides what is generated (no endpoints, no credentials).
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    /// Simulated history before the start of the command.
    pub duration: Duration,
    /// Executions per second, per environment.
    pub rate_per_s: f64,
    pub envs: Vec<String>,
    pub latency: Vec<LatencyRule>,
    pub slow: Vec<SlowRule>,
    pub seed: u64,
    pub error_rate: f64,
    pub timeout_rate: f64,
    pub malformed_rate: f64,
    /// Accounts written into through a role (`--account-role`), each with the environments
    /// whose traffic it gets; empty: the caller's own account, every environment.
    pub accounts: Vec<AccountTarget>,
}

/// One account `simulate` writes into: the role it assumes there and the environments whose
/// executions go there (Dev in one account and PROD in another, say).
#[derive(Debug, Clone, PartialEq)]
pub struct AccountTarget {
    pub role_arn: String,
    pub envs: Vec<String>,
}

impl AccountTarget {
    /// `ARN` (every environment) or `ARN@ENV[+ENV...]`; the environments must be among
    /// `envs`.
    pub fn parse(s: &str, envs: &[String]) -> Result<AccountTarget, String> {
        let (arn, only) = match s.split_once('@') {
            Some((a, e)) => (a.trim(), Some(e)),
            None => (s.trim(), None),
        };
        let parts: Vec<&str> = arn.splitn(6, ':').collect();
        let valid = parts.len() == 6
            && parts[0] == "arn"
            && parts[2] == "iam"
            && parts[4].len() == 12
            && parts[4].bytes().all(|b| b.is_ascii_digit())
            && parts[5].strip_prefix("role/").is_some_and(|r| !r.is_empty());
        if !valid {
            return Err(format!("{arn:?} is not an IAM role ARN (arn:aws:iam::123456789012:role/NAME)"));
        }
        let envs = match only {
            None => envs.to_vec(),
            Some(list) => {
                let picked: Vec<String> = list.split('+').map(|e| e.trim().to_string()).collect();
                if let Some(bad) = picked.iter().find(|e| !envs.contains(e)) {
                    return Err(format!("{arn}@{list}: {bad:?} is not among the environments ({})", envs.join(",")));
                }
                picked
            }
        };
        Ok(AccountTarget { role_arn: arn.to_string(), envs })
    }

    /// The account id in the ARN.
    pub fn account_id(&self) -> &str {
        self.role_arn.split(':').nth(4).unwrap_or_default()
    }
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            duration: Duration::from_secs(600),
            rate_per_s: 2.0,
            envs: vec!["PROD".into(), "Dev".into()],
            latency: Vec::new(),
            slow: Vec::new(),
            seed: 1,
            error_rate: 0.002,
            timeout_rate: 0.001,
            malformed_rate: 0.001,
            accounts: Vec::new(),
        }
    }
}

impl Settings {
    /// The latency distribution of `op` of `f` in `env` at `offset_us` from the start.
    pub fn dist(&self, f: &FunctionSpec, op: &OpSpec, env: &str, offset_us: i64) -> Dist {
        let mut d = op.default;
        for r in self.latency.iter().filter(|r| r.selector.matches(f, op, env)) {
            d = r.spec.apply(d);
        }
        if let Some(r) = self.slow.iter().rev().find(|r| r.selector.matches(f, op, env) && r.active(offset_us)) {
            d = r.spec.apply(d);
        }
        d
    }
}

pub(super) fn probability(name: &str, v: f64) -> Result<f64, String> {
    if (0.0..=1.0).contains(&v) { Ok(v) } else { Err(format!("{name} must be between 0 and 1, got {v}")) }
}
