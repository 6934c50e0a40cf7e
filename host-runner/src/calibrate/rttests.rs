//! Runs oslat and cyclictest beside the agent on the calibrated CPU (A B A B) and hands the
//! rounds to [`pinlat::calibration::rttests`], which holds the comparison's types and statistics.

use std::path::Path;
use std::process::{Command, Stdio};

use pinlat::calibration::rttests::{
    pair, parse_rt_json, Comparison, Round, Stats, ROUNDS, RUN_S, TIMER_INTERVAL_US, TIMER_PRIORITY,
};

use pinlat::histo::Quantile;

use super::{AgentRun, CalibrateError};

fn on_path(tool: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(tool).is_file()))
}

fn agent_stats(r: &pinlat::wire::CpuResult) -> Stats {
    let s = r.summary();
    // Rounded up to whole µs, as the tools bucket them.
    let us = |ns: u64| (ns.div_ceil(1000)).max(1) as f64;
    Stats {
        samples: r.samples,
        p50_us: us(s.ns_or_max(Quantile::P50)),
        p99_us: us(s.ns_or_max(Quantile::P99)),
        p9999_us: us(s.ns_or_max(Quantile::P9999)),
        max_us: r.max_ns as f64 / 1000.0,
    }
}

fn run_tool(tool: &str, args: &[String], json: &Path) -> Result<Stats, CalibrateError> {
    let st = Command::new(tool)
        .args(args)
        .arg(format!("--json={}", json.display()))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map_err(|source| CalibrateError::Spawn {
            what: tool.into(),
            source,
        })?;
    if !st.success() {
        return Err(CalibrateError::RtTests(format!("{tool} exited {st}")));
    }
    let text = std::fs::read_to_string(json).map_err(|source| CalibrateError::Io {
        what: format!("reading {}", json.display()),
        source,
    })?;
    parse_rt_json(&text)
        .ok_or_else(|| CalibrateError::RtTests(format!("{tool}: unrecognised {}", json.display())))
}

/// Runs both comparisons; `Ok(None)` when oslat or cyclictest is not installed.
pub(super) fn compare(
    base: &AgentRun<'_>,
    throttled: bool,
    rt_period_us: u64,
) -> Result<Option<Comparison>, CalibrateError> {
    if !on_path("oslat") || !on_path("cyclictest") {
        return Ok(None);
    }
    let cpu = base.cpu;
    let main_cpu = if cpu == 0 { 1 } else { 0 };
    let json = base.dir.join("rt.json");
    let pause = || {
        if throttled {
            std::thread::sleep(std::time::Duration::from_micros(rt_period_us + 100_000));
        }
    };

    // busy-poll vs oslat: SCHED_OTHER (oslat's default), so a 1 s run is not throttled.
    let mut rounds = Vec::new();
    for i in 0..ROUNDS {
        let tool = run_tool(
            "oslat",
            &[
                "-c".into(),
                cpu.to_string(),
                "-C".into(),
                main_cpu.to_string(),
                "-D".into(),
                RUN_S.to_string(),
                "-b".into(),
                "1024".into(),
                "-q".into(),
            ],
            &json,
        )?;
        let run = AgentRun {
            workload: "busy-poll",
            run_ms: RUN_S * 1000,
            priority: None,
            extra: vec![],
            ..base.clone()
        };
        let (r, (), _) = run.run(&format!("oslat-agent{i}"), |_| ())?;
        let agent = agent_stats(
            r.results
                .first()
                .ok_or_else(|| CalibrateError::RtTests("agent returned no result".into()))?,
        );
        rounds.push(Round { tool, agent });
    }
    let poll = pair(
        "busy-poll vs oslat",
        format!("CPU {cpu}, SCHED_OTHER, {RUN_S} s each, oslat 1 µs buckets"),
        rounds,
    );
    pause();

    // timer vs cyclictest: SCHED_FIFO 95, 1 ms period, memory locked.
    let mut rounds = Vec::new();
    for i in 0..ROUNDS {
        let tool = run_tool(
            "cyclictest",
            &[
                "-m".into(),
                "-q".into(),
                "-p".into(),
                TIMER_PRIORITY.to_string(),
                "-i".into(),
                TIMER_INTERVAL_US.to_string(),
                "-a".into(),
                cpu.to_string(),
                "-t".into(),
                "1".into(),
                "-D".into(),
                format!("{}", 2 * RUN_S),
                "-h".into(),
                "10000".into(),
            ],
            &json,
        )?;
        let run = AgentRun {
            workload: "timer",
            run_ms: 2 * RUN_S * 1000,
            preheat_ms: 0,
            priority: Some(TIMER_PRIORITY),
            extra: vec!["--interval-us".into(), TIMER_INTERVAL_US.to_string()],
            ..base.clone()
        };
        let (r, (), _) = run.run(&format!("cyclictest-agent{i}"), |_| ())?;
        let agent = agent_stats(
            r.results
                .first()
                .ok_or_else(|| CalibrateError::RtTests("agent returned no result".into()))?,
        );
        rounds.push(Round { tool, agent });
    }
    let timer = pair(
        "timer vs cyclictest",
        format!(
            "CPU {cpu}, SCHED_FIFO {TIMER_PRIORITY}, {TIMER_INTERVAL_US} µs period, {} s each",
            2 * RUN_S
        ),
        rounds,
    );
    Ok(Some(Comparison {
        pairs: vec![poll, timer],
    }))
}
