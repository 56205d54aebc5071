//! Causes (pure): which operations measure the same thing (linked by `[[operations]] also`
//! or learned from the data: the same invocations, near-equal durations), which measure a
//! whole invocation (function-level: they slow down whenever any of their calls does), and
//! which measure a cold start. The evaluator groups alerts by these, the reports fold
//! compare rows by them, and the API shows the learned links so a person can confirm them.

use crate::config::OperationConfig;
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};

/// Operations that time a whole invocation (the REPORT line, the seed's END line, X-Ray's
/// function segment and its `Invocation` subsegment, the state machine's `Lambda` call).
pub const FUNCTION_LEVEL: [&str; 5] = ["Lambda.Duration", "total_function_duration", "Lambda.Function", "Invocation", "Lambda"];

/// Operations that exist only on cold starts (init and restore).
pub const COLD_START: [&str; 3] = ["Lambda.InitDuration", "Lambda.RestoreDuration", "Initialization"];

pub fn is_function_level(operation: &str) -> bool {
    FUNCTION_LEVEL.contains(&operation)
}

pub fn is_cold_start(operation: &str) -> bool {
    COLD_START.contains(&operation)
}

/// Invocations two operations must share before a link is learned.
pub const MIN_SHARED: u64 = 20;
/// Share of shared invocations whose durations must be near-equal.
pub const MIN_AGREEMENT: f64 = 0.9;

/// Within 5 % of the longer (or 10 ms, for short calls): the same call timed twice (a
/// subsegment and the TIMING line around it differ by the print's few microseconds).
pub fn near_equal(a: f64, b: f64) -> bool {
    (a - b).abs() <= (0.05 * a.max(b)).max(0.010)
}

/// `also` measures what `name` measures.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Link {
    /// The function it was learned in (None: configured, every function).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub function: Option<String>,
    /// The name the cause goes by.
    pub name: String,
    pub also: String,
    /// `configured` or `learned`.
    pub origin: &'static str,
    /// Invocations both operations were seen in (learned links).
    pub invocations: u64,
    /// Share of them with near-equal durations (learned links).
    pub agreement: f64,
}

/// Every link in force.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Links {
    links: Vec<Link>,
    /// (function or "", operation) → the cause's name.
    canonical: HashMap<(String, String), String>,
}

impl Links {
    /// The links `[[operations]]` configures.
    pub fn configured(ops: &[OperationConfig]) -> Links {
        let mut l = Links::default();
        for o in ops {
            for a in &o.also {
                l.links.push(Link { function: None, name: o.name.clone(), also: a.clone(), origin: "configured", invocations: 0, agreement: 1.0 });
                l.canonical.insert((String::new(), a.clone()), o.name.clone());
            }
        }
        l
    }

    /// Adds learned links; one that touches an operation the config already links is left
    /// out (the config wins).
    pub fn with_learned(mut self, learned: Vec<Link>) -> Links {
        for link in learned {
            let function = link.function.clone().unwrap_or_default();
            let configured = |op: &str| self.canonical.contains_key(&(String::new(), op.to_string())) || self.links.iter().any(|l| l.function.is_none() && l.name == op);
            if configured(&link.name) || configured(&link.also) {
                continue;
            }
            self.canonical.insert((function, link.also.clone()), link.name.clone());
            self.links.push(link);
        }
        self
    }

    /// The cause's name of `operation` in `function` (itself when it is linked to none).
    pub fn canonical<'a>(&'a self, function: &str, operation: &'a str) -> &'a str {
        self.canonical
            .get(&(function.to_string(), operation.to_string()))
            .or_else(|| self.canonical.get(&(String::new(), operation.to_string())))
            .map_or(operation, String::as_str)
    }

    pub fn all(&self) -> &[Link] {
        &self.links
    }

    /// The links that apply in `function`.
    pub fn of_function<'a>(&'a self, function: &'a str) -> impl Iterator<Item = &'a Link> + 'a {
        self.links.iter().filter(move |l| l.function.as_deref().is_none_or(|f| f == function))
    }
}

/// One stored event, as learning reads it.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub function: String,
    /// The invocation's request id (else its trace id).
    pub invocation: String,
    pub operation: String,
    /// Whether it came from X-Ray (its name is preferred for the cause).
    pub xray: bool,
    pub duration_s: f64,
}

/// Learns links from events: two operations of a function (neither function-level nor a
/// cold start) seen once each in at least [`MIN_SHARED`] of the same invocations, with
/// near-equal durations in at least [`MIN_AGREEMENT`] of them. Operations linked to each
/// other form one cause, named by its X-Ray operation (else the first name).
pub fn learn(samples: &[Sample]) -> Vec<Link> {
    // (function, invocation) → operation → (duration, seen more than once)
    let mut invocations: HashMap<(&str, &str), BTreeMap<&str, (f64, bool)>> = HashMap::new();
    let mut from_xray: HashMap<(&str, &str), bool> = HashMap::new();
    for s in samples {
        if is_function_level(&s.operation) || is_cold_start(&s.operation) || s.invocation.is_empty() || !s.duration_s.is_finite() {
            continue;
        }
        from_xray.insert((&s.function, &s.operation), s.xray);
        let ops = invocations.entry((&s.function, &s.invocation)).or_default();
        ops.entry(&s.operation).and_modify(|e| e.1 = true).or_insert((s.duration_s, false));
    }
    // (function, a, b) with a < b → (shared, agreeing)
    let mut pairs: BTreeMap<(&str, &str, &str), (u64, u64)> = BTreeMap::new();
    for ((function, _), ops) in &invocations {
        let once: Vec<(&str, f64)> = ops.iter().filter(|(_, (_, twice))| !twice).map(|(op, (d, _))| (*op, *d)).collect();
        for (i, (a, da)) in once.iter().enumerate() {
            for (b, db) in &once[i + 1..] {
                let e = pairs.entry((function, a, b)).or_default();
                e.0 += 1;
                e.1 += u64::from(near_equal(*da, *db));
            }
        }
    }
    // Components of linked operations per function (few: a handful of operations each).
    let mut groups: BTreeMap<&str, Vec<Vec<(&str, u64, f64)>>> = BTreeMap::new();
    for ((function, a, b), (shared, agreeing)) in pairs {
        let agreement = agreeing as f64 / shared as f64;
        if shared < MIN_SHARED || agreement < MIN_AGREEMENT {
            continue;
        }
        let comps = groups.entry(function).or_default();
        let ia = comps.iter().position(|c| c.iter().any(|(o, ..)| *o == a));
        let ib = comps.iter().position(|c| c.iter().any(|(o, ..)| *o == b));
        match (ia, ib) {
            (Some(x), Some(y)) if x != y => {
                let other = comps.remove(x.max(y));
                comps[x.min(y)].extend(other);
            }
            (Some(_), Some(_)) => {}
            (Some(x), None) => comps[x].push((b, shared, agreement)),
            (None, Some(y)) => comps[y].push((a, shared, agreement)),
            (None, None) => comps.push(vec![(a, shared, agreement), (b, shared, agreement)]),
        }
    }
    let mut out = Vec::new();
    for (function, comps) in groups {
        for comp in comps {
            let name = comp.iter().find(|(o, ..)| from_xray.get(&(function, *o)).copied().unwrap_or(false)).unwrap_or(&comp[0]).0;
            for (op, shared, agreement) in &comp {
                if *op != name {
                    out.push(Link {
                        function: Some(function.to_string()),
                        name: name.to_string(),
                        also: op.to_string(),
                        origin: "learned",
                        invocations: *shared,
                        agreement: *agreement,
                    });
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(inv: usize, op: &str, xray: bool, d: f64) -> Sample {
        Sample { function: "GDSH".into(), invocation: format!("r{inv}"), operation: op.into(), xray, duration_s: d }
    }

    #[test]
    fn the_same_call_timed_twice_is_learned_and_different_calls_are_not() {
        let mut s = Vec::new();
        for i in 0..40 {
            let bedrock = 2.0 + (i % 7) as f64 * 0.3;
            s.push(sample(i, "Bedrock.InvokeModel", true, bedrock));
            s.push(sample(i, "BedrockCallDuration", false, bedrock + 0.0004));
            // Another call of the same invocation: not the same thing.
            s.push(sample(i, "DynamoDB.PutItem", true, 0.05 + (i % 3) as f64 * 0.02));
            s.push(sample(i, "Lambda.Duration", false, bedrock + 0.1));
        }
        let links = learn(&s);
        assert_eq!(links.len(), 1, "{links:?}");
        assert_eq!((links[0].name.as_str(), links[0].also.as_str(), links[0].invocations), ("Bedrock.InvokeModel", "BedrockCallDuration", 40));
        let l = Links::configured(&[]).with_learned(links.clone());
        assert_eq!(l.canonical("GDSH", "BedrockCallDuration"), "Bedrock.InvokeModel");
        assert_eq!(l.canonical("LFH", "BedrockCallDuration"), "BedrockCallDuration", "learned in one function only");
        // Too few shared invocations: nothing learned.
        assert!(learn(&s[..4 * 19]).is_empty());
    }

    #[test]
    fn configured_links_win_and_apply_everywhere() {
        let l = Links::configured(&[OperationConfig { name: "Bedrock.InvokeModel".into(), also: vec!["BedrockCallDuration".into()] }]);
        assert_eq!(l.canonical("any", "BedrockCallDuration"), "Bedrock.InvokeModel");
        assert_eq!(l.canonical("any", "Bedrock.InvokeModel"), "Bedrock.InvokeModel");
        let learned = Link { function: Some("f".into()), name: "X".into(), also: "BedrockCallDuration".into(), origin: "learned", invocations: 50, agreement: 1.0 };
        let l = l.with_learned(vec![learned]);
        assert_eq!(l.canonical("f", "BedrockCallDuration"), "Bedrock.InvokeModel");
        assert_eq!(l.all().len(), 1);
        assert!(is_function_level("Lambda.Duration") && !is_function_level("Bedrock.InvokeModel"));
        assert!(near_equal(9.0, 9.3) && !near_equal(9.0, 10.0) && near_equal(0.001, 0.009));
    }
}
