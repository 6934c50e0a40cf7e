//! Per-CPU power and topology checks on the RT pCPUs: cpufreq governor, C-state exit latencies
//! against `/dev/cpu_dma_latency`, and SMT siblings shared with other work.

use pinlat::cpuset::CpuSet;

use super::{show, Check, Env};

/// `/dev/cpu_dma_latency` value when nobody holds a limit, µs (`PM_QOS_DEFAULT_VALUE`).
const DMA_LATENCY_NONE_US: i64 = 2_000_000_000;

/// Exit latency above which an idle state is worth a warning, µs. tuned's latency-performance
/// profile holds `/dev/cpu_dma_latency` at 1 µs; states with exits of a few µs (C1) are fine.
const MAX_EXIT_LATENCY_US: u64 = 10;

pub(super) fn checks(env: &Env) -> Vec<Check> {
    vec![governor(env), cstates(env), smt(env)]
}

fn cpu_dir(cpu: u32) -> String {
    format!("sys/devices/system/cpu/cpu{cpu}")
}

fn governor(env: &Env) -> Check {
    const ID: &str = "cpu.governor";
    if env.rt_cpus.is_empty() {
        return Check::skip(ID, "no RT pCPUs to check");
    }
    let mut bad = Vec::new();
    let mut seen = Vec::new();
    for cpu in env.rt_cpus.iter() {
        if let Some(g) = env
            .root
            .read_trim(&format!("{}/cpufreq/scaling_governor", cpu_dir(cpu)))
        {
            if g != "performance" {
                bad.push(format!("cpu{cpu}={g}"));
            }
            seen.push(g);
        }
    }
    if seen.is_empty() {
        Check::pass(
            ID,
            "no cpufreq on the RT pCPUs: frequency is set by firmware or the hypervisor",
        )
    } else if bad.is_empty() {
        Check::pass(ID, "performance on every RT pCPU")
    } else {
        Check::warn(
            ID,
            format!("governor is not performance: {}", bad.join(", ")),
            "cpupower -c <RT pCPUs> frequency-set -g performance (tuned's realtime profiles do)",
        )
    }
}

fn cstates(env: &Env) -> Check {
    const ID: &str = "cpu.cstates";
    if env.rt_cpus.is_empty() {
        return Check::skip(ID, "no RT pCPUs to check");
    }
    // /dev/cpu_dma_latency reads as a native-endian s32 (µs); absent in fixtures without it.
    let qos_us = env
        .root
        .read_bytes("dev/cpu_dma_latency")
        .and_then(|b| Some(i32::from_ne_bytes(b.get(..4)?.try_into().ok()?) as i64));
    let limit = qos_us.unwrap_or(DMA_LATENCY_NONE_US);
    let qos = match qos_us {
        Some(DMA_LATENCY_NONE_US) => "/dev/cpu_dma_latency not held".to_string(),
        Some(v) => format!("/dev/cpu_dma_latency held at {v} µs"),
        None => "/dev/cpu_dma_latency unreadable".to_string(),
    };
    let mut worst: Option<(u32, String, u64)> = None;
    let mut any_driver = false;
    for cpu in env.rt_cpus.iter() {
        let dir = format!("{}/cpuidle", cpu_dir(cpu));
        for st in env
            .root
            .list(&dir)
            .into_iter()
            .filter(|s| s.starts_with("state"))
        {
            any_driver = true;
            let p = format!("{dir}/{st}");
            let disabled = env.root.read_trim(&format!("{p}/disable")).as_deref() == Some("1");
            let Some(lat) = env
                .root
                .read_trim(&format!("{p}/latency"))
                .and_then(|v| v.parse::<u64>().ok())
            else {
                continue;
            };
            if disabled || lat as i64 > limit {
                continue;
            }
            let name = env
                .root
                .read_trim(&format!("{p}/name"))
                .unwrap_or_else(|| st.clone());
            if worst.as_ref().map_or(true, |w| lat > w.2) {
                worst = Some((cpu, name, lat));
            }
        }
    }
    match worst {
        _ if !any_driver => Check::pass(
            ID,
            format!("no cpuidle states on the RT pCPUs (idle is poll/halt); {qos}"),
        ),
        Some((cpu, name, lat)) if lat > MAX_EXIT_LATENCY_US => Check::warn(
            ID,
            format!("cpu{cpu} may enter {name} with a {lat} µs exit latency; {qos}"),
            "hold /dev/cpu_dma_latency at 0 during runs (tuned does), or disable deep states (cpupower idle-set -D 10)",
        ),
        Some((cpu, name, lat)) => Check::pass(
            ID,
            format!("deepest usable idle state {name} on cpu{cpu}: {lat} µs exit; {qos}"),
        ),
        None => Check::pass(ID, format!("every idle state is disabled or excluded; {qos}")),
    }
}

fn smt(env: &Env) -> Check {
    const ID: &str = "cpu.smt_siblings";
    if env.rt_cpus.is_empty() {
        return Check::skip(ID, "no RT pCPUs to check");
    }
    let online = env
        .root
        .read_cpus("sys/devices/system/cpu/online")
        .unwrap_or_default();
    let isolated = env
        .root
        .read_cpus("sys/devices/system/cpu/isolated")
        .unwrap_or_default();
    let mut shared = Vec::new();
    for cpu in env.rt_cpus.iter() {
        let sib = env
            .root
            .read_cpus(&format!("{}/topology/thread_siblings_list", cpu_dir(cpu)))
            .unwrap_or_default();
        // A sibling is harmless if it is itself an RT pCPU of ours, offline, or isolated
        // (then nothing but what is pinned there runs on it).
        let others: CpuSet = sib
            .iter()
            .filter(|&s| {
                s != cpu && online.contains(s) && !env.rt_cpus.contains(s) && !isolated.contains(s)
            })
            .fold(CpuSet::new(), |mut acc, s| {
                acc.insert(s);
                acc
            });
        if !others.is_empty() {
            shared.push(format!("cpu{cpu} shares a core with {}", show(&others)));
        }
    }
    if shared.is_empty() {
        Check::pass(
            ID,
            "no RT pCPU shares its core with a host-scheduled sibling",
        )
    } else {
        Check::warn(
            ID,
            shared.join("; "),
            "keep the siblings idle: offline them (echo 0 > /sys/devices/system/cpu/cpuN/online) or add them to isolcpus",
        )
    }
}
