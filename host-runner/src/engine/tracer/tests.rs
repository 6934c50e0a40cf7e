use std::io::Write;

use super::text::secs;
use super::*;

#[test]
fn selection_keeps_the_spans_lost_lines_and_markers_in_order() {
    let mut f = tempfile::tempfile().unwrap();
    let ev = |us: u64| {
        format!(
            "            sh-1     [001] ...1. {}: tracing_mark_write: e{us}\n",
            secs(us * 1000)
        )
    };
    let mut text = String::from("# tracer: nop\n");
    for us in [1_000_000, 2_000_000, 3_000_000] {
        text += &ev(us);
    }
    text += "CPU:1 [LOST 3 EVENTS]\n";
    text += &ev(4_000_000);
    f.write_all(text.as_bytes()).unwrap();
    let mut out = Vec::new();
    let cut = select(
        &mut f,
        &[(1_500_000_000, 3_500_000_000)],
        &[(2_500_000_000, "crossed".into())],
        1 << 20,
        &mut out,
    );
    let out = String::from_utf8(out).unwrap();
    assert!(!cut);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 5, "{out}");
    assert!(lines[1].ends_with("e2000000"));
    assert_eq!(lines[2], "# pinlat-marker 2.500000: crossed");
    assert!(lines[3].ends_with("e3000000"));
    assert_eq!(lines[4], "CPU:1 [LOST 3 EVENTS]");
    let mut small = Vec::new();
    assert!(select(&mut f, &[(0, u64::MAX)], &[], 40, &mut small));
    assert!(small.len() <= 40);
}

#[test]
fn a_host_without_tracefs_warns_and_records_why_never_fails() {
    let tmp = tempfile::tempdir().unwrap();
    let config = pinlat::config::Config::from_toml_str(
        "[host]\ncpus = \"0-1\"\n[[guests]]\nname = \"rt\"\nvcpus = 2\n[[layouts]]\nkind = \"vcpu0\"\n",
    )
    .unwrap();
    let plan = pinlat::plan::Plan::new(&config, &CpuSet::parse("0-1").unwrap()).unwrap();
    let layout = &plan.layouts[0];
    assert_eq!(rt_cpus(layout).to_string(), "1");
    let settings = TraceSettings {
        tracefs: Some(tmp.path().join("nothing")),
        msr: MsrRoot::at(tmp.path()),
        ..TraceSettings::on()
    };
    let mut w = Vec::new();
    let t = RunTracer::start(
        &settings,
        layout,
        "vcpu0.idle.busy-poll.r1",
        None,
        Accel::Tcg,
        &mut w,
    );
    assert!(
        matches!(t.rec.status, TraceStatus::Unavailable { .. }),
        "{:?}",
        t.rec.status
    );
    assert_eq!(w.len(), 1);
    assert!(w[0].to_string().contains("not recorded"), "{}", w[0]);
    assert!(matches!(&t.smi_before[0], (1, Err(why)) if why.to_string().contains("modprobe msr")));
    assert_eq!(instance_name("a b.c/d"), "a_b.c_d");
}
