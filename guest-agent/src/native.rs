//! Native mode: measure on this machine, write a [`RunResult`] as JSON.

use std::io::Write;
use std::path::Path;
use std::sync::{Arc, Mutex};

use anyhow::{Context, Result};
use pinlat::agentcfg::AgentConfig;
use pinlat::atomic_write::write_atomic;
use pinlat::wire::{CpuResult, FrameWriter, LoadResult, RunResult, SCHEMA_VERSION};

use crate::cli::Args;
use crate::clock::Clock;
use crate::facts;
use crate::run::{measure, send, Wire};

/// Run natively as `args` say.
pub fn run(args: &Args) -> Result<()> {
    let cfg = args.agent_config()?;
    let clock = Clock::choose(cfg.clock);
    let facts = facts::collect(clock.info, Vec::new());
    let wire: Option<Wire> = match &args.frames {
        Some(p) => {
            let f = std::fs::File::create(p)
                .with_context(|| format!("Cannot create {}", p.display()))?;
            Some(Arc::new(Mutex::new(FrameWriter::new(Box::new(f)))))
        }
        None => None,
    };
    send(wire.as_ref(), &crate::run::hello(&facts, &cfg))?;
    let measured = measure(&cfg, clock, wire.as_ref(), false)?;
    measured.send(wire.as_ref())?;
    if !args.quiet {
        for r in &measured.results {
            eprintln!("{}", summary_line(&cfg, r));
        }
        for l in &measured.loads {
            eprintln!("{}", load_line(l));
        }
    }
    let crate::run::Measured { results, loads } = measured;
    let out = RunResult {
        schema_version: SCHEMA_VERSION,
        agent_version: env!("CARGO_PKG_VERSION").into(),
        facts,
        config: cfg,
        results,
        loads,
    };
    let json = serde_json::to_vec_pretty(&out).context("Cannot serialise result")?;
    write_output(&args.output, &json)
}

/// One `key=value` line per CPU, stable for scripts (`scripts/trace-overhead.sh`); a percentile
/// beyond the histogram's range reads `overflow`.
pub fn summary_line(cfg: &AgentConfig, r: &CpuResult) -> String {
    let s = r.summary();
    let per_s = if r.duration_ns == 0 {
        0
    } else {
        (r.samples as u128 * 1_000_000_000 / r.duration_ns as u128) as u64
    };
    format!(
        "summary workload={} cpu={} samples={} duration_ns={} samples_per_s={} min_ns={} p50_ns={} p99_ns={} p9999_ns={} max_ns={} overflow={} clock={:?} tsc_hz={} priority={}",
        r.workload,
        r.cpu,
        r.samples,
        r.duration_ns,
        per_s,
        r.min_ns,
        s.p50_ns,
        s.p99_ns,
        s.p9999_ns,
        r.max_ns,
        r.overflow,
        r.clock.source,
        r.clock.tsc_hz.unwrap_or(0),
        cfg.effective_priority().map_or("other".to_string(), |p| format!("fifo:{p}")),
    )
}

/// One `key=value` line per load that measures itself: per operation its count, rate, median,
/// p99, max and errors; net's frames.
pub fn load_line(l: &LoadResult) -> String {
    let mut s = format!(
        "load {} device={} duration_ns={}",
        l.load, l.device, l.duration_ns
    );
    for (op, st) in &l.ops {
        let sum = st.summary(l.duration_ns);
        s.push_str(&format!(
            " {op}_count={} {op}_per_s={:.0} {op}_p50_ns={} {op}_p99_ns={} {op}_max_ns={} {op}_errors={}",
            st.count,
            l.rate_per_s(*op),
            sum.p50_ns,
            sum.p99_ns,
            st.max_ns,
            st.errors
        ));
        if let Some(e) = &st.first_error {
            s.push_str(&format!(" {op}_first_error={e:?}"));
        }
    }
    if let Some(n) = &l.net {
        s.push_str(&format!(
            " sent={} received={} lost={} late={} unmatched={} skipped_slots={} sent_per_s={:.0}",
            n.sent,
            n.received,
            n.lost,
            n.late,
            n.unmatched,
            n.skipped_slots,
            pinlat::wire::per_second(n.sent, l.duration_ns)
        ));
    }
    s
}

fn write_output(dest: &str, json: &[u8]) -> Result<()> {
    if dest == "-" {
        let mut out = std::io::stdout().lock();
        out.write_all(json)?;
        out.write_all(b"\n")?;
        return Ok(out.flush()?);
    }
    // Atomic and durable: a reader never sees half a result, a crash leaves no torn one.
    Ok(write_atomic(Path::new(dest), json)?)
}
