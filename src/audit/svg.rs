//! Inline SVG line charts for the HTML report: no script, no font, no external reference; text
//! uses the generic `sans-serif` family so nothing is fetched.

use std::fmt::Write as _;

use super::html::esc;
use super::model::{Point, Series};
use super::text::duration;

/// Series colours (distinguishable, also in grey scale order).
pub const PALETTE: [&str; 8] = [
    "#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf",
];

const W: f64 = 1100.0;
const H: f64 = 280.0;
const LEFT: f64 = 70.0;
const RIGHT: f64 = 20.0;
const TOP: f64 = 16.0;
const BOTTOM: f64 = 36.0;

#[allow(clippy::cast_precision_loss)]
fn f(v: i64) -> f64 {
    v as f64
}

/// A line chart of several series over `[0, span_ms]`. `title` labels it for screen readers.
#[allow(clippy::cast_precision_loss)]
pub fn line_chart(title: &str, series: &[Series], span_ms: u64, y_label: &str) -> String {
    let mut out = String::new();
    let _ = write!(
        out,
        r#"<svg class="chart" role="img" aria-label="{}" viewBox="0 0 {W} {H}" width="{W}" height="{H}">"#,
        esc(title)
    );
    let all: Vec<Point> = series.iter().flat_map(|s| s.points.iter().copied()).collect();
    if all.is_empty() {
        let _ = write!(
            out,
            r#"<text x="{}" y="{}" text-anchor="middle" class="muted">no samples</text></svg>"#,
            W / 2.0,
            H / 2.0
        );
        return out;
    }
    let span = span_ms.max(all.iter().map(|p| p.t_ms).max().unwrap_or(0)).max(1) as f64;
    let mut lo = all.iter().map(|p| p.value).min().unwrap_or(0).min(0);
    let mut hi = all.iter().map(|p| p.value).max().unwrap_or(0).max(0);
    if lo == hi {
        hi += 1;
        lo -= i64::from(lo < 0);
    }
    let (plot_w, plot_h) = (W - LEFT - RIGHT, H - TOP - BOTTOM);
    let x = |t: u64| LEFT + (t as f64 / span) * plot_w;
    let y = |v: i64| TOP + (f(hi) - f(v)) / (f(hi) - f(lo)) * plot_h;
    // Frame, zero line and ticks.
    let _ = write!(
        out,
        r##"<rect x="{LEFT}" y="{TOP}" width="{plot_w}" height="{plot_h}" fill="#fbfbfd" stroke="#c8c8d0"/>"##
    );
    let _ = write!(
        out,
        r##"<line x1="{LEFT}" x2="{}" y1="{z:.1}" y2="{z:.1}" stroke="#888" stroke-dasharray="4 3"/>"##,
        W - RIGHT,
        z = y(0)
    );
    for v in [lo, 0, hi] {
        let _ = write!(
            out,
            r#"<text x="{}" y="{:.1}" text-anchor="end" class="tick">{v}</text>"#,
            LEFT - 6.0,
            y(v) + 4.0
        );
    }
    for i in 0..=4u64 {
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        let t = (span * i as f64 / 4.0) as u64;
        // The last label ends at the frame's right edge instead of running past it.
        let anchor = match i {
            0 => "start",
            4 => "end",
            _ => "middle",
        };
        let _ = write!(
            out,
            r#"<text x="{:.1}" y="{}" text-anchor="{anchor}" class="tick">{}</text>"#,
            x(t),
            H - BOTTOM + 16.0,
            duration(t)
        );
    }
    let _ = write!(
        out,
        r#"<text x="14" y="{:.1}" transform="rotate(-90 14 {:.1})" text-anchor="middle" class="tick">{}</text>"#,
        TOP + plot_h / 2.0,
        TOP + plot_h / 2.0,
        esc(y_label)
    );
    let _ = write!(
        out,
        r#"<text x="{:.1}" y="{}" text-anchor="middle" class="tick">time since the run started</text>"#,
        LEFT + plot_w / 2.0,
        H - 4.0
    );
    for (i, s) in series.iter().enumerate() {
        let colour = PALETTE[i % PALETTE.len()];
        let mut pts = String::new();
        for p in &s.points {
            let _ = write!(pts, "{:.1},{:.1} ", x(p.t_ms), y(p.value));
        }
        let _ = write!(
            out,
            r#"<polyline fill="none" stroke="{colour}" stroke-width="2" points="{}"><title>{}</title></polyline>"#,
            pts.trim_end(),
            esc(&s.label)
        );
        if let [only] = s.points.as_slice() {
            let _ = write!(
                out,
                r#"<circle cx="{:.1}" cy="{:.1}" r="3" fill="{colour}"/>"#,
                x(only.t_ms),
                y(only.value)
            );
        }
    }
    out.push_str("</svg>");
    out
}

/// The legend under a chart (HTML, colour swatches matching [`PALETTE`]).
pub fn legend(series: &[Series]) -> String {
    let mut out = String::from(r#"<ul class="legend">"#);
    for (i, s) in series.iter().enumerate() {
        let _ = write!(
            out,
            r#"<li><span class="swatch" style="background:{}"></span>{}</li>"#,
            PALETTE[i % PALETTE.len()],
            esc(&s.label)
        );
    }
    out.push_str("</ul>");
    out
}

/// A cumulative count as a step line from zero at the start to its last value at `span_ms`.
pub fn cumulative_steps(points: &[Point], span_ms: u64) -> Vec<Point> {
    let mut out = vec![Point { t_ms: 0, value: 0 }];
    let mut prev = 0;
    for p in points {
        out.push(Point {
            t_ms: p.t_ms,
            value: prev,
        });
        out.push(*p);
        prev = p.value;
    }
    let end = span_ms.max(out.last().map_or(0, |p| p.t_ms));
    out.push(Point {
        t_ms: end,
        value: prev,
    });
    out
}
