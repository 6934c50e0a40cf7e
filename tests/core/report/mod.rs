//! Tests of `pinlat::report` on deterministic fixture runs: golden files for the Markdown,
//! JUnit and cyclictest-text outputs, the `.hlog` read back against the report's percentiles,
//! verdict wording, exit outcomes and `compare` with a planted regression.
//!
//! `PINLAT_BLESS=1 cargo test -p pinlat --test core -- --test-threads=1` rewrites the committed
//! fixtures and golden files (one thread: the golden tests read the fixtures being rewritten).

use std::path::{Path, PathBuf};

use pinlat::config::{ScenarioKind, WorkloadKind};
use pinlat::histo::{new_histogram, Quantile};
use pinlat::report::verdict::Significance;
use pinlat::report::{self, compare, hlog, BudgetStatus, Outcome, Report};
use pinlat_test_infra::fixtures::{self, copy_committed as copy_fixture};

mod ci;
mod comparing;
mod failures;
mod housekeeping;
mod readiness;
mod soak;
mod source;
mod variants;
mod verdicts;

pub(crate) fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub(crate) fn bless() -> bool {
    std::env::var_os("PINLAT_BLESS").is_some()
}

fn opts(threshold: f64) -> compare::Options {
    compare::Options::with_threshold(threshold)
}

pub(crate) fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

pub(crate) fn golden(name: &str, actual: &str) {
    let p = root().join("tests/golden").join(name);
    if bless() {
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, actual).unwrap();
        return;
    }
    let expected = read(&p);
    if expected != actual {
        let line = expected
            .lines()
            .zip(actual.lines())
            .position(|(a, b)| a != b)
            .unwrap_or(expected.lines().count().min(actual.lines().count()));
        panic!(
            "{name} differs from the golden file at line {}:\n expected: {:?}\n actual:   {:?}\n(PINLAT_BLESS=1 with --test-threads=1 to accept)",
            line + 1,
            expected.lines().nth(line),
            actual.lines().nth(line)
        );
    }
}

/// The committed fixtures are exactly what the builder makes.
#[test]
fn fixtures_are_what_the_builder_makes() {
    for (name, write) in [
        ("runs-basic", fixtures::write_basic as fn(&Path)),
        ("runs-tcg", fixtures::write_tcg as fn(&Path)),
        ("runs-failures", fixtures::write_failures as fn(&Path)),
        ("runs-variants", fixtures::write_variants as fn(&Path)),
        (
            "runs-traced",
            crate::fixtures_trace::write_traced as fn(&Path),
        ),
    ] {
        let committed = root().join("tests/fixtures").join(name);
        if bless() {
            let _ = std::fs::remove_dir_all(&committed);
            write(&committed);
            continue;
        }
        let fresh = tempfile::tempdir().unwrap();
        write(fresh.path());
        for sub in ["", "runs"] {
            let mut n = 0;
            for e in std::fs::read_dir(fresh.path().join(sub)).unwrap() {
                let e = e.unwrap();
                if e.file_type().unwrap().is_file() {
                    n += 1;
                    let c = committed.join(sub).join(e.file_name());
                    assert!(read(&e.path()) == read(&c), "{} is stale", c.display());
                }
            }
            assert!(n > 0);
        }
    }
}

/// Runs with host traces: the culprit section in every output, the strip in the HTML; the
/// same report without traces has none of it.
#[test]
fn golden_traced_names_the_culprits() {
    let dir = copy_fixture("runs-traced");
    let r = report::write_all(dir.path()).unwrap();
    let md = read(&dir.path().join("report.md"));
    golden("traced.report.md", &md);
    golden("traced.junit.xml", &read(&dir.path().join("junit.xml")));
    assert_eq!(r.culprits.len(), 2);
    let share = &r.culprits[0];
    assert_eq!(
        (share.layout.as_str(), share.scenario.as_str()),
        ("share", "mgmt-poll")
    );
    assert_eq!(share.by_class[0].class, pinlat::trace::Class::Emulator);
    assert!(md.contains("✅ `qemu-system-x86`"), "{md}");
    assert!(md.contains("pCPU 1: 2"), "counted SMIs");
    assert!(md.contains("pCPU 1: not available"), "never 0 when unknown");
    let html = read(&dir.path().join("report.html"));
    assert!(html.contains("Who took the RT pCPUs"));
    assert_eq!(
        html.matches(" around the largest event").count(),
        2,
        "a strip per run"
    );
    let back = Report::read_json(&dir.path().join("report.json")).unwrap();
    assert_eq!(back.culprits, r.culprits);
    // Without traces: no section at all.
    let (plain, _) = build_basic();
    let basic = read(&plain.path().join("report.md"));
    assert!(!basic.contains("Who took"));
    assert!(!read(&plain.path().join("report.json")).contains("culprits"));
}

fn build_basic() -> (tempfile::TempDir, Report) {
    let dir = copy_fixture("runs-basic");
    let r = report::write_all(dir.path()).unwrap();
    (dir, r)
}

#[test]
fn golden_basic() {
    let (dir, r) = build_basic();
    golden("basic.report.md", &read(&dir.path().join("report.md")));
    golden("basic.junit.xml", &read(&dir.path().join("junit.xml")));
    golden(
        "basic.share.mgmt-poll.timer.histogram.txt",
        &read(&dir.path().join("share.mgmt-poll.timer.histogram.txt")),
    );
    assert_eq!(r.outcome(), Outcome::BudgetExceeded);
    assert!(r.disclaimer.is_none());
    assert!(!read(&dir.path().join("report.md")).contains("TCG"));
}

#[test]
fn golden_tcg_with_failed_and_unreadable_runs() {
    let dir = copy_fixture("runs-tcg");
    let r = report::write_all(dir.path()).unwrap();
    golden("tcg.report.md", &read(&dir.path().join("report.md")));
    golden("tcg.junit.xml", &read(&dir.path().join("junit.xml")));
    golden(
        "tcg.share.idle.timer.histogram.txt",
        &read(&dir.path().join("share.idle.timer.histogram.txt")),
    );
    assert_eq!(r.outcome(), Outcome::RunFailed);
    assert_eq!(r.skipped.len(), 1);
    assert_eq!(r.skipped[0].file, "share.idle.busy-poll.r1.json");
    // Every output says TCG numbers are not hardware latency, in its header.
    in_every_header(
        dir.path(),
        pinlat::result::TCG_DISCLAIMER,
        1200,
        "the TCG disclaimer",
    );
    // One repetition: the difference is unqualified, never a win.
    let v = &r.verdicts[0];
    assert_eq!(v.comparisons.len(), 1);
    assert_eq!(v.comparisons[0].significance, Significance::Unqualified);
    assert!(v.statement.contains("unqualified"), "{}", v.statement);
    assert!(!v.statement.contains(" cut "), "{}", v.statement);
}

/// The written `.hlog` decodes back to histograms whose merge gives the report's numbers.
#[test]
fn hlog_round_trip_matches_report_percentiles() {
    let (dir, r) = build_basic();
    for run in r.runs.iter().filter(|x| x.outcome.ok) {
        let text = read(&dir.path().join(format!("{}.hlog", run.name)));
        assert!(text.contains("#[StartTime: "));
        assert!(text.contains("#[BaseTime: "));
        assert!(text.contains(
            "\"StartTimestamp\",\"Interval_Length\",\"Interval_Max\",\"Interval_Compressed_Histogram\""
        ));
        let lines = hlog::parse(&text).unwrap().lines;
        let mut merged = new_histogram();
        for l in lines.iter().filter(|l| l.tag.is_none()) {
            merged.add(&l.histogram).unwrap();
        }
        assert_eq!(merged.len(), run.stats.samples, "{}", run.name);
        let q = |p| Some(merged.value_at_quantile(p).min(run.stats.max_ns));
        assert_eq!(q(0.5), run.stats.p50_ns.value_ns, "{}", run.name);
        assert_eq!(q(0.99), run.stats.p99_ns.value_ns);
        assert_eq!(q(0.999), run.stats.p999_ns.value_ns);
        assert_eq!(q(0.9999), run.stats.p9999_ns.value_ns);
        // Per-vCPU tagged lines, 2 intervals each.
        let tagged = lines
            .iter()
            .filter(|l| l.tag.as_deref() == Some("rt/vcpu1"))
            .count();
        assert_eq!(tagged, 2);
    }
}

fn read_record(path: &Path) -> pinlat::result::RunRecord {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

/// The `.hlog` times are the measurement's: BaseTime is the run record's measurement window,
/// and each line is one RT vCPU's interval at its own start, so a late interval on one vCPU
/// keeps its real time. Without a window the file falls back to the run's start and says so.
#[test]
fn hlog_times_are_the_measurement_window() {
    let dir = copy_fixture("runs-basic");
    let name = "share.mgmt-poll.timer.r1";
    let path = dir.path().join(format!("runs/{name}.json"));
    let mut rec = read_record(&path);
    let window = rec.guests[0].window.unwrap();
    assert!(
        window.start_unix_ms > rec.started_unix_ms,
        "boot and preheat come first"
    );
    // vCPU2's second interval started 40 ms late (a late hand-off).
    for iv in rec.guests[0]
        .intervals
        .iter_mut()
        .filter(|i| i.cpu == 2 && i.index == 1)
    {
        iv.start_offset_ns += 40_000_000;
    }
    std::fs::write(&path, serde_json::to_vec(&rec).unwrap()).unwrap();
    report::write_all(dir.path()).unwrap();
    let text = read(&dir.path().join(format!("{name}.hlog")));
    let log = hlog::parse(&text).unwrap();
    assert_eq!(log.base_time_ms, Some(window.start_unix_ms), "{text}");
    assert_eq!(log.start_time_ms, Some(window.start_unix_ms));
    let first = &log.lines[0];
    assert_eq!(
        log.base_time_ms.unwrap() + first.start_ms,
        window.start_unix_ms
    );
    assert!(
        text.contains("#[Times: each guest's measurement window in the host's time"),
        "{text}"
    );
    // One untagged line per (vCPU, interval), each at its own time.
    let untagged: Vec<(u64, u64)> = log
        .lines
        .iter()
        .filter(|l| l.tag.is_none())
        .map(|l| (l.start_ms, l.histogram.len()))
        .collect();
    assert_eq!(untagged.len(), 4, "{untagged:?}");
    let starts: Vec<u64> = untagged.iter().map(|x| x.0).collect();
    assert_eq!(starts, [0, 0, 2_500, 2_540], "{text}");
    let vcpu2: Vec<u64> = log
        .lines
        .iter()
        .filter(|l| l.tag.as_deref() == Some("rt/vcpu2"))
        .map(|l| l.start_ms)
        .collect();
    assert_eq!(vcpu2, [0, 2_540]);

    // A record without a window: today's behaviour, said in the header.
    rec.guests[0].window = None;
    let text = hlog::render(&rec).unwrap();
    let log = hlog::parse(&text).unwrap();
    assert_eq!(log.base_time_ms, Some(rec.started_unix_ms));
    assert!(text.contains("no measurement window"), "{text}");
}

#[test]
fn unreadable_files_are_skipped_and_empty_dirs_refused() {
    let dir = copy_fixture("runs-basic");
    std::fs::write(dir.path().join("runs/zz.json"), b"\xff\xfe not json").unwrap();
    std::fs::write(dir.path().join("runs/yy.json"), "{}").unwrap();
    let r = report::build(dir.path(), &mut |_| {}).unwrap();
    assert_eq!(r.skipped.len(), 2);
    assert_eq!(r.runs.len(), 24);
    assert_eq!(r.outcome(), Outcome::RunFailed);

    let empty = tempfile::tempdir().unwrap();
    assert!(matches!(
        report::build(empty.path(), &mut |_| {}),
        Err(report::ReportError::NotAResultDir(..))
    ));
    std::fs::create_dir(empty.path().join("runs")).unwrap();
    std::fs::write(empty.path().join("runs/a.json"), "[").unwrap();
    assert!(matches!(
        report::build(empty.path(), &mut |_| {}),
        Err(report::ReportError::NoRuns(_, 1))
    ));
}

#[test]
fn json_report_is_versioned_and_reads_back() {
    let (dir, r) = build_basic();
    let back = Report::read_json(&dir.path().join("report.json")).unwrap();
    assert_eq!(back.schema_version, report::REPORT_SCHEMA_VERSION);
    assert_eq!(back, r);
}

#[test]
fn significant_steal_on_a_runs_pcpus_is_a_report_note() {
    let dir = copy_fixture("runs-basic");
    let runs = dir.path().join("runs");
    let mut names: Vec<_> = std::fs::read_dir(&runs)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    names.sort();
    let path = &names[0];
    let mut rec: pinlat::result::RunRecord =
        serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    let cpus = rec.planned_cpus();
    let cpu = cpus.iter().next().unwrap();
    // 50 ms of a 5 s window on a planned pCPU (1 %), and more on a CPU the run never used.
    rec.host_steal = Some(pinlat::result::HostSteal {
        window_ms: 5_000,
        per_cpu_ns: [(cpu, 50_000_000), (999, 900_000_000)]
            .into_iter()
            .collect(),
    });
    std::fs::write(path, serde_json::to_vec(&rec).unwrap()).unwrap();
    let r = report::build(dir.path(), &mut |_| {}).unwrap();
    let notes: Vec<_> = r
        .notes
        .iter()
        .filter(|n| n.contains("steal time"))
        .collect();
    assert_eq!(notes.len(), 1, "{:?}", r.notes);
    assert!(
        notes[0].contains(&format!("50 ms (1.0 %) of pCPU {cpu}")),
        "{}",
        notes[0]
    );
}

/// The value of attribute `name` in an XML start tag.
fn attr(tag: &str, name: &str) -> u64 {
    let key = format!(" {name}=\"");
    let at = tag
        .find(&key)
        .unwrap_or_else(|| panic!("no {name} in {tag}"))
        + key.len();
    tag[at..].split('"').next().unwrap().parse().unwrap()
}

/// The top-level `tests`/`failures`/`errors` of junit.xml are the sums over its suites, the
/// run-files suite (an unreadable file in the TCG set) included.
#[test]
fn junit_totals_are_the_sum_of_the_suites() {
    for name in ["runs-tcg", "runs-basic"] {
        let dir = copy_fixture(name);
        report::write_all(dir.path()).unwrap();
        let xml = read(&dir.path().join("junit.xml"));
        let top = xml.lines().find(|l| l.starts_with("<testsuites ")).unwrap();
        let suites: Vec<&str> = xml
            .lines()
            .filter(|l| l.trim_start().starts_with("<testsuite "))
            .collect();
        for a in ["tests", "failures", "errors"] {
            let sum: u64 = suites.iter().map(|s| attr(s, a)).sum();
            assert_eq!(attr(top, a), sum, "{name}: {a} in {top}");
        }
        if name == "runs-tcg" {
            assert!(suites.iter().any(|s| s.contains("pinlat.run-files")));
        }
    }
}

/// Every output of the TCG set in `dir` (the report in each format, the histogram text and the
/// `.hlog`) has `text` (`what`, for the message) in its first `chars` characters.
fn in_every_header(dir: &Path, text: &str, chars: usize, what: &str) {
    for f in [
        "report.md",
        "report.html",
        "junit.xml",
        "report.json",
        "share.idle.timer.histogram.txt",
        "share.idle.timer.r1.hlog",
        "kcidb.json",
        "pinlat.prom",
    ] {
        let head: String = read(&dir.join(f)).chars().take(chars).collect();
        assert!(head.contains(text), "{f} lacks {what} in its header");
    }
}

/// The TCG set's guest kernel is not PREEMPT_RT: every output warns in its header; the basic
/// set's guests were, and the report header says so without a warning.
#[test]
fn a_guest_kernel_without_preempt_rt_is_warned_in_every_header() {
    let dir = copy_fixture("runs-tcg");
    let r = report::write_all(dir.path()).unwrap();
    assert_eq!(r.guest_kernels.preempt_rt(), Some(false));
    assert_eq!(r.guest_kernels.unknown, 1, "the failed boot sent no hello");
    let warning = "the guest kernel was not PREEMPT_RT: its own preemption latency is in these numbers; no layout can fix it";
    in_every_header(dir.path(), warning, 1500, "the PREEMPT_RT warning");
    assert!(read(&dir.path().join("junit.xml"))
        .contains("<property name=\"guest_preempt_rt\" value=\"no\"/>"));

    let (dir, r) = build_basic();
    assert_eq!(r.guest_kernels.preempt_rt(), Some(true));
    assert_eq!(r.guest_kernels.warning(), None);
    let md = read(&dir.path().join("report.md"));
    assert!(
        md.contains("Guest kernels: guest rt: 6.1.0-fixture-rt-amd64 PREEMPT_RT (24 run(s))"),
        "{md}"
    );
    assert!(!md.contains("not PREEMPT_RT"));
    let html = read(&dir.path().join("report.html"));
    assert!(html
        .contains("<p>Guest kernels: guest rt: 6.1.0-fixture-rt-amd64 PREEMPT_RT (24 run(s))</p>"));
    assert!(read(&dir.path().join("junit.xml"))
        .contains("<property name=\"guest_preempt_rt\" value=\"yes\"/>"));
}

/// Runs that recorded their boot make every report say how guests were booted, near the
/// accelerator; runs from before boots were shared say nothing of it.
#[test]
fn the_boot_mode_is_said_beside_the_accelerator() {
    use pinlat::kinds::BootPer;
    use pinlat::result::BootPhase;
    let dir = copy_fixture("runs-basic");
    let runs = dir.path().join("runs");
    let mut files: Vec<_> = std::fs::read_dir(&runs)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    for (i, f) in files.iter().enumerate() {
        let mut rec = read_record(f);
        rec.boot = Some(BootPhase {
            boot_per: BootPer::Repetition,
            boot_id: format!("boot{}", i / 4),
            phase: (i % 4) as u32,
            phases: 4,
            order_seed: Some(77),
            reboot_after: None,
        });
        std::fs::write(f, serde_json::to_vec(&rec).unwrap()).unwrap();
    }
    let r = report::write_all(dir.path()).unwrap();
    let b = r.boots.clone().unwrap();
    assert_eq!((b.runs, b.boots, b.order_seed), (24, 6, Some(77)));
    let line = "Guests: one boot per layout × variant × repetition and device set (run.boot_per = \"repetition\"): 24 run(s) in 6 boot(s); each boot's phases ran in an order drawn from seed 77";
    let md = read(&dir.path().join("report.md"));
    let accel_at = md.find("· accel").unwrap();
    let line_at = md.find(line).unwrap_or_else(|| panic!("{md}"));
    assert!(line_at > accel_at && line_at - accel_at < 200, "{md}");
    let html = line.replace('"', "&quot;").replace('\'', "&apos;");
    assert!(read(&dir.path().join("report.html")).contains(&html));
    assert_eq!(
        Report::read_json(&dir.path().join("report.json"))
            .unwrap()
            .boots,
        Some(b)
    );
    let (plain, r) = build_basic();
    assert_eq!(r.boots, None);
    assert!(!read(&plain.path().join("report.md")).contains("Guests:"));
}
