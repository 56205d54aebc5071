//! Generation (pure): workflow executions with their invocations, cold starts, outcomes and
//! timed calls, from the settings and a seeded random generator.

use super::*;

/// Where the functions live and which versions the aliases point at.
#[derive(Debug, Clone, PartialEq)]
pub struct Deployment {
    pub region: String,
    pub account: String,
    /// `(function, env)` → published version number.
    pub versions: BTreeMap<(String, String), String>,
}

impl Deployment {
    fn version(&self, function: &str, env: &str) -> String {
        self.versions.get(&(function.to_string(), env.to_string())).cloned().unwrap_or_else(|| "$LATEST".into())
    }
}

/// How an invocation ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    Ok,
    /// The last call raised; no TIMING for it.
    Error,
    /// The last call hung until the function timeout; no TIMING for it, no END line.
    Timeout,
}

/// One instrumented call; times in epoch µs.
#[derive(Debug, Clone, PartialEq)]
pub struct Call {
    pub op: &'static OpSpec,
    pub id: String,
    pub start_us: i64,
    pub end_us: i64,
    /// Its TIMING line is printed with `"value_sec": NaN`.
    pub malformed: bool,
}

impl Call {
    pub fn seconds(&self) -> f64 {
        (self.end_us - self.start_us) as f64 / 1e6
    }
}

/// One Lambda invocation through an alias; times in epoch µs.
#[derive(Debug, Clone, PartialEq)]
pub struct Invocation {
    pub function: &'static FunctionSpec,
    pub env: String,
    pub version: String,
    pub request_id: String,
    pub log_stream: String,
    /// A new execution environment: `INIT_START`, `Init Duration`, `Initialization`.
    pub cold: bool,
    pub outcome: Outcome,
    pub memory_used_mb: u32,
    pub state_id: String,
    pub invoke_id: String,
    pub service_id: String,
    pub function_id: String,
    pub state_start_us: i64,
    pub invoke_start_us: i64,
    pub service_start_us: i64,
    pub function_start_us: i64,
    /// Start of the handler (after initialization on a cold start).
    pub handler_start_us: i64,
    pub handler_end_us: i64,
    pub function_end_us: i64,
    pub service_end_us: i64,
    pub invoke_end_us: i64,
    pub state_end_us: i64,
    /// Calls that completed (a failed or hung last call is not here).
    pub calls: Vec<Call>,
    /// The call that raised or hung.
    pub failed_call: Option<&'static OpSpec>,
}

impl Invocation {
    pub fn init_us(&self) -> i64 {
        self.handler_start_us - self.function_start_us
    }
    pub fn duration_us(&self) -> i64 {
        self.handler_end_us - self.handler_start_us
    }
}

/// One AtlasEngineWorkflow execution: its trace and its invocations.
#[derive(Debug, Clone, PartialEq)]
pub struct Execution {
    pub env: String,
    pub trace_id: String,
    pub segment_id: String,
    pub name: String,
    pub start_us: i64,
    pub end_us: i64,
    pub invocations: Vec<Invocation>,
    pub failed: bool,
}

/// One execution environment (a log stream).
#[derive(Debug, Clone)]
struct Sandbox {
    stream: String,
    busy_until_us: i64,
    last_end_us: i64,
    /// Reclaimed after this long idle.
    idle_limit_us: i64,
}

/// One environment's traffic: its own random stream (so a Dev-only slowdown changes nothing
/// in PROD), next arrival, and warm sandboxes per function.
struct EnvState {
    name: String,
    rng: StdRng,
    next_arrival_us: i64,
    sandboxes: Vec<Vec<Sandbox>>,
}

/// Produces executions in start order; `until` can be called repeatedly (`--follow`) and
/// yields the same executions however the time is cut.
pub struct Generator {
    settings: Settings,
    deployment: Deployment,
    /// The start of the command: `--slow` offsets are relative to it.
    t0_us: i64,
    envs: Vec<EnvState>,
}

fn hex(rng: &mut StdRng, digits: usize) -> String {
    let mut s = String::with_capacity(digits);
    while s.len() < digits {
        let _ = write!(s, "{:016x}", rng.random::<u64>());
    }
    s.truncate(digits);
    s
}

fn uuid4(rng: &mut StdRng) -> String {
    let h = hex(rng, 32);
    let variant = ["8", "9", "a", "b"][rng.random_range(0..4)];
    format!("{}-{}-4{}-{}{}-{}", &h[0..8], &h[8..12], &h[13..16], variant, &h[17..20], &h[20..32])
}

/// Draws from a log-normal around `median_us`, in whole µs.
fn jitter_us(rng: &mut StdRng, median_us: f64, sigma: f64) -> i64 {
    (median_us * (sigma * std_normal(rng)).exp()).round().max(1.0) as i64
}

impl Generator {
    /// Traffic starts `settings.duration` before `t0_ms` (the command's start).
    pub fn new(settings: Settings, deployment: Deployment, t0_ms: i64) -> Generator {
        let t0_us = t0_ms * 1000;
        let start = t0_us - settings.duration.as_micros() as i64;
        let envs = settings
            .envs
            .iter()
            .map(|e| {
                let mut rng = StdRng::seed_from_u64(settings.seed ^ fnv(e));
                let first = start + exp_gap_us(&mut rng, settings.rate_per_s);
                EnvState { name: e.clone(), rng, next_arrival_us: first, sandboxes: vec![Vec::new(); ATLAS.len()] }
            })
            .collect();
        Generator { settings, deployment, t0_us, envs }
    }

    /// Every execution starting before `t_ms` not yet returned, in start order.
    pub fn until(&mut self, t_ms: i64) -> Vec<Execution> {
        let t_us = t_ms * 1000;
        let mut out = Vec::new();
        while let Some(i) = (0..self.envs.len()).min_by_key(|&i| (self.envs[i].next_arrival_us, i)) {
            let start = self.envs[i].next_arrival_us;
            if start >= t_us {
                break;
            }
            out.push(self.execution(i, start));
            let rate = self.settings.rate_per_s;
            let env = &mut self.envs[i];
            env.next_arrival_us = start + exp_gap_us(&mut env.rng, rate);
        }
        out
    }

    fn execution(&mut self, env_idx: usize, start_us: i64) -> Execution {
        let settings = &self.settings;
        let t0_us = self.t0_us;
        let deployment = &self.deployment;
        let env = &mut self.envs[env_idx];
        let rng = &mut env.rng;
        let trace_id = format!("1-{:08x}-{}", start_us / 1_000_000, hex(rng, 24));
        let segment_id = hex(rng, 16);
        let name = uuid4(rng);
        let mut cursor = start_us + jitter_us(rng, 15_000.0, 0.3);
        let mut invocations = Vec::new();
        let mut failed = false;
        for (fi, f) in ATLAS.iter().enumerate() {
            let state_start = cursor;
            let invoke_start = state_start + jitter_us(rng, 1_500.0, 0.3);
            let service_start = invoke_start + jitter_us(rng, 6_000.0, 0.4);
            let function_start = service_start + jitter_us(rng, 400.0, 0.3);
            // A warm sandbox if one is free (the most recently used first), else a cold one.
            let pool = &mut env.sandboxes[fi];
            pool.retain(|s| s.busy_until_us > function_start || function_start - s.last_end_us < s.idle_limit_us);
            let warm = pool
                .iter()
                .enumerate()
                .filter(|(_, s)| s.busy_until_us <= function_start)
                .max_by_key(|(_, s)| s.last_end_us)
                .map(|(i, _)| i);
            let (sandbox, cold) = match warm {
                Some(i) => (i, false),
                None => {
                    let version = deployment.version(f.name, &env.name);
                    let stream = format!("{}/[{}]{}", ymd(function_start / 1000, '/'), version, hex(rng, 32));
                    let idle_limit_us = rng.random_range(300_000_000..900_000_000);
                    pool.push(Sandbox { stream, busy_until_us: i64::MAX, last_end_us: function_start, idle_limit_us });
                    (pool.len() - 1, true)
                }
            };
            let handler_start = function_start + if cold { jitter_us(rng, 420_000.0, 0.25) } else { 0 };
            let outcome = {
                let u: f64 = rng.random();
                if u < settings.timeout_rate {
                    Outcome::Timeout
                } else if u < settings.timeout_rate + settings.error_rate {
                    Outcome::Error
                } else {
                    Outcome::Ok
                }
            };
            let mut t = handler_start + jitter_us(rng, 2_000.0, 0.3);
            let mut calls = Vec::new();
            let mut failed_call = None;
            for (oi, op) in f.ops.iter().enumerate() {
                let last = oi + 1 == f.ops.len();
                let offset = t - t0_us;
                let secs = settings.dist(f, op, &env.name, offset).sample(rng);
                let start = t;
                let end = start + (secs * 1e6).round() as i64;
                let malformed = rng.random::<f64>() < settings.malformed_rate;
                let id = hex(rng, 16);
                if last && outcome == Outcome::Timeout {
                    failed_call = Some(op);
                    t = handler_start + f.timeout_s as i64 * 1_000_000;
                    break;
                }
                if last && outcome == Outcome::Error {
                    failed_call = Some(op);
                    t = end + jitter_us(rng, 3_000.0, 0.3);
                    break;
                }
                calls.push(Call { op, id, start_us: start, end_us: end, malformed });
                t = end + jitter_us(rng, 1_500.0, 0.4);
            }
            let handler_end = if outcome == Outcome::Timeout { t } else { t + 1_000 };
            let function_end = handler_end + jitter_us(rng, 400.0, 0.3);
            let service_end = function_end + jitter_us(rng, 800.0, 0.3);
            let invoke_end = service_end + jitter_us(rng, 5_000.0, 0.4);
            let state_end = invoke_end + jitter_us(rng, 1_000.0, 0.3);
            let sb = &mut pool[sandbox];
            sb.busy_until_us = function_end + 1_000;
            sb.last_end_us = function_end;
            let memory_used_mb = ((f.memory_used_mb as f64) * (1.0 + 0.05 * std_normal(rng)) + if cold { 0.0 } else { 4.0 })
                .round()
                .clamp(40.0, f.memory_mb as f64) as u32;
            invocations.push(Invocation {
                function: f,
                env: env.name.clone(),
                version: deployment.version(f.name, &env.name),
                request_id: uuid4(rng),
                log_stream: sb.stream.clone(),
                cold,
                outcome,
                memory_used_mb,
                state_id: hex(rng, 16),
                invoke_id: hex(rng, 16),
                service_id: hex(rng, 16),
                function_id: hex(rng, 16),
                state_start_us: state_start,
                invoke_start_us: invoke_start,
                service_start_us: service_start,
                function_start_us: function_start,
                handler_start_us: handler_start,
                handler_end_us: handler_end,
                function_end_us: function_end,
                service_end_us: service_end,
                invoke_end_us: invoke_end,
                state_end_us: state_end,
                calls,
                failed_call,
            });
            cursor = state_end + jitter_us(rng, 25_000.0, 0.4);
            if outcome != Outcome::Ok {
                failed = true;
                break;
            }
        }
        let end_us = cursor + jitter_us(rng, 5_000.0, 0.3);
        Execution { env: env.name.clone(), trace_id, segment_id, name, start_us, end_us, invocations, failed }
    }
}

/// Poisson arrivals: an exponential gap with mean 1/rate, in µs (at least 1).
fn exp_gap_us(rng: &mut StdRng, rate_per_s: f64) -> i64 {
    let u: f64 = 1.0 - rng.random::<f64>();
    ((-u.ln() / rate_per_s) * 1e6).round().max(1.0) as i64
}
