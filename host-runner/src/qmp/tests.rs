//! Unit tests of the parent module (kept apart so the module itself stays readable).
use super::*;
use std::io::Cursor;

const GREETING: &str = "{\"QMP\": {\"version\": {\"qemu\": {\"micro\": 22, \"minor\": 2, \"major\": 7}, \"package\": \"Debian 1:7.2+dfsg-7+deb12u18+b3\"}, \"capabilities\": [\"oob\"]}}\r\n";

/// A scripted peer: reads come from `input`, writes are collected.
struct Script {
    input: Cursor<Vec<u8>>,
    output: Vec<u8>,
}

impl Script {
    fn new(lines: &[&str]) -> Self {
        let mut input = Vec::new();
        for l in lines {
            input.extend_from_slice(l.as_bytes());
            if !l.ends_with('\n') {
                input.extend_from_slice(b"\r\n");
            }
        }
        Script {
            input: Cursor::new(input),
            output: Vec::new(),
        }
    }
    fn sent(&self) -> Vec<Value> {
        self.output
            .split(|&b| b == b'\n')
            .filter(|l| !l.is_empty())
            .map(|l| serde_json::from_slice(l).unwrap())
            .collect()
    }
}

impl Read for Script {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        // Deliver in small pieces to exercise reassembly.
        let n = buf.len().min(7);
        self.input.read(&mut buf[..n])
    }
}

impl Write for Script {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.output.extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

fn client(replies: &[&str]) -> QmpClient<Script> {
    let mut lines = vec![GREETING, r#"{"return": {}, "id": 1}"#];
    lines.extend_from_slice(replies);
    QmpClient::handshake(Script::new(&lines)).unwrap()
}

#[test]
fn handshake_sends_capabilities_and_reads_version() {
    let c = client(&[]);
    assert_eq!(c.version().major, 7);
    assert_eq!(c.version().minor, 2);
    assert_eq!(c.version().micro, 22);
    assert!(c.version().package.starts_with("Debian"));
    let sent = c.into_inner().sent();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0]["execute"], "qmp_capabilities");
    assert_eq!(sent[0]["id"], 1);
}

#[test]
fn cpus_fast_with_interleaved_events() {
    let mut c = client(&[
        r#"{"timestamp": {"seconds": 10, "microseconds": 5}, "event": "RTC_CHANGE", "data": {"offset": 0}}"#,
        r#"{"return": [{"thread-id": 5914, "props": {"core-id": 1}, "qom-path": "/machine/unattached/device[2]", "cpu-index": 1, "target": "x86_64"}, {"thread-id": 5913, "qom-path": "/machine/unattached/device[0]", "cpu-index": 0, "target": "x86_64"}], "id": 2}"#,
    ]);
    let cpus = c.query_cpus_fast().unwrap();
    assert_eq!(
        cpus.iter()
            .map(|v| (v.cpu_index, v.thread_id))
            .collect::<Vec<_>>(),
        vec![(0, 5913), (1, 5914)]
    );
    let events = c.take_events();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].event, "RTC_CHANGE");
    assert_eq!(events[0].timestamp_us, 10_000_005);
    let sent = c.into_inner().sent();
    assert_eq!(sent[1]["execute"], "query-cpus-fast");
}

#[test]
fn stale_reply_with_other_id_is_skipped() {
    let mut c = client(&[
        r#"{"return": {"status": "paused", "running": false}, "id": 99}"#,
        r#"{"return": {"status": "running", "singlestep": false, "running": true}, "id": 2}"#,
    ]);
    let s = c.query_status().unwrap();
    assert_eq!(s.status, "running");
    assert!(s.running);
}

#[test]
fn iothreads_and_stats() {
    let mut c = client(&[
        r#"{"return": [{"poll-shrink": 0, "thread-id": 5911, "aio-max-batch": 0, "poll-grow": 0, "poll-max-ns": 32768, "id": "io0"}], "id": 2}"#,
        r#"{"return": [], "id": 3}"#,
        r#"{"return": [], "id": 4}"#,
    ]);
    assert_eq!(
        c.query_iothreads().unwrap(),
        vec![IoThread {
            id: "io0".into(),
            thread_id: 5911
        }]
    );
    assert_eq!(c.query_stats(StatsTarget::Vcpu).unwrap(), json!([]));
    assert_eq!(c.query_blockstats().unwrap(), json!([]));
    let sent = c.into_inner().sent();
    assert_eq!(sent[2]["arguments"]["target"], "vcpu");
}

#[test]
fn error_reply_is_command_error() {
    let mut c = client(&[
        r#"{"id": 2, "error": {"class": "CommandNotFound", "desc": "The command query-x has not been found"}}"#,
    ]);
    let err = c.execute("query-x", None).unwrap_err();
    assert!(err.is_command_not_found());
    assert!(err.to_string().contains("query-x"), "{err}");
}

#[test]
fn truncated_json_then_eof_is_closed() {
    // Cut mid-message and the peer goes away: Closed.
    let mut c = client(&[]);
    c.stream
        .input
        .get_mut()
        .extend_from_slice(br#"{"return": [{"thread-id": 59"#);
    assert!(matches!(c.query_cpus_fast(), Err(QmpError::Closed)));
    // Cut mid-message but a line ends: not JSON, a protocol error.
    let mut c = client(&[r#"{"return": [{"thread-id": 59"#]);
    assert!(matches!(c.query_cpus_fast(), Err(QmpError::Protocol(_))));
}

#[test]
fn garbage_is_protocol_error() {
    let mut c = client(&["this is not json"]);
    assert!(matches!(c.query_status(), Err(QmpError::Protocol(_))));
    let mut c = client(&["[1,2,3]"]);
    assert!(matches!(c.query_status(), Err(QmpError::Protocol(_))));
    let mut c = client(&[r#"{"id": 2}"#]);
    assert!(matches!(c.query_status(), Err(QmpError::Protocol(_))));
    // Right shape of message, wrong types inside.
    let mut c = client(&[r#"{"return": [{"cpu-index": "zero", "thread-id": 1}], "id": 2}"#]);
    assert!(matches!(c.query_cpus_fast(), Err(QmpError::Protocol(_))));
    let mut c = client(&["\u{0}\u{1}\u{2}\u{ff}"]);
    assert!(c.query_status().is_err());
}

#[test]
fn bad_greeting_is_error() {
    let r = QmpClient::handshake(Script::new(&[r#"{"hello": 1}"#]));
    assert!(matches!(r, Err(QmpError::Protocol(_))));
    let r = QmpClient::handshake(Script::new(&[]));
    assert!(matches!(r, Err(QmpError::Closed)));
}

#[test]
fn oversized_message_is_capped() {
    let big = format!("{{\"return\": \"{}\"}}", "x".repeat(10_000));
    let lines = [GREETING, r#"{"return": {}, "id": 1}"#, &big];
    let mut c =
        QmpClient::handshake_with(Script::new(&lines), DEFAULT_COMMAND_TIMEOUT, 4096).unwrap();
    assert!(matches!(
        c.query_status(),
        Err(QmpError::TooLarge { max_bytes: 4096 })
    ));
}

#[test]
fn quit_tolerates_close() {
    let mut c = client(&[
        r#"{"timestamp": {"seconds": 1, "microseconds": 2}, "event": "SHUTDOWN", "data": {"guest": false, "reason": "host-qmp-quit"}}"#,
    ]);
    c.quit().unwrap();
    assert_eq!(c.take_events()[0].event, "SHUTDOWN");
}

/// A stream that never has data: reads time out like a socket with SO_RCVTIMEO.
struct Silent;
impl Read for Silent {
    fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
        std::thread::sleep(Duration::from_millis(5));
        Err(io::ErrorKind::WouldBlock.into())
    }
}
impl Write for Silent {
    fn write(&mut self, b: &[u8]) -> io::Result<usize> {
        Ok(b.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[test]
fn silence_times_out() {
    let r = QmpClient::handshake_with(Silent, Duration::from_millis(30), 1024);
    match r {
        Err(QmpError::Timeout { waiting_for, .. }) => assert_eq!(waiting_for, "greeting"),
        Err(e) => panic!("{e}"),
        Ok(_) => panic!("handshake with a silent peer succeeded"),
    }
}

#[test]
fn mgmt_poll_drops_unsupported_queries_once() {
    let mut c = client(&[
        r#"{"return": {"status": "running", "running": true}, "id": 2}"#,
        r#"{"return": [], "id": 3}"#,
        r#"{"return": [], "id": 4}"#,
        r#"{"error": {"class": "CommandNotFound", "desc": "nope"}, "id": 5}"#,
        r#"{"error": {"class": "CommandNotFound", "desc": "nope"}, "id": 6}"#,
        // second round: only the three supported ones
        r#"{"return": {"status": "running", "running": true}, "id": 7}"#,
        r#"{"return": [], "id": 8}"#,
        r#"{"return": [], "id": 9}"#,
    ]);
    let mut poll = MgmtPoll::new();
    assert_eq!(poll.round(&mut c).unwrap().commands, 5);
    assert_eq!(poll.unsupported().len(), 2);
    assert_eq!(poll.queries().len(), 3);
    assert_eq!(poll.round(&mut c).unwrap().commands, 3);
    // After the probe round, a command error is an error.
    assert!(matches!(poll.round(&mut c), Err(QmpError::Closed)));
    assert_eq!(poll.queries().len(), 3);
}

#[test]
fn queries_are_a_command_and_optional_json_object_arguments() {
    let q = storm::parse_query(r#"  query-stats {"target": "vm"} "#).unwrap();
    assert_eq!(q.command, "query-stats");
    assert_eq!(q.arguments, Some(serde_json::json!({"target": "vm"})));
    assert_eq!(q.to_string(), r#"query-stats {"target":"vm"}"#);
    let hmp = storm::parse_query(r#"human-monitor-command {"command-line":"info mtree"}"#);
    assert_eq!(hmp.unwrap().command, "human-monitor-command");
    assert_eq!(storm::parse_query("query-block").unwrap().arguments, None);
    for (bad, why) in [
        ("", "command name"),
        ("{\"execute\":\"x\"}", "command name"),
        ("query-stats target=vm", "not JSON"),
        ("query-stats [1]", "JSON object"),
    ] {
        let e = storm::parse_query(bad).unwrap_err().to_string();
        assert!(e.contains(why), "{bad}: {e}");
    }
    for q in storm::DEFAULT_QUERIES {
        storm::parse_query(q).unwrap();
    }
}

#[test]
fn storm_goes_round_robin_and_drops_what_this_qemu_lacks() {
    use storm::CallOutcome::*;
    let mut c = client(&[
        r#"{"return": [], "id": 2}"#,
        r#"{"error": {"class": "CommandNotFound", "desc": "no such command"}, "id": 3}"#,
        r#"{"return": "mtree", "id": 4}"#,
        // A query that worked once and then fails is an error, not unsupported.
        r#"{"error": {"class": "GenericError", "desc": "busy"}, "id": 5}"#,
        r#"{"return": "mtree", "id": 6}"#,
        r#"{"return": [], "id": 7}"#,
    ]);
    let qs = [
        "query-block",
        "query-nope",
        "human-monitor-command {\"command-line\":\"info mtree\"}",
    ];
    let mut s = Storm::new(qs.iter().map(|q| parse_query(q).unwrap()).collect());
    let mut got = Vec::new();
    while let Some(Ok(call)) = s.call(&mut c) {
        got.push((
            call.query,
            matches!(call.outcome, Ok { .. }),
            call.outcome == Error,
            call.outcome == Dropped,
        ));
    }
    assert_eq!(
        got,
        [
            (0, true, false, false),
            (1, false, false, true),
            (2, true, false, false),
            (0, false, true, false),
            (2, true, false, false),
            (0, true, false, false),
        ]
    );
    assert_eq!(
        s.unsupported(),
        ["query-nope (CommandNotFound: no such command)"]
    );
    assert!(s.has_queries());
    let sent = c.into_inner().sent();
    assert_eq!(sent[3]["arguments"]["command-line"], "info mtree");
    // The handshake, six answered calls (the dropped query once), and the call that found the
    // transcript's end (a closed monitor), which ended the loop.
    assert_eq!(sent.len(), 8);
    assert_eq!(sent[7]["execute"], "human-monitor-command");
}

#[test]
fn a_storm_without_supported_queries_stops() {
    let mut c = client(&[r#"{"error": {"class": "CommandNotFound", "desc": "x"}, "id": 2}"#]);
    let mut s = Storm::new(vec![parse_query("query-nope").unwrap()]);
    assert!(matches!(s.call(&mut c), Some(Ok(_))));
    assert!(!s.has_queries());
    assert!(s.call(&mut c).is_none());
}

fn event(name: &str, status: Option<&str>, us: u64) -> QmpEvent {
    QmpEvent {
        event: name.into(),
        data: status.map_or(Value::Null, |s| json!({ "status": s })),
        timestamp_us: us,
    }
}

#[test]
fn a_converged_pass_is_cancelled_at_switchover_and_the_next_one_starts() {
    use migration::{Action, Passes};
    let mut p = Passes::default();
    p.pass_started();
    assert!(p.running());
    assert_eq!(p.on_event(&event("MIGRATION", Some("active"), 0)), None);
    assert_eq!(p.on_event(&event("STOP", None, 1_000)), None);
    assert_eq!(
        p.on_event(&event("MIGRATION", Some("pre-switchover"), 1_010)),
        Some(Action::Cancel)
    );
    // Should the pass slip on to `device` before the cancel lands, it is not cancelled twice.
    assert_eq!(p.on_event(&event("MIGRATION", Some("device"), 1_020)), None);
    assert_eq!(
        p.on_event(&event("MIGRATION", Some("cancelling"), 1_030)),
        None
    );
    assert_eq!(p.on_event(&event("RESUME", None, 3_500)), None);
    assert_eq!(
        p.on_event(&event("MIGRATION", Some("cancelled"), 3_600)),
        Some(Action::Next)
    );
    // `query-migrate` saying so again does not count the pass twice.
    assert_eq!(p.on_status("cancelled"), None);
    assert!(!p.running());
    assert_eq!((p.started, p.converged, p.cancelled), (1, 1, 1));
    assert_eq!((p.pauses, p.paused_us, p.max_pause_us), (1, 2_500, 2_500));
    p.pass_started();
    p.on_event(&event("STOP", None, 10_000));
    p.on_event(&event("MIGRATION", Some("pre-switchover"), 10_001));
    p.on_event(&event("RESUME", None, 11_000));
    assert_eq!(
        (p.converged, p.pauses, p.paused_us, p.max_pause_us),
        (2, 2, 3_500, 2_500)
    );
}

#[test]
fn completed_failed_and_the_end_of_the_measurement() {
    use migration::{Action, Passes};
    let mut p = Passes::default();
    p.pass_started();
    // A pass that completed left the guest paused: resume it, then go on.
    assert_eq!(p.on_status("completed"), Some(Action::ResumeAndNext));
    p.pass_started();
    assert_eq!(p.on_status("failed"), Some(Action::Failed));
    assert_eq!(p.on_status("failed"), None);
    p.pass_started();
    p.stopping = true;
    assert_eq!(p.on_status("cancelled"), None, "no new pass once stopping");
    p.pass_started();
    assert_eq!(p.on_status("completed"), Some(Action::Resume));
    // The runner's own cancel at the end is not a converged pass.
    p.pass_started();
    p.cancel_sent();
    assert_eq!(p.on_status("pre-switchover"), None);
    assert_eq!(
        (p.completed, p.failed, p.cancelled, p.converged),
        (2, 1, 1, 0)
    );
    for s in [
        "setup",
        "active",
        "pre-switchover",
        "device",
        "cancelling",
        "postcopy-active",
    ] {
        assert!(migration::is_running(s), "{s}");
    }
    for s in ["none", "completed", "failed", "cancelled"] {
        assert!(!migration::is_running(s), "{s}");
    }
}

#[test]
fn migration_setup_and_status_on_the_wire() {
    let mut c = client(&[
        r#"{"return": {}, "id": 2}"#,
        r#"{"return": {}, "id": 3}"#,
        r#"{"return": {}, "id": 4}"#,
        r#"{"return": {"status": "active", "ram": {"transferred": 123, "remaining": 9, "total": 132, "dirty-sync-count": 2}}, "id": 5}"#,
        r#"{"return": {"status": "failed", "error-desc": "Unable to write to socket: Broken pipe"}, "id": 6}"#,
        r#"{"return": {}, "id": 7}"#,
    ]);
    migration::prepare(&mut c, 32 << 20).unwrap();
    migration::start(&mut c, "unix:/run/x/migrate-0.sock").unwrap();
    let i = migration::query(&mut c).unwrap();
    assert_eq!(i.status.as_deref(), Some("active"));
    assert_eq!(i.ram.unwrap().transferred, 123);
    let f = migration::query(&mut c).unwrap();
    assert_eq!(
        f.error_desc.as_deref(),
        Some("Unable to write to socket: Broken pipe")
    );
    migration::cancel(&mut c).unwrap();
    let sent = c.into_inner().sent();
    assert_eq!(sent[1]["execute"], "migrate-set-capabilities");
    let caps: Vec<&str> = sent[1]["arguments"]["capabilities"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["state"] == true)
        .map(|c| c["capability"].as_str().unwrap())
        .collect();
    assert_eq!(caps, ["events", "pause-before-switchover"]);
    assert_eq!(sent[2]["arguments"]["max-bandwidth"], 32u64 << 20);
    assert_eq!(
        sent[2]["arguments"]["downtime-limit"],
        migration::DOWNTIME_LIMIT_MS
    );
    assert_eq!(sent[3]["arguments"]["uri"], "unix:/run/x/migrate-0.sock");
    assert_eq!(sent[6]["execute"], "migrate_cancel");
}

proptest::proptest! {
    /// Whatever bytes QEMU (or an impostor) sends after the handshake, a command ends in
    /// a value or an error, never a panic or a hang.
    #[test]
    fn arbitrary_replies_never_panic(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..600)) {
        let mut c = client(&[]);
        c.stream.input.get_mut().extend_from_slice(&bytes);
        let _ = c.query_cpus_fast();
        let _ = c.query_status();
    }

    /// Arbitrary text lines (often valid JSON fragments) never panic either.
    #[test]
    fn arbitrary_json_lines_never_panic(lines in proptest::collection::vec("[{}\\[\\]\":,a-z0-9 -]{0,40}", 0..6)) {
        let refs: Vec<&str> = lines.iter().map(String::as_str).collect();
        let mut c = client(&refs);
        let _ = c.query_iothreads();
        let _ = MgmtPoll::new().round(&mut c);
    }
}

#[test]
fn connect_gives_up_at_deadline() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("none.sock");
    let t = Instant::now();
    let err = connect_unix(
        &path,
        Instant::now() + Duration::from_millis(50),
        Duration::from_millis(50),
    );
    assert!(matches!(err, Err(QmpError::Connect { .. })));
    assert!(t.elapsed() < Duration::from_secs(2));
}

#[test]
fn connect_real_socket_pair() {
    use std::os::unix::net::UnixListener;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("qmp.sock");
    let listener = UnixListener::bind(&path).unwrap();
    let server = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        s.write_all(GREETING.as_bytes()).unwrap();
        let mut buf = [0u8; 256];
        let n = s.read(&mut buf).unwrap();
        assert!(String::from_utf8_lossy(&buf[..n]).contains("qmp_capabilities"));
        s.write_all(b"{\"return\": {}, \"id\": 1}\r\n").unwrap();
    });
    let c = connect_unix(
        &path,
        Instant::now() + Duration::from_secs(2),
        Duration::from_secs(2),
    )
    .unwrap();
    assert_eq!(c.version().minor, 2);
    server.join().unwrap();
}
