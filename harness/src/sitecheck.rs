//! Checks a rendered report site the way a reader meets it: every page opened in headless
//! Chromium (Debian `chromium`) from `file://`, with no network.
//!
//! - Links: every `href`/`src` of every page resolves to a file of the site (and an `#id` to an
//!   element of the target page); resources (`src`, stylesheets) must be local, no CDN.
//! - Plots: every `<figure>` holds an inline `<svg>` or a block of coloured tokens
//!   (`<div class="tokens">`, Figure::Tokens), in the source and in the DOM Chromium built.
//! - Console: the pages carry no script of their own beyond a load check that logs an error for a
//!   stylesheet or image that failed to load, for a page wider than the 1280 px window (it would
//!   scroll sideways) and for a table cell showing a raw JSON object, so *any* console message is
//!   a problem.
//!
//! The browser is `$CLAIMBENCH_BROWSER`, else the first of `chromium`, `chromium-browser`,
//! `google-chrome` on `PATH`.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result};
use regex::Regex;

/// What a check found.
#[derive(Clone, Debug, Default)]
pub struct SiteReport {
    /// Pages checked.
    pub pages: usize,
    /// Links and resources checked.
    pub links: usize,
    /// Plots found.
    pub plots: usize,
    /// Whether pages were opened in a browser (false: static checks only).
    pub browser: Option<String>,
    /// Problems, each naming its page.
    pub problems: Vec<String>,
}

/// The browser to use, if one is installed.
pub fn find_browser() -> Option<PathBuf> {
    if let Ok(b) = std::env::var("CLAIMBENCH_BROWSER") {
        return Some(PathBuf::from(b));
    }
    let path = std::env::var_os("PATH")?;
    for name in ["chromium", "chromium-browser", "google-chrome"] {
        for dir in std::env::split_paths(&path) {
            let p = dir.join(name);
            if p.is_file() {
                return Some(p);
            }
        }
    }
    None
}

fn html_files(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = walkdir::WalkDir::new(dir)
        .sort_by_file_name()
        .into_iter()
        .filter_map(|e| e.ok())
        .map(|e| e.into_path())
        .filter(|p| p.extension().is_some_and(|e| e == "html"))
        .collect();
    v.sort();
    v
}

/// Decodes the character references an attribute value may hold (minijinja's autoescape writes
/// `&#x2f;` for `/`, `&amp;` for `&`, ...), as a browser does before resolving the URL.
fn decode_attr(v: &str) -> String {
    let re = Regex::new(r"&(#x[0-9a-fA-F]+|#[0-9]+|amp|lt|gt|quot|apos);").expect("valid regex");
    re.replace_all(v, |c: &regex::Captures| {
        let e = &c[1];
        let ch = match e {
            "amp" => Some('&'),
            "lt" => Some('<'),
            "gt" => Some('>'),
            "quot" => Some('"'),
            "apos" => Some('\''),
            _ if e.starts_with("#x") => u32::from_str_radix(&e[2..], 16)
                .ok()
                .and_then(char::from_u32),
            _ => e[1..].parse().ok().and_then(char::from_u32),
        };
        ch.map(String::from).unwrap_or_else(|| c[0].to_string())
    })
    .into_owned()
}

/// Number of `<figure>` elements of `html` without an `<svg>` or a token block inside, and the
/// number with one.
fn figures(html: &str) -> (usize, usize) {
    let re = Regex::new(r"(?s)<figure\b.*?</figure>").expect("valid regex");
    let (mut empty, mut full) = (0, 0);
    for m in re.find_iter(html) {
        if m.as_str().contains("<svg") || m.as_str().contains("<div class=\"tokens\">") {
            full += 1;
        } else {
            empty += 1;
        }
    }
    (empty, full)
}

/// Checks the site rooted at `dir` (holding `index.html`); opens each page in `browser` when
/// given. Errors only when the site cannot be read or the browser cannot be started.
pub fn check(dir: &Path, browser: Option<&Path>) -> Result<SiteReport> {
    let attr = Regex::new(r#"(?:href|src)\s*=\s*"([^"]*)""#).expect("valid regex");
    let resource = Regex::new(
        r#"<(?:img|script|link|iframe|source)\b[^>]*?(?:href|src)\s*=\s*"(?:https?:)?//"#,
    )
    .expect("valid regex");
    let mut r = SiteReport {
        browser: browser.map(|b| b.display().to_string()),
        ..Default::default()
    };
    if !dir.join("index.html").is_file() {
        r.problems.push(format!("{}: no index.html", dir.display()));
        return Ok(r);
    }
    for page in html_files(dir) {
        r.pages += 1;
        let name = page
            .strip_prefix(dir)
            .unwrap_or(&page)
            .display()
            .to_string();
        let html = std::fs::read_to_string(&page)
            .with_context(|| format!("reading {}", page.display()))?;
        if resource.is_match(&html) {
            r.problems.push(format!(
                "{name}: loads a resource from the network (the site must work offline)"
            ));
        }
        for cap in attr.captures_iter(&html) {
            let decoded = decode_attr(&cap[1]);
            let target = decoded.as_str();
            if target.starts_with("http://")
                || target.starts_with("https://")
                || target.starts_with("mailto:")
            {
                continue; // an outbound link a reader may follow; not needed to render
            }
            r.links += 1;
            let (path, frag) = match target.split_once('#') {
                Some((p, f)) => (p, Some(f)),
                None => (target, None),
            };
            let path = path.split('?').next().unwrap_or("");
            let file = if path.is_empty() {
                page.clone()
            } else {
                page.parent().unwrap_or(dir).join(path)
            };
            if !file.is_file() {
                r.problems.push(format!(
                    "{name}: broken link {target:?} (no file {})",
                    file.display()
                ));
                continue;
            }
            if let Some(f) = frag.filter(|f| !f.is_empty())
                && file.extension().is_some_and(|e| e == "html")
            {
                let text = std::fs::read_to_string(&file).unwrap_or_default();
                if !text.contains(&format!("id=\"{f}\"")) {
                    r.problems
                        .push(format!("{name}: link {target:?} names no element id {f:?}"));
                }
            }
        }
        let (empty, full) = figures(&html);
        r.plots += full;
        if empty > 0 {
            r.problems
                .push(format!("{name}: {empty} figure(s) without a plot"));
        }
        if let Some(b) = browser {
            open_in_browser(b, &page, &name, full, &mut r.problems)?;
        }
    }
    Ok(r)
}

/// Opens `page` headless, dumps the DOM and collects console messages.
fn open_in_browser(
    browser: &Path,
    page: &Path,
    name: &str,
    plots: usize,
    problems: &mut Vec<String>,
) -> Result<()> {
    let abs =
        std::fs::canonicalize(page).with_context(|| format!("resolving {}", page.display()))?;
    let profile = tempfile::tempdir().context("creating a browser profile directory")?;
    let out = Command::new("timeout")
        .arg("120")
        .arg(browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--disable-extensions",
            "--enable-logging=stderr",
            "--v=0",
            "--virtual-time-budget=5000",
            // The width the pages are checked at: nothing may scroll sideways (base.html).
            "--window-size=1280,900",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg("--dump-dom")
        .arg(format!("file://{}", abs.display()))
        .output()
        .with_context(|| format!("starting {}", browser.display()))?;
    if !out.status.success() {
        problems.push(format!(
            "{name}: {} exited with {} ({})",
            browser.display(),
            out.status,
            String::from_utf8_lossy(&out.stderr)
                .lines()
                .last()
                .unwrap_or_default()
        ));
        return Ok(());
    }
    let stderr = String::from_utf8_lossy(&out.stderr);
    for line in stderr.lines().filter(|l| l.contains(":CONSOLE")) {
        let msg = line.split_once("] ").map(|x| x.1).unwrap_or(line);
        problems.push(format!("{name}: console: {msg}"));
    }
    let dom = String::from_utf8_lossy(&out.stdout);
    if !dom.contains("</html>") {
        problems.push(format!("{name}: the browser returned no document"));
    }
    let (_, in_dom) = figures(&dom);
    if in_dom != plots {
        problems.push(format!(
            "{name}: {plots} plot(s) in the file but {in_dom} in the DOM the browser built"
        ));
    }
    Ok(())
}
