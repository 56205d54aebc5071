//! The Prometheus text exposition (format 0.0.4), written by hand: a registry's families
//! (the daemon's own metrics, `metrics`) and the line writer the per-series table
//! (`sinks::prometheus`) uses. The tests also hold the collector that exposes a gauge vector
//! with a `quantile` label as a summary: the reference the per-series text is checked with.

#[cfg(test)]
use prometheus::{GaugeVec, Opts};
use prometheus::Registry;

/// Exposes a gauge vector whose `quantile` label is part of our contract as a Prometheus
/// *summary*: promtool rejects a `quantile` label on any other type, and the text encoder
/// cannot write untyped families. Each label set's quantiles become one summary, with
/// `_count`/`_sum` from companion vectors when there are any (else 1 and the value's sum).
#[cfg(test)]
#[derive(Clone)]
struct AsSummary {
    values: GaugeVec,
    counts: Option<GaugeVec>,
    sums: Option<GaugeVec>,
}

#[cfg(test)]
impl prometheus::core::Collector for AsSummary {
    fn desc(&self) -> Vec<&prometheus::core::Desc> {
        self.values.desc()
    }

    fn collect(&self) -> Vec<prometheus::proto::MetricFamily> {
        use prometheus::proto::{LabelPair, Metric, MetricType, Quantile, Summary};
        let mut out = Vec::new();
        for mut family in self.values.collect() {
            let mut groups: std::collections::BTreeMap<Vec<(String, String)>, Vec<(f64, f64)>> = Default::default();
            for m in family.get_metric() {
                let mut q = None;
                let mut others = Vec::new();
                for l in m.get_label() {
                    if l.name() == "quantile" {
                        q = l.value().parse::<f64>().ok();
                    } else {
                        others.push((l.name().to_string(), l.value().to_string()));
                    }
                }
                if let Some(q) = q {
                    groups.entry(others).or_default().push((q, m.get_gauge().get_value()));
                }
            }
            let lookup = |vec: &Option<GaugeVec>, labels: &[(String, String)]| -> Option<f64> {
                let map: std::collections::HashMap<&str, &str> = labels.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
                vec.as_ref().and_then(|v| v.get_metric_with(&map).ok()).map(|g| g.get())
            };
            let metrics = groups
                .into_iter()
                .map(|(labels, mut quantiles)| {
                    quantiles.sort_by(|a, b| a.0.total_cmp(&b.0));
                    let mut summary = Summary::default();
                    summary.set_sample_count(lookup(&self.counts, &labels).unwrap_or(1.0) as u64);
                    summary.set_sample_sum(lookup(&self.sums, &labels).unwrap_or_else(|| quantiles.iter().map(|q| q.1).sum()));
                    summary.set_quantile(
                        quantiles
                            .into_iter()
                            .map(|(q, v)| {
                                let mut x = Quantile::default();
                                x.set_quantile(q);
                                x.set_value(v);
                                x
                            })
                            .collect(),
                    );
                    let mut m = Metric::default();
                    m.set_label(
                        labels
                            .into_iter()
                            .map(|(k, v)| {
                                let mut l = LabelPair::default();
                                l.set_name(k);
                                l.set_value(v);
                                l
                            })
                            .collect(),
                    );
                    m.set_summary(summary);
                    m
                })
                .collect();
            family.set_field_type(MetricType::SUMMARY);
            family.set_metric(metrics);
            out.push(family);
        }
        out
    }
}

#[cfg(test)]
pub fn summary_family(reg: &Registry, name: &str, help: &str, labels: &[&str], counts: Option<GaugeVec>, sums: Option<GaugeVec>) -> GaugeVec {
    let g = GaugeVec::new(Opts::new(name, help), labels).expect("valid metric definition");
    reg.register(Box::new(AsSummary { values: g.clone(), counts, sums })).expect("metric registered once");
    g
}


/// Renders one registry.
///
/// Written by hand rather than with `prometheus::TextEncoder`: with 10,000 series the
/// exposition is tens of megabytes, and building each label set once per metric (not once
/// per line) and writing into one pre-sized buffer makes it several times faster (see
/// `benches/queries.rs`). `promtool check metrics` checks the output in the tests.
pub fn render_registry(registry: &Registry, last_len: &std::sync::atomic::AtomicUsize) -> String {
    use prometheus::proto::MetricType;
    let families = registry.gather();
    let mut out = String::with_capacity(last_len.load(std::sync::atomic::Ordering::Relaxed) + 4096);
    for f in &families {
        let name = f.name();
        let kind = match f.get_field_type() {
            MetricType::COUNTER => "counter",
            MetricType::GAUGE => "gauge",
            MetricType::HISTOGRAM => "histogram",
            MetricType::SUMMARY => "summary",
            MetricType::UNTYPED => "untyped",
        };
        family_head(&mut out, name, f.help(), kind);
        for m in f.get_metric() {
            let mut labels = String::new();
            for l in m.get_label() {
                push_label(&mut labels, l.name(), l.value());
            }
            match f.get_field_type() {
                MetricType::COUNTER => line(&mut out, name, "", &labels, None, m.get_counter().get_value()),
                MetricType::GAUGE => line(&mut out, name, "", &labels, None, m.get_gauge().get_value()),
                MetricType::UNTYPED => {}
                MetricType::HISTOGRAM => {
                    let h = m.get_histogram();
                    for b in h.get_bucket() {
                        line(&mut out, name, "_bucket", &labels, Some(("le", b.upper_bound())), b.cumulative_count() as f64);
                    }
                    line(&mut out, name, "_bucket", &labels, Some(("le", f64::INFINITY)), h.get_sample_count() as f64);
                    line(&mut out, name, "_sum", &labels, None, h.get_sample_sum());
                    line(&mut out, name, "_count", &labels, None, h.get_sample_count() as f64);
                }
                MetricType::SUMMARY => {
                    let sm = m.get_summary();
                    for q in sm.get_quantile() {
                        line(&mut out, name, "", &labels, Some(("quantile", q.quantile())), q.value());
                    }
                    line(&mut out, name, "_sum", &labels, None, sm.sample_sum());
                    line(&mut out, name, "_count", &labels, None, sm.sample_count() as f64);
                }
            }
        }
    }
    last_len.store(out.len(), std::sync::atomic::Ordering::Relaxed);
    out
}

/// A family's `# HELP` and `# TYPE` lines.
pub(crate) fn family_head(out: &mut String, name: &str, help: &str, kind: &str) {
    out.push_str("# HELP ");
    out.push_str(name);
    out.push(' ');
    escape_into(out, help, false);
    out.push_str("\n# TYPE ");
    out.push_str(name);
    out.push(' ');
    out.push_str(kind);
    out.push('\n');
}

/// Appends `name="value"` (the value escaped) to a comma-separated label list.
pub(crate) fn push_label(labels: &mut String, name: &str, value: &str) {
    if !labels.is_empty() {
        labels.push(',');
    }
    labels.push_str(name);
    labels.push_str("=\"");
    escape_into(labels, value, true);
    labels.push('"');
}

/// One sample line: `name[suffix]{labels[,extra="v"]} value`.
pub(crate) fn line(out: &mut String, name: &str, suffix: &str, labels: &str, extra: Option<(&str, f64)>, value: f64) {
    out.push_str(name);
    out.push_str(suffix);
    if !labels.is_empty() || extra.is_some() {
        out.push('{');
        out.push_str(labels);
        if let Some((k, v)) = extra {
            if !labels.is_empty() {
                out.push(',');
            }
            out.push_str(k);
            out.push_str("=\"");
            push_value(out, v);
            out.push('"');
        }
        out.push('}');
    }
    out.push(' ');
    push_value(out, value);
    out.push('\n');
}

fn push_value(out: &mut String, v: f64) {
    use std::fmt::Write;
    if v == f64::INFINITY {
        out.push_str("+Inf");
    } else if v == f64::NEG_INFINITY {
        out.push_str("-Inf");
    } else if v.is_nan() {
        out.push_str("NaN");
    } else {
        let _ = write!(out, "{v}");
    }
}

/// Escapes `\\` and newlines (and `"` in label values), as the text format requires.
fn escape_into(out: &mut String, s: &str, quotes: bool) {
    if !s.contains(['\\', '\n', '"']) {
        out.push_str(s);
        return;
    }
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '"' if quotes => out.push_str("\\\""),
            c => out.push(c),
        }
    }
}

