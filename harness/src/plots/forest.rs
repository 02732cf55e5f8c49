//! The forest plot of a paper page: every claim's estimate with its interval, drawn against the
//! band that counts as reproduced. Claims measure different things, so each row has its own
//! horizontal scale (its band, interval and estimate, padded); the row says its range.

use plotters::prelude::*;

/// One row: a claim's estimate, interval and band.
#[derive(Debug, Clone)]
pub struct ForestRow {
    /// Claim id (without the paper prefix).
    pub label: String,
    /// Our estimate.
    pub estimate: f64,
    /// Its interval, if any.
    pub ci: Option<[f64; 2]>,
    /// The band that counts as reproduced; `None` is unbounded.
    pub band: [Option<f64>; 2],
    /// The verdict's name (`reproduced`, ...), which colours the estimate.
    pub verdict: String,
}

const ROW: i32 = 30;
const LABEL_W: i32 = 330;
const WIDTH: i32 = 900;

/// The forest plot of `rows` as an SVG document (a single empty row when `rows` is empty).
pub fn forest(title: &str, rows: &[ForestRow]) -> String {
    let mut svg = String::new();
    {
        let h = 56 + ROW * rows.len().max(1) as i32 + 24;
        let root = SVGBackend::with_string(&mut svg, (WIDTH as u32, h as u32)).into_drawing_area();
        let _ = draw(&root, title, rows);
        let _ = root.present();
    }
    svg
}

fn range(r: &ForestRow) -> (f64, f64) {
    let mut xs = vec![r.estimate];
    if let Some([lo, hi]) = r.ci {
        xs.extend([lo, hi]);
    }
    xs.extend(r.band.iter().flatten().copied());
    let xs: Vec<f64> = xs.into_iter().filter(|x| x.is_finite()).collect();
    let (mut lo, mut hi) = xs
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &x| {
            (a.min(x), b.max(x))
        });
    if !lo.is_finite() {
        return (-1.0, 1.0);
    }
    let span = (hi - lo).max(lo.abs().max(hi.abs()) * 0.1).max(1e-9);
    // An open end of the band reaches past the data, so the reader sees it continue.
    if r.band[0].is_none() {
        lo -= span * 0.3;
    }
    if r.band[1].is_none() {
        hi += span * 0.3;
    }
    (lo - span * 0.08, hi + span * 0.08)
}

fn colour(verdict: &str) -> RGBColor {
    match verdict {
        "reproduced" => RGBColor(0x13, 0x73, 0x33),
        "not-reproduced" => RGBColor(0xb4, 0x23, 0x18),
        _ => RGBColor(0xb5, 0x47, 0x08),
    }
}

fn short(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        let t: String = s.chars().take(n - 1).collect();
        format!("{t}…")
    }
}

fn draw(
    root: &DrawingArea<SVGBackend, plotters::coord::Shift>,
    title: &str,
    rows: &[ForestRow],
) -> Result<(), String> {
    let e = |err: &dyn std::fmt::Display| err.to_string();
    root.fill(&WHITE).map_err(|x| e(&x))?;
    let text = |s: &str, x: i32, y: i32, size: i32, c: RGBColor| {
        Text::new(
            s.to_string(),
            (x, y),
            ("sans-serif", size).into_font().color(&c),
        )
    };
    let grey = RGBColor(0x66, 0x70, 0x85);
    root.draw(&text(title, 12, 10, 17, BLACK))
        .map_err(|x| e(&x))?;
    root.draw(&text(
        "green: the band that counts as reproduced; line: our interval; dot: our estimate \
         (coloured by verdict). Each row has its own scale, from its left to its right value.",
        12,
        34,
        11,
        grey,
    ))
    .map_err(|x| e(&x))?;
    let (x0, x1) = (LABEL_W + 60, WIDTH - 70);
    for (i, r) in rows.iter().enumerate() {
        let y = 56 + ROW * i as i32 + ROW / 2;
        let (lo, hi) = range(r);
        let px = |v: f64| x0 + ((v - lo) / (hi - lo) * f64::from(x1 - x0)).round() as i32;
        let clip = |v: f64| px(v.clamp(lo, hi));
        root.draw(&text(&short(&r.label, 46), 12, y - 7, 12, BLACK))
            .map_err(|x| e(&x))?;
        let band_lo = r.band[0].map_or(x0, clip);
        let band_hi = r.band[1].map_or(x1, clip);
        if band_hi > band_lo {
            root.draw(&Rectangle::new(
                [(band_lo, y - 9), (band_hi, y + 9)],
                RGBColor(0x2c, 0xa0, 0x2c).mix(0.22).filled(),
            ))
            .map_err(|x| e(&x))?;
        }
        root.draw(&PathElement::new(vec![(x0, y), (x1, y)], grey.mix(0.35)))
            .map_err(|x| e(&x))?;
        if let Some([a, b]) = r.ci.filter(|c| c[0].is_finite() && c[1].is_finite()) {
            let (a, b) = (clip(a), clip(b));
            for p in [
                vec![(a, y), (b, y)],
                vec![(a, y - 5), (a, y + 5)],
                vec![(b, y - 5), (b, y + 5)],
            ] {
                root.draw(&PathElement::new(p, BLACK.stroke_width(2)))
                    .map_err(|x| e(&x))?;
            }
        }
        if r.estimate.is_finite() {
            root.draw(&Circle::new(
                (clip(r.estimate), y),
                5,
                colour(&r.verdict).filled(),
            ))
            .map_err(|x| e(&x))?;
        }
        let num = claimbench_claims::fmt_num;
        root.draw(&text(&num(lo), LABEL_W, y - 6, 10, grey))
            .map_err(|x| e(&x))?;
        root.draw(&text(&num(hi), x1 + 6, y - 6, 10, grey))
            .map_err(|x| e(&x))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_row_per_claim_with_band_interval_and_estimate() {
        let rows = vec![
            ForestRow {
                label: "moe-beats-dense".into(),
                estimate: -0.2,
                ci: Some([-0.3, -0.1]),
                band: [None, Some(0.0)],
                verdict: "reproduced".into(),
            },
            ForestRow {
                label: "repeat-ratio".into(),
                estimate: 1.1,
                ci: None,
                band: [Some(1.7), Some(2.5)],
                verdict: "not-reproduced".into(),
            },
        ];
        let svg = forest("Claims", &rows);
        assert!(svg.starts_with("<svg"));
        assert!(svg.contains("moe-beats-dense") && svg.contains("repeat-ratio"));
        assert_eq!(svg.matches("<circle").count(), 2);
        // The estimate outside its band sits left of the band's rectangle.
        let (lo, hi) = range(&rows[1]);
        assert!(lo < 1.1 && hi > 2.5);
        assert_eq!(forest("x", &rows), svg, "deterministic");
    }
}
