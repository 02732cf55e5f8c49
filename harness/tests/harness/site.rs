//! The report site end to end: rendered from fixture runs, every page opened in headless
//! Chromium (no console messages, no broken links, every plot present), identical HTML for the
//! same inputs, and a negative control showing the checker catches a broken page.
//! Without a browser the static checks still run; `CLAIMBENCH_REQUIRE_BROWSER=1` (set by
//! `.ci/run`) makes a missing browser a failure.

use claimbench::sitecheck;

use crate::fixtures::{Spec, write_run};

fn browser() -> Option<std::path::PathBuf> {
    let b = sitecheck::find_browser();
    if b.is_none() {
        assert!(
            std::env::var("CLAIMBENCH_REQUIRE_BROWSER").as_deref() != Ok("1"),
            "CLAIMBENCH_REQUIRE_BROWSER=1 but no chromium found (apt-get install chromium)"
        );
        eprintln!("no chromium: static site checks only");
    }
    b
}

fn read_all_html(dir: &std::path::Path) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = walkdir::WalkDir::new(dir)
        .into_iter()
        .filter_map(|e| e.ok())
        .filter(|e| e.path().extension().is_some_and(|x| x == "html"))
        .map(|e| {
            (
                e.path().strip_prefix(dir).unwrap().display().to_string(),
                std::fs::read_to_string(e.path()).unwrap(),
            )
        })
        .collect();
    v.sort();
    v
}

#[test]
fn every_page_opens_cleanly_and_renders_identically() {
    let tmp = tempfile::tempdir().unwrap();
    // Two runs side by side, so the history page has a series with two points.
    write_run(tmp.path(), &Spec::default());
    let head = write_run(
        tmp.path(),
        &Spec {
            run_id: "head",
            started: "2026-11-28T00:00:00+00:00",
            seed: 3,
            ..Spec::default()
        },
    );
    let index =
        claimbench::report::render(&head, &claimbench::registry::Registry::default()).unwrap();
    let site = index.parent().unwrap().to_path_buf();
    let first = read_all_html(&site);
    let names: Vec<&str> = first.iter().map(|(n, _)| n.as_str()).collect();
    for want in [
        "index.html",
        "environment.html",
        "history.html",
        "kernels/token-logprob.html",
        "papers/mixtral.html",
        "papers/dora.html",
    ] {
        assert!(names.contains(&want), "{want} missing from {names:?}");
    }
    for f in [
        "metrics.csv",
        "metrics.parquet",
        "benchmarks.json",
        "claims.json",
        "manifest.json",
    ] {
        assert!(site.join("data").join(f).is_file(), "download {f} missing");
    }
    let idx = &first.iter().find(|(n, _)| n == "index.html").unwrap().1;
    // (minijinja escapes `/` in HTML, so look for the id's tail.)
    assert!(idx.contains("moe-beats-dense") && idx.contains("scaled-down proxy"));
    let kernel = &first
        .iter()
        .find(|(n, _)| n == "kernels/token-logprob.html")
        .unwrap()
        .1;
    assert!(kernel.contains("Roofline") && kernel.contains("of the measured bandwidth floor"));

    // Same inputs, same bytes.
    claimbench::report::render(&head, &claimbench::registry::Registry::default()).unwrap();
    assert_eq!(first, read_all_html(&site), "a second render differs");

    let b = browser();
    let r = sitecheck::check(&site, b.as_deref()).unwrap();
    assert!(r.problems.is_empty(), "site problems: {:#?}", r.problems);
    assert!(
        r.pages >= 6 && r.links > 20,
        "{} pages, {} links",
        r.pages,
        r.links
    );
    // Per bench: one timing plot; the kernel page's roofline; history: one plot per series.
    assert!(r.plots >= 2 + 1 + 4, "{} plots", r.plots);
}

#[test]
fn the_checker_catches_a_broken_page() {
    let tmp = tempfile::tempdir().unwrap();
    let site = tmp.path();
    std::fs::write(
        site.join("index.html"),
        r##"<!doctype html><html><head><link rel="stylesheet" href="https://cdn.example/x.css"></head><body>
<a href="missing.html">x</a> <a href="other.html#nowhere">y</a>
<figure><figcaption>a plot that is not there</figcaption></figure>
<script>console.error("boom")</script></body></html>"##,
    )
    .unwrap();
    std::fs::write(
        site.join("other.html"),
        "<!doctype html><html><body></body></html>",
    )
    .unwrap();
    let b = browser();
    let r = sitecheck::check(site, b.as_deref()).unwrap();
    let all = r.problems.join("\n");
    assert!(all.contains("broken link \"missing.html\""), "{all}");
    assert!(all.contains("names no element id \"nowhere\""), "{all}");
    assert!(all.contains("figure(s) without a plot"), "{all}");
    assert!(all.contains("from the network"), "{all}");
    if b.is_some() {
        assert!(all.contains("console: \"boom\""), "{all}");
    }
}

#[test]
fn a_page_that_scrolls_sideways_or_shows_raw_json_is_caught() {
    let Some(b) = browser() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let run = write_run(tmp.path(), &Spec::default());
    let index =
        claimbench::report::render(&run, &claimbench::registry::Registry::default()).unwrap();
    let site = index.parent().unwrap().to_path_buf();
    let clean = sitecheck::check(&site, Some(&b)).unwrap();
    assert!(clean.problems.is_empty(), "{:#?}", clean.problems);
    // The same page with a 3000 px wide block and a cell holding a JSON object.
    let page = site.join("papers/mixtral.html");
    let html = std::fs::read_to_string(&page).unwrap().replace(
        "<h2 id=\"claims\">",
        "<div style=\"width:3000px\">wide</div><table><tr><td>{\"0%\": 2.44}</td></tr></table><h2 id=\"claims\">",
    );
    std::fs::write(&page, html).unwrap();
    let r = sitecheck::check(&site, Some(&b)).unwrap();
    let all = r.problems.join("\n");
    assert!(all.contains("scrolls sideways"), "{all}");
    assert!(all.contains("raw JSON"), "{all}");
}
