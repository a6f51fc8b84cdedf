//! The latency plot of a run: latency against percentile (HdrHistogram style: the x axis
//! stretches the tail, 90 / 99 / 99.9 / 99.99 equally spaced), one line per operation, SVG.

use std::path::{Path, PathBuf};

use plotters::prelude::*;

use crate::error::{Error, Result};
use crate::stats::LatencySummary;

fn x_of(percentile: f64) -> f64 {
    // 0 → 0, 90 → 1, 99 → 2, 99.9 → 3, …
    let rest = (1.0 - percentile / 100.0).max(1e-6);
    -rest.log10()
}

/// Writes `<json path with .svg>`.
pub fn latency_svg(json_path: &Path, title: &str, series: &[LatencySummary]) -> Result<PathBuf> {
    let path = json_path.with_extension("svg");
    let draw = |path: &Path| -> std::result::Result<(), Box<dyn std::error::Error>> {
        let root = SVGBackend::new(path, (900, 540)).into_drawing_area();
        root.fill(&WHITE)?;
        let max_ms = series
            .iter()
            .flat_map(|s| s.percentiles.iter().map(|p| p.1))
            .fold(0.1_f64, f64::max)
            * 1.1;
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 20))
            .margin(16)
            .x_label_area_size(40)
            .y_label_area_size(60)
            .build_cartesian_2d(0.0..x_of(99.99), 0.0..max_ms)?;
        chart
            .configure_mesh()
            .x_desc("percentile")
            .y_desc("latency (ms)")
            .x_label_formatter(&|x| {
                let p = 100.0 * (1.0 - 10f64.powf(-x));
                format!("{p:.2}")
            })
            .draw()?;
        for (i, s) in series.iter().enumerate() {
            let color = Palette99::pick(i).to_rgba();
            chart
                .draw_series(LineSeries::new(
                    s.percentiles
                        .iter()
                        .filter(|(p, _)| *p < 100.0)
                        .map(|(p, ms)| (x_of(*p), *ms)),
                    color.stroke_width(2),
                ))?
                .label(s.op.clone())
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color));
        }
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .draw()?;
        root.present()?;
        Ok(())
    };
    draw(&path).map_err(|e| Error::Usage(format!("plot: {e}")))?;
    Ok(path)
}

/// One line of a timeline: (seconds since the start, value).
pub struct Line {
    /// Legend.
    pub name: String,
    /// Points in time order.
    pub points: Vec<(f64, f64)>,
}

/// Writes `<json path with .timeline.svg>`: latency lines (ms, left axis) and, when known,
/// the hub's RSS (MB, right axis) against time; how a long run shows it is stable.
pub fn timeline_svg(
    json_path: &Path,
    title: &str,
    y_desc: &str,
    latency: &[Line],
    rss_mb: Option<&Line>,
) -> Result<PathBuf> {
    let path = json_path.with_extension("timeline.svg");
    let max_of = |lines: &mut dyn Iterator<Item = &Line>, pick: fn(&(f64, f64)) -> f64| {
        lines
            .flat_map(|l| l.points.iter().map(pick))
            .fold(0.0_f64, f64::max)
    };
    let max_t = max_of(&mut latency.iter().chain(rss_mb), |p| p.0).max(1.0);
    let max_ms = max_of(&mut latency.iter(), |p| p.1).max(0.1) * 1.15;
    let max_mb = rss_mb
        .map(|l| max_of(&mut std::iter::once(l), |p| p.1))
        .unwrap_or(0.0)
        .max(1.0)
        * 1.15;
    let draw = |path: &Path| -> std::result::Result<(), Box<dyn std::error::Error>> {
        let root = SVGBackend::new(path, (900, 540)).into_drawing_area();
        root.fill(&WHITE)?;
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 20))
            .margin(16)
            .x_label_area_size(40)
            .y_label_area_size(60)
            .right_y_label_area_size(60)
            .build_cartesian_2d(0.0..max_t, 0.0..max_ms)?
            .set_secondary_coord(0.0..max_t, 0.0..max_mb);
        chart
            .configure_mesh()
            .x_desc("time (s)")
            .y_desc(y_desc)
            .draw()?;
        if rss_mb.is_some() {
            chart
                .configure_secondary_axes()
                .y_desc("hub RSS (MB)")
                .draw()?;
        }
        for (i, l) in latency.iter().enumerate() {
            let color = Palette99::pick(i).to_rgba();
            chart
                .draw_series(LineSeries::new(
                    l.points.iter().copied(),
                    color.stroke_width(2),
                ))?
                .label(l.name.clone())
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color));
        }
        if let Some(l) = rss_mb {
            let color = BLACK.to_rgba();
            chart
                .draw_secondary_series(LineSeries::new(
                    l.points.iter().copied(),
                    color.stroke_width(2),
                ))?
                .label(l.name.clone())
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color));
        }
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .draw()?;
        root.present()?;
        Ok(())
    };
    draw(&path).map_err(|e| Error::Usage(format!("plot: {e}")))?;
    Ok(path)
}
