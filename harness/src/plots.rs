//! SVG plots drawn with plotters' SVG backend and its built-in text-size estimate (no system
//! fonts), so the same data gives the same bytes on every machine.

use claimbench_paper::report::Figure;
pub use claimbench_paper::report::{Bar, Series};
use plotters::prelude::*;

/// Colours of the series, in order (ten, so that a replay sweep of seven arms plus the union
/// never repeats one).
const COLOURS: [RGBColor; 10] = [
    RGBColor(0x1f, 0x77, 0xb4),
    RGBColor(0xd6, 0x27, 0x28),
    RGBColor(0x7f, 0x7f, 0x7f),
    RGBColor(0x2c, 0xa0, 0x2c),
    RGBColor(0x94, 0x67, 0xbd),
    RGBColor(0xff, 0x7f, 0x0e),
    RGBColor(0x8c, 0x56, 0x4b),
    RGBColor(0xe3, 0x77, 0xc2),
    RGBColor(0xbc, 0xbd, 0x22),
    RGBColor(0x17, 0xbe, 0xcf),
];

fn bounds(series: &[Series]) -> (f64, f64, f64, f64) {
    let pts = series
        .iter()
        .flat_map(|s| s.points.iter())
        .filter(|(x, y)| x.is_finite() && y.is_finite());
    let (mut x0, mut x1, mut y0, mut y1) = (
        f64::INFINITY,
        f64::NEG_INFINITY,
        f64::INFINITY,
        f64::NEG_INFINITY,
    );
    for &(x, y) in pts {
        x0 = x0.min(x);
        x1 = x1.max(x);
        y0 = y0.min(y);
        y1 = y1.max(y);
    }
    if !x0.is_finite() {
        return (0.0, 1.0, 0.0, 1.0);
    }
    let pad_y = ((y1 - y0) * 0.08).max(y1.abs() * 0.02).max(1e-9);
    // 3% of the range; a single x gets ±0.5 (steps, ranks) or ±5% of its size.
    let pad_x = if x1 > x0 {
        (x1 - x0) * 0.03
    } else {
        x0.abs() * 0.05 + 0.5
    };
    (
        x0 - pad_x,
        x1 + pad_x,
        (y0 - pad_y).min(if y0 >= 0.0 { 0.0 } else { y0 - pad_y }),
        y1 + pad_y,
    )
}

/// A paper's figure, drawn as an SVG document.
pub fn figure(f: &Figure) -> String {
    match f {
        Figure::Xy {
            title,
            x_label,
            y_label,
            series,
            lines,
        } => xy_plot(title, x_label, y_label, series, *lines),
        Figure::Heatmap {
            title,
            x_label,
            y_label,
            shape,
            values,
            outlined,
        } => heatmap(title, x_label, y_label, *shape, values, outlined),
        Figure::Bars {
            title,
            y_label,
            bars: b,
            references,
        } => bars(title, y_label, b, references),
        Figure::Tokens {
            title,
            categories,
            rows,
        } => tokens(title, categories, rows),
    }
}

/// `s` with `&`, `<`, `>`, `"` and `'` escaped for HTML text and attribute values.
fn escape_html(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

/// A light tint of series colour `i` (mixed 55% with white), as `#rrggbb`: dark text stays
/// readable on it.
fn tint(i: usize) -> String {
    let RGBColor(r, g, b) = COLOURS[i % COLOURS.len()];
    let mix = |c: u8| (c as f64 * 0.45 + 255.0 * 0.55).round() as u8;
    format!("#{:02x}{:02x}{:02x}", mix(r), mix(g), mix(b))
}

/// [`Figure::Tokens`] as HTML: a title, a legend of the categories and one block of text per
/// row, every token a `<span>` with its category's tint and a tooltip naming it. Text is
/// escaped (it comes from the run directory); categories beyond the legend show as `?`.
pub fn tokens(
    title: &str,
    categories: &[String],
    rows: &[claimbench_paper::report::TokenRow],
) -> String {
    let mut h = String::from("<div class=\"tokens\">");
    h += &format!(
        "<p class=\"tokens-title\">{}</p><p class=\"legend\">",
        escape_html(title)
    );
    for (i, c) in categories.iter().enumerate() {
        h += &format!(
            "<span class=\"tok\" style=\"background:{}\">{}</span> ",
            tint(i),
            escape_html(c)
        );
    }
    h += "</p>";
    for r in rows {
        h += &format!(
            "<div class=\"tok-row\"><span class=\"tok-label\">{}</span><code class=\"tok-text\">",
            escape_html(&r.label)
        );
        for (text, cat) in &r.tokens {
            let name = categories.get(*cat).map_or("?", String::as_str);
            let bg = if *cat < categories.len() {
                tint(*cat)
            } else {
                "#ffffff".into()
            };
            h += &format!(
                "<span class=\"tok\" style=\"background:{bg}\" title=\"{}\">{}</span>",
                escape_html(name),
                escape_html(text)
            );
        }
        h += "</code></div>";
    }
    h + "</div>"
}

/// A scatter (`lines == false`) or line plot of the series, as an SVG document.
pub fn xy_plot(
    title: &str,
    x_label: &str,
    y_label: &str,
    series: &[Series],
    lines: bool,
) -> String {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (720, 360)).into_drawing_area();
        let _ = draw(&root, title, x_label, y_label, series, lines);
        let _ = root.present();
    }
    svg
}

fn draw(
    root: &DrawingArea<SVGBackend, plotters::coord::Shift>,
    title: &str,
    x_label: &str,
    y_label: &str,
    series: &[Series],
    lines: bool,
) -> Result<(), String> {
    let e = |err: &dyn std::fmt::Display| err.to_string();
    root.fill(&WHITE).map_err(|x| e(&x))?;
    let (x0, x1, y0, y1) = bounds(series);
    let mut chart = ChartBuilder::on(root)
        .caption(title, ("sans-serif", 18))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(64)
        .build_cartesian_2d(x0..x1, y0..y1)
        .map_err(|x| e(&x))?;
    chart
        .configure_mesh()
        .x_desc(x_label)
        .x_label_formatter(&|x| {
            if x.fract().abs() < 1e-9 {
                format!("{x:.0}")
            } else {
                format!("{x:.1}")
            }
        })
        .y_desc(y_label)
        .light_line_style(WHITE.mix(0.0))
        .draw()
        .map_err(|x| e(&x))?;
    for (i, s) in series.iter().enumerate() {
        let colour = COLOURS[i % COLOURS.len()];
        if lines {
            chart
                .draw_series(LineSeries::new(
                    s.points.iter().copied(),
                    colour.stroke_width(2),
                ))
                .map_err(|x| e(&x))?
                .label(s.label.as_str())
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 16, y)], colour.stroke_width(2))
                });
        } else {
            chart
                .draw_series(s.points.iter().map(|&p| Circle::new(p, 3, colour.filled())))
                .map_err(|x| e(&x))?
                .label(s.label.as_str())
                .legend(move |(x, y)| Circle::new((x + 8, y), 3, colour.filled()));
        }
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK.mix(0.3))
        .draw()
        .map_err(|x| e(&x))?;
    Ok(())
}

/// A point on a roofline plot.
pub struct RooflinePoint {
    /// Legend label.
    pub label: String,
    /// Arithmetic intensity, FLOP per byte.
    pub intensity: f64,
    /// Achieved rate, GFLOP/s.
    pub gflops: f64,
}

/// A log-log roofline: attainable GFLOP/s = min(peak GFLOP/s, intensity × peak GB/s), with the
/// measured points. Points with non-positive coordinates are left out.
pub fn roofline(title: &str, peak_gbps: f64, peak_gflops: f64, points: &[RooflinePoint]) -> String {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (720, 360)).into_drawing_area();
        let _ = draw_roofline(&root, title, peak_gbps, peak_gflops, points);
        let _ = root.present();
    }
    svg
}

fn draw_roofline(
    root: &DrawingArea<SVGBackend, plotters::coord::Shift>,
    title: &str,
    peak_gbps: f64,
    peak_gflops: f64,
    points: &[RooflinePoint],
) -> Result<(), String> {
    let e = |err: &dyn std::fmt::Display| err.to_string();
    root.fill(&WHITE).map_err(|x| e(&x))?;
    let pts: Vec<&RooflinePoint> = points
        .iter()
        .filter(|p| p.intensity > 0.0 && p.gflops > 0.0 && p.intensity.is_finite())
        .collect();
    let ridge = peak_gflops / peak_gbps;
    let x0 = pts
        .iter()
        .map(|p| p.intensity)
        .fold(ridge / 100.0, f64::min)
        / 2.0;
    let x1 = pts.iter().map(|p| p.intensity).fold(ridge * 10.0, f64::max) * 2.0;
    let y0 = pts.iter().map(|p| p.gflops).fold(x0 * peak_gbps, f64::min) / 2.0;
    let y1 = peak_gflops.max(pts.iter().map(|p| p.gflops).fold(0.0, f64::max)) * 2.0;
    let mut chart = ChartBuilder::on(root)
        .caption(title, ("sans-serif", 18))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(64)
        .build_cartesian_2d((x0..x1).log_scale(), (y0..y1).log_scale())
        .map_err(|x| e(&x))?;
    chart
        .configure_mesh()
        .x_desc("arithmetic intensity (FLOP/byte)")
        .y_desc("GFLOP/s")
        .x_label_formatter(&|x| format!("{x:.2e}"))
        .y_label_formatter(&|y| format!("{y:.2e}"))
        .light_line_style(WHITE.mix(0.0))
        .draw()
        .map_err(|x| e(&x))?;
    let roof: Vec<(f64, f64)> = (0..=64)
        .map(|i| {
            let x = x0 * (x1 / x0).powf(i as f64 / 64.0);
            (x, (x * peak_gbps).min(peak_gflops))
        })
        .collect();
    chart
        .draw_series(LineSeries::new(roof, BLACK.stroke_width(2)))
        .map_err(|x| e(&x))?
        .label(format!(
            "measured roof: {peak_gbps:.1} GB/s, {peak_gflops:.1} GFLOP/s"
        ))
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], BLACK.stroke_width(2)));
    for (i, p) in pts.iter().enumerate() {
        let colour = COLOURS[i % COLOURS.len()];
        chart
            .draw_series(std::iter::once(Circle::new(
                (p.intensity, p.gflops),
                4,
                colour.filled(),
            )))
            .map_err(|x| e(&x))?
            .label(p.label.as_str())
            .legend(move |(x, y)| Circle::new((x + 8, y), 4, colour.filled()));
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK.mix(0.3))
        .draw()
        .map_err(|x| e(&x))?;
    Ok(())
}

/// A probability heatmap of `values [rows, cols]` (row-major, each in `[0, 1]`) as an SVG
/// document: row `r` is drawn top to bottom, each cell shaded white → blue by its value and
/// labelled with it (two decimals); cells with `outlined[r·cols + c]` get a black border (e.g. the
/// pairs the preference data covers).
pub fn heatmap(
    title: &str,
    x_label: &str,
    y_label: &str,
    [rows, cols]: [usize; 2],
    values: &[f64],
    outlined: &[bool],
) -> String {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (360, 380)).into_drawing_area();
        let _ = draw_heatmap(
            &root,
            title,
            x_label,
            y_label,
            [rows, cols],
            values,
            outlined,
        );
        let _ = root.present();
    }
    svg
}

fn draw_heatmap(
    root: &DrawingArea<SVGBackend, plotters::coord::Shift>,
    title: &str,
    x_label: &str,
    y_label: &str,
    [rows, cols]: [usize; 2],
    values: &[f64],
    outlined: &[bool],
) -> Result<(), String> {
    let e = |err: &dyn std::fmt::Display| err.to_string();
    root.fill(&WHITE).map_err(|x| e(&x))?;
    let mut chart = ChartBuilder::on(root)
        .caption(title, ("sans-serif", 15))
        .margin(8)
        .x_label_area_size(34)
        .y_label_area_size(40)
        .build_cartesian_2d(-0.5..cols as f64 - 0.5, rows as f64 - 0.5..-0.5)
        .map_err(|x| e(&x))?;
    chart
        .configure_mesh()
        .disable_mesh()
        .x_desc(x_label)
        .y_desc(y_label)
        .x_labels(cols + 1)
        .y_labels(rows + 1)
        .x_label_formatter(&|x| cell_label(*x))
        .y_label_formatter(&|y| cell_label(*y))
        .draw()
        .map_err(|x| e(&x))?;
    let cells = (0..rows * cols).filter(|&i| i < values.len()).map(|i| {
        let (r, c) = ((i / cols) as f64, (i % cols) as f64);
        let v = values[i].clamp(0.0, 1.0);
        let shade = |full: u8| (255.0 - v * (255.0 - full as f64)) as u8;
        Rectangle::new(
            [(c - 0.5, r - 0.5), (c + 0.5, r + 0.5)],
            RGBColor(shade(0x1f), shade(0x77), shade(0xb4)).filled(),
        )
    });
    chart.draw_series(cells).map_err(|x| e(&x))?;
    let borders = (0..rows * cols)
        .filter(|&i| outlined.get(i).copied().unwrap_or(false))
        .map(|i| {
            let (r, c) = ((i / cols) as f64, (i % cols) as f64);
            Rectangle::new(
                [(c - 0.46, r - 0.46), (c + 0.46, r + 0.46)],
                BLACK.stroke_width(2),
            )
        });
    chart.draw_series(borders).map_err(|x| e(&x))?;
    let labels = (0..rows * cols).filter(|&i| i < values.len()).map(|i| {
        let (r, c) = ((i / cols) as f64, (i % cols) as f64);
        let colour = if values[i] > 0.55 { WHITE } else { BLACK };
        Text::new(
            format!("{:.2}", values[i]),
            (c - 0.38, r - 0.15),
            ("sans-serif", 10).into_font().color(&colour),
        )
    });
    chart.draw_series(labels).map_err(|x| e(&x))?;
    Ok(())
}

/// An axis label at integer positions (cell centres), none between them.
fn cell_label(x: f64) -> String {
    if (x - x.round()).abs() < 1e-6 {
        format!("{}", x.round() as i64)
    } else {
        String::new()
    }
}

/// A bar chart with interval whiskers and optional horizontal reference lines (label, value),
/// as an SVG document.
pub fn bars(title: &str, y_label: &str, bars: &[Bar], references: &[(String, f64)]) -> String {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (720, 360)).into_drawing_area();
        let _ = draw_bars(&root, title, y_label, bars, references);
        let _ = root.present();
    }
    svg
}

fn draw_bars(
    root: &DrawingArea<SVGBackend, plotters::coord::Shift>,
    title: &str,
    y_label: &str,
    bars: &[Bar],
    references: &[(String, f64)],
) -> Result<(), String> {
    let e = |err: &dyn std::fmt::Display| err.to_string();
    root.fill(&WHITE).map_err(|x| e(&x))?;
    let finite = |v: f64| if v.is_finite() { v } else { 0.0 };
    let top = bars
        .iter()
        .map(|b| finite(b.hi).max(finite(b.mean)))
        .chain(references.iter().map(|r| finite(r.1)))
        .fold(0.0f64, f64::max);
    let bottom = bars
        .iter()
        .map(|b| finite(b.lo).min(finite(b.mean)))
        .fold(0.0f64, f64::min);
    let pad = ((top - bottom) * 0.1).max(1e-9);
    // Headroom for the legend of the reference lines (upper right, about 17 px a line of the
    // ~270 px plot), so it never covers a bar.
    let legend = (references.len() as f64 * 17.0 + 12.0) / 270.0;
    let head = if references.is_empty() {
        pad
    } else {
        pad.max((top - bottom + pad) * legend.min(0.6) / (1.0 - legend.min(0.6)))
    };
    let n = bars.len().max(1);
    let mut chart = ChartBuilder::on(root)
        .caption(title, ("sans-serif", 18))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(64)
        .build_cartesian_2d(-0.5..n as f64 - 0.5, bottom - pad..top + head)
        .map_err(|x| e(&x))?;
    let labels: Vec<String> = bars.iter().map(|b| b.label.clone()).collect();
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(n)
        .x_label_formatter(&|x| {
            let i = x.round();
            if (x - i).abs() < 1e-6 && i >= 0.0 {
                labels.get(i as usize).cloned().unwrap_or_default()
            } else {
                String::new()
            }
        })
        .y_desc(y_label)
        .light_line_style(WHITE.mix(0.0))
        .draw()
        .map_err(|x| e(&x))?;
    for (i, b) in bars.iter().enumerate() {
        let x = i as f64;
        let colour = COLOURS[i % COLOURS.len()];
        chart
            .draw_series(std::iter::once(Rectangle::new(
                [(x - 0.32, 0.0), (x + 0.32, finite(b.mean))],
                colour.mix(0.8).filled(),
            )))
            .map_err(|x| e(&x))?;
        if b.lo.is_finite() && b.hi.is_finite() {
            let whisker = vec![
                vec![(x, b.lo), (x, b.hi)],
                vec![(x - 0.08, b.lo), (x + 0.08, b.lo)],
                vec![(x - 0.08, b.hi), (x + 0.08, b.hi)],
            ];
            chart
                .draw_series(
                    whisker
                        .into_iter()
                        .map(|p| PathElement::new(p, BLACK.stroke_width(2))),
                )
                .map_err(|x| e(&x))?;
        }
    }
    for (j, (label, value)) in references.iter().enumerate() {
        let colour = COLOURS[(bars.len() + j) % COLOURS.len()];
        chart
            .draw_series(LineSeries::new(
                vec![(-0.5, *value), (n as f64 - 0.5, *value)],
                colour.stroke_width(2),
            ))
            .map_err(|x| e(&x))?
            .label(label.as_str())
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 16, y)], colour.stroke_width(2))
            });
    }
    if !references.is_empty() {
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperRight)
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK.mix(0.3))
            .draw()
            .map_err(|x| e(&x))?;
    }
    Ok(())
}

mod forest;
pub use forest::{ForestRow, forest};

#[cfg(test)]
mod tests {
    use super::*;
    use claimbench_paper::report::TokenRow;

    /// Every piece is escaped and tinted by its category; an unknown category is white and `?`.
    #[test]
    fn tokens_escape_text_and_colour_by_category() {
        let html = tokens(
            "t<1>",
            &["expert 0".into(), "expert 1".into()],
            &[TokenRow {
                label: "en & de".into(),
                tokens: vec![
                    ("<script>".into(), 0),
                    (" \"x\"".into(), 1),
                    ("'".into(), 7),
                ],
            }],
        );
        assert!(!html.contains("<script>"), "{html}");
        assert!(html.contains("&lt;script&gt;") && html.contains("&quot;x&quot;"));
        assert!(html.contains("t&lt;1&gt;") && html.contains("en &amp; de"));
        assert!(html.contains(&format!("background:{}\" title=\"expert 0\"", tint(0))));
        assert!(html.contains(&format!("background:{}\" title=\"expert 1\"", tint(1))));
        assert!(html.contains("background:#ffffff\" title=\"?\">&#39;</span>"));
        assert_eq!(html.matches("<span class=\"tok\"").count(), 2 + 3);
    }
}
