//! Each guest fact judged: ok, warn, fail or unknown, with its fix ([`judge`]).

use super::{Check, Status};
use crate::cpuset::CpuSet;
use crate::host::{cmdline_value, cpu_list_value};
use crate::wire::{kernel_cpu_list, GuestTuning, SystemFacts};

/// The checks of one guest's facts, in a fixed order. `rt` are its RT vCPUs.
pub fn judge(facts: &SystemFacts, rt: &CpuSet) -> Vec<Check> {
    let t = facts.tuning.clone().unwrap_or_default();
    let reported = facts.tuning.is_some();
    let mut out = vec![
        preempt_rt(facts),
        cmdline(&facts.cmdline, rt),
        clocksource(&facts.clocksource),
        cpuidle(&t, &facts.cmdline, reported),
        coverage(
            "guest.isolcpus",
            "isolated",
            t.isolated.as_deref(),
            rt,
            "isolcpus=<RT vCPUs> on the guest command line: guest.preset \"pinlat\" (the default) or \"realtime-virtual-guest\"",
        ),
        coverage(
            "guest.nohz_full",
            "nohz_full",
            t.nohz_full.as_deref(),
            rt,
            "nohz_full=<RT vCPUs> on the guest command line (guest.preset \"pinlat\" or \"realtime-virtual-guest\"); a kernel without CONFIG_NO_HZ_FULL has no such file",
        ),
        timer_migration(t.timer_migration.as_deref()),
        rt_runtime(t.sched_rt_runtime_us.as_deref()),
        irqs(&t, rt, reported),
    ];
    if !t.sysctls.is_empty() {
        out.push(sysctls(&t));
    }
    out
}

fn preempt_rt(f: &SystemFacts) -> Check {
    if f.preempt_rt {
        Check::new(
            "guest.preempt_rt",
            Status::Ok,
            format!("{} is PREEMPT_RT", f.kernel_release),
            "",
        )
    } else {
        Check::new(
            "guest.preempt_rt",
            Status::Fail,
            format!("{} is not PREEMPT_RT ({})", f.kernel_release, f.kernel_version),
            "boot a PREEMPT_RT guest kernel (Debian linux-image-rt-amd64, RHEL kernel-rt): the guest's kernel key or $PINLAT_KERNEL",
        )
    }
}

fn cmdline(cmdline: &str, rt: &CpuSet) -> Check {
    const ID: &str = "guest.cmdline";
    if cmdline.trim().is_empty() {
        return Check::new(ID, Status::Unknown, "/proc/cmdline not reported", "");
    }
    let covered = |key: &str| {
        cmdline_value(cmdline, key)
            .map(|v| cpu_list_value(&v, rt))
            .is_some_and(|set| rt.difference(&set).is_empty())
    };
    // nohz_full= CPUs are offloaded from RCU callbacks as well (kernel-parameters.txt).
    let missing: Vec<&str> = [
        ("isolcpus", covered("isolcpus")),
        ("nohz_full", covered("nohz_full")),
        ("rcu_nocbs", covered("rcu_nocbs") || covered("nohz_full")),
    ]
    .iter()
    .filter(|(_, ok)| !ok)
    .map(|(k, _)| *k)
    .collect();
    let shown: Vec<String> = ["isolcpus", "nohz_full", "rcu_nocbs", "irqaffinity", "idle"]
        .iter()
        .filter_map(|k| cmdline_value(cmdline, k).map(|v| format!("{k}={v}")))
        .collect();
    let shown = if shown.is_empty() {
        "no isolation parameters".to_string()
    } else {
        shown.join(" ")
    };
    if missing.is_empty() {
        Check::new(ID, Status::Ok, shown, "")
    } else {
        Check::new(
            ID,
            Status::Fail,
            format!(
                "{} not covering RT vCPUs {rt} ({shown})",
                missing.join(", ")
            ),
            "guest.preset \"pinlat\" (the default) or \"realtime-virtual-guest\" puts isolcpus, nohz_full and rcu_nocbs on the RT vCPUs",
        )
    }
}

fn clocksource(cs: &str) -> Check {
    const ID: &str = "guest.clocksource";
    match cs {
        "" => Check::new(ID, Status::Unknown, "clocksource not reported", ""),
        "tsc" | "kvm-clock" => Check::new(ID, Status::Ok, cs, ""),
        // The kernel's boot-time TSC clocksource: read through the vDSO like `tsc`, but not
        // valid for high-resolution timers. The kernel replaces it with `tsc` once it has
        // refined the TSC's calibration, about a second after boot (arch/x86/kernel/tsc.c);
        // an agent that says hello sooner sees it.
        "tsc-early" => Check::new(
            ID,
            Status::Warn,
            "tsc-early when the agent said hello: the boot-time TSC clocksource, which the kernel replaces with tsc about a second after boot once its calibration is refined; until then high-resolution timers are off",
            "none if it became tsc later; a guest that keeps tsc-early never finished refining the TSC calibration (under TCG its reference reads can be too slow for it), under KVM, qemu.cpu_host with qemu.invtsc gives the guest a TSC it can trust sooner",
        ),
        other => Check::new(
            ID,
            Status::Fail,
            format!("{other}: every clock read in the guest leaves the vDSO fast path or traps to the host"),
            "keep tsc=reliable (guest.tsc_reliable, on by default) so the guest keeps the TSC; under KVM also qemu.invtsc",
        ),
    }
}

fn cpuidle(t: &GuestTuning, cmdline: &str, reported: bool) -> Check {
    const ID: &str = "guest.cpuidle";
    let fix =
        "guest.idle = \"poll\" (idle=poll) or \"haltpoll\" (the cpuidle-haltpoll driver, KVM only)";
    if cmdline_value(cmdline, "idle").as_deref() == Some("poll") {
        return Check::new(
            ID,
            Status::Ok,
            "idle=poll: an idle RT vCPU spins and never halts (its host pCPU stays busy)",
            "",
        );
    }
    let governor = t.cpuidle_governor.as_deref().unwrap_or("unknown");
    // guest.idle = "haltpoll" asked for the driver: one that did not register is a knob that
    // did not apply, not a kernel default.
    let asked =
        cmdline_value(cmdline, "cpuidle_haltpoll.force").is_some_and(|v| v == "1" || v == "Y");
    if asked && reported && t.cpuidle_driver.as_deref() != Some("haltpoll") {
        return Check::new(
            ID,
            Status::Fail,
            format!(
                "cpuidle_haltpoll.force=1 was given but the cpuidle driver is {}: haltpoll did not register",
                t.cpuidle_driver.as_deref().unwrap_or("absent")
            ),
            "cpuidle-haltpoll registers only on KVM, built into the guest kernel (CONFIG_HALTPOLL_CPUIDLE=y), without idle=; or use guest.idle = \"poll\"",
        );
    }
    match t.cpuidle_driver.as_deref() {
        Some("haltpoll") => Check::new(
            ID,
            Status::Ok,
            format!("cpuidle driver haltpoll, governor {governor}: polls before it halts"),
            "",
        ),
        Some(d) => Check::new(
            ID,
            Status::Warn,
            format!(
                "cpuidle driver {d}, governor {governor}: an idle RT vCPU halts, and its wake-up goes through the host"
            ),
            fix,
        ),
        None if reported => Check::new(
            ID,
            Status::Unknown,
            "no cpuidle directory in the guest's sysfs",
            fix,
        ),
        None => Check::new(ID, Status::Unknown, "not reported by the agent", fix),
    }
}

/// Ok when the kernel's CPU list `text` covers `rt`, fail naming the missing CPUs, unknown when
/// the file is absent.
fn coverage(id: &str, what: &str, text: Option<&str>, rt: &CpuSet, fix: &str) -> Check {
    let Some(text) = text else {
        return Check::new(
            id,
            Status::Unknown,
            format!("/sys/devices/system/cpu/{what} absent or not reported"),
            fix,
        );
    };
    let Some(have) = kernel_cpu_list(text) else {
        return Check::new(
            id,
            Status::Unknown,
            format!("{what} reads {text:?}, not a CPU list"),
            fix,
        );
    };
    let missing = rt.difference(&have);
    let shown = if have.is_empty() {
        "none".to_string()
    } else {
        have.to_string()
    };
    if missing.is_empty() {
        Check::new(
            id,
            Status::Ok,
            format!("{what} {shown} covers RT vCPUs {rt}"),
            "",
        )
    } else {
        Check::new(
            id,
            Status::Fail,
            format!("RT vCPUs {missing} not in {what} ({shown})"),
            fix,
        )
    }
}

fn timer_migration(v: Option<&str>) -> Check {
    const ID: &str = "guest.timer_migration";
    match v {
        Some("0") => Check::new(ID, Status::Ok, "kernel.timer_migration = 0", ""),
        Some(v) => Check::new(
            ID,
            Status::Warn,
            format!("kernel.timer_migration = {v}: timers may be moved onto a busy RT vCPU"),
            "guest.timer_migration = false, or guest.sysctls {\"kernel.timer_migration\" = 0} (tuned's realtime profiles set 0)",
        ),
        None => Check::new(
            ID,
            Status::Unknown,
            "kernel.timer_migration absent or not reported",
            "",
        ),
    }
}

fn rt_runtime(v: Option<&str>) -> Check {
    const ID: &str = "guest.sched_rt_runtime_us";
    match v {
        Some("-1") => Check::new(
            ID,
            Status::Ok,
            "kernel.sched_rt_runtime_us = -1 (RT throttling off)",
            "",
        ),
        Some(v) => Check::new(
            ID,
            Status::Warn,
            format!("kernel.sched_rt_runtime_us = {v}: a SCHED_FIFO thread that runs longer than that in a period is stopped for the rest of it"),
            "guest.sysctls {\"kernel.sched_rt_runtime_us\" = -1} (tuned's realtime profile), or guest.preset \"realtime-virtual-guest\"",
        ),
        None => Check::new(
            ID,
            Status::Unknown,
            "kernel.sched_rt_runtime_us absent or not reported",
            "",
        ),
    }
}

fn irqs(t: &GuestTuning, rt: &CpuSet, reported: bool) -> Check {
    const ID: &str = "guest.irqs";
    let fix = "irqaffinity=<housekeeping vCPUs> on the guest command line (guest.preset \"pinlat\" or \"realtime-virtual-guest\")";
    let Some(irqs) = &t.irqs else {
        let found = if reported {
            "/proc/irq unreadable in the guest"
        } else {
            "not reported by the agent"
        };
        return Check::new(ID, Status::Unknown, found, fix);
    };
    let on_rt: Vec<String> = irqs
        .iter()
        .filter_map(|i| {
            let to = i.delivered_to()?;
            let hit = to.intersection(rt);
            (!hit.is_empty())
                .then(|| format!("IRQ {} ({}) on vCPU {hit}", i.irq, i.actions.join(",")))
        })
        .collect();
    if on_rt.is_empty() {
        Check::new(
            ID,
            Status::Ok,
            format!(
                "{} device IRQ(s), none delivered to RT vCPUs {rt}",
                irqs.len()
            ),
            "",
        )
    } else {
        Check::new(ID, Status::Fail, on_rt.join("; "), fix)
    }
}

fn sysctls(t: &GuestTuning) -> Check {
    const ID: &str = "guest.sysctls";
    let shown: Vec<String> = t
        .sysctls
        .iter()
        .map(|s| format!("{} = {} (read back {})", s.key, s.written, s.read))
        .collect();
    let all = t
        .sysctls
        .iter()
        .all(|s| crate::agentcfg::sysctl_matches(&s.written, &s.read));
    if all {
        Check::new(ID, Status::Ok, shown.join(", "), "")
    } else {
        Check::new(
            ID,
            Status::Fail,
            shown.join(", "),
            "the guest kernel changed a value it was given: check the key's range in its documentation",
        )
    }
}
