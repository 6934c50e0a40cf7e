use super::*;
use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixListener;

/// A fake QEMU monitor that migrates for real to the sink: every `migrate` connects to the
/// `unix:` URI and writes 64 KiB; then the pass converges (`pre-switchover`, the guest
/// stopped) or fails, as `fail` says.
fn fake_qemu(path: &std::path::Path, fail: bool) -> std::thread::JoinHandle<Vec<String>> {
    let listener = UnixListener::bind(path).unwrap();
    std::thread::spawn(move || {
        let (s, _) = listener.accept().unwrap();
        let mut w = s.try_clone().unwrap();
        let mut send = |v: Value| w.write_all(format!("{v}\r\n").as_bytes()).is_ok();
        let ev = |name: &str, data: Option<Value>, us: u64| {
            let mut e = json!({"event": name, "timestamp": {"seconds": us / 1_000_000, "microseconds": us % 1_000_000}});
            if let Some(d) = data {
                e["data"] = d;
            }
            e
        };
        send(
            json!({"QMP": {"version": {"qemu": {"micro": 22, "minor": 2, "major": 7}, "package": ""}, "capabilities": []}}),
        );
        let mut seen = Vec::new();
        let mut status = "none";
        let mut stream: Option<UnixStream> = None;
        let mut clock_us = 1_000_000u64;
        for line in BufReader::new(s).lines() {
            let Ok(line) = line else { break };
            let v: Value = serde_json::from_str(&line).unwrap();
            let cmd = v["execute"].as_str().unwrap().to_owned();
            seen.push(cmd.clone());
            let ret = match cmd.as_str() {
                "query-migrate" if status == "failed" => {
                    json!({"status": "failed", "error-desc": "boom"})
                }
                "query-migrate" => json!({ "status": status }),
                "query-status" => json!({"status": "running", "running": true}),
                _ => json!({}),
            };
            if !send(json!({"return": ret, "id": v["id"]})) {
                break;
            }
            clock_us += 1_000;
            match cmd.as_str() {
                "migrate" => {
                    let uri = v["arguments"]["uri"].as_str().unwrap();
                    let mut c = UnixStream::connect(uri.strip_prefix("unix:").unwrap()).unwrap();
                    c.write_all(&[0u8; 64 << 10]).unwrap();
                    stream = Some(c);
                    send(ev("MIGRATION", Some(json!({"status": "setup"})), clock_us));
                    if fail {
                        status = "failed";
                        send(ev("MIGRATION", Some(json!({"status": "failed"})), clock_us));
                    } else {
                        status = "pre-switchover";
                        send(ev("STOP", None, clock_us));
                        send(ev(
                            "MIGRATION",
                            Some(json!({"status": "pre-switchover"})),
                            clock_us,
                        ));
                    }
                }
                "migrate_cancel" if status != "cancelled" && status != "failed" => {
                    stream = None;
                    status = "cancelled";
                    send(ev("RESUME", None, clock_us + 2_000));
                    send(ev(
                        "MIGRATION",
                        Some(json!({"status": "cancelling"})),
                        clock_us,
                    ));
                    send(ev(
                        "MIGRATION",
                        Some(json!({"status": "cancelled"})),
                        clock_us,
                    ));
                }
                _ => {}
            }
        }
        drop(stream);
        seen
    })
}

fn targets(socket: PathBuf) -> Targets {
    Targets {
        mgmt_sockets: vec![Some(socket)],
        housekeeping_cpus: CpuSet::new(),
        names: vec!["rt".into()],
        libvirt: Vec::new(),
    }
}

#[test]
fn passes_converge_are_cancelled_and_restart_until_stopped() {
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("mgmt.sock");
    let server = fake_qemu(&sock, false);
    let mut m = Migrate::new(1);
    m.start(&targets(sock)).unwrap();
    std::thread::sleep(Duration::from_millis(50));
    m.measuring();
    std::thread::sleep(Duration::from_millis(300));
    let t = Instant::now();
    let o = m.stop();
    // Waiting for events never blocks for a command's 5 s timeout.
    assert!(t.elapsed() < QMP_TIMEOUT / 2, "stop took {:?}", t.elapsed());
    assert_eq!(o.problem, None);
    let s = o.per_guest_migrate[0].as_ref().unwrap();
    assert_eq!(s.failure, None, "{s:?}");
    assert!(s.passes_started >= 2, "{s:?}");
    // The last pass may be cancelled by the runner at the end before it converges.
    assert!(s.passes_converged + 1 >= s.passes_started, "{s:?}");
    assert_eq!(s.passes_cancelled, s.passes_started, "{s:?}");
    assert_eq!(s.passes_completed + s.passes_failed, 0);
    assert_eq!(
        s.bytes,
        s.passes_started * (64 << 10),
        "every pass's bytes reached the sink"
    );
    assert!(s.pauses + 1 >= s.passes_started, "{s:?}");
    assert!((2_000..=3_000).contains(&s.max_pause_us), "{s:?}");
    assert_eq!((s.max_bandwidth_mib_s, s.downtime_limit_ms), (1, 1));
    assert!(o.warnings.is_empty(), "{:?}", o.warnings);
    assert_eq!(o.migrate.as_ref().unwrap().bytes, s.bytes);
    drop(m);
    let seen = server.join().unwrap();
    assert_eq!(
        &seen[..3],
        [
            "qmp_capabilities",
            "migrate-set-capabilities",
            "migrate-set-parameters"
        ]
    );
    assert!(seen.iter().filter(|c| *c == "migrate").count() as u64 == s.passes_started);
}

#[test]
fn a_failed_migration_ends_the_disturbance_not_the_run() {
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("mgmt.sock");
    let server = fake_qemu(&sock, true);
    let mut m = Migrate::new(64);
    m.start(&targets(sock)).unwrap();
    m.measuring();
    std::thread::sleep(Duration::from_millis(300));
    let o = m.stop();
    assert_eq!(o.problem, None, "the run goes on");
    let s = o.per_guest_migrate[0].as_ref().unwrap();
    assert_eq!(
        (s.passes_started, s.passes_failed),
        (1, 1),
        "no pass after a failure"
    );
    assert_eq!(s.failure.as_deref(), Some("pass 1 failed: boom"));
    assert_eq!(
        o.warnings,
        [Warning::ScenarioPartial {
            scenario: ScenarioKind::Migrate,
            guest: "rt".into(),
            why: "pass 1 failed: boom".into()
        }]
    );
    assert_eq!(
        o.migrate.as_ref().unwrap().failure.as_deref(),
        Some("pass 1 failed: boom")
    );
    drop(m);
    server.join().unwrap();
}

#[test]
fn totals_and_warnings() {
    let g = |bytes, failure: Option<&str>| MigrateStats {
        max_bandwidth_mib_s: 32,
        bytes,
        elapsed_ms: 1_000,
        passes_started: 2,
        max_pause_us: bytes / 1000,
        failure: failure.map(String::from),
        ..Default::default()
    };
    let t = total([g(20 << 20, None), g(10 << 20, Some("x"))].iter());
    assert_eq!(
        (t.passes_started, t.bytes, t.elapsed_ms),
        (4, 30 << 20, 1_000)
    );
    assert_eq!(t.max_bandwidth_mib_s, 64, "two guests' allowances");
    assert!((t.achieved_mib_s() - 30.0).abs() < 1e-9);
    assert_eq!(t.max_pause_us, 20_971);
    assert_eq!(t.failure.as_deref(), Some("x"));
    assert!(warnings("a", &g(20 << 20, None)).is_empty());
    let w = warnings("b", &g(10 << 20, None));
    assert_eq!(
        w,
        [Warning::MigrateBelowBandwidth {
            guest: "b".into(),
            achieved_kib_s: 10 * 1024,
            max_bandwidth_mib_s: 32
        }]
    );
    // A failure says so, and the rate is not judged on top of it.
    assert!(matches!(
        &warnings("c", &g(1, Some("stalled")))[..],
        [Warning::ScenarioPartial { .. }]
    ));
}
