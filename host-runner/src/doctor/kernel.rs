//! Kernel checks: PREEMPT_RT, isolation of the RT pCPUs (`isolcpus`, `nohz_full`,
//! `rcu_nocbs`) and RT throttling.

use pinlat::cpuset::CpuSet;

use super::{cmdline_value, cpu_list_value, show, Check, Env};

pub(super) fn checks(env: &Env) -> Vec<Check> {
    let online = env
        .root
        .read_cpus("sys/devices/system/cpu/online")
        .unwrap_or_default();
    let cmdline = env.root.read_trim("proc/cmdline").unwrap_or_default();
    vec![
        preempt_rt(env),
        isolcpus(env),
        nohz_full(env),
        rcu_nocbs(env, &cmdline, &online),
        rt_throttling(env),
    ]
}

fn preempt_rt(env: &Env) -> Check {
    const ID: &str = "kernel.preempt_rt";
    let realtime = env.root.read_trim("sys/kernel/realtime");
    // /proc/sys/kernel/version is what `uname -v` prints.
    let version = env
        .root
        .read_trim("proc/sys/kernel/version")
        .unwrap_or_default();
    let release = env
        .root
        .read_trim("proc/sys/kernel/osrelease")
        .unwrap_or_default();
    if pinlat::host::is_preempt_rt(realtime.as_deref(), &version) {
        Check::pass(ID, format!("PREEMPT_RT kernel {release} ({version})"))
    } else {
        Check::fail(
            ID,
            format!("{release} is not PREEMPT_RT ({version}; /sys/kernel/realtime absent)"),
            "boot a PREEMPT_RT host kernel (Debian linux-image-rt-amd64, RHEL kernel-rt)",
        )
    }
}

/// Pass when `have` covers `rt`, fail otherwise, naming the missing CPUs.
fn coverage(id: &str, what: &str, env: &Env, have: &CpuSet, param: &str) -> Check {
    if env.rt_cpus.is_empty() {
        return Check::skip(id, format!("no RT pCPUs to check ({what}: {})", show(have)));
    }
    let missing = env.rt_cpus.difference(have);
    if missing.is_empty() {
        Check::pass(
            id,
            format!("{what} {} covers RT pCPUs {}", show(have), env.rt_cpus),
        )
    } else {
        Check::fail(
            id,
            format!("RT pCPUs {missing} not in {what} ({})", show(have)),
            format!(
                "add {param}={} to the host kernel command line",
                have.union(&env.rt_cpus)
            ),
        )
    }
}

fn isolcpus(env: &Env) -> Check {
    let have = env
        .root
        .read_cpus("sys/devices/system/cpu/isolated")
        .unwrap_or_default();
    coverage("kernel.isolcpus", "isolcpus", env, &have, "isolcpus")
}

fn nohz_full(env: &Env) -> Check {
    let have = env
        .root
        .read_cpus("sys/devices/system/cpu/nohz_full")
        .unwrap_or_default();
    coverage("kernel.nohz_full", "nohz_full", env, &have, "nohz_full")
}

fn rcu_nocbs(env: &Env, cmdline: &str, online: &CpuSet) -> Check {
    // nohz_full= CPUs are offloaded from RCU callbacks as well (kernel-parameters.txt).
    let nocbs = cmdline_value(cmdline, "rcu_nocbs")
        .map(|v| cpu_list_value(&v, online))
        .unwrap_or_default();
    let nohz = env
        .root
        .read_cpus("sys/devices/system/cpu/nohz_full")
        .unwrap_or_default();
    coverage(
        "kernel.rcu_nocbs",
        "rcu_nocbs (incl. nohz_full)",
        env,
        &nocbs.union(&nohz),
        "rcu_nocbs",
    )
}

fn rt_throttling(env: &Env) -> Check {
    const ID: &str = "sched.rt_throttling";
    match env
        .root
        .read_trim("proc/sys/kernel/sched_rt_runtime_us")
        .and_then(|v| v.parse::<i64>().ok())
    {
        Some(-1) => Check::pass(ID, "sched_rt_runtime_us = -1 (RT throttling off)"),
        Some(us) => {
            let period = env
                .root
                .read_trim("proc/sys/kernel/sched_rt_period_us")
                .and_then(|v| v.parse::<i64>().ok())
                .unwrap_or(1_000_000);
            Check::warn(
                ID,
                format!(
                    "sched_rt_runtime_us = {us} of {period}: a busy SCHED_FIFO vCPU is stopped for {} µs every period",
                    period - us
                ),
                "sysctl kernel.sched_rt_runtime_us=-1 (tuned realtime profiles do), with a housekeeping CPU per host",
            )
        }
        None => Check::skip(ID, "/proc/sys/kernel/sched_rt_runtime_us not readable"),
    }
}
