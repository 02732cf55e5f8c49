//! What the report and the stored summary show of claims: verdict counts by kind
//! ([`KindCounts`]), readable numbers in place of JSON ([`value_text`]), and the per-claim card a
//! page renders ([`ClaimView`]).
//!
//! Invariant: reproductions are counted apart from checks and controls everywhere a count is
//! shown (issue 23): a check shows the code computes what the paper defines, a control that a
//! test has power, and neither is evidence that a finding holds.

use std::collections::BTreeMap;

use claimbench_claims::{Claim, ClaimKind, Fdr, Verdict, fmt_num};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Verdict counts of one kind of claim.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    /// `reproduced`.
    pub reproduced: usize,
    /// `partially`.
    pub partially: usize,
    /// `not-reproduced`.
    pub not_reproduced: usize,
    /// `inconclusive`.
    pub inconclusive: usize,
}

impl Counts {
    /// Adds one verdict.
    pub fn add(&mut self, v: Verdict) {
        match v {
            Verdict::Reproduced => self.reproduced += 1,
            Verdict::Partially => self.partially += 1,
            Verdict::NotReproduced => self.not_reproduced += 1,
            Verdict::Inconclusive => self.inconclusive += 1,
        }
    }

    /// All verdicts counted.
    pub fn total(&self) -> usize {
        self.reproduced + self.partially + self.not_reproduced + self.inconclusive
    }

    /// `"3 reproduced / 1 partially / 2 not reproduced / 4 inconclusive"`, empty parts kept so
    /// that columns line up.
    pub fn text(&self) -> String {
        format!(
            "{} reproduced / {} partially / {} not reproduced / {} inconclusive",
            self.reproduced, self.partially, self.not_reproduced, self.inconclusive
        )
    }

    /// For checks and controls: `"4 of 4 pass"` (a check or control passes when its verdict is
    /// `reproduced`), or `"none"`.
    pub fn pass_text(&self) -> String {
        if self.total() == 0 {
            "none".into()
        } else {
            format!("{} of {} pass", self.reproduced, self.total())
        }
    }
}

/// Verdict counts by kind of claim.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct KindCounts {
    /// Reproductions.
    pub reproduction: Counts,
    /// Checks.
    pub check: Counts,
    /// Controls.
    pub control: Counts,
}

impl KindCounts {
    /// Counts `claims`.
    pub fn of<'a>(claims: impl IntoIterator<Item = &'a Claim>) -> Self {
        let mut k = KindCounts::default();
        for c in claims {
            match c.kind {
                ClaimKind::Reproduction => k.reproduction.add(c.verdict),
                ClaimKind::Check => k.check.add(c.verdict),
                ClaimKind::Control => k.control.add(c.verdict),
            }
        }
        k
    }

    /// Counts per paper id, in id order.
    pub fn by_paper(claims: &[Claim]) -> BTreeMap<String, KindCounts> {
        let mut out: BTreeMap<String, KindCounts> = BTreeMap::new();
        for c in claims {
            let k = out.entry(c.paper.clone()).or_default();
            match c.kind {
                ClaimKind::Reproduction => k.reproduction.add(c.verdict),
                ClaimKind::Check => k.check.add(c.verdict),
                ClaimKind::Control => k.control.add(c.verdict),
            }
        }
        out
    }
}

/// A JSON value as a reader reads it: a number formatted ([`fmt_num`]), a string as is, an
/// array joined with `, `, an object as `key: value` rows (nested objects inline as
/// `key: value; ...`). The first element is the one-line text, the second the rows when the
/// value is an object (a small table on the page), else empty.
pub fn value_text(v: &Value) -> (String, Vec<(String, String)>) {
    fn inline(v: &Value) -> String {
        match v {
            Value::Null => "–".into(),
            Value::Bool(b) => b.to_string(),
            Value::Number(n) => n.as_f64().map_or_else(|| n.to_string(), fmt_num),
            Value::String(s) => s.clone(),
            Value::Array(a) => a.iter().map(inline).collect::<Vec<_>>().join(", "),
            Value::Object(o) => o
                .iter()
                .map(|(k, v)| format!("{}: {}", k.replace('_', " "), inline(v)))
                .collect::<Vec<_>>()
                .join("; "),
        }
    }
    match v {
        Value::Object(o) => {
            let rows: Vec<(String, String)> = o
                .iter()
                .map(|(k, v)| (k.replace('_', " "), inline(v)))
                .collect();
            (inline(v), rows)
        }
        other => (inline(other), Vec::new()),
    }
}

/// One claim as a card on a page: the claim and its numbers as text.
#[derive(Debug, Clone, Serialize)]
pub struct ClaimView {
    /// The claim as stored.
    pub claim: Claim,
    /// Element id of its card (`claim-` + the id with `/` as `-`).
    pub anchor: String,
    /// The paper's number, one line.
    pub paper_text: String,
    /// The paper's number as rows, when it is keyed (by rank, layer, arm).
    pub paper_rows: Vec<(String, String)>,
    /// Our estimate with its interval.
    pub ours_text: String,
    /// The band that counts as reproduced, with its measure.
    pub band_text: String,
    /// `p = …`, or `–`.
    pub p_text: String,
    /// `q = …`, or why there is none.
    pub q_text: String,
}

impl ClaimView {
    /// The card of `c`.
    pub fn new(c: &Claim) -> Self {
        let (paper_text, paper_rows) = value_text(&c.paper_value);
        let (ours, _) = value_text(&c.our_value);
        let ours_text = match c.ci {
            Some([lo, hi]) => format!("{ours} [{}, {}]", fmt_num(lo), fmt_num(hi)),
            None => ours,
        };
        let band_text = c.band.as_ref().map_or_else(
            || "not stated (a version 1 file)".into(),
            |b| format!("{} in {}", b.measure, b.interval_text()),
        );
        let p_text = c.p_value.map_or("–".into(), fmt_num);
        let q_text = match (c.kind, c.q_value) {
            (_, Some(q)) => fmt_num(q),
            (ClaimKind::Reproduction, None) => "– (no p-value)".into(),
            (ClaimKind::Check, None) => "– (a check)".into(),
            (ClaimKind::Control, None) => "– (a control)".into(),
        };
        ClaimView {
            claim: c.clone(),
            anchor: format!("claim-{}", c.id.replace('/', "-")),
            paper_text,
            paper_rows,
            ours_text,
            band_text,
            p_text,
            q_text,
        }
    }
}

/// How the run's q-values were formed, for the method note: `"Benjamini–Hochberg at 0.05 over
/// 42 reproduction claims of continual, dora"`.
pub fn fdr_text(fdr: Option<&Fdr>, all_papers: &[&str]) -> String {
    match fdr {
        None => "no false-discovery control was recorded (a version 1 claims.json)".into(),
        Some(f) => {
            let method = if f.method == "BH" {
                "Benjamini–Hochberg"
            } else {
                f.method.as_str()
            };
            let mut s = format!(
                "{method} at {} over {} reproduction claims of {}",
                fmt_num(f.alpha),
                f.family_size,
                if f.papers.is_empty() {
                    "no paper".to_string()
                } else {
                    f.papers.join(", ")
                }
            );
            let missing: Vec<&str> = all_papers
                .iter()
                .copied()
                .filter(|p| !f.papers.iter().any(|q| q == p))
                .collect();
            if !missing.is_empty() {
                s += &format!(
                    " (a smaller family than a run of every paper: {} not selected or without \
                     reproduction claims)",
                    missing.join(", ")
                );
            }
            s
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn values_read_as_text_not_json() {
        let (t, rows) = value_text(&json!({"0%": 2.44, "lora_7b": [39.5, 40.7], "x": {"a": 1}}));
        assert!(!t.contains('{') && !t.contains('"'), "{t}");
        assert_eq!(rows[0], ("0%".into(), "2.44".into()));
        assert_eq!(rows[1], ("lora 7b".into(), "39.5, 40.7".into()));
        assert_eq!(rows[2], ("x".into(), "a: 1".into()));
        assert_eq!(value_text(&json!(46702792704u64)).0, "46702792704");
        assert_eq!(value_text(&json!("no difference")).0, "no difference");
        assert_eq!(value_text(&Value::Null).0, "–");
    }

    #[test]
    fn counts_keep_kinds_apart() {
        let mut k = KindCounts::default();
        k.reproduction.add(Verdict::Reproduced);
        k.reproduction.add(Verdict::Inconclusive);
        k.check.add(Verdict::Reproduced);
        assert_eq!(k.reproduction.total(), 2);
        assert_eq!(
            k.reproduction.text(),
            "1 reproduced / 0 partially / 0 not reproduced / 1 inconclusive"
        );
        assert_eq!(k.check.pass_text(), "1 of 1 pass");
        assert_eq!(k.control.pass_text(), "none");
    }

    #[test]
    fn the_fdr_note_names_a_smaller_family() {
        let f = Fdr {
            method: "BH".into(),
            alpha: 0.05,
            family_size: 12,
            papers: vec!["dora".into()],
        };
        let t = fdr_text(Some(&f), &["dora", "mixtral"]);
        assert!(t.starts_with("Benjamini–Hochberg at 0.05 over 12 reproduction claims of dora"));
        assert!(t.contains("smaller family") && t.contains("mixtral"), "{t}");
        assert!(!fdr_text(Some(&f), &["dora"]).contains("smaller"));
    }
}
