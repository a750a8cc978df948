//! Draws the panels on one time axis, with the markers as vertical lines on every panel, to SVG or PNG
//! (plotters; text in the bundled DejaVu Sans through ab_glyph, so no system font is needed).

use super::clock::clock;
use super::model::{Marker, MarkerKind, Panel};
use plotters::coord::ranged1d::{KeyPointHint, NoDefaultFormatting, Ranged, ValueFormatter};
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::{register_font, FontStyle};
use std::path::Path;
use std::sync::OnceLock;

const SIZE: (u32, u32) = (1200, 960);
const FONT: &[u8] = include_bytes!("font/DejaVuSans.ttf");
const CANARY: RGBColor = RGBColor(214, 39, 40);
const STABLE: RGBColor = RGBColor(31, 119, 180);
const SHARE: RGBColor = RGBColor(148, 103, 189);
/// The copies a mirror stage sends to the canary: the canary's own answers, no user's.
const MIRROR: RGBColor = RGBColor(255, 127, 14);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Svg,
    Png,
}

/// What is drawn: the panels over `from..to` (unix seconds) and the markers on them.
pub struct Drawing<'a> {
    pub title: &'a str,
    pub from: u64,
    pub to: u64,
    pub panels: &'a [Panel],
    pub markers: &'a [Marker],
}

pub fn render(drawing: &Drawing<'_>, path: &Path, format: Format) -> Result<(), String> {
    register()?;
    let why = |e: String| format!("{}: {e}", path.display());
    match format {
        Format::Svg => {
            let root = SVGBackend::new(path, SIZE).into_drawing_area();
            draw(drawing, &root).map_err(why)?;
            root.present().map_err(|e| why(e.to_string()))
        }
        Format::Png => {
            let root = BitMapBackend::new(path, SIZE).into_drawing_area();
            draw(drawing, &root).map_err(why)?;
            root.present().map_err(|e| why(e.to_string()))
        }
    }
}

fn register() -> Result<(), String> {
    static REGISTERED: OnceLock<bool> = OnceLock::new();
    let ok =
        *REGISTERED.get_or_init(|| register_font("sans-serif", FontStyle::Normal, FONT).is_ok());
    ok.then_some(())
        .ok_or_else(|| "the bundled font cannot be read".to_string())
}

fn draw<DB: DrawingBackend>(d: &Drawing<'_>, root: &DrawingArea<DB, Shift>) -> Result<(), String> {
    root.fill(&WHITE).map_err(text)?;
    let title = format!("{} ({} .. {} UTC)", d.title, clock(d.from), clock(d.to));
    let body = root.titled(&title, ("sans-serif", 24)).map_err(text)?;
    let areas = body.split_evenly((d.panels.len().max(1), 1));
    for (i, (panel, area)) in d.panels.iter().zip(&areas).enumerate() {
        draw_panel(d, panel, area, i == 0)?;
    }
    Ok(())
}

fn draw_panel<DB: DrawingBackend>(
    d: &Drawing<'_>,
    panel: &Panel,
    area: &DrawingArea<DB, Shift>,
    labelled: bool,
) -> Result<(), String> {
    let (lo, hi) = y_range(panel);
    let (from, to) = (d.from as f64, d.to.max(d.from + 1) as f64);
    let caption = format!("{} ({})", panel.title, panel.unit);
    let mut chart = ChartBuilder::on(area)
        .caption(caption, ("sans-serif", 18))
        .margin(8)
        .x_label_area_size(28)
        .y_label_area_size(56)
        .build_cartesian_2d(TimeAxis::new(d.from, d.to), lo..hi)
        .map_err(text)?;
    chart
        .configure_mesh()
        .y_labels(5)
        .label_style(("sans-serif", 13))
        .draw()
        .map_err(text)?;
    for m in d.markers {
        let x = m.time;
        let line = LineSeries::new([(x, lo), (x, hi)], marker_style(m.kind));
        chart.draw_series(line).map_err(text)?;
    }
    if labelled {
        for (i, m) in d.markers.iter().enumerate() {
            // Staggered, so that markers close in time keep readable labels.
            let y = hi - (hi - lo) * (0.06 + 0.09 * (i % 3) as f64);
            let style = ("sans-serif", 13).into_font().color(&marker_color(m.kind));
            let label = Text::new(format!(" {}", m.label), (m.time, y), style);
            chart.draw_series(std::iter::once(label)).map_err(text)?;
        }
    }
    // Canary last, on top: where it matches stable it still shows.
    for s in panel.series.iter().rev() {
        let color = match s.name.as_str() {
            "canary" => CANARY,
            "share" => SHARE,
            "mirror" => MIRROR,
            _ => STABLE,
        };
        let name = match s.name.as_str() {
            "share" => "canary share",
            "mirror" => "canary (mirror copies)",
            other => other,
        };
        chart
            .draw_series(LineSeries::new(
                s.points.iter().copied(),
                color.stroke_width(2),
            ))
            .map_err(text)?
            .label(name)
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
            });
    }
    if panel.series.iter().all(|s| s.points.is_empty()) {
        let style = ("sans-serif", 16).into_font().color(&BLACK);
        let middle = ((from + to) / 2.0, (lo + hi) / 2.0);
        let empty = Text::new("no data", middle, style);
        chart.draw_series(std::iter::once(empty)).map_err(text)?;
    } else {
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::LowerLeft)
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK.mix(0.4))
            .label_font(("sans-serif", 13))
            .draw()
            .map_err(text)?;
    }
    Ok(())
}

/// Unix seconds, labelled as UTC clock times on whole clock units (plotters' own f64 axis would
/// put them on multiples of 10^k seconds: 16:00:50, 16:01:40).
struct TimeAxis {
    range: std::ops::Range<f64>,
    ticks: Vec<f64>,
}

impl TimeAxis {
    fn new(from: u64, to: u64) -> Self {
        let to = to.max(from + 1);
        TimeAxis {
            range: from as f64..to as f64,
            ticks: ticks(from, to),
        }
    }
}

impl Ranged for TimeAxis {
    type FormatOption = NoDefaultFormatting;
    type ValueType = f64;

    fn map(&self, value: &f64, limit: (i32, i32)) -> i32 {
        let share = (value - self.range.start) / (self.range.end - self.range.start);
        limit.0 + (share * f64::from(limit.1 - limit.0)).round() as i32
    }

    fn key_points<Hint: KeyPointHint>(&self, hint: Hint) -> Vec<f64> {
        if hint.weight().allow_light_points() {
            Vec::new()
        } else {
            self.ticks.clone()
        }
    }

    fn range(&self) -> std::ops::Range<f64> {
        self.range.clone()
    }
}

impl ValueFormatter<f64> for TimeAxis {
    fn format(value: &f64) -> String {
        clock(*value as u64)
    }
}

/// Time ticks on whole clock units (10s, 1m, 5m, ...), at most 8 of them.
fn ticks(from: u64, to: u64) -> Vec<f64> {
    const UNITS: [u64; 16] = [
        1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 21600, 86400,
    ];
    let span = to.saturating_sub(from);
    let unit = UNITS
        .into_iter()
        .find(|u| span / u <= 8)
        .unwrap_or(86400 * (span / 86400 / 8).max(1));
    let first = from.div_ceil(unit) * unit;
    // A tick at the very end would have its label cut by the edge.
    (first..=to.saturating_sub(unit / 3))
        .step_by(unit as usize)
        .map(|t| t as f64)
        .collect()
}

/// Percent panels start at 0 (a share) or just below the lowest value (a success rate, where the
/// interesting part is near 100); latency from 0 to a little above the highest value.
fn y_range(panel: &Panel) -> (f64, f64) {
    let values = || {
        panel
            .series
            .iter()
            .flat_map(|s| s.points.iter().map(|p| p.1))
    };
    let max = values().fold(0.0_f64, f64::max);
    let min = values().fold(100.0_f64, f64::min);
    match (panel.unit.as_str(), panel.title.contains("share")) {
        ("%", true) => (0.0, 105.0),
        ("%", false) => (((min - 5.0) / 10.0).floor().clamp(0.0, 9.0) * 10.0, 101.0),
        _ => (0.0, (max * 1.2).max(1.0)),
    }
}

fn marker_color(kind: MarkerKind) -> RGBColor {
    match kind {
        MarkerKind::Start | MarkerKind::Step => RGBColor(110, 110, 110),
        MarkerKind::CheckFailed => RGBColor(230, 120, 0),
        MarkerKind::Rollback => RGBColor(190, 0, 0),
        MarkerKind::Promotion => RGBColor(30, 140, 30),
        MarkerKind::Pause | MarkerKind::Resume => RGBColor(120, 80, 160),
        // The caller's marks: apart from the controller's decisions.
        MarkerKind::Mark => RGBColor(0, 128, 128),
    }
}

fn marker_style(kind: MarkerKind) -> ShapeStyle {
    let width = match kind {
        MarkerKind::Start | MarkerKind::Step => 1,
        _ => 2,
    };
    marker_color(kind).stroke_width(width)
}

fn text(e: impl std::fmt::Display) -> String {
    e.to_string()
}
