//! `claimbench export` on fixture runs, through the binary: every format carries the same
//! benchmarks and numbers (the JSON ones valid against `benches/schemas/`, the tables equal to
//! the BMF values), the schemas reject what the formats forbid (so the validation can fail), and
//! runs that cannot be exported (none, no benchmarks, a corrupt record, bad numbers, clashing
//! names, a linked `export` folder) are refused with exit 4 and nothing written.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Output;

use claimbench::store::RunDir;
use claimbench_paper::bench::BenchFile;
use polars::prelude::{CsvReadOptions, DataFrame, DataType, ParquetReader, SerReader};
use serde_json::{Value, json};

use crate::cli::bin;
use crate::fixtures::{Spec, write_run};

/// The table's columns, in order (the module docs of `claimbench::export`).
const COLUMNS: [&str; 16] = [
    "run_id",
    "git_sha",
    "benchmark",
    "kernel",
    "implementation",
    "baseline",
    "backend",
    "device",
    "dtype",
    "shape",
    "measure",
    "unit",
    "value",
    "lower",
    "upper",
    "smaller_is_better",
];

fn export(run: &Path, format: &str, out: Option<&Path>) -> Output {
    let mut c = bin();
    c.arg("export").arg(run).args(["--format", format]);
    if let Some(out) = out {
        c.arg("--out").arg(out);
    }
    c.output().expect("claimbench runs")
}

/// Exports `run` as `format`; checks exit 0 and that the path printed is the file written.
fn exported(run: &Path, format: &str, out: Option<&Path>) -> PathBuf {
    let o = export(run, format, out);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(0), "export {format}: {stderr}");
    let path = PathBuf::from(String::from_utf8_lossy(&o.stdout).trim());
    assert!(path.is_file(), "export {format} printed {}", path.display());
    path
}

fn read_json(path: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

/// The validator of `benches/schemas/<name>`, itself checked against its meta-schema.
fn schema(name: &str) -> jsonschema::Validator {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../benches/schemas")
        .join(name);
    let s = read_json(&path);
    assert!(s["$comment"].as_str().unwrap().contains("https://"));
    jsonschema::meta::validate(&s).unwrap_or_else(|e| panic!("{name}: {e}"));
    jsonschema::validator_for(&s).unwrap()
}

fn errors(v: &jsonschema::Validator, x: &Value) -> Vec<String> {
    v.iter_errors(x).map(|e| e.to_string()).collect()
}

fn table(path: &Path) -> DataFrame {
    let file = std::fs::File::open(path).unwrap();
    if path.extension().is_some_and(|e| e == "parquet") {
        ParquetReader::new(file).finish().unwrap()
    } else {
        // Every column as text: the numbers are parsed here, as a dashboard would.
        CsvReadOptions::default()
            .with_has_header(true)
            .with_infer_schema_length(Some(0))
            .into_reader_with_file_handle(file)
            .finish()
            .unwrap()
    }
}

/// Row `i` of a text or boolean column, as text.
fn cell(df: &DataFrame, c: &str, i: usize) -> String {
    let col = df.column(c).unwrap();
    if let Ok(s) = col.str() {
        return s.get(i).unwrap().to_string();
    }
    col.bool()
        .unwrap_or_else(|_| panic!("{c}: {}", col.dtype()))
        .get(i)
        .unwrap()
        .to_string()
}

/// Row `i` of a number column (Parquet's f64, or CSV's text parsed).
fn number(df: &DataFrame, c: &str, i: usize) -> f64 {
    match df.column(c).unwrap().f64() {
        Ok(x) => x.get(i).unwrap(),
        Err(_) => cell(df, c, i).parse().unwrap(),
    }
}

#[test]
fn every_format_carries_the_same_numbers() {
    let tmp = tempfile::tempdir().unwrap();
    let run = write_run(tmp.path(), &Spec::default());
    // One entry states its share of the device floor, so `pct-of-floor` is exported for it alone.
    let bench_path = run.join("benchmarks.json");
    let mut file: BenchFile = serde_json::from_value(read_json(&bench_path)).unwrap();
    file.benchmarks[0].pct_of_floor = Some(42.0);
    claimbench::store::write_json(&bench_path, &file).unwrap();

    let bmf_path = exported(&run, "bmf", None);
    assert_eq!(bmf_path, run.join("export/bmf.json"));
    let bmf = read_json(&bmf_path);
    assert_eq!(
        errors(&schema("bmf.schema.json"), &bmf),
        Vec::<String>::new()
    );
    let mut metrics = 0;
    for (i, e) in file.benchmarks.iter().enumerate() {
        let name = format!(
            "kernels/token-logprob/{}/1024x32000/f32/wgpu",
            e.implementation
        );
        let m = bmf[&name]
            .as_object()
            .unwrap_or_else(|| panic!("{name} not in {bmf}"));
        let want: &[&str] = if i == 0 {
            &["bandwidth", "latency", "pct-of-floor", "speedup"]
        } else {
            &["bandwidth", "latency", "speedup"]
        };
        assert_eq!(m.keys().map(String::as_str).collect::<Vec<_>>(), want);
        metrics += m.len();
        let get = |measure: &str, k: &str| m[measure][k].as_f64().unwrap();
        let median_ms = claimbench_claims::median(&e.ours_ms).unwrap();
        assert_eq!(get("latency", "value"), median_ms * 1e6);
        let (lo, hi) = (get("latency", "lower_value"), get("latency", "upper_value"));
        assert!(lo < median_ms * 1e6 && median_ms * 1e6 < hi, "{lo} {hi}");
        // 30 rounds at 3% spread: the median's interval is a few percent wide, not 0 or 50%.
        assert!(hi / lo > 1.001 && hi / lo < 1.1, "{lo} {hi}");
        assert_eq!(get("speedup", "value"), e.speedup);
        assert_eq!(get("speedup", "lower_value"), e.speedup_ci[0]);
        assert_eq!(get("speedup", "upper_value"), e.speedup_ci[1]);
        let gbps = e.bytes as f64 / (median_ms * 1e-3) / 1e9;
        assert!((get("bandwidth", "value") / gbps - 1.0).abs() < 1e-12);
        assert!(get("bandwidth", "lower_value") < gbps && gbps < get("bandwidth", "upper_value"));
        if i == 0 {
            assert_eq!(get("pct-of-floor", "value"), 42.0);
            let ratio = get("pct-of-floor", "upper_value") / get("bandwidth", "upper_value");
            assert!((ratio / (42.0 / gbps) - 1.0).abs() < 1e-9, "{ratio}");
        }
    }
    assert_eq!(bmf.as_object().unwrap().len(), file.benchmarks.len());

    let gh = schema("gh-benchmark.schema.json");
    let smaller = read_json(&exported(&run, "gh-benchmark", None));
    let bigger = read_json(&exported(&run, "gh-benchmark-bigger", None));
    for (doc, n) in [
        (&smaller, file.benchmarks.len()),
        (&bigger, metrics - file.benchmarks.len()),
    ] {
        assert_eq!(errors(&gh, doc), Vec::<String>::new());
        let names: BTreeSet<&str> = doc
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x["name"].as_str().unwrap())
            .collect();
        assert_eq!(names.len(), n, "names unique, one per value: {doc}");
    }
    for x in smaller.as_array().unwrap() {
        let name = x["name"].as_str().unwrap();
        let benchmark = name.strip_suffix("/latency").expect(name);
        assert_eq!(x["unit"], "ms");
        let ns = bmf[benchmark]["latency"]["value"].as_f64().unwrap();
        assert!((x["value"].as_f64().unwrap() / (ns * 1e-6) - 1.0).abs() < 1e-12);
        assert!(x["range"].as_str().unwrap().starts_with("± "));
        let extra = x["extra"].as_str().unwrap();
        for part in [
            "95% CI: [",
            "rounds: 30",
            "baseline: log_softmax+gather",
            "run: base",
        ] {
            assert!(extra.contains(part), "{part:?} not in {extra:?}");
        }
    }
    for x in bigger.as_array().unwrap() {
        let (benchmark, measure) = x["name"].as_str().unwrap().rsplit_once('/').unwrap();
        assert_ne!(measure, "latency");
        assert_eq!(x["value"], bmf[benchmark][measure]["value"]);
    }

    for (format, file_name) in [("csv", "export.csv"), ("parquet", "export.parquet")] {
        let path = exported(&run, format, None);
        assert_eq!(path, run.join("export").join(file_name));
        let df = table(&path);
        let names: Vec<String> = df
            .get_column_names()
            .iter()
            .map(|c| c.to_string())
            .collect();
        assert_eq!(names, COLUMNS, "{format}");
        assert_eq!(df.height(), metrics, "{format}: one row per BMF value");
        if format == "parquet" {
            assert_eq!(df.column("value").unwrap().dtype(), &DataType::Float64);
            assert_eq!(
                df.column("smaller_is_better").unwrap().dtype(),
                &DataType::Boolean
            );
        }
        let mut seen = BTreeSet::new();
        for i in 0..df.height() {
            let (b, m) = (cell(&df, "benchmark", i), cell(&df, "measure", i));
            assert!(
                seen.insert((b.clone(), m.clone())),
                "{format}: {b} {m} twice"
            );
            for (col, key) in [
                ("value", "value"),
                ("lower", "lower_value"),
                ("upper", "upper_value"),
            ] {
                let got = number(&df, col, i);
                assert_eq!(
                    got,
                    bmf[&b][&m][key].as_f64().unwrap(),
                    "{format} {b} {m} {col}"
                );
            }
            assert_eq!(
                cell(&df, "smaller_is_better", i),
                (m == "latency").to_string()
            );
            assert_eq!(cell(&df, "run_id", i), "base");
            assert_eq!(cell(&df, "device", i), crate::fixtures::DEVICE);
        }
    }

    // --out: another place, its folder made; the same bytes (the bootstrap is seeded).
    let out = tmp.path().join("elsewhere/new/bench.json");
    assert_eq!(exported(&run, "bmf", Some(&out)), out);
    assert_eq!(
        std::fs::read(&out).unwrap(),
        std::fs::read(&bmf_path).unwrap()
    );
}

/// The schemas' own controls: what each format forbids fails, a minimal valid document passes.
#[test]
fn the_schemas_reject_what_the_formats_forbid() {
    let bmf = schema("bmf.schema.json");
    assert!(bmf.is_valid(&json!({"b": {"latency": {"value": 1.0}}})));
    for bad in [
        json!({"b": {"latency": {"lower_value": 1.0, "upper_value": 2.0}}}),
        json!({"b": {"latency": {"value": "1"}}}),
        json!({"b": {"latency": 1.0}}),
        json!({"": {"latency": {"value": 1.0}}}),
        json!([{"latency": {"value": 1.0}}]),
    ] {
        assert!(!bmf.is_valid(&bad), "BMF schema accepts {bad}");
    }
    let gh = schema("gh-benchmark.schema.json");
    assert!(gh.is_valid(&json!([{"name": "a", "unit": "ms", "value": 1, "range": "± 1"}])));
    for bad in [
        json!([]),
        json!([{"name": "a", "value": 1}]),
        json!([{"name": "a", "unit": "ms", "value": "1"}]),
        json!({"name": "a", "unit": "ms", "value": 1}),
    ] {
        assert!(!gh.is_valid(&bad), "gh-benchmark schema accepts {bad}");
    }
}

/// Exports `run` (every format), expecting exit 4 with `needle` in the message and no file.
fn refused(run: &Path, needle: &str) {
    for format in ["bmf", "gh-benchmark", "csv", "parquet"] {
        let o = export(run, format, None);
        let stderr = String::from_utf8_lossy(&o.stderr);
        assert_eq!(
            o.status.code(),
            Some(4),
            "{format} {}: {stderr}",
            run.display()
        );
        assert!(stderr.contains(needle), "{needle:?} not in {stderr}");
        assert!(o.stdout.is_empty());
    }
    assert!(!run.join("export").exists() || run.join("export").is_symlink());
}

#[test]
fn runs_that_cannot_be_exported_exit_4() {
    let tmp = tempfile::tempdir().unwrap();
    let empty = tmp.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    refused(&empty, "manifest.json is missing");

    let spec = |run_id| Spec {
        run_id,
        ..Spec::default()
    };
    let none = write_run(tmp.path(), &spec("none"));
    std::fs::remove_file(none.join("benchmarks.json")).unwrap();
    let (dir, _) = RunDir::open(&none).unwrap();
    for mut u in dir.read_units().unwrap() {
        u.benchmarks.clear();
        dir.write_unit(&u).unwrap();
    }
    refused(&none, "no benchmark results");

    let corrupt = write_run(tmp.path(), &spec("corrupt"));
    std::fs::write(
        corrupt.join("units/kernels__token-logprob__bench.json"),
        b"{\"schema_version\": 1, \"unit_id\": ",
    )
    .unwrap();
    refused(&corrupt, "is corrupt or not a claimbench file");

    // Hand-edited numbers and names in benchmarks.json.
    let edited = |run_id, edit: &dyn Fn(&mut BenchFile)| {
        let run = write_run(tmp.path(), &spec(run_id));
        let path = run.join("benchmarks.json");
        let mut file: BenchFile = serde_json::from_value(read_json(&path)).unwrap();
        edit(&mut file);
        claimbench::store::write_json(&path, &file).unwrap();
        run
    };
    let negative = edited("negative", &|f| f.benchmarks[1].ours_ms[3] = -1.0);
    refused(&negative, "ours_ms");
    let speedup = edited("speedup", &|f| f.benchmarks[0].speedup_ci = [0.0, 2.0]);
    refused(&speedup, "speedup");
    let twice = edited("twice", &|f| f.benchmarks[1] = f.benchmarks[0].clone());
    refused(&twice, "two benchmarks are named");
    let control = edited("control", &|f| f.benchmarks[0].backend = "wgpu\n".into());
    refused(&control, "control characters");

    // A downloaded run whose `export` is a link must not choose where the file goes.
    let linked = write_run(tmp.path(), &spec("linked"));
    let target = tmp.path().join("target");
    std::fs::create_dir(&target).unwrap();
    std::os::unix::fs::symlink(&target, linked.join("export")).unwrap();
    refused(&linked, "not a folder");
    assert_eq!(std::fs::read_dir(&target).unwrap().count(), 0);
}
