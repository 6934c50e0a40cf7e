//! `deploy/lava/pinlat.yaml`, the LAVA v2 test definition, run as LAVA's test shell runs it:
//! the YAML parsed, its parameters written as `NAME='value'` lines (the definition's defaults,
//! then the job's), `set -e`, a `cd` into the repository, then the run steps, all under
//! `/bin/sh -e` (lava_dispatcher's `TestRunnerAction` and `lava-test-runner`). Stand-in
//! `lava-test-case` and `lava-test-case-attach` commands on PATH record their arguments, and
//! `pinlat run` is a stand-in too (through the `PINLAT` parameter) that lays a fixture results
//! directory down instead of booting guests; `pinlat report` is the real one. The cases are
//! checked against the run's `report.json`. LAVA's own schema check of the definition runs
//! when Debian's `lava-common` is installed (`scripts/setup.sh` installs it).

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use pinlat::report::{us, BudgetStatus, Report};
use pinlat_test_infra::repo;

const DEFINITION: &str = "deploy/lava/pinlat.yaml";

fn definition() -> serde_yaml::Value {
    let text = std::fs::read_to_string(repo().join(DEFINITION)).unwrap();
    serde_yaml::from_str(&text).unwrap()
}

fn strings(v: &serde_yaml::Value) -> Vec<String> {
    v.as_sequence()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap().to_string())
        .collect()
}

/// The scalar as LAVA writes it into `NAME='value'` (Python's `str` of the YAML value).
fn scalar(v: &serde_yaml::Value) -> String {
    match v {
        serde_yaml::Value::String(s) => s.clone(),
        serde_yaml::Value::Bool(b) => if *b { "True" } else { "False" }.to_string(),
        serde_yaml::Value::Number(n) => n.to_string(),
        serde_yaml::Value::Null => String::new(),
        other => panic!("a parameter must be a scalar: {other:?}"),
    }
}

fn write_script(path: &Path, text: &str) {
    std::fs::write(path, text).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// A test shell: a bin directory with the stand-ins, a log of their calls, the results root.
struct Shell {
    tmp: tempfile::TempDir,
}

impl Shell {
    /// Stand-ins for `lava-test-case` (and `lava-test-case-attach` when `attach`), and a
    /// `pinlat` that lays `fixture` down for `run` (nothing when `None`, and exits 2) and runs
    /// the real pinlat for anything else.
    fn new(fixture: Option<&str>, attach: bool) -> Shell {
        let tmp = tempfile::tempdir().unwrap();
        let bin = tmp.path().join("bin");
        std::fs::create_dir(&bin).unwrap();
        let log = tmp.path().join("calls.log");
        let record = |name: &str| {
            format!(
                "#!/bin/sh\nprintf '%s' '{name}' >> '{log}'\nfor a in \"$@\"; do printf '\\t%s' \"$a\" >> '{log}'; done\necho >> '{log}'\n",
                log = log.display()
            )
        };
        write_script(&bin.join("lava-test-case"), &record("lava-test-case"));
        if attach {
            write_script(
                &bin.join("lava-test-case-attach"),
                &record("lava-test-case-attach"),
            );
        }
        let real = env!("CARGO_BIN_EXE_pinlat");
        let run = match fixture {
            Some(f) => format!(
                "out=''; prev=''; for a in \"$@\"; do [ \"$prev\" = --out ] && out=\"$a\"; prev=\"$a\"; done\n    \
                 printf '%s\\n' \"$*\" > '{args}'\n    \
                 mkdir -p \"$out/fixture-run\" && cp -r '{src}/.' \"$out/fixture-run/\"\n    \
                 exec '{real}' report \"$out/fixture-run\"",
                args = tmp.path().join("run-args").display(),
                src = repo().join("tests/fixtures").join(f).display(),
            ),
            None => "echo 'pinlat: config: no such file' >&2; exit 2".to_string(),
        };
        write_script(
            &bin.join("pinlat-standin"),
            &format!("#!/bin/sh\ncase \"$1\" in\n  run)\n    {run} ;;\n  *) exec '{real}' \"$@\" ;;\nesac\n"),
        );
        Shell { tmp }
    }

    fn out(&self) -> PathBuf {
        self.tmp.path().join("out")
    }

    /// Runs the definition's steps as LAVA does, with the job's `params`; returns the log of
    /// the shell (stdout and stderr) after checking it exited 0.
    fn run(&self, params: &[(&str, &str)]) -> String {
        let def = definition();
        let mut script = String::from("###default parameters from test definition###\n");
        for (k, v) in def["params"].as_mapping().unwrap() {
            script.push_str(&format!("{}='{}'\n", scalar(k), scalar(v)));
        }
        script.push_str("######\n###test parameters from job submission###\n");
        let standin = self.tmp.path().join("bin/pinlat-standin");
        let out = self.out();
        let mut all: Vec<(&str, &str)> = vec![
            ("PINLAT", standin.to_str().unwrap()),
            ("OUT", out.to_str().unwrap()),
        ];
        all.extend_from_slice(params);
        for (k, v) in all {
            script.push_str(&format!("{k}='{v}'\n"));
        }
        script.push_str(&format!("######\nset -e\ncd {}\n", repo().display()));
        for step in strings(&def["run"]["steps"]) {
            script.push_str(&step);
            script.push('\n');
        }
        let path = self.tmp.path().join("run.sh");
        std::fs::write(&path, &script).unwrap();
        let bin = self.tmp.path().join("bin");
        let o = Command::new("/bin/sh")
            .arg("-e")
            .arg(&path)
            .env(
                "PATH",
                format!("{}:{}", bin.display(), std::env::var("PATH").unwrap()),
            )
            .output()
            .unwrap();
        let log = format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        assert!(o.status.success(), "run.sh failed ({}):\n{log}", o.status);
        log
    }

    /// The recorded calls: command and arguments.
    fn calls(&self) -> Vec<Vec<String>> {
        std::fs::read_to_string(self.tmp.path().join("calls.log"))
            .unwrap_or_default()
            .lines()
            .map(|l| l.split('\t').map(str::to_string).collect())
            .collect()
    }
}

/// `lava-test-case NAME --result R [--measurement V --units U]` calls by name.
fn cases(calls: &[Vec<String>]) -> BTreeMap<String, (String, Option<(String, String)>)> {
    let mut out = BTreeMap::new();
    for c in calls.iter().filter(|c| c[0] == "lava-test-case") {
        let (name, rest) = (c[1].clone(), &c[2..]);
        let case = match rest {
            [r, result] if r == "--result" => (result.clone(), None),
            [r, result, m, value, u, units]
                if r == "--result" && m == "--measurement" && u == "--units" =>
            {
                (result.clone(), Some((value.clone(), units.clone())))
            }
            other => panic!("lava-test-case {name} {other:?}"),
        };
        assert!(
            out.insert(name.clone(), case).is_none(),
            "{name} reported twice"
        );
    }
    out
}

/// What the cases must be, from report.json alone.
fn expected(r: &Report) -> BTreeMap<String, (String, Option<(String, String)>)> {
    let mut out = BTreeMap::new();
    out.insert("pinlat-report".to_string(), ("pass".to_string(), None));
    for g in &r.groups {
        let pass = g.failed_runs.is_empty()
            && g.stats.samples > 0
            && matches!(g.budget.status, BudgetStatus::Held | BudgetStatus::NoBudget);
        let value = match g.budget.checks.first() {
            Some(c) => c.observed_ns,
            None => g.stats.p9999_ns.value_ns.filter(|_| g.stats.samples > 0),
        };
        out.insert(
            g.name(),
            (
                if pass { "pass" } else { "fail" }.to_string(),
                value.map(|v| (us(v), "us".to_string())),
            ),
        );
    }
    let lost = r
        .runs
        .iter()
        .filter(|x| !x.outcome.ok)
        .map(|x| x.name.clone());
    let skipped = r
        .skipped
        .iter()
        .map(|s| s.file.trim_end_matches(".json").to_string());
    for name in lost.chain(skipped).chain(r.missing_runs.iter().cloned()) {
        out.insert(name, ("fail".to_string(), None));
    }
    out
}

/// Every group, every run without a result and the report itself, as report.json says, and
/// both reports attached; the job's parameters reach `pinlat run`.
#[test]
fn the_definition_reports_every_case_of_report_json() {
    for fixture in ["runs-tcg", "runs-basic", "runs-failures"] {
        let shell = Shell::new(Some(fixture), true);
        let log = shell.run(&[
            ("DURATION", "5s"),
            ("LAYOUTS", "share,vcpu0"),
            ("RUN_ARGS", "--accel tcg"),
        ]);
        let dir = shell.out().join("fixture-run");
        let r = Report::read_json(&dir.join("report.json")).unwrap();
        let calls = shell.calls();
        assert_eq!(cases(&calls), expected(&r), "{fixture}:\n{log}");
        let attached: Vec<&Vec<String>> = calls
            .iter()
            .filter(|c| c[0] == "lava-test-case-attach")
            .collect();
        assert_eq!(attached.len(), 2, "{calls:?}");
        assert_eq!(
            attached[0][1..],
            [
                "pinlat-report".to_string(),
                dir.join("report.html").display().to_string(),
                "text/html".into()
            ]
        );
        assert_eq!(attached[1][3], "application/json");
        let args = std::fs::read_to_string(shell.tmp.path().join("run-args")).unwrap();
        assert_eq!(
            args.trim(),
            format!(
                "run configs/quick.toml --out {} --duration 5s --layouts share,vcpu0 --accel tcg",
                shell.out().display()
            )
        );
        if fixture == "runs-tcg" {
            assert!(
                log.contains("# NOTE: measured under QEMU TCG"),
                "the TCG note reaches the job log:\n{log}"
            );
        }
    }
}

/// The cases a sample of the fixture sets must give, spelled out (the checks above derive
/// them from report.json).
#[test]
fn a_budget_exceeded_and_a_guest_that_died_fail() {
    let shell = Shell::new(Some("runs-basic"), true);
    shell.run(&[]);
    let c = cases(&shell.calls());
    assert_eq!(
        c["share.mgmt-poll.timer"],
        ("fail".into(), Some(("149.887".into(), "us".into())))
    );
    assert_eq!(c["share.idle.timer"].0, "pass");
    let shell = Shell::new(Some("runs-failures"), true);
    shell.run(&[]);
    let c = cases(&shell.calls());
    assert_eq!(c["colocated.mgmt-poll.timer"], ("fail".into(), None));
    assert_eq!(c["colocated.mgmt-poll.timer.r1"], ("fail".into(), None));
    assert_eq!(c["isolate.mgmt-poll.timer"].0, "pass");
}

/// Without lava-test-case-attach (LAVA v2) the files stay and the log says so; when pinlat
/// makes no results at all, `pinlat-report` fails and the steps still finish (LAVA's end
/// signal follows them).
#[test]
fn no_attach_command_and_no_results_are_reported_not_fatal() {
    let shell = Shell::new(Some("runs-tcg"), false);
    let log = shell.run(&[]);
    assert!(
        log.contains("no lava-test-case-attach on this device"),
        "{log}"
    );
    assert_eq!(cases(&shell.calls())["pinlat-report"].0, "pass");

    let shell = Shell::new(None, true);
    let log = shell.run(&[]);
    let c = cases(&shell.calls());
    assert_eq!(c.len(), 1, "{log}");
    assert_eq!(c["pinlat-report"], ("fail".into(), None));
    assert!(log.contains("pinlat run exited 2"), "{log}");
}

/// The definition has what LAVA requires and the parameters README documents.
#[test]
fn metadata_and_parameters() {
    let def = definition();
    assert_eq!(
        def["metadata"]["format"].as_str(),
        Some("Lava-Test Test Definition 1.0")
    );
    assert_eq!(def["metadata"]["name"].as_str(), Some("pinlat"));
    for p in [
        "PINLAT", "CONFIG", "DURATION", "LAYOUTS", "RUN_ARGS", "OUT", "BUILD",
    ] {
        assert!(def["params"].get(p).is_some(), "no {p}");
    }
    assert!(repo().join(scalar(&def["params"]["CONFIG"])).is_file());
}

/// A Python that imports LAVA's schema code: `$PINLAT_LAVA_PYTHON`, else Debian's
/// `/usr/bin/python3` (where the `lava-common` package puts it), else `python3`.
fn lava_python() -> Option<PathBuf> {
    let candidates = std::env::var_os("PINLAT_LAVA_PYTHON")
        .map(PathBuf::from)
        .into_iter()
        .chain([PathBuf::from("/usr/bin/python3"), PathBuf::from("python3")]);
    candidates.into_iter().find(|p| {
        Command::new(p)
            .args(["-c", "import yaml, lava_common.schemas.test.testdef"])
            .output()
            .is_ok_and(|o| o.status.success())
    })
}

/// LAVA's own check of a test definition (`lava_common.schemas.test.testdef.validate`, what
/// lava-dispatcher runs on a definition before a job), and that it refuses a broken one.
/// Without LAVA's schema code the test says so and passes, except under CI (`CI` set), where
/// `scripts/setup.sh` has installed it and its absence is a failure.
#[test]
fn lava_common_accepts_the_definition() {
    let Some(python) = lava_python() else {
        let msg = "LAVA's schema code is not installed (apt-get install lava-common, as scripts/setup.sh does, or set PINLAT_LAVA_PYTHON)";
        assert!(std::env::var_os("CI").is_none(), "CI must validate: {msg}");
        eprintln!("skipped: {msg}");
        return;
    };
    let check = |path: &Path| {
        Command::new(&python)
            .args(["-c", "import sys, yaml\nfrom lava_common.schemas.test.testdef import validate\nvalidate(yaml.safe_load(open(sys.argv[1])))"])
            .arg(path)
            .output()
            .unwrap()
    };
    let o = check(&repo().join(DEFINITION));
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let tmp = tempfile::tempdir().unwrap();
    let broken = tmp.path().join("broken.yaml");
    let text = std::fs::read_to_string(repo().join(DEFINITION)).unwrap();
    std::fs::write(
        &broken,
        text.replace("format: Lava-Test Test Definition 1.0", "format: 2"),
    )
    .unwrap();
    assert!(
        !check(&broken).status.success(),
        "the schema check must refuse a wrong format"
    );
}
