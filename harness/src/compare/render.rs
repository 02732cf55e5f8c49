//! How a [`Comparison`] is shown: the terminal table and text, the one-line summary, the
//! Markdown for a pull request, JUnit XML for CI, and the files `compare --out` writes.

use super::*;

fn pct(r: f64) -> String {
    format!("{:+.1}%", (r - 1.0) * 100.0)
}

fn verdict_name(v: Option<Verdict>) -> &'static str {
    v.map(|v| v.as_str()).unwrap_or("absent")
}

/// The terminal table: one row per series, worst first.
pub fn table(c: &Comparison) -> String {
    let mut t = comfy_table::Table::new();
    t.load_preset(comfy_table::presets::UTF8_BORDERS_ONLY);
    t.set_header(vec![
        "series", "base med", "head med", "change", "95% CI", "p", "q", "min eff", "verdict",
    ]);
    for s in &c.series {
        let st = &s.stats;
        t.add_row(vec![
            s.key.label(),
            format!("{:.4}", st.base_median),
            format!("{:.4}", st.head_median),
            pct(st.ratio),
            format!("[{}, {}]", pct(st.ratio_ci[0]), pct(st.ratio_ci[1])),
            format!("{:.3}", st.p_value),
            format!("{:.3}", st.q_value),
            format!("{:.0}%", st.min_effect * 100.0),
            s.verdict().to_uppercase(),
        ]);
    }
    t.to_string()
}

/// Everything to print: warnings, the table, claims, failures and a one-line summary.
pub fn text(c: &Comparison) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "base: {}\nhead: {}", c.base, c.head);
    for n in &c.notes {
        let _ = writeln!(s, "!! {n}");
    }
    for d in &c.env {
        let _ = writeln!(
            s,
            "{} environment differs, {}: {} -> {}",
            if d.blocking { "!!" } else { "warning:" },
            d.field,
            d.base,
            d.head
        );
    }
    if !c.series.is_empty() {
        let _ = writeln!(s, "{}", table(c));
    }
    for k in &c.missing {
        let _ = writeln!(s, "missing in head: {}", k.label());
    }
    for k in &c.new {
        let _ = writeln!(s, "new in head (no base to compare): {}", k.label());
    }
    for cl in &c.claims {
        let _ = writeln!(
            s,
            "claim {}: {} -> {}{}",
            cl.id,
            verdict_name(cl.base),
            verdict_name(cl.head),
            if cl.regression {
                "  REGRESSION OF THE SCIENCE"
            } else {
                ""
            }
        );
    }
    for (u, m) in &c.correctness_failures {
        let _ = writeln!(s, "CORRECTNESS FAILURE in head unit {u}: {m}");
    }
    for (u, m) in &c.errors {
        let _ = writeln!(s, "ERROR in head unit {u}: {m}");
    }
    for r in c.series.iter().filter(|r| r.suspect.is_some()) {
        let _ = writeln!(
            s,
            "suspect measurement {}: {}",
            r.key.label(),
            r.suspect.as_deref().unwrap_or_default()
        );
    }
    let _ = writeln!(s, "{}", summary(c));
    s
}

/// One line: counts per verdict and the exit code.
pub fn summary(c: &Comparison) -> String {
    format!(
        "{} series: {} regression, {} improvement, {} suspect, {} no change, {} inconclusive (BH FDR {:.0}%); {} claim regression(s); {} correctness failure(s); exit {}",
        c.series.len(),
        c.count("regression"),
        c.count("improvement"),
        c.count("suspect"),
        c.count("no change"),
        c.count("inconclusive"),
        c.alpha * 100.0,
        c.claims.iter().filter(|x| x.regression).count(),
        c.correctness_failures.len(),
        c.exit as u8
    )
}

/// The Markdown summary, for a pull-request comment.
pub fn markdown(c: &Comparison) -> String {
    let mut s = String::new();
    let headline = match c.exit {
        Exit::Ok => "✅ no regression",
        Exit::Regression => "❌ performance regression",
        Exit::Correctness => "❌ correctness failure or claim regression",
        Exit::Inconclusive => "⚠️ inconclusive",
        Exit::Input => "❌ a head unit stopped with an error",
    };
    let _ = writeln!(s, "## claimbench compare: {headline}\n");
    let _ = writeln!(s, "Base: {}  \nHead: {}\n", c.base, c.head);
    let _ = writeln!(s, "{}\n", summary(c));
    if !c.env.is_empty() || !c.notes.is_empty() {
        let _ = writeln!(s, "> [!WARNING]");
        for n in &c.notes {
            let _ = writeln!(s, "> {n}  ");
        }
        for d in &c.env {
            let _ = writeln!(s, "> {} differs: `{}` → `{}`  ", d.field, d.base, d.head);
        }
        let _ = writeln!(s);
    }
    let row = |s: &mut String, r: &SeriesRow| {
        let st = &r.stats;
        let _ = writeln!(
            s,
            "| `{}` | {:.4} | {:.4} | {} | [{}, {}] | {:.3} | {:.3} | {:.0}% | **{}** |",
            r.key.label(),
            st.base_median,
            st.head_median,
            pct(st.ratio),
            pct(st.ratio_ci[0]),
            pct(st.ratio_ci[1]),
            st.p_value,
            st.q_value,
            st.min_effect * 100.0,
            r.verdict()
        );
    };
    let header = "| series | base median | head median | change | 95% CI | p | q (BH) | min effect | verdict |\n|---|---:|---:|---:|---|---:|---:|---:|---|\n";
    let notable: Vec<&SeriesRow> = c
        .series
        .iter()
        .filter(|r| r.verdict() != "no change")
        .collect();
    if !notable.is_empty() {
        s.push_str(header);
        for r in &notable {
            row(&mut s, r);
        }
        s.push('\n');
    }
    if !c.series.is_empty() {
        let _ = writeln!(
            s,
            "<details><summary>All {} series</summary>\n",
            c.series.len()
        );
        s.push_str(header);
        for r in &c.series {
            row(&mut s, r);
        }
        let _ = writeln!(s, "\n</details>\n");
    }
    for cl in &c.claims {
        let _ = writeln!(
            s,
            "- claim `{}`: {} → {}{}",
            cl.id,
            verdict_name(cl.base),
            verdict_name(cl.head),
            if cl.regression {
                " — **no longer reproduced**"
            } else {
                ""
            }
        );
    }
    for (u, m) in &c.correctness_failures {
        let _ = writeln!(s, "- **correctness failure** `{u}`: {m}");
    }
    for k in &c.missing {
        let _ = writeln!(s, "- missing in head: `{}`", k.label());
    }
    for k in &c.new {
        let _ = writeln!(s, "- new in head: `{}`", k.label());
    }
    s
}

/// JUnit XML: one test case per series, claim and failed unit (regressions and correctness
/// failures fail; inconclusive series are skipped).
pub fn junit(c: &Comparison) -> Result<String> {
    use quick_xml::Writer;
    use quick_xml::events::{BytesDecl, BytesEnd, BytesStart, BytesText, Event};
    let mut w = Writer::new_with_indent(Vec::new(), b' ', 2);
    let failures = c.count("regression")
        + c.claims.iter().filter(|x| x.regression).count()
        + c.correctness_failures.len()
        + c.errors.len();
    let tests = c.series.len() + c.claims.len() + c.correctness_failures.len() + c.errors.len();
    let skipped = c.count("inconclusive");
    w.write_event(Event::Decl(BytesDecl::new("1.0", Some("UTF-8"), None)))?;
    let mut suite = BytesStart::new("testsuite");
    suite.push_attribute(("name", "claimbench compare"));
    suite.push_attribute(("tests", tests.to_string().as_str()));
    suite.push_attribute(("failures", failures.to_string().as_str()));
    suite.push_attribute(("skipped", skipped.to_string().as_str()));
    w.write_event(Event::Start(suite))?;
    let case = |w: &mut Writer<Vec<u8>>,
                class: &str,
                name: &str,
                outcome: Option<(&str, String)>|
     -> Result<()> {
        let mut tc = BytesStart::new("testcase");
        tc.push_attribute(("classname", class));
        tc.push_attribute(("name", name));
        match outcome {
            None => w.write_event(Event::Empty(tc))?,
            Some((tag, msg)) => {
                w.write_event(Event::Start(tc))?;
                let mut el = BytesStart::new(tag);
                el.push_attribute(("message", msg.as_str()));
                w.write_event(Event::Start(el))?;
                w.write_event(Event::Text(BytesText::new(&msg)))?;
                w.write_event(Event::End(BytesEnd::new(tag)))?;
                w.write_event(Event::End(BytesEnd::new("testcase")))?;
            }
        }
        Ok(())
    };
    for r in &c.series {
        let st = &r.stats;
        let msg = format!(
            "{}: {} [{}, {}], p {:.3}, q {:.3}; {}",
            r.verdict(),
            pct(st.ratio),
            pct(st.ratio_ci[0]),
            pct(st.ratio_ci[1]),
            st.p_value,
            st.q_value,
            st.reason
        );
        let outcome = match r.verdict() {
            "regression" => Some(("failure", msg)),
            "inconclusive" => Some(("skipped", msg)),
            _ => None,
        };
        case(&mut w, &r.key.kernel, &r.key.label(), outcome)?;
    }
    for cl in &c.claims {
        let msg = format!("{} -> {}", verdict_name(cl.base), verdict_name(cl.head));
        case(
            &mut w,
            "claims",
            &cl.id,
            cl.regression.then_some(("failure", msg)),
        )?;
    }
    for (u, m) in c.correctness_failures.iter().chain(&c.errors) {
        case(&mut w, "units", u, Some(("failure", m.clone())))?;
    }
    w.write_event(Event::End(BytesEnd::new("testsuite")))?;
    String::from_utf8(w.into_inner()).context("JUnit XML is UTF-8")
}

/// Writes `compare.md`, `compare.xml` (JUnit) and `compare.json` into `dir`; returns their paths.
pub fn write_outputs(c: &Comparison, dir: &Path) -> Result<Vec<PathBuf>> {
    let md = dir.join("compare.md");
    let xml = dir.join("compare.xml");
    let json = dir.join("compare.json");
    write_atomic(&md, markdown(c).as_bytes())?;
    write_atomic(&xml, junit(c)?.as_bytes())?;
    write_json(&json, c)?;
    Ok(vec![md, xml, json])
}
