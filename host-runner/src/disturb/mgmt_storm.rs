//! `mgmt-storm`: expensive QMP queries back to back, as fast as QEMU answers
//! ([`crate::qmp::storm`]), on a management monitor of every guest of its own, one storm thread
//! per guest pinned to the host's housekeeping pCPUs. QMP commands run in QEMU's main loop
//! under the big QEMU lock, so this is the load on the emulator thread a layout places (issue
//! 12 measured `info mtree` hammered this way: a busy-polling vCPU's max gap 134 ms with the
//! emulator on its pCPU, 10 ms with the emulator elsewhere).
//!
//! The monitors are connected when the guests are released; the storm begins when they are
//! told to measure ([`Disturbance::measuring`]): hammered during boot, a TCG guest took three
//! times as long to say hello here. Recorded per guest and in total: the calls answered per
//! second, each call's latency (HDR, ns), errors, and the queries this QEMU lacks.

use std::path::PathBuf;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use pinlat::config::ScenarioKind;
use pinlat::cpuset::CpuSet;
use pinlat::histo::{new_histogram, Hist, Summary};
use pinlat::result::{MgmtStormStats, QueryCalls};

use super::monitor::{self, ConnectError, Lifecycle, MonitorLinks, Switches};
use super::{Disturbance, DisturbanceError, Outcome, Targets};
use crate::qemu::VmSpec;
use crate::qmp::storm::{parse_query, CallOutcome, Query, Storm, DEFAULT_QUERIES};
use crate::qmp::QmpError;

/// Deadline of one storm call, and of connecting.
const CALL_TIMEOUT: Duration = Duration::from_secs(5);

/// The storms of one run.
#[derive(Debug)]
pub struct MgmtStorm {
    /// As configured; parsed at start.
    queries: Vec<String>,
    life: Lifecycle,
    /// Shut down at stop ([`MonitorLinks`]).
    links: MonitorLinks,
    threads: Vec<JoinHandle<Result<MgmtStormStats, ConnectError>>>,
}

impl MgmtStorm {
    /// A storm over `queries` (each `command [{json arguments}]`, see
    /// [`crate::qmp::storm`]), or over [`DEFAULT_QUERIES`] when `None`. A query that does not
    /// parse fails the run's scenario stage, naming it.
    pub fn new(queries: Option<Vec<String>>) -> Self {
        MgmtStorm {
            queries: queries
                .unwrap_or_else(|| DEFAULT_QUERIES.iter().map(|q| (*q).to_owned()).collect()),
            life: Lifecycle::default(),
            links: MonitorLinks::default(),
            threads: Vec::new(),
        }
    }

    /// The queries, parsed; a query that does not parse, or none at all, is named.
    fn parsed(&self) -> Result<Vec<Query>, DisturbanceError> {
        let why = if self.queries.is_empty() {
            "no queries: list at least one".to_owned()
        } else {
            match self.queries.iter().map(|q| parse_query(q)).collect() {
                Ok(queries) => return Ok(queries),
                Err(e) => e.to_string(),
            }
        };
        Err(DisturbanceError::Config {
            scenario: ScenarioKind::MgmtStorm,
            why,
        })
    }
}

impl Disturbance for MgmtStorm {
    fn prepare_vm(&self, _index: usize, vm: &mut VmSpec) {
        monitor::want_monitor(vm);
    }

    fn start(&mut self, targets: &Targets) -> Result<(), DisturbanceError> {
        let queries = self.parsed()?;
        for (guest, socket) in targets.mgmt_sockets.iter().enumerate() {
            let socket = socket.clone().ok_or(DisturbanceError::NoMonitor {
                scenario: ScenarioKind::MgmtStorm,
                guest,
            })?;
            let h = storm_thread(
                socket,
                queries.clone(),
                targets.housekeeping_cpus.clone(),
                self.life.switches().clone(),
                self.links.clone(),
            )
            .map_err(|source| DisturbanceError::Spawn {
                scenario: ScenarioKind::MgmtStorm,
                what: format!("the storm thread of guest {guest}"),
                source,
            })?;
            self.threads.push(h);
        }
        Ok(())
    }

    fn measuring(&mut self) {
        self.life.measuring();
    }

    fn stop(&mut self) -> Outcome {
        let (links, threads) = (&self.links, &mut self.threads);
        self.life.stop(|went| {
            links.shut_all();
            outcome(went, std::mem::take(threads))
        })
    }
}

/// What the storms did: each guest's threads joined; `went`: whether the guests measured.
fn outcome(went: bool, threads: Vec<JoinHandle<Result<MgmtStormStats, ConnectError>>>) -> Outcome {
    let mut outcome = Outcome::default();
    let mut per_guest = Vec::new();
    let mut problems = Vec::new();
    for (guest, h) in threads.into_iter().enumerate() {
        let what = format!("the storm thread of guest {guest}");
        let stats = monitor::join(h, ScenarioKind::MgmtStorm, &guest, &what, &mut problems);
        // A storm that was never answered did not disturb anything (one that never began
        // belongs to a run that failed before measuring).
        if let Some(stats) = stats.as_ref().filter(|s| went && s.calls == 0) {
            problems.push(format!(
                "mgmt-storm: no query answered on guest {guest} ({} errors{})",
                stats.errors,
                if stats.unsupported.is_empty() {
                    String::new()
                } else {
                    format!("; unsupported: {}", stats.unsupported.join(", "))
                }
            ));
        }
        per_guest.push(stats);
    }
    outcome.mgmt_storm = Some(total(per_guest.iter().flatten()));
    outcome.per_guest_mgmt_storm = per_guest;
    outcome.problem = (!problems.is_empty()).then(|| problems.join("; "));
    outcome
}

/// The guests' storms together: calls and errors summed, latencies merged, the longest
/// elapsed time (they ran side by side).
pub fn total<'a>(guests: impl Iterator<Item = &'a MgmtStormStats>) -> MgmtStormStats {
    let mut t = MgmtStormStats::default();
    let mut hist = new_histogram();
    let (mut min, mut max) = (u64::MAX, 0);
    for g in guests {
        if t.queries.is_empty() {
            t.queries = g.queries.clone();
            t.cpus = g.cpus.clone();
        }
        for u in &g.unsupported {
            if !t.unsupported.contains(u) {
                t.unsupported.push(u.clone());
            }
        }
        t.calls += g.calls;
        t.errors += g.errors;
        t.elapsed_ms = t.elapsed_ms.max(g.elapsed_ms);
        let _ = hist.add(&g.latency_histogram.0);
        if g.latency.samples > 0 {
            min = min.min(g.latency.min_ns);
            max = max.max(g.latency.max_ns);
        }
        for q in &g.per_query {
            match t.per_query.iter_mut().find(|x| x.query == q.query) {
                Some(x) => {
                    x.calls += q.calls;
                    x.errors += q.errors;
                    x.total_ns += q.total_ns;
                    x.max_ns = x.max_ns.max(q.max_ns);
                }
                None => t.per_query.push(q.clone()),
            }
        }
    }
    t.latency = Summary::new(&hist, 0, if max == 0 { 0 } else { min }, max, 0);
    t.latency_histogram = Hist(hist);
    t
}

/// One guest's storm: the queries round-robin on its management monitor until stopped, from a
/// thread pinned to `cpus` (when not empty).
fn storm_thread(
    socket: PathBuf,
    queries: Vec<Query>,
    cpus: CpuSet,
    switches: Switches,
    links: MonitorLinks,
) -> std::io::Result<JoinHandle<Result<MgmtStormStats, ConnectError>>> {
    std::thread::Builder::new()
        .name("mgmt-storm".into())
        .spawn(move || {
            let (mut qmp, pinned) =
                monitor::connect(ScenarioKind::MgmtStorm, &socket, &cpus, CALL_TIMEOUT)?;
            links.keep(qmp.get_ref());
            switches.wait_for_go();
            let started = Instant::now();
            let mut storm = Storm::new(queries);
            let mut per_query: Vec<QueryCalls> = storm
                .queries()
                .iter()
                .map(|q| QueryCalls {
                    query: q.to_string(),
                    ..Default::default()
                })
                .collect();
            let mut hist = new_histogram();
            let (mut calls, mut errors, mut min, mut max) = (0u64, 0u64, u64::MAX, 0u64);
            while !switches.stopped() {
                let Some(result) = storm.call(&mut qmp) else {
                    break;
                };
                match result {
                    Ok(call) => {
                        let q = &mut per_query[call.query];
                        match call.outcome {
                            CallOutcome::Ok { latency_ns } => {
                                calls += 1;
                                let _ = hist.record(latency_ns.max(1));
                                (min, max) = (min.min(latency_ns), max.max(latency_ns));
                                q.calls += 1;
                                q.total_ns += latency_ns;
                                q.max_ns = q.max_ns.max(latency_ns);
                            }
                            CallOutcome::Error => {
                                errors += 1;
                                q.errors += 1;
                            }
                            CallOutcome::Dropped => {}
                        }
                    }
                    // QEMU going away at the end of the run is not the storm's failure.
                    Err(_) if switches.stopped() => break,
                    Err(QmpError::Closed) => {
                        errors += 1;
                        break;
                    }
                    Err(_) => {
                        errors += 1;
                        if errors > 10 && calls == 0 {
                            break;
                        }
                    }
                }
            }
            let per_query: Vec<QueryCalls> = per_query
                .into_iter()
                .enumerate()
                .filter(|(i, _)| !storm.dropped(*i))
                .map(|(_, q)| q)
                .collect();
            Ok(MgmtStormStats {
                queries: per_query.iter().map(|q| q.query.clone()).collect(),
                unsupported: storm.unsupported().to_vec(),
                calls,
                errors,
                elapsed_ms: started.elapsed().as_millis() as u64,
                cpus: if pinned { cpus } else { CpuSet::new() },
                latency: Summary::new(&hist, 0, if calls == 0 { 0 } else { min }, max, 0),
                latency_histogram: Hist(hist),
                per_query,
            })
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn guest(calls: u64, lat: &[u64], q: &str) -> MgmtStormStats {
        let mut h = new_histogram();
        for &v in lat {
            h.record(v).unwrap();
        }
        MgmtStormStats {
            queries: vec![q.into()],
            unsupported: vec!["query-nope (CommandNotFound: x)".into()],
            calls,
            errors: 1,
            elapsed_ms: calls * 10,
            cpus: CpuSet::parse("0").unwrap(),
            latency: Summary::new(
                &h,
                0,
                *lat.iter().min().unwrap(),
                *lat.iter().max().unwrap(),
                0,
            ),
            latency_histogram: Hist(h),
            per_query: vec![QueryCalls {
                query: q.into(),
                calls,
                errors: 1,
                total_ns: lat.iter().sum(),
                max_ns: *lat.iter().max().unwrap(),
            }],
        }
    }

    #[test]
    fn guests_add_up_side_by_side() {
        let a = guest(3, &[1_000, 2_000, 3_000], "query-block");
        let b = guest(2, &[500, 9_000], "query-block");
        let t = total([a, b].iter());
        assert_eq!((t.calls, t.errors), (5, 2));
        assert_eq!(t.elapsed_ms, 30, "side by side: the longest, not the sum");
        assert!((t.calls_per_s() - 5.0 / 0.03).abs() < 1e-6);
        assert_eq!(
            (t.latency.samples, t.latency.min_ns, t.latency.max_ns),
            (5, 500, 9_000)
        );
        assert_eq!(t.unsupported.len(), 1, "each unsupported query once");
        assert_eq!(t.per_query.len(), 1);
        assert_eq!(t.per_query[0].calls, 5);
        assert_eq!(t.per_query[0].max_ns, 9_000);
        assert_eq!(t.cpus.to_string(), "0");
        let none = total(std::iter::empty());
        assert_eq!(
            (none.calls, none.latency.samples, none.latency.min_ns),
            (0, 0, 0)
        );
    }

    #[test]
    fn bad_queries_fail_the_start_with_the_query_named() {
        let mut s = MgmtStorm::new(Some(vec!["query-block".into(), "query-stats vm".into()]));
        let e = s.start(&Targets::default()).unwrap_err().to_string();
        assert!(
            e.contains("query-stats vm") && e.contains("not JSON"),
            "{e}"
        );
        let mut s = MgmtStorm::new(Some(Vec::new()));
        assert!(s.start(&Targets::default()).is_err());
        // The default set parses, and a guest without a monitor is refused by index.
        let mut s = MgmtStorm::new(None);
        let e = s
            .start(&Targets {
                mgmt_sockets: vec![None],
                ..Default::default()
            })
            .unwrap_err()
            .to_string();
        assert!(e.contains("guest 0 has no management QMP monitor"), "{e}");
    }

    /// A fake QEMU monitor on a real socket: the storm connects, is answered, and stops.
    #[test]
    fn storm_against_a_scripted_monitor() {
        use std::io::{BufRead, BufReader, Write};
        use std::os::unix::net::UnixListener;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("mgmt.sock");
        let listener = UnixListener::bind(&path).unwrap();
        let server = std::thread::spawn(move || {
            let (s, _) = listener.accept().unwrap();
            let mut w = s.try_clone().unwrap();
            w.write_all(b"{\"QMP\": {\"version\": {\"qemu\": {\"micro\": 0, \"minor\": 2, \"major\": 7}, \"package\": \"\"}, \"capabilities\": []}}\r\n").unwrap();
            for line in BufReader::new(s).lines() {
                let Ok(line) = line else { break };
                let v: serde_json::Value = serde_json::from_str(&line).unwrap();
                let reply = if v["execute"] == "query-nope" {
                    serde_json::json!({"error": {"class": "CommandNotFound", "desc": "no"}, "id": v["id"]})
                } else {
                    serde_json::json!({"return": [], "id": v["id"]})
                };
                if w.write_all(format!("{reply}\r\n").as_bytes()).is_err() {
                    break;
                }
            }
        });
        let mut s = MgmtStorm::new(Some(vec!["query-block".into(), "query-nope".into()]));
        s.start(&Targets {
            mgmt_sockets: vec![Some(path)],
            housekeeping_cpus: CpuSet::parse("0").unwrap(),
            ..Default::default()
        })
        .unwrap();
        std::thread::sleep(Duration::from_millis(100));
        s.measuring();
        std::thread::sleep(Duration::from_millis(200));
        let o = s.stop();
        assert_eq!(o.problem, None);
        let g = o.per_guest_mgmt_storm[0].as_ref().unwrap();
        assert!(g.calls > 10, "{g:?}");
        assert_eq!(g.queries, ["query-block"]);
        assert_eq!(g.unsupported, ["query-nope (CommandNotFound: no)"]);
        assert_eq!(g.latency.samples, g.calls);
        assert_eq!(g.cpus.to_string(), "0");
        assert_eq!(o.mgmt_storm.as_ref().unwrap().calls, g.calls);
        // Idempotent.
        assert_eq!(s.stop(), o);
        drop(s);
        server.join().unwrap();
    }

    /// A monitor that stops answering (QEMU powering off) does not hold the run for a
    /// command's timeout, and a storm nobody answered is a problem of the run.
    #[test]
    fn stop_is_prompt_when_qemu_no_longer_answers() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("mgmt.sock");
        let server = super::super::unanswering_monitor(&path);
        let mut s = MgmtStorm::new(None);
        s.start(&Targets {
            mgmt_sockets: vec![Some(path)],
            ..Default::default()
        })
        .unwrap();
        s.measuring();
        std::thread::sleep(Duration::from_millis(200));
        let t = Instant::now();
        let o = s.stop();
        assert!(
            t.elapsed() < CALL_TIMEOUT / 2,
            "stop took {:?}",
            t.elapsed()
        );
        let p = o.problem.unwrap();
        assert!(p.contains("no query answered on guest 0"), "{p}");
        server.join().unwrap();
    }
}
