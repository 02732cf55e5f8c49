//! Executors: `run --plan-only` and `run-unit` by hand; `--jobs 2` and `--executor slurm` give the
//! same metrics and claims as the default local executor; a cancelled Slurm task is resubmitted;
//! a crashing task is reported with its log and exit code and nothing of it is merged; a Slurm
//! run resumed after its driver was killed submits only what is missing.
//!
//! The Slurm tests start a real one-node cluster (`.ci/slurm-cluster`, Debian's slurmctld, slurmd
//! and munge) and stop it by PID afterwards. Without Slurm installed they are skipped, unless
//! `CLAIMBENCH_REQUIRE_SLURM=1` (CI), which makes that a failure.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use polars::prelude::{AnyValue, ParquetReader, SerReader};

use crate::cli::{bin, stderr};
use crate::continual::fixture;

/// Two papers (continual's stage-0 checkpoints are artifacts its arms depend on; DPO-vs-PPO's
/// ladder depends on its SFT policy), a kernel check on the device and one timing unit.
const ONLY: &str = "continual/stage0,continual/weak,dpo-ppo/fig1,dpo-ppo/ladder,kernels/ppo";

/// Short continual stages.
const FAST: &str = r#"{"continual": {"stage_steps": 24, "eval_every": 8, "train_sequences": 128,
    "eval_sequences": 16, "replay_shares": [0.0, 0.5]}}"#;

fn run_args(dir: &Path, config: &Path, only: &str) -> Vec<String> {
    let mut a: Vec<String> = [
        "run",
        "--scale",
        "smoke",
        "--seeds",
        "2",
        "--quiet",
        "--no-report",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    for (k, v) in [
        ("--only", only.to_string()),
        ("--config", config.display().to_string()),
        ("--corpus-root", fixture().display().to_string()),
        ("--out", dir.display().to_string()),
    ] {
        a.push(k.into());
        a.push(v);
    }
    a
}

fn ok(o: &Output) {
    assert_eq!(
        o.status.code(),
        Some(0),
        "stdout: {}\nstderr: {}",
        String::from_utf8_lossy(&o.stdout),
        stderr(o)
    );
}

fn json(p: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
}

/// The metrics table without `run_id` and without the rows of timing units, sorted.
fn metrics_without_timing(dir: &Path) -> Vec<String> {
    let plan = json(&dir.join("plan.json"));
    let timing: BTreeSet<(String, String, String)> = plan["units"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|u| u["timing"].as_bool().unwrap())
        .filter_map(|u| {
            let p = dir.join("units").join(format!(
                "{}.json",
                u["id"].as_str().unwrap().replace('/', "__")
            ));
            // Absent when the run had no kernel device (the unit was skipped).
            let r = p.is_file().then(|| json(&p))?;
            let s = |k: &str| r[k].as_str().unwrap().to_string();
            Some((s("paper"), s("experiment"), s("arm")))
        })
        .collect();
    assert!(
        !timing.is_empty() || !claimbench::require_device(),
        "the selection has a timing unit, and CLAIMBENCH_REQUIRE_DEVICE=1 says it ran"
    );
    let df = ParquetReader::new(std::fs::File::open(dir.join("metrics.parquet")).unwrap())
        .finish()
        .unwrap()
        .drop("run_id")
        .unwrap();
    let names: Vec<String> = df
        .get_column_names()
        .iter()
        .map(|c| c.to_string())
        .collect();
    let col = |n: &str| names.iter().position(|c| c == n).unwrap();
    let (paper, experiment, arm) = (col("paper"), col("experiment"), col("arm"));
    let text = |v: &AnyValue| v.to_string().trim_matches('"').to_string();
    let mut rows: Vec<String> = (0..df.height())
        .map(|i| df.get(i).unwrap())
        .filter(|r| !timing.contains(&(text(&r[paper]), text(&r[experiment]), text(&r[arm]))))
        .map(|r| r.iter().map(text).collect::<Vec<_>>().join(","))
        .collect();
    rows.sort();
    rows
}

/// `claims.json`'s claims: id, verdict, value and CI of each.
fn claims(dir: &Path) -> Vec<(String, String, String, String)> {
    let c = json(&dir.join("claims.json"));
    let mut v: Vec<_> = c["claims"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["id"].to_string(),
                c["verdict"].to_string(),
                c["our_value"].to_string(),
                c["ci"].to_string(),
            )
        })
        .collect();
    v.sort();
    v
}

/// Asserts that two runs give the same answers (the issue's equality check).
fn assert_same_answers(a: &Path, b: &Path) {
    let (ma, mb) = (metrics_without_timing(a), metrics_without_timing(b));
    assert!(ma.len() > 100, "{} metric rows", ma.len());
    if let Some(i) = (0..ma.len().max(mb.len())).find(|&i| ma.get(i) != mb.get(i)) {
        panic!(
            "metrics differ between {} and {} ({} and {} rows); first difference:\n{:?}\n{:?}",
            a.display(),
            b.display(),
            ma.len(),
            mb.len(),
            ma.get(i),
            mb.get(i)
        );
    }
    let (ca, cb) = (claims(a), claims(b));
    assert!(!ca.is_empty());
    assert_eq!(
        ca,
        cb,
        "claims differ between {} and {}",
        a.display(),
        b.display()
    );
}

fn setup() -> (tempfile::TempDir, PathBuf) {
    let d = tempfile::tempdir().unwrap();
    let cfg = d.path().join("fast.json");
    std::fs::write(&cfg, FAST).unwrap();
    (d, cfg)
}

#[test]
fn plan_only_then_run_unit_by_hand_then_resume() {
    let (d, cfg) = setup();
    let dir = d.path().join("planned");
    let mut args = run_args(&dir, &cfg, "continual/stage0,continual/weak");
    args.push("--plan-only".into());
    let o = bin().args(&args).output().unwrap();
    ok(&o);
    let plan = json(&dir.join("plan.json"));
    let units = plan["units"].as_array().unwrap();
    assert_eq!(units[0]["id"], "continual/stage0/seed-0");
    assert_eq!(units[0]["index"], 0);
    assert!(units.iter().all(|u| u["timing"] == false));
    assert!(units[0]["resources"]["memory_mib"].as_u64().unwrap() >= 1024);
    let arm = units
        .iter()
        .find(|u| u["depends_on"].as_array().is_some_and(|d| !d.is_empty()))
        .expect("a unit with a dependency");
    assert!(
        std::fs::read_dir(dir.join("units"))
            .unwrap()
            .next()
            .is_none()
    );

    // A dependent before its dependency: exit 4, naming the dependency's index.
    let idx = arm["index"].to_string();
    let o = bin()
        .args([
            "run-unit",
            &dir.display().to_string(),
            "--index",
            &idx,
            "--wait-for-deps",
            "0",
        ])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(4), "{}", stderr(&o));
    assert!(stderr(&o).contains("has no record"), "{}", stderr(&o));
    // Out of range and unknown ids: exit 4.
    for sel in [["--index", "9999"], ["--unit", "continual/nope"]] {
        let o = bin().arg("run-unit").arg(&dir).args(sel).output().unwrap();
        assert_eq!(o.status.code(), Some(4), "{}", stderr(&o));
    }
    // By hand: the dependency, then the dependent, each stored in units/.
    for sel in [
        ["--unit", "continual/stage0/seed-0"],
        ["--index", idx.as_str()],
    ] {
        let o = bin().arg("run-unit").arg(&dir).args(sel).output().unwrap();
        ok(&o);
    }
    assert!(dir.join("units/continual__stage0__seed-0.json").is_file());
    assert!(dir.join("artifacts/continual__stage0__seed-0").is_dir());
    // An edited plan is refused.
    let text = std::fs::read_to_string(dir.join("plan.json")).unwrap();
    std::fs::write(
        dir.join("plan.json"),
        text.replace("continual/stage0/seed-1", "continual/stage0/seed-7"),
    )
    .unwrap();
    let o = bin()
        .arg("run-unit")
        .arg(&dir)
        .args(["--index", "1"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(4), "{}", stderr(&o));
    assert!(stderr(&o).contains("plan.json"), "{}", stderr(&o));
    std::fs::write(dir.join("plan.json"), text).unwrap();

    // The rest with --resume, then the same answers as one uninterrupted run.
    let o = bin()
        .args([
            "run",
            "--resume",
            &dir.display().to_string(),
            "--quiet",
            "--no-report",
        ])
        .output()
        .unwrap();
    ok(&o);
    let whole = d.path().join("whole");
    ok(&bin()
        .args(run_args(&whole, &cfg, "continual/stage0,continual/weak"))
        .output()
        .unwrap());
    let (a, b) = (
        json(&dir.join("claims.json")),
        json(&whole.join("claims.json")),
    );
    assert_eq!(a["claims"], b["claims"]);
    assert!(
        !dir.join("staging")
            .read_dir()
            .is_ok_and(|mut r| r.next().is_some())
    );
}

#[test]
fn jobs_2_gives_the_same_answers_as_local() {
    let (d, cfg) = setup();
    let (local, jobs) = (d.path().join("local"), d.path().join("jobs"));
    let t = Instant::now();
    ok(&bin().args(run_args(&local, &cfg, ONLY)).output().unwrap());
    let local_s = t.elapsed().as_secs_f64();
    let t = Instant::now();
    ok(&bin()
        .args(run_args(&jobs, &cfg, ONLY))
        .args(["--jobs", "2"])
        .output()
        .unwrap());
    let jobs_s = t.elapsed().as_secs_f64();
    eprintln!("local {local_s:.1} s, --jobs 2 {jobs_s:.1} s");
    assert_same_answers(&local, &jobs);
    let m = json(&jobs.join("manifest.json"));
    assert_eq!(m["executor"]["kind"], "local");
    assert_eq!(m["executor"]["workers"], 2);
    assert!(
        jobs.join("logs").read_dir().unwrap().count() > 5,
        "one log per task"
    );
}

/// A one-node Slurm cluster for one test, stopped (by PID) when dropped.
struct Cluster {
    dir: tempfile::TempDir,
    conf: PathBuf,
}

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../.ci/slurm-cluster")
}

impl Cluster {
    /// Starts one, or `None` (skip) when Slurm is not installed and not required.
    fn start() -> Option<Cluster> {
        let installed = Command::new("sh")
            .args(["-c", "command -v slurmctld && command -v slurmd && command -v munged && command -v sbatch"])
            .output()
            .is_ok_and(|o| o.status.success());
        if !installed {
            assert!(
                std::env::var("CLAIMBENCH_REQUIRE_SLURM").as_deref() != Ok("1"),
                "CLAIMBENCH_REQUIRE_SLURM=1 but Slurm is not installed (.ci/slurm-cluster install)"
            );
            eprintln!("skipped: Slurm is not installed (.ci/slurm-cluster install)");
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        let o = Command::new("bash")
            .arg(script())
            .arg("start")
            .arg(dir.path())
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "cluster did not start: {}\n{}",
            String::from_utf8_lossy(&o.stdout),
            stderr(&o)
        );
        let conf = dir.path().join("slurm.conf");
        Some(Cluster { dir, conf })
    }

    fn cmd(&self, program: &str) -> Command {
        let mut c = Command::new(program);
        c.env("SLURM_CONF", &self.conf);
        c
    }

    fn claimbench(&self) -> Command {
        let mut c = bin();
        c.env("SLURM_CONF", &self.conf);
        c
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = Command::new("bash")
            .arg(script())
            .arg("stop")
            .arg(self.dir.path())
            .status();
    }
}

/// The latest Slurm task (`J_I`) and its attempt for unit `id` of run `dir`, from the ledger.
fn task_of(dir: &Path, id: &str) -> Option<(String, u64)> {
    let plan: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("plan.json")).ok()?).ok()?;
    let index = plan["units"]
        .as_array()?
        .iter()
        .position(|u| u["id"] == id)?;
    let ledger: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("slurm/tasks.json")).ok()?).ok()?;
    ledger["tasks"]
        .as_array()?
        .iter()
        .rfind(|t| t["index"] == index)
        .map(|t| {
            (
                format!("{}_{}", t["job"], index),
                t["attempt"].as_u64().unwrap(),
            )
        })
}

fn wait_for(what: &str, secs: u64, mut f: impl FnMut() -> bool) {
    let t = Instant::now();
    while !f() {
        assert!(
            t.elapsed() < Duration::from_secs(secs),
            "timed out waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn slurm_gives_the_same_answers_resubmits_a_cancelled_task_and_resumes() {
    let Some(cluster) = Cluster::start() else {
        return;
    };
    let (d, cfg) = setup();
    let (local, slurm) = (d.path().join("local"), d.path().join("slurm"));
    ok(&bin().args(run_args(&local, &cfg, ONLY)).output().unwrap());

    // A task held for 20 s, so it can be cancelled while it runs.
    let held = "dpo-ppo/fig1/seed-1";
    let mut driver = cluster
        .claimbench()
        .args(run_args(&slurm, &cfg, ONLY))
        .args(["--executor", "slurm", "--slurm-max-parallel", "2"])
        .env("CLAIMBENCH_TEST_HOLD", format!("{held}=20000"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut first = String::new();
    wait_for("the held task to run", 180, || {
        let Some((task, _)) = task_of(&slurm, held) else {
            return false;
        };
        let o = cluster
            .cmd("scontrol")
            .args(["-o", "show", "job", &task])
            .output()
            .unwrap();
        first = task;
        String::from_utf8_lossy(&o.stdout).contains("JobState=RUNNING")
    });
    let o = cluster.cmd("scancel").arg(&first).output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    wait_for("the cancelled task's resubmission", 60, || {
        task_of(&slurm, held).is_some_and(|(_, attempt)| attempt == 2)
    });
    // The driver dies; its tasks go on. A resume adopts them and submits only what is missing.
    driver.kill().unwrap();
    driver.wait().unwrap();
    let planned = json(&slurm.join("plan.json"))["units"]
        .as_array()
        .unwrap()
        .len();
    let o = cluster
        .claimbench()
        .args([
            "run",
            "--resume",
            &slurm.display().to_string(),
            "--executor",
            "slurm",
            "--no-report",
        ])
        .env("CLAIMBENCH_TEST_HOLD", format!("{held}=20000"))
        .output()
        .unwrap();
    ok(&o);
    let err = stderr(&o);
    let line = err
        .lines()
        .find(|l| l.starts_with("slurm: "))
        .unwrap_or_else(|| panic!("{err}"));
    let nums: Vec<usize> = line
        .split(|c: char| !c.is_ascii_digit())
        .filter_map(|s| s.parse().ok())
        .collect();
    let (todo, adopted, merged, submitted) = (nums[0], nums[1], nums[2], nums[3]);
    assert!(adopted >= 1, "the held task was adopted: {line}");
    assert!(
        todo < planned && adopted + merged + submitted == todo,
        "{line} ({planned} planned)"
    );
    assert_same_answers(&local, &slurm);
    let m = json(&slurm.join("manifest.json"));
    assert_eq!(m["executor"]["kind"], "slurm");
    assert!(
        !slurm
            .join("staging")
            .read_dir()
            .is_ok_and(|mut r| r.next().is_some())
    );
}

#[test]
fn a_crashing_slurm_task_is_reported_with_its_log_and_nothing_is_merged() {
    let Some(cluster) = Cluster::start() else {
        return;
    };
    let (d, cfg) = setup();
    let dir = d.path().join("crash");
    let crash = "continual/stage0/seed-0";
    let o = cluster
        .claimbench()
        .args(run_args(&dir, &cfg, "continual/stage0"))
        .args(["--executor", "slurm", "--max-retries", "1"])
        .env("CLAIMBENCH_TEST_CRASH", crash)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(4), "{}", stderr(&o));
    let r = json(&dir.join("units/continual__stage0__seed-0.json"));
    assert_eq!(r["status"], "error");
    let msg = r["message"].as_str().unwrap();
    assert!(
        msg.contains("FAILED") && msg.contains("exit code") && msg.contains("after 2 attempt(s)"),
        "{msg}"
    );
    let log = msg
        .split("log: ")
        .nth(1)
        .unwrap()
        .split(')')
        .next()
        .unwrap();
    assert!(Path::new(log).is_file(), "{log}");
    assert!(r["artifacts"].as_array().is_none_or(|a| a.is_empty()));
    assert!(
        !dir.join("artifacts/continual__stage0__seed-0").exists(),
        "nothing half-written is merged"
    );
    assert!(
        !dir.join("staging")
            .read_dir()
            .is_ok_and(|mut r| r.next().is_some())
    );
    let other = json(&dir.join("units/continual__stage0__seed-1.json"));
    assert_eq!(other["status"], "passed");
}

#[test]
fn array_task_specs_as_scontrol_prints_them() {
    use claimbench::executor::slurm::in_spec;
    assert!(in_spec("3", 3));
    assert!(!in_spec("3", 4));
    assert!(in_spec("1-3,5", 5));
    assert!(!in_spec("1-3,5", 4));
    assert!(in_spec("0-10:2", 4));
    assert!(!in_spec("0-10:2", 5));
    assert!(!in_spec("", 0));
    assert!(!in_spec("x-y", 0));
}

#[test]
fn the_config_files_slurm_section_is_checked_and_is_not_a_paper() {
    let d = tempfile::tempdir().unwrap();
    let bad = d.path().join("bad.json");
    std::fs::write(&bad, r#"{"slurm": {"partiton": "cpu"}}"#).unwrap();
    let o = bin()
        .args(run_args(&d.path().join("a"), &bad, "continual/stage0"))
        .arg("--plan-only")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(4), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("slurm") && stderr(&o).contains("partiton"),
        "{}",
        stderr(&o)
    );
    // A valid section: the run plans as without it (the section is no paper and no setting).
    let good = d.path().join("good.json");
    std::fs::write(
        &good,
        r#"{"slurm": {"partition": "cpu", "max_parallel": 4, "args": ["--account=lab"]}}"#,
    )
    .unwrap();
    let none = d.path().join("none.json");
    std::fs::write(&none, "{}").unwrap();
    let hash = |cfg: &Path, name: &str| {
        let dir = d.path().join(name);
        let o = bin()
            .args(run_args(&dir, cfg, "continual/stage0"))
            .arg("--plan-only")
            .output()
            .unwrap();
        ok(&o);
        json(&dir.join("manifest.json"))["config_hash"].clone()
    };
    assert_eq!(hash(&good, "b"), hash(&none, "c"));
}
