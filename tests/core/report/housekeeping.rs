//! The housekeeping vCPUs' I/O section: load results per layout, and no section without them.

use super::*;

/// An io or net load result with `n` operations per operation kind, latencies spread from
/// `base_ns` (deterministic), as the agent sends them.
fn load_result(
    load: pinlat::wire::LoadKind,
    n: u64,
    base_ns: u64,
    seed: u64,
) -> pinlat::wire::LoadResult {
    use pinlat::wire::{LoadKind, NetCounts, OpKind, OpStats};
    let mut rng = fixtures::Lcg::new(seed);
    let mut op = |bytes_each: u64, errors: u64| {
        let mut h = new_histogram();
        let (mut min, mut max) = (u64::MAX, 0);
        for _ in 0..n {
            // Mostly near the base, one in fifty ten times slower.
            let v = if rng.range(0, 50) == 0 {
                base_ns * 10 + rng.range(0, base_ns)
            } else {
                base_ns + rng.range(0, base_ns / 2)
            };
            h.record(v).unwrap();
            min = min.min(v);
            max = max.max(v);
        }
        OpStats {
            count: n,
            bytes: n * bytes_each,
            errors,
            first_error: (errors > 0).then(|| {
                "write of 4096 bytes at offset 8192 at +1.250 s: Input/output error".to_string()
            }),
            min_ns: min,
            max_ns: max,
            overflow: 0,
            histogram: pinlat::histo::Hist(h),
        }
    };
    let (ops, net, target) = match load {
        LoadKind::Io => (
            [
                (OpKind::Read, op(4096, 0)),
                (OpKind::Write, op(4096, u64::from(seed >= 10))),
                (OpKind::Flush, op(0, 0)),
            ]
            .into(),
            None,
            None,
        ),
        LoadKind::Net => (
            [(OpKind::Rtt, op(256, 0))].into(),
            Some(NetCounts {
                sent: n + seed % 3,
                received: n,
                lost: seed % 3,
                ..NetCounts::default()
            }),
            Some(1_000),
        ),
    };
    pinlat::wire::LoadResult {
        load,
        device: match load {
            LoadKind::Io => "/dev/vda".into(),
            LoadKind::Net => "eth0".into(),
        },
        direct: (load == LoadKind::Io).then_some(true),
        cpus: vec![0],
        duration_ns: 5_000_000_000,
        target_per_s: target,
        ops,
        net,
    }
}

/// Housekeeping I/O in every output: the basic set's busy-poll runs carry io and net load
/// results (slower under vcpu0, whose emulator shares the housekeeping vCPU's pCPU); the
/// section is a golden file, and JUnit, HTML and JSON carry the same numbers.
#[test]
fn housekeeping_io_is_reported_per_layout() {
    use pinlat::wire::{LoadKind, OpKind};
    let dir = copy_fixture("runs-basic");
    let runs = dir.path().join("runs");
    let mut planted = 0;
    for (i, layout) in ["share", "vcpu0"].into_iter().enumerate() {
        for rep in 1..=2u64 {
            let path = runs.join(format!("{layout}.mgmt-poll.busy-poll.r{rep}.json"));
            let mut rec = read_record(&path);
            let slow = 1 + 3 * i as u64;
            let seed = 10 * i as u64 + rep;
            rec.guests[0].loads = vec![
                load_result(LoadKind::Io, 2_000 / slow, 300_000 * slow, seed),
                load_result(
                    LoadKind::Net,
                    5_000 - 500 * slow,
                    150_000 * slow,
                    seed + 100,
                ),
            ];
            std::fs::write(&path, serde_json::to_string(&rec).unwrap()).unwrap();
            planted += 1;
        }
    }
    assert_eq!(planted, 4);
    let r = report::write_all(dir.path()).unwrap();

    // io: read, write, flush; net: rtt; per layout: 8 rows.
    assert_eq!(r.housekeeping.len(), 8, "{:#?}", r.housekeeping);
    let row = |layout: &str, op: OpKind| {
        r.housekeeping
            .iter()
            .find(|x| x.layout == layout && x.op == op)
            .unwrap()
    };
    // Two runs of 5 s each, 2000 reads each under share: 400 IOPS.
    let read = row("share", OpKind::Read);
    assert_eq!((read.results, read.stats.samples), (2, 4_000));
    assert_eq!(read.duration_ns, 10_000_000_000);
    assert_eq!(read.rate_per_s, 400.0);
    assert!(row("vcpu0", OpKind::Read).stats.p50_ns.value_ns > read.stats.p50_ns.value_ns);
    let rtt = row("vcpu0", OpKind::Rtt);
    let net = rtt.net.unwrap();
    assert_eq!(net.received, rtt.stats.samples);
    assert_eq!(net.sent, net.received + net.lost);
    assert_eq!(rtt.target_per_s, Some(1_000));

    let md = super::read(&dir.path().join("report.md"));
    let section = md
        .split("## Housekeeping I/O")
        .nth(1)
        .and_then(|s| s.split("\n## ").next())
        .expect("a Housekeeping I/O section");
    golden(
        "basic.housekeeping.md",
        &format!("## Housekeeping I/O{section}\n"),
    );
    // Before the runs table, after the verdicts.
    assert!(md.find("## Housekeeping I/O") < md.find("## Runs"));

    let junit = super::read(&dir.path().join("junit.xml"));
    assert!(
        junit.contains("<property name=\"housekeeping.io.read.per_s\" value=\"400.0\"/>"),
        "{junit}"
    );
    assert!(junit.contains("<property name=\"housekeeping.net.lost\""));
    assert!(junit.contains("<property name=\"housekeeping.io.write.errors\" value=\"2\"/>"));
    let html = super::read(&dir.path().join("report.html"));
    assert!(html.contains("<h2 id=\"housekeeping\">Housekeeping I/O</h2>"));
    assert!(html.contains("title=\"first: write of 4096 bytes at offset 8192"));
    let back = Report::read_json(&dir.path().join("report.json")).unwrap();
    assert_eq!(back.housekeeping, r.housekeeping);
}

/// A report without load results has no housekeeping section nor field.
#[test]
fn no_load_results_no_housekeeping_section() {
    let (dir, r) = build_basic();
    assert!(r.housekeeping.is_empty());
    assert!(!super::read(&dir.path().join("report.md")).contains("Housekeeping I/O"));
    assert!(!super::read(&dir.path().join("report.json")).contains("\"housekeeping\""));
}
