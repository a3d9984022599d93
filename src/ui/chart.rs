//! Line charts in SVG, the same markup on the server and in the browser (no script needed):
//! the geometry of a series of `(time, value)` points scaled into a view box, and the
//! [`LineChart`] component that draws it with its title, latest value, scale and time span.

use leptos::prelude::*;

/// The view box the geometry is computed for (the SVG stretches it to its box).
pub const CHART_WIDTH: f64 = 300.0;
pub const CHART_HEIGHT: f64 = 80.0;
/// Room above the highest point and below the lowest, in view-box units.
const PAD: f64 = 3.0;

/// One point: milliseconds since the epoch, and its value.
pub type ChartPoint = (i64, f64);

/// Where a series goes in the view box.
#[derive(Debug, Clone, PartialEq)]
pub struct ChartGeometry {
    /// The line, an SVG path (`M x,y L x,y …`).
    pub line: String,
    /// The line closed down to the axis, for the fill under it.
    pub area: String,
    /// The value at the top of the chart (a round number at least the highest value).
    pub top: f64,
    /// Milliseconds between the first point and the last.
    pub span_ms: i64,
}

/// The smallest of 1, 2, 5 × 10ⁿ that is at least `value` (1 for nothing above zero).
pub fn nice_ceiling(value: f64) -> f64 {
    if !value.is_finite() || value <= 0.0 {
        return 1.0;
    }
    let magnitude = 10f64.powf(value.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|step| step * magnitude)
        .find(|candidate| *candidate >= value * (1.0 - 1e-12))
        .unwrap_or(10.0 * magnitude)
}

/// The geometry of `points` (in time order; values below zero count as zero). `None` for no
/// points. A single point is a short mark at the right edge (it is the latest).
pub fn geometry(points: &[ChartPoint]) -> Option<ChartGeometry> {
    let (first, last) = (points.first()?.0, points.last()?.0);
    let highest = points
        .iter()
        .map(|(_, value)| value.max(0.0))
        .fold(0.0, f64::max);
    let top = nice_ceiling(highest);
    let span_ms = (last - first).max(0);
    let x = |at: i64| {
        if span_ms == 0 {
            CHART_WIDTH
        } else {
            (at - first) as f64 / span_ms as f64 * CHART_WIDTH
        }
    };
    let y = |value: f64| {
        let share = (value.max(0.0) / top).min(1.0);
        CHART_HEIGHT - PAD - share * (CHART_HEIGHT - 2.0 * PAD)
    };
    let mut coordinates: Vec<(f64, f64)> = points.iter().map(|(at, v)| (x(*at), y(*v))).collect();
    if coordinates.len() == 1 {
        let (x, y) = coordinates[0];
        coordinates.insert(0, (x - 6.0, y));
    }
    let line = coordinates
        .iter()
        .enumerate()
        .map(|(index, (x, y))| format!("{}{x:.1},{y:.1}", if index == 0 { "M" } else { "L" }))
        .collect::<Vec<_>>()
        .join(" ");
    let (first_x, last_x) = (coordinates[0].0, coordinates[coordinates.len() - 1].0);
    let area = format!("{line} L{last_x:.1},{CHART_HEIGHT:.1} L{first_x:.1},{CHART_HEIGHT:.1} Z");
    Some(ChartGeometry {
        line,
        area,
        top,
        span_ms,
    })
}

/// A time span for people: "45 s", "12 min", "3.5 h".
pub fn span_label(ms: i64) -> String {
    let seconds = ms.max(0) as f64 / 1000.0;
    if seconds < 90.0 {
        format!("{seconds:.0} s")
    } else if seconds < 90.0 * 60.0 {
        format!("{:.0} min", seconds / 60.0)
    } else {
        format!("{:.1} h", seconds / 3600.0)
    }
}

/// A chart of one series: title, latest value, the line, and below it the span and the top
/// of the scale. `format` writes a value with its unit.
#[component]
pub fn LineChart(
    title: &'static str,
    /// For `data-testid` (`chart-<id>`).
    #[prop(into)]
    id: String,
    points: Signal<Vec<ChartPoint>>,
    format: fn(f64) -> String,
    /// Said when there are no points yet.
    #[prop(into)]
    empty: String,
) -> impl IntoView {
    let shape = Memo::new(move |_| points.with(|points| geometry(points)));
    let latest = Memo::new(move |_| points.with(|points| points.last().map(|(_, value)| *value)));
    let count = Memo::new(move |_| points.with(Vec::len));
    let label = move || {
        shape.with(|shape| match shape {
            Some(shape) => format!(
                "{title} over {}: {} points, now {}, scale up to {}",
                span_label(shape.span_ms),
                count.get(),
                latest.get().map(format).unwrap_or_default(),
                format(shape.top)
            ),
            None => format!("{title}: no data yet"),
        })
    };
    view! {
        <figure class="chart" data-testid=format!("chart-{id}") data-points=move || count.get().to_string()>
            <figcaption class="chart__caption">
                <span class="chart__title">{title}</span>
                <span class="chart__now">{move || latest.get().map(format).unwrap_or_else(|| "—".to_owned())}</span>
            </figcaption>
            <svg
                class="chart__svg"
                viewBox=format!("0 0 {CHART_WIDTH} {CHART_HEIGHT}")
                preserveAspectRatio="none"
                role="img"
                aria-label=label
            >
                <line class="chart__grid" x1="0" y1=PAD x2=CHART_WIDTH y2=PAD></line>
                <line class="chart__grid" x1="0" y1=CHART_HEIGHT / 2.0 x2=CHART_WIDTH y2=CHART_HEIGHT / 2.0></line>
                <path class="chart__area" d=move || shape.with(|s| s.as_ref().map(|s| s.area.clone()).unwrap_or_default())></path>
                <path class="chart__line" vector-effect="non-scaling-stroke" d=move || shape.with(|s| s.as_ref().map(|s| s.line.clone()).unwrap_or_default())></path>
            </svg>
            <div class="chart__axis">
                {move || shape.with(|shape| match shape {
                    Some(shape) => view! {
                        <span>{if shape.span_ms == 0 { "one sample".to_owned() } else { format!("{} ago", span_label(shape.span_ms)) }}</span>
                        <span>{format!("top {}", format(shape.top))}</span>
                        <span>"now"</span>
                    }.into_any(),
                    None => view! { <span>{empty.clone()}</span> }.into_any(),
                })}
            </div>
        </figure>
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nice_ceiling_table() {
        let cases = [
            (0.0, 1.0),
            (-3.0, 1.0),
            (f64::NAN, 1.0),
            (0.3, 0.5),
            (1.0, 1.0),
            (1.2, 2.0),
            (4.9, 5.0),
            (7.0, 10.0),
            (63.0, 100.0),
            (100.0, 100.0),
            (101.0, 200.0),
            (2500.0, 5000.0),
        ];
        for (value, expected) in cases {
            let got = nice_ceiling(value);
            assert!(
                (got - expected).abs() < 1e-9,
                "{value} → {got}, wanted {expected}"
            );
        }
    }

    #[test]
    fn geometry_table() {
        // (points, line, top, span)
        type Expected = Option<(&'static str, f64, i64)>;
        let cases: &[(&[ChartPoint], Expected)] = &[
            (&[], None),
            // One point: a short mark at the right edge, at the top (5 of 5).
            (&[(1_000, 5.0)], Some(("M294.0,3.0 L300.0,3.0", 5.0, 0))),
            // Two points over 10 s: from the bottom-left to the top-right (top = 2).
            (
                &[(0, 0.0), (10_000, 2.0)],
                Some(("M0.0,77.0 L300.0,3.0", 2.0, 10_000)),
            ),
            // Negative values sit on the axis; the middle point is at a third of the span.
            (
                &[(0, -1.0), (5_000, 1.0), (15_000, 0.5)],
                Some(("M0.0,77.0 L100.0,3.0 L300.0,40.0", 1.0, 15_000)),
            ),
        ];
        for (points, expected) in cases {
            let got = geometry(points).map(|g| (g.line, g.top, g.span_ms));
            let expected = expected.map(|(line, top, span)| (line.to_owned(), top, span));
            assert_eq!(got, expected, "{points:?}");
        }
        let area = geometry(&[(0, 0.0), (10_000, 2.0)]).map(|g| g.area);
        assert_eq!(
            area.as_deref(),
            Some("M0.0,77.0 L300.0,3.0 L300.0,80.0 L0.0,80.0 Z")
        );
    }

    #[test]
    fn span_labels() {
        for (ms, expected) in [
            (0, "0 s"),
            (45_000, "45 s"),
            (600_000, "10 min"),
            (3 * 3_600_000 + 1_800_000, "3.5 h"),
            (-5, "0 s"),
        ] {
            assert_eq!(span_label(ms), expected);
        }
    }
}
