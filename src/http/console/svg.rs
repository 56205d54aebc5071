//! The small figures drawn here as SVG (no script needed, sharp at any size, allowed by the
//! page's policy since geometry is in attributes, not styles): a sparkline of p95 over the
//! last hours, a bullet of p95 against its budget, and the bottleneck's waterfall.

use maud::{Markup, html};

/// A sparkline of `points` (x, y) in a `w`×`h` box, y from 0 to the largest of the points
/// and `reference` (the budget, drawn as a dashed line).
pub fn sparkline(points: &[(f64, f64)], reference: Option<f64>, w: f64, h: f64, label: &str) -> Markup {
    let (x0, x1) = points.iter().fold((f64::MAX, f64::MIN), |(a, b), p| (a.min(p.0), b.max(p.0)));
    let top = points.iter().map(|p| p.1).chain(reference).fold(0.0_f64, f64::max).max(1e-9);
    let sx = |x: f64| if x1 > x0 { (x - x0) / (x1 - x0) * (w - 2.0) + 1.0 } else { w / 2.0 };
    let sy = |y: f64| h - 1.0 - (y / top) * (h - 2.0);
    let line: String = points.iter().map(|&(x, y)| format!("{:.1},{:.1}", sx(x), sy(y))).collect::<Vec<_>>().join(" ");
    html! {
        svg.spark viewBox=(format!("0 0 {w} {h}")) width=(w) height=(h) role="img" aria-label=(label) {
            @if let Some(r) = reference {
                line.budget x1="0" x2=(w) y1=(format!("{:.1}", sy(r))) y2=(format!("{:.1}", sy(r))) {}
            }
            @if points.len() == 1 {
                circle cx=(format!("{:.1}", sx(points[0].0))) cy=(format!("{:.1}", sy(points[0].1))) r="1.5" {}
            } @else if !points.is_empty() {
                polyline points=(line) {}
            }
        }
    }
}

/// A bullet: a bar for `value` and a mark for `budget`, scaled so the larger of the two
/// (with a little room) fills the box.
pub fn bullet(value: f64, budget: Option<f64>, over: bool, w: f64, h: f64, label: &str) -> Markup {
    let full = value.max(budget.unwrap_or(0.0)).max(1e-9) * 1.15;
    let x = |v: f64| (v / full * w).clamp(0.0, w);
    html! {
        svg.bullet viewBox=(format!("0 0 {w} {h}")) width=(w) height=(h) role="img" aria-label=(label) {
            rect.track x="0" y="0" width=(w) height=(h) {}
            rect class=(if over { "bar over" } else { "bar" }) x="0" y=(h * 0.25) width=(format!("{:.1}", x(value))) height=(h * 0.5) {}
            @if let Some(b) = budget {
                rect.mark x=(format!("{:.1}", (x(b) - 1.0).max(0.0))) y="0" width="2" height=(h) {}
            }
        }
    }
}

/// One bar of a waterfall: where it starts and how long it lasts, in seconds from the
/// start, at a depth, named, and whether it is the bottleneck.
#[derive(Debug, Clone, PartialEq)]
pub struct Bar {
    pub label: String,
    pub depth: usize,
    pub start_s: f64,
    pub length_s: f64,
    pub bottleneck: bool,
    pub gap: bool,
}

/// Lays a critical path out as a waterfall: nodes in tree order with their depth and self
/// time; a node's bar spans its self time and its children's, and siblings follow one
/// another (the critical path is sequential: what overlapped it is not on it).
pub fn lay_out(nodes: &[(String, usize, f64, bool, bool)]) -> Vec<Bar> {
    // Total time of each node: its self time and its descendants'.
    let mut totals = vec![0.0; nodes.len()];
    for i in (0..nodes.len()).rev() {
        let depth = nodes[i].1;
        let mut t = nodes[i].2;
        let mut j = i + 1;
        while j < nodes.len() && nodes[j].1 > depth {
            if nodes[j].1 == depth + 1 {
                t += totals[j];
            }
            j += 1;
        }
        totals[i] = t;
    }
    // Each node starts where its parent started plus the time of the siblings before it.
    let mut next_start: Vec<f64> = Vec::new(); // per depth: where the next child starts
    let mut bars = Vec::with_capacity(nodes.len());
    for (i, (label, depth, _, bottleneck, gap)) in nodes.iter().enumerate() {
        next_start.truncate(depth + 1);
        let start = match next_start.get(*depth) {
            Some(&s) => s,
            None => next_start.last().copied().unwrap_or(0.0),
        };
        while next_start.len() <= *depth {
            next_start.push(start);
        }
        next_start[*depth] = start + totals[i];
        // Its children start where it starts.
        next_start.push(start);
        bars.push(Bar { label: label.clone(), depth: *depth, start_s: start, length_s: totals[i], bottleneck: *bottleneck, gap: *gap });
    }
    bars
}

/// The waterfall of `bars` over `total_s`, a row per bar, bars to scale.
pub fn waterfall(bars: &[Bar], total_s: f64, label: &str) -> Markup {
    let (row, label_w, w) = (22.0, 340.0, 960.0);
    let h = row * bars.len() as f64 + 24.0;
    let span = total_s.max(bars.iter().map(|b| b.start_s + b.length_s).fold(0.0, f64::max)).max(1e-9);
    let x = |s: f64| label_w + s / span * (w - label_w - 70.0);
    html! {
        svg.waterfall viewBox=(format!("0 0 {w} {h}")) preserveAspectRatio="xMinYMin meet" role="img" aria-label=(label) {
            @for (i, b) in bars.iter().enumerate() {
                @let y = 4.0 + row * i as f64;
                @let indent = 4.0 + 12.0 * b.depth as f64;
                g class=(if b.bottleneck { "row bottleneck" } else if b.gap { "row gap" } else { "row" }) {
                    title { (b.label) }
                    text x=(indent) y=(format!("{:.1}", y + row * 0.65)) { (fit(&b.label, label_w - indent - 8.0)) }
                    rect x=(format!("{:.1}", x(b.start_s))) y=(format!("{:.1}", y + 3.0)) width=(format!("{:.1}", (x(b.start_s + b.length_s) - x(b.start_s)).max(1.0))) height=(row - 6.0) {}
                    text.dur x=(format!("{:.1}", x(b.start_s + b.length_s) + 4.0)) y=(format!("{:.1}", y + row * 0.65)) { (super::layout::secs(b.length_s)) }
                }
            }
        }
    }
}

/// `label` cut to what fits in `width` px at the waterfall's 12 px font (about 6.8 px a
/// character), the end kept (an operation's name says more than its function's).
fn fit(label: &str, width: f64) -> String {
    let max = (width / 6.8).max(4.0) as usize;
    let n = label.chars().count();
    if n <= max { label.to_string() } else { format!("…{}", label.chars().skip(n - (max - 1)).collect::<String>()) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sparkline_spans_its_box_and_draws_the_budget() {
        let s = sparkline(&[(0.0, 1.0), (1.0, 2.0)], Some(4.0), 100.0, 20.0, "p95").into_string();
        assert!(s.contains("points=\"1.0,14.5 99.0,10.0\""), "{s}");
        assert!(s.contains("class=\"budget\"") && s.contains("y1=\"1.0\""), "{s}");
        assert!(!sparkline(&[], None, 100.0, 20.0, "p95").into_string().contains("polyline"));
    }

    #[test]
    fn a_bullet_marks_the_budget_and_flags_an_overrun() {
        let s = bullet(10.0, Some(5.0), true, 115.0, 10.0, "p95 10s, budget 5s").into_string();
        assert!(s.contains("class=\"bar over\"") && s.contains("width=\"100.0\""), "{s}");
        assert!(s.contains("class=\"mark\" x=\"49.0\""), "{s}");
    }

    #[test]
    fn the_waterfall_puts_children_inside_parents_and_siblings_in_turn() {
        let n = |l: &str, d: usize, s: f64| (l.to_string(), d, s, false, false);
        let bars = lay_out(&[n("workflow", 0, 0.5), n("A", 1, 1.0), n("A.db", 2, 2.0), n("B", 1, 3.0), n("B.bedrock", 2, 9.0)]);
        let got: Vec<(&str, f64, f64)> = bars.iter().map(|b| (b.label.as_str(), b.start_s, b.length_s)).collect();
        assert_eq!(got, [("workflow", 0.0, 15.5), ("A", 0.0, 3.0), ("A.db", 0.0, 2.0), ("B", 3.0, 12.0), ("B.bedrock", 3.0, 9.0)]);
        let svg = waterfall(&bars, 15.5, "critical path").into_string();
        assert_eq!(svg.matches("<rect").count(), 5);
        assert_eq!(fit("GenerateDynamicScenarioHandler · Bedrock.InvokeModel", 150.0), "…· Bedrock.InvokeModel");
        assert_eq!(fit("short", 150.0), "short");
    }
}
